"""One live test's loop: observe its children and its master, derive its status, act.

`TestLoop.run` is what Kopf runs as the test's daemon (through `Reconciler.run`):
it creates the children once, then sleeps until something wakes it (a watch event
of one of its children, a live poll's answer, a grace period or the run's ceiling),
looks once (`_step`) and writes the status only when it changed. It returns when
the phase is terminal, so finished tests cost nothing. Whatever goes wrong while
observing one test stays with that test (`_guarded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from locust_operator.api.contract import ABORT_ANNOTATION, MASTER, RUNNING, TERMINAL, child_names
from locust_operator.build.render import max_duration
from locust_operator.build.web_ui import web_base_path
from locust_operator.build.workers import processes_per_pod
from locust_operator.controller.kube_api import API_ERRORS, backoff
from locust_operator.controller.master_api import Answer
from locust_operator.controller.metrics import ERRORS
from locust_operator.controller.run_actions import (
    Actions,
    Object,
    Runtime,
    StopFlag,
    master_may_answer,
)
from locust_operator.controller.run_state import Creation, RunState
from locust_operator.rules.bounded import text
from locust_operator.rules.conditions import condition, with_tracking_error
from locust_operator.rules.jobs import STOP_NOW, job_finished
from locust_operator.rules.locust_stats import stats_url, summarize
from locust_operator.rules.observation import Status
from locust_operator.rules.observe import Children, JobView, Key, PodView, master_pod, observe
from locust_operator.rules.status import Derived, derive_status

log = logging.getLogger("locust_operator")
# Ready reasons after which a restarted operator has nothing left to create.
_CREATION_DONE = ("ResourcesCreated", "ResourcesFailed", "NameConflict")
# The longest wait between live polls of a master that does not answer.
_MAX_POLL_SECONDS = 60
# Seconds between looks at the events of a pod whose containers are not created yet.
MOUNT_RECHECK_SECONDS = 5.0
# Seconds between reads of an exited master's log that did not end with its final stats.
LOG_RECHECK_SECONDS = 2.0


@dataclasses.dataclass
class LiveTest:
    """What the watches tell one test's loop: a wake-up, and children that went away."""

    uid: str
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # Children whose deletion was observed ("Service", "master Job", "worker Job").
    deleted: set[str] = dataclasses.field(default_factory=set)
    # Finished Jobs and terminated master pods that were deleted since (e.g. a TTL of 0):
    # their last views, so the verdict still sees how the run ended.
    gone_jobs: dict[str, JobView] = dataclasses.field(default_factory=dict)
    gone_pods: dict[str, PodView] = dataclasses.field(default_factory=dict)

    def with_gone(self, kids: Children) -> Children:
        roles = {j.role for j in kids.jobs}
        names = {p.name for p in kids.pods}
        return Children(jobs=[*kids.jobs, *(j for r, j in self.gone_jobs.items() if r not in roles)],
                        services=kids.services,
                        pods=[*kids.pods, *(p for n, p in self.gone_pods.items() if n not in names)])


@dataclasses.dataclass(frozen=True)
class _Next:
    """What the loop does after a step: stop, derive again now, or sleep."""

    done: bool = False
    again: bool = False
    timeout: float | None = None


