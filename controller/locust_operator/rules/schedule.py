"""When a LocustTestSchedule starts a run, and which of its runs go (pure: every time is passed in).

The rules are Kubernetes CronJob's. `spec.schedule` reads as CronJob's (robfig/cron's standard)
parser reads it: 5 fields `minute hour day-of-month month day-of-week`, each a list of `*` (or
`?`), `N`, `N-M`, any of them `/STEP`, with the names JAN-DEC and SUN-SAT (any case), day-of-week
0-6 (0 is Sunday); or a macro: @yearly @annually @monthly @weekly @daily @midnight @hourly.
Refused: seconds (6 fields), @reboot, @every, the L, W and # extensions. When neither day field
is `*` (a `*/2` is not), a day matches if either does (robfig's rule, not cronsim's).

Ticks come from cronsim in `spec.timeZone` (UTC when unset), which treats DST as Debian's cron
does for a schedule with a fixed minute and hour: a time a spring-forward skips runs at the first
minute after the jump (`30 2 * * *` at 03:00 that day), a time a fall-back repeats runs once, the
first time. Other schedules tick in absolute time. No tick is lost for good and no two ticks
share a UTC minute, so no two runs share a name (`run_name`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from locust_operator.api.contract import FAILED, SUCCEEDED, TERMINAL
from locust_operator.api.times import timestamp
from locust_operator.rules import bounded

FORBID, ALLOW, REPLACE = "Forbid", "Allow", "Replace"  # spec.concurrencyPolicy

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_Field = tuple[str, int, int, tuple[str, ...]]  # name, lowest, highest, names of the values from the lowest
_FIELDS: tuple[_Field, ...] = (
    ("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS), ("day-of-week", 0, 6, _DAYS))
_TERM = re.compile(r"(\*|\?|[0-9A-Za-z]{1,9}(?:-[0-9A-Za-z]{1,9})?)(?:/([0-9]{1,9}))?")
# Backwards from a wall time in a repeated span (under 3 hours: Antarctica/Troll's is 2),
# cronsim misses the ticks of its first pass that going forwards again finds: at most 180.
_TAIL_SCAN = 3 * 60 + 1
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]{1,64}(?:/[A-Za-z0-9_+\-]{1,64}){0,3}")
# A decimal as results.decimal writes it (`12.5`, `0.0123`), of at most 16 digits before the point.
_DECIMAL = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,6})?")


class ScheduleError(ValueError):
    """A schedule's field refused; str() is one line: `spec.schedule: "61 * * * *": minute 61 ...`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Cadence:
    """A parsed schedule: `expression` is its 5 numeric fields as cronsim reads them."""

    expression: str
    zone: ZoneInfo


def _quote(value: str) -> str:
    """A tenant's text for a one-line message: JSON-quoted (ASCII), cut at 60 characters."""
    return json.dumps(value if len(value) <= 60 else value[:57] + "...")


def _value(field: _Field, text: str) -> int:
    name, low, high, names = field
    if text.upper() in names:
        return low + names.index(text.upper())
    if not text.isdigit():
        raise ValueError(f"{name} {_quote(text)} is not a number" + (" or a name" if names else ""))
    if not low <= int(text) <= high:
        raise ValueError(f"{name} {int(text)} out of range {low}-{high}")
    return int(text)


def _term(field: _Field, term: str) -> str:
    """One term of a list as robfig reads it (`N/S` runs to the field's end), written for cronsim."""
    name, low, high, _ = field
    match = _TERM.fullmatch(term)
    if match is None:
        raise ValueError(f"{name} {_quote(term)} is not a number, a range or a step")
    span, step_text = match.groups()
    step = 1 if step_text is None else int(step_text)
    if step == 0:
        raise ValueError(f"{name} step 0 must be at least 1")
    if span in ("*", "?"):  # in a day field, a `*/2` must not start with `*` for cronsim's day rule
        return "*" if step == 1 else f"{low}-{high}/{step}" if name.startswith("day") else f"*/{step}"
    first_text, _, last_text = span.partition("-")
    first = _value(field, first_text)
    last = _value(field, last_text) if last_text else high if step_text else first
    if first > last:
        raise ValueError(f"{name} range {first}-{last} ends before it starts")
    return f"{first}-{last}/{step}" if step > 1 else str(first) if first == last else f"{first}-{last}"


