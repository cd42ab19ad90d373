"""An in-cluster PEP 503 package index for tests whose pods `pip install` with no internet.

The wheels are pinned with their sha256 in tests/support/index_wheels.txt and
downloaded once on the host (`download_wheels`, into the cache); `index_objects`
turns them into a ConfigMap, a Deployment serving it with `python3 -m http.server`
from the Locust image (already on the node) and a Service `pypi` on port 80:

    pip install --index-url http://pypi.<ns>.svc.cluster.local/simple/ \\
        --trusted-host pypi.<ns>.svc.cluster.local tabulate

`index_files` is the one description of the index's files: the ConfigMap's items
put them at the same paths `write_index` writes on the host, so a loopback test of
the directory (tests/unit/test_package_index.py) tests what the pod serves.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.probes import serving_once_up

REPO_ROOT = Path(__file__).resolve().parents[2]
WHEELS_FILE = Path(__file__).with_name("index_wheels.txt")
NAME = "pypi"  # the Service, Deployment and ConfigMap (pypi-index)
PORT = 8080  # http.server in the pod; the Service's port is 80
MOUNT = "/srv/index"
# A ConfigMap holds at most 1 MiB (data and binaryData together).
CONFIGMAP_LIMIT = 1 << 20


@dataclasses.dataclass(frozen=True)
class Pin:
    """One requirement of index_wheels.txt: name==version --hash=sha256:..."""

    name: str
    version: str
    sha256: str


def normalize(name: str) -> str:
    """PEP 503's normalized project name: the directory pip asks for under /simple/."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path = WHEELS_FILE) -> list[Pin]:
    """The pinned wheels (requirements format, one --hash each, backslash continuations)."""
    uncommented = "\n".join(re.sub(r"(^|\s)#.*", "", raw) for raw in path.read_text().splitlines())
    out = []
    for line in re.sub(r"\\\n", " ", uncommented).splitlines():
        line = line.strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", line)
        if not match:
            raise ValueError(f"{path}: not `name==version --hash=sha256:<hex>`: {line!r}")
        out.append(Pin(*match.groups()))
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wheel_cache(path: Path = WHEELS_FILE) -> Path:
    """The cache directory of this wheel list: keyed by the list's hash, so a changed pin
    downloads into a new directory and never mixes with the old wheels."""
    root = Path(os.environ.get("LOCUST_OPERATOR_CACHE", Path.home() / ".cache" / "locust-operator"))
    return root / "index-wheels" / hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def download_wheels(path: Path = WHEELS_FILE, cache: Path | None = None) -> list[Path]:
    """The pinned wheels, from the cache, else downloaded from PyPI with pip (hashes checked).

    Download goes to a temporary directory renamed into place, so an interrupted or
    concurrent download never leaves a partial cache. Returns the wheels in pin order.
    """
    cache = cache or wheel_cache(path)
    wanted = pins(path)
    if not _cached(cache, wanted):
        tmp = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--only-binary=:all:", "--require-hashes", "--dest", str(tmp),
                        "-r", str(path)], check=True)
        if not _cached(tmp, wanted):
            raise RuntimeError(f"pip download into {tmp} did not give the wheels of {path}")
        cache.parent.mkdir(parents=True, exist_ok=True)
        if cache.exists() and not _cached(cache, wanted):  # a damaged cache: replaced
            shutil.rmtree(cache)
        try:
            tmp.rename(cache)
        except OSError:  # another process filled it first
            shutil.rmtree(tmp, ignore_errors=True)
    by_hash = {_sha256(p): p for p in cache.glob("*.whl")}
    return [by_hash[pin.sha256] for pin in wanted]


def _cached(cache: Path, wanted: Sequence[Pin]) -> bool:
    if not cache.is_dir():
        return False
    have = {_sha256(p) for p in cache.glob("*.whl")}
    return all(pin.sha256 in have for pin in wanted)


def _wheel_project(wheel: Path) -> str:
    """The normalized project of a wheel file (its name up to the first `-`)."""
    return normalize(wheel.name.split("-", 1)[0])


