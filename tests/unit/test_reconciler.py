"""The per-test loop with fake indexes, a fake clock and a fake API (no cluster).

The real thing runs against the local control plane in tests/integration; here
each rule of the loop is driven step by step: create once, ownership, status
written only on change, retries, pod-health deadlines, live stats, deletion.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from locust_operator.api.config import OperatorConfig
from locust_operator.controller.kube_api import ApiError
from locust_operator.controller.master_api import CSV, Answer, master_url
from locust_operator.controller.reconciler import Reconciler
from locust_operator.controller.results_keeper import STABLE_READS
from locust_operator.rules.health import PodProblem
from locust_operator.rules.observe import Children, JobView, PodView, ServiceView
from locust_operator.validation.validator import validated
from tests.support.examples import BASE_TEST

UID = "uid-1"
KEY = ("load", "demo")
T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


class FakeApi:
    """Records writes; `existing` holds objects the 'cluster' already has."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.patches: list[dict[str, Any]] = []
        self.existing: dict[tuple[str, str], dict[str, Any]] = {}
        self.fail_patches = 0  # the next N status patches fail as if the API server were down
        self.gone = False  # the test was deleted: status patches answer 404
        self.logs: dict[str, str] = {}  # pod name -> its log
        self.refused: dict[str, ApiError] = {}  # kind -> the error its creates get
        self.refused_patches: dict[str, ApiError] = {}  # kind -> the error its patches get
        self.object_patches: list[tuple[str, str, dict[str, Any]]] = []
        self.pod_event_messages: dict[tuple[str, str], list[str]] = {}  # (pod, reason) -> messages

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] in self.refused:
            raise self.refused[obj["kind"]]
        if obj["kind"] == "Event":
            self.events.append(obj["reason"])
            return obj
        if (obj["kind"], obj["metadata"]["name"]) in self.existing:
            raise ApiError(409, "already exists")
        self.created.append(obj)
        return obj

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.existing[(kind, name)]

    async def patch(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        if kind in self.refused_patches:
            raise self.refused_patches[kind]
        self.object_patches.append((kind, name, body))

    async def pod_events(self, namespace: str, pod: str, reason: str) -> list[str]:
        return self.pod_event_messages.get((pod, reason), [])

    async def pod_log(self, namespace: str, pod: str, container: str, limit_bytes: int) -> str:
        if pod not in self.logs:
            raise ApiError(404, f"pods {pod} not found")
        return self.logs[pod]

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        if self.gone:
            raise ApiError(404, "not found")
        if self.fail_patches:
            self.fail_patches -= 1
            raise OSError("connection refused")
        self.patches.append(copy.deepcopy(status))


class FakeStats:
    """The master's REST API as MasterClient answers it (values, refusals, nothing)."""

    def __init__(self, report: dict[str, Any] | None = None, texts: dict[str, str] | None = None,
                 problems: dict[str, str] | None = None) -> None:
        self.report = report
        self.texts = texts or {}  # path (e.g. /stats/requests/csv) -> body
        self.problems = problems or {}  # path -> the refusal MasterClient would give
        self.urls: list[str] = []
        self.stopped = False

    @staticmethod
    def _path(url: str) -> str:
        return "/" + url.split("/", 3)[3].split("?")[0]

    async def stats(self, url: str) -> Answer:
        self.urls.append(url)
        if self._path(url) in self.problems:
            return Answer(problem=self.problems[self._path(url)])
        return Answer(value=self.report)

    async def text(self, stats_url: str, endpoint: str) -> Answer:
        url = master_url(stats_url, endpoint)
        self.urls.append(url)
        path = self._path(url)
        if path in self.problems:
            return Answer(problem=self.problems[path])
        return Answer(value=self.texts.get(path))

    async def stop(self, url: str) -> bool:
        self.urls.append(url)
        self.stopped = True
        if self.report is not None:
            self.report = {**self.report, "state": "stopped"}
        return True


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Stop:
    """Kopf's DaemonStopped: a flag, and a wait for it."""

    def __init__(self) -> None:
        self.stopped = False
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.stopped

    def set(self) -> None:
        self.stopped = True
        self.event.set()

    async def wait(self) -> None:
        await self.event.wait()


class World:
    """One test, its children as the watches would show them, and the reconciler."""

    def __init__(self, config: OperatorConfig | None = None, status: dict[str, Any] | None = None,
                 stats: FakeStats | None = None, spec: dict[str, Any] | None = None,
                 annotations: dict[str, str] | None = None) -> None:
        base = copy.deepcopy(BASE_TEST)
        base["spec"].update(spec or {})
        if annotations:
            base["metadata"]["annotations"] = annotations
        test = validated(base)
        test["metadata"].update(uid=UID, generation=1, creationTimestamp="2026-11-25T12:00:00Z")
        self.body = {**test, "status": status or {}}
        self.api, self.clock, self.stop = FakeApi(), Clock(), Stop()
        self.stats = stats or FakeStats()
        self.jobs: dict[str, JobView] = {}
        self.pods: list[PodView] = []
        self.services: list[ServiceView] = []
        self.reconciler = Reconciler(config or OperatorConfig(statsPollSeconds=0), self.api,
                                     self.stats, clock=self.clock, retry_delays=(0.01,),
                                     settle_seconds=0.01, results_settle_seconds=0.01,
                                     error_delays=(0.01,))
        self.broken = 0  # the next N reads of the children fail unexpectedly

    def children(self) -> Children:
        if self.broken:
            self.broken -= 1
            raise RuntimeError("an index in a state nobody expected")
        return Children(jobs=list(self.jobs.values()), services=self.services, pods=self.pods)

    def job(self, role: str, status: dict[str, Any], owner: str = UID) -> None:
        self.jobs[role] = JobView(uid=f"job-{role}", owner_uid=owner, role=role, status=status,
                                  name=f"demo-{role}")
        self.reconciler.wake(KEY)

    def pod(self, role: str, ready: bool, problem: PodProblem | None = None, name: str = "",
            exit_code: int | None = None, finished: bool = False) -> None:
        self.pods.append(PodView(job_uid=f"job-{role}", role=role, ready=ready, problem=problem,
                                 name=name or f"demo-{role}-{len(self.pods)}", exit_code=exit_code,
                                 finished=finished))
        self.reconciler.wake(KEY)

    @property
    def phase(self) -> str | None:
        return self.api.patches[-1]["phase"] if self.api.patches else None

    def reason(self, kind: str) -> str | None:
        status = self.api.patches[-1] if self.api.patches else {}
        return next((c["reason"] for c in status.get("conditions", []) if c["type"] == kind), None)


async def until(what: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not what():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


def run(world: World, script: Callable[[asyncio.Task[None]], Awaitable[None]],
        tracking_ok: bool = False) -> None:
    async def main() -> None:
        task = asyncio.create_task(world.reconciler.run(world.body, world.children, world.stop))
        try:
            await script(task)
        finally:
            world.stop.set()
            await asyncio.wait_for(task, 5)
    asyncio.run(main())
    # Nothing in these scripts may make observing the test fail (Tracking=False).
    tracking = [c for p in world.api.patches for c in p.get("conditions", []) if c["type"] == "Tracking"]
    assert tracking_ok or not tracking, tracking


def test_lifecycle_creates_once_and_writes_only_changes() -> None:
    world = World()

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: world.reason("Ready") == "ResourcesCreated")
        assert [(o["kind"], o["metadata"]["name"]) for o in world.api.created] == [
            ("Service", "demo-master"), ("Job", "demo-master"), ("Job", "demo-worker")]
        assert world.api.events == ["Created"]
        patches = len(world.api.patches)
        world.services.append(ServiceView(owner_uid=UID))
        world.job("master", {})
        world.job("worker", {})
        await asyncio.sleep(0.05)
        assert len(world.api.patches) == patches  # nothing changed: nothing written
        # The Job controller has not published `ready`, but the pods are Ready.
        world.pod("master", ready=True)
        for _ in range(3):
            world.pod("worker", ready=True)
        await until(lambda: world.phase == "Running")
        assert world.api.patches[-1]["connectedWorkers"] == 3
        world.job("master", {"conditions": [{"type": "Complete", "status": "True"}],
                             "completionTime": "2026-11-25T12:01:00Z"})
        await asyncio.wait_for(task, 5)  # the loop ends with the test

    run(world, script)
    assert world.phase == "Succeeded"
    assert len(world.api.created) == 3
    assert len(world.api.patches) <= 4, [p["phase"] for p in world.api.patches]
    assert world.api.events == ["Created", "TestStarted", "TestCompleted"]
    assert world.reconciler.live_tests == 0


def test_existing_children_that_are_ours_are_kept() -> None:
    world = World()
    owned = {"metadata": {"ownerReferences": [{"controller": True, "uid": UID}]}}
    world.api.existing[("Service", "demo-master")] = owned

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: world.reason("Ready") == "ResourcesCreated")

    run(world, script)
    assert [o["metadata"]["name"] for o in world.api.created] == ["demo-master", "demo-worker"]


