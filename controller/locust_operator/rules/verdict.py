"""The verdict of a test that ended: its reason and message, decided here only (pure)."""

from __future__ import annotations

from typing import Any

from locust_operator.api.contract import FAILED, SUCCEEDED, TERMINAL
from locust_operator.rules.jobs import job_failure
from locust_operator.rules.observation import Observation, Status

# Reasons of TestCompleted (and Finished, and status.verdict) once the test ended.
TEST_SUCCEEDED, THRESHOLDS_BREACHED, LOCUST_ERRORS = "TestSucceeded", "ThresholdsBreached", "LocustErrors"


WORKERS_NOT_CONNECTED, TEST_CRASHED, ABORTED = "WorkersNotConnected", "TestCrashed", "Aborted"


# A Locust container exited before any request because its locustfile could not be loaded.
LOCUSTFILE_ERROR = "LocustfileError"


# spec.baseline: a change beyond an allowed one, or a baseline that cannot be honoured.
REGRESSED, BASELINE_INVALID = "Regressed", "BaselineInvalid"


# The test outlived spec.maxDurationSeconds (or the operator's maxTestDurationSeconds).
DEADLINE_EXCEEDED = "DeadlineExceeded"


# The test could not run: its resources or pods failed (not a verdict on the load).
TEST_FAILED = "TestFailed"


def has_numbers(result: dict[str, Any] | None) -> bool:
    return bool(result) and "requests" in result  # type: ignore[operator]


def numbers(result: dict[str, Any] | None) -> str:
    if not result or "requests" not in result:
        return "no results"
    times = result.get("responseTimeMs", {})
    p95 = f", p95 {times['p95']} ms" if "p95" in times else ""
    return (f"{result['requests']} requests, {result['failures']} failed "
            f"({percent(result.get('failRatio', '0'))}%), {result.get('rps', '0')} rps{p95}")


def percent(ratio: str) -> str:
    """A 0..1 decimal string as a percentage with two decimals (for `kubectl get`)."""
    try:
        return f"{float(ratio) * 100:.2f}"
    except ValueError:
        return "0.00"


def workers_never_connected(previous: Status, obs: Observation, result: dict[str, Any] | None) -> bool:
    """No worker ever joined the master, on Locust's own evidence only.

    Worker pods that ran prove nothing (they may never have reached the master);
    requests prove the opposite (in distributed mode only workers make them).
    """
    if int((result or {}).get("requests", 0) or 0) > 0:
        return False
    seen = [v for v in ((previous.get("locust") or {}).get("maxWorkerCount"),
                        (obs.locust or {}).get("workerCount"), (result or {}).get("workers"))
            if isinstance(v, int)]
    return bool(seen) and max(seen) == 0


def run_verdict(previous: Status, obs: Observation, result: dict[str, Any] | None,
             job_phase: str) -> tuple[bool, str, str]:
    """(passed, reason, message) of a run whose master Job finished."""
    code = obs.master_exit_code
    failed_requests = int((result or {}).get("failures", 0) or 0)
    if code is not None and code not in (0, 1):
        why = obs.master_crash or (job_failure(obs.master_job) if job_phase == FAILED and obs.master_job
                                   else "")
        return False, TEST_CRASHED, f"the master exited with code {code}" + (f": {why}" if why else "")
    if code is None and job_phase == FAILED and failed_requests == 0:
        return False, TEST_CRASHED, job_failure(obs.master_job or {})
    if workers_never_connected(previous, obs, result):
        return False, WORKERS_NOT_CONNECTED, (
            f"no worker connected to the master during the run ({obs.expected_workers} expected)")
    if obs.thresholds_set or obs.baseline_set:
        return judged(obs, result or {})
    if job_phase == SUCCEEDED:
        return True, TEST_SUCCEEDED, "the master Job completed" + (
            f": {numbers(result)}" if has_numbers(result) else "")
    if job_phase not in TERMINAL and code is None:
        # Decided when the run stopped (an interactive test, webUI.keepAfterRun): by Locust's
        # own rule for its exit code, a failed request fails the run.
        if failed_requests == 0:
            return True, TEST_SUCCEEDED, f"the run stopped: {numbers(result)}"
        return False, LOCUST_ERRORS, f"the run stopped with failed requests: {numbers(result)}"
    if has_numbers(result):
        return False, LOCUST_ERRORS, f"Locust reported errors (exit code 1): {numbers(result)}"
    return False, LOCUST_ERRORS, "Locust reported errors (exit code 1)"


