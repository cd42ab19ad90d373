"""`locust-operator run` as a real process (tests and benchmarks), with its RSS, CPU time
and Prometheus counters; the CRD installed into a test cluster."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.cluster import Cluster
from tests.support.examples import ROOT
from tests.support.ports import free_port

CRDS = ROOT / "charts" / "locust-operator" / "crds"
CRD = CRDS / "locusttests.locust.io.yaml"

CLK_TCK = os.sysconf("SC_CLK_TCK")


def wait_until(what: Any, timeout: float, interval: float = 0.25, description: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s: {description}")
        time.sleep(interval)


class Operator:
    """`locust-operator run` watching some namespaces, as a real process."""

    def __init__(self, namespaces: list[str], workdir: Path, python: str = sys.executable,
                 config_text: str = "", env: dict[str, str] | None = None) -> None:
        self.namespaces = namespaces
        self.python = python
        self.workdir = workdir
        self.config_path = workdir / "operator-config.yaml"
        self.config_path.write_text(config_text)
        self.log_path = workdir / "operator.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.peak_rss = 0.0
        self._sampling = False

    def start(self, **extra_env: str) -> Operator:
        """Start the process; `extra_env` applies to this start only (e.g. a failpoint)."""
        self.metrics_port, self.liveness_port = free_port(), free_port()
        args = [self.python, "-m", "locust_operator", "run", "--config", str(self.config_path),
                "--metrics-port", str(self.metrics_port), "--liveness-port", str(self.liveness_port)]
        for namespace in self.namespaces:
            args += ["--namespace", namespace]
        log = self.log_path.open("ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     env={**self.env, **extra_env}, cwd=ROOT)
        return self

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the operator exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1):
                return True
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds from start until the liveness endpoint answered (Kopf is watching)."""
        wait_until(self.healthy, timeout, interval=0.02, description="operator /healthz")
        return time.monotonic() - self.started

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    @contextlib.contextmanager
    def sampling_rss(self, interval: float = 0.25) -> Iterator[None]:
        self.peak_rss, self._sampling = self.rss_mib(), True

        def sample() -> None:
            while self._sampling:
                with contextlib.suppress(OSError):
                    self.peak_rss = max(self.peak_rss, self.rss_mib())
                time.sleep(interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._sampling = False
            thread.join()

    def metric(self, name: str, labels: str = "") -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
            if match and labels in (match.group(1) or ""):
                total += float(match.group(2))
        return total

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a node dies."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

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


def install_crd(cluster: Cluster) -> None:
    """Both CRDs (LocustTest, LocustTestSchedule): the operator watches both kinds."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    # Not `kubectl wait`: it errors out when a new CRD has no conditions yet.
    for crd in ("locusttests.locust.io", "locusttestschedules.locust.io"):
        cluster.wait_for(lambda crd=crd: cluster.kubectl(
            "get", f"crd/{crd}", "-o",
            "jsonpath={.status.conditions[?(@.type=='Established')].status}").stdout == "True",
            timeout=60, what=f"the CRD {crd} established")


class OperatorProcess(Operator):
    """One controller process against the test cluster, watching the given namespaces."""

    def __init__(self, cluster: Cluster, namespaces: list[str], workdir: Path,
                 config_text: str = "", env: dict[str, str] | None = None) -> None:
        super().__init__(namespaces, workdir, config_text=config_text,
                         env={**cluster.env, **(env or {})})
        self.cluster = cluster

    def start(self, wait_ready: bool = True, **extra_env: str) -> OperatorProcess:
        super().start(**extra_env)
        if wait_ready:
            self.cluster.wait_for(self.healthy, timeout=60, what="operator liveness endpoint")
        return self

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)
