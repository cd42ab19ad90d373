"""A LocustTest run for real on the local control plane: kwok runs its pods, real Locust
processes on loopback do the work, and `ExitMirror` plays the kubelet's part when they exit.

The verdict and series tests share it (tests/integration/test_verdicts.py, test_series.py).
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from locust_operator.api.config import OperatorConfig
from tests.support.cluster import Cluster
from tests.support.examples import EXAMPLES, load_example
from tests.support.operator import OperatorProcess
from tests.support.real_locust import LocustRun, http_target, locust_run

STAY_RUNNING = {"pod-complete.stage.kwok.x-k8s.io/delay": "600s"}


class ExitMirror:
    """Writes the real Locust processes' exit into their pods' status (kwok has no kubelet)."""

    def __init__(self, cluster: Cluster, namespace: str, name: str, run: LocustRun) -> None:
        self.cluster, self.namespace, self.name, self.run = cluster, namespace, name, run
        self.mirrored: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _pods(self, role: str) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = self.cluster.kubectl_json(
            "-n", self.namespace, "get", "pods", "-l",
            f"performance-test-pod-name={self.name.replace('.', '-')}-{role}")["items"]
        return pods

    def terminate(self, pod: dict[str, Any], code: int) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        statuses = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                     "restartCount": 0, "started": False,
                     "state": {"terminated": {"exitCode": code,
                                              "reason": "Completed" if code == 0 else "Error",
                                              "startedAt": now, "finishedAt": now}}}
                    for c in pod["spec"]["containers"]]
        patch = {"status": {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": statuses,
                            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}]}}
        self.cluster.kubectl("-n", self.namespace, "patch", "pod", pod["metadata"]["name"],
                             "--subresource=status", "--type=merge", "-p", json.dumps(patch))
        self.mirrored[pod["metadata"]["name"]] = code

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            code = self.run.master.poll()
            if code is None:
                continue
            for pod in self._pods("master"):
                self.cluster.serve_pod_log(self.namespace, pod["metadata"]["name"],
                                           pod["spec"]["containers"][0]["name"],
                                           self.run.logs / "master.log")
                self.terminate(pod, code)
            for pod in self._pods("worker"):
                self.terminate(pod, 0)
            return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Case:
    cluster: Cluster
    namespace: str
    name: str
    run: LocustRun
    operator: OperatorProcess
    mirror: ExitMirror

    def test(self) -> dict[str, Any]:
        found: dict[str, Any] = self.cluster.kubectl_json("-n", self.namespace, "get", "locusttest",
                                                         self.name)
        return found

    def status(self) -> dict[str, Any]:
        return dict(self.test().get("status") or {})

    def wait_status(self, holds: Callable[[dict[str, Any]], bool], what: str,
                    timeout: float = 90) -> dict[str, Any]:
        """The first status for which `holds` is true."""
        def check() -> dict[str, Any] | None:
            status = self.status()
            return status if holds(status) else None
        found: dict[str, Any] = self.cluster.wait_for(check, timeout=timeout, what=f"{self.name}: {what}")
        return found

    def wait_phase(self, *phases: str, timeout: float = 90) -> dict[str, Any]:
        return self.wait_status(lambda s: s.get("phase") in phases, f"phase in {phases}", timeout)

    def get_columns(self, *extra: str) -> str:
        return self.cluster.kubectl("-n", self.namespace, "get", "lotest", self.name, *extra).stdout

    def configmap(self) -> dict[str, Any]:
        found: dict[str, Any] = self.cluster.kubectl_json("-n", self.namespace, "get", "configmap",
                                                         f"{self.name}-results")
        return found


def kept(configmap: dict[str, Any], key: str) -> str:
    if key in (configmap.get("data") or {}):
        return str(configmap["data"][key])
    return gzip.decompress(base64.b64decode(configmap["binaryData"][key + ".gz"])).decode()


@contextmanager
def real_test(cluster: Cluster, namespace: str, tmp_path: Path, name: str, *,
              spec: dict[str, Any] | None = None, latency_ms: int = 0, fail_every: int = 0,
              run_time: str = "5s", autoquit: int = 8, workers: int = 2,
              started_workers: int | None = None, worker_timeout: int = 600,
              labels: dict[str, str] | None = None, processes: int = 1,
              worker_resources: dict[str, Any] | None = None) -> Iterator[Case]:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "configmaps.yaml"))
    with http_target(latency_ms, fail_every) as target, locust_run(
            tmp_path, target, workers=workers, run_time=run_time, autoquit=autoquit,
            started_workers=started_workers, processes=processes,
            config=OperatorConfig(workerConnectTimeoutSeconds=worker_timeout)) as run:
        operator = OperatorProcess(cluster, [namespace], tmp_path, config_text=(
            "statsPollSeconds: 1\n"
            f"statsUrlTemplate: 'http://127.0.0.1:{run.web_port}/stats/requests'\n"))
        operator.start()
        manifest = load_example("minimal")
        manifest["metadata"]["name"] = name
        if labels:
            manifest["metadata"]["labels"] = dict(labels)
        manifest["spec"]["worker"]["replicas"] = workers
        if processes > 1:
            manifest["spec"]["worker"]["processes"] = processes
        if worker_resources:  # what the pods declare (kwok runs them; the processes are local)
            manifest["spec"]["worker"]["resources"] = worker_resources
        for role in ("master", "worker"):  # pods stay Running while the real processes work
            manifest["spec"][role]["annotations"] = dict(STAY_RUNNING)
        manifest["spec"].update(spec or {})
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
        mirror = ExitMirror(cluster, namespace, name, run)
        case = Case(cluster, namespace, name, run, operator, mirror)
        try:
            yield case
        finally:
            mirror.stop()
            operator.stop()
            print(f"--- operator log ---\n{operator.log()[-4000:]}")
            print(f"--- master log ---\n{run.master_log()[-2500:]}")


def master_state(run: LocustRun) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{run.web_port}/stats/requests", timeout=2) as response:
            state = json.load(response).get("state")
            return str(state) if state else None
    except (OSError, ValueError):
        return None


def cli(cluster: Cluster, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "locust_operator", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cluster.env)


def final_requests(run: LocustRun) -> int:
    """The request count Locust printed when it exited (its own final Aggregated row)."""
    rows = [line.split() for line in run.master_log().splitlines() if line.strip().startswith("Aggregated")]
    return int(rows[-1][-1])


