"""Derive a LocustTest's status from what its children report (pure functions).

Everything here is a function of the previous status and an Observation, so
the rules are table-tested without a cluster:
- the phase follows the master Job (Complete -> Succeeded, Failed -> Failed,
  a Ready pod -> Running), never goes back to Pending once Running, and a
  terminal phase never changes;
- conditions follow Kubernetes conventions: lastTransitionTime moves only
  when the status flips;
- pods that cannot start (image, config, scheduling, crash loop) fail the
  test once their grace period is over, with the cause in the message.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from locust_operator.rules.bounded import text
from locust_operator.rules.health import PodProblem, root_cause

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL = (SUCCEEDED, FAILED)
_RANK = {PENDING: 0, RUNNING: 1, SUCCEEDED: 2, FAILED: 2}
CONDITION_ORDER = ("Ready", "WorkersConnected", "TestCompleted", "Finished", "PodsHealthy", "JobsStopped",
                   "SpecDrifted", "Tracking")
# Reasons of TestCompleted (and Finished, and status.verdict) once the test ended.
TEST_SUCCEEDED, THRESHOLDS_BREACHED, LOCUST_ERRORS = "TestSucceeded", "ThresholdsBreached", "LocustErrors"
WORKERS_NOT_CONNECTED, TEST_CRASHED, ABORTED = "WorkersNotConnected", "TestCrashed", "Aborted"
# The test outlived spec.maxDurationSeconds (or the operator's maxTestDurationSeconds).
DEADLINE_EXCEEDED = "DeadlineExceeded"
# The test could not run: its resources or pods failed (not a verdict on the load).
TEST_FAILED = "TestFailed"

Status = dict[str, Any]
# A condition's message is cut here: pod and Job messages in it are the tenant's.
MESSAGE_CHARS = 4096


@dataclasses.dataclass(frozen=True)
class Observation:
    """What the controller currently knows of one test's children."""

    generation: int
    expected_workers: int
    now: datetime
    grace_seconds: int
    service: bool = False
    master_job: dict[str, Any] | None = None  # the Job's .status, None when absent
    worker_job: dict[str, Any] | None = None
    # Ready pods of each role, from the pod watch: the Job controller may publish
    # its `ready` counter late (or never, when throttled), the pods tell first.
    master_pods_ready: int = 0
    worker_pods_ready: int = 0
    create_error: str | None = None  # why the children could not be created
    # Ready's reason for create_error: ResourcesFailed, or NameConflict when a
    # child's name is taken by an object this test does not own.
    create_error_reason: str = "ResourcesFailed"
    # Children whose deletion was observed ("Service", "master Job", "worker Job").
    # Absence from the watch caches alone proves nothing: a new Job may not be seen yet.
    deleted: tuple[str, ...] = ()
    # Summary of the master's /stats/requests (locust_stats.summarize), when read.
    locust: dict[str, Any] | None = None
    problems: tuple[PodProblem, ...] = ()
    # The run's final results (results.summary, with the thresholds' evaluation),
    # once read; kept in status.result from then on.
    result: dict[str, Any] | None = None
    thresholds_set: bool = False
    # The master container's exit code, once it terminated (from its pod).
    master_exit_code: int | None = None
    # The user asked to stop the test (the abort annotation) and the operator did.
    aborted: bool = False
    # The final results were read from the master's API after Locust reported
    # `stopped`, and stayed the same over a worker report interval: with
    # thresholds, the outcome is decided.
    run_stopped: bool = False
    # The test outlived this many seconds (its maxDurationSeconds), else None.
    deadline_exceeded: int | None = None
    # Why the master's answers were refused (status.locust.message), when they were.
    live_problem: str | None = None
    # The master's container exited but its final results are not read yet (its log
    # may still be being written): its exit code alone does not end the test yet.
    results_pending: bool = False
    # Pods of each role not yet terminated (running or pending), for JobsStopped.
    master_pods_live: int = 0
    worker_pods_live: int = 0


