"""What the rules know of one test: its previous status and an Observation of its children."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from locust_operator.rules.health import PodProblem

Status = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Observation:
    """What the controller currently knows of one test's children."""

    generation: int
    expected_workers: int  # Locust workers: worker pods x processes per pod
    now: datetime
    grace_seconds: int
    processes_per_pod: int = 1  # spec.worker.processes resolved (build/workers.py)
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
    baseline_set: bool = False  # spec.baseline: the results are compared with the series'
    # The master container's exit code, once it terminated (from its pod).
    master_exit_code: int | None = None
    # The user asked to stop the test (the abort annotation) and the operator did.
    aborted: bool = False
    # The final results were read from the master's API after Locust reported
    # `stopped`, and stayed the same over a worker report interval: with
    # thresholds, the outcome is decided.
    run_stopped: bool = False
    # The verdict comes when the run stopped (run_stopped), from its results, not from the
    # master's exit: an interactive test's master (autostart false) never exits by itself,
    # and one with webUI.keepAfterRun stays up that long after the run.
    verdict_at_stop: bool = False
    # webUI.keepAfterRun: once the test has its verdict, its master Job (and web UI) ends
    # this many seconds later, its workers at once.
    keep_ui_seconds: int = 0
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
    # "<role> pod <name>: <last error line>" of a Locust container that exited because
    # its locustfile could not be loaded (rules/crash.py), the master's first.
    locustfile_error: str | None = None
    # The last error line of the master's Locust container, when it exited with an error.
    master_crash: str | None = None
    # spec.testFiles.git: its ref ("" for the default branch), None without git; and the
    # commits the pods fetched, as (pod name, commit), the master's first.
    git_ref: str | None = None
    commits: tuple[tuple[str, str], ...] = ()
