"""`locust-operator wait` and `report` against the real API server.

No operator runs here: each test walks a LocustTest's status by hand through
the status subresource (as the operator would write it), and writes the
results ConfigMap by hand (one key as text, the others gzipped in
binaryData), so the commands see exactly the contract and nothing else.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from locust_operator.api.contract import RESULT_KEY, results_name
from tests.support.cluster import Cluster
from tests.support.examples import BASE_TEST
from tests.support.operator import install_crd

NAME = "demo"
RESULT: dict[str, Any] = {
    "source": "MasterApi",
    "durationSeconds": 120,
    "requests": 4800,
    "failures": 48,
    "failRatio": "0.01",
    "rps": "40.0",
    "responseTimeMs": {"p50": 21, "p95": 640, "p99": 910, "avg": "48.2", "max": "1204.7"},
    "users": 40,
    "workers": 3,
    "topFailures": [{"method": "GET", "name": "/items", "failures": 48, "error": "HTTPError('503')"}],
    "thresholds": {"passed": False, "breaches": ["p95 640 ms > 500 ms"]},
    "report": {"configMap": results_name(NAME), "keys": [RESULT_KEY]},
}
PENDING = {"phase": "Pending", "expectedWorkers": 3, "connectedWorkers": 0}
RUNNING = {"phase": "Running", "connectedWorkers": 3,
           "locust": {"userCount": 40, "totalRps": "55.23", "failRatio": "0", "failPercent": "0.00"}}


def _completed(reason: str, message: str, ok: bool) -> dict[str, Any]:
    return {"type": "TestCompleted", "status": "True" if ok else "False", "reason": reason,
            "message": message, "lastTransitionTime": "2026-11-26T12:00:00Z"}


SUCCEEDED = {"phase": "Succeeded", "verdict": "TestSucceeded",
             "conditions": [_completed("TestSucceeded", "the master Job completed", True)],
             "result": {**RESULT, "thresholds": {"passed": True, "breaches": []}}}
FAILED = {"phase": "Failed", "verdict": "ThresholdsBreached",
          "conditions": [_completed("ThresholdsBreached", "1 threshold breached: p95 640 ms > 500 ms",
                                    False)],
          "result": RESULT}


@pytest.fixture(scope="module", autouse=True)
def crd(cluster: Cluster) -> None:
    install_crd(cluster)


def _create(cluster: Cluster, namespace: str, status: dict[str, Any] | None = None,
            name: str = NAME) -> None:
    test = copy.deepcopy(BASE_TEST)
    test["metadata"] = {"name": name, "namespace": namespace}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(test))
    if status:
        _status(cluster, namespace, status, name)


def _status(cluster: Cluster, namespace: str, status: dict[str, Any], name: str = NAME) -> None:
    cluster.kubectl("-n", namespace, "patch", "locusttest", name, "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": status}))


def _cli_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust_operator", *args]


def _run(cluster: Cluster, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cli_args(*args), capture_output=True, text=True, env=env or cluster.env,
                          timeout=120, check=False)


class Waiting:
    """A `wait` process whose output lines are read as they come."""

    def __init__(self, cluster: Cluster, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(_cli_args("wait", *args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env or cluster.env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, text: str, timeout: float = 60) -> str:
        """The next line that contains `text` (lines before it are kept in `seen`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout}s; seen: {self.seen}")

    def finish(self, timeout: float = 60) -> tuple[int, list[str], str]:
        """Exit code, every stdout line, stderr."""
        code = self.proc.wait(timeout=timeout)
        assert self.proc.stderr is not None
        stderr = self.proc.stderr.read()
        time.sleep(0.2)  # the reader thread drains what is left
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        assert "Traceback" not in stderr
        return code, self.seen, stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def waits() -> Iterator[list[Waiting]]:
    started: list[Waiting] = []
    yield started
    for process in started:
        process.kill()


def _clockless(line: str) -> str:
    """The line without its leading HH:MM:SS."""
    clock, _, rest = line.partition(" ")
    assert len(clock) == 8 and clock[2] == clock[5] == ":", line
    return rest


