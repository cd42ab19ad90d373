"""The local control plane as tests see it: `scripts/cluster` and a Cluster handle."""

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

REPO_ROOT = Path(__file__).resolve().parents[2]


CLUSTER_SCRIPT = REPO_ROOT / "scripts" / "cluster"
sys.path.insert(0, str(REPO_ROOT / "scripts"))
from versions import read_versions  # noqa: E402  (scripts/versions.py: the one parser)

T = TypeVar("T")


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


def cluster_script(*args: str, env: dict[str, str],
                   capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLUSTER_SCRIPT), *args],
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )


def cluster_env(kubeconfig: Path, bin_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kubeconfig)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def _namespace_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower())
    base = re.sub(r"-{2,}", "-", base).strip("-")
    if base.startswith("test-"):
        base = base[len("test-"):]
    suffix = secrets.token_hex(3)
    base = base[: 63 - len(suffix) - 4].strip("-") or "ns"
    return f"it-{base}-{suffix}"


@contextlib.contextmanager
def fresh_namespace(cluster: Cluster, test_name: str) -> Iterator[str]:
    """A new namespace named after the test, ready for pods; deleted (without waiting) after."""
    name = _namespace_name(test_name)
    cluster.kubectl("create", "namespace", name)
    try:
        # The ServiceAccount admission plugin rejects pods until the
        # serviceaccount controller has created "default".
        cluster.wait_for(
            lambda: cluster.kubectl("-n", name, "get", "serviceaccount", "default",
                                    check=False).returncode == 0,
            timeout=60, what=f"ServiceAccount {name}/default")
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