@pytest.mark.parametrize(("owner", "words"), [
    ({"ownerReferences": [{"controller": True, "uid": "other", "kind": "LocustTest",
                           "name": "demo.x"}]}, "belongs to LocustTest demo.x (uid other)"),
    ({}, "belongs to no controller owner"),
])
def test_a_child_name_taken_by_another_owner_is_a_conflict(owner: dict[str, Any], words: str) -> None:
    world = World()
    world.api.existing[("Job", "demo-master")] = {"metadata": owner}

    async def script(task: asyncio.Task[None]) -> None:
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert status["phase"] == "Failed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NameConflict")
    assert f"Job demo-master already exists and {words}" in ready["message"]
    assert "TestFailed" in world.api.events
    # Children of another test are never counted as this test's.
    assert [o["kind"] for o in world.api.created] == ["Service"]


def test_children_of_another_owner_are_invisible() -> None:
    world = World(status={"phase": "Pending", "conditions": [
        {"type": "Ready", "status": "True", "reason": "ResourcesCreated", "message": "",
         "lastTransitionTime": "2026-11-25T12:00:00Z"}]})
    world.job("master", {"conditions": [{"type": "Complete", "status": "True"}]}, owner="other")

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: world.api.patches != [])
        await asyncio.sleep(0.05)
        assert not task.done()

    run(world, script)
    assert world.phase == "Pending"
    assert world.api.created == []  # created before a restart: not created again


