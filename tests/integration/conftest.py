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
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CLUSTER_SCRIPT = REPO_ROOT / "scripts" / "cluster"

T = TypeVar("T")


sys.path.insert(0, str(REPO_ROOT / "scripts"))
from versions import read_versions  # noqa: E402  (scripts/versions.py: the one parser)


class CommandError(subprocess.CalledProcessError):
    """CalledProcessError whose message includes the command's output."""

    def __str__(self) -> str:
        return (
            f"{' '.join(map(str, self.cmd))} exited with {self.returncode}\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )


@dataclass
class Cluster:
    kubeconfig: Path
    bin_dir: Path
    env: dict[str, str]
    cluster_dir: Path | None = None  # None when reusing a cluster we did not start
    versions: dict[str, str] = field(default_factory=read_versions)

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
        env_extra: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command with the cluster's env (KUBECONFIG, PATH)."""
        proc = subprocess.run(
            [str(a) for a in args],
            input=input,
            capture_output=True,
            text=True,
            env={**self.env, **(env_extra or {})},
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            str(self.bin_dir / "kubectl"), *args, input=input, check=check, timeout=timeout
        )

    def kubectl_json(self, *args: str) -> Any:
        """``kubectl <args> -o json``, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def helm(self, *args: str, check: bool = True, timeout: float = 300):
        return self.run(str(self.bin_dir / "helm"), *args, check=check, timeout=timeout)

    def serve_pod_log(self, namespace: str, pod: str, container: str, path: Path | str) -> Path:
        """Make ``kubectl logs POD -c CONTAINER`` return the content of the text file ``path``.

        kwok, standing in for the kubelet, reads container-runtime (CRI) log
        files ("<time> stdout F <line>"), so this writes such a copy of ``path``
        beside it (``<path>.cri``, returned) and points the pod's kwok ``Logs``
        object (named like the pod) at it, keeping other containers' entries.
        Returns once the API server serves it (the pod must be scheduled).
        See docs/local-cluster.md, "Pod logs".
        """
        src = Path(path).resolve()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        *lines, last = src.read_bytes().split(b"\n")
        cri = b"".join(stamp + b" stdout F " + line + b"\n" for line in lines)
        if last:  # no final newline: a partial ("P") entry, served without one
            cri += stamp + b" stdout P " + last + b"\n"
        cri_path = src.with_name(src.name + ".cri")
        cri_path.write_bytes(cri)

        kind = "logs.kwok.x-k8s.io"
        found = self.kubectl("-n", namespace, "get", kind, pod, "-o", "json", "--ignore-not-found").stdout
        logs = json.loads(found)["spec"]["logs"] if found else []
        logs = [entry for entry in logs if entry.get("containers") != [container]]
        logs.append({"containers": [container], "logsFile": str(cri_path)})
        obj = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Logs",
            "metadata": {"name": pod, "namespace": namespace},
            "spec": {"logs": logs},
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))
        # kwok learns of the object through a watch: wait until it serves this file.
        self.wait_for(
            lambda: self.kubectl("-n", namespace, "logs", pod, "-c", container).stdout == src.read_text(),
            timeout=30,
            what=f"kwok to serve {src} as the log of {namespace}/{pod} container {container}",
        )
        return cri_path

    @staticmethod
    def wait_for(
        fn: Callable[[], T],
        *,
        timeout: float = 120,
        interval: float = 0.5,
        what: str = "condition",
    ) -> T:
        """Poll ``fn`` until it returns a truthy value; return that value.

        Timeouts are generous on purpose: tests must not depend on machine speed.
        """
        deadline = time.monotonic() + timeout
        last_exc: Exception | None = None
        while True:
            try:
                value = fn()
                if value:
                    return value
            except (subprocess.CalledProcessError, KeyError, IndexError, ValueError) as exc:
                last_exc = exc
            if time.monotonic() >= deadline:
                detail = f"; last error: {last_exc}" if last_exc else ""
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}{detail}")
            time.sleep(interval)


def _script(*args: str, env: dict[str, str], capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLUSTER_SCRIPT), *args],
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )


def _cluster_env(kubeconfig: Path, bin_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kubeconfig)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


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


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    base_env = dict(os.environ)
    bin_dir = Path(_script("bin-dir", env=base_env, capture=True).stdout.strip())

    if os.environ.get("LOCUST_OPERATOR_REUSE_CLUSTER") == "1":
        default_dir = Path(os.environ.get("CLUSTER_DIR") or REPO_ROOT / ".cluster")
        kubeconfig = Path(os.environ.get("KUBECONFIG") or default_dir / "kubeconfig")
        if not kubeconfig.is_file():
            pytest.fail(
                f"LOCUST_OPERATOR_REUSE_CLUSTER=1 but {kubeconfig} does not exist; "
                "run scripts/cluster up (or unset it to start a cluster per session)"
            )
        c = Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, env=_cluster_env(kubeconfig, bin_dir))
        c.kubectl("get", "--raw", "/readyz")
        yield c
        return

    cluster_dir = REPO_ROOT / ".cluster" / f"pytest-{os.getpid()}"
    env = dict(base_env, CLUSTER_DIR=str(cluster_dir))
    # Builds the binaries first when they are missing (output shown with -s).
    up = _script("up", env=env)
    if up.returncode != 0:
        _script("down", env=env)
        pytest.fail(f"scripts/cluster up failed (exit {up.returncode}); see {cluster_dir}/logs")
    kubeconfig = cluster_dir / "kubeconfig"
    try:
        yield Cluster(
            kubeconfig=kubeconfig,
            bin_dir=bin_dir,
            env=_cluster_env(kubeconfig, bin_dir),
            cluster_dir=cluster_dir,
        )
    finally:
        _script("down", env=env)
        with contextlib.suppress(OSError):
            cluster_dir.parent.rmdir()  # .cluster/, only if nothing else is in it


REAL_NODE_IMAGE = "locust-operator.local/realnode-tool:test"


@pytest.fixture(scope="session")
def real_node_cluster() -> Iterator[Cluster]:
    """A cluster started with ``scripts/cluster up --real-node`` (its own
    ``CLUSTER_DIR``, ``.cluster/pytest-<pid>-real``), brought down at the end.

    Separate from ``cluster``: the kwok tests keep their untainted kwok nodes.
    With ``LOCUST_OPERATOR_REUSE_CLUSTER=1`` the given cluster is used and must
    have the real node. ``up`` failing (e.g. a missing kernel feature, named in
    its message) fails the tests: never a skip.
    """
    base_env = dict(os.environ)
    bin_dir = Path(_script("bin-dir", env=base_env, capture=True).stdout.strip())
    if os.environ.get("LOCUST_OPERATOR_REUSE_CLUSTER") == "1":
        default_dir = Path(os.environ.get("CLUSTER_DIR") or REPO_ROOT / ".cluster")
        kubeconfig = Path(os.environ.get("KUBECONFIG") or default_dir / "kubeconfig")
        c = Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, env=_cluster_env(kubeconfig, bin_dir),
                    cluster_dir=default_dir)
        if c.kubectl("get", "node", "real-node", check=False).returncode != 0:
            pytest.fail(
                f"LOCUST_OPERATOR_REUSE_CLUSTER=1 but the cluster of {kubeconfig} has no real node; "
                "start it with scripts/cluster up --real-node"
            )
        yield c
        return

    cluster_dir = REPO_ROOT / ".cluster" / f"pytest-{os.getpid()}-real"
    env = dict(base_env, CLUSTER_DIR=str(cluster_dir))
    up = _script("up", "--real-node", env=env, capture=True)
    if up.returncode != 0:
        _script("down", env=env)
        tail = "\n".join(up.stderr.splitlines()[-15:])
        pytest.fail(f"scripts/cluster up --real-node failed (exit {up.returncode}):\n{tail}")
    kubeconfig = cluster_dir / "kubeconfig"
    try:
        yield Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, env=_cluster_env(kubeconfig, bin_dir),
                      cluster_dir=cluster_dir)
    finally:
        _script("down", env=env)
        with contextlib.suppress(OSError):
            cluster_dir.parent.rmdir()


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
    c = real_node_cluster
    name = _namespace_name(request.node.name)
    c.kubectl("create", "namespace", name)
    try:
        c.wait_for(
            lambda: c.kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
            timeout=60,
            what=f"ServiceAccount {name}/default",
        )
        yield name
    finally:
        c.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` for the cluster (admin credentials)."""
    from kubernetes import config as k8s_config

    client = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client
    finally:
        client.close()


def _namespace_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower())
    base = re.sub(r"-{2,}", "-", base).strip("-")
    if base.startswith("test-"):
        base = base[len("test-"):]
    suffix = secrets.token_hex(3)
    base = base[: 63 - len(suffix) - 4].strip("-") or "ns"
    return f"it-{base}-{suffix}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted (without waiting) afterwards."""
    name = _namespace_name(request.node.name)
    cluster.kubectl("create", "namespace", name)
    try:
        # The ServiceAccount admission plugin rejects pods until the
        # serviceaccount controller has created "default".
        cluster.wait_for(
            lambda: cluster.kubectl(
                "-n", name, "get", "serviceaccount", "default", check=False
            ).returncode == 0,
            timeout=60,
            what=f"ServiceAccount {name}/default",
        )
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def tests_namespace(cluster: Cluster) -> Iterator[str]:
    """A second fresh namespace, for the LocustTests of a test whose `namespace`
    holds the operator (the chart tests); deleted (without waiting) afterwards."""
    name = f"it-tests-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
