"""The tests' in-cluster git server (tests/support/git_server.py), proved on loopback.

The pod's ConfigMap is laid out in a temporary directory as its mount would be, the
pod's own `sh -c` command runs there (mount paths and port replaced, loopback only),
and the host's git clones and fetches from it over smart HTTP: the SHAs are the ones
`expected_shas` computes in advance.
"""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.support import git_server
from tests.support.ports import free_port

FILES = {"locustfile.py": "from locust import HttpUser, task\n\n\nclass U(HttpUser):\n    @task\n"
                          "    def t(self) -> None:\n        self.client.get('/')\n",
         "lib/helpers.py": "VERSION = 1\n"}
SECOND = {"lib/helpers.py": "VERSION = 2\n", "README.md": "second commit\n"}
# Clean git for the client side too: no config of this machine (url rewrites, proxies).
GIT_ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}


def _lay_out_mount(objects: list[dict[str, Any]], dest: Path) -> None:
    """The ConfigMap's files where the pod's volume puts them (its items' paths)."""
    configmap, deployment = objects[0], objects[1]
    volume = deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]
    for item in volume["items"]:
        (dest / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        (dest / item["path"]).write_text(configmap["data"][item["key"]])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The pod's command, run on the host: the repo's URL on a loopback port."""
    tmp = tmp_path_factory.mktemp("git-server")
    objects = git_server.git_objects("load", FILES, SECOND, image="img:1")
    _lay_out_mount(objects, tmp / "config")
    (tmp / "srv").mkdir()
    port = free_port()
    (script,) = objects[1]["spec"]["template"]["spec"]["containers"][0]["command"][2:]
    script = (script.replace(git_server.CONFIG_MOUNT, str(tmp / "config"))
              .replace(git_server.ROOT_MOUNT, str(tmp / "srv"))
              .replace(f"--port {git_server.PORT}", f"--port {port} --bind 127.0.0.1"))
    proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "the git server exited"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the git server does not listen"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/{git_server.REPO}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def shas() -> git_server.RepoShas:
    return git_server.expected_shas(FILES, SECOND)


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=GIT_ENV, timeout=60)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def test_shas_are_deterministic_and_distinct(shas: git_server.RepoShas) -> None:
    assert git_server.expected_shas(FILES, SECOND) == shas
    assert len({shas.v1, shas.v1_object, shas.main}) == 3
    # Without a second commit main is the tagged commit.
    only = git_server.expected_shas(FILES)
    assert only.main == only.v1 == shas.v1


def test_clone_the_tag(server: str, shas: git_server.RepoShas, tmp_path: Path) -> None:
    git("clone", "--quiet", "--depth", "1", "--branch", "v1", server, str(tmp_path / "c"))
    assert git("rev-parse", "HEAD", cwd=tmp_path / "c") == shas.v1
    assert (tmp_path / "c" / "lib" / "helpers.py").read_text() == "VERSION = 1\n"
    assert not (tmp_path / "c" / "README.md").exists()
    assert (tmp_path / "c" / "locustfile.py").read_text() == FILES["locustfile.py"]


def test_clone_the_branch(server: str, shas: git_server.RepoShas, tmp_path: Path) -> None:
    git("clone", "--quiet", "--depth", "1", "--branch", "main", server, str(tmp_path / "c"))
    assert git("rev-parse", "HEAD", cwd=tmp_path / "c") == shas.main
    assert (tmp_path / "c" / "lib" / "helpers.py").read_text() == "VERSION = 2\n"
    assert (tmp_path / "c" / "README.md").read_text() == "second commit\n"


@pytest.mark.parametrize("protocol", ["0", "2"])
def test_fetch_a_commit_by_sha(server: str, shas: git_server.RepoShas, tmp_path: Path, protocol: str) -> None:
    """As the init container does for a SHA: init, fetch --depth 1 that SHA, check out FETCH_HEAD."""
    for sha, version in ((shas.v1, 1), (shas.main, 2)):
        work = tmp_path / f"{protocol}-{version}"
        git("init", "--quiet", str(work))
        git("remote", "add", "origin", server, cwd=work)
        git("-c", f"protocol.version={protocol}", "fetch", "--quiet", "--depth", "1", "origin", sha, cwd=work)
        git("-c", "advice.detachedHead=false", "checkout", "--quiet", "FETCH_HEAD", cwd=work)
        assert git("rev-parse", "HEAD", cwd=work) == sha
        assert (work / "lib" / "helpers.py").read_text() == f"VERSION = {version}\n"


def test_gzip_and_chunked_request_bodies(server: str, shas: git_server.RepoShas) -> None:
    """A v0 upload-pack request, gzip-compressed and then chunked: the backend answers a pack."""
    want = f"want {shas.v1}\n"
    request = f"{len(want) + 4:04x}{want}0000" "0009done\n"
    headers = {"Content-Type": "application/x-git-upload-pack-request"}
    bodies: list[tuple[Any, dict[str, str]]] = [
        (gzip.compress(request.encode()), {**headers, "Content-Encoding": "gzip"}),
        (iter([request[:20].encode(), request[20:].encode()]), headers),  # urllib: chunked
    ]
    for body, hdrs in bodies:
        req = urllib.request.Request(f"{server}/git-upload-pack", data=body, headers=hdrs, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.headers["Content-Type"] == "application/x-git-upload-pack-result"
            out = resp.read()
        assert out.startswith(b"0008NAK\n") and b"PACK" in out, out[:100]


def test_push_is_refused_and_unknown_repos_are_not_found(server: str) -> None:
    for path, status in (("/info/refs?service=git-receive-pack", 403), ("-nope/info/refs", 404)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{server}{path}", timeout=10)
        assert err.value.code == status, path


def test_objects() -> None:
    configmap, deployment, service = git_server.git_objects("load", FILES, SECOND)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "alpine/git:2.47.2"  # initContainers.gitImage: scripts/images builds it
    assert container["command"][:2] == ["sh", "-c"]
    assert container["securityContext"]["runAsUser"] == 1000
    assert configmap["data"]["git_server.py"] == Path(git_server.__file__).read_text()
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080}]
    assert git_server.repo_url("load") == "http://git.load.svc.cluster.local/repo.git"
    for obj in (configmap, deployment, service):
        kubernetes_validate.validate(obj, "1.34.0", strict=True)


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "..data/x", ""])
def test_paths_must_stay_inside(path: str) -> None:
    with pytest.raises(ValueError, match="relative path"):
        git_server.git_objects("load", {path: "x"})


def test_parse_cgi() -> None:
    assert git_server.parse_cgi(b"Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nno") == \
        (403, [("Content-Type", "text/plain")], b"no")
    assert git_server.parse_cgi(b"Content-Type: a/b\n\n\n\nbody") == \
        (200, [("Content-Type", "a/b")], b"\n\nbody")