@dataclasses.dataclass(frozen=True)
class Derived:
    status: Status
    # Seconds until a pod's grace period ends and the status must be derived again.
    recheck_after: float | None
    # The test just became terminal while a Job is still active: end the Jobs
    # (before this status is written), so no pod of a finished test runs on.
    # STOP_NOW, or STOP_AFTER_GRACE when the master exited by itself (its
    # workers quit with it: the Job controller ends only those that do not).
    stop_jobs: str | None = None


STOP_NOW, STOP_AFTER_GRACE = "now", "after-grace"
# Seconds the workers of a master that exited by itself get to exit too.
WORKER_EXIT_GRACE_SECONDS = 30


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def condition(status: Status, kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c.get("type") == kind), None)


def _set(conditions: dict[str, dict[str, Any]], previous: Status, kind: str, state: str,
         reason: str, message: str, obs: Observation) -> None:
    old = condition(previous, kind)
    moved = old is None or old.get("status") != state
    conditions[kind] = {
        "type": kind,
        "status": state,
        "reason": reason,
        "message": text(message, MESSAGE_CHARS),
        "lastTransitionTime": timestamp(obs.now) if moved else old["lastTransitionTime"],  # type: ignore[index]
        "observedGeneration": obs.generation,
    }


def _keep(conditions: dict[str, dict[str, Any]], previous: Status, kind: str) -> None:
    old = condition(previous, kind)
    if old is not None:
        conditions[kind] = old


def _job_state(job: dict[str, Any] | None, pods_ready: int = 0) -> str:
    if job is None:
        return PENDING
    states = {c.get("type"): c.get("status") for c in job.get("conditions", [])}
    if states.get("Complete") == "True":
        return SUCCEEDED
    if states.get("Failed") == "True":
        return FAILED
    # `ready` (pods passing readiness) rather than `active`, which also counts
    # pods stuck pulling an image; fall back to `active` on old API servers.
    running = max(int(job.get("ready", job.get("active", 0)) or 0), pods_ready)
    return RUNNING if running > 0 else PENDING


def job_finished(job: dict[str, Any] | None) -> bool:
    """The Job reached Complete or Failed."""
    return _job_state(job) in TERMINAL


def _succeeded_pods(job: dict[str, Any] | None) -> int:
    # The Job controller first lists finished pods as uncounted, then counts them.
    job = job or {}
    uncounted = (job.get("uncountedTerminatedPods") or {}).get("succeeded") or []
    return int(job.get("succeeded", 0) or 0) + len(uncounted)


def _job_failure(job: dict[str, Any]) -> str:
    for cond in job.get("conditions", []):
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return f"master Job failed: {cond.get('reason', '')} {cond.get('message', '')}".strip()
    return "master Job failed"


def _overdue(problem: PodProblem, obs: Observation) -> float:
    """Seconds past the problem's grace period (negative: still inside it)."""
    if problem.since is None:
        return 0.0
    return (obs.now - _parse(problem.since)).total_seconds() - obs.grace_seconds


