"""The tests' in-cluster package index (tests/support/package_index.py), proved on loopback.

The same files the pod's ConfigMap mount holds are laid out in a temporary
directory and served by `python3 -m http.server`, as in the pod; real pip installs
from it. No network beyond loopback once the wheel cache is filled (the first run
downloads the pinned wheels from PyPI, hashes checked).
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest

from tests.support import package_index
from tests.support.ports import free_port

KUBERNETES_VERSION = "1.34.0"


@pytest.fixture(scope="module")
def wheels() -> list[Path]:
    return package_index.download_wheels()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "http.server exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def index(wheels: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The index URL of http.server serving the laid-out index on a loopback port."""
    root = package_index.write_index(tmp_path_factory.mktemp("index"), wheels)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/simple/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pip_install(index_url: str, target: Path, *packages: str) -> subprocess.CompletedProcess[str]:
    # No pip configuration of this machine (an extra index, a proxy) may take part.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                           "--no-cache-dir", "--target", str(target), "--index-url", index_url,
                           "--trusted-host", "127.0.0.1", *packages],
                          capture_output=True, text=True, env=env, timeout=120)


def test_pins_are_not_locust_dependencies() -> None:
    """A test that installs one of them must prove the index served it, not the image's venv."""
    names = {pin.name for pin in package_index.pins()}
    assert names == {"tabulate", "python-slugify", "text-unidecode"}
    proc = subprocess.run([sys.executable, "-m", "pip", "show", "locust"], capture_output=True, text=True)
    requires = next(line for line in proc.stdout.splitlines() if line.startswith("Requires:"))
    assert not names & {package_index.normalize(r) for r in requires.split(":")[1].replace(",", " ").split()}


def test_pip_installs_from_the_index(index: str, tmp_path: Path) -> None:
    proc = _pip_install(index, tmp_path / "t1", "tabulate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "t1" / "tabulate" / "__init__.py").exists()
    # A dependency is resolved through the same index.
    proc = _pip_install(index, tmp_path / "t2", "python-slugify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"slugify", "text_unidecode"} <= {p.name for p in (tmp_path / "t2").iterdir()}


def test_unknown_package_has_no_distribution(index: str, tmp_path: Path) -> None:
    proc = _pip_install(index, tmp_path / "t", "no-such-package-here")
    assert proc.returncode != 0
    assert "No matching distribution found for no-such-package-here" in proc.stderr


def test_objects_mount_the_same_files(wheels: list[Path]) -> None:
    """The ConfigMap's items put every file where write_index puts it, with the same bytes."""
    configmap, deployment, service = package_index.index_objects("load", wheels, image="img:1")
    files = package_index.index_files(wheels)
    pod = deployment["spec"]["template"]["spec"]
    items = pod["volumes"][0]["configMap"]["items"]
    assert sorted(i["path"] for i in items) == sorted(files)
    for item in items:
        if item["key"] in configmap["data"]:
            got = configmap["data"][item["key"]].encode()
        else:
            got = base64.b64decode(configmap["binaryData"][item["key"]])
        assert got == files[item["path"]], item
    assert "simple/tabulate/tabulate-0.9.0-py3-none-any.whl" in files
    (container,) = pod["containers"]
    assert container["image"] == "img:1" and container["imagePullPolicy"] == "IfNotPresent"
    assert container["command"][:3] == ["python3", "-m", "http.server"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert service["metadata"]["name"] == "pypi"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080}]
    assert package_index.index_url("load") == "http://pypi.load.svc.cluster.local/simple/"
    for obj in (configmap, deployment, service):
        assert obj["metadata"]["namespace"] == "load"
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_default_image_is_the_locust_image() -> None:
    assert package_index.locust_image().startswith("locustio/locust:2.")
