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

import aiohttp
import jinja2

from locust_operator import API_VERSION, KIND
from locust_operator.children import (
    NameConflict,
    PermanentCreateError,
    TransientCreateError,
    create_children,
)
from locust_operator.config import OperatorConfig
from locust_operator.contract import (
    ABORT_ANNOTATION,
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MASTER,
    TEST_NAME_LABEL,
    child_names,
    results_name,
)
from locust_operator.events import event_body
from locust_operator.health import mount_problem
from locust_operator.kube_api import Api, ApiError, backoff
from locust_operator.locust_stats import master_url, stats_url, summarize
from locust_operator.metrics import ERRORS, RESOURCES_CREATED_SECONDS, TERMINAL_SECONDS, TESTS_HANDLED
from locust_operator.observe import Children, JobView, Key, PodView, master_pod, observe
from locust_operator.render import RenderError, job_ttl, keeps_failed_pods, render_validated
from locust_operator.results import (
    MASTER_API,
    MASTER_LOG,
    ResultsError,
    RunStats,
    configmap_data,
    parse_final_json,
    parse_requests_csv,
    report_texts,
    requests_csv,
    summary,
    unavailable,
)
from locust_operator.status import (
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    Status,
    condition,
    derive_status,
    job_finished,
    transition_events,
)
from locust_operator.thresholds import evaluate, thresholds_set

log = logging.getLogger("locust_operator")

Clock = Callable[[], datetime]
Object = dict[str, Any]
# Ready reasons after which a restarted operator has nothing left to create.
_CREATION_DONE = ("ResourcesCreated", "ResourcesFailed", "NameConflict")
# Seconds between retries when the API server cannot be reached.
_RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
# How much of the master's log is read for its final stats (the tail holds them).
LOG_LIMIT_BYTES = 16 * 1024 * 1024
# Reads of the stats CSV after a run stopped, at most, until two agree.
_STABLE_READS = 6
# Seconds between looks at the events of a pod whose containers are not created yet.
MOUNT_RECHECK_SECONDS = 5.0
# What Locust logs when --expect-workers-max-wait ran out.
_GAVE_UP = "Gave up waiting for workers to connect"


class StatsSource(Protocol):
    async def fetch(self, url: str) -> dict[str, Any] | None: ...

    async def fetch_text(self, url: str, timeout: float = 30.0) -> str | None: ...

    async def stop(self, url: str) -> bool: ...


class StopFlag(Protocol):
    """Kopf's DaemonStopped: true once the daemon must stop."""

    def __bool__(self) -> bool: ...


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
class _Run:
    """What the loop learns of the run itself: its final results, and an abort."""

    result: dict[str, Any] | None
    log_read: bool = False
    aborted: bool = False


@dataclasses.dataclass
class _Creation:
    error: str | None = None
    reason: str = "ResourcesFailed"
    just_created: bool = False