def derive_status(previous: Status, obs: Observation) -> Derived:
    prev_phase = previous.get("phase", PENDING)
    was_created = (condition(previous, "Ready") or {}).get("reason") == "ResourcesCreated"
    all_exist = obs.service and obs.master_job is not None and obs.worker_job is not None
    conditions: dict[str, dict[str, Any]] = {}
    recheck: float | None = None
    failure: str | None = None

    # What the children say, before the monotonic phase rule. The master's exit code
    # decides as soon as its pod reports it (restartPolicy Never, backoffLimit 0: the
    # Job follows), without waiting for its sidecar to stop and the Job controller.
    phase = _job_state(obs.master_job, obs.master_pods_ready)
    if phase not in TERMINAL and obs.master_exit_code is not None and not obs.results_pending:
        phase = SUCCEEDED if obs.master_exit_code == 0 else FAILED
    master_done = phase in TERMINAL
    result = previous.get("result") if prev_phase in TERMINAL else (obs.result or previous.get("result"))

    # Ready: were the Service and both Jobs created (and are they still there)?
    if prev_phase in TERMINAL and (obs.deleted or not all_exist):
        _keep(conditions, previous, "Ready")  # e.g. ttlSecondsAfterFinished removed the Jobs
    elif obs.create_error:
        _set(conditions, previous, "Ready", "False", obs.create_error_reason, obs.create_error, obs)
        failure = failure or f"could not create the test's resources: {obs.create_error}"
    elif obs.deleted:
        message = f"{', '.join(obs.deleted)} deleted while the test was running; not re-created"
        _set(conditions, previous, "Ready", "False", "ResourcesFailed", message, obs)
        failure = failure or message
    elif all_exist or was_created:
        _set(conditions, previous, "Ready", "True", "ResourcesCreated",
             "Service, master Job and worker Job created", obs)
    else:
        _set(conditions, previous, "Ready", "False", "ResourcesCreating",
             "creating the Service and Jobs", obs)

    # PodsHealthy: a pod that cannot start fails the test after the grace period.
    if prev_phase in TERMINAL:
        _keep(conditions, previous, "PodsHealthy")
    elif obs.problems:
        # The reported problem is chosen by rank (health.REASON_RANK), not by
        # the order the pods index happens to list them in.
        overdue = [p for p in obs.problems if _overdue(p, obs) >= 0]
        if overdue:
            worst = root_cause(overdue)
            _set(conditions, previous, "PodsHealthy", "False", worst.reason, worst.message, obs)
            failure = failure or worst.message
        else:
            worst = root_cause(obs.problems)
            recheck = min(-_overdue(p, obs) for p in obs.problems)
            _set(conditions, previous, "PodsHealthy", "Unknown", "PodsStarting",
                 f"within the {obs.grace_seconds}s start-up grace period: {worst.message}", obs)
    elif phase == RUNNING or (prev_phase == RUNNING and phase == PENDING):
        _set(conditions, previous, "PodsHealthy", "True", "PodsHealthy", "pods are running", obs)
    elif phase in TERMINAL:
        _set(conditions, previous, "PodsHealthy", "True", "PodsHealthy", "pods ran", obs)
    else:
        _set(conditions, previous, "PodsHealthy", "Unknown", "PodsStarting", "pods are starting", obs)

    verdict: tuple[str, str] | None = None  # (reason, message) once the test ended
    early = obs.thresholds_set and obs.run_stopped and result is not None
    if obs.aborted:
        phase = FAILED
        verdict = (ABORTED, "aborted on request (annotation locust.io/abort)"
                   + (f"; results up to then kept: {_numbers(result)}" if _has_numbers(result) else ""))
    elif failure is not None and not (master_done and phase == SUCCEEDED):
        phase = FAILED
        verdict = (TEST_FAILED, failure)
    elif master_done or early:
        # With thresholds, results read once the run stopped decide: no need to
        # wait for the master to exit after --autoquit.
        passed, reason, message = _verdict(previous, obs, result, phase)
        phase = SUCCEEDED if passed else FAILED
        verdict = (reason, message)
    elif obs.deadline_exceeded is not None:
        phase = FAILED
        verdict = (DEADLINE_EXCEEDED, f"the test ran longer than {obs.deadline_exceeded}s "
                   "(maxDurationSeconds)" + (f"; results up to then kept: {_numbers(result)}"
                                              if _has_numbers(result) else ""))
    # Monotonic: never back to Pending once Running; a terminal phase is final.
    if prev_phase in TERMINAL or _RANK[phase] < _RANK.get(prev_phase, 0):
        phase = prev_phase

    connected = max(int((obs.worker_job or {}).get("ready", 0) or 0), obs.worker_pods_ready)
    source = ""
    if obs.locust is not None and "workerCount" in obs.locust and phase == RUNNING:
        connected, source = int(obs.locust["workerCount"]), " (as the Locust master reports)"
    if prev_phase in TERMINAL:
        connected = int(previous.get("connectedWorkers", 0))
    elif phase in TERMINAL:
        # Workers leave as the run ends: a finished test shows the most that were connected.
        peaks = [v for v in ((previous.get("locust") or {}).get("maxWorkerCount"),
                             (result or {}).get("workers"), previous.get("connectedWorkers"))
                 if isinstance(v, int)]
        connected = max([connected, *peaks])
    counts = f"{connected}/{obs.expected_workers} workers connected{source}"
    # Workers that finished with the test are not missing: keep what was seen during the run.
    workers_done = _job_state(obs.worker_job) in TERMINAL or _succeeded_pods(obs.worker_job) > 0
    if (workers_done or phase in TERMINAL) and condition(previous, "WorkersConnected") is not None:
        _keep(conditions, previous, "WorkersConnected")
    elif phase in TERMINAL:
        _set(conditions, previous, "WorkersConnected", "False", "WaitingForWorkers", counts, obs)
    elif connected >= obs.expected_workers:
        _set(conditions, previous, "WorkersConnected", "True", "AllWorkersConnected", counts, obs)
    elif (condition(previous, "WorkersConnected") or {}).get("reason") in (
            "AllWorkersConnected", "WorkersMissing"):
        _set(conditions, previous, "WorkersConnected", "False", "WorkersMissing", counts, obs)
    else:
        _set(conditions, previous, "WorkersConnected", "False", "WaitingForWorkers", counts, obs)

    if prev_phase in TERMINAL:
        _keep(conditions, previous, "TestCompleted")
        _keep(conditions, previous, "Finished")
    elif phase in TERMINAL and verdict is not None:
        reason, message = verdict
        _set(conditions, previous, "TestCompleted", "True" if phase == SUCCEEDED else "False",
             reason, message, obs)
        _set(conditions, previous, "Finished", "True", reason, f"the test ended: {message}", obs)
    else:
        _set(conditions, previous, "TestCompleted", "False", "TestInProgress",
             "the test is running" if phase == RUNNING else "waiting for the master to start", obs)
        _set(conditions, previous, "Finished", "False", "TestInProgress", "the test has not ended", obs)

    stop_jobs: str | None = None
    if prev_phase in TERMINAL:
        _keep(conditions, previous, "JobsStopped")
    elif phase in TERMINAL and verdict is not None and jobs_active(obs) and \
            master_done and not early and verdict[0] != TEST_FAILED and not obs.aborted:
        stop_jobs = STOP_AFTER_GRACE
    elif phase in TERMINAL and verdict is not None and jobs_active(obs):
        stop_jobs = STOP_NOW
        cause = verdict[0] if verdict[0] != TEST_FAILED else _failure_reason(conditions)
        _set(conditions, previous, "JobsStopped", "True", cause,
             f"the test {'passed' if phase == SUCCEEDED else 'failed'} ({cause}); "
             f"{_pods(obs.master_pods_live, 'master')} and {_pods(obs.worker_pods_live, 'worker')} "
             "ended", obs)

    if obs.generation > 1:
        _set(conditions, previous, "SpecDrifted", "True", "SpecChangeIgnored",
             f"spec changed (generation {obs.generation}); tests are immutable, the change was "
             "not applied: delete and re-create the test to change it", obs)

    status: Status = {
        "phase": phase,
        "observedGeneration": obs.generation,
        "expectedWorkers": obs.expected_workers,
        "connectedWorkers": connected,
    }
    start = previous.get("startTime")
    if start is None and phase in (RUNNING, SUCCEEDED):
        start = timestamp(obs.now)
    if start is not None:
        status["startTime"] = start
    completion = previous.get("completionTime")
    if completion is None and phase in TERMINAL:
        completion = (obs.master_job or {}).get("completionTime") or timestamp(obs.now)
    if completion is not None:
        status["completionTime"] = completion
    locust = _locust(previous, obs.locust, result, phase)
    if obs.live_problem and prev_phase not in TERMINAL:
        locust["message"] = obs.live_problem
    if locust:
        status["locust"] = locust
    if result:
        status["result"] = result
    finished = condition({"conditions": list(conditions.values())}, "Finished") or {}
    if phase in TERMINAL and finished.get("status") == "True":
        status["verdict"] = finished["reason"]
    status["conditions"] = [conditions[k] for k in CONDITION_ORDER if k in conditions]
    return Derived(status, recheck if phase not in TERMINAL else None, stop_jobs=stop_jobs)


