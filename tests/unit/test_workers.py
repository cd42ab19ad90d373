"""Locust workers per test: spec.worker.processes resolved, and what the master, the status
and the CLI make of it (build/workers.py, render, rules/status.py, cli/status_lines.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import master_args, render, worker_args
from locust_operator.build.workers import (
    cpu_limit_warning,
    locust_workers,
    processes_per_pod,
    worker_cpu_limit,
)
from locust_operator.cli.status_lines import progress
from locust_operator.rules.locust_stats import MAX_WORKERS_READ, summarize
from locust_operator.rules.observation import Observation
from locust_operator.rules.status import derive_status, transition_events
from tests.support.examples import BASE_TEST

LIMITED = OperatorConfig(workerResources={"limits": {"cpu": "3"}})
NO_LIMIT = OperatorConfig(resources={"requests": {"cpu": "1"}}, workerResources=None)


def _spec(**worker: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_TEST["spec"])
    spec["worker"].update(worker)
    return dict(spec)


@pytest.mark.parametrize(("worker", "config", "processes"), [
    ({}, OperatorConfig(), 1),                                     # unset: one, as before
    ({"processes": 4}, OperatorConfig(), 4),                       # a number is taken as given
    ({"processes": "auto", "resources": {"limits": {"cpu": "4"}}}, OperatorConfig(), 4),
    ({"processes": "auto", "resources": {"limits": {"cpu": "2500m"}}}, OperatorConfig(), 2),  # whole cores
    ({"processes": "auto", "resources": {"limits": {"cpu": "500m"}}}, OperatorConfig(), 1),   # never 0
    ({"processes": "auto", "resources": {"limits": {"cpu": 200}}}, OperatorConfig(), 64),     # the CRD's cap
    ({"processes": "auto"}, LIMITED, 3),                           # the operator's workerResources
    ({"processes": "auto", "resources": {"limits": {"cpu": "2"}}}, LIMITED, 2),  # the test's own win
    ({"processes": "auto"}, NO_LIMIT, 1),                          # no limit: one (not the node's cores)
    ({"processes": "auto", "resources": {"requests": {"cpu": "8"}}}, OperatorConfig(), 1),  # requests: no
])
def test_processes_per_pod(worker: dict[str, Any], config: OperatorConfig, processes: int) -> None:
    spec = _spec(replicas=5, **worker)
    assert processes_per_pod(spec, config) == processes
    assert locust_workers(spec, config) == 5 * processes


def test_the_cpu_limit_is_read_as_a_quantity() -> None:
    assert worker_cpu_limit(_spec(resources={"limits": {"cpu": "1500m"}}), OperatorConfig()) == 1.5
    assert worker_cpu_limit(_spec(resources={"limits": {"memory": "1Gi"}}), OperatorConfig()) is None
    assert worker_cpu_limit(_spec(resources={"limits": {"cpu": "lots"}}), OperatorConfig()) is None


def test_the_master_expects_every_process_and_each_worker_forks_them() -> None:
    spec = _spec(replicas=3, processes=4)
    assert "--expect-workers=12" in master_args(spec, 0, 4)
    assert worker_args(spec, "t-master", 4)[-1:] == ["--processes=4"]
    # One process needs no fork: Locust's --processes 1 would add a parent beside the worker.
    assert not any(a.startswith("--processes") for a in worker_args(spec, "t-master", 1))
    assert "--expect-workers=3" in master_args(spec, 0, 1)


def test_render_resolves_auto_with_the_operators_config() -> None:
    test = copy.deepcopy(BASE_TEST)
    test["spec"]["worker"].update(replicas=2, processes="auto")
    _, master, worker = render(test, LIMITED)
    assert "--expect-workers=6" in master["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--processes=3" in worker["spec"]["template"]["spec"]["containers"][0]["args"]
    # The user's extraArgs still come last (the CRD keeps --processes out of them).
    test["spec"]["worker"]["extraArgs"] = ["--loglevel=DEBUG"]
    _, _, worker = render(test, LIMITED)
    args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--processes=3", "--loglevel=DEBUG"]


NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
RUNNING_JOB = {"ready": 1, "active": 1, "conditions": []}


def _observed(worker_pods_ready: int, locust: dict[str, Any] | None = None) -> Observation:
    return Observation(generation=1, expected_workers=8, processes_per_pod=4, now=NOW, grace_seconds=120,
                       service=True, master_job=RUNNING_JOB, worker_job={"ready": worker_pods_ready},
                       master_pods_ready=1, worker_pods_ready=worker_pods_ready, locust=locust)


def _connected(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "WorkersConnected")


@pytest.mark.parametrize(("pods", "locust", "connected", "reason", "message"), [
    # Before the master reports, ready pods stand for the processes they fork.
    (1, None, 4, "WaitingForWorkers", "4/8 workers connected (4 processes in each of 2 pods)"),
    (2, None, 8, "AllWorkersConnected", "8/8 workers connected (4 processes in each of 2 pods)"),
    # Then Locust's own count decides: both pods ready, but only 6 processes connected.
    (2, {"state": "ready", "workerCount": 6}, 6, "WaitingForWorkers",
     "6/8 workers connected (as the Locust master reports) (4 processes in each of 2 pods)"),
    (2, {"state": "running", "workerCount": 8}, 8, "AllWorkersConnected",
     "8/8 workers connected (as the Locust master reports) (4 processes in each of 2 pods)"),
])
def test_the_status_counts_locust_workers_and_shows_their_pods(
        pods: int, locust: dict[str, Any] | None, connected: int, reason: str, message: str) -> None:
    status = derive_status({"phase": "Running"}, _observed(pods, locust)).status
    assert (status["expectedWorkers"], status["connectedWorkers"]) == (8, connected)
    assert status["workerPods"] == {"expected": 2, "ready": pods, "processesPerPod": 4}
    assert (_connected(status)["reason"], _connected(status)["message"]) == (reason, message)


def test_a_finished_test_keeps_the_most_worker_pods_that_were_ready() -> None:
    running = derive_status({"phase": "Running"}, _observed(2)).status
    ended = Observation(generation=1, expected_workers=8, processes_per_pod=4, now=NOW, grace_seconds=120,
                        service=True, master_job={"conditions": [{"type": "Complete", "status": "True"}]},
                        worker_job={"ready": 0})
    assert derive_status(running, ended).status["workerPods"]["ready"] == 2


@pytest.mark.parametrize(("status", "line"), [
    ({"expectedWorkers": 8, "connectedWorkers": 6,
      "workerPods": {"expected": 2, "ready": 2, "processesPerPod": 4}}, "6/8 workers connected (2/2 pods)"),
    ({"expectedWorkers": 2, "connectedWorkers": 2,
      "workerPods": {"expected": 2, "ready": 2, "processesPerPod": 1}}, "2/2 workers connected"),
])
def test_the_progress_line_names_the_pods_only_with_processes(status: dict[str, Any], line: str) -> None:
    assert progress(status) == line


@pytest.mark.parametrize(("workers", "missing"), [
    ([{"state": "running"}, {"state": "missing"}, {"state": "missing"}, {"state": "ready"}], 2),
    ([{"state": "running"}] * 3, None),           # none missing: nothing added to the status
    ([{"state": "missing"}, "missing", 7, None, {"state": ["missing"]}], 1),  # a tenant's garbage is skipped
    ("missing", None),                            # not a list
    (None, None),
    ([{"state": "missing"}] * (MAX_WORKERS_READ + 5), MAX_WORKERS_READ),  # bounded
])
def test_the_live_summary_counts_workers_locust_marks_missing(workers: Any, missing: int | None) -> None:
    summary = summarize({"state": "running", "worker_count": 4, "workers": workers})
    assert summary.get("missingWorkerCount") == missing


def _overloaded(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status["conditions"] if c["type"] == "MasterOverloaded"), None)


def test_workers_missing_heartbeats_mark_the_master_overloaded_and_it_stays() -> None:
    healthy = derive_status({"phase": "Running"}, _observed(2, {"state": "running", "workerCount": 8}))
    assert _overloaded(healthy.status) is None
    assert "missingWorkerCount" not in healthy.status["locust"]

    live = summarize({"state": "running", "worker_count": 8,
                      "workers": [{"state": "missing"}] * 3 + [{"state": "running"}] * 5})
    missed = derive_status(healthy.status, _observed(2, live)).status
    condition = _overloaded(missed)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("True", "HeartbeatsMissed")
    assert condition["message"].startswith("up to 3 of 8 Locust workers missed their heartbeats")
    assert "spec.master.resources" in condition["message"]
    assert (missed["locust"]["missingWorkerCount"], missed["locust"]["maxMissingWorkerCount"]) == (3, 3)
    events = [(e.type, e.reason) for e in transition_events(healthy.status, missed)]
    assert ("Warning", "MasterOverloaded") in events

    # The workers heal: the condition stays with the most that were missing, and no new event.
    healed = derive_status(missed, _observed(2, {"state": "running", "workerCount": 8})).status
    assert _overloaded(healed) is not None and "up to 3 of 8" in (_overloaded(healed) or {})["message"]
    assert healed["locust"]["maxMissingWorkerCount"] == 3 and "missingWorkerCount" not in healed["locust"]
    later = [(e.type, e.reason) for e in transition_events(missed, healed)]
    assert ("Warning", "MasterOverloaded") not in later


@pytest.mark.parametrize(("workers", "saturated"), [
    ([{"cpu_usage": 95.5}, {"cpu_usage": 90}, {"cpu_usage": 90.1}, {"cpu_usage": 12}], 2),  # over 90, not at
    ([{"cpu_usage": 40}] * 3, None),              # none: nothing added to the status
    ([{"cpu_usage": "99"}, {"cpu_usage": float("nan")}, {"cpu_usage": -5}, {"cpu_usage": 1e9},
      {"cpu_usage": True}, 99, None, {"cpu_usage": 91}], 1),  # a tenant's garbage is skipped
    ({"cpu_usage": 99}, None),                    # not a list
    ([{"cpu_usage": 100}] * (MAX_WORKERS_READ + 5), MAX_WORKERS_READ),  # bounded
])
def test_the_live_summary_counts_workers_over_locusts_cpu_threshold(workers: Any,
                                                                    saturated: int | None) -> None:
    summary = summarize({"state": "running", "worker_count": 4, "workers": workers})
    assert summary.get("cpuSaturatedWorkerCount") == saturated


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status["conditions"] if c["type"] == kind), None)


def test_workers_over_90_percent_cpu_mark_them_overloaded_and_it_stays() -> None:
    cool = {"state": "running", "workerCount": 8}
    healthy = derive_status({"phase": "Running"}, _observed(2, cool))
    assert _condition(healthy.status, "WorkersOverloaded") is None
    assert "cpuSaturatedWorkerCount" not in healthy.status["locust"]

    live = summarize({"state": "running", "worker_count": 8,
                      "workers": [{"cpu_usage": 97}] * 5 + [{"cpu_usage": 30}] * 3})
    hot = derive_status(healthy.status, _observed(2, live)).status
    condition = _condition(hot, "WorkersOverloaded")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("True", "CpuSaturated")
    assert condition["message"].startswith("up to 5 of 8 Locust workers used over 90% CPU at once")
    assert "spec.worker.resources" in condition["message"]
    assert _condition(hot, "MasterOverloaded") is None  # a busy worker is not a missing one
    assert (hot["locust"]["cpuSaturatedWorkerCount"], hot["locust"]["maxCpuSaturatedWorkerCount"]) == (5, 5)
    events = [(e.type, e.reason) for e in transition_events(healthy.status, hot)]
    assert ("Warning", "WorkersOverloaded") in events and ("Warning", "MasterOverloaded") not in events
    assert hot["conditions"][-1]["type"] == "WorkersOverloaded"  # last: after MasterOverloaded's place

    # Fewer are hot later: the condition keeps the most at once, and says so once.
    fewer = summarize({"state": "running", "worker_count": 8, "workers": [{"cpu_usage": 99}] * 2})
    later = derive_status(hot, _observed(2, fewer)).status
    assert "up to 5 of 8" in (_condition(later, "WorkersOverloaded") or {})["message"]
    now_and_most = (later["locust"]["cpuSaturatedWorkerCount"], later["locust"]["maxCpuSaturatedWorkerCount"])
    assert now_and_most == (2, 5)
    assert ("Warning", "WorkersOverloaded") not in [(e.type, e.reason) for e in transition_events(hot, later)]
    cooled = derive_status(later, _observed(2, cool)).status
    assert _condition(cooled, "WorkersOverloaded") is not None
    assert cooled["locust"]["maxCpuSaturatedWorkerCount"] == 5
    assert "cpuSaturatedWorkerCount" not in cooled["locust"]


@pytest.mark.parametrize(("worker", "config", "warned"), [
    ({"processes": 4, "resources": {"limits": {"cpu": "1"}}}, OperatorConfig(),
     "spec.worker.processes is 4 but the worker CPU limit is 1 core: each pod's 4 Locust processes "
     "share it (0.25 core each)"),
    ({"processes": 8}, LIMITED, "spec.worker.processes is 8 but the worker CPU limit is 3 cores"),
    ({"processes": 2, "resources": {"limits": {"cpu": "500m"}}}, OperatorConfig(), "is 0.5 cores"),
    # a started core counts
    ({"processes": 4, "resources": {"limits": {"cpu": "3500m"}}}, OperatorConfig(), None),
    ({"processes": 4, "resources": {"limits": {"cpu": "4"}}}, OperatorConfig(), None),
    ({"processes": 1, "resources": {"limits": {"cpu": "100m"}}}, OperatorConfig(), None),  # one: always
    ({"processes": "auto", "resources": {"limits": {"cpu": "100m"}}}, OperatorConfig(), None),
    ({"processes": 16}, NO_LIMIT, None),                   # no limit: nothing to compare
    ({}, OperatorConfig(), None),
])
def test_more_processes_than_cpu_cores_are_allowed_with_a_warning(
        worker: dict[str, Any], config: OperatorConfig, warned: str | None) -> None:
    warning = cpu_limit_warning(_spec(**worker), config)
    if warned is None:
        assert warning is None
    else:
        assert warning is not None and warned in warning
        assert "spec.worker.resources.limits.cpu" in warning and "\n" not in warning


def test_render_prints_the_cpu_warning_and_still_renders(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from locust_operator.cli.main import cli
    test = copy.deepcopy(BASE_TEST)
    test["spec"]["worker"].update(processes=4, resources={"limits": {"cpu": "1"}})
    source = tmp_path / "test.yaml"
    source.write_text(yaml.safe_dump(test))
    result = CliRunner().invoke(cli, ["render", str(source)])
    assert result.exit_code == 0, result.output
    assert "warning: spec.worker.processes is 4 but the worker CPU limit is 1 core" in result.stderr
    assert "--processes=4" in result.stdout
