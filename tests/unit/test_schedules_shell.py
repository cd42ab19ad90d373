"""The LocustTestSchedule loop's shell (controller/schedules.py) against an in-memory API: no cluster.

`look` lists the runs, keeps the schedule's own, plans and acts: the abort patches, the deletes
(read for the uid, then a delete with it as a precondition), the create (AlreadyExists is success
only for our own run), the events, the status patch when it changed; `run` loops and wakes.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from locust_operator.api.contract import SCHEDULED_TIME_ANNOTATION
from locust_operator.build.schedule_run import run_test
from locust_operator.controller.kube_api import ApiError
from locust_operator.controller.schedules import RETRY_SECONDS, RUNS_LIMIT, RUNS_MAX_BYTES, ScheduleLoops
from locust_operator.rules.schedule_plan import IDLE_SECONDS

NAME, NAMESPACE, UID = "nightly", "load", "sched-uid"
KEY = (NAMESPACE, NAME)
TICK = datetime(2026, 12, 1, 3, tzinfo=UTC)
NOW = TICK + timedelta(seconds=30)
NEXT = datetime(2026, 12, 2, 3, tzinfo=UTC)
NEW = "nightly-20261201-0300"
OLD = "nightly-20261130-0300"
ABORT = {"metadata": {"annotations": {"locust.io/abort": "true"}}}


def stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def schedule(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "locust.io/v2", "kind": "LocustTestSchedule",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": UID, "generation": 2,
                     "creationTimestamp": "2026-11-01T12:00:00Z"},
        "spec": {"schedule": "0 3 * * *", "suspend": False, "concurrencyPolicy": "Forbid",
                 "successfulRunsHistoryLimit": 3, "failedRunsHistoryLimit": 1,
                 "template": {"metadata": {}, "spec": {"image": "locustio/locust:2.43.3"}}, **(spec or {})},
        "status": {"lastScheduleTime": stamp(TICK - timedelta(days=1))} if status is None else status,
    }


def owner(uid: str = UID, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": "locust.io/v2", "kind": "LocustTestSchedule", "name": NAME, "uid": uid,
            "controller": controller}


def run(day: int, phase: str | None = None, owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The run of the 03:00 tick of `day` November 2026 (31: 1 December), the schedule's unless `owners`."""
    tick = (datetime(2026, 11, day, 3, tzinfo=UTC) if day <= 30
            else datetime(2026, 12, day - 30, 3, tzinfo=UTC))
    test: dict[str, Any] = {
        "apiVersion": "locust.io/v2", "kind": "LocustTest",
        "metadata": {"name": f"nightly-{tick:%Y%m%d-%H%M}", "namespace": NAMESPACE,
                     "uid": f"run-uid-{day}", "labels": {"locust.io/schedule": NAME},
                     "annotations": {SCHEDULED_TIME_ANNOTATION: stamp(tick)},
                     "ownerReferences": [owner()] if owners is None else owners}}
    if phase is not None:
        test["status"] = {"phase": phase}
    return test


