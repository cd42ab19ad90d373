"""`history`, `compare` and `wait --schedule`: what the CLI reads of a series and a schedule.

The views are pure (history_view.py); this module only asks the API server,
within bounds, with the user's own credentials (who may read ConfigMaps, which
the operator may not).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from locust_operator.api.config import OperatorConfig
from locust_operator.api.contract import KIND, SCHEDULE_KIND, SCHEDULE_LABEL, SERIES_LABEL
from locust_operator.build.render import render
from locust_operator.build.schedule_run import run_test
from locust_operator.cli.kept_report import ReportError, fetch
from locust_operator.controller.kube_api import ApiError, KubeApi, object_path
from locust_operator.rules.schedule import ScheduleError, next_tick, parse_cadence

# Runs listed for `history` (a schedule keeps at most 200), and the bytes of the list.
HISTORY_LIMIT = 500
HISTORY_MAX_BYTES = 64 * 1024 * 1024


async def series_runs(api: KubeApi, namespace: str, series: str) -> list[dict[str, Any]]:
    return await api.list_labelled(KIND, namespace, f"{SERIES_LABEL}={series}", HISTORY_LIMIT,
                                   HISTORY_MAX_BYTES)


async def result_document(api: KubeApi, namespace: str, name: str) -> Any:
    """A run's kept result.json, parsed; ReportError when it has none."""
    content = await fetch(api, namespace, name, "json")
    try:
        return json.loads(content)
    except ValueError as exc:
        raise ReportError(f"{name}: result.json is not JSON ({exc})") from None


async def next_run(api: KubeApi, namespace: str, schedule: str, progress: Callable[[str], None],
                   poll_seconds: float = 2.0) -> str:
    """The schedule's run to wait for: its live run, else the next one it starts."""
    try:
        found = await api.get_json(object_path(SCHEDULE_KIND, namespace, schedule))
    except ApiError as exc:
        if exc.status == 404:
            raise ReportError(f"{schedule}: no LocustTestSchedule {schedule} in namespace "
                              f"{namespace}") from None
        raise
    live = (found.get("status") or {}).get("live") or []
    if live:
        return str(sorted(live)[-1])
    before = {r["metadata"]["name"] for r in await _runs(api, namespace, schedule)}
    due = (found.get("status") or {}).get("nextScheduleTime") or "its next tick"
    progress(f"{schedule}: waiting for the next run (due {due})")
    while True:
        await asyncio.sleep(poll_seconds)
        fresh = sorted(r["metadata"]["name"] for r in await _runs(api, namespace, schedule)
                       if r["metadata"]["name"] not in before)
        if fresh:
            return str(fresh[-1])


async def _runs(api: KubeApi, namespace: str, schedule: str) -> list[dict[str, Any]]:
    return await api.list_labelled(KIND, namespace, f"{SCHEDULE_LABEL}={schedule}", HISTORY_LIMIT,
                                   HISTORY_MAX_BYTES)


def render_schedule(schedule: dict[str, Any], config: OperatorConfig, now: datetime) -> list[dict[str, Any]]:
    """What `render` shows of a LocustTestSchedule: its next run after `now`, and that run's objects.

    Validated like the API server validates it, and then the cron line and the
    time zone as the operator reads them (InvalidLocustTest naming the field).
    """
    from locust_operator.validation.validator import InvalidLocustTest, Problem, validated

    defaulted = validated(schedule)
    spec = defaulted["spec"]
    try:
        cadence = parse_cadence(spec["schedule"], spec.get("timeZone"))
    except ScheduleError as exc:
        raise InvalidLocustTest([Problem(exc.field, str(exc).removeprefix(f"{exc.field}: "))]) from None
    run = run_test(defaulted, next_tick(cadence, now))
    return [run, *render(run, config)]
