"""One look of a LocustTestSchedule's loop, the pure plan (rules/schedule_plan.py): an injected `now`.

The schedule is as the API server defaults it; its runs are LocustTests with the scheduled-time
annotation and a status. Every table row asserts the plan exactly: the run to create (its tick
and name), the runs to abort and delete, the events, the status, when to look again.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from locust_operator.api.contract import SCHEDULED_TIME_ANNOTATION
from locust_operator.build.schedule_run import run_name, run_test
from locust_operator.rules.schedule import RunView
from locust_operator.rules.schedule_plan import IDLE_SECONDS, RECENT_RUNS, Plan, plan, run_view, unchanged

NAME, NAMESPACE, UID = "nightly", "load", "sched-uid"
CREATED = "2026-11-01T12:00:00Z"  # the schedule's creationTimestamp


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


TICK = utc(2026, 12, 1, 3)  # a tick of "0 3 * * *"
NOW = TICK + timedelta(seconds=30)
NEXT = utc(2026, 12, 2, 3)
NEW = "nightly-20261201-0300"  # the run of TICK
PREVIOUS = "2026-11-30T03:00:00Z"  # the tick before TICK, as lastScheduleTime
AFTER_PREVIOUS = {"lastScheduleTime": PREVIOUS}


def schedule(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
             created: str | None = CREATED, generation: int | None = 2) -> dict[str, Any]:
    """A LocustTestSchedule as the API server defaults it; `spec` overrides (a None value removes)."""
    metadata: dict[str, Any] = {"name": NAME, "namespace": NAMESPACE, "uid": UID}
    if generation is not None:
        metadata["generation"] = generation
    if created is not None:
        metadata["creationTimestamp"] = created
    full: dict[str, Any] = {
        "schedule": "0 3 * * *", "suspend": False, "concurrencyPolicy": "Forbid",
        "successfulRunsHistoryLimit": 3, "failedRunsHistoryLimit": 1,
        "template": {"metadata": {"labels": {"team": "perf"}},
                     "spec": {"image": "locustio/locust:2.43.3", "testFiles": {"configMapRef": "demo"}}},
    }
    for key, value in (spec or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    body: dict[str, Any] = {"apiVersion": "locust.io/v2", "kind": "LocustTestSchedule", "metadata": metadata,
                            "spec": full}
    if status is not None:
        body["status"] = status
    return body


def locust_test(name: str, tick: str | None = None, phase: str | None = None, verdict: str | None = None,
             result: dict[str, Any] | None = None, created: str | None = None) -> dict[str, Any]:
    """A LocustTest of the schedule (no status when it has no phase yet)."""
    metadata: dict[str, Any] = {"name": name}
    if tick is not None:
        metadata["annotations"] = {SCHEDULED_TIME_ANNOTATION: tick}
    if created is not None:
        metadata["creationTimestamp"] = created
    test: dict[str, Any] = {"apiVersion": "locust.io/v2", "kind": "LocustTest", "metadata": metadata}
    status = {key: value for key, value in (("phase", phase), ("verdict", verdict), ("result", result))
              if value is not None}
    if status:
        test["status"] = status
    return test


def nightly(day: int, phase: str | None = None, verdict: str | None = None,
            result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run of the 03:00 tick of `day` November 2026 (day 31: 1 December)."""
    tick = utc(2026, 11, day, 3) if day <= 30 else utc(2026, 12, day - 30, 3)
    return locust_test(run_name(NAME, tick), f"{tick:%Y-%m-%dT%H:%M:%SZ}", phase, verdict, result)


def scheduled(now: datetime = NOW, state: str = "True", reason: str = "Scheduled",
              message: str = "runs start on schedule", generation: int = 2) -> dict[str, Any]:
    """The condition Scheduled as the plan writes it; its time is `now`."""
    return {"type": "Scheduled", "status": state, "reason": reason, "message": message,
            "lastTransitionTime": f"{now:%Y-%m-%dT%H:%M:%SZ}", "observedGeneration": generation}


def created_event(name: str = NEW, tick: str = "2026-12-01T03:00:00Z") -> tuple[str, str, str]:
    return ("Normal", "RunCreated", f"created run {name} for {tick}")


LIVE = nightly(30, "Running")  # nightly-20261130-0300
DONE = nightly(29, "Succeeded", "Passed")


# --- a tick, and what comes of it ------------------------------------------------------------------


