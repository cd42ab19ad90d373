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
from typing import Any

from locust_operator.api.contract import FAILED, PENDING, RUNNING, SUCCEEDED, TERMINAL
from locust_operator.api.times import parse_timestamp, timestamp
from locust_operator.rules.conditions import CONDITION_ORDER, condition, keep_condition, set_condition
from locust_operator.rules.fetched import fetched_files_status
from locust_operator.rules.health import PodProblem, root_cause
from locust_operator.rules.jobs import (
    STOP_AFTER_GRACE,
    STOP_KEEP_UI,
    STOP_NOW,
    job_state,
    jobs_active,
    pods_text,
    succeeded_pods,
)
from locust_operator.rules.locust_stats import CPU_WARNING_PERCENT
from locust_operator.rules.observation import Observation, Status
from locust_operator.rules.verdict import TEST_FAILED, decide, failure_reason, has_numbers, percent

_RANK = {PENDING: 0, RUNNING: 1, SUCCEEDED: 2, FAILED: 2}


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


def _overdue(problem: PodProblem, obs: Observation) -> float:
    """Seconds past the problem's grace period (negative: still inside it)."""
    if problem.final:
        return float("inf")
    if problem.since is None:
        return 0.0
    return (obs.now - parse_timestamp(problem.since)).total_seconds() - obs.grace_seconds


@dataclasses.dataclass
class _Look:
    """One derivation: the inputs, and the conditions set so far."""

    previous: Status
    obs: Observation
    conditions: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def was_terminal(self) -> bool:
        return self.previous.get("phase", PENDING) in TERMINAL

    def set(self, kind: str, state: str, reason: str, message: str) -> None:
        set_condition(self.conditions, self.previous, kind, state, reason, message, self.obs)

    def keep(self, *kinds: str) -> None:
        for kind in kinds:
            keep_condition(self.conditions, self.previous, kind)


def derive_status(previous: Status, obs: Observation) -> Derived:
    """The test's status now: phase, conditions, workers, numbers, verdict (and what to end)."""
    look = _Look(previous, obs)
    prev_phase = previous.get("phase", PENDING)
    # What the children say, before the monotonic phase rule. The master's exit code
    # decides as soon as its pod reports it (restartPolicy Never, backoffLimit 0: the
    # Job follows), without waiting for its sidecar to stop and the Job controller.
    phase = job_state(obs.master_job, obs.master_pods_ready)
    if phase not in TERMINAL and obs.master_exit_code is not None and not obs.results_pending:
        phase = SUCCEEDED if obs.master_exit_code == 0 else FAILED
    master_done = phase in TERMINAL
    result = previous.get("result") if look.was_terminal else (obs.result or previous.get("result"))

    failure = _ready(look)
    pods_failure, recheck = _pods_healthy(look, phase)
    early = (obs.thresholds_set or obs.baseline_set or obs.verdict_at_stop) and obs.run_stopped \
        and result is not None
    phase, verdict = decide(previous, obs, phase, failure or pods_failure, result, early)
    # Monotonic: never back to Pending once Running; a terminal phase is final.
    if look.was_terminal or _RANK[phase] < _RANK.get(prev_phase, 0):
        phase = prev_phase

    connected = _workers_connected(look, phase, result)
    _overloaded(look)
    _completed(look, phase, verdict)
    stop_jobs = _stop_jobs(look, phase, verdict, master_done and not early)
    if obs.generation > 1:
        look.set("SpecDrifted", "True", "SpecChangeIgnored",
                 f"spec changed (generation {obs.generation}); tests are immutable, the change was "
                 "not applied: delete and re-create the test to change it")
    status = _fields(look, phase, connected, result)
    return Derived(status, recheck if phase not in TERMINAL else None, stop_jobs=stop_jobs)


