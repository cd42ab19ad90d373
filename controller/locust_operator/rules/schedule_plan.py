"""What a LocustTestSchedule's loop does at one look: the pure plan (the shell carries it out).

`plan` takes the schedule (as the API server defaulted it), the runs it owns and
the time, and says which run to create, which live runs to abort (Replace),
which finished runs to delete (history limits), the events to write, the
status, and when to look again. Same inputs, same plan: an operator restarted
at a tick plans the same run (same name) and the create answers AlreadyExists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from locust_operator.api.contract import SCHEDULED_TIME_ANNOTATION, TERMINAL
from locust_operator.api.times import parse_timestamp, timestamp
from locust_operator.build.schedule_run import run_name
from locust_operator.rules.bounded import text
from locust_operator.rules.conditions import MESSAGE_CHARS, condition
from locust_operator.rules.schedule import (
    RunView,
    ScheduleError,
    concurrency,
    due,
    parse_cadence,
    recent_runs,
    reports_to_drop,
    runs_to_delete,
)

# A suspended or invalid schedule looks again this often (a spec change wakes it sooner).
IDLE_SECONDS = 300
RECENT_RUNS = 5
# status.live lists at most this many (the CRD's maxItems; Allow can start more), the newest.
MAX_LIVE_SHOWN = 100
# Event reasons of a schedule.
RUN_CREATED, RUN_SKIPPED, RUN_REPLACED, MISSED = "RunCreated", "RunSkipped", "RunReplaced", "MissedSchedule"
RUN_DELETED, INVALID, SUSPENDED = "RunDeleted", "InvalidSchedule", "Suspended"
REPORT_DROPPED = "ReportDropped"


@dataclasses.dataclass(frozen=True)
class Plan:
    create: datetime | None = None  # the scheduled time of the run to create now
    abort: tuple[str, ...] = ()  # live runs to abort before it (Replace)
    delete: tuple[str, ...] = ()  # finished runs past the history limits
    # (run, ConfigMap, its uid) of the HTML reports past keepReportRuns
    drop_reports: tuple[tuple[str, str, str], ...] = ()
    events: tuple[tuple[str, str, str], ...] = ()  # (type, reason, message)
    status: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    wake_at: datetime | None = None


def _time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def run_view(test: Mapping[str, Any]) -> RunView:
    """A run (a LocustTest) as the schedule's rules see it; its tick from its annotation."""
    metadata = test.get("metadata") or {}
    status = test.get("status") or {}
    tick = (_time((metadata.get("annotations") or {}).get(SCHEDULED_TIME_ANNOTATION))
            or _time(metadata.get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC))
    phase, verdict = status.get("phase"), status.get("verdict")
    return RunView(name=str(metadata.get("name")), phase=phase if isinstance(phase, str) else None,
                   tick=tick, verdict=verdict if isinstance(verdict, str) else None,
                   result=status.get("result") if isinstance(status.get("result"), dict) else None)


def _reports(runs: Sequence[RunView], keep: Any) -> tuple[tuple[str, str, str], ...]:
    """The kept-apart HTML reports of the finished runs older than the newest `keep` ones."""
    if not isinstance(keep, int) or isinstance(keep, bool):
        return ()
    views = {r.name: r for r in runs}
    found = []
    for name in reports_to_drop(runs, keep):
        apart = ((views[name].result or {}).get("report") or {}).get("reportConfigMap")
        if isinstance(apart, dict) and all(isinstance(apart.get(k), str) for k in ("name", "uid")):
            found.append((name, apart["name"], apart["uid"]))
    return tuple(found)


def _status(previous: Mapping[str, Any], generation: int, last: datetime | None, wake_at: datetime | None,
            runs: Sequence[RunView], now: datetime, problem: tuple[str, str] | None,
            created: str | None) -> dict[str, Any]:
    """The schedule's status; `problem` is (reason, message) of a schedule that makes no runs."""
    live = sorted({r.name for r in runs if r.phase not in TERMINAL} | ({created} if created else set()))
    status: dict[str, Any] = {"observedGeneration": generation, "live": live[-MAX_LIVE_SHOWN:],
                              "recentRuns": recent_runs(runs, RECENT_RUNS)}
    finished = sorted((r for r in runs if r.phase in TERMINAL and r.verdict), key=lambda r: (r.tick, r.name))
    if finished:
        status["lastVerdict"] = finished[-1].verdict
    if last is not None:
        status["lastScheduleTime"] = timestamp(last)
    # None removes it (the status is a merge patch): a suspended or invalid schedule has no next run
    status["nextScheduleTime"] = timestamp(wake_at) if wake_at is not None and problem is None else None
    state, reason, message = ("True", "Scheduled", "runs start on schedule") if problem is None else (
        "False", *problem)
    old = condition(dict(previous), "Scheduled") or {}
    moved = old.get("status") != state or not old.get("lastTransitionTime")
    status["conditions"] = [{"type": "Scheduled", "status": state, "reason": reason,
                             "message": text(message, MESSAGE_CHARS),
                             "lastTransitionTime": timestamp(now) if moved else old["lastTransitionTime"],
                             "observedGeneration": generation}]
    return status


