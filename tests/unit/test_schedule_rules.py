"""LocustTestSchedule's rules (rules/schedule.py): cron lines, ticks across DST, CronJob's `due`, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from locust_operator.build.schedule_run import MAX_SCHEDULE_NAME, run_name
from locust_operator.rules import schedule
from locust_operator.rules.schedule import (
    Cadence,
    Due,
    RunView,
    ScheduleError,
    concurrency,
    due,
    next_tick,
    parse_cadence,
    recent_runs,
    reports_to_drop,
    runs_to_delete,
)

NY, RIGA = "America/New_York", "Europe/Riga"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        microsecond: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def ticks(cadence: Cadence, after: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        after = next_tick(cadence, after)
        found.append(after)
    return found


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("macro", "expression"), [
    ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"), (" @daily\n", "0 0 * * *"),
])
def test_macros_are_their_five_fields(macro: str, expression: str) -> None:
    assert parse_cadence(macro, None).expression == expression


@pytest.mark.parametrize(("macro", "after", "expected"), [
    ("@weekly", utc(2026, 12, 2, 1, 4), utc(2026, 12, 6)),  # the next Sunday
    ("@monthly", utc(2026, 12, 2, 1, 4), utc(2027, 1, 1)),
    ("@yearly", utc(2026, 12, 2, 1, 4), utc(2027, 1, 1)),
    ("@hourly", utc(2026, 12, 2, 1, 4), utc(2026, 12, 2, 2)),
    ("@midnight", utc(2026, 12, 2, 1, 4), utc(2026, 12, 3)),
])
def test_macros_tick(macro: str, after: datetime, expected: datetime) -> None:
    assert next_tick(parse_cadence(macro, None), after) == expected


@pytest.mark.parametrize(("line", "expression"), [
    ("0 3 * * *", "0 3 * * *"),
    ("*/15 9-17 * * MON-fri", "*/15 9-17 * * 1-5"),  # names in any case, as numbers
    ("0 0 1 jan,JUL *", "0 0 1 1,7 *"),
    ("0\t0  *  *   sun", "0 0 * * 0"),  # any whitespace between fields
    ("0 0\n* * *", "0 0 * * *"),
    ("? ? ? ? ?", "* * * * *"),  # robfig's `?` is `*`
    ("5/20 0 * * *", "5-59/20 0 * * *"),  # `N/S` runs to the field's end
    ("0 0 * * 1/2", "0 0 * * 1-6/2"),  # ... which is Saturday: cronsim's would be 7, Sunday again
    ("0 0 */2 * *", "0 0 1-31/2 * *"),  # a stepped star in a day field is a restriction (robfig)
    ("0 0 * * */3", "0 0 * * 0-6/3"),
    ("*/1 0 * * *", "* 0 * * *"),
    ("0 0 5,* * 1", "0 0 * * 1"),  # a list with a star is a star (robfig's star bit)
    ("0 0 1-5/1 * *", "0 0 1-5 * *"),
    ("0 0 7-7 * *", "0 0 7 * *"),
    ("00 003 * * *", "0 3 * * *"),
])
def test_expressions_are_normalized_for_cronsim(line: str, expression: str) -> None:
    assert parse_cadence(line, None).expression == expression


@pytest.mark.parametrize(("line", "after", "days"), [
    # both day fields restricted: either matches (odd days or Mondays; the 15th or Fridays)
    ("0 0 */2 * 1", utc(2026, 12, 1), [3, 5, 7, 9, 11, 13, 14, 15]),
    ("0 0 15 * 5", utc(2026, 12, 1), [4, 11, 15, 18, 25]),
    # one of them `*`: only the other counts
    ("0 0 * * 1", utc(2026, 12, 1), [7, 14, 21, 28]),
    ("0 0 15 * *", utc(2026, 12, 1), [15]),
    ("0 0 * * 1/2", utc(2026, 12, 1), [2, 4, 7, 9, 11]),  # Mon, Wed, Fri: never Sunday
])
def test_the_day_rule_is_robfigs(line: str, after: datetime, days: list[int]) -> None:
    found = [t for t in ticks(parse_cadence(line, None), after, len(days)) if t.month == 12]
    assert [t.day for t in found] == days


@pytest.mark.parametrize(("line", "message"), [
    ("61 * * * *", '"61 * * * *": minute 61 out of range 0-59'),
    ("0 24 * * *", '"0 24 * * *": hour 24 out of range 0-23'),
    ("0 0 0 * *", '"0 0 0 * *": day-of-month 0 out of range 1-31'),
    ("0 0 * 13 *", '"0 0 * 13 *": month 13 out of range 1-12'),
    ("0 0 * * 7", '"0 0 * * 7": day-of-week 7 out of range 0-6'),
    ("0-60 * * * *", '"0-60 * * * *": minute 60 out of range 0-59'),
    ("* * * *", '"* * * *": expected 5 fields (minute hour day-of-month month day-of-week), got 4'),
    ("", '"": expected 5 fields (minute hour day-of-month month day-of-week), got 0'),
    ("0 0 * * * *", '"0 0 * * * *": expected 5 fields (minute hour day-of-month month day-of-week), '
                    'got 6 (a seconds field is not supported)'),
    ("0 0 1 1 * 2027 x", '"0 0 1 1 * 2027 x": expected 5 fields (minute hour day-of-month month '
                         'day-of-week), got 7'),
    ("@reboot", '"@reboot": unknown macro; use one of @yearly, @annually, @monthly, @weekly, @daily, '
                '@midnight, @hourly'),
    ("@every 1h", '"@every 1h": unknown macro; use one of @yearly, @annually, @monthly, @weekly, @daily, '
                  '@midnight, @hourly'),
    ("@DAILY", '"@DAILY": unknown macro; use one of @yearly, @annually, @monthly, @weekly, @daily, '
               '@midnight, @hourly'),
    ("x * * * *", '"x * * * *": minute "x" is not a number'),
    ("0 0 * FOO *", '"0 0 * FOO *": month "FOO" is not a number or a name'),
    ("0 0 * * SUNDAY", '"0 0 * * SUNDAY": day-of-week "SUNDAY" is not a number or a name'),
    ("0 0 * * MON#1", '"0 0 * * MON#1": day-of-week "MON#1" is not a number, a range or a step'),
    ("0 0 L * *", '"0 0 L * *": day-of-month "L" is not a number'),
    ("0 0 15W * *", '"0 0 15W * *": day-of-month "15W" is not a number'),
    ("0 0 * * 5L", '"0 0 * * 5L": day-of-week "5L" is not a number or a name'),
    ("-5 * * * *", '"-5 * * * *": minute "-5" is not a number, a range or a step'),
    ("1,,2 * * * *", '"1,,2 * * * *": minute "" is not a number, a range or a step'),
    ("*/x * * * *", '"*/x * * * *": minute "*/x" is not a number, a range or a step'),
    ("*/0 * * * *", '"*/0 * * * *": minute step 0 must be at least 1'),
    ("5-1 * * * *", '"5-1 * * * *": minute range 5-1 ends before it starts'),
    ("0 0 * DEC-JAN *", '"0 0 * DEC-JAN *": month range 12-1 ends before it starts'),
    ("0 0 30 2 *", '"0 0 30 2 *": no date ever matches (Bad day-of-month)'),
    ("0 0 31 4,6,9 *", '"0 0 31 4,6,9 *": no date ever matches (Bad day-of-month)'),
    ("1234567890 * * * *", '"1234567890 * * * *": minute "1234567890" is not a number, a range or a step'),
])
def test_bad_schedules_are_one_line_naming_the_field(line: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_cadence(line, "Europe/Riga")
    assert str(caught.value) == f"spec.schedule: {message}"
    assert caught.value.field == "spec.schedule"
    assert isinstance(caught.value, ValueError)


def test_a_long_or_strange_schedule_is_quoted_short_on_one_line() -> None:
    line = "0 0 * * " + "1," * 100 + "\u2028x"
    with pytest.raises(ScheduleError) as caught:
        parse_cadence(line, None)
    text = str(caught.value)
    assert text.splitlines() == [text]
    assert text == ('spec.schedule: "0 0 * * ' + "1," * 24 + '1..."'
                    ': expected 5 fields (minute hour day-of-month month day-of-week), got 6 '
                    '(a seconds field is not supported)')


@pytest.mark.parametrize("zone", ["Mars/Base", "", "localtime", "Local", "America", "../etc/passwd",
                                  "/etc/localtime", "Europe/Riga ", "europe/riga", "UTC\0", "x" * 300,
                                  "zone.tab", "a/b/c/d/e"])
def test_unknown_time_zones_name_the_field(zone: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_cadence("0 3 * * *", zone)
    assert caught.value.field == "spec.timeZone"
    shown = zone if len(zone) <= 60 else zone[:57] + "..."
    assert str(caught.value) == f"spec.timeZone: unknown time zone {schedule._quote(shown)}"
    assert "\n" not in str(caught.value)


def test_the_time_zone_message() -> None:
    with pytest.raises(ScheduleError, match=r'^spec\.timeZone: unknown time zone "Mars/Base"$'):
        parse_cadence("@daily", "Mars/Base")


def test_a_bad_schedule_is_reported_before_a_bad_zone() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_cadence("61 * * * *", "Mars/Base")
    assert caught.value.field == "spec.schedule"


@pytest.mark.parametrize(("zone", "key"), [(None, "UTC"), ("UTC", "UTC"), (RIGA, RIGA), (NY, NY),
                                          ("Etc/GMT+5", "Etc/GMT+5")])
def test_the_time_zone_defaults_to_utc(zone: str | None, key: str) -> None:
    assert parse_cadence("@daily", zone) == Cadence("0 0 * * *", ZoneInfo(key))


# --- next_tick -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "zone", "after", "expected"), [
    ("0 3 * * *", None, utc(2026, 11, 30, 2, 59, 59), utc(2026, 11, 30, 3)),
    ("0 3 * * *", None, utc(2026, 11, 30, 3), utc(2026, 12, 1, 3)),  # strictly after
    ("0 3 * * *", None, utc(2026, 11, 30, 3, 0, 0, 999999), utc(2026, 12, 1, 3)),
    ("* * * * *", None, utc(2026, 11, 30, 3, 0, 59, 500000), utc(2026, 11, 30, 3, 1)),
    ("0 3 * * *", RIGA, utc(2026, 11, 30, 0), utc(2026, 11, 30, 1)),  # 03:00 EET is 01:00 UTC
    ("0 3 * * *", RIGA, utc(2026, 7, 1, 0), utc(2026, 7, 2, 0)),  # 03:00 EEST is 00:00 UTC
    ("0 3 * * *", None, datetime(2026, 11, 30, 4, 30, tzinfo=ZoneInfo(RIGA)), utc(2026, 11, 30, 3)),
])
def test_next_tick(line: str, zone: str | None, after: datetime, expected: datetime) -> None:
    found = next_tick(parse_cadence(line, zone), after)
    assert found == expected
    assert found.tzinfo is UTC


@pytest.mark.parametrize(("line", "zone", "start", "expected"), [
    # spring forward, 02:00 EST -> 03:00 EDT: 02:30 does not exist that day, it runs at 03:00 EDT
    ("30 2 * * *", NY, utc(2026, 3, 7), [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)]),
    ("0,30 2 * * *", NY, utc(2026, 3, 8), [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6), utc(2026, 3, 9, 6, 30)]),
    # fall back, 02:00 EDT -> 01:00 EST: 01:30 happens twice, it runs once, the first time (EDT)
    ("30 1 * * *", NY, utc(2026, 10, 31), [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30),
                                           utc(2026, 11, 2, 6, 30)]),
    # Riga: 03:00 EET -> 04:00 EEST on 29 March, 04:00 EEST -> 03:00 EET on 25 October
    ("30 3 * * *", RIGA, utc(2026, 3, 28), [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1),
                                           utc(2026, 3, 30, 0, 30)]),
    ("30 3 * * *", RIGA, utc(2026, 10, 24), [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30),
                                            utc(2026, 10, 26, 1, 30)]),
    # a schedule without a fixed minute and hour ticks in absolute time: both 01:00s and 01:30s
    ("0 * * * *", NY, utc(2026, 11, 1, 4), [utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7)]),
    ("*/30 1 * * *", NY, utc(2026, 11, 1), [utc(2026, 11, 1, 5), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6),
                                           utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 6)]),
    ("*/30 * * * *", NY, utc(2026, 3, 8, 6), [utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7),
                                             utc(2026, 3, 8, 7, 30)]),
])
def test_next_tick_across_dst(line: str, zone: str, start: datetime, expected: list[datetime]) -> None:
    found = ticks(parse_cadence(line, zone), start, len(expected))
    assert found == expected
    names = [run_name("nightly", t) for t in found]
    assert len(set(names)) == len(names)  # no run is created twice


@pytest.mark.parametrize(("line", "zone", "start", "days"), [
    ("30 2 * * *", NY, utc(2026, 3, 1), 14), ("30 1 * * *", NY, utc(2026, 10, 25), 14),
    ("30 3 * * *", RIGA, utc(2026, 3, 22), 14), ("30 3 * * *", RIGA, utc(2026, 10, 18), 14),
])
def test_a_daily_schedule_runs_once_every_day_across_dst(line: str, zone: str, start: datetime,
                                                         days: int) -> None:
    local_days = [t.astimezone(ZoneInfo(zone)).date() for t in ticks(parse_cadence(line, zone), start, days)]
    assert local_days == [start.date() + timedelta(days=n) for n in range(days)]


@pytest.mark.parametrize(("line", "after", "expected"), [
    # after 01:10 EST, the second 01:10: cronsim's next 01:30 is the first one (EDT), already past
    ("30 1 * * *", utc(2026, 11, 1, 6, 10), utc(2026, 11, 2, 6, 30)),
    ("*/30 1 * * *", utc(2026, 11, 1, 6, 10), utc(2026, 11, 1, 6, 30)),
    ("30 1 * * *", utc(2026, 11, 1, 5, 10), utc(2026, 11, 1, 5, 30)),
])
def test_next_tick_is_after_its_start_within_a_repeated_hour(line: str, after: datetime,
                                                             expected: datetime) -> None:
    assert next_tick(parse_cadence(line, NY), after) == expected


# --- due -----------------------------------------------------------------------------------------

NIGHTLY = parse_cadence("0 3 * * *", None)
CREATED = utc(2026, 11, 29, 12)
LAST, LATER = utc(2026, 11, 30, 3), utc(2026, 12, 3, 3, 10)  # three ticks later


@pytest.mark.parametrize(("last", "now", "deadline", "expected"), [
    # nothing due yet
    (None, utc(2026, 11, 30, 2, 59, 59), None, Due(None, 0, None, utc(2026, 11, 30, 3))),
    (None, utc(2026, 11, 29, 12), None, Due(None, 0, None, utc(2026, 11, 30, 3))),
    # the first tick after creation, at it and later
    (None, utc(2026, 11, 30, 3), None, Due(utc(2026, 11, 30, 3), 0, None, utc(2026, 12, 1, 3))),
    (None, utc(2026, 11, 30, 3, 0, 30), 60, Due(utc(2026, 11, 30, 3), 0, None, utc(2026, 12, 1, 3))),
    # the run of the last tick was started: nothing until the next
    (utc(2026, 11, 30, 3), utc(2026, 11, 30, 3), None, Due(None, 0, None, utc(2026, 12, 1, 3))),
    (utc(2026, 11, 30, 3), utc(2026, 12, 1, 2), None, Due(None, 0, None, utc(2026, 12, 1, 3))),
    # three ticks since the last: the latest is run, two are missed
    (LAST, LATER, None, Due(utc(2026, 12, 3, 3), 2, None, utc(2026, 12, 4, 3))),
    # the deadline: 600 s keeps a tick 600 s old, 599 s is too late, also with nothing missed
    (LAST, LATER, 600, Due(utc(2026, 12, 3, 3), 2, None, utc(2026, 12, 4, 3))),
    (LAST, LATER, 599, Due(None, 2, utc(2026, 12, 3, 3), utc(2026, 12, 4, 3))),
    (None, utc(2026, 11, 30, 3, 5), 60, Due(None, 0, utc(2026, 11, 30, 3), utc(2026, 12, 1, 3))),
    (None, utc(2026, 11, 30, 3, 5), 0, Due(None, 0, utc(2026, 11, 30, 3), utc(2026, 12, 1, 3))),
    (None, utc(2026, 11, 30, 3), 0, Due(utc(2026, 11, 30, 3), 0, None, utc(2026, 12, 1, 3))),
    # `last` wins over creation
    (utc(2026, 12, 2, 3), utc(2026, 12, 3, 3), None, Due(utc(2026, 12, 3, 3), 0, None, utc(2026, 12, 4, 3))),
])
def test_due(last: datetime | None, now: datetime, deadline: int | None, expected: Due) -> None:
    assert due(NIGHTLY, last, CREATED, now, deadline) == expected


def test_a_tick_at_creation_is_not_due() -> None:
    created = utc(2026, 11, 30, 3)
    assert due(NIGHTLY, None, created, created, None) == Due(None, 0, None, utc(2026, 12, 1, 3))


def test_an_operator_restarted_at_a_tick_starts_its_run_once() -> None:
    tick = utc(2026, 12, 1, 3)
    last = utc(2026, 11, 30, 3)
    before_restart = due(NIGHTLY, last, CREATED, tick, None)
    after_restart = due(NIGHTLY, last, CREATED, tick + timedelta(seconds=45), None)
    assert before_restart.tick == after_restart.tick == tick
    assert before_restart.tick is not None
    assert run_name("nightly", before_restart.tick) == run_name("nightly", tick) == "nightly-20261201-0300"
    # the run was created and lastScheduleTime set to its tick: not due again
    for now in (tick, tick + timedelta(seconds=45), utc(2026, 12, 2, 2, 59, 59)):
        assert due(NIGHTLY, tick, CREATED, now, None) == Due(None, 0, None, utc(2026, 12, 2, 3))


class _Counted(CronSim):
    calls = 0

    def __next__(self) -> datetime:
        _Counted.calls += 1
        return super().__next__()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[_Counted]:
    _Counted.calls = 0
    monkeypatch.setattr(schedule, "CronSim", _Counted)
    return _Counted


def test_a_year_behind_every_minute_is_bounded(counted: type[_Counted]) -> None:
    every_minute = parse_cadence("* * * * *", None)
    now = utc(2026, 12, 2, 1, 4, 30)
    found = due(every_minute, None, now - timedelta(days=365), now, None)
    assert found == Due(utc(2026, 12, 2, 1, 4), 100, None, utc(2026, 12, 2, 1, 5))
    # 100 forwards from creation, 1 backwards from now, 2 forwards from just before the latest
    # (the second is after now), 1 for wake_at
    assert counted.calls == 104


def test_a_year_behind_with_a_deadline_is_too_late(counted: type[_Counted]) -> None:
    now = utc(2026, 12, 2, 1, 4, 30)
    found = due(parse_cadence("* * * * *", None), None, now - timedelta(days=365), now, 10)
    assert found == Due(None, 100, utc(2026, 12, 2, 1, 4), utc(2026, 12, 2, 1, 5))
    assert counted.calls == 104


@pytest.mark.parametrize(("behind", "max_scan", "missed"), [
    (9, 10, 8),  # exact: the 10th tick is after now
    (10, 10, 9),  # exact: the 10 ticks are all of them
    (11, 10, 10),  # a lower bound from here on
    (60 * 24 * 365, 10, 10),
    (3, 1, 1),
    (1, 1, 0),
    (2, 0, 1),  # max_scan below 1 is 1
])
def test_missed_is_exact_within_max_scan_then_a_lower_bound(behind: int, max_scan: int, missed: int) -> None:
    now = utc(2026, 12, 2, 1, 4, 30)
    created = now - timedelta(minutes=behind)
    found = due(parse_cadence("* * * * *", None), None, created, now, None, max_scan)
    assert found == Due(utc(2026, 12, 2, 1, 4), missed, None, utc(2026, 12, 2, 1, 5))


@pytest.mark.parametrize("now", [utc(2026, 12, 2, 1, 4), utc(2026, 12, 2, 1, 4, 0, 1),
                                 utc(2026, 12, 2, 1, 4, 59, 999999)])
def test_a_long_backlog_finds_the_latest_tick_at_any_fraction_of_a_second(now: datetime) -> None:
    found = due(parse_cadence("* * * * *", None), None, now - timedelta(days=30), now, None, max_scan=5)
    assert found == Due(utc(2026, 12, 2, 1, 4), 5, None, utc(2026, 12, 2, 1, 5))


@pytest.mark.parametrize(("line", "now", "expected"), [
    # at 01:10 EST on fall-back day: the latest tick is 01:30 EDT that day; searching backwards
    # from the wall time 01:10 alone finds the day before's (so it is seen, and missed: 11)
    ("30 1 * * *", utc(2026, 11, 1, 6, 10), Due(utc(2026, 11, 1, 5, 30), 11, None, utc(2026, 11, 2, 6, 30))),
    ("30 2 * * *", utc(2026, 3, 8, 7, 10), Due(utc(2026, 3, 8, 7), 10, None, utc(2026, 3, 9, 6, 30))),
    ("0 * * * *", utc(2026, 11, 1, 6, 10), Due(utc(2026, 11, 1, 6), 10, None, utc(2026, 11, 1, 7))),
    # at 01:00:30 EST: backwards finds 01:00 EDT, forwards again the 59 minutes after it
    ("0-59 1 * * *", utc(2026, 11, 1, 6, 0, 30), Due(utc(2026, 11, 1, 5, 59), 69, None, utc(2026, 11, 2, 6))),
])
def test_a_long_backlog_across_dst_finds_the_forward_tick(line: str, now: datetime, expected: Due) -> None:
    assert due(parse_cadence(line, NY), None, now - timedelta(days=200), now, None, max_scan=10) == expected


@pytest.mark.parametrize("max_scan", [1, 3, 100])
def test_the_backlog_answer_does_not_depend_on_max_scan(max_scan: int) -> None:
    cadence = parse_cadence("30 1 * * *", NY)
    now, created = utc(2026, 11, 1, 6, 10), utc(2026, 10, 27)
    assert due(cadence, None, created, now, None, max_scan).tick == utc(2026, 11, 1, 5, 30)


# --- names and concurrency -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "tick", "expected"), [
    ("nightly", utc(2026, 11, 30, 3), "nightly-20261130-0300"),
    ("nightly", datetime(2026, 11, 30, 5, 7, tzinfo=ZoneInfo(RIGA)), "nightly-20261130-0307"),
    ("a", utc(2027, 1, 2, 23, 59), "a-20270102-2359"),
])
def test_run_name(name: str, tick: datetime, expected: str) -> None:
    assert run_name(name, tick) == expected


def test_the_longest_schedule_name_keeps_the_master_a_dns_label() -> None:
    assert MAX_SCHEDULE_NAME == 42
    assert len(run_name("s" * MAX_SCHEDULE_NAME, utc(2026, 11, 30, 3)) + "-master") == 63


@pytest.mark.parametrize(("policy", "live", "action"), [
    ("Forbid", [], "create"), ("Forbid", ["r1"], "skip"),
    ("Allow", [], "create"), ("Allow", ["r1", "r2"], "create"),
    ("Replace", [], "create"), ("Replace", ["r1"], "replace"),
    ("Other", ["r1"], "skip"), ("Other", [], "create"),
])
def test_concurrency(policy: str, live: list[str], action: str) -> None:
    assert concurrency(policy, live) == action


# --- history -------------------------------------------------------------------------------------


def run(name: str, phase: str | None, day: int, **kwargs: Any) -> RunView:
    return RunView(name, phase, utc(2026, 11, day, 3), **kwargs)


HISTORY = [  # not in order, on purpose
    run("s3", "Succeeded", 3), run("f2", "Failed", 2), run("s1", "Succeeded", 1), run("p9", "Pending", 9),
    run("s5", "Succeeded", 5), run("f4", "Failed", 4), run("r8", "Running", 8), run("n7", None, 7),
    run("s6", "Succeeded", 6),
]


@pytest.mark.parametrize(("succeeded", "failed", "deleted"), [
    (3, 1, ["s1", "f2"]),
    (0, 0, ["s1", "f2", "s3", "f4", "s5", "s6"]),
    (1, 0, ["s1", "f2", "s3", "f4", "s5"]),
    (0, 2, ["s1", "s3", "s5", "s6"]),
    (10, 10, []),
    (4, 2, []),
    (-1, -1, ["s1", "f2", "s3", "f4", "s5", "s6"]),  # below 0 is 0
])
def test_runs_to_delete(succeeded: int, failed: int, deleted: list[str]) -> None:
    assert runs_to_delete(HISTORY, succeeded, failed) == deleted


def test_runs_to_delete_never_deletes_a_live_run() -> None:
    live = [run("p1", "Pending", 1), run("r2", "Running", 2), run("n3", None, 3), run("x4", "Unknown", 4)]
    assert runs_to_delete(live, 0, 0) == []


def test_runs_of_one_tick_are_ordered_by_name() -> None:
    same = [run("b", "Succeeded", 1), run("a", "Succeeded", 1), run("c", "Succeeded", 1)]
    assert runs_to_delete(same, 1, 0) == ["a", "b"]
    assert reports_to_drop(same, 1) == ["a", "b"]


@pytest.mark.parametrize(("keep", "dropped"), [
    (None, []),
    (0, ["s1", "f2", "s3", "f4", "s5", "s6"]),
    (2, ["s1", "f2", "s3", "f4"]),
    (5, ["s1"]),
    (6, []),
    (-3, ["s1", "f2", "s3", "f4", "s5", "s6"]),
])
def test_reports_to_drop(keep: int | None, dropped: list[str]) -> None:
    assert reports_to_drop(HISTORY, keep) == dropped


RESULT = {"rps": "12.5", "failRatio": "0.0123", "responseTimeMs": {"p50": 80, "p95": 190}, "requests": 9}


def test_recent_runs_are_newest_first_with_their_numbers() -> None:
    runs = [run("s5", "Succeeded", 5, verdict="Passed", result=RESULT), run("p9", "Pending", 9),
            run("f4", "Failed", 4, verdict="Failed", result={"rps": "0", "failRatio": "1"}),
            run("n7", None, 7), run("s3", "Succeeded", 3), run("s1", "Succeeded", 1),
            run("s6", "Succeeded", 6)]
    assert recent_runs(runs) == [
        {"name": "p9", "scheduledTime": "2026-11-09T03:00:00Z", "phase": "Pending"},
        {"name": "n7", "scheduledTime": "2026-11-07T03:00:00Z"},
        {"name": "s6", "scheduledTime": "2026-11-06T03:00:00Z", "phase": "Succeeded"},
        {"name": "s5", "scheduledTime": "2026-11-05T03:00:00Z", "phase": "Succeeded", "verdict": "Passed",
         "rps": "12.5", "p95Ms": 190, "failRatio": "0.0123"},
        {"name": "f4", "scheduledTime": "2026-11-04T03:00:00Z", "phase": "Failed", "verdict": "Failed",
         "rps": "0", "failRatio": "1"},
    ]
    assert [entry["name"] for entry in recent_runs(runs, 2)] == ["p9", "n7"]
    assert recent_runs(runs, 0) == recent_runs(runs, -1) == []
    assert recent_runs([], 5) == []


@pytest.mark.parametrize(("result", "numbers"), [
    (None, {}),
    ({}, {}),
    ("12.5", {}),
    ({"rps": 12.5, "failRatio": 0, "responseTimeMs": {"p95": 190.5}}, {}),  # not of the status' shapes
    ({"rps": True, "failRatio": "NaN", "responseTimeMs": {"p95": True}}, {}),
    ({"rps": "1e9", "failRatio": "-0.1", "responseTimeMs": {"p95": -1}}, {}),
    ({"rps": "12.5\n", "failRatio": " 0.1", "responseTimeMs": [190]}, {}),
    ({"rps": "1" * 17, "responseTimeMs": {"p95": 10**16}}, {}),
    ({"rps": "1" * 16, "responseTimeMs": {"p95": 10**15}}, {"rps": "1" * 16, "p95Ms": 10**15}),
    ({"responseTimeMs": {"p95": 0}}, {"p95Ms": 0}),
    ({"failRatio": "0"}, {"failRatio": "0"}),
])
def test_recent_runs_take_only_numbers_of_their_shape(result: Any, numbers: dict[str, Any]) -> None:
    [entry] = recent_runs([run("s1", "Succeeded", 1, result=result)])
    assert entry == {"name": "s1", "scheduledTime": "2026-11-01T03:00:00Z", "phase": "Succeeded", **numbers}