def test_the_first_tick_after_creation_creates_its_run() -> None:
    steps = plan(schedule(status=None), [], NOW)
    assert steps == Plan(
        create=TICK, abort=(), delete=(), events=(created_event(),),
        status={"observedGeneration": 2, "live": [NEW], "recentRuns": [],
                "lastScheduleTime": "2026-12-01T03:00:00Z", "nextScheduleTime": "2026-12-02T03:00:00Z",
                "conditions": [scheduled()]},
        wake_at=NEXT)
    assert steps.create is not None
    assert run_name(NAME, steps.create) == NEW == run_test(schedule(), TICK)["metadata"]["name"]


@dataclasses.dataclass(frozen=True)
class Tick:
    """A plan at `now` of the default schedule changed by `spec`, with `status` and `runs`."""

    id: str
    now: datetime = NOW
    spec: dict[str, Any] = dataclasses.field(default_factory=dict)
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    runs: tuple[dict[str, Any], ...] = ()
    created: str | None = CREATED
    # expected
    create: datetime | None = None
    abort: tuple[str, ...] = ()
    events: tuple[tuple[str, str, str], ...] = ()
    last: str | None = None  # lastScheduleTime (None: not in the status)
    next: str | None = "2026-12-02T03:00:00Z"
    live: tuple[str, ...] = ()
    wake_at: datetime = NEXT


SKIPPED = ("Normal", "RunSkipped", "skipped the run of 2026-12-01T03:00:00Z: nightly-20261130-0300 still "
           "running (concurrencyPolicy Forbid)")