def test_status_write_failures_are_retried() -> None:
    world = World()
    world.api.fail_patches = 3

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: world.reason("Ready") == "ResourcesCreated")

    run(world, script)
    assert len(world.api.created) == 3


def test_pod_problem_fails_the_test_when_its_grace_period_ends() -> None:
    world = World(config=OperatorConfig(statsPollSeconds=0, podHealthGraceSeconds=1))
    problem = PodProblem("demo-master-x", "ConfigurationError",
                         'pod demo-master-x: configmap "x" not found', "2026-11-25T12:00:00Z")

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: world.reason("Ready") == "ResourcesCreated")
        world.job("master", {})
        world.pod("master", ready=False, problem=problem)
        await until(lambda: world.reason("PodsHealthy") == "PodsStarting")
        world.clock.now = T0 + timedelta(seconds=2)  # no event: the deadline itself wakes the loop
        await asyncio.wait_for(task, 5)

    run(world, script)
    assert world.phase == "Failed"
    assert world.reason("PodsHealthy") == "ConfigurationError"


def test_a_pod_stuck_on_a_missing_configmap_fails_with_its_failedmount_event() -> None:
    """Found on the real node: the kubelet leaves such a pod Pending (ContainerCreating)
    and reports the missing ConfigMap only in a FailedMount event."""
    world = World(config=OperatorConfig(statsPollSeconds=0, podHealthGraceSeconds=1))
    message = 'MountVolume.SetUp failed for volume "demo-master" : configmap "nope" not found'

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: world.reason("Ready") == "ResourcesCreated")
        world.job("master", {})
        world.pods.append(PodView(job_uid="job-master", role="master", ready=False, problem=None,
                                  name="demo-master-x", creating=True, since="2026-11-25T12:00:00Z"))
        world.reconciler.wake(KEY)
        # Within the grace period, or past it without a FailedMount event (e.g. a slow
        # image pull), a pod whose containers are being created is only starting.
        world.clock.now = T0 + timedelta(seconds=2)
        world.reconciler.wake(KEY)
        await asyncio.sleep(0.05)
        assert world.phase != "Failed"
        world.api.pod_event_messages[("demo-master-x", "FailedMount")] = ["older", message]
        world.reconciler.wake(KEY)
        await asyncio.wait_for(task, 5)

    run(world, script)
    assert world.phase == "Failed"
    healthy = next(c for c in world.api.patches[-1]["conditions"] if c["type"] == "PodsHealthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "ConfigurationError")
    assert healthy["message"] == f"pod demo-master-x: FailedMount: {message}"


def test_live_stats_are_read_while_running() -> None:
    stats = FakeStats({"state": "running", "worker_count": 2, "user_count": 5, "total_rps": 9.5})
    world = World(config=OperatorConfig(statsPollSeconds=1), stats=stats)

    async def script(task: asyncio.Task[None]) -> None:
        world.job("master", {"ready": 1})
        world.job("worker", {"ready": 3})
        world.services.append(ServiceView(owner_uid=UID))
        await until(lambda: world.phase == "Running" and "locust" in world.api.patches[-1])

    run(world, script)
    assert world.api.patches[-1]["connectedWorkers"] == 2
    assert world.api.patches[-1]["locust"]["totalRps"] == "9.5"
    assert stats.urls[0] == "http://demo-master.load.svc:8089/stats/requests"


def test_a_finished_test_needs_no_loop() -> None:
    world = World(status={"phase": "Succeeded", "conditions": []})

    async def script(task: asyncio.Task[None]) -> None:
        await asyncio.wait_for(task, 5)

    run(world, script)
    assert world.api.created == [] and world.api.patches == []


def test_deleted_test_ends_the_loop() -> None:
    world = World()
    world.api.gone = True

    async def script(task: asyncio.Task[None]) -> None:
        await asyncio.wait_for(task, 5)

    run(world, script)
    assert world.api.patches == []


def test_a_hand_deleted_child_fails_the_test() -> None:
    world = World()

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: world.reason("Ready") == "ResourcesCreated")
        world.reconciler.child_deleted(KEY, "someone-else", "worker Job")  # not ours: ignored
        await asyncio.sleep(0.05)
        assert world.phase == "Pending"
        world.reconciler.child_deleted(KEY, UID, "worker Job")
        await asyncio.wait_for(task, 5)

    run(world, script)
    assert world.phase == "Failed"
    assert "ResourceDeleted" in world.api.events


