"""scripts/cluster and its parts, offline: scripts/versions.env means the same to bash
and to scripts/versions.py, the components follow one interface, and the one
docker-archive writer (scripts/images.py archive) writes what containerd imports."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from versions import VERSIONS_ENV, read_versions

import images

CLUSTER = ROOT / "scripts" / "cluster"
PARTS = ROOT / "scripts" / "cluster.d"


def _bash_env(script: str, *args: str) -> dict[str, str]:
    """The environment a clean, non-interactive bash ends up with after script."""
    cmd = ["env", "-i", "bash", "--noprofile", "--norc", "-c", script + "; env -0", "bash", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(entry.split("=", 1) for entry in out.split("\0") if entry)


def _bash_sources(path: Path) -> dict[str, str]:
    """What `source path` sets in bash (what scripts/cluster and CI see)."""
    before = _bash_env("true")
    after = _bash_env('set -a; source "$1"', str(path))
    return {k: v for k, v in after.items() if before.get(k) != v and k != "_"}


def test_bash_sees_what_read_versions_parses() -> None:
    versions = read_versions()
    assert versions == _bash_sources(VERSIONS_ENV)
    assert {"KUBERNETES_VERSION", "ETCD_VERSION", "LOCUST_VERSION", "COREDNS_VERSION"} <= versions.keys()


def test_every_accepted_character_means_the_same_to_bash(tmp_path: Path) -> None:
    env = tmp_path / "v.env"
    env.write_text("# comment\n\n  A=v1.2.3-rc.1+build_7\nB=a:b/c@d,e%f=g\nC=\n")
    expected = {"A": "v1.2.3-rc.1+build_7", "B": "a:b/c@d,e%f=g", "C": ""}
    assert read_versions(env) == _bash_sources(env) == expected


@pytest.mark.parametrize("line", ["A='1'", 'A="1"', "A=$B", "A=x y", "A=`id`", "A=*", "export A=1",
                                  "a=1", "A = 1"])
def test_shell_syntax_is_refused(tmp_path: Path, line: str) -> None:
    env = tmp_path / "v.env"
    env.write_text(line + "\n")
    with pytest.raises(ValueError, match="KEY=value"):
        read_versions(env)


def _components() -> list[str]:
    """Every component scripts/cluster's use_components can choose."""
    body = re.search(r"^use_components\(\) \{\n(.*?)^\}", CLUSTER.read_text(), re.M | re.S)
    assert body, "use_components not found in scripts/cluster"
    lists = re.findall(r"COMPONENTS=\(([^)]*)\)", body.group(1))
    return sorted({name for found in lists for name in found.split()})


def test_each_component_has_its_file_with_start_healthy_stop() -> None:
    components = _components()
    assert {"pki", "etcd", "apiserver", "controllers", "kwok", "netns", "realnode"} <= set(components)
    for name in components:
        text = (PARTS / f"{name}.sh").read_text()
        for hook in ("start", "healthy", "stop"):
            assert re.search(rf"^{name}_{hook}\(\) \{{", text, re.M), f"cluster.d/{name}.sh: no {name}_{hook}"


def test_generic_code_does_not_branch_on_the_real_node() -> None:
    for path in [CLUSTER, *PARTS.glob("*.sh")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            branch = re.search(r"\(\(\s*!?\s*REAL_NODE|\$REAL_NODE\b", code)
            assert not branch, f"{path.name}:{number}: {line}"


def test_shell_parts_parse_and_stay_short() -> None:
    for path in [CLUSTER, *PARTS.glob("*.sh")]:
        subprocess.run(["bash", "-n", str(path)], check=True)
        assert len(path.read_text().splitlines()) < 300, path


def test_archive_writes_a_one_file_image(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF not really")
    outs = []
    for name in ("a.tar", "b.tar"):
        out = tmp_path / name
        subprocess.run([sys.executable, str(ROOT / "scripts" / "images.py"), "archive", str(out),
                        "--tag", "registry.k8s.io/pause:3.10-local", "--file", f"{binary}:/bin/tool:0755",
                        "--entrypoint", "/bin/tool", "--user", "65535:65535"], check=True)
        outs.append(out)
    first, second = (images.read_docker_archive(out) for out in outs)
    assert first["manifest"] == second["manifest"]  # same files, same image ID
    assert first["manifest"][0]["RepoTags"] == ["registry.k8s.io/pause:3.10-local"]
    config = first["config"]["config"]
    assert config["Entrypoint"] == ["/bin/tool"] and config["User"] == "65535:65535"
    assert config["Env"] == ["PATH=/usr/local/bin:/usr/bin:/bin"] and config["WorkingDir"] == "/"
    layer_name = first["manifest"][0]["Layers"][0]
    with tarfile.open(outs[0]) as archive, \
            tarfile.open(fileobj=archive.extractfile(layer_name)) as layer:
        members = {m.name: m for m in layer.getmembers()}
        assert list(members) == ["bin", "bin/tool"]
        tool = members["bin/tool"]
        assert (tool.mode, tool.uid, tool.gid, tool.mtime) == (0o755, 0, 0, 0)
        assert layer.extractfile(tool).read() == binary.read_bytes()  # type: ignore[union-attr]
        assert members["bin"].isdir()