def job_deadline(job: dict[str, Any], stop: str, now: datetime) -> int | None:
    """The activeDeadlineSeconds that ends an active Job now (1), or once the grace
    has passed (counted, like the deadline itself, from the Job's startTime);
    None for a Job that has finished."""
    if job_finished(job):
        return None
    if stop == STOP_NOW:
        return 1
    try:
        age = (now - _parse(str(job["startTime"]))).total_seconds()
    except (KeyError, ValueError):
        age = 0.0
    return max(1, int(age) + 1) + WORKER_EXIT_GRACE_SECONDS

def jobs_active(obs: Observation) -> bool:
    """A Job of the test exists and has not finished (its pods may run or start)."""
    return any(job is not None and not job_finished(job) for job in (obs.master_job, obs.worker_job)) \
        or obs.master_pods_live + obs.worker_pods_live > 0


def _failure_reason(conditions: dict[str, dict[str, Any]]) -> str:
    """The reason behind TestFailed: the pods' problem, else the resources'."""
    for kind in ("PodsHealthy", "Ready"):
        found = conditions.get(kind) or {}
        if found.get("status") == "False":
            return str(found.get("reason") or TEST_FAILED)
    return TEST_FAILED


def _pods(count: int, role: str) -> str:
    return f"{count} {role} pod" + ("" if count == 1 else "s")