# --- results, verdict, abort, cleanup (issue 12) ------------------------------------------

DATA = Path(__file__).parent / "data"
COMPLETE = {"conditions": [{"type": "Complete", "status": "True"}], "completionTime": "2026-11-25T12:01:00Z"}
RUNNING_REPORT = {"state": "running", "worker_count": 2, "user_count": 6, "total_rps": 9.5, "fail_ratio": 0.0}


def _running(world: World) -> None:
    world.services.append(ServiceView(owner_uid=UID))
    world.job("master", {"ready": 1})
    world.job("worker", {"ready": 2})


def _configmap(world: World) -> dict[str, Any]:
    (configmap,) = [o for o in world.api.created if o["kind"] == "ConfigMap"]
    return configmap


def test_results_are_read_from_the_master_once_the_run_stopped() -> None:
    csv = (DATA / "locust-requests.csv").read_text()
    stats = FakeStats(dict(RUNNING_REPORT), texts={"/stats/requests/csv": csv, "/stats/report": "<html/>",
                                                   "/stats/failures/csv": "Method,Name,Error,Occurrences\n"})
    world = World(config=OperatorConfig(statsPollSeconds=1), stats=stats,
                  spec={"thresholds": {"responseTimeMs": {"p95": 5}}})

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        await until(lambda: world.phase == "Running" and "locust" in world.api.patches[-1])
        stats.report = {**RUNNING_REPORT, "state": "stopped", "worker_count": 2, "user_count": 0}
        world.clock.now += timedelta(seconds=2)
        world.reconciler.wake(KEY)
        # The thresholds decide on the results read once Locust said "stopped": the
        # verdict comes while the master still idles through --autoquit.
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert (status["phase"], status["verdict"]) == ("Failed", "ThresholdsBreached")
    # ... and its Jobs end then (no pod of a finished test runs on).
    assert sorted((name, body["spec"]) for _, name, body in world.api.object_patches) == [
        ("demo-master", {"activeDeadlineSeconds": 1}), ("demo-worker", {"activeDeadlineSeconds": 1})]
    assert condition_message(status, "JobsStopped").startswith("the test failed (ThresholdsBreached)")
    result = status["result"]
    assert (result["source"], result["requests"]) == ("MasterApi", 23)
    assert (result["users"], result["workers"]) == (6, 2)
    assert result["thresholds"] == {"passed": False, "breaches": ["p95 9 ms > 5 ms"]}
    assert result["report"] == {"configMap": "demo-results",
                                "keys": ["result.json", "requests.csv", "failures.csv", "report.html"]}
    configmap = _configmap(world)
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == UID
    assert configmap["data"]["requests.csv"] == csv and configmap["data"]["report.html"] == "<html/>"
    # Until the CSV stays the same over a worker's report interval: the first reads after
    # "stopped" may miss the workers' last report.
    assert sum(u.endswith("/stats/requests/csv") for u in stats.urls) == STABLE_READS
    assert status["locust"]["userCount"] == 6  # the most users, not the 0 after the stop


