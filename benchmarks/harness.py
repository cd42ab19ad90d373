"""Shared parts of the scale benchmark, the fault script and the fault tests.

- `Timeline`: watches a namespace's LocustTests, Jobs, Services and Pods and
  records when each thing was first seen (monotonic seconds): children
  created, master pod Ready, phase changes, Jobs finished.
- `Operator`: `locust-operator run` as a real process, with its RSS, CPU time
  and Prometheus counters.
- `create_all`: POST many objects with a bounded-concurrency async client (the
  same aiohttp stack and credentials the operator uses); the bare-client
  baseline creates the rendered children with it, the operator runs get their
  LocustTests with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import yaml
from kubernetes import client, config, watch
from tests.conftest import free_port

from locust_operator.api.contract import COMPONENT_LABEL, GROUP, MASTER, PLURAL, TEST_NAME_LABEL, VERSION
from locust_operator.controller.kube_api import KubeApi

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TERMINAL = ("Succeeded", "Failed")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Small requests, so thousands of kwok pods fit a few fake nodes.
BENCH_CONFIG = """\
statsPollSeconds: 0
resources:
  requests: {cpu: 10m, memory: 16Mi}
  limits: {cpu: 100m, memory: 64Mi}
metricsExporter:
  resources:
    requests: {cpu: 1m, memory: 8Mi}
    limits: {cpu: 10m, memory: 16Mi}
"""


def api_client() -> client.ApiClient:
    config.load_kube_config()
    return client.ApiClient()


def locust_test(name: str, namespace: str, workers: int = 2) -> dict[str, Any]:
    test: dict[str, Any] = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    test["metadata"] = {"name": name, "namespace": namespace}
    test["spec"]["worker"]["replicas"] = workers
    return test


def create_namespace(api: client.ApiClient, name: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # pods need the "default" ServiceAccount
        with contextlib.suppress(client.ApiException):
            core.read_namespaced_service_account("default", name)
            return
        time.sleep(0.2)
    raise TimeoutError(f"no default ServiceAccount in {name}")


def delete_namespace(api: client.ApiClient, name: str) -> None:
    """Delete a namespace, first releasing tests whose operator is already stopped
    (a live test keeps the operator's finalizer, which only a running operator removes)."""
    custom = client.CustomObjectsApi(api)
    with contextlib.suppress(client.ApiException):
        for test in custom.list_namespaced_custom_object(GROUP, VERSION, name, PLURAL)["items"]:
            if test["metadata"].get("finalizers"):
                custom.patch_namespaced_custom_object(GROUP, VERSION, name, PLURAL,
                                                      test["metadata"]["name"],
                                                      {"metadata": {"finalizers": None}})
    with contextlib.suppress(client.ApiException):
        client.CoreV1Api(api).delete_namespace(name)


# --- creating many objects --------------------------------------------------------------

def _login() -> kopf.ConnectionInfo:
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert info is not None, "no kubeconfig"
    return info


class _CrApi(KubeApi):
    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] != "LocustTest":
            return await super().create(obj)
        namespace = obj["metadata"]["namespace"]
        return await self._request("POST", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}",
                                   obj)


def create_all(groups: list[list[dict[str, Any]]], concurrency: int = 32) -> dict[str, float]:
    """Create each group's objects in order, groups concurrently; when each test's group was done."""
    async def main() -> dict[str, float]:
        api = _CrApi(_login, concurrency=concurrency, timeout=120)
        done: dict[str, float] = {}

        async def one(group: list[dict[str, Any]]) -> None:
            for obj in group:
                await api.create(obj)
            metadata = group[0]["metadata"]  # a LocustTest, or a test's first child
            done[(metadata.get("labels") or {}).get(TEST_NAME_LABEL, metadata["name"])] = time.monotonic()

        try:
            await asyncio.gather(*(one(g) for g in groups))
        finally:
            await api.close()
        return done

    return asyncio.run(main())


# --- what happened, and when -----------------------------------------------------------