def plan(schedule: Mapping[str, Any], owned: Sequence[Mapping[str, Any]], now: datetime) -> Plan:
    """The plan of one look at `schedule`, whose runs (the LocustTests it owns) are `owned`."""
    metadata, spec = schedule["metadata"], schedule["spec"]
    previous = schedule.get("status") or {}
    generation = int(metadata.get("generation") or 1)
    runs = [run_view(t) for t in owned]
    last = _time(previous.get("lastScheduleTime"))
    delete = tuple(runs_to_delete(runs, int(spec.get("successfulRunsHistoryLimit", 3)),
                                  int(spec.get("failedRunsHistoryLimit", 1))))
    kept = [r for r in runs if r.name not in delete]
    events = [("Normal", RUN_DELETED, f"deleted run {name} (history limits)") for name in delete]
    reports = _reports(kept, spec.get("keepReportRuns"))
    events += [("Normal", REPORT_DROPPED, f"deleted the HTML report of {name} ({configmap}): only the "
                f"newest {spec['keepReportRuns']} runs keep theirs (keepReportRuns)")
               for name, configmap, _ in reports]
    try:
        cadence = parse_cadence(spec["schedule"], spec.get("timeZone"))
    except ScheduleError as exc:
        status = _status(previous, generation, last, None, kept, now, (INVALID, str(exc)), None)
        return Plan(delete=delete, drop_reports=reports, events=tuple(events), status=status,
                    wake_at=now + timedelta(seconds=IDLE_SECONDS))
    if spec.get("suspend"):
        status = _status(previous, generation, last, None, kept, now,
                         (SUSPENDED, "spec.suspend is true: no new runs"), None)
        return Plan(delete=delete, drop_reports=reports, events=tuple(events), status=status,
                    wake_at=now + timedelta(seconds=IDLE_SECONDS))
    created = _time(metadata.get("creationTimestamp")) or now
    found = due(cadence, last, created, now, spec.get("startingDeadlineSeconds"))
    create, new_run = None, None
    abort: tuple[str, ...] = ()
    if found.too_late is not None:
        last = found.too_late
        events.append(("Warning", MISSED, f"missed the run of {timestamp(found.too_late)}: more than "
                       f"startingDeadlineSeconds ({spec.get('startingDeadlineSeconds')}) late"))
    if found.tick is not None:
        last = found.tick
        live = sorted(r.name for r in kept if r.phase not in TERMINAL)
        action = concurrency(str(spec.get("concurrencyPolicy") or "Forbid"), live)
        if run_name(metadata["name"], found.tick) in {r.name for r in runs}:
            # The tick's run exists (created before a restart, or the status that says so is not
            # seen yet): the tick is done, not a run to skip for, nor to abort (Replace) and redo.
            pass
        elif action == "skip":
            events.append(("Normal", RUN_SKIPPED, f"skipped the run of {timestamp(found.tick)}: "
                           f"{', '.join(live)} still running (concurrencyPolicy Forbid)"))
        else:
            create, new_run = found.tick, run_name(metadata["name"], found.tick)
            if action == "replace":
                abort = tuple(live)
                events.append(("Normal", RUN_REPLACED, f"aborting {', '.join(live)} for {new_run} "
                               "(concurrencyPolicy Replace; their results so far are kept)"))
            events.append(("Normal", RUN_CREATED, f"created run {new_run} for {timestamp(found.tick)}"))
    status = _status(previous, generation, last, found.wake_at, kept, now, None, new_run)
    return Plan(create=create, abort=abort, delete=delete, drop_reports=reports, events=tuple(events),
                status=status, wake_at=found.wake_at)


def unchanged(previous: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """The status to write says nothing new (a condition's time moves only when it flips)."""
    return all(previous.get(key) == value for key, value in status.items())