def test_results_come_from_the_masters_log_when_its_api_was_not_read() -> None:
    world = World(spec={"thresholds": {"maxFailRatio": "0"}})
    world.api.logs["demo-master-abc"] = (DATA / "locust-master.log").read_text()

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        world.pod("master", ready=False, name="demo-master-abc", exit_code=0)
        world.job("master", COMPLETE)
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert (status["phase"], status["verdict"]) == ("Succeeded", "TestSucceeded")
    assert (status["result"]["source"], status["result"]["requests"]) == ("MasterLog", 48)
    assert status["result"]["thresholds"] == {"passed": True, "breaches": []}
    assert _configmap(world)["data"]["requests.csv"].startswith("Type,Name,Request Count")
    assert "report.html" not in status["result"]["report"]["keys"]


@pytest.mark.parametrize(("logs", "exit_code", "verdict", "words"), [
    ({}, 1, "LocustErrors", "cannot read the master's log"),
    ({"demo-master-abc": "[x] Gave up waiting for workers to connect\n"}, 1, "WorkersNotConnected",
     "no worker connected"),
    ({"demo-master-abc": "Traceback...\n"}, 137, "TestCrashed", "code 137"),
])
def test_without_results_the_exit_code_and_log_decide(logs: dict[str, str], exit_code: int, verdict: str,
                                                      words: str) -> None:
    world = World()
    world.api.logs.update(logs)

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        world.pod("master", ready=False, name="demo-master-abc", exit_code=exit_code)
        world.job("master", {"conditions": [{"type": "Failed", "status": "True",
                                             "reason": "BackoffLimitExceeded"}]})
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert (status["phase"], status["verdict"]) == ("Failed", verdict)
    assert words in (condition_message(status, "TestCompleted") + status["result"].get("message", ""))


def condition_message(status: dict[str, Any], kind: str) -> str:
    return str(next(c["message"] for c in status["conditions"] if c["type"] == kind))


def test_abort_stops_the_master_keeps_results_and_ends_the_jobs() -> None:
    csv = (DATA / "locust-requests.csv").read_text()
    stats = FakeStats(dict(RUNNING_REPORT), texts={"/stats/requests/csv": csv})
    world = World(config=OperatorConfig(statsPollSeconds=1), stats=stats)

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        await until(lambda: world.phase == "Running")
        world.body["metadata"]["annotations"] = {"locust.io/abort": "true"}
        world.reconciler.wake(KEY)
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert (status["phase"], status["verdict"]) == ("Failed", "Aborted")
    assert stats.stopped and status["result"]["requests"] == 23
    assert "results up to then kept: 23 requests" in condition_message(status, "TestCompleted")
    assert sorted((kind, name) for kind, name, _ in world.api.object_patches) == [
        ("Job", "demo-master"), ("Job", "demo-worker")]
    assert all(body == {"spec": {"activeDeadlineSeconds": 1}} for _, _, body in world.api.object_patches)