TICKS = [
    Tick("first tick after creation", create=TICK, events=(created_event(),), last="2026-12-01T03:00:00Z",
         live=(NEW,)),
    Tick("created just before the tick", created="2026-12-01T02:59:59Z", create=TICK,
         events=(created_event(),), last="2026-12-01T03:00:00Z", live=(NEW,)),
    Tick("created just after the tick: not due", created="2026-12-01T03:00:10Z"),
    Tick("no creationTimestamp: created now, not due", created=None),
    Tick("before the first tick since creation", now=utc(2026, 11, 1, 20), wake_at=utc(2026, 11, 2, 3),
         next="2026-11-02T03:00:00Z"),
    Tick("nothing due since lastScheduleTime", now=utc(2026, 12, 1, 15),
         status={"lastScheduleTime": "2026-12-01T03:00:00Z"}, last="2026-12-01T03:00:00Z"),
    Tick("one second before the tick", now=TICK - timedelta(seconds=1), status=AFTER_PREVIOUS,
         last=PREVIOUS, wake_at=TICK, next="2026-12-01T03:00:00Z"),
    Tick("at the tick exactly", now=TICK, status=AFTER_PREVIOUS, create=TICK,
         events=(created_event(),), last="2026-12-01T03:00:00Z", live=(NEW,)),
    Tick("ticks missed: only the latest runs", status={"lastScheduleTime": "2026-11-27T03:00:00Z"},
         create=TICK, events=(created_event(),), last="2026-12-01T03:00:00Z", live=(NEW,)),
    Tick("a time zone: the run's name is in UTC", now=utc(2026, 12, 1, 1, 0, 30),
         spec={"timeZone": "Europe/Riga"}, status={"lastScheduleTime": "2026-11-30T01:00:00Z"},
         create=utc(2026, 12, 1, 1), events=(created_event("nightly-20261201-0100", "2026-12-01T01:00:00Z"),),
         last="2026-12-01T01:00:00Z", live=("nightly-20261201-0100",), wake_at=utc(2026, 12, 2, 1),
         next="2026-12-02T01:00:00Z"),
    # concurrencyPolicy
    Tick("Forbid, a finished run: create", status=AFTER_PREVIOUS, runs=(DONE,), create=TICK,
         events=(created_event(),), last="2026-12-01T03:00:00Z", live=(NEW,)),
    Tick("Forbid, a live run: skip", status=AFTER_PREVIOUS, runs=(DONE, LIVE),
         events=(SKIPPED,), last="2026-12-01T03:00:00Z", live=("nightly-20261130-0300",)),
    Tick("Forbid, two live runs: skip, naming both", status=AFTER_PREVIOUS,
         runs=(nightly(28, "Running"), LIVE),
         events=(("Normal", "RunSkipped", "skipped the run of 2026-12-01T03:00:00Z: nightly-20261128-0300, "
                  "nightly-20261130-0300 still running (concurrencyPolicy Forbid)"),),
         last="2026-12-01T03:00:00Z", live=("nightly-20261128-0300", "nightly-20261130-0300")),
    Tick("Forbid, a run with no phase yet is live", status=AFTER_PREVIOUS, runs=(nightly(30),),
         events=(SKIPPED,), last="2026-12-01T03:00:00Z", live=("nightly-20261130-0300",)),
    Tick("Forbid, a Pending run is live", status=AFTER_PREVIOUS,
         runs=(nightly(30, "Pending"),), events=(SKIPPED,), last="2026-12-01T03:00:00Z",
         live=("nightly-20261130-0300",)),
    Tick("no concurrencyPolicy: Forbid", spec={"concurrencyPolicy": None}, status=AFTER_PREVIOUS,
         runs=(LIVE,), events=(SKIPPED,), last="2026-12-01T03:00:00Z", live=("nightly-20261130-0300",)),
    Tick("Allow, a live run: create beside it", spec={"concurrencyPolicy": "Allow"},
         status=AFTER_PREVIOUS, runs=(LIVE,), create=TICK, events=(created_event(),),
         last="2026-12-01T03:00:00Z", live=("nightly-20261130-0300", NEW)),
    Tick("Replace, a live run: abort it and create", spec={"concurrencyPolicy": "Replace"},
         status=AFTER_PREVIOUS, runs=(DONE, LIVE), create=TICK,
         abort=("nightly-20261130-0300",),
         events=(("Normal", "RunReplaced", "aborting nightly-20261130-0300 for nightly-20261201-0300 "
                  "(concurrencyPolicy Replace; their results so far are kept)"), created_event()),
         last="2026-12-01T03:00:00Z", live=("nightly-20261130-0300", NEW)),
    Tick("Replace, two live runs: abort both", spec={"concurrencyPolicy": "Replace"},
         status=AFTER_PREVIOUS, runs=(LIVE, nightly(28, "Running")), create=TICK,
         abort=("nightly-20261128-0300", "nightly-20261130-0300"),
         events=(("Normal", "RunReplaced", "aborting nightly-20261128-0300, nightly-20261130-0300 for "
                  "nightly-20261201-0300 (concurrencyPolicy Replace; their results so far are kept)"),
                 created_event()),
         last="2026-12-01T03:00:00Z", live=("nightly-20261128-0300", "nightly-20261130-0300", NEW)),
    Tick("Replace, nothing live: just create", spec={"concurrencyPolicy": "Replace"},
         status=AFTER_PREVIOUS, runs=(DONE,), create=TICK, events=(created_event(),),
         last="2026-12-01T03:00:00Z", live=(NEW,)),
    # the tick's own run is listed, the status does not say so yet (a restart, a stale body)
    *(Tick(f"{policy}, the tick's run exists: done", spec={"concurrencyPolicy": policy},
           status=AFTER_PREVIOUS, runs=(nightly(31),), last="2026-12-01T03:00:00Z",
           live=(NEW,))
      for policy in ("Forbid", "Allow", "Replace")),
    Tick("Replace, the tick's run exists beside an older live one: nothing aborted",
         spec={"concurrencyPolicy": "Replace"}, status=AFTER_PREVIOUS,
         runs=(LIVE, nightly(31, "Running")), last="2026-12-01T03:00:00Z",
         live=("nightly-20261130-0300", NEW)),
    # startingDeadlineSeconds
    Tick("deadline passed: missed", spec={"startingDeadlineSeconds": 10}, status=AFTER_PREVIOUS,
         events=(("Warning", "MissedSchedule", "missed the run of 2026-12-01T03:00:00Z: more than "
                  "startingDeadlineSeconds (10) late"),), last="2026-12-01T03:00:00Z"),
    Tick("deadline passed by one second", spec={"startingDeadlineSeconds": 29},
         status=AFTER_PREVIOUS,
         events=(("Warning", "MissedSchedule", "missed the run of 2026-12-01T03:00:00Z: more than "
                  "startingDeadlineSeconds (29) late"),), last="2026-12-01T03:00:00Z"),
    Tick("deadline met to the second", spec={"startingDeadlineSeconds": 30}, status=AFTER_PREVIOUS,
         create=TICK, events=(created_event(),), last="2026-12-01T03:00:00Z", live=(NEW,)),
    Tick("deadline passed with a live run: missed, not skipped", spec={"startingDeadlineSeconds": 10},
         status=AFTER_PREVIOUS, runs=(LIVE,),
         events=(("Warning", "MissedSchedule", "missed the run of 2026-12-01T03:00:00Z: more than "
                  "startingDeadlineSeconds (10) late"),), last="2026-12-01T03:00:00Z",
         live=("nightly-20261130-0300",)),
    Tick("several ticks missed, the latest too late", spec={"startingDeadlineSeconds": 10},
         status={"lastScheduleTime": "2026-11-27T03:00:00Z"},
         events=(("Warning", "MissedSchedule", "missed the run of 2026-12-01T03:00:00Z: more than "
                  "startingDeadlineSeconds (10) late"),), last="2026-12-01T03:00:00Z"),
]