@dataclass
class Timeline:
    """First-seen times (time.monotonic) of what happens to tests in one namespace."""

    namespace: str
    children: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    master_ready: dict[str, float] = field(default_factory=dict)
    jobs_done: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    phases: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    phase_sequence: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _watches: list[watch.Watch] = field(default_factory=list)
    _stopped: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, api: client.ApiClient) -> Timeline:
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        streams = [
            (batch.list_namespaced_job, (self.namespace,), self._job),
            (core.list_namespaced_service, (self.namespace,), self._service),
            (core.list_namespaced_pod, (self.namespace,), self._pod),
            (custom.list_namespaced_custom_object, (GROUP, VERSION, self.namespace, PLURAL), self._test),
        ]
        for fn, args, handler in streams:
            w = watch.Watch()
            self._watches.append(w)
            threading.Thread(target=self._run, args=(w, fn, args, handler), daemon=True).start()
        return self

    def _run(self, w: watch.Watch, fn: Any, args: tuple[Any, ...], handler: Any) -> None:
        # A watch also ends without an error (server timeout, a consumer deemed too
        # slow): watch again (from a fresh list) until stop().
        while not self._stopped:
            try:
                # Plain JSON, no client models: the benchmark must not eat the CPU it measures.
                for event in w.stream(fn, *args, timeout_seconds=3600, _request_timeout=3700,
                                      deserialize=False):
                    obj = event["object"]
                    with self._lock:
                        handler(event["type"], obj, time.monotonic())
            except Exception:  # an API server restart: watch again
                time.sleep(0.5)

    def stop(self) -> None:
        self._stopped = True
        for w in self._watches:
            w.stop()

    @staticmethod
    def _owner_test(obj: dict[str, Any]) -> str:
        return (obj["metadata"].get("labels") or {}).get(TEST_NAME_LABEL, "")

    def _job(self, kind: str, obj: dict[str, Any], now: float) -> None:
        test, name = self._owner_test(obj), obj["metadata"]["name"]
        if kind != "DELETED":
            self.children[test].setdefault(name, now)
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
                self.jobs_done[test].setdefault(name, now)

    def _service(self, kind: str, obj: dict[str, Any], now: float) -> None:
        if kind != "DELETED":
            self.children[self._owner_test(obj)].setdefault("service", now)

    def _pod(self, kind: str, obj: dict[str, Any], now: float) -> None:
        labels = obj["metadata"].get("labels") or {}
        if labels.get(COMPONENT_LABEL) != MASTER:
            return
        status = obj.get("status") or {}
        ready = status.get("phase") == "Running" and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready:
            self.master_ready.setdefault(labels.get(TEST_NAME_LABEL, ""), now)

    def _test(self, kind: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        phase = (obj.get("status") or {}).get("phase")
        if phase:
            self.phases[name].setdefault(phase, now)
            sequence = self.phase_sequence[name]
            if not sequence or sequence[-1] != phase:
                sequence.append(phase)

    # --- questions --------------------------------------------------------------------

    def with_children(self, names: list[str]) -> dict[str, float]:
        """When each test had its Service and both Jobs (the last of the three)."""
        with self._lock:
            return {n: max(self.children[n].values()) for n in names if len(self.children[n]) >= 3}

    def in_phase(self, names: list[str], phases: tuple[str, ...]) -> dict[str, float]:
        with self._lock:
            return {n: min(t for p, t in self.phases[n].items() if p in phases)
                    for n in names if any(p in phases for p in self.phases[n])}

    def master_finished(self, names: list[str]) -> dict[str, float]:
        """When each test's master Job finished (what ends the test)."""
        with self._lock:
            return {n: t for n in names for job, t in self.jobs_done[n].items()
                    if job.endswith(f"-{MASTER}")}

    def finished_jobs(self, names: list[str]) -> dict[str, float]:
        """When both Jobs of each test were finished (the later of the two)."""
        with self._lock:
            return {n: max(self.jobs_done[n].values()) for n in names if len(self.jobs_done[n]) >= 2}


def apiserver_writes(metrics: str) -> dict[str, float]:
    """POST/PATCH/PUT requests the API server counted, by resource[/subresource], all clients.

    `metrics` is the text of the API server's /metrics. DELETEs are left out: the
    namespace controller removes earlier tests meanwhile.
    """
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.index("}")].split(","))
        if labels.get("verb", "").strip('"') in ("POST", "PATCH", "PUT"):
            key = labels.get("resource", "").strip('"')
            sub = labels.get("subresource", '""').strip('"')
            key = f"{key}/{sub}" if sub else key
            counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def apiserver_metrics() -> str:
    return subprocess.run(["kubectl", "get", "--raw", "/metrics"], capture_output=True, text=True,
                          check=True).stdout


def wait_until(what: Any, timeout: float, interval: float = 0.25, description: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s: {description}")
        time.sleep(interval)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- the operator as a process ---------------------------------------------------------

class Operator:
    """`locust-operator run` watching some namespaces, as a real process."""

    def __init__(self, namespaces: list[str], workdir: Path, python: str = sys.executable,
                 config_text: str = BENCH_CONFIG, env: dict[str, str] | None = None) -> None:
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


@contextlib.contextmanager
def operated_namespace(api: client.ApiClient, prefix: str, workdir: Path, python: str = sys.executable
                       ) -> Iterator[tuple[str, Timeline, Operator]]:
    """A fresh namespace, a Timeline of it and an (unstarted) operator watching it; all
    stopped and deleted afterwards."""
    namespace = f"{prefix}-{secrets.token_hex(3)}"
    create_namespace(api, namespace)
    timeline = Timeline(namespace).start(api)
    operator = Operator([namespace], workdir, python=python)
    try:
        yield namespace, timeline, operator
    finally:
        operator.stop()
        timeline.stop()
        delete_namespace(api, namespace)