def test_wait_prints_each_phase_and_exits_0_when_the_test_succeeds(
        cluster: Cluster, namespace: str, waits: list[Waiting]) -> None:
    _create(cluster, namespace)
    waits.append(waiting := Waiting(cluster, NAME, "-n", namespace, "--timeout", "2m"))
    waiting.expect("no status yet")
    _status(cluster, namespace, PENDING)
    assert _clockless(waiting.expect("Pending")) == "demo: Pending (0/3 workers connected)"
    _status(cluster, namespace, RUNNING)
    assert _clockless(waiting.expect("Running")) == \
        "demo: Running (3/3 workers connected, 40 users, 55.2 rps, 0.00% failed)"
    _status(cluster, namespace, {"locust": {"userCount": 41}})  # no phase change: no line
    _status(cluster, namespace, SUCCEEDED)
    code, lines, stderr = waiting.finish()
    assert code == 0, (lines, stderr)
    assert [_clockless(line) for line in lines[:4]] == [
        "demo: no status yet (is the operator running?)", "demo: Pending (0/3 workers connected)",
        "demo: Running (3/3 workers connected, 40 users, 55.2 rps, 0.00% failed)", "demo: Succeeded"]
    assert lines[4:] == [
        "verdict: TestSucceeded: the master Job completed",
        "  requests       4,800",
        "  failures       48 (1.00%)",
        "  rps            40.0",
        "  response time  p50 21 ms  p95 640 ms  p99 910 ms  avg 48.2 ms  max 1204.7 ms",
        "  users          40",
        "  workers        3",
        "  duration       2m0s",
        "  thresholds     passed",
        "  top failures:",
        "    METHOD  NAME    FAILURES  ERROR",
        "    GET     /items  48        HTTPError('503')",
        f"full results: locust-operator report demo -n {namespace} -o html (or json, csv)",
    ]


def test_wait_exits_1_when_the_test_fails_in_the_contexts_namespace(
        cluster: Cluster, namespace: str, waits: list[Waiting], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(cluster.kubeconfig.read_text())
    env = {**cluster.env, "KUBECONFIG": str(kubeconfig)}
    cluster.run(str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), "config",
                "set-context", "--current", f"--namespace={namespace}")
    _create(cluster, namespace, PENDING)
    waits.append(waiting := Waiting(cluster, NAME, env=env))  # no -n: the context's namespace
    waiting.expect("Pending")
    _status(cluster, namespace, {**RUNNING, **FAILED})
    code, lines, stderr = waiting.finish()
    assert code == 1, (lines, stderr)
    assert _clockless(lines[1]) == "demo: Failed"
    assert lines[2] == "verdict: ThresholdsBreached: 1 threshold breached: p95 640 ms > 500 ms"
    assert "  thresholds     1 breached" in lines
    assert "                 p95 640 ms > 500 ms" in lines


def test_wait_on_a_finished_test_returns_at_once(cluster: Cluster, namespace: str) -> None:
    _create(cluster, namespace, {**PENDING, **FAILED})
    result = _run(cluster, "wait", NAME, "-n", namespace)
    assert result.returncode == 1
    assert _clockless(result.stdout.splitlines()[0]) == "demo: Failed"


def test_wait_exits_2_on_timeout_on_a_missing_test_and_on_deletion(
        cluster: Cluster, namespace: str, waits: list[Waiting]) -> None:
    _create(cluster, namespace, RUNNING)
    started = time.monotonic()
    result = _run(cluster, "wait", NAME, "-n", namespace, "--timeout", "3s")
    assert result.returncode == 2
    assert 3 <= time.monotonic() - started < 60
    assert result.stderr == "demo: timed out after 3s, still Running\n"
    assert _clockless(result.stdout.strip()) == \
        "demo: Running (3/? workers connected, 40 users, 55.2 rps, 0.00% failed)"

    result = _run(cluster, "wait", "absent", "-n", namespace, "--timeout", "1m")
    assert result.returncode == 2
    assert result.stderr == f"absent: no LocustTest absent in namespace {namespace}\n"

    waits.append(waiting := Waiting(cluster, NAME, "-n", namespace))
    waiting.expect("Running")
    cluster.kubectl("-n", namespace, "delete", "locusttest", NAME)
    code, _, stderr = waiting.finish()
    assert (code, stderr) == (2, "demo: deleted before it finished\n")