@pytest.mark.parametrize("case", TICKS, ids=[case.id for case in TICKS])
def test_plan_at_a_look(case: Tick) -> None:
    steps = plan(schedule(case.spec, case.status, created=case.created), list(case.runs), case.now)
    assert steps.create == case.create
    assert steps.abort == case.abort
    assert steps.delete == ()
    assert steps.events == case.events
    assert steps.wake_at == case.wake_at
    assert steps.status.get("lastScheduleTime") == case.last
    assert ("lastScheduleTime" in steps.status) == (case.last is not None)
    assert steps.status["nextScheduleTime"] == case.next
    assert steps.status["live"] == list(case.live)
    assert steps.status["observedGeneration"] == 2
    assert steps.status["conditions"] == [scheduled(case.now)]


def test_a_skip_is_reported_once() -> None:
    """Forbid skips a tick once: lastScheduleTime moves to it, so the next look plans nothing."""
    first = plan(schedule(status={"lastScheduleTime": PREVIOUS}), [LIVE], NOW)
    assert (first.create, first.events, first.status["lastScheduleTime"]) == (None, (SKIPPED,),
                                                                              "2026-12-01T03:00:00Z")
    again = plan(schedule(status=dict(first.status)), [LIVE], NOW + timedelta(minutes=5))
    assert (again.create, again.abort, again.events) == (None, (), ())
    assert unchanged(first.status, again.status)


def test_a_missed_tick_is_reported_once() -> None:
    spec = {"startingDeadlineSeconds": 10}
    first = plan(schedule(spec, {"lastScheduleTime": PREVIOUS}), [], NOW)
    assert [reason for _, reason, _ in first.events] == ["MissedSchedule"]
    again = plan(schedule(spec, dict(first.status)), [], NOW + timedelta(seconds=5))
    assert (again.create, again.events) == (None, ())
    assert unchanged(first.status, again.status)


def test_restarted_at_a_tick_the_plan_is_the_same_and_once_written_nothing_more() -> None:
    body = schedule(status={"lastScheduleTime": PREVIOUS})
    first, second = plan(body, [DONE], NOW), plan(body, [DONE], NOW)
    assert first == second
    assert first.create == TICK
    assert run_name(NAME, first.create) == NEW
    # the status holds the tick and the run is listed (no phase yet): nothing more to do
    written = schedule(status=dict(first.status))
    later = plan(written, [DONE, nightly(31)], NOW + timedelta(seconds=2))
    assert (later.create, later.abort, later.delete, later.events) == (None, (), (), ())
    assert later.status["lastScheduleTime"] == "2026-12-01T03:00:00Z"
    assert later.status["live"] == [NEW]
    assert later.status["conditions"] == [scheduled(NOW)]  # no flip, the time stays
    # ... nor when the run is not listed (yet)
    unseen = plan(written, [DONE], NOW + timedelta(seconds=2))
    assert (unseen.create, unseen.events) == (None, ())


# --- suspended, invalid ----------------------------------------------------------------------------


HISTORY = (
    nightly(18),  # no status: live, never deleted
    nightly(19, "Running"),
    nightly(20, "Failed", "Failed"),
    nightly(21, "Succeeded", "Passed"),
    nightly(22, "Succeeded", "Passed"),
    nightly(23, "Succeeded", "Passed"),
    nightly(24, "Succeeded", "Passed"),
    nightly(25, "Succeeded", "Regressed"),
    nightly(26, "Failed", "Failed"),
)


def deleted(*days: int) -> tuple[tuple[str, str, str], ...]:
    return tuple(("Normal", "RunDeleted", f"deleted run nightly-202611{day}-0300 (history limits)")
                 for day in days)


def test_suspended_nothing_is_created_but_history_is_pruned() -> None:
    previous = {"lastScheduleTime": "2026-11-29T03:00:00Z", "nextScheduleTime": "2026-11-30T03:00:00Z"}
    steps = plan(schedule({"suspend": True}, previous), list(HISTORY), NOW)  # two ticks are due
    assert steps.create is None
    assert steps.abort == ()
    assert steps.delete == ("nightly-20261120-0300", "nightly-20261121-0300", "nightly-20261122-0300")
    assert steps.events == deleted(20, 21, 22)
    assert steps.wake_at == NOW + timedelta(seconds=IDLE_SECONDS)
    assert steps.status["lastScheduleTime"] == "2026-11-29T03:00:00Z"
    assert steps.status["nextScheduleTime"] is None  # removed by the merge patch: no next run
    assert not unchanged(previous, steps.status)
    assert steps.status["live"] == ["nightly-20261118-0300", "nightly-20261119-0300"]
    assert steps.status["conditions"] == [
        scheduled(NOW, "False", "Suspended", "spec.suspend is true: no new runs")]