class TestLoop:
    """The loops of all live tests: shared dependencies, per-test state in RunState."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.act = Actions(rt)

    async def run(self, body: Mapping[str, Any], children: Callable[[], Children],
                  stopped: StopFlag, live: LiveTest) -> None:
        """Track one test until its phase is terminal (or Kopf stops the loop).

        `body` is Kopf's live view of the test, `children` reads its children's
        views from the watches, `live` is what the watches tell this loop; all are
        re-read on every wake.
        """
        metadata = body["metadata"]
        key: Key = (metadata["namespace"], metadata["name"])
        # Kopf's stop request (the test finished or went away) wakes a sleeping loop,
        # so it returns at once instead of being cancelled.
        on_stop = asyncio.ensure_future(_wake_on_stop(stopped, live))
        run: RunState | None = None
        try:
            previous: Status = dict(body.get("status") or {})
            if previous.get("phase") in TERMINAL:
                return  # finished before this loop started (e.g. an operator restart)
            creation = Creation()
            if (condition(previous, "Ready") or {}).get("reason") not in _CREATION_DONE:
                creation = await self.act.create(body, stopped)
            url = stats_url(self.rt.config.statsUrlTemplate, child_names(key[1])[MASTER], key[0],
                            web_base_path({"metadata": metadata, "spec": body.get("spec") or {}}))
            run = RunState(previous=previous, url=url, creation=creation, result=previous.get("result"),
                           problem=(previous.get("locust") or {}).get("message"))
            await self._guarded(body, children, stopped, key, live, run)
        finally:
            on_stop.cancel()
            if run is not None and run.poll is not None:
                run.poll.cancel()

    async def _guarded(self, body: Mapping[str, Any], children: Callable[[], Children],
                       stopped: StopFlag, key: Key, live: LiveTest, run: RunState) -> None:
        """Steps until the test is terminal; an unexpected error in one step is logged as
        one line naming the test, noted in its status (Tracking=False), and retried."""
        errors = 0
        while not stopped:
            try:
                step = await self._step(body, children, key, live, run)
                errors = 0
            except Exception as exc:  # one test's trouble must never end the others' loops
                ERRORS.labels("observe").inc()
                delay = backoff(self.rt.error_delays, errors)
                errors += 1
                message = f"cannot observe the test: {type(exc).__name__}: {text(exc, 300)}"
                log.error("%s/%s: %s; retrying in %ss", *key, message, delay)
                await self._note_error(key, run, message)
                step = _Next(timeout=delay)
            if step.done:
                return
            if not step.again:
                await self._sleep(live, step.timeout, run.poll)

    async def _step(self, body: Mapping[str, Any], children: Callable[[], Children], key: Key,
                    live: LiveTest, run: RunState) -> _Next:
        """Look at the test once: act on the run, derive the status, write it if it changed."""
        test = {"metadata": dict(body["metadata"]), "spec": dict(body.get("spec") or {})}
        self._log_drift(key, test, run)
        kids = await self.act.mount_failures(key[0], live.with_gone(children()))
        if await self._act_on_run(test, kids, run):
            return _Next(again=True)
        now = self.rt.clock()
        observation = observe(
            test, kids, now=now, grace_seconds=self.rt.config.podHealthGraceSeconds,
            create_error=run.creation.error, create_error_reason=run.creation.reason,
            deleted=live.deleted, locust=run.locust, just_created=run.creation.just_created,
            result=run.result, aborted=run.aborted, run_stopped=run.run_stopped,
            deadline_exceeded=run.deadline, live_problem=run.problem,
            results_pending=run.log_pending and run.result is None,
            processes_per_pod=processes_per_pod(test["spec"], self.rt.config))
        derived = derive_status(run.previous, observation)
        if derived.stop_jobs == STOP_NOW and not run.stop_tried and \
                await self.act.stop_master(test, kids, run):
            return _Next(again=True)  # results read before the Jobs end: derive with them
        if derived.status != run.previous:
            try:
                # Shielded: a terminal status stops the loop's filter, and Kopf may
                # cancel the loop before the events announcing it are written.
                if not await asyncio.shield(self.act.write(test, kids, run.previous, derived)):
                    return _Next(done=True)  # the test was deleted meanwhile
            except API_ERRORS as exc:
                ERRORS.labels("status").inc()
                delay = backoff(self.rt.retry_delays, run.write_failures)
                run.write_failures += 1
                log.warning("%s/%s: cannot write the status (%s); retrying in %ss", *key, exc, delay)
                return _Next(timeout=delay)
            run.write_failures = 0
            run.previous = derived.status
        run.creation.just_created = False
        if run.previous["phase"] in TERMINAL:
            return _Next(done=True)
        return self._next_wake(test, kids, run, derived, now)

    def _log_drift(self, key: Key, test: Object, run: RunState) -> None:
        generation = int(test["metadata"].get("generation", 1))
        if generation > run.drift_logged:
            run.drift_logged = generation
            log.warning("Update operations on %s are not currently supported!", key[1])

    async def _act_on_run(self, test: Object, kids: Children, run: RunState) -> bool:
        """Abort, deadline, a finished live poll, the log fallback; True to derive at once."""
        metadata = test["metadata"]
        if (metadata.get("annotations") or {}).get(ABORT_ANNOTATION) == "true" and not run.aborted:
            run.aborted = True
            log.info("%s/%s: abort requested", metadata["namespace"], metadata["name"])
            await self.act.stop_master(test, kids, run)
        limit = max_duration(test["spec"], self.rt.config)
        if limit and run.deadline is None and self.rt.age_seconds(metadata) >= limit:
            run.deadline = limit
            log.info("%s/%s: ran past its %ss limit; stopping it", metadata["namespace"],
                     metadata["name"], limit)
            await self.act.stop_master(test, kids, run)
        if run.poll is not None and run.poll.done() and await self._take_poll(test, run):
            return True
        if run.result is None and not run.log_read and _master_ended(test, kids):
            # The run ended before its results were read from the master's API. Until its
            # Job has finished, a log without the final stats may still be being written.
            final = job_finished(_master_job(test, kids))
            run.result = await self.rt.results.from_log(test, kids, run.previous, final=final)
            run.log_read = run.result is not None
            run.log_pending = run.result is None
        return False

    async def _take_poll(self, test: Object, run: RunState) -> bool:
        """Take in a finished live poll: numbers, a refusal, or no answer (back off)."""
        assert run.poll is not None
        answer = run.poll.result() if not run.poll.cancelled() else Answer()
        run.poll = None
        if answer.problem:
            run.problem, run.live_off = f"{answer.problem}; live stats off", True
            return True
        if answer.value is None:
            run.unanswered += 1
            return False
        run.unanswered = 0
        run.locust = summarize(answer.value)
        if run.locust.get("state") == "stopped" and run.result is None and not run.api_refused:
            # The run is over and --autoquit keeps the master up: read it all now.
            got = await self.rt.results.from_api(test, run.url, run.previous, run.locust)
            if got.problem:
                run.problem, run.api_refused = got.problem, True
            run.result = got.result
            run.run_stopped = got.result is not None and not run.aborted
        return True

    def _next_wake(self, test: Object, kids: Children, run: RunState, derived: Derived,
                   now: datetime) -> _Next:
        """When to look again: a grace period, a pod still creating, the deadline, a poll."""
        timeouts = [] if derived.recheck_after is None else [derived.recheck_after + 0.5]
        if run.log_pending:
            timeouts.append(LOG_RECHECK_SECONDS)  # the end of the master's log may come late
        if any(p.creating for p in kids.pods):
            # Nothing in a pod's status changes while a volume fails to mount: look again.
            timeouts.append(MOUNT_RECHECK_SECONDS)
        limit = max_duration(test["spec"], self.rt.config)
        if limit and run.deadline is None:
            timeouts.append(max(0.0, limit - self.rt.age_seconds(test["metadata"])) + 0.1)
        polling = (self.rt.config.statsPollSeconds > 0 and not run.live_off and run.poll is None
                   and master_may_answer(test, kids))
        if run.previous["phase"] == RUNNING and polling:
            if run.next_poll is None or now >= run.next_poll:
                # In the background: a slow or unreachable master delays only its own numbers.
                run.poll = asyncio.ensure_future(self.rt.master.stats(run.url))
                run.next_poll = now + timedelta(seconds=poll_interval(
                    self.rt.config.statsPollSeconds, run.unanswered))
            else:
                timeouts.append((run.next_poll - now).total_seconds())
        return _Next(timeout=min(timeouts) if timeouts else None)

    async def _sleep(self, live: LiveTest, timeout: float | None, poll: asyncio.Task[Answer] | None) -> None:
        """Until woken by an event, a live poll's answer, or `timeout` seconds pass.

        After a wake, wait `settle_seconds` more: a test's pods and Jobs change
        together (three pods turn Ready within a moment), and one status write
        for all of them beats one per event.
        """
        woken = asyncio.ensure_future(live.wake.wait())
        waiting: set[asyncio.Future[Any]] = {woken} if poll is None else {woken, poll}
        try:
            done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
        if woken in done and self.rt.settle_seconds:
            await asyncio.sleep(self.rt.settle_seconds)
        live.wake.clear()

    async def _note_error(self, key: Key, run: RunState, message: str) -> None:
        status = with_tracking_error(run.previous, message, self.rt.clock())
        with contextlib.suppress(*API_ERRORS):
            await self.rt.api.patch_status(key[0], key[1], status)
            run.previous = status


def poll_interval(poll_seconds: int, unanswered: int) -> float:
    """Seconds to the next live poll: doubled per unanswered poll, up to a minute
    (or the poll interval itself, if longer), so dead masters cost little."""
    return float(min(poll_seconds * 2 ** min(unanswered, 6), max(poll_seconds, _MAX_POLL_SECONDS)))



async def _wake_on_stop(stopped: StopFlag, live: LiveTest) -> None:
    await stopped.wait()
    live.wake.set()



def _master_job(test: Object, kids: Children) -> dict[str, Any] | None:
    uid = test["metadata"].get("uid")
    return next((j.status for j in kids.jobs if j.owner_uid == uid and j.role == MASTER), None)


def _master_ended(test: Object, kids: Children) -> bool:
    """The master Job finished, or its Locust container exited."""
    pod = master_pod(test, kids)
    return job_finished(_master_job(test, kids)) or (pod is not None and pod.exit_code is not None)