def _threshold_breaches(result: dict[str, Any]) -> list[str]:
    if not result.get("thresholds"):
        return [f"no results to evaluate the thresholds on ({result.get('message', 'no results were read')})"]
    return list(result["thresholds"].get("breaches") or [])


def _baseline_breaches(result: dict[str, Any]) -> tuple[list[str], str]:
    """(breaches, what passed) of spec.baseline's comparison."""
    baseline = result.get("baseline")
    if not isinstance(baseline, dict):
        why = result.get("message", "no results were read")
        return [f"no results to compare with the baseline ({why})"], ""
    if baseline.get("error"):
        return [str(baseline["error"])], ""
    runs = baseline.get("runs") or []
    if not runs:
        return [], str(baseline.get("message") or "no baseline yet")
    where = runs[0] if len(runs) == 1 else f"the median of {len(runs)} runs"
    return list(baseline.get("breaches") or []), f"no regression vs {where}"


def judged(obs: Observation, result: dict[str, Any]) -> tuple[bool, str, str]:
    """(passed, reason, message) by spec.thresholds and spec.baseline, which both apply.

    The message lists every breach; the reason is the thresholds' when one is
    breached (an absolute limit), else the baseline's.
    """
    failed: list[tuple[str, str]] = []
    passed: list[str] = []
    if obs.thresholds_set:
        breaches = _threshold_breaches(result)
        if breaches:
            failed.append((THRESHOLDS_BREACHED, "thresholds breached: " + "; ".join(breaches)))
        else:
            passed.append("all thresholds passed")
    if obs.baseline_set:
        breaches, ok = _baseline_breaches(result)
        invalid = isinstance(result.get("baseline"), dict) and bool(result["baseline"].get("error"))
        if breaches:
            failed.append((BASELINE_INVALID, breaches[0]) if invalid
                          else (REGRESSED, "regressed: " + "; ".join(breaches)))
        else:
            passed.append(ok)
    if failed:
        return False, failed[0][0], "; ".join(message for _, message in failed)
    return True, TEST_SUCCEEDED, f"{', '.join(passed)}: {numbers(result)}"


def failure_reason(conditions: dict[str, dict[str, Any]]) -> str:
    """The reason behind TestFailed: the pods' problem, else the resources'."""
    for kind in ("PodsHealthy", "Ready"):
        found = conditions.get(kind) or {}
        if found.get("status") == "False":
            return str(found.get("reason") or TEST_FAILED)
    return TEST_FAILED


def decide(previous: Status, obs: Observation, phase: str, failure: str | None,
           result: dict[str, Any] | None, early: bool) -> tuple[str, tuple[str, str] | None]:
    """The phase and, once the test ended, its verdict (reason, message): the one place it is decided.

    `phase` is what the master's Job and exit code say; `failure` why the test
    could not run (its resources or pods), if so; `early` that the final results
    were read after Locust stopped and thresholds decide without waiting for the
    master to exit.
    """
    master_done = phase in TERMINAL
    if obs.aborted:
        return FAILED, (ABORTED, "aborted on request (annotation locust.io/abort)" + _so_far(result))
    if failure is not None and not (master_done and phase == SUCCEEDED):
        return FAILED, (TEST_FAILED, failure)
    if obs.locustfile_error and not _requests_made(obs, result):
        return FAILED, (LOCUSTFILE_ERROR, f"the locustfile could not be loaded: {obs.locustfile_error}")
    if master_done or early:
        passed, reason, message = run_verdict(previous, obs, result, phase)
        return (SUCCEEDED if passed else FAILED), (reason, message)
    if obs.deadline_exceeded is not None:
        return FAILED, (DEADLINE_EXCEEDED, f"the test ran longer than {obs.deadline_exceeded}s "
                        "(maxDurationSeconds)" + _so_far(result))
    return phase, None


def _requests_made(obs: Observation, result: dict[str, Any] | None) -> bool:
    """Requests were made (final or live numbers): a later crash is not a locustfile that failed to load."""
    try:
        live = float((obs.locust or {}).get("totalRps", 0) or 0)
    except ValueError:
        live = 0.0
    return int((result or {}).get("requests", 0) or 0) > 0 or live > 0


def _so_far(result: dict[str, Any] | None) -> str:
    return f"; results up to then kept: {numbers(result)}" if has_numbers(result) else ""
