"""What a test's Jobs say (their phase, failure, pods) and when to end them (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from locust_operator.api.contract import FAILED, MASTER, PENDING, RUNNING, SUCCEEDED, TERMINAL
from locust_operator.api.times import parse_timestamp
from locust_operator.rules.observation import Observation

STOP_NOW, STOP_AFTER_GRACE = "now", "after-grace"
# The workers now, the master (and its web UI) webUI.keepAfterRun seconds later.
STOP_KEEP_UI = "keep-ui"


# Seconds the workers of a master that exited by itself get to exit too.
WORKER_EXIT_GRACE_SECONDS = 30


def job_state(job: dict[str, Any] | None, pods_ready: int = 0) -> str:
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
    return job_state(job) in TERMINAL


def succeeded_pods(job: dict[str, Any] | None) -> int:
    # The Job controller first lists finished pods as uncounted, then counts them.
    job = job or {}
    uncounted = (job.get("uncountedTerminatedPods") or {}).get("succeeded") or []
    return int(job.get("succeeded", 0) or 0) + len(uncounted)


def job_failure(job: dict[str, Any]) -> str:
    for cond in job.get("conditions", []):
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            why = " ".join(str(part) for part in (cond.get("reason"), cond.get("message")) if part)
            return f"master Job failed: {why}" if why else "master Job failed"
    return "master Job failed"


def job_deadline(job: dict[str, Any], stop: str, now: datetime) -> int | None:
    """The activeDeadlineSeconds that ends an active Job now (1), or once the grace
    has passed (counted, like the deadline itself, from the Job's startTime);
    None for a Job that has finished."""
    if job_finished(job):
        return None
    if stop == STOP_NOW:
        return 1
    try:
        age = (now - parse_timestamp(str(job["startTime"]))).total_seconds()
    except (KeyError, ValueError):
        age = 0.0
    return max(1, int(age) + 1) + WORKER_EXIT_GRACE_SECONDS


def role_deadline(job: dict[str, Any], role: str, stop: str | None, now: datetime,
                  keep_seconds: int = 0) -> int | None:
    """The activeDeadlineSeconds that ends a role's Job as `stop` says, None to leave it:
    after the master exited by itself only its workers need ending; STOP_KEEP_UI ends the
    workers now and the master `keep_seconds` from now."""
    if stop is None or (stop == STOP_AFTER_GRACE and role == MASTER):
        return None
    if stop == STOP_KEEP_UI:
        if role != MASTER:
            return job_deadline(job, STOP_NOW, now)
        grace = job_deadline(job, STOP_AFTER_GRACE, now)
        return None if grace is None else grace - WORKER_EXIT_GRACE_SECONDS + keep_seconds
    return job_deadline(job, stop, now)


def jobs_active(obs: Observation) -> bool:
    """A Job of the test exists and has not finished (its pods may run or start)."""
    return any(job is not None and not job_finished(job) for job in (obs.master_job, obs.worker_job)) \
        or obs.master_pods_live + obs.worker_pods_live > 0


def pods_text(count: int, role: str) -> str:
    return f"{count} {role} pod" + ("" if count == 1 else "s")
