"""End to end on the real node: the chart's operator image runs the tests' pods for real.

`helm install` of the chart with the operator image built here (`scripts/images`,
the chart's default reference, imagePullPolicy IfNotPresent): the operator runs
in-cluster as the chart's Deployment under its ServiceAccount and RBAC. A small
HTTP target runs in the cluster, and LocustTests run with real Locust masters
and workers (containerd + runc), the exporter sidecar, the kubelet's real pod
statuses (nothing is patched), the master's REST API read through its Service.

The scenarios run at once (one namespace, different names) to keep the module
short: pass (3 workers, 20 s), request errors, a threshold breach, abort, a
missing ConfigMap, a missing image; `locust-operator wait` follows the pass and
the breach. Then a LocustTestSchedule makes a run a minute against its own
target, which is made slower before the third run: that run is Regressed, and
`history -o html` shows it in a headless Chromium (tests/support/real_series.py).
Uses the session's real-node cluster (`real_node_cluster`).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from locust_operator.api.times import parse_timestamp
from tests.support import browser, cdp
from tests.support.probes import serving_once_up
from tests.support.real_operator import install_operator
from tests.support.real_series import SCHEDULE, SLOW_DELAY_MS, schedule, series_objects, slow_target
from tests.support.real_series import TARGET as SERIES_TARGET

from .conftest import REPO_ROOT, Cluster

pytestmark = pytest.mark.real_node

CHART = REPO_ROOT / "charts" / "locust-operator"
RELEASE = "lo-e2e"
FULLNAME = f"{RELEASE}-locust-operator"
LOCUST_IMAGE = "locustio/locust:{version}"
GRACE = 15  # config.podHealthGraceSeconds of the test release

TARGET = """
import http.server
import time


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/fail"):
            code, body = 500, b"failing on purpose\\n"
        else:
            if self.path.startswith("/slow"):
                time.sleep(0.3)
            code, body = 200, b"ok\\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # socketserver's default backlog is 5: on a loaded node, connections beyond it
    # are refused and show up as request failures of the tests.
    request_queue_size = 256
    daemon_threads = True


Server(("", 8080), Handler).serve_forever()
"""

LOCUSTFILES = {
    # Imports its paths from the lib ConfigMap (spec.testFiles.libConfigMapRef), both ways
    # users write it (no sys.path line: the operator puts the lib on PYTHONPATH).
    "main.py": """
from e2e_paths import PATHS
from lib.e2e_paths import PATHS as SAME_PATHS

assert PATHS == SAME_PATHS
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.1)

    @task
    def visit(self):
        for path in PATHS:
            self.client.get(path)
""",
    "fail.py": """
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.2)

    @task
    def visit(self):
        self.client.get("/fail")
""",
    # A hostile tenant: on the master, /stats/requests answers a body that never ends
    # (bounded in count, far past the operator's 1 MiB cap); the load itself is normal.
    "hostile.py": """
from flask import Response, request
from locust import HttpUser, constant, events, task
from locust.runners import MasterRunner


@events.init.add_listener
def serve_hostile_stats(environment, web_ui=None, **kwargs):
    if not isinstance(environment.runner, MasterRunner) or web_ui is None:
        return

    def endless():
        yield b'{"stats": ['
        for _ in range(2_000_000):
            yield b'{"name": "/", "num_requests": 1},' * 64

    @web_ui.app.before_request
    def hostile():
        if request.path == "/stats/requests":
            return Response(endless(), mimetype="application/json")
        return None


class Visitor(HttpUser):
    wait_time = constant(0.2)

    @task
    def visit(self):
        self.client.get("/")
""",
    "slow.py": """
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.1)

    @task
    def visit(self):
        self.client.get("/slow")
""",
}


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def target_objects(image: str) -> list[dict[str, Any]]:
    labels = {"app": "target"}
    container = {
        "name": "target", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "/srv/target.py"], "ports": [{"containerPort": 8080}],
        **serving_once_up("/", 8080),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "script", "mountPath": "/srv"}],
    }
    return [
        configmap("target-script", {"target.py": TARGET}),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "target"},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000},
                      "terminationGracePeriodSeconds": 1,
                      "containers": [container],
                      "volumes": [{"name": "script", "configMap": {"name": "target-script"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "target"},
         "spec": {"selector": labels, "ports": [{"port": 8080, "targetPort": 8080}]}},
    ]


def locusttest(name: str, image: str, locustfile: str, run_time: str, workers: int = 1, users: int = 2,
               configmap_ref: str = "e2e-locustfiles", **spec: Any) -> dict[str, Any]:
    files = f"/lotest/src/{locustfile}"
    return {
        "apiVersion": "locust.io/v2", "kind": "LocustTest", "metadata": {"name": name},
        "spec": {
            "image": image,
            "master": {"command": f"--locustfile {files} --host http://target:8080 -u {users} -r {users} "
                                  f"--run-time {run_time}",
                       # 20 s: the operator reads the final results over ~5 s once Locust
                       # stopped; with 8 s a loaded node missed that window (then the log).
                       "autoquit": {"timeout": 20}},
            "worker": {"command": f"--locustfile {files}", "replicas": workers},
            "testFiles": {"configMapRef": configmap_ref, "libConfigMapRef": "e2e-lib"},
            **spec,
        },
    }


MEASUREMENTS = REPO_ROOT / ".cluster" / "e2e-measurements.txt"
# The history page of the scheduled series and its screenshot, kept after the run.
SCREENSHOTS = REPO_ROOT / ".cluster" / "screenshots"


def _measured(line: str) -> None:
    """Numbers for docs/benchmarks.md, kept where a parallel run's output does not lose them."""
    MEASUREMENTS.parent.mkdir(exist_ok=True)
    with MEASUREMENTS.open("a") as out:
        out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