def _expression(schedule: str) -> str:
    line = schedule.strip()
    if line.startswith("@"):
        if line not in MACROS:
            raise ValueError(f"unknown macro; use one of {', '.join(MACROS)}")
        return MACROS[line]
    parts = line.split()
    if len(parts) != len(_FIELDS):
        seconds = " (a seconds field is not supported)" if len(parts) == 6 else ""
        raise ValueError(f"expected 5 fields (minute hour day-of-month month day-of-week), "
                         f"got {len(parts)}{seconds}")
    lists = [[_term(field, term) for term in part.split(",")]
             for field, part in zip(_FIELDS, parts, strict=True)]
    expression = " ".join("*" if "*" in terms else ",".join(terms) for terms in lists)  # robfig's star bit
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as exc:  # e.g. `0 0 30 2 *`: cronsim refuses a date that never comes
        raise ValueError(f"no date ever matches ({exc})") from exc
    return expression


def _zone(time_zone: str | None) -> ZoneInfo:
    if time_zone is None:
        return ZoneInfo("UTC")
    wrong = ScheduleError("spec.timeZone", f"unknown time zone {_quote(time_zone)}")
    # `localtime` is whatever the operator's image has in /etc; a name is a relative path
    if not _ZONE_NAME.fullmatch(time_zone) or time_zone.lower() in ("local", "localtime"):
        raise wrong
    try:
        return ZoneInfo(time_zone)
    except (KeyError, ValueError, OSError) as exc:  # not found, not a TZif file, a directory
        raise wrong from exc


def parse_cadence(schedule: str, time_zone: str | None) -> Cadence:
    """`spec.schedule` and `spec.timeZone` parsed, or a ScheduleError naming the field."""
    try:
        expression = _expression(schedule)
    except ValueError as exc:
        raise ScheduleError("spec.schedule", f"{_quote(schedule)}: {exc}") from exc
    return Cadence(expression, _zone(time_zone))


def _ticks(cadence: Cadence, after: datetime, reverse: bool = False) -> Iterator[datetime]:
    """The ticks after `after` in order, in UTC (before it, latest first, when `reverse`).

    cronsim iterates wall time: started within a repeated hour, it yields that hour's first
    pass, before `after`; dropped.
    """
    # Backwards, cronsim starts 1 s before its start; a start with microseconds would be a tick.
    start = after.replace(microsecond=0) + timedelta(seconds=1) if reverse else after
    for tick in CronSim(cadence.expression, start.astimezone(cadence.zone), reverse):
        if reverse or tick > after:
            yield tick.astimezone(UTC)


def next_tick(cadence: Cadence, after: datetime) -> datetime:
    """The first tick strictly after `after` (an aware datetime), in UTC."""
    return next(_ticks(cadence, after))


@dataclass(frozen=True)
class Due:
    """What `due` found: the tick to start a run for now, if any, and when to look again."""

    tick: datetime | None
    missed: int
    too_late: datetime | None
    wake_at: datetime


def _until(now: datetime, ticks: Iterator[datetime], limit: int) -> list[datetime]:
    return list(takewhile(lambda tick: tick <= now, islice(ticks, limit)))


def _seen(cadence: Cadence, earliest: datetime, now: datetime, max_scan: int) -> list[datetime]:
    """Ticks in (earliest, now] in order: all of them, or max_scan from earliest and the last ones."""
    seen = _until(now, _ticks(cadence, earliest), max(max_scan, 1))
    if len(seen) < max(max_scan, 1):
        return seen
    # Searched backwards from now, then forwards from just before what that finds (the
    # forward ticks are the ones that count, see _ticks and _TAIL_SCAN).
    back = next(_ticks(cadence, now, reverse=True))
    return seen + _until(now, _ticks(cadence, back - timedelta(seconds=1)), _TAIL_SCAN)


