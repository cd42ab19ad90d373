"""scripts/images.py, the pure parts: references, cache keys, docker-archive writing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from locust_operator.api.config import OperatorConfig
from tests.support.examples import BASE_TEST, EXAMPLES, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from versions import read_versions

import images

VERSIONS = read_versions()
GOLDEN = ROOT / "tests" / "golden"


def test_versions_env_has_image_pins() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSIONS["LOCUST_VERSION"])
    assert VERSIONS["DEBIAN_SUITE"] == "bookworm"


def test_read_versions_rejects_shell(tmp_path: Path) -> None:
    env = tmp_path / "v.env"
    env.write_text("# c\n\nA=1\nB_2=x.y-z\n")
    assert read_versions(env) == {"A": "1", "B_2": "x.y-z"}
    for line in ("export A=1", "B_2=x y", "A='1'", "A=$B"):
        env.write_text(line + "\n")
        with pytest.raises(ValueError, match="KEY=value"):
            read_versions(env)


def test_locust_ref_is_what_examples_and_goldens_use() -> None:
    """The locally built Locust image carries the tag users write, and that tag is its
    content's version: every example, golden file and the tests' base object agree."""
    ref = images.plan(go="go1")["locust"].ref
    assert ref == f"locustio/locust:{VERSIONS['LOCUST_VERSION']}"
    used = set()
    for path in [*EXAMPLES.glob("*.yaml"), *GOLDEN.glob("*.yaml")]:
        used |= set(re.findall(r"image: (locustio/locust:\S+)", path.read_text()))
    assert used == {ref}
    assert BASE_TEST["spec"]["image"] == ref


def test_operator_ref_is_the_charts_default() -> None:
    chart = ROOT / "charts" / "locust-operator"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    app = yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]
    expected = f"{values['image']['repository']}:{values['image']['tag'] or app}"
    assert images.chart_image_ref() == expected == "ghcr.io/locust-operator/locust-operator:0.1.0"


def test_exporter_ref_is_the_config_default() -> None:
    assert images.exporter_image_ref() == OperatorConfig().metricsExporter.image


def test_git_ref_is_the_config_default() -> None:
    """The git init container's default image is the one built here (a local stand-in)."""
    assert images.git_image_ref() == OperatorConfig().initContainers.gitImage == "alpine/git:2.47.2"
    assert images.plan(go="go1")["git"].ref == "alpine/git:2.47.2"
    assert images.plan(go="go1")["git"].parent == "base"


def _copy_repo_inputs(dst: Path) -> None:
    for rel in ["scripts/versions.env", "charts/locust-operator/values.yaml",
                "charts/locust-operator/Chart.yaml", "controller/locust_operator/api/config.py"]:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, dst / rel)


def test_cache_keys_follow_their_inputs(tmp_path: Path) -> None:
    _copy_repo_inputs(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "images" / "locust").mkdir(parents=True)
    (tmp_path / "images" / "locust" / "Containerfile").write_text("FROM y\n")
    first = images.plan(tmp_path, go="go1.26")
    assert images.plan(tmp_path, go="go1.26") == first  # stable

    (tmp_path / "Dockerfile").write_text("FROM x\nUSER 1\n")
    changed = images.plan(tmp_path, go="go1.26")
    assert changed["operator"].key != first["operator"].key
    assert [changed[n].key for n in ("base", "locust", "exporter", "git")] == \
        [first[n].key for n in ("base", "locust", "exporter", "git")]

    # The git image follows its Containerfile only.
    (tmp_path / "images" / "git").mkdir(parents=True)
    (tmp_path / "images" / "git" / "Containerfile").write_text("FROM z\n")
    with_git = images.plan(tmp_path, go="go1.26")
    assert {n for n in with_git if with_git[n].key != changed[n].key} == {"git"}
    changed = with_git

    # Bytecode and caches are no input.
    (tmp_path / "controller" / "locust_operator" / "__pycache__").mkdir()
    (tmp_path / "controller" / "locust_operator" / "__pycache__" / "x.pyc").write_bytes(b"1")
    assert images.plan(tmp_path, go="go1.26")["operator"].key == changed["operator"].key

    versions = read_versions(tmp_path / "scripts" / "versions.env")
    newer = images.plan(tmp_path, {**versions, "LOCUST_VERSION": "9.9.9"}, go="go1.26")
    assert newer["locust"].key != changed["locust"].key
    assert newer["locust"].ref == "locustio/locust:9.9.9"
    assert newer["operator"].key == changed["operator"].key

    # A new base suite rebuilds everything built on it, not the exporter.
    other = images.plan(tmp_path, {**versions, "DEBIAN_SUITE": "trixie"}, go="go1.26")
    assert {n for n in other if other[n].key != changed[n].key} == {"base", "locust", "operator", "git"}
    assert images.plan(tmp_path, go="go1.27")["exporter"].key != changed["exporter"].key


