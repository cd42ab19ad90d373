"""What a test's loop does to the cluster: create its children, write its status and
events, stop its master, end its Jobs (the shell's writes; the rules are in rules/).

`Runtime` is what every loop shares, built once at start-up (`Reconciler`): the
config, API access, the master client, the results keeper, the clock and the
retry timings. `Actions` are the writes one loop makes with it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import jinja2

from locust_operator.api.config import OperatorConfig
from locust_operator.api.contract import API_VERSION, KIND, RUNNING, SUCCEEDED, TERMINAL
from locust_operator.api.times import parse_timestamp
from locust_operator.build.events import event_body
from locust_operator.build.render import RenderError, job_ttl, keeps_failed_pods, render_validated
from locust_operator.build.web_ui import keep_after_run, route_refusal
from locust_operator.build.workers import cpu_limit_warning
from locust_operator.controller.creates import (
    NameConflict,
    PermanentCreateError,
    TransientCreateError,
    create_children,
)
from locust_operator.controller.kube_api import API_ERRORS, Api, ApiError, backoff
from locust_operator.controller.master_api import master_url
from locust_operator.controller.metrics import (
    ERRORS,
    RESOURCES_CREATED_SECONDS,
    TERMINAL_SECONDS,
    TESTS_HANDLED,
)
from locust_operator.controller.results_keeper import MasterSource, ResultsKeeper
from locust_operator.controller.run_state import Creation, RunState
from locust_operator.rules.health import mount_problem
from locust_operator.rules.jobs import role_deadline
from locust_operator.rules.locust_stats import summarize
from locust_operator.rules.observation import Status
from locust_operator.rules.observe import Children, master_pod
from locust_operator.rules.status import Derived, transition_events

log = logging.getLogger("locust_operator")

Clock = Callable[[], datetime]
Object = dict[str, Any]


class StopFlag(Protocol):
    """Kopf's DaemonStopped: true once the daemon must stop; `wait()` until then."""

    def __bool__(self) -> bool: ...

    def wait(self) -> Awaitable[Any]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """What every test's loop shares, built once at start-up."""

    config: OperatorConfig
    api: Api
    master: MasterSource
    clock: Clock
    results: ResultsKeeper
    after_create: Callable[[Object], Awaitable[None]] | None
    retry_delays: tuple[float, ...]
    error_delays: tuple[float, ...]
    settle_seconds: float

    def age_seconds(self, metadata: Mapping[str, Any]) -> float:
        created = metadata.get("creationTimestamp")
        if not created:
            return 0.0
        start = parse_timestamp(created)
        return max(0.0, (self.clock() - start).total_seconds())