# webUI.keepAfterRun of the interactive test: seconds its master stays up after the run.
KEEP_UI = 20


def interactive(image: str) -> dict[str, Any]:
    """Started by pressing Start in its web UI (autostart false), served under spec.webUI's
    base path with an Ingress (no ingress controller runs here: the object is checked), its
    master kept up KEEP_UI seconds after the run. --run-time 1m bounds a run nobody stops."""
    test = locusttest("interactive", image, "main.py", "1m",
                      webUI={"ingress": {"host": "locust.e2e.test"}, "keepAfterRun": KEEP_UI})
    test["spec"]["master"]["autostart"] = False
    return test


def too_big(image: str) -> dict[str, Any]:
    """More workers than fit: each asks for more CPU than the node has, so none is
    scheduled; the master runs and waits for them (the case of a node that fits 6 of 10)."""
    test = locusttest("toobig", image, "main.py", "10s", workers=2)
    test["spec"]["worker"]["resources"] = {"requests": {"cpu": "3", "memory": "64Mi"},
                                           "limits": {"cpu": "3", "memory": "256Mi"}}
    return test


@dataclass
class E2E:
    cluster: Cluster
    operator_ns: str
    ns: str
    started: float
    watch_log: Path
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    image: str = ""

    def lotest(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.cluster.kubectl_json("-n", self.ns, "get", "lotest", name)
        return found

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.lotest(name).get("status") or {}
        return status

    def terminal(self, name: str, timeout: float = 180) -> dict[str, Any]:
        status: dict[str, Any] = self.cluster.wait_for(
            lambda: (s := self.status(name)).get("phase") in ("Succeeded", "Failed") and s,
            timeout=timeout, interval=1, what=f"LocustTest {name} to end")
        print(f"[{time.monotonic() - self.started:5.1f}s] {name}: {status['phase']} "
              f"{status.get('verdict')}")
        return status

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        return next(c for c in self.status(name).get("conditions", []) if c["type"] == kind)

    def raw(self, path: str) -> str:
        return self.cluster.kubectl("get", "--raw", path).stdout

    def pods(self, selector: str, ns: str | None = None) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = self.cluster.kubectl_json(
            "-n", ns or self.ns, "get", "pods", "-l", selector)["items"]
        return pods

    def stopped(self, name: str, timeout: float = 45) -> float:
        """Seconds from the verdict (seen now) until no pod of the test runs or waits to.

        Pods that exited stay (keepFailedPods, the Job's record); running and pending ones
        must end: their Jobs' deadline passes at once (condition JobsStopped)."""
        start = time.monotonic()

        def live() -> list[str]:
            return [f"{p['metadata']['name']} {p['status'].get('phase')}"
                    for p in self.pods(f"performance-test-name={name}")
                    if p["status"].get("phase") not in ("Succeeded", "Failed")]

        self.cluster.wait_for(lambda: not live(), timeout=timeout, interval=0.5,
                              what=f"no running or pending pod of {name}")
        seconds = time.monotonic() - start
        jobs = self.cluster.kubectl_json("-n", self.ns, "get", "jobs", "-l",
                                         f"performance-test-name={name}")["items"]
        assert all(not j["status"].get("active") for j in jobs), [j["status"] for j in jobs]
        line = f"{name}: no pod running or pending {seconds:.1f}s after the verdict was seen"
        print(f"[{time.monotonic() - self.started:5.1f}s] {line}")
        _measured(line)
        return seconds


def _wait_cli(cluster: Cluster, ns: str, name: str) -> subprocess.Popen[str]:
    """`python -m locust_operator wait NAME -n NS --timeout 3m`, with the admin kubeconfig."""
    env = {**cluster.env, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT / "controller"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.Popen([sys.executable, "-m", "locust_operator", "wait", name, "-n", ns,
                             "--timeout", "3m"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def e2e(real_node_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    c = real_node_cluster
    started = time.monotonic()
    # The four images (built here, cached), into the node's containerd.
    assert c.cluster_dir is not None
    c.run(str(REPO_ROOT / "scripts" / "images"), "import", "--address",
          str(c.cluster_dir / "realnode" / "containerd.sock"), timeout=1800)
    print(f"\n[{time.monotonic() - started:5.1f}s] images imported")
    suffix = secrets.token_hex(3)
    operator_ns, ns = f"e2e-operator-{suffix}", f"e2e-tests-{suffix}"
    for name in (operator_ns, ns):
        c.kubectl("create", "namespace", name)
    image = LOCUST_IMAGE.format(version=c.versions["LOCUST_VERSION"])
    watch_log = tmp_path_factory.mktemp("e2e") / "watch.txt"
    env = E2E(c, operator_ns, ns, started, watch_log)
    try:
        c.wait_for(lambda: c.kubectl("-n", ns, "get", "serviceaccount", "default", check=False)
                   .returncode == 0, timeout=60, what="ServiceAccount default")
        objects = [*target_objects(image), configmap("e2e-locustfiles", LOCUSTFILES),
                   configmap("e2e-lib", {"e2e_paths.py": 'PATHS = ["/", "/health"]\n'})]
        c.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                   "items": objects}))
        # config.webRoutes: the interactive test's Ingress, made under the chart's RBAC.
        install_operator(c, RELEASE, operator_ns, ns, GRACE, "--set", "config.webRoutes=true")
        c.run(str(c.bin_dir / "kubectl"), "-n", ns, "rollout", "status", "deployment/target",
              "--timeout=90s", timeout=100)
        print(f"[{time.monotonic() - started:5.1f}s] operator installed, target ready")

        watch = open(watch_log, "w")  # noqa: SIM115 (closed below, after the process)
        env.procs["watch"] = subprocess.Popen(
            # The whole namespace: `get lotest pass -w` would fail before pass exists.
            [str(c.bin_dir / "kubectl"), "-n", ns, "get", "lotest", "-w"],
            env=c.env, stdout=watch, stderr=subprocess.STDOUT, text=True)
        tests = [
            locusttest("pass", image, "main.py", "20s", workers=3, users=6),
            locusttest("errors", image, "fail.py", "10s"),
            locusttest("breach", image, "slow.py", "10s",
                       thresholds={"responseTimeMs": {"p95": 100}, "maxFailRatio": "0.01"}),
            locusttest("abort", image, "main.py", "3m"),
            locusttest("no-configmap", image, "main.py", "10s", configmap_ref="e2e-missing"),
            locusttest("no-image", f"{image}-does-not-exist", "main.py", "10s"),
            # Thresholds judge it from its log (its live stats are refused): a request
            # failing on a loaded node does not decide, as Locust's exit code would.
            locusttest("hostile", image, "hostile.py", "15s", thresholds={"maxFailRatio": "0.5"}),
            too_big(image),
            interactive(image),
        ]
        c.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                   "items": tests}))
        # The target of a scheduled series (real_series.py); the schedule comes later.
        c.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                   "items": series_objects(image)}))
        env.image = image
        for name in ("pass", "breach"):
            env.procs[f"wait-{name}"] = _wait_cli(c, ns, name)
        yield env
    finally:
        for proc in env.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if "watch" in env.procs:
            watch.close()
        c.helm("uninstall", RELEASE, "-n", operator_ns, "--wait", check=False)
        for name in (ns, operator_ns):
            c.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
        print(f"[{time.monotonic() - started:5.1f}s] module done")