def _ready(look: _Look) -> str | None:
    """Ready: were the Service and both Jobs created (and are they still there)? The failure, if any."""
    obs = look.obs
    all_exist = obs.service and obs.master_job is not None and obs.worker_job is not None
    was_created = (condition(look.previous, "Ready") or {}).get("reason") == "ResourcesCreated"
    if look.was_terminal and (obs.deleted or not all_exist):
        look.keep("Ready")  # e.g. ttlSecondsAfterFinished removed the Jobs
    elif obs.create_error:
        look.set("Ready", "False", obs.create_error_reason, obs.create_error)
        return f"could not create the test's resources: {obs.create_error}"
    elif obs.deleted:
        message = f"{', '.join(obs.deleted)} deleted while the test was running; not re-created"
        look.set("Ready", "False", "ResourcesFailed", message)
        return message
    elif all_exist or was_created:
        look.set("Ready", "True", "ResourcesCreated", "Service, master Job and worker Job created")
    else:
        look.set("Ready", "False", "ResourcesCreating", "creating the Service and Jobs")
    return None


def _pods_healthy(look: _Look, phase: str) -> tuple[str | None, float | None]:
    """PodsHealthy: a pod that cannot start fails the test after the grace period.

    (the failure, if any; seconds until a grace period ends, if one is running)
    """
    obs, prev_phase = look.obs, look.previous.get("phase", PENDING)
    if look.was_terminal:
        look.keep("PodsHealthy")
    elif obs.problems:
        # The reported problem is chosen by rank (health.REASON_RANK), not by
        # the order the pods index happens to list them in.
        overdue = [p for p in obs.problems if _overdue(p, obs) >= 0]
        if overdue:
            worst = root_cause(overdue)
            look.set("PodsHealthy", "False", worst.reason, worst.message)
            return worst.message, None
        worst = root_cause(obs.problems)
        look.set("PodsHealthy", "Unknown", "PodsStarting",
                 f"within the {obs.grace_seconds}s start-up grace period: {worst.message}")
        return None, min(-_overdue(p, obs) for p in obs.problems)
    elif phase == RUNNING or (prev_phase == RUNNING and phase == PENDING):
        look.set("PodsHealthy", "True", "PodsHealthy", "pods are running")
    elif phase in TERMINAL:
        look.set("PodsHealthy", "True", "PodsHealthy", "pods ran")
    else:
        look.set("PodsHealthy", "Unknown", "PodsStarting", "pods are starting")
    return None, None


def _ready_worker_pods(obs: Observation) -> int:
    return max(int((obs.worker_job or {}).get("ready", 0) or 0), obs.worker_pods_ready)


def _worker_pods(previous: Status, obs: Observation, terminal: bool) -> dict[str, int]:
    """status.workerPods: the pods behind the Locust workers (the most ready, once ended)."""
    ready = _ready_worker_pods(obs)
    if terminal:
        ready = max(ready, int((previous.get("workerPods") or {}).get("ready", 0) or 0))
    return {"expected": _expected_pods(obs), "ready": ready, "processesPerPod": obs.processes_per_pod}


def _expected_pods(obs: Observation) -> int:
    return obs.expected_workers // max(1, obs.processes_per_pod)