@pytest.mark.parametrize(("exit_code", "patched"), [(0, True), (1, False)])
def test_kept_pods_get_their_ttl_only_when_the_test_passed(exit_code: int, patched: bool) -> None:
    world = World(spec={"cleanup": {"keepFailedPods": True, "ttlSecondsAfterFinished": 30}})

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        world.pod("master", ready=False, name="demo-master-abc", exit_code=exit_code)
        world.job("master", COMPLETE if exit_code == 0 else
                  {"conditions": [{"type": "Failed", "status": "True"}]})
        await asyncio.wait_for(task, 5)

    run(world, script)
    jobs = [o for o in world.api.created if o["kind"] == "Job"]
    assert all("ttlSecondsAfterFinished" not in job["spec"] for job in jobs)  # kept until judged
    # The worker Job is still active: it gets a deadline 30 s on (its workers quit with the
    # master; the Job controller ends only those that do not).
    expected = [("Job", "demo-master", {"spec": {"ttlSecondsAfterFinished": 30}}),
                ("Job", "demo-worker", {"spec": {"ttlSecondsAfterFinished": 30,
                                                 "activeDeadlineSeconds": 31}})] if patched else \
        [("Job", "demo-worker", {"spec": {"activeDeadlineSeconds": 31}})]
    assert sorted(world.api.object_patches, key=lambda p: p[1]) == expected


def test_a_finished_job_deleted_by_its_ttl_is_no_failure() -> None:
    world = World()

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        await until(lambda: world.phase == "Running")
        # Complete and deleted (TTL 0) before the loop ran: only the deletion's last view tells.
        last_pod = PodView(job_uid="job-master", role="master", ready=False, problem=None,
                           name="demo-master-abc", exit_code=0)
        last_job = JobView(uid="job-master", owner_uid=UID, role="master", status=COMPLETE,
                           name="demo-master")
        del world.jobs["master"]
        world.reconciler.child_deleted(KEY, "job-master", "Pod", last_pod)
        world.reconciler.child_deleted(KEY, UID, "master Job", last_job)
        await asyncio.wait_for(task, 5)

    run(world, script)
    assert (world.phase, world.api.patches[-1]["verdict"]) == ("Succeeded", "TestSucceeded")
    assert "ResourceDeleted" not in world.api.events


@pytest.mark.parametrize(("existing", "refused", "words", "report"), [
    (True, None, "ConfigMap demo-results already existed and was left as it was", True),
    (False, ApiError(403, "forbidden"), "the results ConfigMap demo-results was not written: forbidden",
     False),
])
def test_a_results_configmap_that_cannot_be_written_is_said(existing: bool, refused: ApiError | None,
                                                            words: str, report: bool) -> None:
    world = World()
    world.api.logs["demo-master-abc"] = (DATA / "locust-master.log").read_text()
    if existing:
        world.api.existing[("ConfigMap", "demo-results")] = {"metadata": {}}
    if refused is not None:
        world.api.refused["ConfigMap"] = refused

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        world.pod("master", ready=False, name="demo-master-abc", exit_code=0)
        world.job("master", COMPLETE)
        await asyncio.wait_for(task, 5)

    run(world, script)
    result = world.api.patches[-1]["result"]
    assert result["requests"] == 48 and result["message"] == words  # the numbers are kept anyway
    assert ("report" in result) == report


def test_a_job_patch_that_fails_does_not_stop_the_abort() -> None:
    world = World()
    world.api.refused_patches["Job"] = ApiError(403, "forbidden")

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        await until(lambda: world.phase == "Running")
        world.body["metadata"]["annotations"] = {"locust.io/abort": "true"}
        world.reconciler.wake(KEY)
        await asyncio.wait_for(task, 5)

    run(world, script)
    assert (world.phase, world.api.patches[-1]["verdict"]) == ("Failed", "Aborted")
    assert world.api.object_patches == []


def _stats_world(config: OperatorConfig, **stats: Any) -> World:
    csv = (DATA / "locust-requests.csv").read_text()
    texts = {"/stats/requests/csv": csv, "/stats/failures/csv": "Method,Name,Error,Occurrences\n"}
    return World(config=config, stats=FakeStats(dict(RUNNING_REPORT), texts=texts, **stats))