class Actions:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def create(self, body: Mapping[str, Any], stopped: StopFlag) -> Creation:
        metadata = dict(body["metadata"])
        spec = dict(body.get("spec") or {})
        test = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
        log.info("LocustTest created: '%s'", metadata["name"])
        try:
            # The API server validated and defaulted the test already.
            objects = render_validated(test, self.rt.config)
            refusal = route_refusal(spec, self.rt.config)
        except (RenderError, jinja2.TemplateError, KeyError, TypeError, ValueError) as exc:
            # Admitted by the API server, yet not renderable: its CRD differs from ours.
            ERRORS.labels("render").inc()
            return Creation(error=f"cannot render the test: {exc}")
        if refusal is not None:
            return Creation(error=refusal, reason="WebRoutesOff")

        created_objects: list[Object] = []

        async def created(obj: Object) -> None:
            created_objects.append(obj)
            if self.rt.after_create is not None:
                await self.rt.after_create(obj)

        failures = 0
        while True:
            try:
                existing = await create_children(self.rt.api, objects, metadata["uid"], created)
            except TransientCreateError as exc:
                ERRORS.labels("create").inc()
                delay = backoff(self.rt.retry_delays, failures)
                failures += 1
                log.warning("%s/%s: cannot create its resources yet (%s); retrying in %ss",
                            metadata["namespace"], metadata["name"], exc, delay)
                if stopped:
                    return Creation()
                await asyncio.sleep(delay)
                continue
            except PermanentCreateError as exc:
                ERRORS.labels("create").inc()
                log.error("cannot create the resources of %s: %s", metadata["name"], exc)
                return Creation(error=str(exc))
            except NameConflict as exc:
                ERRORS.labels("create").inc()
                log.error("%s/%s: %s", metadata["namespace"], metadata["name"], exc)
                return Creation(error=f"{exc}; rename the test", reason="NameConflict")
            break
        # One event for all three: announced once they exist, so it never delays them.
        if created_objects:
            await self.event(metadata, "Normal", "Created", "Created " + ", ".join(
                f"{obj['kind']} {obj['metadata']['name']}" for obj in created_objects))
            warning = cpu_limit_warning(spec, self.rt.config)
            if warning:
                await self.event(metadata, "Warning", "ProcessesOverCpuLimit", warning)
        if existing:
            log.info("%s/%s: already existed, owned by this test: %s", metadata["namespace"],
                     metadata["name"], ", ".join(existing))
        TESTS_HANDLED.inc()
        RESOURCES_CREATED_SECONDS.observe(self.rt.age_seconds(metadata))
        return Creation(just_created=True)

    async def write(self, test: Object, kids: Children, previous: Status, derived: Derived) -> bool:
        """Patch the status and announce its transitions; False if the test is gone."""
        metadata, status = test["metadata"], derived.status
        if status["phase"] in TERMINAL and previous.get("phase") not in TERMINAL:
            # Before the terminal status: once it is written this loop never runs again.
            await self.end_jobs(test, kids, derived)
        try:
            await self.rt.api.patch_status(metadata["namespace"], metadata["name"], status)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        for event in transition_events(previous, status):
            await self.event(metadata, event.type, event.reason, event.message)
            log_fn = log.warning if event.type == "Warning" else log.info
            log_fn("%s/%s: %s: %s", metadata["namespace"], metadata["name"], event.reason,
                   event.message)
        phase = status["phase"]
        if phase in TERMINAL and previous.get("phase") not in TERMINAL:
            TERMINAL_SECONDS.labels(phase).observe(self.rt.age_seconds(metadata))
        return True

    async def event(self, metadata: Mapping[str, Any], event_type: str, reason: str,
                     message: str) -> None:
        """Record an event on the test; best effort: the status carries the truth."""
        try:
            await self.rt.api.create(event_body(dict(metadata), event_type, reason, message,
                                             self.rt.clock()))
        except API_ERRORS as exc:
            ERRORS.labels("event").inc()
            log.warning("could not record event %s on %s/%s: %s", reason,
                        metadata.get("namespace"), metadata.get("name"), exc)

    async def mount_failures(self, namespace: str, kids: Children) -> Children:
        """Pods whose containers are still not created after the grace period get the
        problem their FailedMount events name (e.g. `configmap "x" not found`): the
        kubelet reports it only as an event, never in the pod's status."""
        pods = []
        for pod in kids.pods:
            grace = self.rt.config.podHealthGraceSeconds
            if pod.creating and pod.problem is None and \
                    self.rt.age_seconds({"creationTimestamp": pod.since}) >= grace:
                try:
                    messages = await self.rt.api.pod_events(namespace, pod.name, "FailedMount")
                except API_ERRORS as exc:
                    log.debug("%s/%s: cannot list its events: %s", namespace, pod.name, exc)
                    messages = []
                problem = mount_problem(pod.name, pod.since, messages)
                if problem is not None:
                    pod = dataclasses.replace(pod, problem=problem)
            pods.append(pod)
        return dataclasses.replace(kids, pods=pods)

    async def stop_master(self, test: Object, kids: Children, run: RunState) -> bool:
        """Ask a running master to stop and read its results so far; True if they were read.

        Used when the run must end before Locust ends it: an abort, the deadline, or
        a verdict reached while its Jobs are still active. Tried once per test.
        """
        run.stop_tried = True
        if run.result is not None or self.rt.config.statsPollSeconds <= 0 or run.api_refused or \
                run.previous.get("phase") != RUNNING or not master_may_answer(test, kids):
            return False
        if not await self.rt.master.stop(master_url(run.url, "/stop")):
            return False
        answer = await self.rt.master.stats(run.url)
        locust = summarize(answer.value) if isinstance(answer.value, dict) else run.locust
        got = await self.rt.results.from_api(test, run.url, run.previous, locust)
        if got.problem:
            run.problem, run.api_refused = got.problem, True
        run.result = got.result
        return got.result is not None

    async def end_jobs(self, test: Object, kids: Children, derived: Derived) -> None:
        """Before a terminal status is written: Jobs still active get a deadline that ends
        them (at once, or after the workers' grace when the master exited by itself), so no
        pod of a finished test runs or starts later; a passed test with
        cleanup.keepFailedPods gets its TTL now. Only Jobs this test owns."""
        metadata, spec, status = test["metadata"], test["spec"], derived.status
        ttl = job_ttl(spec, self.rt.config) if status["phase"] == SUCCEEDED and keeps_failed_pods(spec) \
            else None
        for job in kids.jobs:
            if job.owner_uid != metadata.get("uid") or not job.name:
                continue
            body: Object = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
            deadline = role_deadline(job.status, job.role, derived.stop_jobs, self.rt.clock(),
                                     keep_after_run(spec))
            if deadline is not None:
                body["activeDeadlineSeconds"] = deadline
            if not body:
                continue
            try:
                await self.rt.api.patch("Job", metadata["namespace"], job.name, {"spec": body})
            except API_ERRORS as exc:
                ERRORS.labels("cleanup").inc()
                log.warning("%s/%s: cannot patch Job %s: %s", metadata["namespace"], metadata["name"],
                            job.name, exc)


def master_may_answer(test: Object, kids: Children) -> bool:
    """Not known to be gone: a master pod that is not Ready, or has terminated, is not
    asked (its results then come from its log); no pod view yet proves nothing."""
    pod = master_pod(test, kids)
    return pod is None or (pod.ready and not pod.finished and pod.exit_code is None)