def with_tracking_error(previous: Status, message: str, now: datetime) -> Status:
    """`previous` with condition Tracking=False: the operator cannot observe the test.

    Written by the loop when observing the test failed unexpectedly; the next
    derived status leaves it out again.
    """
    status = dict(previous)
    old = condition(previous, "Tracking") or {}
    others = [c for c in previous.get("conditions", []) if c.get("type") != "Tracking"]
    status["conditions"] = [*others, {
        "type": "Tracking", "status": "False", "reason": "ObserveError", "message": message,
        "lastTransitionTime": old.get("lastTransitionTime") or timestamp(now),
        "observedGeneration": int(previous.get("observedGeneration") or 1)}]
    return status


def _has_numbers(result: dict[str, Any] | None) -> bool:
    return bool(result) and "requests" in result  # type: ignore[operator]


def _numbers(result: dict[str, Any] | None) -> str:
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


def _workers_never_connected(previous: Status, obs: Observation, result: dict[str, Any] | None) -> bool:
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


def _verdict(previous: Status, obs: Observation, result: dict[str, Any] | None,
             job_phase: str) -> tuple[bool, str, str]:
    """(passed, reason, message) of a run whose master Job finished."""
    code = obs.master_exit_code
    failed_requests = int((result or {}).get("failures", 0) or 0)
    if code is not None and code not in (0, 1):
        return False, TEST_CRASHED, f"the master exited with code {code}" + (
            f": {_job_failure(obs.master_job)}" if job_phase == FAILED and obs.master_job else "")
    if code is None and job_phase == FAILED and failed_requests == 0:
        return False, TEST_CRASHED, _job_failure(obs.master_job or {})
    if _workers_never_connected(previous, obs, result):
        return False, WORKERS_NOT_CONNECTED, (
            f"no worker connected to the master during the run ({obs.expected_workers} expected)")
    if obs.thresholds_set:
        breaches = list(((result or {}).get("thresholds") or {}).get("breaches") or [])
        if not (result or {}).get("thresholds"):
            why = (result or {}).get("message", "no results were read")
            breaches = [f"no results to evaluate the thresholds on ({why})"]
        if breaches:
            return False, THRESHOLDS_BREACHED, "thresholds breached: " + "; ".join(breaches)
        return True, TEST_SUCCEEDED, f"all thresholds passed: {_numbers(result)}"
    if job_phase == SUCCEEDED:
        return True, TEST_SUCCEEDED, "the master Job completed" + (
            f": {_numbers(result)}" if _has_numbers(result) else "")
    if _has_numbers(result):
        return False, LOCUST_ERRORS, f"Locust reported errors (exit code 1): {_numbers(result)}"
    return False, LOCUST_ERRORS, "Locust reported errors (exit code 1)"