def test_operator_runs_in_cluster_as_the_charts_deployment(e2e: E2E) -> None:
    (pod,) = e2e.pods("app.kubernetes.io/instance=" + RELEASE, e2e.operator_ns)
    assert pod["spec"]["serviceAccountName"] == FULLNAME
    assert pod["spec"]["nodeName"] == "real-node"
    (container,) = pod["spec"]["containers"]
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container["image"] == f"ghcr.io/locust-operator/locust-operator:{app_version}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert pod["status"]["phase"] == "Running"
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
    name = pod["metadata"]["name"]
    # The liveness probe's endpoint and the metrics endpoint, through the API server's pod proxy.
    assert e2e.raw(f"/api/v1/namespaces/{e2e.operator_ns}/pods/{name}:8080/proxy/healthz") is not None
    metrics = e2e.raw(f"/api/v1/namespaces/{e2e.operator_ns}/pods/{name}:9090/proxy/metrics")
    assert "locust_operator_errors_total" in metrics
    # The operator (not us) created the tests' children: the chart's RBAC lets it.
    e2e.cluster.wait_for(lambda: e2e.cluster.kubectl("-n", e2e.ns, "get", "job", "pass-master",
                                                     check=False).returncode == 0,
                         timeout=60, what="the operator to create pass-master")


