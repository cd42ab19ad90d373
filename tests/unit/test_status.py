"""derive_status (rules/status.py): phase, conditions, verdict, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from locust_operator.api.times import timestamp
from locust_operator.rules.conditions import MESSAGE_CHARS, condition, with_tracking_error
from locust_operator.rules.health import PodProblem
from locust_operator.rules.jobs import STOP_AFTER_GRACE, STOP_NOW, WORKER_EXIT_GRACE_SECONDS, job_deadline
from locust_operator.rules.observation import Observation
from locust_operator.rules.status import derive_status, transition_events

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
EARLIER = "2026-11-23T11:59:00Z"


def obs(**kwargs: Any) -> Observation:
    defaults: dict[str, Any] = {"generation": 1, "expected_workers": 2, "now": NOW,
                                "grace_seconds": 120}
    return Observation(**{**defaults, **kwargs})


def job(ready: int = 0, active: int = 0, complete: bool = False, failed: bool = False) -> dict[str, Any]:
    conditions = []
    if complete:
        conditions.append({"type": "Complete", "status": "True"})
    if failed:
        conditions.append({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                           "message": "Job has reached the specified backoff limit"})
    return {"ready": ready, "active": active, "conditions": conditions,
            **({"completionTime": "2026-11-23T11:59:59Z"} if complete else {})}


CREATED = {"service": True, "master_job": job(), "worker_job": job()}


def _reasons(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


@pytest.mark.parametrize(("previous_phase", "children", "phase", "expected"), [
    # Nothing observed yet: creating.
    (None, {}, "Pending", {"Ready": ("False", "ResourcesCreating"),
                           "TestCompleted": ("False", "TestInProgress"),
                           "WorkersConnected": ("False", "WaitingForWorkers"),
                           "PodsHealthy": ("Unknown", "PodsStarting")}),
    # Children exist, master not ready yet.
    (None, CREATED, "Pending", {"Ready": ("True", "ResourcesCreated")}),
    # Master pod ready, 1 of 2 workers.
    ("Pending", {**CREATED, "master_job": job(ready=1, active=1), "worker_job": job(ready=1)},
     "Running", {"WorkersConnected": ("False", "WaitingForWorkers"),
                 "PodsHealthy": ("True", "PodsHealthy")}),
    # All workers.
    ("Running", {**CREATED, "master_job": job(ready=1), "worker_job": job(ready=2)},
     "Running", {"WorkersConnected": ("True", "AllWorkersConnected")}),
    # The pod watch saw the master ready before its Job said so: Running.
    ("Pending", {**CREATED, "master_job": job(active=1), "master_pods_ready": 1}, "Running",
     {"PodsHealthy": ("True", "PodsHealthy")}),
    # Active but not ready (image still pulling) is not Running.
    ("Pending", {**CREATED, "master_job": job(active=1)}, "Pending", {}),
    # Running never flaps back to Pending.
    ("Running", {**CREATED, "master_job": job(ready=0, active=1)}, "Running", {}),
    # Complete -> Succeeded.
    ("Running", {**CREATED, "master_job": job(complete=True)}, "Succeeded",
     {"TestCompleted": ("True", "TestSucceeded")}),
    # Failed with no exit code and no results (the pod is gone): the master crashed.
    ("Running", {**CREATED, "master_job": job(failed=True)}, "Failed",
     {"TestCompleted": ("False", "TestCrashed"), "Finished": ("True", "TestCrashed")}),
    # Straight from Pending to Succeeded (fast test).
    ("Pending", {**CREATED, "master_job": job(complete=True)}, "Succeeded", {}),
    # Terminal phases never change, whatever the children say (even TTL cleanup).
    ("Succeeded", {**CREATED, "master_job": job(failed=True)}, "Succeeded", {}),
    ("Failed", {**CREATED, "master_job": job(complete=True)}, "Failed", {}),
    ("Succeeded", {}, "Succeeded", {}),
    # A permanent create error fails the test.
    (None, {"create_error": "Job demo-master: forbidden"}, "Failed",
     {"Ready": ("False", "ResourcesFailed"), "TestCompleted": ("False", "TestFailed")}),
])
def test_phase_and_conditions(previous_phase: str | None, children: dict[str, Any], phase: str,
                              expected: dict[str, tuple[str, str]]) -> None:
    previous = {"phase": previous_phase} if previous_phase else {}
    if previous_phase in ("Succeeded", "Failed"):
        previous["conditions"] = [{"type": "Ready", "status": "True", "reason": "ResourcesCreated",
                                   "message": "", "lastTransitionTime": EARLIER}]
    status = derive_status(previous, obs(**children)).status
    assert status["phase"] == phase
    reasons = _reasons(status)
    for kind, value in expected.items():
        assert reasons[kind] == value, (kind, reasons)


def test_child_deleted_while_running_fails_the_test() -> None:
    running = derive_status({}, obs(**{**CREATED, "master_job": job(ready=1)})).status
    assert running["phase"] == "Running"
    lagging = derive_status(running, obs(service=True, worker_job=job())).status
    assert lagging == running  # not yet in the watch cache is not deleted
    gone = derive_status(running, obs(service=True, worker_job=job(), deleted=("master Job",))).status
    assert gone["phase"] == "Failed"
    assert _reasons(gone)["Ready"] == ("False", "ResourcesFailed")
    assert "master Job deleted" in condition(gone, "Ready")["message"]  # type: ignore[index]
    reasons = [e.reason for e in transition_events(running, gone)]
    assert reasons == ["ResourceDeleted", "TestFailed", "JobsStopped"]  # the worker Job is ended


def test_a_create_error_is_ready_s_message_and_the_verdict_s() -> None:
    status = derive_status({}, obs(create_error="Job demo-master: forbidden")).status
    ready, completed = condition(status, "Ready") or {}, condition(status, "TestCompleted") or {}
    assert (ready["reason"], ready["message"]) == ("ResourcesFailed", "Job demo-master: forbidden")
    assert completed["message"] == "could not create the test's resources: Job demo-master: forbidden"


def test_last_transition_time_moves_only_when_status_flips() -> None:
    first = derive_status({}, obs(**CREATED)).status
    later = NOW + timedelta(seconds=30)
    second = derive_status(first, obs(**CREATED, now=later)).status
    assert second == first  # nothing changed: no patch would be sent
    third = derive_status(second, obs(**{**CREATED, "master_job": job(ready=1)}, now=later)).status
    before, after = condition(second, "TestCompleted"), condition(third, "TestCompleted")
    assert before and after and before["status"] == after["status"] == "False"
    assert after["lastTransitionTime"] == before["lastTransitionTime"]
    assert third["startTime"] == "2026-11-23T12:00:30Z"
    ready = condition(third, "PodsHealthy")
    assert ready and ready["lastTransitionTime"] == "2026-11-23T12:00:30Z"


def test_workers_missing_after_all_connected() -> None:
    full = derive_status({"phase": "Running"}, obs(**{**CREATED, "master_job": job(ready=1),
                                                      "worker_job": job(ready=2)})).status
    fewer = derive_status(full, obs(**{**CREATED, "master_job": job(ready=1),
                                       "worker_job": job(ready=1)})).status
    assert _reasons(fewer)["WorkersConnected"] == ("False", "WorkersMissing")
    assert condition(fewer, "WorkersConnected")["message"] == "1/2 workers connected"  # type: ignore[index]
    assert fewer["connectedWorkers"] == 1


PROBLEM = PodProblem("demo-master-x", "ConfigurationError",
                     'pod demo-master-x container demo-master: CreateContainerConfigError: '
                     'configmap "demo" not found', "2026-11-23T11:59:00Z")


@pytest.mark.parametrize(("grace", "phase", "health", "recheck"), [
    (120, "Pending", ("Unknown", "PodsStarting"), 60.0),
    (60, "Failed", ("False", "ConfigurationError"), None),
    (0, "Failed", ("False", "ConfigurationError"), None),
])
def test_pod_problems_fail_after_grace(grace: int, phase: str, health: tuple[str, str],
                                       recheck: float | None) -> None:
    derived = derive_status({}, obs(**CREATED, problems=(PROBLEM,), grace_seconds=grace))
    assert derived.status["phase"] == phase
    assert _reasons(derived.status)["PodsHealthy"] == health
    assert derived.recheck_after == recheck
    assert 'configmap "demo" not found' in condition(derived.status, "PodsHealthy")["message"]  # type: ignore[index]
    if phase == "Failed":
        completed = condition(derived.status, "TestCompleted")
        assert completed and 'configmap "demo" not found' in completed["message"]
        reasons = [e.reason for e in transition_events({}, derived.status)]
        assert "PodFailure" in reasons and "TestFailed" in reasons


def test_spec_drift_is_reported_once_per_generation() -> None:
    base = derive_status({}, obs(**CREATED)).status
    drifted = derive_status(base, obs(**CREATED, generation=2)).status
    assert _reasons(drifted)["SpecDrifted"] == ("True", "SpecChangeIgnored")
    assert drifted["observedGeneration"] == 2
    assert [e.reason for e in transition_events(base, drifted)] == ["SpecChangeIgnored"]
    again = derive_status(drifted, obs(**CREATED, generation=2)).status
    assert again == drifted
    assert transition_events(drifted, again) == []


def test_events_for_a_normal_run() -> None:
    pending = derive_status({}, obs(**CREATED)).status
    running = derive_status(pending, obs(**{**CREATED, "master_job": job(ready=1)})).status
    done = derive_status(running, obs(**{**CREATED, "master_job": job(complete=True)})).status
    assert [e.reason for e in transition_events(pending, running)] == ["TestStarted"]
    assert [e.reason for e in transition_events(running, done)] == ["TestCompleted"]
    assert done["completionTime"] == "2026-11-23T11:59:59Z"


def test_workers_finishing_with_the_test_are_not_missing() -> None:
    full = derive_status({"phase": "Running"}, obs(**{**CREATED, "master_job": job(ready=1),
                                                      "worker_job": job(ready=2)})).status
    finished = derive_status(full, obs(**{**CREATED, "master_job": job(ready=1),
                                          "worker_job": job(complete=True)})).status
    assert _reasons(finished)["WorkersConnected"] == ("True", "AllWorkersConnected")
    assert finished["connectedWorkers"] == 0


def test_workers_exiting_one_by_one_at_the_end_are_not_missing() -> None:
    full = derive_status({"phase": "Running"}, obs(**{**CREATED, "master_job": job(ready=1),
                                                      "worker_job": job(ready=2)})).status
    one_left = derive_status(full, obs(**{**CREATED, "master_job": job(ready=1),
                                          "worker_job": {**job(ready=1), "succeeded": 1}})).status
    assert _reasons(one_left)["WorkersConnected"] == ("True", "AllWorkersConnected")


def test_uncounted_succeeded_workers_are_finishing_not_missing() -> None:
    full = derive_status({"phase": "Running"}, obs(**{**CREATED, "master_job": job(ready=1),
                                                      "worker_job": job(ready=2)})).status
    worker = {**job(ready=1), "uncountedTerminatedPods": {"succeeded": ["uid-1"]}}
    one_left = derive_status(full, obs(**{**CREATED, "master_job": job(ready=1), "worker_job": worker}))
    assert _reasons(one_left.status)["WorkersConnected"] == ("True", "AllWorkersConnected")


def _problem(reason: str, pod: str = "demo-worker-a", since: str | None = EARLIER) -> PodProblem:
    return PodProblem(pod, reason, f"pod {pod}: {reason}", since)


@pytest.mark.parametrize(("reasons", "expected"), [
    (["InitializationError", "CrashLoopBackOff"], "CrashLoopBackOff"),
    (["CrashLoopBackOff", "SchedulingError"], "SchedulingError"),
    (["SchedulingError", "ImagePullError"], "ImagePullError"),
    (["ImagePullError", "ConfigurationError"], "ConfigurationError"),
    (["InitializationError", "CrashLoopBackOff", "SchedulingError", "ImagePullError",
      "ConfigurationError"], "ConfigurationError"),
    (["InitializationError", "CrashLoopBackOff", "InitializationError"], "CrashLoopBackOff"),
])
def test_the_reported_pod_problem_is_chosen_by_rank_in_any_order(reasons: list[str],
                                                                 expected: str) -> None:
    problems = [_problem(r, pod=f"demo-worker-{i}") for i, r in enumerate(reasons)]
    for ordered in (problems, problems[::-1]):
        health = condition(derive_status({}, obs(**CREATED, problems=tuple(ordered),
                                                 grace_seconds=0)).status, "PodsHealthy")
        assert health is not None and health["reason"] == expected
        starting = condition(derive_status({}, obs(**CREATED, problems=tuple(ordered))).status,
                             "PodsHealthy")
        assert starting is not None and starting["reason"] == "PodsStarting"
        assert starting["message"].endswith(f": {expected}")


def test_same_reason_is_broken_by_pod_name_not_order() -> None:
    problems = (_problem("CrashLoopBackOff", "demo-worker-b"), _problem("CrashLoopBackOff", "demo-master"))
    for ordered in (problems, problems[::-1]):
        failed = derive_status({}, obs(**CREATED, problems=ordered, grace_seconds=0)).status
        completed = condition(failed, "TestCompleted")
        assert completed is not None and completed["message"] == "pod demo-master: CrashLoopBackOff"


def test_only_problems_past_their_grace_period_fail_the_test() -> None:
    # A worse problem still within its grace period does not name a failure it did not cause.
    recent = timestamp(NOW - timedelta(seconds=10))
    problems = (_problem("ConfigurationError", "demo-master", since=recent),
                _problem("CrashLoopBackOff", "demo-worker-a"))
    failed = derive_status({}, obs(**CREATED, problems=problems, grace_seconds=30)).status
    assert failed["phase"] == "Failed"
    assert _reasons(failed)["PodsHealthy"] == ("False", "CrashLoopBackOff")


# --- the verdict once the master Job finished (issue 12) --------------------------------

def _result(requests: int = 100, failures: int = 0, workers: int | None = 2,
            breaches: list[str] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"source": "MasterApi", "requests": requests, "failures": failures,
                              "failRatio": str(failures / requests if requests else 0), "rps": "10",
                              "responseTimeMs": {"p95": 40}}
    if workers is not None:
        result["workers"] = workers
    if breaches is not None:
        result["thresholds"] = {"passed": not breaches, "breaches": breaches}
    return result


RUNNING_BEFORE = {"phase": "Running", "connectedWorkers": 2,
                  "locust": {"workerCount": 2, "maxWorkerCount": 2, "userCount": 8, "maxUserCount": 8}}


@pytest.mark.parametrize(("previous", "children", "phase", "reason", "words"), [
    # Passed: the Job completed, no thresholds.
    (RUNNING_BEFORE, {"master_job": job(complete=True), "master_exit_code": 0, "result": _result()},
     "Succeeded", "TestSucceeded", "100 requests, 0 failed (0.00%), 10 rps, p95 40 ms"),
    # No thresholds: Locust's exit code 1 decides.
    (RUNNING_BEFORE, {"master_job": job(failed=True), "master_exit_code": 1,
                      "result": _result(failures=3)}, "Failed", "LocustErrors", "3 failed (3.00%)"),
    (RUNNING_BEFORE, {"master_job": job(failed=True), "master_exit_code": 1}, "Failed", "LocustErrors",
     "exit code 1"),
    # Thresholds decide over the exit code, both ways.
    (RUNNING_BEFORE, {"master_job": job(failed=True), "master_exit_code": 1, "thresholds_set": True,
                      "result": _result(failures=1, breaches=[])}, "Succeeded", "TestSucceeded",
     "all thresholds passed"),
    (RUNNING_BEFORE, {"master_job": job(complete=True), "master_exit_code": 0, "thresholds_set": True,
                      "result": _result(breaches=["p95 812 ms > 500 ms"])}, "Failed", "ThresholdsBreached",
     "thresholds breached: p95 812 ms > 500 ms"),
    # Thresholds set, no results to judge: never a pass.
    (RUNNING_BEFORE, {"master_job": job(complete=True), "master_exit_code": 0, "thresholds_set": True,
                      "result": {"source": "Unavailable", "message": "the master's pod is gone"}},
     "Failed", "ThresholdsBreached", "no results to evaluate the thresholds on (the master's pod is gone)"),
    (RUNNING_BEFORE, {"master_job": job(complete=True), "master_exit_code": 0, "thresholds_set": True},
     "Failed", "ThresholdsBreached", "no results were read"),
    # Crashes: a code other than 0/1 (OOM kill, signal, unhandled greenlet error).
    (RUNNING_BEFORE, {"master_job": job(failed=True), "master_exit_code": 137, "result": _result()},
     "Failed", "TestCrashed", "the master exited with code 137"),
    (RUNNING_BEFORE, {"master_job": job(failed=True), "master_exit_code": 2, "thresholds_set": True,
                      "result": _result(breaches=[])}, "Failed", "TestCrashed", "code 2"),
    # A crash says why: the last error line of the master's log, over the Job's reason.
    (RUNNING_BEFORE, {"master_job": job(failed=True), "master_exit_code": 137,
                      "master_crash": "MemoryError"}, "Failed", "TestCrashed",
     "the master exited with code 137: MemoryError"),
    (RUNNING_BEFORE, {"master_job": job(failed=True), "master_exit_code": 137}, "Failed", "TestCrashed",
     "the master exited with code 137: master Job failed: BackoffLimitExceeded"),
    # A locustfile that cannot load, on the master or a worker, before any request.
    ({"phase": "Pending"}, {"master_job": job(failed=True), "master_exit_code": 1,
                            "locustfile_error": "master pod t-master-a: hit.py line 2: ModuleNotFoundError: "
                                                "No module named 'helper'"},
     "Failed", "LocustfileError", "the locustfile could not be loaded: master pod t-master-a: hit.py line 2: "
     "ModuleNotFoundError: No module named 'helper'"),
    (RUNNING_BEFORE, {"master_job": job(ready=1, active=1),
                      "locustfile_error": "worker pod t-worker-b: No User class found!"},
     "Failed", "LocustfileError", "worker pod t-worker-b: No User class found!"),
    # ... but once requests were made, a later crash is no locustfile error.
    (RUNNING_BEFORE, {"master_job": job(failed=True), "master_exit_code": 1, "result": _result(),
                      "locustfile_error": "worker pod w: x.py line 9: NameError: name 'y' is not defined"},
     "Failed", "LocustErrors", "exit code 1"),
    # Locust saw no worker and no request was made.
    ({**RUNNING_BEFORE, "locust": {"workerCount": 0, "maxWorkerCount": 0}},
     {"master_job": job(complete=True), "master_exit_code": 0, "result": _result(requests=0, workers=0)},
     "Failed", "WorkersNotConnected", "no worker connected to the master during the run (2 expected)"),
    # Requests prove workers connected, whatever the last worker count said.
    ({**RUNNING_BEFORE, "locust": {"workerCount": 0, "maxWorkerCount": 0}},
     {"master_job": job(complete=True), "master_exit_code": 0, "result": _result(workers=0)},
     "Succeeded", "TestSucceeded", ""),
    # No Locust numbers at all (stats never read): no claim about workers.
    ({"phase": "Running"}, {"master_job": job(complete=True)}, "Succeeded", "TestSucceeded", ""),
    # Aborted: ends at once, results so far in the message.
    (RUNNING_BEFORE, {"aborted": True, "result": _result()}, "Failed", "Aborted",
     "results up to then kept: 100 requests"),
    ({"phase": "Pending"}, {"aborted": True}, "Failed", "Aborted", "annotation locust.io/abort"),
])
def test_verdict(previous: dict[str, Any], children: dict[str, Any], phase: str, reason: str,
                 words: str) -> None:
    status = derive_status(previous, obs(**{**CREATED, **children})).status
    assert status["phase"] == phase
    completed, finished = condition(status, "TestCompleted"), condition(status, "Finished")
    assert completed is not None and finished is not None
    assert (completed["status"], completed["reason"]) == ("True" if phase == "Succeeded" else "False", reason)
    assert (finished["status"], finished["reason"]) == ("True", reason)
    assert words in completed["message"]
    assert status["verdict"] == reason


@pytest.mark.parametrize("rps", ["12.5", "bogus"])
def test_a_worker_crash_after_live_requests_is_not_a_locustfile_error(rps: str) -> None:
    previous = {**RUNNING_BEFORE, "locust": {"totalRps": rps}}
    derived = derive_status(previous, obs(**{**CREATED, "master_job": job(ready=1, active=1),
                                             "locust": {"totalRps": rps},
                                             "locustfile_error": "worker pod w: x.py line 9: NameError: y"}))
    assert derived.status["phase"] == ("Running" if rps == "12.5" else "Failed")


def test_a_final_pod_problem_fails_the_test_within_the_grace_period() -> None:
    problem = PodProblem("t-worker-a", "RequirementsFailed",
                         "pod t-worker-a init container install-requirements "
                         "exited with code 1: ERROR: No matching distribution found for nosuchpkg",
                         timestamp(NOW), final=True)
    derived = derive_status({"phase": "Pending"}, obs(**{**CREATED, "problems": (problem,)}))
    assert derived.status["phase"] == "Failed"
    assert _reasons(derived.status)["PodsHealthy"] == ("False", "RequirementsFailed")
    assert "No matching distribution found for nosuchpkg" in (condition(derived.status, "TestCompleted")
                                                             or {})["message"]
    waiting = derive_status({"phase": "Pending"}, obs(**{**CREATED, "problems": (
        PodProblem("t-worker-a", "InitializationError", "x", timestamp(NOW)),)}))
    assert waiting.status["phase"] == "Pending"


def test_the_commit_fetched_is_recorded_in_the_status() -> None:
    sha = "c" * 40
    derived = derive_status({"phase": "Pending"}, obs(**{**CREATED, "git_ref": "v1",
                                                         "commits": (("t-master-a", sha),)}))
    assert derived.status["testFiles"] == {"commit": sha, "ref": "v1"}


def test_finished_is_false_until_the_test_ends_and_the_result_is_kept() -> None:
    running = derive_status({}, obs(**{**CREATED, "master_job": job(ready=1)})).status
    assert (condition(running, "Finished") or {})["status"] == "False"
    assert "verdict" not in running
    with_result = derive_status(running, obs(**{**CREATED, "master_job": job(ready=1),
                                                "result": _result()})).status
    assert with_result["result"]["requests"] == 100 and with_result["phase"] == "Running"
    done = derive_status(with_result, obs(**{**CREATED, "master_job": job(complete=True)})).status
    assert done["result"] == with_result["result"] and done["verdict"] == "TestSucceeded"
    # A terminal status never changes, not even its result.
    later = derive_status(done, obs(**{**CREATED, "result": _result(requests=5)})).status
    assert later == done


def test_locust_keeps_peaks_and_shows_the_final_numbers_once_ended() -> None:
    live = {"state": "running", "userCount": 8, "workerCount": 2, "totalRps": "55.5", "failRatio": "0.0123"}
    first = derive_status({}, obs(**{**CREATED, "master_job": job(ready=1), "locust": live})).status
    # Whole: the live numbers, their peaks, the failure percentage (no message without a problem).
    assert first["locust"] == {**live, "maxUserCount": 8, "maxWorkerCount": 2, "failPercent": "1.23"}
    assert (first["locust"]["maxUserCount"], first["locust"]["maxWorkerCount"]) == (8, 2)
    stopped = {"state": "stopped", "userCount": 0, "workerCount": 0, "totalRps": "0", "failRatio": "0.01"}
    second = derive_status(first, obs(**{**CREATED, "master_job": job(ready=1), "locust": stopped})).status
    assert (second["locust"]["maxUserCount"], second["locust"]["maxWorkerCount"]) == (8, 2)
    done = derive_status(second, obs(**{**CREATED, "master_job": job(complete=True),
                                        "result": _result(failures=2)})).status
    assert done["locust"]["userCount"] == 8
    assert done["connectedWorkers"] == 2  # the most connected, not the 0 after the workers left
    assert (done["locust"]["totalRps"], done["locust"]["failPercent"]) == ("10", "2.00")
    # Once ended, live numbers seen late change nothing.
    later = derive_status(done, obs(**{**CREATED, "master_job": job(complete=True), "locust": live})).status
    assert later["locust"] == done["locust"]


def test_peaks_count_the_previous_numbers_without_peaks() -> None:
    """A status without peaks (written before they existed): its own numbers count."""
    previous = {"phase": "Running", "locust": {"userCount": 50, "workerCount": 3}}
    live = {"state": "running", "userCount": 10, "workerCount": 2}
    now = derive_status(previous, obs(**{**CREATED, "master_job": job(ready=1), "locust": live})).status
    assert now["locust"] == {**live, "maxUserCount": 50, "maxWorkerCount": 3}


# --- the early verdict, the run ceiling, and terminal means stopped -------------------------

RUNNING_JOBS = {"master_job": job(ready=1, active=1), "worker_job": job(ready=2, active=2),
                "master_pods_live": 1, "worker_pods_live": 2}


@pytest.mark.parametrize(("children", "phase", "reason", "stop"), [
    # Thresholds and the final results read once Locust said "stopped": decided, the
    # master need not idle through --autoquit, and the Jobs end now.
    ({**RUNNING_JOBS, "thresholds_set": True, "run_stopped": True, "result": _result(breaches=[])},
     "Succeeded", "TestSucceeded", STOP_NOW),
    ({**RUNNING_JOBS, "thresholds_set": True, "run_stopped": True,
      "result": _result(breaches=["p95 90 ms > 50 ms"])}, "Failed", "ThresholdsBreached", STOP_NOW),
    # Without thresholds Locust's exit code decides: keep waiting for the master.
    ({**RUNNING_JOBS, "run_stopped": True, "result": _result()}, "Running", None, None),
    # Results read, but not from a stopped run (e.g. an abort's): no early verdict.
    ({**RUNNING_JOBS, "thresholds_set": True, "result": _result(breaches=[])}, "Running", None, None),
    # The run ceiling: ends the Jobs, keeps the results so far.
    ({**RUNNING_JOBS, "deadline_exceeded": 600, "result": _result()}, "Failed", "DeadlineExceeded",
     STOP_NOW),
    ({**RUNNING_JOBS, "deadline_exceeded": 600}, "Failed", "DeadlineExceeded", STOP_NOW),
    # The master exited by itself: its workers quit with it; only stragglers are ended.
    ({**RUNNING_JOBS, "master_job": job(complete=True), "master_pods_live": 0, "master_exit_code": 0},
     "Succeeded", "TestSucceeded", STOP_AFTER_GRACE),
    ({**RUNNING_JOBS, "master_job": job(failed=True), "master_pods_live": 0, "master_exit_code": 1},
     "Failed", "LocustErrors", STOP_AFTER_GRACE),
    # The master's container exited: its exit code decides at once, while its sidecar
    # stops and before the Job controller marks the Job (restartPolicy Never).
    ({**RUNNING_JOBS, "master_pods_live": 1, "master_exit_code": 0}, "Succeeded", "TestSucceeded",
     STOP_AFTER_GRACE),
    ({**RUNNING_JOBS, "master_pods_live": 1, "master_exit_code": 1}, "Failed", "LocustErrors",
     STOP_AFTER_GRACE),
    ({**RUNNING_JOBS, "master_pods_live": 1, "master_exit_code": 137}, "Failed", "TestCrashed",
     STOP_AFTER_GRACE),
    # ... unless its final results may still come (its log not yet complete): wait.
    ({**RUNNING_JOBS, "master_exit_code": 0, "results_pending": True}, "Running", None, None),
    # Both Jobs done and no pod left: nothing to stop.
    ({"master_job": job(complete=True), "worker_job": job(complete=True), "master_exit_code": 0},
     "Succeeded", "TestSucceeded", None),
    # Could not run: every failure path ends the Jobs at once.
    ({**RUNNING_JOBS, "problems": (PodProblem("demo-worker-z", "SchedulingError", "pod demo-worker-z "
                                               "cannot be scheduled: Insufficient cpu", EARLIER),),
      "grace_seconds": 30}, "Failed", "TestFailed", STOP_NOW),
    ({**RUNNING_JOBS, "deleted": ("worker Job",)}, "Failed", "TestFailed", STOP_NOW),
    ({**RUNNING_JOBS, "aborted": True}, "Failed", "Aborted", STOP_NOW),
    # A pending test whose pods cannot start: its pending pods are ended too.
    ({"master_job": job(active=1), "worker_job": job(active=2), "master_pods_live": 1,
      "worker_pods_live": 2, "grace_seconds": 30,
      "problems": (PodProblem("demo-master-a", "ImagePullError", "pod demo-master-a: ErrImagePull",
                              EARLIER),)}, "Failed", "TestFailed", STOP_NOW),
])
def test_terminal_means_stopped(children: dict[str, Any], phase: str, reason: str | None,
                                stop: str | None) -> None:
    previous = RUNNING_BEFORE if children.get("master_job", {}).get("ready") or \
        children.get("master_exit_code") is not None else {"phase": "Pending"}
    derived = derive_status(previous, obs(**{**CREATED, **children}))
    assert derived.status["phase"] == phase
    assert derived.status.get("verdict") == reason
    assert derived.stop_jobs == stop
    stopped = condition(derived.status, "JobsStopped")
    assert (stopped is not None) == (stop == STOP_NOW)


@pytest.mark.parametrize(("children", "message"), [
    ({**RUNNING_JOBS, "worker_pods_live": 6, "grace_seconds": 30, "problems": (PodProblem(
        "w10-worker-x", "SchedulingError", "pod w10-worker-x cannot be scheduled", EARLIER),)},
     "the test failed (SchedulingError); 1 master pod and 6 worker pods ended"),
    ({**RUNNING_JOBS, "thresholds_set": True, "run_stopped": True, "result": _result(breaches=[])},
     "the test passed (TestSucceeded); 1 master pod and 2 worker pods ended"),
    ({**RUNNING_JOBS, "deleted": ("Service",), "worker_pods_live": 1},
     "the test failed (ResourcesFailed); 1 master pod and 1 worker pod ended"),
    # webUI.keepAfterRun keeps the master of a test that ran, passed or failed...
    ({**RUNNING_JOBS, "thresholds_set": True, "run_stopped": True, "keep_ui_seconds": 120,
      "result": _result(breaches=["p95 90 ms > 50 ms"])},
     "the test failed (ThresholdsBreached); 2 worker pods ended; the master and its web UI stay up 120s "
     "more (webUI.keepAfterRun)"),
    # ... not of one that could not run.
    ({**RUNNING_JOBS, "deleted": ("Service",), "worker_pods_live": 1, "keep_ui_seconds": 120},
     "the test failed (ResourcesFailed); 1 master pod and 1 worker pod ended"),
])
def test_jobs_stopped_says_why_and_what_ended(children: dict[str, Any], message: str) -> None:
    derived = derive_status(RUNNING_BEFORE, obs(**{**CREATED, **children}))
    stopped = condition(derived.status, "JobsStopped") or {}
    assert (stopped.get("status"), stopped.get("message")) == ("True", message)
    assert stopped.get("reason") == message.split("(")[1].split(")")[0]  # the cause, as the message says
    events = transition_events(RUNNING_BEFORE, derived.status)
    assert any(e.reason == "JobsStopped" and e.message == message for e in events)
    # Terminal is final: the condition stays, and no further stop is asked for.
    again = derive_status(derived.status, obs(**{**CREATED, **children}))
    assert again.status == derived.status and again.stop_jobs is None


@pytest.mark.parametrize(("job_status", "stop", "deadline"), [
    (job(ready=1), STOP_NOW, 1),
    ({**job(ready=1), "startTime": "2026-11-23T11:58:00Z"}, STOP_NOW, 1),
    ({**job(ready=1), "startTime": "2026-11-23T11:58:00Z"}, STOP_AFTER_GRACE,
     121 + WORKER_EXIT_GRACE_SECONDS),
    (job(ready=1), STOP_AFTER_GRACE, 1 + WORKER_EXIT_GRACE_SECONDS),  # not started: from now
    ({**job(ready=1), "startTime": "garbage"}, STOP_AFTER_GRACE, 1 + WORKER_EXIT_GRACE_SECONDS),
    (job(complete=True), STOP_NOW, None),
    (job(failed=True), STOP_AFTER_GRACE, None),
])
def test_job_deadline(job_status: dict[str, Any], stop: str, deadline: int | None) -> None:
    assert job_deadline(job_status, stop, NOW) == deadline


def test_a_refused_master_answer_is_in_the_status_and_announced_once() -> None:
    message = "the master's /stats/requests answer is over 1 MiB; live stats off"
    running = derive_status({}, obs(**{**CREATED, **RUNNING_JOBS})).status
    refused = derive_status(running, obs(**{**CREATED, **RUNNING_JOBS, "live_problem": message})).status
    assert refused["locust"]["message"] == message
    events = transition_events(running, refused)
    assert [(e.type, e.reason, e.message) for e in events] == [("Warning", "MasterAnswerRefused", message)]
    again = derive_status(refused, obs(**{**CREATED, **RUNNING_JOBS, "live_problem": message})).status
    assert again == refused and not transition_events(refused, again)


def test_condition_messages_are_cut() -> None:
    long = PodProblem("p", "SchedulingError", "pod p cannot be scheduled: " + "x" * 100_000, EARLIER)
    status = derive_status({}, obs(**{**CREATED, "grace_seconds": 30, "problems": (long,)})).status
    assert len((condition(status, "PodsHealthy") or {})["message"]) == MESSAGE_CHARS


def test_tracking_error_is_added_then_dropped_by_the_next_derived_status() -> None:
    running = derive_status({}, obs(**{**CREATED, **RUNNING_JOBS})).status
    broken = with_tracking_error(running, "cannot observe the test: KeyError: 'x'", NOW)
    tracking = condition(broken, "Tracking") or {}
    assert (tracking["status"], tracking["reason"]) == ("False", "ObserveError")
    assert with_tracking_error(broken, "again", NOW + timedelta(seconds=5))["conditions"][-1][
        "lastTransitionTime"] == timestamp(NOW)
    healed = derive_status(broken, obs(**{**CREATED, **RUNNING_JOBS})).status
    assert condition(healed, "Tracking") is None


def _conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


CREATED_MSG = ("True", "ResourcesCreated", "Service, master Job and worker Job created")
IN_PROGRESS = ("False", "TestInProgress", "the test has not ended")
RUNNING_NOW = ("False", "TestInProgress", "the test is running")
PODS_RUNNING = ("True", "PodsHealthy", "pods are running")
RESULT = {"requests": 10, "failures": 0, "failRatio": "0", "rps": "1.0", "workers": 2}
RUNNING_MASTER = {"master_job": job(ready=1, active=1)}
RESULT_SAID = "10 requests, 0 failed (0.00%), 1.0 rps"
MISSING_ONE = "1/2 workers connected (as the Locust master reports)"

# One test's life, step by step, each step's status fed to the next: every condition whole.
LIFE: list[tuple[str, dict[str, Any], str, int, dict[str, tuple[str, str, str]]]] = [
    ("nothing seen yet", {}, "Pending", 0, {
        "Ready": ("False", "ResourcesCreating", "creating the Service and Jobs"),
        "WorkersConnected": ("False", "WaitingForWorkers", "0/2 workers connected"),
        "TestCompleted": ("False", "TestInProgress", "waiting for the master to start"),
        "Finished": IN_PROGRESS, "PodsHealthy": ("Unknown", "PodsStarting", "pods are starting")}),
    ("children created", CREATED, "Pending", 0, {
        "Ready": CREATED_MSG, "WorkersConnected": ("False", "WaitingForWorkers", "0/2 workers connected"),
        "TestCompleted": ("False", "TestInProgress", "waiting for the master to start"),
        "Finished": IN_PROGRESS, "PodsHealthy": ("Unknown", "PodsStarting", "pods are starting")}),
    ("master ready, one worker pod", {**CREATED, **RUNNING_MASTER, "worker_job": job(ready=1, active=2)},
     "Running", 1, {
        "Ready": CREATED_MSG, "WorkersConnected": ("False", "WaitingForWorkers", "1/2 workers connected"),
        "TestCompleted": RUNNING_NOW, "Finished": IN_PROGRESS, "PodsHealthy": PODS_RUNNING}),
    ("the master counts both", {**CREATED, **RUNNING_MASTER, "worker_job": job(ready=2, active=2),
                                "locust": {"workerCount": 2}}, "Running", 2, {
        "Ready": CREATED_MSG,
        "WorkersConnected": ("True", "AllWorkersConnected",
                             "2/2 workers connected (as the Locust master reports)"),
        "TestCompleted": RUNNING_NOW, "Finished": IN_PROGRESS, "PodsHealthy": PODS_RUNNING}),
    ("one worker lost", {**CREATED, **RUNNING_MASTER, "worker_job": job(ready=2, active=2),
                         "locust": {"workerCount": 1}}, "Running", 1, {
        "Ready": CREATED_MSG,
        "WorkersConnected": ("False", "WorkersMissing", MISSING_ONE),
        "TestCompleted": RUNNING_NOW, "Finished": IN_PROGRESS, "PodsHealthy": PODS_RUNNING}),
    ("still missing", {**CREATED, **RUNNING_MASTER, "worker_job": job(ready=2, active=2),
                       "locust": {"workerCount": 1}}, "Running", 1, {
        "Ready": CREATED_MSG,
        "WorkersConnected": ("False", "WorkersMissing", MISSING_ONE),
        "TestCompleted": RUNNING_NOW, "Finished": IN_PROGRESS, "PodsHealthy": PODS_RUNNING}),
    ("the master completed", {**CREATED, "master_job": job(complete=True), "master_exit_code": 0,
                              "worker_job": job(ready=2, active=2), "result": RESULT}, "Succeeded", 2, {
        "Ready": CREATED_MSG,
        "WorkersConnected": ("False", "WorkersMissing", MISSING_ONE),
        "TestCompleted": ("True", "TestSucceeded", f"the master Job completed: {RESULT_SAID}"),
        "Finished": ("True", "TestSucceeded", f"the test ended: the master Job completed: {RESULT_SAID}"),
        "PodsHealthy": ("True", "PodsHealthy", "pods ran")}),
]


def test_a_whole_life_condition_by_condition() -> None:
    previous: dict[str, Any] = {}
    for label, children, phase, connected, conditions in LIFE:
        status = derive_status(previous, obs(**children)).status
        assert (status["phase"], status["connectedWorkers"]) == (phase, connected), label
        assert _conditions(status) == conditions, label
        previous = status


@pytest.mark.parametrize(("previous", "result_workers", "connected"), [
    ({"locust": {"maxWorkerCount": 3}, "connectedWorkers": 1}, 2, 3),  # the live peak
    ({"connectedWorkers": 1}, 3, 3),  # the workers the final results name
    ({"connectedWorkers": 2}, 1, 2),  # the count shown before
    ({"locust": {"maxWorkerCount": "junk"}, "connectedWorkers": 1}, None, 1),  # only numbers count
])
def test_a_finished_test_shows_the_most_workers_that_were_connected(previous: dict[str, Any],
                                                                    result_workers: int | None,
                                                                    connected: int) -> None:
    result = {**RESULT, "workers": result_workers}
    children = {**CREATED, "master_job": job(complete=True)}
    status = derive_status({"phase": "Running", **previous}, obs(
        **children, expected_workers=4, master_exit_code=0, result=result)).status
    assert status["connectedWorkers"] == connected
    assert _conditions(status)["WorkersConnected"] == ("False", "WaitingForWorkers",
                                                       f"{connected}/4 workers connected")


def test_workers_connected_names_processes_and_pods() -> None:
    status = derive_status({}, obs(**{**CREATED, **RUNNING_MASTER, "worker_job": job(ready=1, active=2)},
                                   expected_workers=4, processes_per_pod=2)).status
    assert _conditions(status)["WorkersConnected"] == (
        "False", "WaitingForWorkers", "2/4 workers connected (2 processes in each of 2 pods)")
    assert status["workerPods"] == {"expected": 2, "ready": 1, "processesPerPod": 2}
    single = derive_status({}, obs(**{**CREATED, **RUNNING_MASTER, "worker_job": job(ready=1)})).status
    assert _conditions(single)["WorkersConnected"][2] == "1/2 workers connected"


@pytest.mark.parametrize(("children", "previous_reason", "ready"), [
    ({"service": True, "master_job": job(), "worker_job": job()}, None, ("True", "ResourcesCreated")),
    ({"service": True, "master_job": job()}, None, ("False", "ResourcesCreating")),  # no worker Job yet
    ({"service": True, "worker_job": job()}, None, ("False", "ResourcesCreating")),
    ({"master_job": job(), "worker_job": job()}, None, ("False", "ResourcesCreating")),  # no Service yet
    # Created once: a child the watch has not seen again is not "creating".
    ({"service": True}, "ResourcesCreated", ("True", "ResourcesCreated")),
])
def test_ready_needs_all_three_children(children: dict[str, Any], previous_reason: str | None,
                                       ready: tuple[str, str]) -> None:
    previous = {"conditions": [{"type": "Ready", "status": "True", "reason": previous_reason, "message": "",
                                "lastTransitionTime": EARLIER}]} if previous_reason else {}
    found = condition(derive_status(previous, obs(**children)).status, "Ready") or {}
    assert (found.get("status"), found.get("reason")) == ready


@pytest.mark.parametrize("children", [
    {"service": True, "master_job": job(), "worker_job": job(), "deleted": ("worker Job",)},  # TTL cleanup
    {"service": True, "master_job": job()},  # the worker Job gone
    {},
])
def test_a_finished_test_keeps_its_ready_condition_when_children_go(children: dict[str, Any]) -> None:
    kept = {"type": "Ready", "status": "True", "reason": "ResourcesCreated", "message": "created",
            "lastTransitionTime": EARLIER}
    status = derive_status({"phase": "Succeeded", "conditions": [kept]}, obs(**children)).status
    assert condition(status, "Ready") == kept


def test_deleted_children_are_named_in_ready() -> None:
    status = derive_status(RUNNING_BEFORE, obs(**{**CREATED, **RUNNING_MASTER,
                                                  "deleted": ("Service", "worker Job")})).status
    assert (condition(status, "Ready") or {}).get("message") == \
        "Service, worker Job deleted while the test was running; not re-created"


def test_start_time_is_kept_from_the_first_running_status() -> None:
    running = obs(**{**CREATED, **RUNNING_MASTER})
    status = derive_status({**RUNNING_BEFORE, "startTime": EARLIER}, running).status
    assert status["startTime"] == EARLIER
    fresh = derive_status({}, obs(**{**CREATED, **RUNNING_MASTER})).status
    assert fresh["startTime"] == timestamp(NOW)
    assert "startTime" not in derive_status({}, obs(**CREATED)).status  # not before it runs


def test_the_final_numbers_in_status_locust() -> None:
    result = {**RESULT, "failures": 1, "failRatio": "0.1"}
    status = derive_status(RUNNING_BEFORE, obs(**{**CREATED, "master_job": job(complete=True)},
                                               master_exit_code=0, result=result)).status
    assert {k: status["locust"][k] for k in ("totalRps", "failRatio", "failPercent")} == \
        {"totalRps": "1.0", "failRatio": "0.1", "failPercent": "10.00"}


def _st(phase: str | None = None, **conditions: tuple[str, str, str]) -> dict[str, Any]:
    """A status with these conditions, each given as type=(status, reason, message)."""
    status: dict[str, Any] = {} if phase is None else {"phase": phase}
    status["conditions"] = [{"type": kind, "status": s, "reason": r, "message": m}
                            for kind, (s, r, m) in conditions.items()]
    return status


def _drifted(generation: int) -> dict[str, Any]:
    status = _st("Running",
                 SpecDrifted=("True", "SpecChangeIgnored", f"spec changed (generation {generation})"))
    status["conditions"][0]["observedGeneration"] = generation
    return status


OVERLOADED = "up to 3 of 8 Locust workers missed their heartbeats"
EVENTS: list[tuple[dict[str, Any], dict[str, Any], list[tuple[str, str, str]]]] = [
    ({}, {}, []),
    ({}, {"phase": "Pending"}, []),
    (_st(Ready=("True", "ResourcesCreated", "")), _st(Ready=("False", "ResourcesFailed", "Service deleted")),
     [("Warning", "ResourceDeleted", "Service deleted")]),
    (_st(Ready=("False", "ResourcesCreating", "")), _st(Ready=("False", "ResourcesFailed", "forbidden")), []),
    ({"phase": "Pending"}, {"phase": "Running", "startTime": EARLIER},
     [("Normal", "TestStarted", "the master is running")]),
    ({"phase": "Running", "startTime": EARLIER}, {"phase": "Running", "startTime": EARLIER}, []),
    ({"phase": "Running"}, {"phase": "Succeeded"},
     [("Normal", "TestCompleted", "the test completed successfully")]),
    ({}, {"phase": "Succeeded"}, [("Normal", "TestCompleted", "the test completed successfully")]),
    ({"phase": "Succeeded"}, {"phase": "Succeeded"}, []),
    ({"phase": "Running"},
     _st("Failed", TestCompleted=("False", "ThresholdsBreached", "p95 120 ms > 100 ms")),
     [("Warning", "TestFailed", "ThresholdsBreached: p95 120 ms > 100 ms")]),
    ({"phase": "Running"}, {"phase": "Failed"}, [("Warning", "TestFailed", "TestFailed: the test failed")]),
    ({"phase": "Failed"}, {"phase": "Failed"}, []),
    (_st(PodsHealthy=("Unknown", "PodsStarting", "")),
     _st(PodsHealthy=("False", "ImagePullError", "pod p: x")),
     [("Warning", "PodFailure", "pod p: x")]),
    (_st(PodsHealthy=("False", "ImagePullError", "a")), _st(PodsHealthy=("False", "ImagePullError", "b")),
     []),
    ({}, _st(JobsStopped=("True", "Aborted", "the test failed (Aborted); 1 master pod ended")),
     [("Normal", "JobsStopped", "the test failed (Aborted); 1 master pod ended")]),
    (_st(JobsStopped=("True", "Aborted", "a")), _st(JobsStopped=("True", "Aborted", "b")), []),
    ({}, {"locust": {"message": "the answer is over 1 MiB"}},
     [("Warning", "MasterAnswerRefused", "the answer is over 1 MiB")]),
    ({"locust": {"message": "same"}}, {"locust": {"message": "same"}}, []),
    ({"locust": {"message": "same"}}, {"locust": {}}, []),
    ({}, _st(MasterOverloaded=("True", "HeartbeatsMissed", OVERLOADED)),
     [("Warning", "MasterOverloaded", OVERLOADED)]),
    ({}, _st(WorkersOverloaded=("True", "CpuSaturated", "cpu")), [("Warning", "WorkersOverloaded", "cpu")]),
    (_st(WorkersOverloaded=("True", "CpuSaturated", "a")),
     _st(WorkersOverloaded=("True", "CpuSaturated", "b")),
     []),
    ({}, _drifted(2), [("Warning", "SpecChangeIgnored", "spec changed (generation 2)")]),
    (_drifted(2), _drifted(2), []),
    (_drifted(2), _drifted(3), [("Warning", "SpecChangeIgnored", "spec changed (generation 3)")]),
    # Several at once, in this order.
    (_st("Running", PodsHealthy=("True", "PodsHealthy", "")),
     {**_st("Failed", TestCompleted=("False", "ImagePullError", "pod w: x"),
            PodsHealthy=("False", "ImagePullError", "pod w: x"),
            JobsStopped=("True", "ImagePullError", "ended")),
      "startTime": EARLIER},
     [("Normal", "TestStarted", "the master is running"),
      ("Warning", "TestFailed", "ImagePullError: pod w: x"),
      ("Warning", "PodFailure", "pod w: x"), ("Normal", "JobsStopped", "ended")]),
]


@pytest.mark.parametrize(("previous", "current", "expected"), EVENTS)
def test_transition_events(previous: dict[str, Any], current: dict[str, Any],
                           expected: list[tuple[str, str, str]]) -> None:
    assert [(e.type, e.reason, e.message) for e in transition_events(previous, current)] == expected


def test_spec_drift_message_says_what_to_do() -> None:
    status = derive_status({}, obs(**CREATED, generation=2)).status
    assert (condition(status, "SpecDrifted") or {}).get("message") == (
        "spec changed (generation 2); tests are immutable, the change was not applied: delete and "
        "re-create the test to change it")


def test_a_grace_period_is_rechecked_only_while_the_test_runs() -> None:
    problem = PodProblem("demo-worker-a", "ImagePullError", "pod demo-worker-a: ErrImagePull",
                         timestamp(NOW - timedelta(seconds=30)))
    running = derive_status(RUNNING_BEFORE, obs(**{**CREATED, **RUNNING_MASTER}, problems=(problem,)))
    assert running.recheck_after == pytest.approx(90.0)  # 120 s of grace, 30 s gone
    ended = derive_status(RUNNING_BEFORE, obs(**{**CREATED, "master_job": job(complete=True)},
                                              master_exit_code=0, result=RESULT, problems=(problem,)))
    assert ended.status["phase"] == "Succeeded" and ended.recheck_after is None
    undated = PodProblem("demo-worker-a", "ImagePullError", "pod demo-worker-a: ErrImagePull", None)
    failed = derive_status(RUNNING_BEFORE, obs(**{**CREATED, **RUNNING_MASTER}, problems=(undated,)))
    assert failed.status["phase"] == "Failed"  # no start time: the grace period is over


def test_worker_pods_and_counts_of_a_finished_test() -> None:
    assert derive_status({}, obs(**CREATED, expected_workers=3)).status["workerPods"] == {
        "expected": 3, "ready": 0, "processesPerPod": 1}
    before = {**RUNNING_BEFORE, "workerPods": {"expected": 2, "ready": 2, "processesPerPod": 1}}
    done = {**CREATED, "master_job": job(complete=True), "worker_job": job()}
    status = derive_status(before, obs(**done, master_exit_code=0, result=RESULT)).status
    assert status["workerPods"]["ready"] == 2  # the most that were ready, once ended
    bare = derive_status({"phase": "Running"}, obs(**done, master_exit_code=0, result=RESULT)).status
    assert bare["workerPods"]["ready"] == 0
    kept = derive_status({"phase": "Succeeded"}, obs(**done)).status
    assert kept["connectedWorkers"] == 0  # a finished status without the count


def test_a_failed_start_stops_the_jobs_now_even_when_the_master_exited() -> None:
    overdue = PodProblem("demo-worker-a", "ImagePullError", "pod demo-worker-a: ErrImagePull", EARLIER,
                         final=True)
    derived = derive_status(RUNNING_BEFORE, obs(**{**CREATED, "master_job": job(failed=True),
                                                   "worker_job": job(active=2)},
                                                master_exit_code=1, problems=(overdue,), worker_pods_live=2))
    assert (derived.status["phase"], derived.status.get("verdict")) == ("Failed", "TestFailed")
    assert derived.stop_jobs == STOP_NOW  # not the grace a master that ended a run by itself gets
    assert (condition(derived.status, "JobsStopped") or {}).get("reason") == "ImagePullError"


def test_a_status_the_operator_did_not_write_does_not_break_it() -> None:
    status = derive_status({"phase": "Bogus"}, obs(**{**CREATED, **RUNNING_MASTER})).status
    assert status["phase"] == "Running"


def test_a_finished_test_keeps_its_overload_condition() -> None:
    kept = {"type": "MasterOverloaded", "status": "True", "reason": "HeartbeatsMissed", "message": "up to 2",
            "lastTransitionTime": EARLIER}
    status = derive_status({"phase": "Succeeded", "conditions": [kept]}, obs(**CREATED)).status
    assert condition(status, "MasterOverloaded") == kept