class FakeApi:
    """The API server in memory: LocustTests by name, every call recorded, errors on demand."""

    def __init__(self, *tests: dict[str, Any]) -> None:
        self.tests: dict[str, dict[str, Any]] = {t["metadata"]["name"]: copy.deepcopy(t) for t in tests}
        self.unlisted: set[str] = set()  # there, but not in the list (a list older than a create)
        self.calls: list[tuple[Any, ...]] = []
        self.events: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        # (method, kind) -> the error it raises; ("delete", name) for one run's delete
        self.errors: dict[tuple[str, str], Exception] = {}

    def _fail(self, *key: str) -> None:
        if key in self.errors:
            raise self.errors[key]

    async def list_labelled(self, kind: str, namespace: str, selector: str, limit: int,
                            cap: int) -> list[dict[str, Any]]:
        self.calls.append(("list", kind, namespace, selector, limit, cap))
        self._fail("list", kind)
        label, _, value = selector.partition("=")
        return [copy.deepcopy(t) for name, t in self.tests.items()
                if name not in self.unlisted and t["metadata"]["labels"].get(label) == value]

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name = obj["kind"], obj["metadata"].get("name")
        self.calls.append(("create", kind, name))
        self._fail("create", kind)
        if kind == "Event":
            self.events.append(obj)
            return obj
        if name in self.tests:
            raise ApiError(409, f'locusttests.locust.io "{name}" already exists')
        self.tests[name] = {**copy.deepcopy(obj), "metadata": {**obj["metadata"], "uid": f"uid-of-{name}"}}
        return obj

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("read", kind, namespace, name))
        self._fail("read", kind)
        if name not in self.tests:
            raise ApiError(404, f'locusttests.locust.io "{name}" not found')
        return copy.deepcopy(self.tests[name])

    async def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        self.calls.append(("delete", kind, namespace, name, uid))
        self._fail("delete", name)
        if name not in self.tests:
            raise ApiError(404, "not found")
        if self.tests[name]["metadata"]["uid"] != uid:
            raise ApiError(409, "Precondition failed: UID in precondition")
        del self.tests[name]

    async def patch(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        self.calls.append(("patch", kind, namespace, name, copy.deepcopy(body)))
        self._fail("patch", kind)

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any],
                           kind: str = "LocustTest") -> None:
        self.calls.append(("patch_status", kind, namespace, name))
        self._fail("patch_status", kind)
        self.statuses.append(copy.deepcopy(status))

    async def pod_log(self, namespace: str, pod: str, container: str, limit_bytes: int) -> str:
        raise AssertionError("a schedule reads no pod log")

    async def pod_events(self, namespace: str, pod: str, reason: str) -> list[str]:
        raise AssertionError("a schedule reads no pod events")

    def methods(self) -> list[str]:
        return [call[0] for call in self.calls]

    def reasons(self) -> list[tuple[str, str, str]]:
        return [(e["type"], e["reason"], e["message"]) for e in self.events]


def loops(api: FakeApi, now: datetime = NOW) -> ScheduleLoops:
    return ScheduleLoops(api, clock=lambda: now, settle_seconds=0)


def look(api: FakeApi, body: dict[str, Any], now: datetime = NOW) -> float:
    return asyncio.run(loops(api, now).look(body))


def scheduled(state: str = "True", reason: str = "Scheduled", message: str = "runs start on schedule",
              when: datetime = NOW) -> dict[str, Any]:
    return {"type": "Scheduled", "status": state, "reason": reason, "message": message,
            "lastTransitionTime": stamp(when), "observedGeneration": 2}


def errors_counted() -> float:
    return REGISTRY.get_sample_value("locust_operator_errors_total", {"stage": "schedule"}) or 0.0


CREATED_EVENT = ("Normal", "RunCreated", f"created run {NEW} for 2026-12-01T03:00:00Z")
NOT_OURS = f"run {NEW} not created: a LocustTest of that name exists and is not this schedule's"


# --- create ---------------------------------------------------------------------------------------


def test_look_creates_the_due_run_and_writes_the_status() -> None:
    api, body = FakeApi(), schedule()
    seconds = look(api, body)
    assert seconds == (NEXT - NOW).total_seconds() == 86370.0
    assert api.calls[0] == ("list", "LocustTest", NAMESPACE, "locust.io/schedule=nightly", RUNS_LIMIT,
                            RUNS_MAX_BYTES)
    assert api.methods() == ["list", "create", "create", "patch_status"]
    assert api.tests[NEW] == {**run_test(body, TICK), "metadata": {**run_test(body, TICK)["metadata"],
                                                                   "uid": f"uid-of-{NEW}"}}
    assert api.tests[NEW]["metadata"]["ownerReferences"] == [owner()]
    assert api.reasons() == [CREATED_EVENT]
    event = api.events[0]
    assert event["involvedObject"] == {"apiVersion": "locust.io/v2", "kind": "LocustTestSchedule",
                                       "name": NAME, "namespace": NAMESPACE, "uid": UID}
    assert event["firstTimestamp"] == stamp(NOW)
    assert api.calls[-1] == ("patch_status", "LocustTestSchedule", NAMESPACE, NAME)
    assert api.statuses == [{"observedGeneration": 2, "live": [NEW], "recentRuns": [],
                             "lastScheduleTime": stamp(TICK), "nextScheduleTime": stamp(NEXT),
                             "conditions": [scheduled()]}]