INVALID = [
    ({"schedule": "61 * * * *"}, 'spec.schedule: "61 * * * *": minute 61 out of range 0-59'),
    ({"schedule": "0 3 * *"},
     'spec.schedule: "0 3 * *": expected 5 fields (minute hour day-of-month month day-of-week), got 4'),
    ({"schedule": "@reboot"}, 'spec.schedule: "@reboot": unknown macro; use one of @yearly, @annually, '
                              '@monthly, @weekly, @daily, @midnight, @hourly'),
    ({"schedule": "0 0 30 2 *"}, 'spec.schedule: "0 0 30 2 *": no date ever matches (Bad day-of-month)'),
    # The tenant's text is quoted whole up to 60 characters, then cut to 57 and "...".
    ({"schedule": "x" * 60}, f'spec.schedule: "{"x" * 60}": expected 5 fields (minute hour day-of-month '
                             'month day-of-week), got 1'),
    ({"schedule": "x" * 61}, f'spec.schedule: "{"x" * 57}...": expected 5 fields (minute hour day-of-month '
                             'month day-of-week), got 1'),
    ({"timeZone": "Mars/Olympus_Mons"}, 'spec.timeZone: unknown time zone "Mars/Olympus_Mons"'),
    ({"timeZone": "localtime"}, 'spec.timeZone: unknown time zone "localtime"'),
    ({"timeZone": "../etc/passwd"}, 'spec.timeZone: unknown time zone "../etc/passwd"'),
]


@pytest.mark.parametrize(("spec", "message"), INVALID, ids=[f"{m.split(':')[0]} {s}" for s, m in INVALID])
def test_an_invalid_schedule_says_which_field_and_creates_nothing(spec: dict[str, Any], message: str) -> None:
    previous = {"lastScheduleTime": PREVIOUS, "nextScheduleTime": "2026-12-01T03:00:00Z",
                "conditions": [scheduled(utc(2026, 11, 1, 12))]}
    steps = plan(schedule(spec, previous), [LIVE, *HISTORY[3:7]], NOW)
    assert steps.create is None
    assert steps.abort == ()
    assert steps.delete == ("nightly-20261121-0300",)  # history limits still hold
    assert steps.events == deleted(21)
    assert steps.wake_at == NOW + timedelta(seconds=IDLE_SECONDS)
    assert steps.status["conditions"] == [scheduled(NOW, "False", "InvalidSchedule", message)]
    assert "\n" not in message
    assert steps.status["lastScheduleTime"] == PREVIOUS
    assert steps.status["nextScheduleTime"] is None
    assert steps.status["live"] == ["nightly-20261130-0300"]


@pytest.mark.parametrize(("old", "spec", "expected"), [
    # the condition's time moves only when its status flips
    (scheduled(utc(2026, 11, 2)), {}, scheduled(utc(2026, 11, 2))),
    (scheduled(utc(2026, 11, 2), "False", "InvalidSchedule", "spec.schedule: x"), {}, scheduled(NOW)),
    ({**scheduled(utc(2026, 11, 2)), "lastTransitionTime": ""}, {}, scheduled(NOW)),
    (scheduled(utc(2026, 11, 2)), {"schedule": "61 * * * *"},
     scheduled(NOW, "False", "InvalidSchedule", 'spec.schedule: "61 * * * *": minute 61 out of range 0-59')),
    (scheduled(utc(2026, 11, 2), "False", "InvalidSchedule", "spec.timeZone: old"),
     {"schedule": "61 * * * *"},
     scheduled(utc(2026, 11, 2), "False", "InvalidSchedule",
               'spec.schedule: "61 * * * *": minute 61 out of range 0-59')),
    (scheduled(utc(2026, 11, 2), "False", "RunNotCreated", "run x not created"), {},
     scheduled(NOW)),
    (scheduled(utc(2026, 11, 2), "False", "RunNotCreated", "run x not created"), {"suspend": True},
     scheduled(utc(2026, 11, 2), "False", "Suspended", "spec.suspend is true: no new runs")),
], ids=["stays True", "False to True", "no time yet", "True to False", "stays False",
        "RunNotCreated to True", "RunNotCreated to Suspended"])
def test_the_condition_time_moves_when_it_flips(old: dict[str, Any], spec: dict[str, Any],
                                                expected: dict[str, Any]) -> None:
    steps = plan(schedule(spec, {"lastScheduleTime": "2026-12-01T03:00:00Z", "conditions": [old]}), [], NOW)
    assert steps.status["conditions"] == [expected]