def due(cadence: Cadence, last: datetime | None, created: datetime, now: datetime,
        starting_deadline_seconds: int | None, max_scan: int = 100) -> Due:
    """CronJob's decision: a run for the latest tick in (last or created, now], unless it is too late.

    Ticks passed over before the latest one are counted in `missed`. At most max_scan ticks are
    enumerated from the start: when there are more, the latest is searched backwards from now
    (a few ticks more, at most _TAIL_SCAN + 1) and `missed` counts the ticks seen, a lower bound
    (at least max_scan). The same arguments give the same answer, so an operator restarted at a
    tick starts its run once: once `last` is that tick, it is no longer due.
    """
    seen, wake_at = _seen(cadence, last or created, now, max_scan), next_tick(cadence, now)
    if not seen:
        return Due(None, 0, None, wake_at)
    latest, missed = seen[-1], len(set(seen)) - 1
    if starting_deadline_seconds is not None and latest < now - timedelta(seconds=starting_deadline_seconds):
        return Due(None, missed, latest, wake_at)
    return Due(latest, missed, None, wake_at)


def concurrency(policy: str, live_runs: Sequence[str]) -> str:
    """At a tick: `create`, `skip` (Forbid or an unknown policy, a run is live) or `replace` (Replace)."""
    if not live_runs or policy == ALLOW:
        return "create"
    return "replace" if policy == REPLACE else "skip"


@dataclass(frozen=True)
class RunView:
    """A schedule's run as the rules see it: a LocustTest's name, phase, tick, verdict, result."""

    name: str
    phase: str | None
    tick: datetime
    verdict: str | None = None
    result: Mapping[str, Any] | None = None


def _newest_first(runs: Sequence[RunView]) -> list[RunView]:
    return sorted(runs, key=lambda run: (run.tick, run.name), reverse=True)


def runs_to_delete(runs: Sequence[RunView], succeeded_limit: int, failed_limit: int) -> list[str]:
    """Finished runs past the newest `succeeded_limit` Succeeded and `failed_limit` Failed, oldest first."""
    doomed: list[RunView] = []
    for phase, limit in ((SUCCEEDED, succeeded_limit), (FAILED, failed_limit)):
        doomed += [run for run in _newest_first(runs) if run.phase == phase][max(limit, 0):]
    return [run.name for run in sorted(doomed, key=lambda run: (run.tick, run.name))]


def reports_to_drop(runs: Sequence[RunView], keep_reports: int | None) -> list[str]:
    """Finished runs older than the newest `keep_reports` finished ones, oldest first (None: none)."""
    if keep_reports is None:
        return []
    finished = [run.name for run in _newest_first(runs) if run.phase in TERMINAL]
    return finished[max(keep_reports, 0):][::-1]


def _numbers(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """rps, p95Ms and failRatio of a status.result; a value not of its shape is left out."""
    if not isinstance(result, Mapping):
        return {}
    found: dict[str, Any] = {key: value for key in ("rps", "failRatio")
                             if isinstance(value := result.get(key), str) and _DECIMAL.fullmatch(value)}
    times = result.get("responseTimeMs")
    p95 = bounded.count(times.get("p95")) if isinstance(times, Mapping) else None
    if p95 is not None:
        found["p95Ms"] = p95
    return found


def recent_runs(runs: Sequence[RunView], limit: int = 5) -> list[dict[str, Any]]:
    """The newest `limit` runs for the schedule's status, newest first, only the keys that have values."""
    shown = []
    for run in _newest_first(runs)[:max(limit, 0)]:
        entry = {"name": run.name, "scheduledTime": timestamp(run.tick), "phase": run.phase,
                 "verdict": run.verdict, **_numbers(run.result)}
        shown.append({key: value for key, value in entry.items() if value is not None})
    return shown