def test_runs_not_owned_by_the_schedule_are_ignored() -> None:
    strangers = [
        run(27, "Failed", owners=[owner("another-uid")]),
        run(28, "Failed", owners=[owner(controller=False)]),  # ours, but not as its controller
        run(29, "Failed", owners=[]),
        run(30, "Running", owners=[owner("another-uid")]),  # live, but not ours: Forbid does not skip
    ]
    api = FakeApi(*strangers, run(26, "Failed"))
    body = schedule({"failedRunsHistoryLimit": 0})
    look(api, body)
    assert [call for call in api.calls if call[0] in ("read", "delete")] == [
        ("read", "LocustTest", NAMESPACE, "nightly-20261126-0300"),
        ("delete", "LocustTest", NAMESPACE, "nightly-20261126-0300", "run-uid-26")]  # only ours
    assert set(api.tests) == {t["metadata"]["name"] for t in strangers} | {NEW}
    assert [call for call in api.calls if call[:2] == ("create", "LocustTest")] == [
        ("create", "LocustTest", NEW)]
    assert api.statuses[0]["live"] == [NEW]
    assert api.statuses[0]["recentRuns"] == []
    assert api.reasons() == [("Normal", "RunDeleted", "deleted run nightly-20261126-0300 (history limits)"),
                             CREATED_EVENT]


def test_already_exists_with_our_own_run_is_success() -> None:
    api = FakeApi(run(31))
    api.unlisted.add(NEW)  # created before a restart; the list does not show it yet
    look(api, schedule())
    assert api.methods() == ["list", "create", "read", "create", "patch_status"]
    assert api.calls[2] == ("read", "LocustTest", NAMESPACE, NEW)
    assert api.reasons() == [CREATED_EVENT]
    assert api.statuses[0]["conditions"] == [scheduled()]
    assert api.statuses[0]["lastScheduleTime"] == stamp(TICK)


def test_the_tick_s_own_run_listed_is_not_created_again() -> None:
    api = FakeApi(run(31))
    look(api, schedule({"concurrencyPolicy": "Replace"}))
    assert api.methods() == ["list", "patch_status"]  # no abort of it, no create, no event
    assert api.statuses[0]["live"] == [NEW]
    assert api.statuses[0]["lastScheduleTime"] == stamp(TICK)


@pytest.mark.parametrize(("previous", "when"), [
    ([scheduled(when=TICK - timedelta(days=3))], NOW),  # True before: the condition flips now
    ([scheduled("False", "RunNotCreated", NOT_OURS, TICK - timedelta(days=1))], TICK - timedelta(days=1)),
    ([scheduled("False", "InvalidSchedule", "spec.schedule: bad", TICK - timedelta(days=2))],
     TICK - timedelta(days=2)),
    ([], NOW),
], ids=["was True", "was RunNotCreated", "was InvalidSchedule", "no condition"])
def test_already_exists_with_a_foreign_object_is_run_not_created(previous: list[dict[str, Any]],
                                                                 when: datetime) -> None:
    squatter = run(31, "Succeeded", owners=[owner("another-uid")])
    api = FakeApi(squatter)
    body = schedule(status={"lastScheduleTime": stamp(TICK - timedelta(days=1)), "conditions": previous})
    seconds = look(api, body)
    assert seconds == 86370.0
    assert api.methods() == ["list", "create", "read", "create", "patch_status"]
    assert api.tests[NEW] == squatter  # untouched
    status = api.statuses[0]
    assert status["conditions"] == [scheduled("False", "RunNotCreated", NOT_OURS, when)]
    assert status["lastScheduleTime"] == stamp(TICK)
    assert api.reasons() == [("Warning", "RunNotCreated", NOT_OURS)]  # not "created run ..."