def index_files(wheels: Sequence[Path]) -> dict[str, bytes]:
    """Every file of the index by its path: the wheels at simple/<project>/<wheel> and, as
    PEP 503 pages, simple/index.html and simple/<project>/index.html (links with a
    #sha256= fragment, which pip checks)."""
    files: dict[str, bytes] = {}
    projects: dict[str, list[Path]] = {}
    for wheel in wheels:
        projects.setdefault(_wheel_project(wheel), []).append(wheel)
    for project, project_wheels in sorted(projects.items()):
        links = []
        for wheel in sorted(project_wheels):
            files[f"simple/{project}/{wheel.name}"] = wheel.read_bytes()
            links.append(f'<a href="{html.escape(wheel.name)}#sha256={_sha256(wheel)}">'
                         f"{html.escape(wheel.name)}</a>")
        files[f"simple/{project}/index.html"] = _page(f"Links for {project}", links)
    files["simple/index.html"] = _page("Simple index", [f'<a href="{p}/">{p}</a>' for p in sorted(projects)])
    return files


def _page(title: str, links: Sequence[str]) -> bytes:
    body = "<br>\n".join(links)
    return (f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n"
            f"<body><h1>{title}</h1>\n{body}\n</body></html>\n").encode()


def write_index(root: Path, wheels: Sequence[Path]) -> Path:
    """Lay the index out under root as the pod's mount does; returns root."""
    for rel, data in index_files(wheels).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _key(rel: str) -> str:
    """A ConfigMap key for a path (keys allow [-._a-zA-Z0-9]; the items give the path back)."""
    return rel.replace("/", "_")


def locust_image() -> str:
    """locustio/locust:<LOCUST_VERSION>: the image scripts/images builds and the node already has."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from versions import read_versions

    return f"locustio/locust:{read_versions()['LOCUST_VERSION']}"


def index_url(namespace: str) -> str:
    """The --index-url of the in-cluster index (the Service's port 80)."""
    return f"http://{index_host(namespace)}/simple/"


def index_host(namespace: str) -> str:
    """The --trusted-host of the in-cluster index (plain http)."""
    return f"{NAME}.{namespace}.svc.cluster.local"


def index_configmap(namespace: str, files: Mapping[str, bytes]) -> dict[str, Any]:
    """The ConfigMap `pypi-index`: HTML pages as data, wheels as binaryData, keyed by _key."""
    size = sum(len(v) for v in files.values())
    if size > CONFIGMAP_LIMIT or len({_key(r) for r in files}) != len(files):
        raise ValueError(f"index files do not fit one ConfigMap ({size} bytes, or colliding keys)")
    data = {_key(r): v.decode() for r, v in sorted(files.items()) if r.endswith(".html")}
    binary = {_key(r): base64.b64encode(v).decode() for r, v in sorted(files.items())
              if not r.endswith(".html")}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{NAME}-index", "namespace": namespace},
            "data": data, "binaryData": binary}


def hardened(container: dict[str, Any]) -> dict[str, Any]:
    """A container with the restricted Pod Security Standard's settings (and a read-only root)."""
    return {**container, "securityContext": {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}}}


def index_objects(namespace: str, wheels: Sequence[Path], image: str | None = None) -> list[dict[str, Any]]:
    """ConfigMap pypi-index, Deployment pypi (http.server on 8080, ready once /simple/ answers)
    and Service pypi (80 -> 8080), all in namespace: kubectl apply input."""
    files = index_files(wheels)
    labels = {"app": NAME}
    container = hardened({
        "name": "index", "image": image or locust_image(), "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "-m", "http.server", str(PORT), "--directory", MOUNT],
        "ports": [{"name": "http", "containerPort": PORT}],
        **serving_once_up("/simple/", PORT),
        "volumeMounts": [{"name": "index", "mountPath": MOUNT, "readOnly": True}],
    })
    items = [{"key": _key(rel), "path": rel} for rel in sorted(files)]
    pod_spec = {"containers": [container], "terminationGracePeriodSeconds": 1,
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "volumes": [{"name": "index", "configMap": {"name": f"{NAME}-index", "items": items}}]}
    return [
        index_configmap(namespace, files),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME, "namespace": namespace},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": pod_spec}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "namespace": namespace},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": PORT}]}},
    ]