def _deadlines(world: World) -> dict[str, Any]:
    return {name: body["spec"].get("activeDeadlineSeconds") for _, name, body in world.api.object_patches}


def test_a_failure_while_running_keeps_the_results_then_ends_the_jobs() -> None:
    """Terminal means stopped: the master is asked to stop, its results are kept, then both
    Jobs end, so no pod of the failed test waits to load its target later."""
    world = _stats_world(OperatorConfig(statsPollSeconds=1, podHealthGraceSeconds=30))

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        world.pod("master", ready=True)
        await until(lambda: world.phase == "Running" and "locust" in world.api.patches[-1])
        world.pod("worker", ready=False, problem=PodProblem(
            "demo-worker-9", "SchedulingError", "pod demo-worker-9 cannot be scheduled: Insufficient cpu",
            "2026-11-25T12:00:00Z"))
        world.clock.now += timedelta(seconds=31)
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert (status["phase"], status["verdict"]) == ("Failed", "TestFailed")
    assert world.stats.stopped and status["result"]["requests"] == 23
    assert _deadlines(world) == {"demo-master": 1, "demo-worker": 1}
    assert condition_message(status, "JobsStopped") == \
        "the test failed (SchedulingError); 1 master pod and 1 worker pod ended"
    assert "JobsStopped" in world.api.events


def test_a_test_past_its_run_ceiling_fails_with_deadline_exceeded() -> None:
    world = _stats_world(OperatorConfig(statsPollSeconds=1, maxTestDurationSeconds=600))

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        await until(lambda: world.phase == "Running" and "locust" in world.api.patches[-1])
        world.clock.now += timedelta(seconds=601)
        world.reconciler.wake(KEY)
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert (status["phase"], status["verdict"]) == ("Failed", "DeadlineExceeded")
    assert "the test ran longer than 600s (maxDurationSeconds); results up to then kept: 23 requests" in \
        condition_message(status, "TestCompleted")
    assert world.stats.stopped and _deadlines(world) == {"demo-master": 1, "demo-worker": 1}


def test_the_tests_own_ceiling_wins_over_the_operators() -> None:
    world = _stats_world(OperatorConfig(statsPollSeconds=1, maxTestDurationSeconds=0))
    world.body["spec"]["maxDurationSeconds"] = 30

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        await until(lambda: world.phase == "Running")
        world.clock.now += timedelta(seconds=29)
        world.reconciler.wake(KEY)
        await asyncio.sleep(0.1)
        assert world.phase == "Running"
        world.clock.now += timedelta(seconds=2)
        world.reconciler.wake(KEY)
        await asyncio.wait_for(task, 5)

    run(world, script)
    assert world.api.patches[-1]["verdict"] == "DeadlineExceeded"


def test_a_refused_live_answer_turns_live_stats_off_and_says_why() -> None:
    world = _stats_world(OperatorConfig(statsPollSeconds=1), problems={
        "/stats/requests": "the master's /stats/requests answer is over 1 MiB"})

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        await until(lambda: world.phase == "Running" and "locust" in world.api.patches[-1])
        for _ in range(3):  # later polls are due, but none is made
            world.clock.now += timedelta(seconds=2)
            world.reconciler.wake(KEY)
            await asyncio.sleep(0.05)
        world.job("master", COMPLETE)
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert status["locust"]["message"] == "the master's /stats/requests answer is over 1 MiB; live stats off"
    assert "MasterAnswerRefused" in world.api.events
    assert sum(u.endswith("/stats/requests") for u in world.stats.urls) == 1
    assert status["phase"] == "Succeeded"  # the Job decides, as without live stats