@pytest.mark.parametrize("error", [
    ApiError(403, 'locusttests.locust.io "nightly-20261201-0300" is forbidden: exceeded quota: runs'),
    ApiError(422, "LocustTest.locust.io is invalid: spec.image: Required value"),
], ids=["403", "422"])
def test_another_error_on_create_is_run_not_created(error: ApiError) -> None:
    api = FakeApi()
    api.errors[("create", "LocustTest")] = error
    assert look(api, schedule()) == 86370.0
    message = f"run {NEW} not created: {error.message}"
    assert api.statuses[0]["conditions"] == [scheduled("False", "RunNotCreated", message)]
    assert api.reasons() == [("Warning", "RunNotCreated", message)]
    assert "read" not in api.methods()


def test_a_long_create_error_is_cut_in_the_condition() -> None:
    api = FakeApi()
    api.errors[("create", "LocustTest")] = ApiError(422, "x" * 5000)
    look(api, schedule())
    message = api.statuses[0]["conditions"][0]["message"]
    assert message.startswith(f"run {NEW} not created: xxx")
    assert len(message) < 600


@pytest.mark.parametrize("error", [
    OSError("connection reset"), TimeoutError(),
    ApiError(500, "Internal error occurred: failed calling webhook"), ApiError(429, "Too many requests"),
], ids=["OSError", "timeout", "500", "429"])
def test_no_answer_to_the_create_looks_again_soon_without_a_status(error: Exception) -> None:
    """The server's trouble (no answer, 5xx, 429): the tick is not done, the next look soon retries it."""
    api = FakeApi()
    api.errors[("create", "LocustTest")] = error
    assert look(api, schedule()) == RETRY_SECONDS
    assert api.methods() == ["list", "create"]
    assert api.statuses == []  # lastScheduleTime not moved: the tick is tried again


# --- abort, delete ----------------------------------------------------------------------------------


def test_replace_aborts_the_live_run_before_creating() -> None:
    api = FakeApi(run(29, "Succeeded"), run(30, "Running"))
    look(api, schedule({"concurrencyPolicy": "Replace"}))
    assert api.calls[1] == ("patch", "LocustTest", NAMESPACE, OLD, ABORT)
    assert api.methods() == ["list", "patch", "create", "create", "create", "patch_status"]
    assert NEW in api.tests
    assert [reason for _, reason, _ in api.reasons()] == ["RunReplaced", "RunCreated"]
    assert api.statuses[0]["live"] == [OLD, NEW]


def test_forbid_does_not_abort_nor_create() -> None:
    api = FakeApi(run(30, "Running"))
    look(api, schedule())
    assert api.methods() == ["list", "create", "patch_status"]  # the RunSkipped event only
    assert api.reasons() == [("Normal", "RunSkipped", f"skipped the run of 2026-12-01T03:00:00Z: {OLD} still "
                              "running (concurrencyPolicy Forbid)")]
    assert api.statuses[0]["lastScheduleTime"] == stamp(TICK)


HISTORY = [run(day, "Succeeded") for day in (25, 26, 27, 28)]  # one beyond the limit of 3
DOOMED = "nightly-20261125-0300"
AT_NOON = datetime(2026, 12, 1, 12, tzinfo=UTC)  # nothing due
DONE_TODAY = {"lastScheduleTime": stamp(TICK)}


def test_delete_reads_the_uid_and_passes_it_as_the_precondition() -> None:
    api = FakeApi(*HISTORY)
    seconds = look(api, schedule(status=DONE_TODAY), AT_NOON)
    assert seconds == (NEXT - AT_NOON).total_seconds()
    assert api.calls[1:3] == [("read", "LocustTest", NAMESPACE, DOOMED),
                              ("delete", "LocustTest", NAMESPACE, DOOMED, "run-uid-25")]
    assert DOOMED not in api.tests
    assert api.reasons() == [("Normal", "RunDeleted", f"deleted run {DOOMED} (history limits)")]