def _locust(previous: Status, live: dict[str, Any] | None, result: dict[str, Any] | None,
            phase: str) -> dict[str, Any]:
    """status.locust: the live numbers, the most users and workers seen, and the final
    numbers of the run once it ended (so `kubectl get` shows them after the pods are gone)."""
    before = dict(previous.get("locust") or {})
    if previous.get("phase") in TERMINAL:
        return before
    locust = dict(live) if live is not None else before
    for source, peak in (("userCount", "maxUserCount"), ("workerCount", "maxWorkerCount")):
        values = [v for v in (before.get(peak), before.get(source), locust.get(source))
                  if isinstance(v, int)]
        if values:
            locust[peak] = max(values)
    if "failRatio" in locust:
        locust["failPercent"] = percent(locust["failRatio"])
    if phase in TERMINAL and _has_numbers(result):
        assert result is not None
        locust.update(totalRps=result["rps"], failRatio=result["failRatio"],
                      failPercent=percent(result["failRatio"]))
        if "maxUserCount" in locust:
            locust["userCount"] = locust["maxUserCount"]
    return locust


@dataclasses.dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


def transition_events(previous: Status, current: Status) -> list[Event]:
    """The events that announce the change from `previous` to `current` status."""
    events: list[Event] = []
    before, after = previous.get("phase", PENDING), current.get("phase", PENDING)
    ready_before, ready_after = condition(previous, "Ready") or {}, condition(current, "Ready") or {}
    if (ready_after.get("reason") == "ResourcesFailed" and ready_before.get("reason") == "ResourcesCreated"):
        events.append(Event("Warning", "ResourceDeleted", ready_after.get("message", "")))
    if current.get("startTime") and not previous.get("startTime"):
        events.append(Event("Normal", "TestStarted", "the master is running"))
    if after != before and after == SUCCEEDED:
        events.append(Event("Normal", "TestCompleted", "the test completed successfully"))
    if after != before and after == FAILED:
        completed = condition(current, "TestCompleted") or {}
        message = f"{completed.get('reason', TEST_FAILED)}: {completed.get('message', 'the test failed')}"
        events.append(Event("Warning", "TestFailed", message))
    health_before = condition(previous, "PodsHealthy") or {}
    health_after = condition(current, "PodsHealthy") or {}
    if health_after.get("status") == "False" and health_before.get("status") != "False":
        events.append(Event("Warning", "PodFailure", health_after.get("message", "")))
    stopped_before = condition(previous, "JobsStopped") or {}
    stopped_after = condition(current, "JobsStopped") or {}
    if stopped_after.get("status") == "True" and stopped_before.get("status") != "True":
        events.append(Event("Normal", "JobsStopped", stopped_after.get("message", "")))
    problem = (current.get("locust") or {}).get("message")
    if problem and problem != (previous.get("locust") or {}).get("message"):
        events.append(Event("Warning", "MasterAnswerRefused", problem))
    drift_before = condition(previous, "SpecDrifted") or {}
    drift_after = condition(current, "SpecDrifted") or {}
    if drift_after.get("observedGeneration") != drift_before.get("observedGeneration") and drift_after:
        events.append(Event("Warning", "SpecChangeIgnored", drift_after.get("message", "")))
    return events