def test_observed_generation_is_the_schedule_generation_or_1() -> None:
    assert plan(schedule(generation=7), [], NOW).status["observedGeneration"] == 7
    steps = plan(schedule(generation=None), [], NOW)
    assert steps.status["observedGeneration"] == 1
    assert steps.status["conditions"][0]["observedGeneration"] == 1


# --- history ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("succeeded", "failed", "doomed"), [
    (3, 1, (20, 21, 22)),
    (0, 0, (20, 21, 22, 23, 24, 25, 26)),
    (5, 2, ()),
    (4, 0, (20, 21, 26)),
    (100, 100, ()),
    # Unset (the API server sets them; the plan falls back to the same): 3 and 1.
    (None, None, (20, 21, 22)),
    (None, 2, (21, 22)),
    (4, None, (20, 21)),
], ids=["defaults", "none kept", "all kept", "no failed kept", "the maximum", "unset", "succeeded unset",
        "failed unset"])
def test_history_limits_delete_the_oldest_finished_runs(succeeded: int | None, failed: int | None,
                                                        doomed: tuple[int, ...]) -> None:
    spec = {"successfulRunsHistoryLimit": succeeded, "failedRunsHistoryLimit": failed}
    steps = plan(schedule(spec, {"lastScheduleTime": "2026-11-30T03:00:00Z"}), list(HISTORY),
                 utc(2026, 11, 30, 15))  # nothing due
    names = tuple(f"nightly-202611{day}-0300" for day in doomed)
    assert steps.delete == names  # oldest first
    assert steps.events == deleted(*doomed)
    assert steps.create is None
    assert steps.status["live"] == ["nightly-20261118-0300", "nightly-20261119-0300"]  # never deleted
    shown = [entry["name"] for entry in steps.status["recentRuns"]]
    kept = [t["metadata"]["name"] for t in reversed(HISTORY) if t["metadata"]["name"] not in names]
    assert shown == kept[:RECENT_RUNS]
    assert not set(shown) & set(names)


def test_history_is_pruned_at_a_tick_too() -> None:
    runs = [nightly(27, "Failed", "Failed"), nightly(28, "Failed", "Failed"), LIVE]
    steps = plan(schedule({"concurrencyPolicy": "Replace"}, {"lastScheduleTime": PREVIOUS}), runs, NOW)
    assert steps.delete == ("nightly-20261127-0300",)
    assert steps.abort == ("nightly-20261130-0300",)
    assert [reason for _, reason, _ in steps.events] == ["RunDeleted", "RunReplaced", "RunCreated"]
    assert [entry["name"] for entry in steps.status["recentRuns"]] == ["nightly-20261130-0300",
                                                                       "nightly-20261128-0300"]


def test_recent_runs_newest_first_with_their_numbers() -> None:
    result = {"rps": "12.5", "failRatio": "0.0123", "responseTimeMs": {"p95": 250, "p50": 90}}
    runs = [
        nightly(24, "Succeeded", "Passed", {"rps": "lots", "failRatio": 0.5, "responseTimeMs": {"p95": -1}}),
        nightly(25, "Succeeded", "Passed", {"rps": "7", "responseTimeMs": "fast"}),
        nightly(26, "Failed", "Failed", result),
        nightly(27, "Succeeded", "Regressed", result),
        nightly(28, "Succeeded", "Passed", {"responseTimeMs": {"p95": 1200}}),
        nightly(29, "Succeeded", "Passed", "not a result"),  # type: ignore[arg-type]
        nightly(30, "Running"),
    ]
    spec = {"successfulRunsHistoryLimit": 10, "failedRunsHistoryLimit": 10}
    steps = plan(schedule(spec, {"lastScheduleTime": "2026-12-01T03:00:00Z"}), runs, utc(2026, 12, 1, 9))
    assert steps.delete == ()
    assert steps.status["recentRuns"] == [
        {"name": "nightly-20261130-0300", "scheduledTime": "2026-11-30T03:00:00Z", "phase": "Running"},
        {"name": "nightly-20261129-0300", "scheduledTime": "2026-11-29T03:00:00Z", "phase": "Succeeded",
         "verdict": "Passed"},
        {"name": "nightly-20261128-0300", "scheduledTime": "2026-11-28T03:00:00Z", "phase": "Succeeded",
         "verdict": "Passed", "p95Ms": 1200},
        {"name": "nightly-20261127-0300", "scheduledTime": "2026-11-27T03:00:00Z", "phase": "Succeeded",
         "verdict": "Regressed", "rps": "12.5", "failRatio": "0.0123", "p95Ms": 250},
        {"name": "nightly-20261126-0300", "scheduledTime": "2026-11-26T03:00:00Z", "phase": "Failed",
         "verdict": "Failed", "rps": "12.5", "failRatio": "0.0123", "p95Ms": 250},
    ]
    assert RECENT_RUNS == 5
    # the older runs' numbers of the wrong shape are left out
    older = plan(schedule(spec, {"lastScheduleTime": "2026-12-01T03:00:00Z"}), runs[:2], utc(2026, 12, 1, 9))
    assert older.status["recentRuns"] == [
        {"name": "nightly-20261125-0300", "scheduledTime": "2026-11-25T03:00:00Z", "phase": "Succeeded",
         "verdict": "Passed", "rps": "7"},
        {"name": "nightly-20261124-0300", "scheduledTime": "2026-11-24T03:00:00Z", "phase": "Succeeded",
         "verdict": "Passed"},
    ]


