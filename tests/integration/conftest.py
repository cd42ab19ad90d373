"""Fixtures for integration tests against a local control plane.

The session-scoped ``cluster`` fixture runs ``scripts/cluster up`` once per
test session with its own ``CLUSTER_DIR`` (``.cluster/pytest-<pid>``) and
``scripts/cluster down`` at the end. When the pinned binaries are missing,
``up`` builds them first (a cold build takes tens of minutes); tests are never
skipped silently.

Set ``LOCUST_OPERATOR_REUSE_CLUSTER=1`` to use an already running cluster
instead (``KUBECONFIG`` if set, else ``$CLUSTER_DIR/kubeconfig``, by default
``.cluster/kubeconfig`` from ``scripts/cluster up``); it is then neither
started nor stopped.

Every test under ``tests/integration`` is marked ``integration``, so
``pytest -m "not integration"`` deselects them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import (
    CLUSTER_SCRIPT,
    REPO_ROOT,
    Cluster,
    cluster_env,
    cluster_script,
    fresh_namespace,
)

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: needs the local Kubernetes control plane (scripts/cluster); "
        "deselect with -m 'not integration'",
    )
    config.addinivalue_line(
        "markers",
        "real_node: needs a real node (scripts/cluster up --real-node: root, containerd, "
        "network namespaces); deselect with -m 'not real_node'",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _session_cluster(real_node: bool) -> Iterator[Cluster]:
    """A cluster for the session: `scripts/cluster up [--real-node]` with its own
    CLUSTER_DIR, brought down at the end; or, with LOCUST_OPERATOR_REUSE_CLUSTER=1,
    the given one (which must have the real node when asked). `up` failing (e.g. a
    missing kernel feature, named in its message) fails the tests: never a skip."""
    base_env = dict(os.environ)
    bin_dir = Path(cluster_script("bin-dir", env=base_env, capture=True).stdout.strip())
    if os.environ.get("LOCUST_OPERATOR_REUSE_CLUSTER") == "1":
        default_dir = Path(os.environ.get("CLUSTER_DIR") or REPO_ROOT / ".cluster")
        kubeconfig = Path(os.environ.get("KUBECONFIG") or default_dir / "kubeconfig")
        if not kubeconfig.is_file():
            pytest.fail(f"LOCUST_OPERATOR_REUSE_CLUSTER=1 but {kubeconfig} does not exist; "
                        "run scripts/cluster up (or unset it to start a cluster per session)")
        c = Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, env=cluster_env(kubeconfig, bin_dir),
                    cluster_dir=default_dir if real_node else None)
        c.kubectl("get", "--raw", "/readyz")
        if real_node and c.kubectl("get", "node", "real-node", check=False).returncode != 0:
            pytest.fail(f"LOCUST_OPERATOR_REUSE_CLUSTER=1 but the cluster of {kubeconfig} has no "
                        "real node; start it with scripts/cluster up --real-node")
        yield c
        return

    cluster_dir = REPO_ROOT / ".cluster" / f"pytest-{os.getpid()}{'-real' if real_node else ''}"
    env = dict(base_env, CLUSTER_DIR=str(cluster_dir))
    what = f"scripts/cluster up{' --real-node' if real_node else ''}"
    up = _up(cluster_dir, env, real_node)
    if up is not None and not real_node:
        # Seen once in CI: a kube-apiserver that exited at once, beside another
        # worker's cluster starting (a picked port taken before it bound, likely).
        # One more try with new ports, said in the output; a second failure fails.
        print(f"{what} failed once, trying again: {up}")
        up = _up(cluster_dir, env, real_node)
    if up is not None:
        pytest.fail(f"{what} failed: {up}")
    kubeconfig = cluster_dir / "kubeconfig"
    try:
        yield Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, env=cluster_env(kubeconfig, bin_dir),
                      cluster_dir=cluster_dir)
    finally:
        cluster_script("down", env=env)
        with contextlib.suppress(OSError):
            cluster_dir.parent.rmdir()  # .cluster/, only if nothing else is in it


def _up(cluster_dir: Path, env: dict[str, str], real_node: bool) -> str | None:
    """`scripts/cluster up`; None when it came up, else what went wrong (the cluster is down
    again, its logs kept beside it)."""
    # Builds the binaries first when they are missing.
    up = cluster_script("up", *(["--real-node"] if real_node else []), env=env, capture=True)
    if up.returncode == 0:
        return None
    kept = cluster_dir.with_name(f"{cluster_dir.name}-failed-{secrets.token_hex(2)}-logs")
    with contextlib.suppress(OSError):
        shutil.copytree(cluster_dir / "logs", kept)
    cluster_script("down", env=env)
    tail = "\n".join((up.stderr or "").splitlines()[-15:])
    return f"exit {up.returncode}; logs in {kept}\n{tail}"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The kwok cluster (fake nodes) of this session (of this xdist worker)."""
    yield from _session_cluster(real_node=False)


REAL_NODE_IMAGE = "locust-operator.local/realnode-tool:test"


@pytest.fixture(scope="session")
def real_node_cluster() -> Iterator[Cluster]:
    """A cluster with the machine's real node; separate from ``cluster`` so the kwok
    tests keep their untainted kwok nodes."""
    yield from _session_cluster(real_node=True)


@pytest.fixture(scope="session")
def real_node_image(real_node_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test image (``realnode_tool/``, one static Go binary), imported into
    the real node's containerd; pods use it with ``imagePullPolicy: Never``."""
    out = tmp_path_factory.mktemp("realnode-image")
    cache = Path(os.environ.get("LOCUST_OPERATOR_CACHE") or Path.home() / ".cache" / "locust-operator")
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod",
               GOCACHE=os.environ.get("LOCUST_OPERATOR_GOCACHE") or str(cache / "go-build"))
    subprocess.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "realnode-tool"), "."],
                   cwd=HERE / "realnode_tool", env=env, check=True)
    tar = out / "image.tar"
    subprocess.run(
        ["python3", str(REPO_ROOT / "scripts" / "images.py"), "archive", str(tar),
         "--tag", REAL_NODE_IMAGE, "--file", f"{out / 'realnode-tool'}:/realnode-tool:0755",
         "--entrypoint", "/realnode-tool"],
        check=True,
    )
    real_node_cluster.run(str(CLUSTER_SCRIPT), "import-image", str(tar),
                          env_extra={"CLUSTER_DIR": str(real_node_cluster.cluster_dir)})
    return REAL_NODE_IMAGE


@pytest.fixture
def real_node_namespace(real_node_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace on the real-node cluster, deleted (without waiting) afterwards."""
    with fresh_namespace(real_node_cluster, request.node.name) as name:
        yield name


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` for the cluster (admin credentials)."""
    from kubernetes import config as k8s_config

    client = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted (without waiting) afterwards."""
    with fresh_namespace(cluster, request.node.name) as name:
        yield name


@pytest.fixture
def tests_namespace(cluster: Cluster) -> Iterator[str]:
    """A second fresh namespace, for the LocustTests of a test whose `namespace`
    holds the operator (the chart tests); deleted (without waiting) afterwards."""
    name = f"it-tests-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
