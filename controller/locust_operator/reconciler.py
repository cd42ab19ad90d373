"""The controller's runtime: one Reconciler per process, one async loop per live test.

`runner.py` builds the Reconciler with its config, API access, stats reader and
clock, and hands it to Kopf through the operator memo. Kopf runs `Reconciler.run`
as a daemon for every LocustTest (`handlers.py`): Kopf starts it when the test
appears (or the operator restarts) and stops it when the test goes away. The
loop creates the children once, then sleeps until a watch event of one of its
children wakes it, a pod's grace period ends, or live stats are due; each time
it derives the status (`status.derive_status`, pure) and patches it only when it
changed. It returns when the phase is terminal, so finished tests cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jinja2

from locust_operator import API_VERSION, KIND
from locust_operator.bounded import text
from locust_operator.children import (
    NameConflict,
    PermanentCreateError,
    TransientCreateError,
    create_children,
)
from locust_operator.config import OperatorConfig
from locust_operator.contract import ABORT_ANNOTATION, MASTER, child_names
from locust_operator.events import event_body
from locust_operator.health import mount_problem
from locust_operator.kube_api import API_ERRORS, Api, ApiError, backoff
from locust_operator.locust_stats import stats_url, summarize
from locust_operator.master_api import Answer, master_url
from locust_operator.metrics import ERRORS, RESOURCES_CREATED_SECONDS, TERMINAL_SECONDS, TESTS_HANDLED
from locust_operator.observe import Children, JobView, Key, PodView, master_pod, observe
from locust_operator.render import RenderError, job_ttl, keeps_failed_pods, max_duration, render_validated
from locust_operator.results_keeper import MasterSource, ResultsKeeper
from locust_operator.status import (
    RUNNING,
    STOP_NOW,
    SUCCEEDED,
    TERMINAL,
    Derived,
    Status,
    condition,
    derive_status,
    job_deadline,
    job_finished,
    transition_events,
    with_tracking_error,
)

log = logging.getLogger("locust_operator")

Clock = Callable[[], datetime]
Object = dict[str, Any]
# Ready reasons after which a restarted operator has nothing left to create.
_CREATION_DONE = ("ResourcesCreated", "ResourcesFailed", "NameConflict")
# Seconds between retries when the API server cannot be reached.
_RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
# Seconds between retries after an unexpected error while observing a test.
_ERROR_DELAYS = (1.0, 5.0, 15.0, 60.0)
# The longest wait between live polls of a master that does not answer.
_MAX_POLL_SECONDS = 60
# Seconds between looks at the events of a pod whose containers are not created yet.
MOUNT_RECHECK_SECONDS = 5.0


class StopFlag(Protocol):
    """Kopf's DaemonStopped: true once the daemon must stop; `wait()` until then."""

    def __bool__(self) -> bool: ...

    def wait(self) -> Awaitable[Any]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass
class _Live:
    """What the reconciler keeps of one test while its loop runs."""

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


@dataclasses.dataclass
class _Creation:
    error: str | None = None
    reason: str = "ResourcesFailed"
    just_created: bool = False


@dataclasses.dataclass
class _Run:
    """What one test's loop has learnt so far: its last status, the live numbers,
    the final results, and what it did to the run (stopped it, aborted it)."""

    previous: Status
    url: str
    creation: _Creation
    result: dict[str, Any] | None
    locust: dict[str, Any] | None = None
    # Why the master's answers were refused (status.locust.message); polls stop then.
    problem: str | None = None
    live_off: bool = False
    api_refused: bool = False  # the final results will come from the log
    poll: asyncio.Task[Answer] | None = None  # a live poll under way
    next_poll: datetime | None = None
    unanswered: int = 0  # polls in a row that got no answer
    log_read: bool = False
    aborted: bool = False
    stop_tried: bool = False  # the master was asked to stop (abort, deadline, a verdict)
    run_stopped: bool = False  # the final results were read after Locust said "stopped"
    deadline: int | None = None  # set once the test outlived its maxDurationSeconds
    drift_logged: int = 1
    write_failures: int = 0


@dataclasses.dataclass(frozen=True)
class _Next:
    """What the loop does after a step: stop, derive again now, or sleep."""

    done: bool = False
    again: bool = False
    timeout: float | None = None