def test_cache_key_hashes_names_and_contents(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1")
    b.write_text("2")
    key = images.cache_key({"x": 1}, [a, b], root=tmp_path)
    assert key == images.cache_key({"x": 1}, [b, a], root=tmp_path)
    assert key != images.cache_key({"x": 2}, [a, b], root=tmp_path)
    b.write_text("3")
    assert key != images.cache_key({"x": 1}, [a, b], root=tmp_path)


def test_operator_inputs_cover_every_dockerfile_copy_source() -> None:
    """A change to anything the Dockerfile copies must change the operator's key."""
    inputs = set(images.source_files(ROOT, images.OPERATOR_INPUTS))
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            sources += line.split()[1:-1]
    assert sources
    for source in sources:
        path = ROOT / source
        files = [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts] \
            if path.is_dir() else [path]
        assert files and set(files) <= inputs, source


def test_dockerfile_base_is_a_build_argument() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.M)
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]


def _tiny_rootfs(root: Path) -> None:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "bin" / "link").symlink_to("tool")
    (root / "dev").mkdir()
    (root / "dev" / "junk").write_text("not for the image")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\n")


def test_layer_leaves_out_dev_contents_and_owner_names(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    _tiny_rootfs(rootfs)
    digest = images.write_layer(rootfs, tmp_path / "layer.tar")
    assert digest == hashlib.sha256((tmp_path / "layer.tar").read_bytes()).hexdigest()
    with tarfile.open(tmp_path / "layer.tar") as tar:
        names = tar.getnames()
        assert names == ["bin", "dev", "etc", "bin/link", "bin/tool", "etc/passwd"]
        assert all(m.uname == "" and m.gname == "" for m in tar.getmembers())
        assert tar.getmember("bin/link").issym()
        assert tar.getmember("bin/tool").mode & 0o111


def test_docker_archive_round_trip(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    _tiny_rootfs(rootfs)
    layer = tmp_path / "layer.tar"
    digest = images.write_layer(rootfs, layer)
    config = images.ImageConfig(user="1000:1000", env=("PATH=/bin",), entrypoint=("tool",),
                                cmd=("--help",), workdir="/home", ports=("8089", "53/udp"),
                                labels=(("a", "b"),))
    out = tmp_path / "image.tar"
    config_digest = images.write_docker_archive(out, "example.org/x/y:1.0", config, [(layer, digest)],
                                                ["made"])
    got = images.read_docker_archive(out)
    assert got["manifest"] == [{"Config": f"{config_digest}.json", "RepoTags": ["example.org/x/y:1.0"],
                                "Layers": [f"{digest}/layer.tar"]}]
    cfg = got["config"]
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{digest}"]}
    assert cfg["config"] == {"User": "1000:1000", "Env": ["PATH=/bin"], "Entrypoint": ["tool"],
                             "Cmd": ["--help"], "WorkingDir": "/home",
                             "ExposedPorts": {"8089/tcp": {}, "53/udp": {}}, "Labels": {"a": "b"}}
    assert cfg["os"] == "linux" and cfg["architecture"] == "amd64"
    with tarfile.open(out) as tar:
        raw = tar.extractfile(f"{config_digest}.json").read()  # type: ignore[union-attr]
        assert hashlib.sha256(raw).hexdigest() == config_digest
        assert json.load(tar.extractfile("repositories")) == {"example.org/x/y": {"1.0": ""}}  # type: ignore[arg-type]
        inner = tar.extractfile(f"{digest}/layer.tar").read()  # type: ignore[union-attr]
        assert hashlib.sha256(inner).hexdigest() == digest
    assert [p.name for p in tmp_path.glob("*.tmp")] == []


@pytest.mark.parametrize(("ref", "full"), [
    ("locustio/locust:2.43.3", "docker.io/locustio/locust:2.43.3"),
    ("busybox:1", "docker.io/library/busybox:1"),
    ("ghcr.io/locust-operator/locust-operator:0.1.0", "ghcr.io/locust-operator/locust-operator:0.1.0"),
    ("localhost/x:1", "localhost/x:1"),
    ("registry:5000/x:1", "registry:5000/x:1"),
])
def test_normalize_ref(ref: str, full: str) -> None:
    assert images.normalize_ref(ref) == full


def test_prune_keeps_newest(tmp_path: Path) -> None:
    image = images.Image("locust", "r:1", "k0")
    for i in range(5):
        tar = tmp_path / f"locust-k{i}.tar"
        tar.write_text("x")
        tar.with_suffix(".json").write_text("{}")
        os.utime(tar, (1000 + i, 1000 + i))
    (tmp_path / "operator-k0.tar").write_text("other image")
    images.prune_old(tmp_path, image, keep=3)
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == \
        ["locust-k2.tar", "locust-k3.tar", "locust-k4.tar", "operator-k0.tar"]
    assert not (tmp_path / "locust-k0.json").exists()


FAKE_CTR = """#!/bin/sh
# a stand-in for ctr: logs its arguments; knows one image
echo "$@" >> "$CTR_LOG"
case "$*" in
  *"images ls name==docker.io/locustio/locust:1"*)
    echo "REF TYPE DIGEST SIZE PLATFORMS LABELS"
    echo "docker.io/locustio/locust:1 application/vnd.docker...v2+json sha256:m1 1 linux/amd64 -";;
  *"images ls"*) echo "REF TYPE DIGEST SIZE PLATFORMS LABELS";;
  *"content get sha256:m1"*) echo '{"config": {"digest": "'"$CTR_CONFIG"'"}}';;
esac
"""


def test_import_skips_images_containerd_already_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rootfs = tmp_path / "rootfs"
    _tiny_rootfs(rootfs)
    layer = tmp_path / "layer.tar"
    digest = images.write_layer(rootfs, layer)
    plan = {"locust": images.Image("locust", "locustio/locust:1", "k1"),
            "exporter": images.Image("exporter", "containersol/locust_exporter:v1", "k2")}
    configs = {}
    for image in plan.values():
        configs[image.name] = images.write_docker_archive(
            image.tar(tmp_path), image.ref, images.ImageConfig(user=image.name), [(layer, digest)], [])
    ctr = tmp_path / "ctr"
    ctr.write_text(FAKE_CTR)
    ctr.chmod(0o755)
    log = tmp_path / "ctr.log"
    monkeypatch.setenv("CTR_LOG", str(log))
    monkeypatch.setenv("CTR_CONFIG", f"sha256:{configs['locust']}")

    images.import_images(plan, [], tmp_path, str(ctr), "/run/x.sock", "k8s.io")
    imports = [line for line in log.read_text().splitlines() if "images import" in line]
    assert imports == [f"--address /run/x.sock -n k8s.io images import {plan['exporter'].tar(tmp_path)}"]

    log.unlink()  # containerd's locust image is another build: imported again
    monkeypatch.setenv("CTR_CONFIG", "sha256:other")
    images.import_images(plan, ["locust"], tmp_path, str(ctr), "/run/x.sock", "k8s.io")
    assert [line for line in log.read_text().splitlines() if "images import" in line] == \
        [f"--address /run/x.sock -n k8s.io images import {plan['locust'].tar(tmp_path)}"]

    with pytest.raises(images.ImageError, match="no-such-ctr: not found"):
        images.import_images(plan, [], tmp_path, "no-such-ctr", "/run/x.sock", "k8s.io")
