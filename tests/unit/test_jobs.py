"""rules/jobs.py: what a test's Jobs say (phase, failure, finished pods) and when they end."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from locust_operator.api.contract import FAILED, PENDING, RUNNING, SUCCEEDED
from locust_operator.rules.jobs import (
    STOP_AFTER_GRACE,
    STOP_KEEP_UI,
    STOP_NOW,
    WORKER_EXIT_GRACE_SECONDS,
    job_deadline,
    job_failure,
    job_finished,
    job_state,
    jobs_active,
    pods_text,
    role_deadline,
    succeeded_pods,
)
from locust_operator.rules.observation import Observation

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
COMPLETE = {"type": "Complete", "status": "True"}
FAILED_COND = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
               "message": "Job was active longer than specified deadline"}


@pytest.mark.parametrize(("job", "pods_ready", "state"), [
    (None, 0, PENDING),
    (None, 3, PENDING),  # no Job, no phase from its pods
    ({}, 0, PENDING),
    ({"conditions": [COMPLETE]}, 0, SUCCEEDED),
    ({"conditions": [COMPLETE, FAILED_COND]}, 0, SUCCEEDED),  # Complete is read first
    ({"conditions": [FAILED_COND]}, 1, FAILED),
    ({"conditions": [{**COMPLETE, "status": "False"}], "ready": 1}, 0, RUNNING),
    ({"conditions": [{**FAILED_COND, "status": "False"}]}, 0, PENDING),
    ({"ready": 1, "active": 1}, 0, RUNNING),
    ({"ready": 0, "active": 2}, 0, PENDING),  # active also counts pods pulling an image
    ({"active": 2}, 0, RUNNING),  # no `ready` yet (a Job controller that has not published it)
    ({"active": 0}, 0, PENDING),
    ({"ready": None, "active": 1}, 0, PENDING),  # published as null: ready 0, not active
    ({"ready": 0}, 1, RUNNING),  # the pod watch saw a ready pod first
    ({"ready": 0}, 0, PENDING),
])
def test_job_state(job: dict[str, Any] | None, pods_ready: int, state: str) -> None:
    assert job_state(job, pods_ready) == state
    if pods_ready == 0:  # the pods' count defaults to none ready
        assert job_state(job) == state
    assert job_finished(job) == (state in (SUCCEEDED, FAILED))


@pytest.mark.parametrize(("job", "count"), [
    (None, 0),
    ({}, 0),
    ({"succeeded": 2}, 2),
    ({"succeeded": None}, 0),
    ({"succeeded": 1, "uncountedTerminatedPods": {"succeeded": ["u1", "u2"], "failed": ["u3"]}}, 3),
    ({"uncountedTerminatedPods": {"failed": ["u3"]}}, 0),
    ({"uncountedTerminatedPods": None}, 0),
])
def test_succeeded_pods_count_the_uncounted_ones(job: dict[str, Any] | None, count: int) -> None:
    assert succeeded_pods(job) == count


@pytest.mark.parametrize(("job", "message"), [
    ({"conditions": [FAILED_COND]},
     "master Job failed: DeadlineExceeded Job was active longer than specified deadline"),
    ({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
     "master Job failed: BackoffLimitExceeded"),
    ({"conditions": [{"type": "Failed", "status": "True", "message": "why"}]}, "master Job failed: why"),
    ({"conditions": [{**FAILED_COND, "status": "False"}, COMPLETE]}, "master Job failed"),
    ({"conditions": [{"type": "Failed", "status": "True", "reason": "", "message": None}]},
     "master Job failed"),
    ({}, "master Job failed"),
])
def test_job_failure_says_the_jobs_reason_and_message(job: dict[str, Any], message: str) -> None:
    assert job_failure(job) == message


@pytest.mark.parametrize(("job", "stop", "deadline"), [
    ({"ready": 1, "startTime": "2026-11-23T11:59:50Z"}, STOP_NOW, 1),
    ({"ready": 1, "startTime": "2026-11-23T11:59:50Z"}, STOP_AFTER_GRACE, 11 + WORKER_EXIT_GRACE_SECONDS),
    ({"ready": 1, "startTime": "2026-11-23T12:00:00Z"}, STOP_AFTER_GRACE, 1 + WORKER_EXIT_GRACE_SECONDS),
    ({"ready": 1, "startTime": "2026-11-23T12:05:00Z"}, STOP_AFTER_GRACE, 1 + WORKER_EXIT_GRACE_SECONDS),
    ({"ready": 1}, STOP_AFTER_GRACE, 1 + WORKER_EXIT_GRACE_SECONDS),
    ({"conditions": [COMPLETE]}, STOP_NOW, None),
])
def test_job_deadline_counts_from_the_jobs_start(job: dict[str, Any], stop: str,
                                                 deadline: int | None) -> None:
    assert job_deadline(job, stop, NOW) == deadline
    assert WORKER_EXIT_GRACE_SECONDS == 30


RUNNING_JOB = {"ready": 1, "startTime": "2026-11-23T11:58:20Z"}  # 100 s before NOW
DONE_JOB = {**RUNNING_JOB, "conditions": [COMPLETE]}


@pytest.mark.parametrize(("job", "role", "deadline"), [
    # keepAfterRun's stop: the workers' Job at once, the master's keep seconds from now
    # (0 unless given: at the grace's count without the grace).
    (RUNNING_JOB, "worker", 1),
    (RUNNING_JOB, "master", 101),
    # A finished Job is left as it is, the workers' too.
    (DONE_JOB, "worker", None),
    (DONE_JOB, "master", None),
])
def test_role_deadline_keeping_the_ui(job: dict[str, Any], role: str, deadline: int | None) -> None:
    assert role_deadline(job, role, STOP_KEEP_UI, NOW) == deadline


def _obs(**kwargs: Any) -> Observation:
    return Observation(generation=1, expected_workers=1, now=NOW, grace_seconds=60, **kwargs)


@pytest.mark.parametrize(("kwargs", "active"), [
    ({}, False),
    ({"master_job": {"ready": 1}}, True),
    ({"worker_job": {}}, True),  # created, not yet running: its pods may start
    ({"master_job": {"conditions": [COMPLETE]}, "worker_job": {"conditions": [FAILED_COND]}}, False),
    ({"master_job": {"conditions": [COMPLETE]}, "worker_pods_live": 1}, True),
    ({"master_pods_live": 1}, True),
])
def test_jobs_active_while_a_job_or_a_pod_is_not_done(kwargs: dict[str, Any], active: bool) -> None:
    assert jobs_active(_obs(**kwargs)) is active


@pytest.mark.parametrize(("count", "text"), [(0, "0 worker pods"), (1, "1 worker pod"), (2, "2 worker pods")])
def test_pods_text(count: int, text: str) -> None:
    assert pods_text(count, "worker") == text
