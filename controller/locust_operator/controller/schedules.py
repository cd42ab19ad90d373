"""The LocustTestSchedule loops: Kopf runs one per schedule (`ScheduleLoops.run`).

A loop lists the runs its schedule owns, asks the pure plan
(rules/schedule_plan.py) what to do, carries it out (create the due run, abort
live runs for Replace, delete runs past the history limits, write events) and
writes the status when it changed; then it sleeps until the next tick, or
until a run of the schedule changes or the schedule does (`wake`).

Whatever the API answers stays in this schedule's status (condition Scheduled)
and the loop looks again later; it never ends the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from locust_operator.api.contract import ABORT_ANNOTATION, KIND, SCHEDULE_KIND, SCHEDULE_LABEL
from locust_operator.api.times import timestamp
from locust_operator.build.events import event_body
from locust_operator.build.schedule_run import run_test
from locust_operator.controller.kube_api import API_ERRORS, Api, ApiError
from locust_operator.controller.metrics import ERRORS
from locust_operator.controller.run_actions import StopFlag
from locust_operator.rules.bounded import text
from locust_operator.rules.conditions import condition
from locust_operator.rules.schedule_plan import RUN_CREATED, Plan, plan, unchanged

log = logging.getLogger("locust_operator")
Key = tuple[str, str]
# A schedule owns at most its history limits (100 + 100) and its live runs: one page.
RUNS_LIMIT = 250
RUNS_MAX_BYTES = 32 * 1024 * 1024
# Coalesces the burst of run events (each status patch of a run) into one look.
SETTLE_SECONDS = 1.0
# After an API error, look again this soon.
RETRY_SECONDS = 10.0
# The reason of condition Scheduled (and of the warning) when the due run could not be created.
NOT_CREATED = "RunNotCreated"


def owned_by(test: Mapping[str, Any], uid: str) -> bool:
    refs = (test.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(r, dict) and r.get("uid") == uid and r.get("controller") for r in refs)


@dataclasses.dataclass
class ScheduleLoops:
    """Every schedule's loop shares this: API access, the clock, and the wake-ups."""

    api: Api
    clock: Callable[[], datetime]
    settle_seconds: float = SETTLE_SECONDS
    wakes: dict[Key, asyncio.Event] = dataclasses.field(default_factory=dict)

    def wake(self, key: Key) -> None:
        event = self.wakes.get(key)
        if event is not None:
            event.set()

    async def run(self, body: Mapping[str, Any], stopped: StopFlag) -> None:
        """Look at the schedule until Kopf stops the loop (the schedule is gone)."""
        metadata = body["metadata"]
        key = (metadata["namespace"], metadata["name"])
        wake = self.wakes.setdefault(key, asyncio.Event())
        try:
            while not stopped:
                wake.clear()
                seconds = await self.look(body)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(wake.wait(), stopped.wait()), timeout=seconds)
                if not stopped:
                    await asyncio.sleep(self.settle_seconds)
        finally:
            self.wakes.pop(key, None)

    async def look(self, body: Mapping[str, Any]) -> float:
        """One look: plan and act; the seconds until the next look."""
        metadata = body["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        try:
            listed = await self.api.list_labelled(KIND, namespace, f"{SCHEDULE_LABEL}={name}",
                                                  RUNS_LIMIT, RUNS_MAX_BYTES)
            steps = plan(body, [t for t in listed if owned_by(t, metadata["uid"])], self.clock())
            await self._act(body, steps)
        except API_ERRORS as exc:
            if not (isinstance(exc, ApiError) and exc.status < 500):
                ERRORS.labels("schedule").inc()
            log.warning("%s/%s: schedule not handled: %s", namespace, name, text(exc, 300))
            return RETRY_SECONDS
        wake_at = steps.wake_at or self.clock()
        return max(1.0, (wake_at - self.clock()).total_seconds())

    async def _act(self, body: Mapping[str, Any], steps: Plan) -> None:
        metadata = body["metadata"]
        namespace = metadata["namespace"]
        abort = {"metadata": {"annotations": {ABORT_ANNOTATION: "true"}}}
        for live in steps.abort:
            await self.api.patch(KIND, namespace, live, abort)
        for doomed in steps.delete:
            await self._delete(namespace, doomed)
        for run, configmap, uid in steps.drop_reports:
            await self._drop_report(namespace, run, configmap, uid)
        status, events = dict(steps.status), list(steps.events)
        if steps.create is not None:
            problem = await self._create(body, steps.create)
            if problem is not None:
                status["conditions"] = [self._not_created(body, status["conditions"][0], problem)]
                # the plan's RunCreated event would say the run was created
                events = [("Warning", NOT_CREATED, problem) if reason == RUN_CREATED
                          else (kind, reason, message) for kind, reason, message in events]
        for event_type, reason, message in events:
            await self._event(metadata, event_type, reason, message)
        if not unchanged(body.get("status") or {}, status):
            await self.api.patch_status(namespace, metadata["name"], status, kind=SCHEDULE_KIND)

    def _not_created(self, body: Mapping[str, Any], scheduled: Mapping[str, Any],
                     problem: str) -> dict[str, Any]:
        """The condition Scheduled when the run was not created: False, its time moved if it flips."""
        old = condition(dict(body.get("status") or {}), "Scheduled") or {}
        moved = old.get("status") != "False" or not old.get("lastTransitionTime")
        return {**scheduled, "status": "False", "reason": NOT_CREATED, "message": problem,
                "lastTransitionTime": timestamp(self.clock()) if moved else old["lastTransitionTime"]}

    async def _create(self, body: Mapping[str, Any], tick: datetime) -> str | None:
        """Create the run of `tick`; AlreadyExists is success when the run is ours. A problem, else None."""
        run = run_test(body, tick)
        try:
            await self.api.create(run)
            return None
        except ApiError as exc:
            if exc.status >= 500 or exc.status == 429:
                raise  # the server's trouble: the look is retried soon, the tick not yet done
            if exc.status != 409:
                return f"run {run['metadata']['name']} not created: {text(exc.message, 500)}"
        existing = await self.api.read(KIND, body["metadata"]["namespace"], run["metadata"]["name"])
        if owned_by(existing, body["metadata"]["uid"]):
            return None  # created before a restart: the same run, not a second one
        return (f"run {run['metadata']['name']} not created: a LocustTest of that name exists and is not "
                "this schedule's")

    async def _delete(self, namespace: str, name: str) -> None:
        try:
            existing = await self.api.read(KIND, namespace, name)
            await self.api.delete(KIND, namespace, name, str(existing["metadata"]["uid"]))
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    async def _drop_report(self, namespace: str, run: str, configmap: str, uid: str) -> None:
        """Delete a run's kept-apart HTML report (only that very ConfigMap: its uid), then say so in
        the run's status. A DELETE answers a Status, not the object: the operator still reads no
        ConfigMap."""
        try:
            await self.api.delete("ConfigMap", namespace, configmap, uid)
        except ApiError as exc:
            if exc.status not in (404, 409):  # gone already, or not the one the run wrote
                raise
        await self.api.patch_status(namespace, run, {"result": {"report": {
            "reportConfigMap": None, "reportDropped": "the HTML report is kept for the newest runs of "
            "the schedule only (keepReportRuns)"}}})

    async def _event(self, metadata: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        try:
            await self.api.create(event_body(dict(metadata), event_type, reason, message, self.clock(),
                                             kind=SCHEDULE_KIND))
        except API_ERRORS as exc:  # an event is a courtesy: its loss is logged, not fatal
            log.info("%s/%s: event %s not written: %s", metadata["namespace"], metadata["name"], reason,
                     text(exc, 200))


async def _first(*waits: Any) -> None:
    """Return when the first of the awaitables completes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