class Reconciler:
    """Owns the controller's runtime state: the loops of the live tests."""

    def __init__(self, config: OperatorConfig, api: Api, stats: StatsSource,
                 clock: Clock = utc_now,
                 after_create: Callable[[Object], Awaitable[None]] | None = None,
                 retry_delays: tuple[float, ...] = _RETRY_DELAYS,
                 settle_seconds: float = 0.25, results_settle_seconds: float = 1.0) -> None:
        self.config = config
        self.api = api
        self.stats = stats
        self.clock = clock
        self._after_create = after_create
        self._retry_delays = retry_delays
        self._settle_seconds = settle_seconds
        self._results_settle_seconds = results_settle_seconds
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
        views from the indexes; both are re-read on every wake.
        """
        metadata = body["metadata"]
        key: Key = (metadata["namespace"], metadata["name"])
        live = self._live[key] = _Live(uid=metadata["uid"])
        try:
            await self._track(body, children, stopped, key, live)
        finally:
            if self._live.get(key) is live:
                del self._live[key]

    async def _track(self, body: Mapping[str, Any], children: Callable[[], Children],
                     stopped: StopFlag, key: Key, live: _Live) -> None:
        previous: Status = dict(body.get("status") or {})
        if previous.get("phase") in TERMINAL:
            return  # finished before this loop started (e.g. an operator restart)
        creation = _Creation()
        if (condition(previous, "Ready") or {}).get("reason") not in _CREATION_DONE:
            creation = await self._create(body, stopped)
        locust: dict[str, Any] | None = None
        next_stats: datetime | None = None
        drift_logged = 1
        failures = 0
        url = stats_url(self.config.statsUrlTemplate, child_names(key[1])[MASTER], key[0])
        run = _Run(result=previous.get("result"))
        while not stopped:
            test = {"metadata": dict(body["metadata"]), "spec": dict(body.get("spec") or {})}
            generation = int(test["metadata"].get("generation", 1))
            if generation > drift_logged:
                drift_logged = generation
                log.warning("Update operations on %s are not currently supported!", key[1])
            abort = (test["metadata"].get("annotations") or {}).get(ABORT_ANNOTATION) == "true"
            if abort and not run.aborted:
                await self._abort(test, previous, run, url, locust)
            kids = await self._mount_failures(key[0], live.with_gone(children()))
            if run.result is None and not run.log_read and job_finished(_master_job(test, kids)):
                # The run ended before its results were read from the master's API.
                run.log_read = True
                run.result = await self._results_from_log(test, kids, previous)
            now = self.clock()
            observation = observe(
                test, kids, now=now, grace_seconds=self.config.podHealthGraceSeconds,
                create_error=creation.error, create_error_reason=creation.reason,
                deleted=live.deleted, locust=locust, just_created=creation.just_created,
                result=run.result, aborted=run.aborted)
            derived = derive_status(previous, observation)
            if derived.status != previous:
                try:
                    # Shielded: a terminal status stops the loop's filter, and Kopf may
                    # cancel the loop before the events announcing it are written.
                    if not await asyncio.shield(self._write(test, kids, previous, derived.status)):
                        return  # the test was deleted meanwhile
                except (TimeoutError, ApiError, OSError, aiohttp.ClientError) as exc:
                    ERRORS.labels("status").inc()
                    delay = backoff(self._retry_delays, failures)
                    failures += 1
                    log.warning("%s/%s: cannot write the status (%s); retrying in %ss",
                                *key, exc, delay)
                    await self._sleep(live, delay)
                    continue
                failures = 0
                previous = derived.status
            creation.just_created = False
            phase = previous["phase"]
            if phase in TERMINAL:
                return
            timeout = None if derived.recheck_after is None else derived.recheck_after + 0.5
            if any(p.creating for p in kids.pods):
                # Nothing in a pod's status changes while a volume fails to mount: look again.
                timeout = min(timeout or MOUNT_RECHECK_SECONDS, MOUNT_RECHECK_SECONDS)
            if phase == RUNNING and self.config.statsPollSeconds > 0:
                if next_stats is None or now >= next_stats:
                    next_stats = now + timedelta(seconds=self.config.statsPollSeconds)
                    report = await self.stats.fetch(url)
                    if report is not None:
                        locust = summarize(report)
                        if locust.get("state") == "stopped" and run.result is None:
                            # The run is over and --autoquit keeps the master up: read it all now.
                            run.result = await self._results_from_api(test, url, previous, locust)
                        continue  # derive again with the new numbers
                wait = (next_stats - now).total_seconds()
                timeout = wait if timeout is None else min(timeout, wait)
            await self._sleep(live, timeout)

    async def _sleep(self, live: _Live, timeout: float | None) -> None:
        """Until woken by an event or `timeout` seconds pass.

        After a wake, wait `settle_seconds` more: a test's pods and Jobs change
        together (three pods turn Ready within a moment), and one status write
        for all of them beats one per event.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.wake.wait(), timeout)
            if self._settle_seconds:
                await asyncio.sleep(self._settle_seconds)
        live.wake.clear()

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

    async def _write(self, test: Object, kids: Children, previous: Status, status: Status) -> bool:
        """Patch the status and announce its transitions; False if the test is gone."""
        metadata = test["metadata"]
        if status["phase"] in TERMINAL and previous.get("phase") not in TERMINAL:
            # Before the terminal status: once it is written this loop never runs again.
            await self._end_jobs(test, kids, status)
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
        except (TimeoutError, ApiError, OSError, aiohttp.ClientError) as exc:
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
                except (TimeoutError, ApiError, OSError, aiohttp.ClientError) as exc:
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

    # --- results, abort, cleanup ------------------------------------------------------------

    async def _results_from_api(self, test: Object, url: str, previous: Status,
                                locust: dict[str, Any] | None) -> dict[str, Any] | None:
        """The run's results from the master's REST API; None to try again later.

        The master reports "stopped" before the workers' last stats reach it, so
        the CSV is read until two reads a moment apart agree.
        """
        csv_text: str | None = None
        for _ in range(_STABLE_READS):
            await asyncio.sleep(self._results_settle_seconds)
            latest = await self.stats.fetch_text(master_url(url, "/stats/requests/csv"))
            if latest is None:
                return None
            if latest == csv_text:
                break
            csv_text = latest
        if csv_text is None:
            return None
        failures = await self.stats.fetch_text(master_url(url, "/stats/failures/csv"))
        html = await self.stats.fetch_text(master_url(url, "/stats/report?download=1"))
        try:
            stats = parse_requests_csv(csv_text, failures or "")
        except ResultsError as exc:
            log.warning("%s/%s: cannot read the master's results: %s", test["metadata"]["namespace"],
                        test["metadata"]["name"], exc)
            return None
        return await self._keep(test, stats, MASTER_API, previous, locust, csv_text, failures, html)

    async def _results_from_log(self, test: Object, kids: Children, previous: Status) -> dict[str, Any]:
        """The run's results from the master's final output in its log (`--json`)."""
        metadata = test["metadata"]
        pod = master_pod(test, kids)
        if pod is None:
            return unavailable("the master's results were not read while it ran, and its pod is gone")
        container = child_names(metadata["name"])[MASTER]
        try:
            text = await self.api.pod_log(metadata["namespace"], pod.name, container, LOG_LIMIT_BYTES)
        except (TimeoutError, ApiError, OSError, aiohttp.ClientError) as exc:
            # A log the kubelet no longer has (or never had) is an outcome, not an operator error.
            if not (isinstance(exc, ApiError) and exc.status < 500):
                ERRORS.labels("results").inc()
            return unavailable(f"cannot read the master's log ({pod.name}): {exc}")
        try:
            stats = parse_final_json(text)
        except ResultsError as exc:
            if _GAVE_UP in text:
                return {**unavailable(f"Locust: {_GAVE_UP.lower()}"), "workers": 0}
            return unavailable(f"{pod.name}: {exc}")
        log.info("%s/%s: results read from the master's log", metadata["namespace"], metadata["name"])
        return await self._keep(test, stats, MASTER_LOG, previous, None, requests_csv(stats), None, None)

    async def _keep(self, test: Object, stats: RunStats, source: str, previous: Status,
                    locust: dict[str, Any] | None, csv_text: str, failures: str | None,
                    html: str | None) -> dict[str, Any]:
        """status.result for the run, with its thresholds judged and its report kept."""
        metadata = test["metadata"]
        seen = {**(previous.get("locust") or {}), **{k: v for k, v in (locust or {}).items()
                                                       if k in ("userCount", "workerCount")}}
        users = _peak(seen, "userCount", "maxUserCount")
        workers = _peak(seen, "workerCount", "maxWorkerCount")
        result = summary(stats, source, users, workers)
        thresholds = test["spec"].get("thresholds")
        if thresholds_set(thresholds):
            breaches = evaluate(thresholds, stats)
            result["thresholds"] = {"passed": not breaches, "breaches": breaches[:100]}
        packed = configmap_data(report_texts(result, stats, csv_text, failures, html))
        name = results_name(metadata["name"])
        configmap: Object = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": name, "namespace": metadata["namespace"],
                "labels": {TEST_NAME_LABEL: metadata["name"], MANAGED_BY_LABEL: MANAGED_BY,
                           COMPONENT_LABEL: "results", "app.kubernetes.io/managed-by": "locust-operator"},
                "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": metadata["name"],
                                     "uid": metadata["uid"], "controller": True,
                                     "blockOwnerDeletion": True}]},
            "data": packed.data,
            **({"binaryData": packed.binary_data} if packed.binary_data else {}),
        }
        report: dict[str, Any] = {"configMap": name, "keys": packed.keys}
        if packed.truncated:
            report["truncated"] = packed.truncated
        try:
            await self.api.create(configmap)
        except ApiError as exc:
            if exc.status != 409:
                ERRORS.labels("results").inc()
                result["message"] = f"the results ConfigMap {name} was not written: {exc.message}"
                return result
            # The operator may not read ConfigMaps (they can hold test data), so it cannot
            # tell an earlier write of its own from someone else's: `report` checks the owner.
            result["message"] = f"ConfigMap {name} already existed and was left as it was"
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            ERRORS.labels("results").inc()
            result["message"] = f"the results ConfigMap {name} was not written: {exc}"
            return result
        result["report"] = report
        return result

    async def _abort(self, test: Object, previous: Status, run: _Run, url: str,
                     locust: dict[str, Any] | None) -> None:
        """Stop a running master and read its results so far (the abort annotation)."""
        metadata = test["metadata"]
        run.aborted = True
        log.info("%s/%s: abort requested", metadata["namespace"], metadata["name"])
        if previous.get("phase") != RUNNING or run.result is not None or self.config.statsPollSeconds <= 0:
            return
        if await self.stats.stop(master_url(url, "/stop")):
            report = await self.stats.fetch(url)
            run.result = await self._results_from_api(
                test, url, previous, summarize(report) if report is not None else locust)

    async def _end_jobs(self, test: Object, kids: Children, status: Status) -> None:
        """An aborted test's pods are ended (their Jobs' deadline passes at once); a passed
        test with cleanup.keepFailedPods gets its TTL now. Only Jobs this test owns."""
        metadata, spec = test["metadata"], test["spec"]
        if status.get("verdict") == "Aborted":
            patch: Object = {"spec": {"activeDeadlineSeconds": 1}}
        elif status["phase"] == SUCCEEDED and keeps_failed_pods(spec) and \
                (ttl := job_ttl(spec, self.config)) is not None:
            patch = {"spec": {"ttlSecondsAfterFinished": ttl}}
        else:
            return
        for job in kids.jobs:
            if job.owner_uid != metadata.get("uid") or not job.name:
                continue
            try:
                await self.api.patch("Job", metadata["namespace"], job.name, patch)
            except (TimeoutError, ApiError, OSError, aiohttp.ClientError) as exc:
                ERRORS.labels("cleanup").inc()
                log.warning("%s/%s: cannot patch Job %s: %s", metadata["namespace"], metadata["name"],
                            job.name, exc)


def _master_job(test: Object, kids: Children) -> dict[str, Any] | None:
    uid = test["metadata"].get("uid")
    return next((j.status for j in kids.jobs if j.owner_uid == uid and j.role == MASTER), None)


def _peak(seen: dict[str, Any], current: str, peak: str) -> int | None:
    values = [v for v in (seen.get(current), seen.get(peak)) if isinstance(v, int)]
    return max(values) if values else None
