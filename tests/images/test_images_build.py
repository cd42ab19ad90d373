"""The images scripts/images builds (or reuses from its cache), checked without containerd:
each tar is a well-formed docker-archive tagged with the reference users write, its config
names the user and entrypoint the pods expect, and the unpacked root filesystems run.

Needs root (building: debootstrap and buildah's chroot isolation; here: chroot). Missing
tools are installed by scripts/images itself; anything else that is missing fails the test
with a message naming it, never a skip.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.examples import ROOT
from tests.support.ports import free_port

sys.path.insert(0, str(ROOT / "scripts"))
from versions import read_versions

import images

pytestmark = pytest.mark.images

# What the rendered pods expect (tests/golden): Locust runs as uid/gid 1000 with
# runAsNonRoot, the exporter sidecar as 65534 with a read-only root filesystem.
EXPECTED: dict[str, dict[str, Any]] = {
    "locust": {"User": "1000:1000", "Entrypoint": ["locust"], "WorkingDir": "/home/locust"},
    "operator": {"User": "65532:65532", "Entrypoint": ["locust-operator"],
                 "Cmd": ["run", "--all-namespaces"]},
    "exporter": {"User": "65534:65534", "Entrypoint": ["/bin/locust_exporter"]},
    "git": {"User": "1000:1000", "Cmd": ["sh"], "WorkingDir": "/home/git"},
    "base": {"Cmd": ["python3"]},
}


@pytest.fixture(scope="module")
def built() -> dict[str, images.Image]:
    if os.geteuid() != 0:
        pytest.fail("the image tests need root (debootstrap, buildah --isolation chroot, chroot)")
    started = time.monotonic()
    proc = subprocess.run([str(ROOT / "scripts" / "images"), "build"], capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    assert proc.returncode == 0, f"scripts/images build failed:\n{proc.stderr[-3000:]}"
    print(f"scripts/images build: {time.monotonic() - started:.1f}s")
    return images.plan()


def cache() -> Path:
    return images.cache_root() / "images"


def unpack(tar_path: Path, dest: Path) -> Path:
    """Apply every layer of a docker-archive in order (whiteouts honoured)."""
    with tarfile.open(tar_path) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer_name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer_name)) as layer:
                for member in layer.getmembers():
                    base = os.path.basename(member.name)
                    parent = dest / os.path.dirname(member.name)
                    if base == ".wh..wh..opq":
                        for child in parent.iterdir():
                            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() \
                                else child.unlink()
                    elif base.startswith(".wh."):
                        gone = parent / base[4:]
                        if gone.is_dir() and not gone.is_symlink():
                            shutil.rmtree(gone)
                        elif gone.exists() or gone.is_symlink():
                            gone.unlink()
                    else:
                        if not member.isdir() and (dest / member.name).is_symlink():
                            (dest / member.name).unlink()
                        layer.extract(member, dest, set_attrs=True, filter="fully_trusted")
    return dest


def chroot_argv(rootfs: Path, user: str, *argv: str) -> list[str]:
    """argv run as user in rootfs, with /proc and /dev (if it has them) in a private mount namespace
    (the mounts go away with the process)."""
    script = ('if [ -d "$1/proc" ]; then mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev"; fi '
              '&& root="$1" && user="$2" && shift 2 && exec chroot --userspec="$user" "$root" "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", script,
            "sh", str(rootfs), user, *argv]


def chroot(rootfs: Path, user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/opt/venv/bin:/opt/locust-operator/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp",
           "LANG": "C.UTF-8"}
    return subprocess.run(chroot_argv(rootfs, user, *argv), capture_output=True, text=True, env=env,
                          timeout=120)


def test_archives_are_well_formed(built: dict[str, images.Image]) -> None:
    for name, image in built.items():
        tar = image.tar(cache())
        assert tar.exists(), f"{name}: {tar} missing"
        archive = images.read_docker_archive(tar)
        (entry,) = archive["manifest"]
        # One tag, the reference users write as containerd stores it (docker.io/...).
        assert entry["RepoTags"] == [images.normalize_ref(image.ref)], name
        assert {entry["Config"], *entry["Layers"]} <= archive["names"], name
        config = archive["config"]
        assert config["os"] == "linux" and config["architecture"] == "amd64", name
        assert len(config["rootfs"]["diff_ids"]) == len(entry["Layers"]), name
        for key, value in EXPECTED[name].items():
            assert config["config"].get(key) == value, f"{name}: config {key}"
        size = tar.stat().st_size / 2**20
        print(f"{name:9} {image.ref:45} {size:6.0f} MiB  {len(entry['Layers'])} layer(s)")


def test_images_share_the_base_layer(built: dict[str, images.Image]) -> None:
    """containerd stores the base layer once for the Locust and operator images."""
    diff_ids = {n: images.read_docker_archive(built[n].tar(cache()))["config"]["rootfs"]["diff_ids"]
                for n in ("base", "locust", "operator")}
    assert diff_ids["locust"][0] == diff_ids["operator"][0] == diff_ids["base"][0]


def test_locust_image_runs_the_pinned_locust(built: dict[str, images.Image], tmp_path: Path) -> None:
    rootfs = unpack(built["locust"].tar(cache()), tmp_path / "rootfs")
    proc = chroot(rootfs, "1000:1000", "locust", "--version")
    assert proc.returncode == 0, proc.stderr
    version = read_versions()["LOCUST_VERSION"]
    assert f"locust {version} " in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    home = rootfs / "home" / "locust"
    assert (home.stat().st_uid, home.stat().st_gid) == (1000, 1000)
    # LocustTests mount their library ConfigMap at /opt/locust/lib (the CRD's
    # default libMountPath): nothing of the image may live there, or the mount
    # hides it (the venv's lib/ did: "No module named 'locust'" on the real node).
    assert not (rootfs / "opt" / "locust" / "lib").exists()
    assert (rootfs / "opt" / "venv" / "bin" / "locust").exists()


def test_operator_image_runs_the_operator(built: dict[str, images.Image], tmp_path: Path) -> None:
    rootfs = unpack(built["operator"].tar(cache()), tmp_path / "rootfs")
    proc = chroot(rootfs, "65532:65532", "locust-operator", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "run" in proc.stdout and "render" in proc.stdout, proc.stdout
    # The wheel's templates and CRD are in the image: render an example offline.
    example = rootfs / "tmp" / "minimal.yaml"
    shutil.copy(ROOT / "examples" / "minimal.yaml", example)
    proc = chroot(rootfs, "65532:65532", "locust-operator", "render", "/tmp/minimal.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "kind: Job" in proc.stdout


class _FakeMaster(http.server.BaseHTTPRequestHandler):
    body = json.dumps({
        "stats": [{"method": "GET", "name": "/items", "num_requests": 42, "num_failures": 2,
                   "avg_response_time": 12.5, "min_response_time": 1, "max_response_time": 99,
                   "current_rps": 7.5, "current_fail_per_sec": 0.5, "median_response_time": 11,
                   "avg_content_length": 100},
                  {"method": "", "name": "Aggregated", "num_requests": 42}],
        "errors": [{"method": "GET", "name": "/items", "error": 'HTTPError("503")', "occurrences": 2}],
        "state": "running", "user_count": 10, "fail_ratio": 0.047,
        "current_response_time_percentiles": {"response_time_percentile_0.5": 11,
                                              "response_time_percentile_0.95": 40},
        "workers": [{"id": "w1", "state": "running", "user_count": 5},
                    {"id": "w2", "state": "missing", "user_count": 5}],
    }).encode()

    def do_GET(self) -> None:
        status = 200 if self.path == "/stats/requests" else 404
        self.send_response(status)
        self.end_headers()
        self.wfile.write(self.body if status == 200 else b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_master() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeMaster)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_exporter_image_serves_metrics(built: dict[str, images.Image], tmp_path: Path,
                                       fake_master: int) -> None:
    """The static exporter from the image, as the sidecar runs it (env as rendered)."""
    rootfs = unpack(built["exporter"].tar(cache()), tmp_path / "rootfs")
    assert sorted(p.name for p in rootfs.iterdir()) == ["bin", "etc"]  # nothing but the binary
    port = free_port()
    env = {"LOCUST_EXPORTER_URI": f"http://127.0.0.1:{fake_master}",
           "LOCUST_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}"}
    # A static binary needs no /proc or /dev: plain chroot, so terminate() reaches it.
    proc = subprocess.Popen(["chroot", "--userspec=65534:65534", str(rootfs), "/bin/locust_exporter"],
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        text = ""
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    text = resp.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "locust_up 1" in text, text
        assert 'locust_requests_num_requests{method="GET",name="/items"} 42' in text
        assert 'locust_requests_current_rps{method="GET",name="/items"} 7.5' in text
        assert 'locust_errors{method="GET",name="/items",error="HTTPError(\\"503\\")"} 2' in text
        assert "locust_users 10" in text and "locust_running 2" in text
        assert "locust_workers_count 2" in text and "locust_workers_missing_count 1" in text
        assert 'locust_current_response_time_percentile{quantile="0.95"} 40' in text
        assert "Aggregated" not in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