class Reconciler:
    """Owns the controller's runtime state: the loops of the live tests."""

    def __init__(self, config: OperatorConfig, api: Api, master: MasterSource,
                 clock: Clock = utc_now,
                 after_create: Callable[[Object], Awaitable[None]] | None = None,
                 retry_delays: tuple[float, ...] = _RETRY_DELAYS,
                 settle_seconds: float = 0.25, results_settle_seconds: float = 1.0,
                 error_delays: tuple[float, ...] = _ERROR_DELAYS) -> None:
        self.config = config
        self.api = api
        self.master = master
        self.clock = clock
        self.results = ResultsKeeper(api, master, config.masterReads.logMaxBytes, results_settle_seconds)
        self._after_create = after_create
        self._retry_delays = retry_delays
        self._error_delays = error_delays
        self._settle_seconds = settle_seconds
        self._live: dict[Key, _Live] = {}

    # --- called by watch handlers ---------------------------------------------------

    def wake(self, key: Key) -> None:
        """Something about this test or its children changed: derive its status again."""
        live = self._live.get(key)
        if live is not None:
            live.wake.set()

    def child_deleted(self, key: Key, owner_uid: str | None, what: str, last: Any = None) -> None:
        """A child is gone; `last` is its view as deleted (None when unknown).

        A Job that had finished (its TTL, or a cascade after the test ended) is
        no failure: its last view stands in for it, as does a master pod's with its
        exit code. Any other deletion of a child of a running test fails the test.
        """
        live = self._live.get(key)
        if live is None:
            return
        if isinstance(last, PodView):
            if last.role == MASTER and last.exit_code is not None:
                live.gone_pods[last.name] = last
        elif live.uid != owner_uid:
            return
        elif isinstance(last, JobView) and job_finished(last.status):
            live.gone_jobs[last.role] = last
        else:
            live.deleted.add(what)
        live.wake.set()

    @property
    def live_tests(self) -> int:
        return len(self._live)

    # --- the per-test loop (a Kopf daemon) ----------------------------------------------

    async def run(self, body: Mapping[str, Any], children: Callable[[], Children],
                  stopped: StopFlag) -> None:
        """Track one test until its phase is terminal (or Kopf stops the loop).

        `body` is Kopf's live view of the test, `children` reads its children's
        views from the watches; both are re-read on every wake. Whatever goes
        wrong while observing one test stays with it (`_guarded`).
        """
        metadata = body["metadata"]
        key: Key = (metadata["namespace"], metadata["name"])
        live = self._live[key] = _Live(uid=metadata["uid"])
        # Kopf's stop request (the test finished or went away) wakes a sleeping loop,
        # so it returns at once instead of being cancelled.
        on_stop = asyncio.ensure_future(_wake_on_stop(stopped, live))
        run: _Run | None = None
        try:
            previous: Status = dict(body.get("status") or {})
            if previous.get("phase") in TERMINAL:
                return  # finished before this loop started (e.g. an operator restart)
            creation = _Creation()
            if (condition(previous, "Ready") or {}).get("reason") not in _CREATION_DONE:
                creation = await self._create(body, stopped)
            url = stats_url(self.config.statsUrlTemplate, child_names(key[1])[MASTER], key[0])
            run = _Run(previous=previous, url=url, creation=creation, result=previous.get("result"),
                       problem=(previous.get("locust") or {}).get("message"))
            await self._guarded(body, children, stopped, key, live, run)
        finally:
            on_stop.cancel()
            if run is not None and run.poll is not None:
                run.poll.cancel()
            if self._live.get(key) is live:
                del self._live[key]

    async def _guarded(self, body: Mapping[str, Any], children: Callable[[], Children],
                       stopped: StopFlag, key: Key, live: _Live, run: _Run) -> None:
        """Steps until the test is terminal; an unexpected error in one step is logged as
        one line naming the test, noted in its status (Tracking=False), and retried."""
        errors = 0
        while not stopped:
            try:
                step = await self._step(body, children, key, live, run)
                errors = 0
            except Exception as exc:  # one test's trouble must never end the others' loops
                ERRORS.labels("observe").inc()
                delay = backoff(self._error_delays, errors)
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
                    live: _Live, run: _Run) -> _Next:
        """Look at the test once: act on the run, derive the status, write it if it changed."""
        test = {"metadata": dict(body["metadata"]), "spec": dict(body.get("spec") or {})}
        self._log_drift(key, test, run)
        kids = await self._mount_failures(key[0], live.with_gone(children()))
        if await self._act_on_run(test, kids, run):
            return _Next(again=True)
        now = self.clock()
        observation = observe(
            test, kids, now=now, grace_seconds=self.config.podHealthGraceSeconds,
            create_error=run.creation.error, create_error_reason=run.creation.reason,
            deleted=live.deleted, locust=run.locust, just_created=run.creation.just_created,
            result=run.result, aborted=run.aborted, run_stopped=run.run_stopped,
            deadline_exceeded=run.deadline, live_problem=run.problem)
        derived = derive_status(run.previous, observation)
        if derived.stop_jobs == STOP_NOW and not run.stop_tried and \
                await self._stop_master(test, kids, run):
            return _Next(again=True)  # results read before the Jobs end: derive with them
        if derived.status != run.previous:
            try:
                # Shielded: a terminal status stops the loop's filter, and Kopf may
                # cancel the loop before the events announcing it are written.
                if not await asyncio.shield(self._write(test, kids, run.previous, derived)):
                    return _Next(done=True)  # the test was deleted meanwhile
            except API_ERRORS as exc:
                ERRORS.labels("status").inc()
                delay = backoff(self._retry_delays, run.write_failures)
                run.write_failures += 1
                log.warning("%s/%s: cannot write the status (%s); retrying in %ss", *key, exc, delay)
                return _Next(timeout=delay)
            run.write_failures = 0
            run.previous = derived.status
        run.creation.just_created = False
        if run.previous["phase"] in TERMINAL:
            return _Next(done=True)
        return self._next_wake(test, kids, run, derived, now)

    def _log_drift(self, key: Key, test: Object, run: _Run) -> None:
        generation = int(test["metadata"].get("generation", 1))
        if generation > run.drift_logged:
            run.drift_logged = generation
            log.warning("Update operations on %s are not currently supported!", key[1])

    async def _act_on_run(self, test: Object, kids: Children, run: _Run) -> bool:
        """Abort, deadline, a finished live poll, the log fallback; True to derive at once."""
        metadata = test["metadata"]
        if (metadata.get("annotations") or {}).get(ABORT_ANNOTATION) == "true" and not run.aborted:
            run.aborted = True
            log.info("%s/%s: abort requested", metadata["namespace"], metadata["name"])
            await self._stop_master(test, kids, run)
        limit = max_duration(test["spec"], self.config)
        if limit and run.deadline is None and self._age_seconds(metadata) >= limit:
            run.deadline = limit
            log.info("%s/%s: ran past its %ss limit; stopping it", metadata["namespace"],
                     metadata["name"], limit)
            await self._stop_master(test, kids, run)
        if run.poll is not None and run.poll.done():
            return await self._take_poll(test, run)
        if run.result is None and not run.log_read and job_finished(_master_job(test, kids)):
            # The run ended before its results were read from the master's API.
            run.log_read = True
            run.result = await self.results.from_log(test, kids, run.previous)
        return False

    async def _take_poll(self, test: Object, run: _Run) -> bool:
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
            got = await self.results.from_api(test, run.url, run.previous, run.locust)
            if got.problem:
                run.problem, run.api_refused = got.problem, True
            run.result = got.result
            run.run_stopped = got.result is not None and not run.aborted
        return True

    def _next_wake(self, test: Object, kids: Children, run: _Run, derived: Derived,
                   now: datetime) -> _Next:
        """When to look again: a grace period, a pod still creating, the deadline, a poll."""
        timeouts = [] if derived.recheck_after is None else [derived.recheck_after + 0.5]
        if any(p.creating for p in kids.pods):
            # Nothing in a pod's status changes while a volume fails to mount: look again.
            timeouts.append(MOUNT_RECHECK_SECONDS)
        limit = max_duration(test["spec"], self.config)
        if limit and run.deadline is None:
            timeouts.append(max(0.0, limit - self._age_seconds(test["metadata"])) + 0.1)
        polling = (self.config.statsPollSeconds > 0 and not run.live_off and run.poll is None
                   and _master_may_answer(test, kids))
        if run.previous["phase"] == RUNNING and polling:
            if run.next_poll is None or now >= run.next_poll:
                # In the background: a slow or unreachable master delays only its own numbers.
                run.poll = asyncio.ensure_future(self.master.stats(run.url))
                run.next_poll = now + timedelta(seconds=poll_interval(
                    self.config.statsPollSeconds, run.unanswered))
            else:
                timeouts.append((run.next_poll - now).total_seconds())
        return _Next(timeout=min(timeouts) if timeouts else None)

    async def _sleep(self, live: _Live, timeout: float | None, poll: asyncio.Task[Answer] | None) -> None:
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
        if woken in done and self._settle_seconds:
            await asyncio.sleep(self._settle_seconds)
        live.wake.clear()

    async def _note_error(self, key: Key, run: _Run, message: str) -> None:
        status = with_tracking_error(run.previous, message, self.clock())
        with contextlib.suppress(*API_ERRORS):
            await self.api.patch_status(key[0], key[1], status)
            run.previous = status

    # --- create -------------------------------------------------------------------------

    async def _create(self, body: Mapping[str, Any], stopped: StopFlag) -> _Creation:
        metadata = dict(body["metadata"])
        test = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata,
                "spec": dict(body.get("spec") or {})}
        log.info("LocustTest created: '%s'", metadata["name"])
        try:
            # The API server validated and defaulted the test already.
            objects = render_validated(test, self.config)
        except (RenderError, jinja2.TemplateError, KeyError, TypeError, ValueError) as exc:
            # Admitted by the API server, yet not renderable: its CRD differs from ours.
            ERRORS.labels("render").inc()
            return _Creation(error=f"cannot render the test: {exc}")

        created_objects: list[Object] = []

        async def created(obj: Object) -> None:
            created_objects.append(obj)
            if self._after_create is not None:
                await self._after_create(obj)

        failures = 0
        while True:
            try:
                existing = await create_children(self.api, objects, metadata["uid"], created)
            except TransientCreateError as exc:
                ERRORS.labels("create").inc()
                delay = backoff(self._retry_delays, failures)
                failures += 1
                log.warning("%s/%s: cannot create its resources yet (%s); retrying in %ss",
                            metadata["namespace"], metadata["name"], exc, delay)
                if stopped:
                    return _Creation()
                await asyncio.sleep(delay)
                continue
            except PermanentCreateError as exc:
                ERRORS.labels("create").inc()
                log.error("cannot create the resources of %s: %s", metadata["name"], exc)
                return _Creation(error=str(exc))
            except NameConflict as exc:
                ERRORS.labels("create").inc()
                log.error("%s/%s: %s", metadata["namespace"], metadata["name"], exc)
                return _Creation(error=f"{exc}; rename the test", reason="NameConflict")
            break
        # One event for all three: announced once they exist, so it never delays them.
        if created_objects:
            await self._event(metadata, "Normal", "Created", "Created " + ", ".join(
                f"{obj['kind']} {obj['metadata']['name']}" for obj in created_objects))
        if existing:
            log.info("%s/%s: already existed, owned by this test: %s", metadata["namespace"],
                     metadata["name"], ", ".join(existing))
        TESTS_HANDLED.inc()
        RESOURCES_CREATED_SECONDS.observe(self._age_seconds(metadata))
        return _Creation(just_created=True)

    # --- write ----------------------------------------------------------------------------

    async def _write(self, test: Object, kids: Children, previous: Status, derived: Derived) -> bool:
        """Patch the status and announce its transitions; False if the test is gone."""
        metadata, status = test["metadata"], derived.status
        if status["phase"] in TERMINAL and previous.get("phase") not in TERMINAL:
            # Before the terminal status: once it is written this loop never runs again.
            await self._end_jobs(test, kids, derived)
        try:
            await self.api.patch_status(metadata["namespace"], metadata["name"], status)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        for event in transition_events(previous, status):
            await self._event(metadata, event.type, event.reason, event.message)
            log_fn = log.warning if event.type == "Warning" else log.info
            log_fn("%s/%s: %s: %s", metadata["namespace"], metadata["name"], event.reason,
                   event.message)
        phase = status["phase"]
        if phase in TERMINAL and previous.get("phase") not in TERMINAL:
            TERMINAL_SECONDS.labels(phase).observe(self._age_seconds(metadata))
        return True

    async def _event(self, metadata: Mapping[str, Any], event_type: str, reason: str,
                     message: str) -> None:
        """Record an event on the test; best effort: the status carries the truth."""
        try:
            await self.api.create(event_body(dict(metadata), event_type, reason, message,
                                             self.clock()))
        except API_ERRORS as exc:
            ERRORS.labels("event").inc()
            log.warning("could not record event %s on %s/%s: %s", reason,
                        metadata.get("namespace"), metadata.get("name"), exc)

    async def _mount_failures(self, namespace: str, kids: Children) -> Children:
        """Pods whose containers are still not created after the grace period get the
        problem their FailedMount events name (e.g. `configmap "x" not found`): the
        kubelet reports it only as an event, never in the pod's status."""
        pods = []
        for pod in kids.pods:
            if pod.creating and pod.problem is None and \
                    self._age_seconds({"creationTimestamp": pod.since}) >= self.config.podHealthGraceSeconds:
                try:
                    messages = await self.api.pod_events(namespace, pod.name, "FailedMount")
                except API_ERRORS as exc:
                    log.debug("%s/%s: cannot list its events: %s", namespace, pod.name, exc)
                    messages = []
                problem = mount_problem(pod.name, pod.since, messages)
                if problem is not None:
                    pod = dataclasses.replace(pod, problem=problem)
            pods.append(pod)
        return dataclasses.replace(kids, pods=pods)

    def _age_seconds(self, metadata: Mapping[str, Any]) -> float:
        created = metadata.get("creationTimestamp")
        if not created:
            return 0.0
        start = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return max(0.0, (self.clock() - start).total_seconds())

    # --- stop, cleanup ------------------------------------------------------------------------

    async def _stop_master(self, test: Object, kids: Children, run: _Run) -> bool:
        """Ask a running master to stop and read its results so far; True if they were read.

        Used when the run must end before Locust ends it: an abort, the deadline, or
        a verdict reached while its Jobs are still active. Tried once per test.
        """
        run.stop_tried = True
        if run.result is not None or self.config.statsPollSeconds <= 0 or run.api_refused or \
                run.previous.get("phase") != RUNNING or not _master_may_answer(test, kids):
            return False
        if not await self.master.stop(master_url(run.url, "/stop")):
            return False
        answer = await self.master.stats(run.url)
        locust = summarize(answer.value) if isinstance(answer.value, dict) else run.locust
        got = await self.results.from_api(test, run.url, run.previous, locust)
        if got.problem:
            run.problem, run.api_refused = got.problem, True
        run.result = got.result
        return got.result is not None

    async def _end_jobs(self, test: Object, kids: Children, derived: Derived) -> None:
        """Before a terminal status is written: Jobs still active get a deadline that ends
        them (at once, or after the workers' grace when the master exited by itself), so no
        pod of a finished test runs or starts later; a passed test with
        cleanup.keepFailedPods gets its TTL now. Only Jobs this test owns."""
        metadata, spec, status = test["metadata"], test["spec"], derived.status
        ttl = job_ttl(spec, self.config) if status["phase"] == SUCCEEDED and keeps_failed_pods(spec) \
            else None
        for job in kids.jobs:
            if job.owner_uid != metadata.get("uid") or not job.name:
                continue
            body: Object = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
            deadline = None if derived.stop_jobs is None else \
                job_deadline(job.status, derived.stop_jobs, self.clock())
            if deadline is not None:
                body["activeDeadlineSeconds"] = deadline
            if not body:
                continue
            try:
                await self.api.patch("Job", metadata["namespace"], job.name, {"spec": body})
            except API_ERRORS as exc:
                ERRORS.labels("cleanup").inc()
                log.warning("%s/%s: cannot patch Job %s: %s", metadata["namespace"], metadata["name"],
                            job.name, exc)


def poll_interval(poll_seconds: int, unanswered: int) -> float:
    """Seconds to the next live poll: doubled per unanswered poll, up to a minute
    (or the poll interval itself, if longer), so dead masters cost little."""
    return float(min(poll_seconds * 2 ** min(unanswered, 6), max(poll_seconds, _MAX_POLL_SECONDS)))


async def _wake_on_stop(stopped: StopFlag, live: _Live) -> None:
    await stopped.wait()
    live.wake.set()


def _master_may_answer(test: Object, kids: Children) -> bool:
    """Not known to be gone: a master pod that is not Ready, or has terminated, is not
    asked (its results then come from its log); no pod view yet proves nothing."""
    pod = master_pod(test, kids)
    return pod is None or (pod.ready and not pod.finished and pod.exit_code is None)


def _master_job(test: Object, kids: Children) -> dict[str, Any] | None:
    uid = test["metadata"].get("uid")
    return next((j.status for j in kids.jobs if j.owner_uid == uid and j.role == MASTER), None)