def _workers_connected(look: _Look, phase: str, result: dict[str, Any] | None) -> int:
    """WorkersConnected, and the count of connected workers the status shows."""
    previous, obs = look.previous, look.obs
    # Before the master reports, ready pods stand for the workers they will fork.
    connected = _ready_worker_pods(obs) * obs.processes_per_pod
    source = ""
    if obs.locust is not None and "workerCount" in obs.locust and phase == RUNNING:
        connected, source = int(obs.locust["workerCount"]), " (as the Locust master reports)"
    if look.was_terminal:
        connected = int(previous.get("connectedWorkers", 0))
    elif phase in TERMINAL:
        # Workers leave as the run ends: a finished test shows the most that were connected.
        peaks = [v for v in ((previous.get("locust") or {}).get("maxWorkerCount"),
                             (result or {}).get("workers"), previous.get("connectedWorkers"))
                 if isinstance(v, int)]
        connected = max([connected, *peaks])
    counts = f"{connected}/{obs.expected_workers} workers connected{source}"
    if obs.processes_per_pod > 1:
        counts += f" ({obs.processes_per_pod} processes in each of {_expected_pods(obs)} pods)"
    # Workers that finished with the test are not missing: keep what was seen during the run.
    workers_done = job_state(obs.worker_job) in TERMINAL or succeeded_pods(obs.worker_job) > 0
    if (workers_done or phase in TERMINAL) and condition(previous, "WorkersConnected") is not None:
        look.keep("WorkersConnected")
    elif phase in TERMINAL:
        look.set("WorkersConnected", "False", "WaitingForWorkers", counts)
    elif connected >= obs.expected_workers:
        look.set("WorkersConnected", "True", "AllWorkersConnected", counts)
    elif (condition(previous, "WorkersConnected") or {}).get("reason") in (
            "AllWorkersConnected", "WorkersMissing"):
        look.set("WorkersConnected", "False", "WorkersMissing", counts)
    else:
        look.set("WorkersConnected", "False", "WaitingForWorkers", counts)
    return connected


@dataclasses.dataclass(frozen=True)
class _Overload:
    """A sticky condition set once a live count of troubled workers is above 0, with the
    most seen at once (kept in status.locust as `most`) as the run's record."""

    kind: str
    reason: str
    now: str   # the live count in status.locust
    most: str  # its peak
    advice: str  # the message after "up to N of M Locust workers "


# MasterOverloaded: Locust marked workers missing (their heartbeats did not arrive in
# time), a CPU-starved master (or workers, or the network) at this size.
# WorkersOverloaded: workers reported CPU above Locust's 90% threshold (the master's "CPU
# usage threshold was exceeded on workers" warning), so the response times they measured
# include waiting for the CPU.
_OVERLOADS = (
    _Overload("MasterOverloaded", "HeartbeatsMissed", "missingWorkerCount", "maxMissingWorkerCount",
              "missed their heartbeats to the master at once (Locust marks them missing): the master or "
              "the workers lack CPU at this size; give the master more CPU (spec.master.resources) or "
              "use fewer, bigger workers"),
    _Overload("WorkersOverloaded", "CpuSaturated", "cpuSaturatedWorkerCount", "maxCpuSaturatedWorkerCount",
              f"used over {CPU_WARNING_PERCENT}% CPU at once (Locust's warning threshold): response times "
              "measured there include waiting for the CPU; give the workers more CPU "
              "(spec.worker.resources) or spread the users over more workers"),
)


def _overloaded(look: _Look) -> None:
    """Each of _OVERLOADS: set from the peak of its count; kept as it was once terminal."""
    live = look.obs.locust or {}
    before = look.previous.get("locust") or {}
    for overload in _OVERLOADS:
        peak = max((v for v in (live.get(overload.now), before.get(overload.most)) if isinstance(v, int)),
                   default=0)
        if look.was_terminal or peak == 0:
            look.keep(overload.kind)
        else:
            look.set(overload.kind, "True", overload.reason,
                     f"up to {peak} of {look.obs.expected_workers} Locust workers {overload.advice}")


def _completed(look: _Look, phase: str, verdict: tuple[str, str] | None) -> None:
    """TestCompleted and Finished: in progress, or the verdict once the test ended."""
    if look.was_terminal:
        look.keep("TestCompleted", "Finished")
    elif phase in TERMINAL and verdict is not None:
        reason, message = verdict
        look.set("TestCompleted", "True" if phase == SUCCEEDED else "False", reason, message)
        look.set("Finished", "True", reason, f"the test ended: {message}")
    else:
        look.set("TestCompleted", "False", "TestInProgress",
                 "the test is running" if phase == RUNNING else "waiting for the master to start")
        look.set("Finished", "False", "TestInProgress", "the test has not ended")