@pytest.mark.parametrize(("method", "error"), [
    ("delete", ApiError(404, "not found")),
    ("delete", ApiError(409, "Precondition failed: UID in precondition")),
    ("read", ApiError(404, "not found")),
], ids=["delete 404", "delete 409", "read 404"])
def test_a_run_already_gone_or_replaced_is_not_an_error(method: str, error: ApiError) -> None:
    api = FakeApi(*HISTORY)
    api.errors[(method, DOOMED if method == "delete" else "LocustTest")] = error
    seconds = look(api, schedule(status=DONE_TODAY), AT_NOON)
    assert seconds == (NEXT - AT_NOON).total_seconds()
    assert api.methods()[-1] == "patch_status"
    assert [s["name"] for s in api.statuses[0]["recentRuns"]] == [
        "nightly-20261128-0300", "nightly-20261127-0300", "nightly-20261126-0300"]


def test_a_delete_refused_by_the_server_looks_again_soon() -> None:
    api = FakeApi(*HISTORY)
    api.errors[("delete", DOOMED)] = ApiError(500, "etcd leader changed")
    before = errors_counted()
    assert look(api, schedule(status=DONE_TODAY), AT_NOON) == RETRY_SECONDS
    assert api.methods() == ["list", "read", "delete"]  # no events, no status
    assert errors_counted() == before + 1


def test_a_delete_refused_before_the_create_leaves_the_tick_due() -> None:
    api = FakeApi(*HISTORY)
    api.errors[("delete", DOOMED)] = ApiError(503, "unavailable")
    assert look(api, schedule()) == RETRY_SECONDS
    assert NEW not in api.tests
    del api.errors[("delete", DOOMED)]
    assert look(api, schedule()) == 86370.0
    assert NEW in api.tests


@pytest.mark.parametrize(("error", "counted"), [
    (ApiError(500, "boom"), 1), (ApiError(403, "forbidden"), 0), (OSError("refused"), 1),
    (ValueError("not JSON"), 1),
], ids=["500", "403", "OSError", "not JSON"])
def test_a_failed_list_looks_again_soon(error: Exception, counted: int) -> None:
    api = FakeApi()
    api.errors[("list", "LocustTest")] = error
    before = errors_counted()
    assert look(api, schedule()) == RETRY_SECONDS
    assert api.methods() == ["list"]
    assert errors_counted() == before + counted


def test_a_failed_status_patch_looks_again_soon() -> None:
    api = FakeApi()
    api.errors[("patch_status", "LocustTestSchedule")] = ApiError(500, "boom")
    assert look(api, schedule()) == RETRY_SECONDS
    assert NEW in api.tests
    assert look(api, schedule()) == RETRY_SECONDS  # the tick still due: its run exists, not created again
    assert [call for call in api.calls if call[:2] == ("create", "LocustTest")] == [
        ("create", "LocustTest", NEW)]


def test_a_failed_abort_patch_looks_again_soon() -> None:
    api = FakeApi(run(30, "Running"))
    api.errors[("patch", "LocustTest")] = ApiError(500, "boom")
    assert look(api, schedule({"concurrencyPolicy": "Replace"})) == RETRY_SECONDS
    assert NEW not in api.tests
    assert api.statuses == []


# --- events, status ------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [ApiError(403, "events is forbidden"), OSError("reset"), TimeoutError()],
                         ids=["403", "OSError", "timeout"])
def test_an_event_not_written_does_not_fail_the_look(error: Exception) -> None:
    api = FakeApi(*HISTORY)
    api.errors[("create", "Event")] = error
    assert look(api, schedule()) == 86370.0
    assert NEW in api.tests
    assert DOOMED not in api.tests
    assert api.methods() == ["list", "read", "delete", "create", "create", "create", "patch_status"]
    assert api.events == []
    assert api.statuses[0]["lastScheduleTime"] == stamp(TICK)