@pytest.mark.parametrize(("runs", "limits", "verdict"), [
    (HISTORY, (3, 1), "Failed"),  # nightly-20261126-0300, the newest finished run
    ((DONE, LIVE), (3, 1), "Passed"),  # a live run has no verdict yet
    ((nightly(28, "Succeeded", "Regressed"), nightly(29, "Succeeded"), LIVE), (3, 1), "Regressed"),
    ((nightly(28, "Running", "Passed"),), (3, 1), None),  # a verdict before the end is not the last one
    ((LIVE,), (3, 1), None),
    (HISTORY, (0, 0), None),  # every finished run deleted
], ids=["history", "finished and live", "newest has no verdict", "live with a verdict", "live only",
        "all deleted"])
def test_last_verdict_is_the_newest_finished_run_s(runs: tuple[dict[str, Any], ...], limits: tuple[int, int],
                                                   verdict: str | None) -> None:
    spec = {"successfulRunsHistoryLimit": limits[0], "failedRunsHistoryLimit": limits[1]}
    body = schedule(spec, {"lastScheduleTime": "2026-12-01T03:00:00Z"})
    steps = plan(body, list(runs), utc(2026, 12, 1, 9))
    assert steps.status.get("lastVerdict") == verdict
    assert ("lastVerdict" in steps.status) == (verdict is not None)


def test_the_run_being_created_is_live_not_yet_recent() -> None:
    steps = plan(schedule({"concurrencyPolicy": "Allow"}, {"lastScheduleTime": PREVIOUS}), [LIVE, DONE], NOW)
    assert steps.status["live"] == ["nightly-20261130-0300", NEW]
    assert [entry["name"] for entry in steps.status["recentRuns"]] == ["nightly-20261130-0300",
                                                                       "nightly-20261129-0300"]


# --- run_view, unchanged ---------------------------------------------------------------------------


MIN = datetime.min.replace(tzinfo=UTC)


@pytest.mark.parametrize(("test", "expected"), [
    (locust_test("a", "2026-12-01T03:00:00Z", "Running", created="2026-12-01T03:00:02Z"),
     RunView("a", "Running", TICK)),
    (locust_test("b", None, "Succeeded", "Passed", {"rps": "1"}, created="2026-12-01T03:00:02Z"),
     RunView("b", "Succeeded", utc(2026, 12, 1, 3, 0, 2), "Passed", {"rps": "1"})),
    (locust_test("c", "last Tuesday", created="2026-12-01T03:00:02Z"),
     RunView("c", None, utc(2026, 12, 1, 3, 0, 2))),
    (locust_test("d", "2026-12-01 03:00", created="2026-12-01T03:00:02Z"),
     RunView("d", None, utc(2026, 12, 1, 3, 0, 2))),
    (locust_test("e", "last Tuesday"), RunView("e", None, MIN)),
    (locust_test("f", "last Tuesday", created="soon"), RunView("f", None, MIN)),
    (locust_test("g"), RunView("g", None, MIN)),
    ({"metadata": {"name": "h", "annotations": {SCHEDULED_TIME_ANNOTATION: 1764558000},
                   "creationTimestamp": "2026-12-01T03:00:02Z"}},
     RunView("h", None, utc(2026, 12, 1, 3, 0, 2))),
    ({"metadata": {"name": "i", "annotations": None},
      "status": {"phase": 3, "verdict": ["Passed"], "result": "good"}},
     RunView("i", None, MIN)),
    ({"metadata": None, "status": None}, RunView("None", None, MIN)),
    ({}, RunView("None", None, MIN)),
], ids=["annotation", "no annotation", "garbage annotation", "not the API format", "garbage, no creation",
        "garbage both", "neither", "annotation not a string", "status of the wrong types", "nulls", "empty"])
def test_run_view(test: dict[str, Any], expected: RunView) -> None:
    assert run_view(test) == expected