def test_refused_results_come_from_the_masters_log() -> None:
    world = _stats_world(OperatorConfig(statsPollSeconds=1), problems={
        "/stats/requests/csv": "the master's /stats/requests/csv answer is over 2 MiB"})
    world.stats.report = {**RUNNING_REPORT, "state": "stopped"}
    world.api.logs["demo-master-0"] = (DATA / "locust-master.log").read_text()

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        world.pod("master", ready=True, name="demo-master-0")
        await until(lambda: bool(world.api.patches) and "message" in world.api.patches[-1].get("locust", {}))
        world.pods[-1] = PodView(job_uid="job-master", role="master", ready=False, problem=None,
                                 name="demo-master-0", exit_code=0, finished=True)
        world.job("master", COMPLETE)
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert status["locust"]["message"] == \
        "the master's /stats/requests/csv answer is over 2 MiB; results will come from its log"
    assert status["result"]["source"] == "MasterLog"
    assert sum(u.endswith("/stats/requests/csv") for u in world.stats.urls) == 1  # never re-read


def test_an_unexpected_error_stays_in_the_tests_status_and_the_loop_goes_on() -> None:
    world = World()

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: world.reason("Ready") == "ResourcesCreated")
        world.broken = 2
        world.reconciler.wake(KEY)
        await until(lambda: world.reason("Tracking") == "ObserveError")
        world.job("master", COMPLETE)
        await asyncio.wait_for(task, 5)

    run(world, script, tracking_ok=True)
    tracking = [c for p in world.api.patches for c in p["conditions"] if c["type"] == "Tracking"]
    assert tracking[0]["message"] == \
        "cannot observe the test: RuntimeError: an index in a state nobody expected"
    assert world.phase == "Succeeded" and world.reason("Tracking") is None


class HangingStats(FakeStats):
    """A master whose live stats never come (a default-deny NetworkPolicy)."""

    async def stats(self, url: str) -> Answer:
        self.urls.append(url)
        await asyncio.sleep(3600)
        return Answer()


def test_a_master_that_never_answers_does_not_delay_the_verdict() -> None:
    world = World(config=OperatorConfig(statsPollSeconds=1), stats=HangingStats())

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        await until(lambda: world.phase == "Running" and world.stats.urls)
        start = asyncio.get_running_loop().time()
        world.job("master", COMPLETE)
        await asyncio.wait_for(task, 5)
        assert asyncio.get_running_loop().time() - start < 0.5

    run(world, script)
    assert world.phase == "Succeeded"


class LateReport(FakeStats):
    """A worker's last report reaches the master three reads after it said "stopped"."""

    def __init__(self, early: str, final: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.early, self.final, self.reads = early, final, 0

    async def text(self, stats_url: str, endpoint: str) -> Answer:
        if endpoint == CSV:
            self.urls.append(master_url(stats_url, endpoint))
            self.reads += 1
            return Answer(value=self.early if self.reads <= 3 else self.final)
        return await super().text(stats_url, endpoint)


def test_results_wait_for_the_workers_last_report() -> None:
    final = (DATA / "locust-requests.csv").read_text()
    early = final.replace(",Aggregated,23,", ",Aggregated,20,")
    stats = LateReport(early, final, report={**RUNNING_REPORT, "state": "stopped"})
    world = World(config=OperatorConfig(statsPollSeconds=1), stats=stats,
                  spec={"thresholds": {"maxFailRatio": "0.5"}})

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert status["result"]["requests"] == 23  # not the 20 of the reads before the last report
    assert stats.reads == 3 + STABLE_READS


def test_an_exited_masters_log_is_read_again_until_it_has_the_final_stats() -> None:
    """The master's container exited, but the runtime has not written the end of its log
    yet: the verdict waits for the final stats instead of judging without them."""
    world = World(config=OperatorConfig(statsPollSeconds=0), spec={"thresholds": {"maxFailRatio": "0.5"}})
    final = (DATA / "locust-master.log").read_text()
    world.api.logs["demo-master-0"] = final[: len(final) // 3]  # the start only, for now

    async def script(task: asyncio.Task[None]) -> None:
        _running(world)
        world.pod("master", ready=False, name="demo-master-0", exit_code=0, finished=True)
        await asyncio.sleep(0.2)
        assert world.phase == "Running"  # not judged on a log without its end
        world.api.logs["demo-master-0"] = final
        world.job("master", COMPLETE)
        await asyncio.wait_for(task, 5)

    run(world, script)
    status = world.api.patches[-1]
    assert (status["phase"], status["result"]["source"]) == ("Succeeded", "MasterLog")
    assert status["result"]["requests"] > 0