def test_the_status_is_patched_only_when_it_changed() -> None:
    api = FakeApi()
    body = schedule()
    look(api, body)  # creates the run, writes the status
    assert len(api.statuses) == 1
    body["status"] = copy.deepcopy(api.statuses[-1])
    look(api, body, NOW + timedelta(seconds=5))  # the new run is listed now: recentRuns has it
    assert len(api.statuses) == 2
    assert api.statuses[-1]["recentRuns"] == [{"name": NEW, "scheduledTime": stamp(TICK)}]
    assert api.statuses[-1]["conditions"] == [scheduled()]  # its time stays
    body["status"] = copy.deepcopy(api.statuses[-1])
    for later in (NOW + timedelta(seconds=10), AT_NOON):
        look(api, body, later)
    assert len(api.statuses) == 2
    assert api.methods()[-2:] == ["list", "list"]  # nothing written at all
    assert api.events[-1]["reason"] == "RunCreated" and len(api.events) == 1


def test_a_suspended_schedule_drops_its_next_time() -> None:
    api = FakeApi()
    status = {"lastScheduleTime": stamp(TICK), "nextScheduleTime": stamp(NEXT), "live": [], "recentRuns": [],
              "observedGeneration": 2, "conditions": [scheduled(when=TICK)]}
    body = schedule({"suspend": True}, status)
    assert look(api, body) == IDLE_SECONDS
    suspended = scheduled("False", "Suspended", "spec.suspend is true: no new runs", when=NOW)
    # None: the merge patch removes it
    assert api.statuses == [{**status, "nextScheduleTime": None, "conditions": [suspended]}]
    body["status"] = {key: value for key, value in {**status, "conditions": [suspended]}.items()
                      if key != "nextScheduleTime"}
    look(api, body)
    assert len(api.statuses) == 1


@pytest.mark.parametrize(("now", "status", "spec", "seconds"), [
    (NOW, None, {}, 86370.0),
    (AT_NOON, DONE_TODAY, {}, 15 * 3600.0),
    (NEXT - timedelta(seconds=90), DONE_TODAY, {}, 90.0),
    (NEXT - timedelta(milliseconds=300), DONE_TODAY, {}, 1.0),  # at least a second
    (NEXT - timedelta(seconds=1, milliseconds=500), DONE_TODAY, {}, 1.5),
    (NOW, None, {"schedule": "*/5 * * * *"}, 270.0),
    (NOW, None, {"suspend": True}, float(IDLE_SECONDS)),
    (NOW, None, {"schedule": "every day"}, float(IDLE_SECONDS)),
], ids=["after a create", "midday", "90 s before", "just before", "a second and a half before",
        "every five minutes", "suspended", "invalid"])
def test_the_next_look_is_at_the_next_tick(now: datetime, status: dict[str, Any] | None,
                                           spec: dict[str, Any], seconds: float) -> None:
    assert look(FakeApi(), schedule(spec, status), now) == seconds


# --- run ------------------------------------------------------------------------------------------


class Stop:
    """Kopf's DaemonStopped: true once set; wait() until then."""

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


async def until(what: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not what():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


def drive(shell: ScheduleLoops, body: dict[str, Any], stop: Stop,
          script: Callable[[asyncio.Task[None]], Awaitable[None]]) -> None:
    """Run the loop of `body` as a task while `script` drives it; the loop is stopped at the end."""
    async def main() -> None:
        task = asyncio.create_task(shell.run(body, stop))
        try:
            await script(task)
        finally:
            if not task.done():
                stop.set()
                await asyncio.wait_for(task, 5)
    asyncio.run(main())


def test_run_looks_sleeps_wakes_and_stops() -> None:
    api, body, stop = FakeApi(), schedule(), Stop()
    shell = loops(api)

    def looks() -> int:
        return api.methods().count("list")

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: "patch_status" in api.methods())
        assert KEY in shell.wakes
        await asyncio.sleep(0.05)
        assert looks() == 1  # asleep until the next tick, a day away
        shell.wake(("load", "another"))  # not this loop's
        await asyncio.sleep(0.05)
        assert looks() == 1
        shell.wake(KEY)
        await until(lambda: looks() >= 2)
        await asyncio.sleep(0.05)
        assert looks() == 2  # one look per wake, then asleep again
        stop.set()  # wakes the sleeping loop: it ends without waiting for the tick
        await asyncio.wait_for(task, 5)
        assert KEY not in shell.wakes

    drive(shell, body, stop, script)
    # the second look saw the run (its status not yet in the body): nothing created nor skipped again
    assert [call[1:] for call in api.calls if call[0] == "create"] == [("LocustTest", NEW), ("Event", None)]
    assert api.reasons() == [CREATED_EVENT]