def _stop_jobs(look: _Look, phase: str, verdict: tuple[str, str] | None,
               exited_by_itself: bool) -> str | None:
    """JobsStopped, and how to end the Jobs of a test that just ended (None: nothing to end)."""
    obs = look.obs
    if look.was_terminal:
        look.keep("JobsStopped")
        return None
    if phase not in TERMINAL or verdict is None or not jobs_active(obs):
        return None
    if exited_by_itself and verdict[0] != TEST_FAILED and not obs.aborted:
        return STOP_AFTER_GRACE
    cause = verdict[0] if verdict[0] != TEST_FAILED else failure_reason(look.conditions)
    if obs.keep_ui_seconds and verdict[0] != TEST_FAILED and not obs.aborted and obs.master_pods_live:
        look.set("JobsStopped", "True", cause,
                 f"the test {'passed' if phase == SUCCEEDED else 'failed'} ({cause}); "
                 f"{pods_text(obs.worker_pods_live, 'worker')} ended; the master and its web UI stay up "
                 f"{obs.keep_ui_seconds}s more (webUI.keepAfterRun)")
        return STOP_KEEP_UI
    look.set("JobsStopped", "True", cause,
             f"the test {'passed' if phase == SUCCEEDED else 'failed'} ({cause}); "
             f"{pods_text(obs.master_pods_live, 'master')} and {pods_text(obs.worker_pods_live, 'worker')} "
             "ended")
    return STOP_NOW


def _fields(look: _Look, phase: str, connected: int, result: dict[str, Any] | None) -> Status:
    """The status object: phase, counts, times, numbers, verdict and conditions in order."""
    previous, obs = look.previous, look.obs
    status: Status = {"phase": phase, "observedGeneration": obs.generation,
                      "expectedWorkers": obs.expected_workers, "connectedWorkers": connected,
                      "workerPods": _worker_pods(previous, obs, phase in TERMINAL)}
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
    if obs.live_problem and not look.was_terminal:
        locust["message"] = obs.live_problem
    if locust:
        status["locust"] = locust
    if result:
        status["result"] = result
    fetched = fetched_files_status(previous, obs.git_ref, obs.commits)
    if fetched:
        status["testFiles"] = fetched
    finished = look.conditions.get("Finished") or {}
    if phase in TERMINAL and finished.get("status") == "True":
        status["verdict"] = finished["reason"]
    status["conditions"] = [look.conditions[k] for k in CONDITION_ORDER if k in look.conditions]
    return status


def _locust(previous: Status, live: dict[str, Any] | None, result: dict[str, Any] | None,
            phase: str) -> dict[str, Any]:
    """status.locust: the live numbers, the most users and workers seen, and the final
    numbers of the run once it ended (so `kubectl get` shows them after the pods are gone)."""
    before = dict(previous.get("locust") or {})
    if previous.get("phase") in TERMINAL:
        return before
    locust = dict(live) if live is not None else before
    for source, peak in (("userCount", "maxUserCount"), ("workerCount", "maxWorkerCount"),
                         *((o.now, o.most) for o in _OVERLOADS)):
        values = [v for v in (before.get(peak), before.get(source), locust.get(source))
                  if isinstance(v, int)]
        if values:
            locust[peak] = max(values)
    if "failRatio" in locust:
        locust["failPercent"] = percent(locust["failRatio"])
    if phase in TERMINAL and has_numbers(result):
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
    for kind in (o.kind for o in _OVERLOADS):
        if condition(current, kind) and not condition(previous, kind):
            events.append(Event("Warning", kind, (condition(current, kind) or {}).get("message", "")))
    drift_before = condition(previous, "SpecDrifted") or {}
    drift_after = condition(current, "SpecDrifted") or {}
    if drift_after.get("observedGeneration") != drift_before.get("observedGeneration") and drift_after:
        events.append(Event("Warning", "SpecChangeIgnored", drift_after.get("message", "")))
    return events
