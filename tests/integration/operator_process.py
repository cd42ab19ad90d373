"""Run `locust-operator run` as a real process against the local control plane."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import free_port
from tests.integration.conftest import Cluster

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "charts" / "locust-operator" / "crds" / "locusttests.locust.io.yaml"



def install_crd(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/locusttests.locust.io")


class OperatorProcess:
    """One controller process, watching the given namespaces, logging to a file."""

    def __init__(self, cluster: Cluster, namespaces: list[str], workdir: Path,
                 config_text: str = "", env: dict[str, str] | None = None) -> None:
        self.cluster = cluster
        self.namespaces = namespaces
        self.workdir = workdir
        self.config_path = workdir / "operator-config.yaml"
        self.config_path.write_text(config_text)
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        self.log_path = workdir / "operator.log"

    def start(self, wait_ready: bool = True, **extra_env: str) -> OperatorProcess:
        self.liveness_port, self.metrics_port = free_port(), free_port()
        args = [sys.executable, "-m", "locust_operator", "run", "--config", str(self.config_path),
                "--liveness-port", str(self.liveness_port), "--metrics-port", str(self.metrics_port)]
        for namespace in self.namespaces:
            args += ["--namespace", namespace]
        env = {**self.cluster.env, **self.extra_env, **extra_env}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        if wait_ready:
            self.cluster.wait_for(self.healthy, timeout=60, what="operator liveness endpoint")
        return self

    def healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"operator exited early; log:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metric(self, name: str, labels: str = "") -> float:
        """Sum of a Prometheus metric's samples whose labels contain `labels`."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
            if match and labels in (match.group(1) or ""):
                total += float(match.group(2))
        return total