def _gz(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode())).decode()


RESULT_JSON = json.dumps({**RESULT, "requests": [{"method": "GET", "name": "/items"}]}, indent=2)
REQUESTS_CSV = 'Type,Name,Request Count,Failure Count\nGET,/items,4800,48\n,Aggregated,4800,48\n'
REPORT_HTML = "<!DOCTYPE html><html><body><h1>Locust Test Report</h1></body></html>\n"


def _results(cluster: Cluster, namespace: str, data: dict[str, str], binary: dict[str, str],
             owned: bool = True) -> None:
    """The results ConfigMap, as the operator writes it (owned by the test) or by someone else."""
    uid = cluster.kubectl("-n", namespace, "get", "locusttest", NAME, "-o", "jsonpath={.metadata.uid}").stdout
    owner = [{"apiVersion": "locust.io/v2", "kind": "LocustTest", "name": NAME, "uid": uid,
              "controller": True}] if owned else []
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": results_name(NAME), "namespace": namespace, "ownerReferences": owner},
                 "data": data, "binaryData": {f"{key}.gz": _gz(text) for key, text in binary.items()}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(configmap))


def test_report_prints_each_kept_format(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    master_log = {**RESULT, "source": "MasterLog",
                  "report": {"configMap": results_name(NAME), "keys": ["result.json", "requests.csv"]}}
    _create(cluster, namespace, {**FAILED, "result": master_log})
    result = _run(cluster, "report", NAME, "-n", namespace, "-o", "json")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "demo: no results ConfigMap demo-results\n"

    _results(cluster, namespace, {"result.json": RESULT_JSON}, {"requests.csv": REQUESTS_CSV})
    result = _run(cluster, "report", NAME, "-n", namespace, "-o", "json")
    owners = cluster.kubectl("-n", namespace, "get", "configmap", results_name(NAME), "-o",
                             "jsonpath={.metadata.ownerReferences}", check=False).stdout
    uid = cluster.kubectl("-n", namespace, "get", "locusttest", NAME, "-o", "jsonpath={.metadata.uid}").stdout
    assert (result.returncode, result.stdout, result.stderr) == (0, RESULT_JSON, ""), (owners, uid)

    target = tmp_path / "requests.csv"
    result = _run(cluster, "report", NAME, "-n", namespace, "-o", "csv", "--file", str(target))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert target.read_text() == REQUESTS_CSV  # gunzipped

    result = _run(cluster, "report", NAME, "-n", namespace)  # html by default
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "demo: no HTML report was kept (results came from the master's log); " \
                            "try -o json\n"

    _results(cluster, namespace, {"result.json": RESULT_JSON},
             {"requests.csv": REQUESTS_CSV, "report.html": REPORT_HTML})
    result = _run(cluster, "report", NAME, "-n", namespace, "--file", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "report.html").read_text() == REPORT_HTML

    result = _run(cluster, "report", NAME, "-n", namespace, "--file", str(tmp_path / "no" / "such.html"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{tmp_path / 'no' / 'such.html'}: cannot write: ")

    # Someone else's ConfigMap under the results name is never reported as this test's.
    _results(cluster, namespace, {"result.json": RESULT_JSON}, {}, owned=False)
    result = _run(cluster, "report", NAME, "-n", namespace, "-o", "json")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "demo: ConfigMap demo-results does not belong to this test; not reporting it\n"


def test_report_on_a_missing_or_running_test(cluster: Cluster, namespace: str) -> None:
    result = _run(cluster, "report", "absent", "-n", namespace)
    assert (result.returncode, result.stderr) == (
        1, f"absent: no LocustTest absent in namespace {namespace}\n")

    _create(cluster, namespace, RUNNING)
    result = _run(cluster, "report", NAME, "-n", namespace, "-o", "csv")
    assert (result.returncode, result.stderr) == (
        1, "demo: Running; its results are kept once it finishes (locust-operator wait first)\n")
