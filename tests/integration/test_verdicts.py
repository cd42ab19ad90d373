"""Verdicts and kept results from real Locust runs, read by the controller on the local control plane.

kwok runs the test's pods, and a real Locust master with real workers runs on
loopback with the args `render` gives them (tests/support/real_locust.py),
loading a local HTTP target with a chosen latency and error rate. The
controller reads that master (statsUrlTemplate points at it). kwok has no
kubelet: when the real master exits, `ExitMirror` does the kubelet's part: it
serves the real master's output as the pod's log (kwok `Logs`) and writes the
exit code into the pod's status; the Job controller does the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster
from tests.support.operator import install_crd
from tests.support.real_runs import (
    cli,
    final_requests,
    kept,
    master_state,
    real_test,
)


@pytest.fixture(scope="module", autouse=True)
def crd(cluster: Cluster) -> None:
    install_crd(cluster)


def test_a_passing_run_keeps_its_results_after_the_jobs_are_gone(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    thresholds = {"maxFailRatio": "0.01", "responseTimeMs": {"p95": 2000},
                  "perRequest": [{"name": "health", "method": "GET", "maxFailRatio": "0"}]}
    # --autoquit 20 s: the margin that shows the verdict did not wait for the master's exit
    # holds on a loaded machine too (the results are read over ~5 s once Locust stopped).
    with real_test(cluster, namespace, tmp_path, "pass", autoquit=20, spec={
            "thresholds": thresholds, "cleanup": {"ttlSecondsAfterFinished": 0}}) as case:
        case.wait_phase("Running")
        running = case.wait_status(lambda s: float(s.get("locust", {}).get("totalRps", "0")) > 0,
                                   "live RPS", timeout=60)
        during = case.get_columns()
        status = case.wait_phase("Succeeded", "Failed")
        # Thresholds decide on the stopped run's results: the verdict comes while the
        # real master still idles through --autoquit, not after it exits.
        master_still_up = case.run.master.poll() is None
        after = case.get_columns("-o", "wide")
        # The TTL controller removes the finished Jobs; the results stay.
        cluster.wait_for(lambda: not cluster.kubectl_json("-n", namespace, "get", "jobs")["items"],
                         timeout=60, what="Jobs removed by their TTL")
        configmap = case.configmap()
        case.run.master.wait(timeout=60)  # its own final numbers, printed on exit
        final = final_requests(case.run)
        html_file = tmp_path / "report.html"
        report = subprocess.run([sys.executable, "-m", "locust_operator", "report", "pass", "-n", namespace,
                                 "-o", "html", "--file", str(html_file)], env=cluster.env, text=True,
                                capture_output=True, check=False, timeout=60)
    print(f"kubectl get lotest during the run:\n{during}\nafter it:\n{after}")
    assert running["locust"]["userCount"] > 0
    assert (status["phase"], status["verdict"]) == ("Succeeded", "TestSucceeded")
    assert master_still_up
    result = status["result"]
    assert result["source"] == "MasterApi"
    assert result["requests"] == final > 0  # every request Locust counted, the last report included
    assert (result["failures"], result["workers"], result["users"]) == (0, 2, 4)
    assert result["thresholds"] == {"passed": True, "breaches": []}
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Finished"]["status"], conditions["Finished"]["reason"]) == ("True", "TestSucceeded")
    # kubectl get shows the verdict and the final numbers after the run.
    header, row = after.splitlines()[:2]
    assert header.split()[:10] == ["NAME", "PHASE", "STATE", "WORKERS", "CONNECTED", "USERS", "RPS",
                                   "FAIL", "%", "VERDICT"]
    # The thresholds decided on the stopped run: the verdict came before the master's autoquit.
    assert row.split()[1:6] == ["Succeeded", "stopped", "2", "2", "4"] and "TestSucceeded" in row
    phase, state = during.splitlines()[1].split()[1:3]
    assert phase == "Running" and state in ("spawning", "running")  # users are loading
    # The ConfigMap outlives the Jobs: Locust's own report and per-request CSV.
    assert status["result"]["report"]["configMap"] == "pass-results"
    html = kept(configmap, "report.html")
    assert "health" in html and "Locust" in html
    assert report.returncode == 0, report.stderr
    assert html_file.read_text() == html  # `report -o html` writes Locust's own report
    csv = kept(configmap, "requests.csv")
    assert csv.splitlines()[-1].split(",")[1:3] == ["Aggregated", str(final)]
    assert json.loads(kept(configmap, "result.json"))["result"]["requests"] == final
    assert configmap["metadata"]["ownerReferences"][0]["name"] == "pass"
    # ... and goes away with the test.
    cluster.kubectl("-n", namespace, "delete", "locusttest", "pass", "--wait=true")
    cluster.wait_for(lambda: cluster.kubectl("-n", namespace, "get", "configmap", "pass-results",
                                             check=False).returncode != 0,
                     timeout=60, what="results ConfigMap collected with its test")


@pytest.mark.parametrize(("name", "target", "thresholds", "phase", "verdict", "words"), [
    ("p95", {"latency_ms": 40}, {"responseTimeMs": {"p95": 10}}, "Failed", "ThresholdsBreached",
     "ms > 10 ms"),
    ("failratio", {"fail_every": 4}, {"maxFailRatio": "0.05"}, "Failed", "ThresholdsBreached",
     "fail ratio 0.2"),
    # Locust exits 1 on any failed request; thresholds that allow them decide instead.
    ("tolerated", {"fail_every": 4}, {"maxFailRatio": "0.5"}, "Succeeded", "TestSucceeded",
     "all thresholds passed"),
    ("errors", {"fail_every": 4}, None, "Failed", "LocustErrors", "Locust reported errors (exit code 1)"),
])
def test_verdicts_of_real_runs(cluster: Cluster, namespace: str, tmp_path: Path, name: str,
                               target: dict[str, int], thresholds: dict[str, Any] | None, phase: str,
                               verdict: str, words: str) -> None:
    spec = {"thresholds": thresholds} if thresholds else {}
    with real_test(cluster, namespace, tmp_path, name, spec=spec, **target) as case:  # type: ignore[arg-type]
        waiting = cli(cluster, "wait", name, "-n", namespace, "--timeout", "120s")
        status = case.wait_phase("Succeeded", "Failed")
        output, _ = waiting.communicate(timeout=60)
        events = cluster.kubectl_json("-n", namespace, "get", "events", "--field-selector",
                                      f"involvedObject.name={name},involvedObject.kind=LocustTest")["items"]
    assert (status["phase"], status["verdict"]) == (phase, verdict)
    completed = next(c for c in status["conditions"] if c["type"] == "TestCompleted")
    assert words in completed["message"]
    assert status["result"]["requests"] > 0
    if phase == "Failed":
        assert any(e["reason"] == "TestFailed" and verdict in e["message"] for e in events)
    # The CI step: exit 0 on a pass, 1 on a failure, with the verdict and the numbers.
    print(output)
    assert waiting.returncode == (0 if phase == "Succeeded" else 1), output
    assert f"{name}: {phase}" in output and f"verdict: {verdict}" in output
    assert str(status["result"]["requests"]) in output


def test_workers_that_never_connect(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    with real_test(cluster, namespace, tmp_path, "lonely", started_workers=0, worker_timeout=6) as case:
        running = case.wait_status(lambda s: "locust" in s, "stats read", timeout=60)
        status = case.wait_phase("Succeeded", "Failed")
    assert running["locust"]["workerCount"] == 0
    # The real master gave up waiting for its workers (--expect-workers-max-wait): exit 1.
    assert [code for pod, code in case.mirror.mirrored.items() if "-master-" in pod] == [1]
    assert (status["phase"], status["verdict"]) == ("Failed", "WorkersNotConnected")
    assert "no worker connected to the master during the run (2 expected)" in \
        next(c for c in status["conditions"] if c["type"] == "TestCompleted")["message"]


def test_abort_mid_run_keeps_the_results_so_far(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    with real_test(cluster, namespace, tmp_path, "stopme", run_time="120s") as case:
        case.wait_status(lambda s: float(s.get("locust", {}).get("totalRps", "0")) > 0,
                         "requests under way", timeout=60)
        cluster.kubectl("-n", namespace, "annotate", "locusttest", "stopme", "locust.io/abort=true")
        status = case.wait_phase("Succeeded", "Failed", timeout=60)
        def ended_jobs() -> list[dict[str, Any]] | None:
            jobs: list[dict[str, Any]] = cluster.kubectl_json("-n", namespace, "get", "jobs")["items"]
            failed = [j for j in jobs if any(c["type"] == "Failed" and c["status"] == "True"
                                             for c in j["status"].get("conditions", []))]
            return jobs if jobs and failed == jobs else None

        jobs = cluster.wait_for(ended_jobs, timeout=60, what="both Jobs ended by their deadline")
        state = master_state(case.run)
    assert (status["phase"], status["verdict"]) == ("Failed", "Aborted")
    assert status["result"]["requests"] > 0 and status["result"]["source"] == "MasterApi"
    assert state == "stopped"  # the operator asked the real master to stop
    assert {j["spec"]["activeDeadlineSeconds"] for j in jobs} == {1}
    assert len(jobs) == 2


def test_operator_killed_in_the_last_seconds_still_keeps_complete_results(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    with real_test(cluster, namespace, tmp_path, "restart", run_time="8s", autoquit=10) as case:
        case.wait_phase("Running")
        time.sleep(5)  # the run ends ~8 s after it started
        case.operator.kill()
        # Down until the run has stopped (the master then waits `autoquit` seconds).
        cluster.wait_for(lambda: master_state(case.run) == "stopped", timeout=30, what="run stopped")
        case.operator.start()
        status = case.wait_phase("Succeeded", "Failed")
        final = final_requests(case.run)
    assert (status["phase"], status["verdict"]) == ("Succeeded", "TestSucceeded")
    assert status["result"]["requests"] == final > 0


def test_results_come_from_the_masters_log_when_the_operator_was_down(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """Down from before the run ended until after the master exited: the fallback path."""
    with real_test(cluster, namespace, tmp_path, "fallback", run_time="6s", autoquit=1,
                   spec={"thresholds": {"maxFailRatio": "0"}}) as case:
        case.wait_status(lambda s: "locust" in s, "stats read", timeout=60)
        case.operator.kill()
        case.run.master.wait(timeout=60)
        cluster.wait_for(lambda: case.mirror.mirrored, timeout=60, what="the master's exit mirrored")
        case.operator.start()
        status = case.wait_phase("Succeeded", "Failed")
        configmap = case.configmap()
        final = final_requests(case.run)
    assert (status["phase"], status["verdict"]) == ("Succeeded", "TestSucceeded")
    result = status["result"]
    assert (result["source"], result["requests"]) == ("MasterLog", final)
    assert result["thresholds"] == {"passed": True, "breaches": []}
    assert "report.html" not in result["report"]["keys"]  # only the master's API serves it
    assert kept(configmap, "requests.csv").splitlines()[-1].split(",")[1:3] == ["Aggregated", str(final)]