@pytest.mark.parametrize(("previous", "status", "same"), [
    ({"live": ["a"], "lastScheduleTime": "t"}, {"live": ["a"], "lastScheduleTime": "t"}, True),
    ({"live": ["a"], "lastScheduleTime": "t", "other": 1}, {"live": ["a"]}, True),
    ({"live": ["a"]}, {"live": ["a", "b"]}, False),
    ({"live": ["a"]}, {"live": ["a"], "lastScheduleTime": "t"}, False),
    ({}, {"nextScheduleTime": None}, True),
    ({"nextScheduleTime": "t"}, {"nextScheduleTime": None}, False),
    ({"conditions": [scheduled(NOW)]}, {"conditions": [scheduled(NOW + timedelta(seconds=1))]}, False),
    ({}, {}, True),
], ids=["equal", "extra keys before", "a list grew", "a key new", "None for absent", "None removes",
        "a condition's time", "empty"])
def test_unchanged(previous: dict[str, Any], status: dict[str, Any], same: bool) -> None:
    assert unchanged(previous, status) is same


def test_a_look_with_nothing_new_is_unchanged() -> None:
    """The status a look wrote, looked at again later: the same (the condition's time stays)."""
    body = schedule(status={"lastScheduleTime": "2026-12-01T03:00:00Z"})
    first = plan(body, [LIVE, DONE], utc(2026, 12, 1, 9))
    assert not unchanged(body["status"], first.status)
    again = plan(schedule(status=dict(first.status)), [LIVE, DONE], utc(2026, 12, 1, 10))
    assert again.status == first.status
    assert unchanged(first.status, again.status)


def test_live_runs_shown_are_bounded_by_the_crd() -> None:
    many = [{"metadata": {"name": f"nightly-2026{i:04d}-0300",
                          "annotations": {"operator.locust.io/scheduled-time": "2026-11-01T03:00:00Z"}},
             "status": {"phase": "Running"}} for i in range(150)]
    status = plan(schedule({"concurrencyPolicy": "Allow"}), many, NOW).status
    assert len(status["live"]) == 100
    assert status["live"][-1] == "nightly-20261201-0300"  # the run created now is among them


def kept_apart(day: int, apart: Any = True) -> dict[str, Any]:
    """A finished run of the tick of `day` November, its HTML report kept apart (or not)."""
    name = f"nightly-202611{day}-0300"
    report = {"reportConfigMap": {"name": f"{name}-report", "uid": f"u{day}"}} if apart else {}
    return {"metadata": {"name": name, "annotations": {
        "operator.locust.io/scheduled-time": f"2026-11-{day}T03:00:00Z"}},
        "status": {"phase": "Succeeded", "verdict": "TestSucceeded", "result": {"report": report}}}


REPORTED_RUNS = [kept_apart(27, apart=False), kept_apart(28), kept_apart(29)]


@pytest.mark.parametrize(("keep", "dropped"), [
    (None, []), (5, []), (1, ["nightly-20261128-0300"]),
    (0, ["nightly-20261128-0300", "nightly-20261129-0300"]),
    # Not an integer (the API server would refuse it): nothing dropped.
    (True, []), ("1", []),
])
def test_reports_past_keep_report_runs_are_dropped(keep: Any, dropped: list[str]) -> None:
    spec = {"successfulRunsHistoryLimit": 10, **({} if keep is None else {"keepReportRuns": keep})}
    steps = plan(schedule(spec), REPORTED_RUNS, NOW)
    assert [run for run, _, _ in steps.drop_reports] == dropped
    assert all(cm == f"{run}-report" and uid == f"u{run[14:16]}" for run, cm, uid in steps.drop_reports)
    assert [e for e in steps.events if e[1] == "ReportDropped"] == [
        ("Normal", "ReportDropped", f"deleted the HTML report of {run} ({run}-report): only the newest "
         f"{keep} runs keep theirs (keepReportRuns)") for run in dropped]


@pytest.mark.parametrize("spec", [{"suspend": True}, {"schedule": "61 * * * *"}],
                         ids=["suspended", "invalid"])
def test_reports_are_dropped_when_no_run_is_made_too(spec: dict[str, Any]) -> None:
    body = schedule({"successfulRunsHistoryLimit": 10, "keepReportRuns": 1, **spec})
    steps = plan(body, REPORTED_RUNS, NOW)
    assert steps.create is None
    assert steps.drop_reports == (("nightly-20261128-0300", "nightly-20261128-0300-report", "u28"),)
    assert steps.events == (("Normal", "ReportDropped", "deleted the HTML report of nightly-20261128-0300 "
                             "(nightly-20261128-0300-report): only the newest 1 runs keep theirs "
                             "(keepReportRuns)"),)