def test_run_stops_when_stopped_before_it_starts() -> None:
    api, stop = FakeApi(), Stop()
    stop.set()
    shell = loops(api)
    asyncio.run(asyncio.wait_for(shell.run(schedule(), stop), 5))
    assert api.calls == []
    assert shell.wakes == {}


def test_run_survives_api_errors_and_forgets_its_wake_when_cancelled() -> None:
    api, stop = FakeApi(), Stop()
    api.errors[("list", "LocustTest")] = OSError("refused")
    shell = loops(api)

    async def script(task: asyncio.Task[None]) -> None:
        await until(lambda: api.methods().count("list") >= 1)
        shell.wake(KEY)  # looks again before RETRY_SECONDS
        await until(lambda: api.methods().count("list") >= 2)
        assert not task.done()
        task.cancel()  # Kopf cancels a daemon that does not stop in time
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert KEY not in shell.wakes

    drive(shell, schedule(), stop, script)
    assert api.methods() == ["list", "list"]


def test_old_reports_kept_apart_are_deleted_by_uid_and_the_run_says_so() -> None:
    def with_report(day: int) -> dict[str, Any]:
        test = run(day, "Succeeded")
        name = test["metadata"]["name"]
        test["status"]["result"] = {"report": {"configMap": f"{name}-results", "reportConfigMap": {
            "name": f"{name}-report", "uid": f"cm-uid-{day}"}}}
        return test

    api = FakeApi(with_report(27), with_report(28), with_report(29))
    api.errors[("delete", "nightly-20261128-0300-report")] = ApiError(404, "gone already")
    look(api, schedule({"keepReportRuns": 1, "successfulRunsHistoryLimit": 5}))
    deletes = [c for c in api.calls if c[0] == "delete"]
    assert deletes == [("delete", "ConfigMap", NAMESPACE, "nightly-20261127-0300-report", "cm-uid-27"),
                       ("delete", "ConfigMap", NAMESPACE, "nightly-20261128-0300-report", "cm-uid-28")]
    patched = [c[3] for c in api.calls if c[0] == "patch_status" and c[1] == "LocustTest"]
    assert patched == ["nightly-20261127-0300", "nightly-20261128-0300"]
    assert api.statuses[0]["result"]["report"]["reportConfigMap"] is None
    assert "keepReportRuns" in api.statuses[0]["result"]["report"]["reportDropped"]
    assert [r for _, r, _ in api.reasons()].count("ReportDropped") == 2


def test_a_report_configmap_that_is_not_the_runs_is_left_alone() -> None:
    test = run(27, "Succeeded")
    test["status"]["result"] = {"report": {"reportConfigMap": {"name": "x-report", "uid": "cm-uid"}}}
    api = FakeApi(test, run(28, "Succeeded"))
    api.errors[("delete", "x-report")] = ApiError(409, "Precondition failed: UID in precondition")
    look(api, schedule({"keepReportRuns": 0}))
    assert ("delete", "ConfigMap", NAMESPACE, "x-report", "cm-uid") in api.calls
    api.errors[("delete", "x-report")] = ApiError(403, "forbidden")
    assert look(api, schedule({"keepReportRuns": 0})) == RETRY_SECONDS
