"""The verdict (rules/verdict.py): each way a test ends, its reason and its whole message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from locust_operator.rules import verdict
from locust_operator.rules.observation import Observation

NOW = datetime(2026, 12, 1, tzinfo=UTC)
NUMBERS = {"requests": 120, "failures": 3, "failRatio": "0.025", "rps": "4.0", "responseTimeMs": {"p95": 80}}
SAID = "120 requests, 3 failed (2.50%), 4.0 rps, p95 80 ms"


def _obs(**fields: Any) -> Observation:
    return Observation(generation=1, expected_workers=2, now=NOW, grace_seconds=60, **fields)


@pytest.mark.parametrize(("result", "said"), [
    (None, "no results"),
    ({}, "no results"),
    ({"message": "x"}, "no results"),  # a result without numbers
    (NUMBERS, SAID),
    ({"requests": 5, "failures": 0}, "5 requests, 0 failed (0.00%), 0 rps"),  # defaults; no p95
    ({**NUMBERS, "failRatio": "n/a", "responseTimeMs": {}}, "120 requests, 3 failed (0.00%), 4.0 rps"),
])
def test_numbers(result: dict[str, Any] | None, said: str) -> None:
    assert verdict.numbers(result) == said


@pytest.mark.parametrize(("result", "made"), [
    (None, False), ({"requests": 0}, False), ({"requests": 1}, True), ({"requests": None}, False),
])
@pytest.mark.parametrize(("locust", "live"), [
    (None, False), ({"totalRps": 0}, False), ({"totalRps": 0.5}, True), ({"totalRps": "junk"}, False),
    ({"totalRps": 1}, True),
])
def test_a_locustfile_error_counts_only_before_any_request(result: dict[str, Any] | None, made: bool,
                                                           locust: dict[str, Any] | None, live: bool) -> None:
    obs = _obs(locustfile_error="master pod p: ImportError: no module x", locust=locust)
    phase, found = verdict.decide({}, obs, "Running", None, result, early=False)
    if made or live:
        assert (phase, found) == ("Running", None)
    else:
        assert (phase, found) == ("Failed", (verdict.LOCUSTFILE_ERROR, "the locustfile could not be loaded: "
                                             "master pod p: ImportError: no module x"))


THRESHOLDS_OK = {**NUMBERS, "thresholds": {"breaches": []}}
BREACHED = {**NUMBERS, "thresholds": {"breaches": ["fail ratio 0.025 > 0.01", "p95 80 ms > 50 ms"]}}


@pytest.mark.parametrize(("fields", "result", "expected"), [
    # Thresholds alone.
    ({"thresholds_set": True}, THRESHOLDS_OK, (True, "TestSucceeded", f"all thresholds passed: {SAID}")),
    ({"thresholds_set": True}, BREACHED, (False, "ThresholdsBreached",
                                          "thresholds breached: fail ratio 0.025 > 0.01; p95 80 ms > 50 ms")),
    ({"thresholds_set": True}, {"message": "the master's API did not answer"},
     (False, "ThresholdsBreached", "thresholds breached: no results to evaluate the thresholds on "
                                   "(the master's API did not answer)")),
    ({"thresholds_set": True}, {},
     (False, "ThresholdsBreached", "thresholds breached: no results to evaluate "
                                   "the thresholds on (no results were read)")),
    # The baseline alone.
    ({"baseline_set": True}, {**NUMBERS, "baseline": {"runs": ["demo-3"], "breaches": []}},
     (True, "TestSucceeded", f"no regression vs demo-3: {SAID}")),
    ({"baseline_set": True}, {**NUMBERS, "baseline": {"runs": ["a", "b", "c"]}},
     (True, "TestSucceeded", f"no regression vs the median of 3 runs: {SAID}")),
    ({"baseline_set": True}, {**NUMBERS, "baseline": {"runs": []}},
     (True, "TestSucceeded", f"no baseline yet: {SAID}")),
    ({"baseline_set": True}, {**NUMBERS, "baseline": {"runs": [], "message": "the first run of series s"}},
     (True, "TestSucceeded", f"the first run of series s: {SAID}")),
    ({"baseline_set": True}, {**NUMBERS, "baseline": {"runs": ["a"], "breaches": ["p95 +40%", "rps -20%"]}},
     (False, "Regressed", "regressed: p95 +40%; rps -20%")),
    ({"baseline_set": True}, {**NUMBERS, "baseline": {"error": "spec.baseline.series: no such series"}},
     (False, "BaselineInvalid", "spec.baseline.series: no such series")),
    ({"baseline_set": True}, {"message": "no answer"},
     (False, "Regressed", "regressed: no results to compare with the baseline (no answer)")),
    ({"baseline_set": True}, {}, (False, "Regressed", "regressed: no results to compare with the baseline "
                                                      "(no results were read)")),
    # Both: every breach is said, the thresholds' reason first; passes are joined.
    ({"thresholds_set": True, "baseline_set": True},
     {**BREACHED, "baseline": {"runs": ["a"], "breaches": ["p95 +40%"]}},
     (False, "ThresholdsBreached", "thresholds breached: fail ratio 0.025 > 0.01; p95 80 ms > 50 ms; "
                                   "regressed: p95 +40%")),
    ({"thresholds_set": True, "baseline_set": True}, {**THRESHOLDS_OK, "baseline": {"runs": ["a"]}},
     (True, "TestSucceeded", f"all thresholds passed, no regression vs a: {SAID}")),
])
def test_judged(fields: dict[str, Any], result: dict[str, Any], expected: tuple[bool, str, str]) -> None:
    assert verdict.judged(_obs(**fields), result) == expected


JOB_FAILED = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                              "message": "Job has reached the specified backoff limit"}]}


@pytest.mark.parametrize(("previous", "fields", "result", "job_phase", "expected"), [
    ({}, {"master_exit_code": 0}, NUMBERS, "Succeeded",
     (True, "TestSucceeded", f"the master Job completed: {SAID}")),
    ({}, {"master_exit_code": 0}, None, "Succeeded", (True, "TestSucceeded", "the master Job completed")),
    ({}, {"master_exit_code": 1}, NUMBERS, "Failed",
     (False, "LocustErrors", f"Locust reported errors (exit code 1): {SAID}")),
    ({}, {"master_exit_code": 1}, None, "Failed",
     (False, "LocustErrors", "Locust reported errors (exit code 1)")),
    ({}, {"master_exit_code": 2, "master_crash": "KeyError: 'x'"}, None, "Failed",
     (False, "TestCrashed", "the master exited with code 2: KeyError: 'x'")),
    ({}, {"master_exit_code": 137}, None, "Running",
     (False, "TestCrashed", "the master exited with code 137")),
    ({}, {"master_exit_code": 137, "master_job": JOB_FAILED}, None, "Failed",
     (False, "TestCrashed", "the master exited with code 137: master Job failed: BackoffLimitExceeded "
                            "Job has reached the specified backoff limit")),
    # A crash while the Job is still active: the Job says nothing yet.
    ({}, {"master_exit_code": 137, "master_job": {"active": 1}}, None, "Running",
     (False, "TestCrashed", "the master exited with code 137")),
    # The Job failed with no exit code seen, with failed requests: Locust's errors.
    ({}, {}, NUMBERS, "Failed", (False, "LocustErrors", f"Locust reported errors (exit code 1): {SAID}")),
    # The Job failed with no exit code seen and no failed request: the Job says why.
    ({}, {"master_job": JOB_FAILED}, None, "Failed",
     (False, "TestCrashed",
          "master Job failed: BackoffLimitExceeded Job has reached the specified backoff limit")),
    # No worker ever connected, on Locust's own evidence.
    ({"locust": {"maxWorkerCount": 0}}, {"master_exit_code": 1}, {"requests": 0, "failures": 0}, "Failed",
     (False, "WorkersNotConnected", "no worker connected to the master during the run (2 expected)")),
    ({}, {"master_exit_code": 1, "locust": {"workerCount": 0}}, None, "Failed",
     (False, "WorkersNotConnected", "no worker connected to the master during the run (2 expected)")),
    ({}, {"master_exit_code": 1}, {"workers": 0}, "Failed",
     (False, "WorkersNotConnected", "no worker connected to the master during the run (2 expected)")),
    # ... a worker seen once is enough, and requests prove workers.
    ({"locust": {"maxWorkerCount": 1}}, {"master_exit_code": 1, "locust": {"workerCount": 0}}, None, "Failed",
     (False, "LocustErrors", "Locust reported errors (exit code 1)")),
    ({"locust": {"maxWorkerCount": 0}}, {"master_exit_code": 1}, {**NUMBERS, "workers": 0}, "Failed",
     (False, "LocustErrors", f"Locust reported errors (exit code 1): {SAID}")),
    ({}, {"master_exit_code": 1}, {"requests": 1, "failures": 0, "workers": 0}, "Failed",
     (False, "LocustErrors", "Locust reported errors (exit code 1): 1 requests, 0 failed (0.00%), 0 rps")),
    ({}, {"master_exit_code": 1}, {"requests": 0, "failures": 0}, "Failed",
     (False, "LocustErrors", "Locust reported errors (exit code 1): 0 requests, 0 failed (0.00%), 0 rps")),
    # Thresholds decide over the exit code.
    ({}, {"master_exit_code": 1, "thresholds_set": True}, THRESHOLDS_OK, "Failed",
     (True, "TestSucceeded", f"all thresholds passed: {SAID}")),
])
def test_run_verdict(previous: dict[str, Any], fields: dict[str, Any], result: dict[str, Any] | None,
                     job_phase: str, expected: tuple[bool, str, str]) -> None:
    assert verdict.run_verdict(previous, _obs(**fields), result, job_phase) == expected


@pytest.mark.parametrize(("fields", "phase", "failure", "result", "early", "expected"), [
    ({"aborted": True}, "Running", None, NUMBERS, False,
     ("Failed", ("Aborted", "aborted on request (annotation locust.io/abort); "
                            f"results up to then kept: {SAID}"))),
    ({"aborted": True}, "Running", None, {"message": "x"}, False,
     ("Failed", ("Aborted", "aborted on request (annotation locust.io/abort)"))),
    ({}, "Running", "pod p cannot be scheduled", None, False,
     ("Failed", ("TestFailed", "pod p cannot be scheduled"))),
    ({}, "Failed", "pod p cannot be scheduled", None, False,
     ("Failed", ("TestFailed", "pod p cannot be scheduled"))),
    # A master that completed wins over a late pod problem.
    ({"master_exit_code": 0}, "Succeeded", "pod w cannot be scheduled", NUMBERS, False,
     ("Succeeded", ("TestSucceeded", f"the master Job completed: {SAID}"))),
    ({"thresholds_set": True}, "Running", None, THRESHOLDS_OK, True,
     ("Succeeded", ("TestSucceeded", f"all thresholds passed: {SAID}"))),
    ({"deadline_exceeded": 600}, "Running", None, NUMBERS, False,
     ("Failed", ("DeadlineExceeded", f"the test ran longer than 600s (maxDurationSeconds); "
                                     f"results up to then kept: {SAID}"))),
    ({"deadline_exceeded": 600}, "Running", None, None, False,
     ("Failed", ("DeadlineExceeded", "the test ran longer than 600s (maxDurationSeconds)"))),
    ({}, "Running", None, None, False, ("Running", None)),
    ({}, "Pending", None, None, False, ("Pending", None)),
])
def test_decide(fields: dict[str, Any], phase: str, failure: str | None, result: dict[str, Any] | None,
                early: bool, expected: tuple[str, tuple[str, str] | None]) -> None:
    assert verdict.decide({}, _obs(**fields), phase, failure, result, early) == expected


@pytest.mark.parametrize(("conditions", "reason"), [
    ({}, "TestFailed"),
    ({"PodsHealthy": {"status": "False", "reason": "ImagePullError"}}, "ImagePullError"),
    ({"PodsHealthy": {"status": "False"}}, "TestFailed"),
    ({"PodsHealthy": {"status": "True", "reason": "AllPodsHealthy"},
      "Ready": {"status": "False", "reason": "NameConflict"}}, "NameConflict"),
    ({"PodsHealthy": {"status": "False", "reason": "CrashLoopBackOff"},
      "Ready": {"status": "False", "reason": "ResourcesFailed"}}, "CrashLoopBackOff"),
])
def test_failure_reason(conditions: dict[str, dict[str, Any]], reason: str) -> None:
    assert verdict.failure_reason(conditions) == reason