def test_a_distributed_test_passes_on_real_pods(e2e: E2E) -> None:
    c, ns = e2e.cluster, e2e.ns
    # Locust's own count of connected workers, while it runs.
    live = c.wait_for(lambda: (s := e2e.status("pass")).get("phase") == "Running"
                      and (s.get("locust") or {}).get("workerCount") == 3
                      and float((s.get("locust") or {}).get("totalRps", 0)) > 0 and s,
                      timeout=120, interval=1, what="pass Running with 3 workers and RPS > 0")
    assert live["connectedWorkers"] == 3
    print(f"[{time.monotonic() - e2e.started:5.1f}s] pass running: {live['locust']}")
    # Workers find the master through its Service, by DNS name.
    worker_args = c.kubectl_json("-n", ns, "get", "job", "pass-worker")["spec"]["template"]["spec"][
        "containers"][0]["args"]
    assert "--master-host=pass-master" in worker_args
    service = c.kubectl_json("-n", ns, "get", "service", "pass-master")
    assert service["spec"]["clusterIP"].startswith("198.19.")
    # The exporter sidecar serves /metrics during the run.
    (master,) = e2e.pods("performance-test-pod-name=pass-master")
    metrics = e2e.raw(f"/api/v1/namespaces/{ns}/pods/{master['metadata']['name']}:9646/proxy/metrics")
    assert "locust_up 1" in metrics, metrics[:2000]
    assert "locust_workers_count 3" in metrics or "locust_workers_running_count 3" in metrics, metrics[:2000]

    exited, judged = verdict_lag(e2e, "pass")
    line = f"pass: verdict {judged - exited:.1f}s after the master container exited (polled every 0.2 s)"
    print(f"[{time.monotonic() - e2e.started:5.1f}s] {line}")
    _measured(line)
    status = e2e.terminal("pass")
    assert (status["phase"], status["verdict"]) == ("Succeeded", "TestSucceeded"), status.get("result")
    result = status["result"]
    assert result["source"] == "MasterApi" and result["requests"] > 0 and result["failures"] == 0, result
    assert float(result["rps"]) > 0 and result["workers"] == 3
    kept = c.kubectl_json("-n", ns, "get", "configmap", "pass-results")
    keys = {*kept.get("data", {}), *(k.removesuffix(".gz") for k in kept.get("binaryData", {}))}
    assert keys >= {"result.json", "requests.csv", "failures.csv", "report.html"}, keys
    # The master exited, the native sidecar stopped with it, the Job completed (the
    # verdict came first: the master's exit code decides).
    c.wait_for(lambda: any(k["type"] == "Complete" and k["status"] == "True" for k in c.kubectl_json(
        "-n", ns, "get", "job", "pass-master")["status"].get("conditions", [])),
               timeout=60, interval=0.5, what="pass-master Complete")
    (master,) = e2e.pods("performance-test-pod-name=pass-master")
    assert master["status"]["phase"] == "Succeeded"
    assert master["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert "terminated" in master["status"]["initContainerStatuses"][0]["state"]
    time.sleep(2)  # the watch prints the last line
    header = c.kubectl("-n", ns, "get", "lotest", "pass").stdout.splitlines()[0]
    lines = [line for line in e2e.watch_log.read_text().splitlines() if line.startswith("pass ")]
    transcript = "\n".join([header, *lines])
    print(f"\n$ kubectl get lotest -w  # the lines of pass\n{transcript}")
    phases = [line.split()[1] for line in lines if len(line.split()) > 2]
    assert {"Pending", "Running", "Succeeded"} <= set(phases), transcript


def verdict_lag(e2e: E2E, name: str, timeout: float = 180) -> tuple[float, float]:
    """When (monotonic) the test's master container was first seen terminated, and when
    its phase was first seen terminal; a measurement for docs/benchmarks.md, not a test."""
    exited: float | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited is None:
            for pod in e2e.pods(f"performance-test-pod-name={name}-master"):
                if "terminated" in pod["status"].get("containerStatuses", [{}])[0].get("state", {}):
                    exited = time.monotonic()
        if e2e.status(name).get("phase") in ("Succeeded", "Failed"):
            now = time.monotonic()
            return (exited if exited is not None else now), now
        time.sleep(0.2)
    raise AssertionError(f"{name} did not end within {timeout}s")


def test_request_errors_fail_with_locust_errors(e2e: E2E) -> None:
    status = e2e.terminal("errors")
    assert (status["phase"], status["verdict"]) == ("Failed", "LocustErrors")
    assert status["result"]["failures"] > 0 and status["result"]["failRatio"] == "1", status["result"]


def test_a_threshold_breach_fails_with_thresholds_breached(e2e: E2E) -> None:
    status = e2e.terminal("breach")
    assert (status["phase"], status["verdict"]) == ("Failed", "ThresholdsBreached")
    message = e2e.condition("breach", "TestCompleted")["message"]
    assert "p95" in message and "> 100 ms" in message, message


def test_a_missing_configmap_names_it(e2e: E2E) -> None:
    status = e2e.terminal("no-configmap", timeout=120)
    assert status["phase"] == "Failed"
    healthy = e2e.condition("no-configmap", "PodsHealthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "ConfigurationError")
    assert 'configmap "e2e-missing" not found' in healthy["message"], healthy
    # Terminal means stopped: the pods stuck in ContainerCreating are ended.
    assert e2e.stopped("no-configmap") < 15
    stopped = e2e.condition("no-configmap", "JobsStopped")
    assert (stopped["status"], stopped["reason"]) == ("True", "ConfigurationError"), stopped


def test_a_missing_image_fails_with_the_image_pull_reason(e2e: E2E) -> None:
    status = e2e.terminal("no-image", timeout=120)
    assert status["phase"] == "Failed"
    healthy = e2e.condition("no-image", "PodsHealthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "ImagePullError")
    assert "does-not-exist" in healthy["message"]
    assert "ImagePullBackOff" in healthy["message"] or "ErrImagePull" in healthy["message"]
    assert e2e.stopped("no-image") < 15
    assert e2e.condition("no-image", "JobsStopped")["reason"] == "ImagePullError"


def test_more_workers_than_fit_fail_and_leave_no_pod_running(e2e: E2E) -> None:
    """The master ran and waited for workers that can never be scheduled: after the grace
    the test fails with the scheduler's reason, and its master and pending workers end, so
    none can start later and load the target of a failed test."""
    c = e2e.cluster
    running = c.wait_for(lambda: (s := e2e.status("toobig")).get("phase") in ("Running", "Failed") and s,
                         timeout=120, interval=1, what="toobig's master running")
    status = e2e.terminal("toobig", timeout=120)
    assert (status["phase"], status["verdict"]) == ("Failed", "TestFailed"), status
    healthy = e2e.condition("toobig", "PodsHealthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "SchedulingError"), healthy
    assert "Insufficient cpu" in healthy["message"], healthy
    assert e2e.stopped("toobig") < 15
    stopped = e2e.condition("toobig", "JobsStopped")
    assert stopped["reason"] == "SchedulingError" and "2 worker pods ended" in stopped["message"], stopped
    print(f"toobig before its verdict: {running.get('phase')}; JobsStopped: {stopped['message']}")
    # The node is free again: a test started now runs normally.
    c.kubectl("-n", e2e.ns, "apply", "-f", "-", input=json.dumps(
        locusttest("after-toobig", LOCUST_IMAGE.format(version=c.versions["LOCUST_VERSION"]),
                   "main.py", "5s")))
    after = e2e.terminal("after-toobig", timeout=150)
    assert (after["phase"], after["verdict"]) == ("Succeeded", "TestSucceeded"), after


def test_a_hostile_master_cannot_take_the_operator_down(e2e: E2E) -> None:
    """The test's own locustfile makes its master answer /stats/requests with a body that
    never ends: the operator refuses it at its cap, says so in that test's status, and
    judges the test by its Job; the operator does not restart (checked at the end too)."""
    status = e2e.terminal("hostile", timeout=150)
    message = (status.get("locust") or {}).get("message", "")
    assert message == "the master's /stats/requests answer is over 1 MiB; live stats off", status
    events = e2e.cluster.kubectl_json("-n", e2e.ns, "get", "events", "--field-selector",
                                      "involvedObject.name=hostile,reason=MasterAnswerRefused")["items"]
    assert [e["type"] for e in events] == ["Warning"], events
    # Its verdict still comes from the run: the master's final stats in its log. Open
    # finding (issue 18 note): in some runs its one worker never reached this master (the
    # tenant's own master busy streaming); the test then ends Failed on its thresholds with
    # the reason in its results, which the operator must still say.
    result = status["result"]
    if result["source"] == "MasterLog" and result["requests"] > 0:
        assert (status["phase"], status["verdict"]) == ("Succeeded", "TestSucceeded"), status
    else:
        print(f"hostile: no run to judge ({result.get('message')}); verdict {status.get('verdict')}")
        assert (status["phase"], status["verdict"]) == ("Failed", "ThresholdsBreached"), status
        assert result["source"] == "MasterLog" or (result["source"] == "Unavailable"
                                                   and result.get("message")), result
    (pod,) = e2e.pods("app.kubernetes.io/instance=" + RELEASE, e2e.operator_ns)
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def _kubectl_locust(e2e: E2E, *args: str) -> subprocess.Popen[str]:
    """`kubectl locust ARGS`: kubectl finds the plugin kubectl-locust on PATH (the venv's bin)."""
    path = os.pathsep.join([str(Path(sys.executable).parent),
                            e2e.cluster.env.get("PATH", os.environ["PATH"])])
    return subprocess.Popen([str(e2e.cluster.bin_dir / "kubectl"), "locust", *args],
                            env={**e2e.cluster.env, "PATH": path}, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _first_line(proc: subprocess.Popen[str], words: str, timeout: float = 90) -> list[str]:
    """The lines `proc` printed up to the first holding `words` (bounded in time)."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if words in line:
            return lines
    raise AssertionError(f"no line with {words!r} within {timeout}s: {lines}")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=20) as answer:
        body: bytes = answer.read()
        return body


def test_the_web_ui_of_a_running_test_through_kubectl_locust(e2e: E2E) -> None:
    """`kubectl locust ui` forwards a local port to the master's web UI through the API server;
    the page, its REST API and a headless Chromium see the running test; Ctrl-C ends it."""
    c = e2e.cluster
    c.wait_for(lambda: (e2e.status("abort").get("locust") or {}).get("workerCount") == 1
               and float((e2e.status("abort").get("locust") or {}).get("totalRps", 0)) > 0,
               timeout=120, interval=1, what="abort running with its worker and RPS > 0")
    proc = _kubectl_locust(e2e, "ui", "abort", "-n", e2e.ns, "--port", "0", "--no-browser")
    e2e.procs["ui-abort"] = proc
    said = _first_line(proc, "Locust web UI at ")
    url = said[-1].split("Locust web UI at ", 1)[1].split()[0]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/"), said
    page = _get(url).decode()
    assert "<title>Locust</title>" in page or "locust" in page.lower(), page[:500]
    stats = json.loads(_get(url + "stats/requests"))
    assert stats["state"] in ("running", "spawning") and len(stats["workers"]) == 1, stats
    assert stats["total_rps"] > 0, stats
    transcript = "\n".join([f"$ kubectl locust ui abort -n {e2e.ns} --port 0 --no-browser", *said])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "kubectl-locust-ui.txt").write_text(transcript + "\n")
    print(transcript)
    if browser.chromium(install=os.environ.get("LOCUST_OPERATOR_BROWSER_TESTS") == "1") is None:
        print("web UI not checked in a browser: no Chromium (LOCUST_OPERATOR_BROWSER_TESTS=1)")
    else:
        shot = browser.screenshot(url, SCREENSHOTS / "web-ui.png", wait_ms=5000)
        assert browser.png_size(shot.read_bytes()) == (1200, 1600) and shot.stat().st_size > 20_000
        dom = browser.dom(url, wait_ms=5000)
        # The app rendered its header from the master's API: labels and this test's own host.
        assert all(word in dom for word in ("Workers", "RPS", "Users", "http://target:8080")), dom[:3000]
        print(f"web UI screenshot: {shot}")
        _measured(f"web UI through `kubectl locust ui` (checked in headless Chromium): {shot}")
    # A second forward, ended as a user ends it: Ctrl-C.
    second = _kubectl_locust(e2e, "ui", "abort", "-n", e2e.ns, "--port", "0", "--no-browser")
    e2e.procs["ui-interrupted"] = second
    _first_line(second, "Locust web UI at ")
    second.send_signal(signal.SIGINT)
    out, _ = second.communicate(timeout=30)
    assert "abort: stopped: the forward is closed" in out, out
    assert second.returncode in (0, 130), (second.returncode, out)


def test_abort_mid_run_keeps_the_results_so_far(e2e: E2E) -> None:
    c = e2e.cluster
    c.wait_for(lambda: float((e2e.status("abort").get("locust") or {}).get("totalRps", 0)) > 0,
               timeout=120, interval=1, what="abort running with RPS > 0")
    c.kubectl("-n", e2e.ns, "annotate", "lotest", "abort", "locust.io/abort=true")
    status = e2e.terminal("abort", timeout=90)
    assert (status["phase"], status["verdict"]) == ("Failed", "Aborted")
    assert status["result"]["requests"] > 0, status["result"]
    # The pods end too (activeDeadlineSeconds on both Jobs).
    assert e2e.stopped("abort") < 45
    # The forward of the web UI ended by itself when the master went away, with one line.
    ui = e2e.procs.get("ui-abort")
    if ui is not None:
        out, _ = ui.communicate(timeout=60)
        assert ui.returncode == 0, out
        assert out.strip().splitlines()[-1].startswith("abort: the master pod abort-master-"), out
        assert out.strip().endswith("(test Failed): the forward is closed"), out


def _live_pods(e2e: E2E, name: str, role: str) -> list[str]:
    pods = e2e.pods(f"performance-test-name={name},app.kubernetes.io/component={role}")
    return [p["metadata"]["name"] for p in pods if p["status"].get("phase") not in ("Succeeded", "Failed")]


def _start_in_the_browser(e2e: E2E, url: str) -> None:
    """Press Start in the UI's swarm form (its defaults: the master command's -u, -r, --host),
    see it running, take a screenshot, press Stop; over HTTP when there is no Chromium."""
    running = lambda: float((e2e.status("interactive").get("locust") or {}).get("totalRps", 0)) > 0  # noqa: E731
    if browser.chromium(install=os.environ.get("LOCUST_OPERATOR_BROWSER_TESTS") == "1") is None:
        print("interactive test started over HTTP, not in a browser: no Chromium "
              "(LOCUST_OPERATOR_BROWSER_TESTS=1)")
        form = b"user_count=2&spawn_rate=2&host=http%3A%2F%2Ftarget%3A8080"
        urllib.request.urlopen(urllib.request.Request(url + "swarm", data=form), timeout=10).close()
        e2e.cluster.wait_for(running, timeout=90, interval=1, what="interactive running with RPS > 0")
        urllib.request.urlopen(urllib.request.Request(url + "stop", data=b""), timeout=10).close()
        return
    with cdp.Browser() as chrome:
        page = chrome.open(url)
        page.wait_for("document.querySelector('form input[name=userCount]')", 30, what="the swarm form")
        page.click("form button[type=submit]", text="start")
        e2e.cluster.wait_for(running, timeout=90, interval=1, what="interactive running with RPS > 0")
        # The page learns of the run from its next poll: through the forward on a loaded node
        # that can lag, so it is loaded again once the operator saw requests.
        page.goto(url)
        page.wait_for("document.body.innerText.includes('RUNNING')", 30, what="RUNNING in the UI")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = page.screenshot(SCREENSHOTS / "interactive-running.png")
        assert shot.stat().st_size > 20_000
        _measured(f"interactive test started by clicking Start in headless Chromium: {shot}")
        page.click("button", text="stop")
        # The page stops polling if it catches the master's short "stopping" state.
        page.wait_for("['STOPPING', 'STOPPED'].some(s => document.body.innerText.includes(s))", 15,
                      what="STOPPING or STOPPED in the UI")


def test_an_interactive_test_is_started_in_the_browser_and_its_ui_outlives_the_run(e2e: E2E) -> None:
    """autostart false: the master waits; Start is pressed in its web UI (through `kubectl
    locust ui`, under the base path of spec.webUI); the verdict comes when the run stops; the
    workers end then, the master and its UI keepAfterRun later, and the forward with it."""
    c, path = e2e.cluster, f"/locust/{e2e.ns}/interactive"
    ingress = c.wait_for(lambda: c.kubectl_json("-n", e2e.ns, "get", "ingress", "interactive-web"),
                         timeout=60, what="the Ingress interactive-web")
    assert ingress["metadata"]["ownerReferences"][0]["uid"] == e2e.lotest("interactive")["metadata"]["uid"]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == path
    proc = _kubectl_locust(e2e, "ui", "interactive", "-n", e2e.ns, "--port", "0", "--no-browser")
    e2e.procs["ui-interactive"] = proc
    said = _first_line(proc, "Locust web UI at ")
    url = said[-1].split("Locust web UI at ", 1)[1].split()[0]
    assert url.startswith("http://127.0.0.1:") and url.endswith(f"{path}/"), said
    # Nobody pressed Start: the master waits with its worker, and nothing was requested. The
    # operator reads its live stats under the base path (status.locust), the forward too.
    c.wait_for(lambda: (e2e.status("interactive").get("locust") or {}).get("workerCount") == 1,
               timeout=90, interval=1, what="interactive's worker in status.locust")
    assert (e2e.status("interactive")["locust"]["state"], e2e.status("interactive")["phase"]) == (
        "ready", "Running")
    ready = json.loads(_get(url + "stats/requests"))
    assert (ready["state"], len(ready["workers"]), ready["total_rps"]) == ("ready", 1, 0), ready
    _start_in_the_browser(e2e, url)
    status = e2e.terminal("interactive", timeout=90)
    assert (status["phase"], status["verdict"]) == ("Succeeded", "TestSucceeded"), status
    completed = e2e.condition("interactive", "TestCompleted")
    assert completed["message"].startswith("the run stopped: ") and status["result"]["requests"] > 0, status
    assert e2e.condition("interactive", "JobsStopped")["message"].endswith(
        f"the master and its web UI stay up {KEEP_UI}s more (webUI.keepAfterRun)")
    # The UI outlives the verdict: the master answers through the same forward.
    assert json.loads(_get(url + "stats/requests"))["state"] == "stopped"
    start = time.monotonic()
    c.wait_for(lambda: not _live_pods(e2e, "interactive", "worker"), timeout=45, interval=0.5,
               what="no live worker pod of interactive")
    assert _live_pods(e2e, "interactive", "master"), "the master ended with its workers"
    c.wait_for(lambda: not _live_pods(e2e, "interactive", "master"), timeout=KEEP_UI + 60, interval=0.5,
               what="the interactive master gone after keepAfterRun")
    kept = time.monotonic() - start
    _measured(f"interactive: master and web UI kept {kept:.1f}s after the verdict (keepAfterRun {KEEP_UI})")
    assert kept >= KEEP_UI - 8, kept  # counted from the Job's deadline patch, seen here a poll later
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert out.strip().endswith("(test Succeeded): the forward is closed"), out


def test_wait_exits_0_for_the_pass_and_1_for_the_breach(e2e: E2E) -> None:
    for name, code in (("pass", 0), ("breach", 1)):
        proc = e2e.procs[f"wait-{name}"]
        out, _ = proc.communicate(timeout=200)
        print(f"$ python -m locust_operator wait {name} -n {e2e.ns} --timeout 3m  # exit {proc.returncode}\n"
              + out)
        assert proc.returncode == code, out


def _runs(e2e: E2E) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = e2e.cluster.kubectl_json(
        "-n", e2e.ns, "get", "lotest", "-l", f"locust.io/schedule={SCHEDULE}")["items"]
    return sorted(found, key=lambda t: t["metadata"]["name"])


def _cli(e2e: E2E, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**e2e.cluster.env, "PYTHONPATH": str(REPO_ROOT / "controller")}
    return subprocess.run([sys.executable, "-m", "locust_operator", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def _created(run: dict[str, Any]) -> float:
    return parse_timestamp(run["metadata"]["creationTimestamp"]).timestamp()


def test_scheduled_runs_regress_when_the_target_slows_down(e2e: E2E, tmp_path: Path) -> None:
    """A schedule's run passes against its own target; the target is made slower; the first
    run created after that regresses against the last passed run."""
    c = e2e.cluster
    c.kubectl("-n", e2e.ns, "apply", "-f", "-", input=json.dumps(schedule(e2e.image)))
    c.wait_for(lambda: any(r.get("status", {}).get("phase") == "Succeeded" for r in _runs(e2e)),
               timeout=200, interval=2, what="a scheduled run passed")
    c.kubectl("-n", e2e.ns, "apply", "-f", "-", input=slow_target(e2e.image, SLOW_DELAY_MS))
    c.run(str(c.bin_dir / "kubectl"), "-n", e2e.ns, "rollout", "status", f"deployment/{SERIES_TARGET}",
          "--timeout=90s", timeout=100)
    slowed = math.ceil(time.time())  # creationTimestamp has whole seconds: created at or after
    # A run started before the slowdown finished is not the one to judge (with Forbid, a run
    # due while one is live is skipped); the one after may be the next minute's or later.
    third = c.wait_for(lambda: next((r for r in _runs(e2e) if _created(r) >= slowed
                                     and r.get("status", {}).get("phase") in ("Succeeded", "Failed")), None),
                       timeout=200, interval=2, what="a scheduled run after the slowdown ended")
    passed = [r for r in _runs(e2e) if r.get("status", {}).get("phase") == "Succeeded"
              and _created(r) < _created(third)]
    print(f"[{time.monotonic() - e2e.started:5.1f}s] passed runs: {[r['metadata']['name'] for r in passed]}")
    status = third["status"]
    print(f"[{time.monotonic() - e2e.started:5.1f}s] {third['metadata']['name']}: {status['phase']} "
          f"{status.get('verdict')}: {status['result'].get('baseline')}")
    assert (status["phase"], status["verdict"]) == ("Failed", "Regressed"), status
    baseline = status["result"]["baseline"]
    newest_passed = max(passed, key=lambda r: r["status"]["completionTime"])["metadata"]["name"]
    assert baseline["runs"] == [newest_passed]
    p95 = next(d for d in baseline["deltas"] if d["metric"] == "p95")
    assert p95["breached"] and int(p95["measured"]) >= SLOW_DELAY_MS > int(p95["baseline"])
    assert baseline["breaches"][0].startswith(f"p95 {p95['measured']} ms vs {p95['baseline']} ms in "
                                              f"{newest_passed} (+")

    # keepReportRuns 1: the newest run keeps its HTML report apart, the older ones lose theirs
    # (a report exists when the results came from the master's API, the normal path).
    oldest = min(passed, key=lambda r: r["status"]["completionTime"])
    if "reportConfigMap" in oldest["status"]["result"].get("report", {}):
        name = oldest["metadata"]["name"]
        dropped = c.wait_for(lambda: (s := e2e.status(name))["result"]["report"].get("reportDropped") and s,
                             timeout=60, interval=1, what=f"{name}'s report dropped")
        assert "reportConfigMap" not in dropped["result"]["report"]
        assert c.kubectl("-n", e2e.ns, "get", "configmap", f"{name}-report", check=False).returncode != 0
        assert c.kubectl("-n", e2e.ns, "get", "configmap", f"{name}-results", check=False).returncode == 0
    else:
        print(f"keepReportRuns not checked: {oldest['metadata']['name']} kept no report "
              f"(results from {oldest['status']['result'].get('source')})")
    apart = status["result"].get("report", {}).get("reportConfigMap")
    if apart:
        assert c.kubectl("-n", e2e.ns, "get", "configmap", apart["name"], check=False).returncode == 0

    schedules = c.kubectl("-n", e2e.ns, "get", "locusttestschedules").stdout
    history = _cli(e2e, "history", SCHEDULE, "-n", e2e.ns)
    print(f"$ kubectl get locusttestschedules\n{schedules}\n$ locust-operator history {SCHEDULE}\n"
          f"{history.stdout}{history.stderr}")
    assert history.returncode == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "transcript.txt").write_text(f"$ kubectl get locusttestschedules\n{schedules}\n"
                                                f"$ locust-operator history {SCHEDULE}\n{history.stdout}")
    assert history.stdout.splitlines()[1].split()[:1] == [third["metadata"]["name"]]
    assert "Regressed" in history.stdout.splitlines()[1]
    page = SCREENSHOTS / "history.html"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert _cli(e2e, "history", SCHEDULE, "-n", e2e.ns, "-o", "html", "--file", str(page)).returncode == 0
    _measured(f"history page of a real series: {page}")
    if browser.chromium(install=os.environ.get("LOCUST_OPERATOR_BROWSER_TESTS") == "1") is None:
        print("history page not checked in a browser: no Chromium (LOCUST_OPERATOR_BROWSER_TESTS=1)")
        return
    shot = browser.screenshot(page, SCREENSHOTS / "history.png")
    assert browser.png_size(shot.read_bytes()) == (1200, 1600) and shot.stat().st_size > 20_000
    dom = browser.dom(page)
    assert dom.count('class="point regressed"') == 3  # one per chart: p95, RPS, failures
    assert f'data-run="{third["metadata"]["name"]}"' in dom
    print(f"history page screenshot: {shot}")
    _measured(f"history page screenshot (checked in headless Chromium): {shot}")


def test_operator_stayed_alive_under_its_liveness_probe(e2e: E2E) -> None:
    """After the scenarios the probe (initial delay 10 s, every 20 s) ran several times."""
    (pod,) = e2e.pods("app.kubernetes.io/instance=" + RELEASE, e2e.operator_ns)
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    events = e2e.cluster.kubectl_json("-n", e2e.operator_ns, "get", "events", "--field-selector",
                                      f"involvedObject.name={pod['metadata']['name']},reason=Unhealthy")
    assert events["items"] == []
    name = pod["metadata"]["name"]
    metrics = e2e.raw(f"/api/v1/namespaces/{e2e.operator_ns}/pods/{name}:9090/proxy/metrics")
    errors = [line for line in metrics.splitlines() if line.startswith("locust_operator_errors_total{")]
    assert all(line.endswith(" 0.0") for line in errors), errors
    print(f"[{time.monotonic() - e2e.started:5.1f}s] operator log tail:\n" + e2e.cluster.kubectl(
        "-n", e2e.operator_ns, "logs", name, "--tail=15").stdout)
