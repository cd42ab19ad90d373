"""Kopf handlers: thin glue between watch events, rendering and status.

- create/resume: render (the same function as `locust-operator render`) and
  create Service, master Job, worker Job in that order; AlreadyExists is
  success, so a restart mid-way never duplicates anything.
- update: tests are immutable; nothing changes but the SpecDrifted condition.
- events on the owned Jobs, Services and Pods drive the status; children are
  held in Kopf indexes (fed by label-selected watches), so deriving a status
  costs no API read, and a status patch is sent only when it changed.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from locust_operator import GROUP, PLURAL, VERSION
from locust_operator.children import PermanentCreateError, TransientCreateError, create_children
from locust_operator.config import OperatorConfig
from locust_operator.events import post_event
from locust_operator.health import PodProblem, pod_problem
from locust_operator.locust_stats import fetch, stats_url, summarize
from locust_operator.metrics import (
    API_WRITES,
    ERRORS,
    RESOURCES_CREATED_SECONDS,
    TERMINAL_SECONDS,
    TESTS_HANDLED,
)
from locust_operator.render import RenderError, child_names, render_validated
from locust_operator.status import TERMINAL, Observation, derive_status, transition_events
from locust_operator.validation import InvalidLocustTest, validated

MANAGED_BY = "locust-k8s-operator"
SELECTOR = {"managed-by": MANAGED_BY}
ANNOTATION_PREFIX = "operator.locust.io"
# Fault injection for the restart test: exit right after creating the Service.
FAILPOINT_ENV = "LOCUST_OPERATOR_FAILPOINT"

log = logging.getLogger("locust_operator")
Key = tuple[str, str]


@dataclass
class State:
    """Process-wide state of the controller (one per `run`)."""

    config: OperatorConfig
    api: client.ApiClient
    indexes: dict[str, Any] = field(default_factory=dict)
    last_status: dict[Key, dict[str, Any]] = field(default_factory=dict)
    create_errors: dict[Key, str] = field(default_factory=dict)
    deleted: dict[Key, set[str]] = field(default_factory=dict)
    locust: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pollers: dict[Key, threading.Event] = field(default_factory=dict)
    locks: dict[Key, threading.Lock] = field(default_factory=dict)
    timers: dict[Key, threading.Timer] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, key: Key) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(key, threading.Lock())


STATE: State | None = None


def configure(state: State) -> None:
    global STATE
    STATE = state


def _state() -> State:
    if STATE is None:  # pragma: no cover - run_controller always configures it first
        raise RuntimeError("the controller state is not configured")
    return STATE


# --- indexes: what the watches saw, keyed by (namespace, test name) -------------------

@kopf.index(GROUP, VERSION, PLURAL)
def tests_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace, name): {"metadata": dict(body.metadata), "spec": dict(body.spec),
                                "status": dict(body.status)}}


@kopf.index("batch", "v1", "jobs", labels=SELECTOR)
def jobs_index(namespace: str, labels: kopf.Labels, status: kopf.Status,
               **_: Any) -> dict[Key, tuple[str, dict[str, Any]]]:
    role = labels.get("app.kubernetes.io/component", "")
    return {(namespace, labels.get("performance-test-name", "")): (role, dict(status))}


@kopf.index("", "v1", "services", labels=SELECTOR)
def services_index(namespace: str, labels: kopf.Labels, name: str, **_: Any) -> dict[Key, str]:
    return {(namespace, labels.get("performance-test-name", "")): name}


@kopf.index("", "v1", "pods", labels=SELECTOR)
def pods_index(namespace: str, labels: kopf.Labels, body: kopf.Body,
               **_: Any) -> dict[Key, PodProblem | None]:
    pod = {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}
    return {(namespace, labels.get("performance-test-name", "")): pod_problem(pod)}


def _remember_indexes(kwargs: dict[str, Any]) -> None:
    state = _state()
    for name in ("tests_index", "jobs_index", "services_index", "pods_index"):
        if name in kwargs:
            state.indexes[name] = kwargs[name]


def _values(index_name: str, key: Key) -> list[Any]:
    index = _state().indexes.get(index_name)
    if index is None or key not in index:
        return []
    return list(index[key])


# --- create / resume ------------------------------------------------------------------

@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
def create_fn(body: kopf.Body, namespace: str, name: str, logger: logging.Logger,
              reason: str, **kwargs: Any) -> None:
    _remember_indexes(kwargs)
    state = _state()
    key = (namespace, name)
    status = dict(body.status)
    if status.get("phase") in TERMINAL or (
            _ready_reason(status) in ("ResourcesCreated", "ResourcesFailed") and reason == "resume"):
        reconcile(key)  # nothing to create: finished, or created before a restart
        return
    if reason == "create":
        logger.info("LocustTest created: '%s'", name)
    test = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
            "metadata": dict(body.metadata), "spec": dict(body.spec)}
    try:
        objects = render_validated(validated(test), state.config)
    except (InvalidLocustTest, RenderError) as exc:
        # The API server accepted it, so the CRD in the cluster differs from ours.
        ERRORS.labels("render").inc()
        state.create_errors[key] = f"cannot render the test: {exc}"
        reconcile(key)
        return

    def created(obj: dict[str, Any]) -> None:
        post_event(state.api, _meta(body), "Normal", "Created",
                   f"Created {obj['kind']} {obj['metadata']['name']}")
        if obj["kind"] == "Service" and os.environ.get(FAILPOINT_ENV) == "after-service-created":
            logger.error("failpoint %s: exiting", FAILPOINT_ENV)
            os._exit(70)

    try:
        existing = create_children(state.api, objects, created)
    except TransientCreateError as exc:
        ERRORS.labels("create").inc()
        raise kopf.TemporaryError(str(exc), delay=5) from None
    except PermanentCreateError as exc:
        ERRORS.labels("create").inc()
        state.create_errors[key] = str(exc)
        logger.error("cannot create the resources of %s: %s", name, exc)
        reconcile(key)
        return
    if existing:
        logger.info("already existed (adopted as is): %s", ", ".join(existing))
    TESTS_HANDLED.inc()
    RESOURCES_CREATED_SECONDS.observe(_age_seconds(body))
    reconcile(key, just_created=True)


def _meta(body: kopf.Body | dict[str, Any]) -> dict[str, Any]:
    metadata = body["metadata"]
    return {"name": metadata["name"], "namespace": metadata["namespace"], "uid": metadata.get("uid")}


def _ready_reason(status: dict[str, Any]) -> str | None:
    for cond in status.get("conditions", []) or []:
        if cond.get("type") == "Ready":
            return str(cond.get("reason"))
    return None


def _age_seconds(body: kopf.Body | dict[str, Any]) -> float:
    created = body["metadata"].get("creationTimestamp")
    if not created:
        return 0.0
    start = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - start).total_seconds())


# --- update: tests are immutable --------------------------------------------------------

@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def update_fn(name: str, namespace: str, logger: logging.Logger, **kwargs: Any) -> None:
    _remember_indexes(kwargs)
    logger.warning("Update operations on %s are not currently supported!", name)
    reconcile((namespace, name))


# --- events of children drive the status -----------------------------------------------

@kopf.on.event("batch", "v1", "jobs", labels=SELECTOR)
@kopf.on.event("", "v1", "services", labels=SELECTOR)
@kopf.on.event("", "v1", "pods", labels=SELECTOR)
def child_event_fn(namespace: str, labels: kopf.Labels, type: str | None, body: kopf.Body,
                   **kwargs: Any) -> None:
    _remember_indexes(kwargs)
    test_name = labels.get("performance-test-name")
    if not test_name:
        return
    key = (namespace, test_name)
    if type == "DELETED" and body.get("kind") in ("Job", "Service"):
        role = labels.get("app.kubernetes.io/component", "")
        what = "Service" if body["kind"] == "Service" else f"{role} Job"
        state = _state()
        with state.guard:
            state.deleted.setdefault(key, set()).add(what)
    reconcile(key)


@kopf.on.event(GROUP, VERSION, PLURAL)
def test_event_fn(namespace: str, name: str, type: str | None, **kwargs: Any) -> None:
    _remember_indexes(kwargs)
    if type == "DELETED":
        state = _state()
        key = (namespace, name)
        state.last_status.pop(key, None)
        state.create_errors.pop(key, None)
        state.deleted.pop(key, None)
        state.locust.pop(key, None)
        _stop_polling(key)
        timer = state.timers.pop(key, None)
        if timer:
            timer.cancel()


# --- reconcile: derive the status, patch it if it changed --------------------------------

def _observation(key: Key, test: dict[str, Any], just_created: bool) -> Observation:
    state = _state()
    jobs = dict(_values("jobs_index", key))
    problems = tuple(p for p in _values("pods_index", key) if p is not None)
    default: dict[str, Any] | None = {} if just_created else None
    return Observation(
        generation=int(test["metadata"].get("generation", 1)),
        expected_workers=int(test["spec"].get("worker", {}).get("replicas", 0)),
        now=datetime.now(UTC),
        grace_seconds=state.config.podHealthGraceSeconds,
        service=just_created or bool(_values("services_index", key)),
        master_job=jobs.get("master", default),
        worker_job=jobs.get("worker", default),
        create_error=state.create_errors.get(key),
        locust=state.locust.get(key),
        deleted=tuple(sorted(state.deleted.get(key, ()))),
        problems=problems,
    )


def reconcile(key: Key, just_created: bool = False) -> None:
    state = _state()
    with state.lock(key):
        tests = _values("tests_index", key)
        if not tests:
            return  # deleted, or not yet seen by the watch
        test = tests[0]
        previous = state.last_status.get(key) or dict(test.get("status") or {})
        derived = derive_status(previous, _observation(key, test, just_created))
        if derived.status != previous:
            _patch_status(key, derived.status)
            state.last_status[key] = derived.status
            for event in transition_events(previous, derived.status):
                post_event(state.api, _meta(test), event.type, event.reason, event.message)
                log_fn = log.warning if event.type == "Warning" else log.info
                log_fn("%s/%s: %s: %s", key[0], key[1], event.reason, event.message)
            phase = derived.status["phase"]
            if phase in TERMINAL and previous.get("phase") not in TERMINAL:
                TERMINAL_SECONDS.labels(phase).observe(_age_seconds(test))
        _schedule(key, derived.recheck_after)
        if derived.status["phase"] == "Running":
            _start_polling(key)
        else:
            _stop_polling(key)


def _patch_status(key: Key, status: dict[str, Any]) -> None:
    api = client.CustomObjectsApi(_state().api)
    API_WRITES.labels("locusttests/status", "patch").inc()
    try:
        api.patch_namespaced_custom_object_status(GROUP, VERSION, key[0], PLURAL, key[1],
                                                  {"status": status})
    except ApiException as exc:
        if exc.status == 404:
            return  # deleted meanwhile
        ERRORS.labels("status").inc()
        raise


def _schedule(key: Key, after: float | None) -> None:
    """Derive the status again when a pod's grace period ends (no periodic polling)."""
    state = _state()
    old = state.timers.pop(key, None)
    if old is not None:
        old.cancel()
    if after is None:
        return
    timer = threading.Timer(after + 0.5, _safe_reconcile, args=(key,))
    timer.daemon = True
    state.timers[key] = timer
    timer.start()


def _safe_reconcile(key: Key) -> None:
    try:
        reconcile(key)
    except Exception:  # a timer thread must not die silently
        ERRORS.labels("recheck").inc()
        log.exception("re-checking %s/%s failed", *key)


# --- live results: read the master's REST API while the test runs ---------------------

def _start_polling(key: Key) -> None:
    state = _state()
    interval = state.config.statsPollSeconds
    with state.guard:
        if interval <= 0 or key in state.pollers:
            return
        stop = state.pollers[key] = threading.Event()
    url = stats_url(state.config.statsUrlTemplate, child_names(key[1])["master"], key[0])
    thread = threading.Thread(target=_poll, args=(key, url, interval, stop), daemon=True,
                              name=f"stats-{key[0]}/{key[1]}")
    thread.start()


def _stop_polling(key: Key) -> None:
    state = _state()
    with state.guard:
        stop = state.pollers.pop(key, None)
    if stop is not None:
        stop.set()


def _poll(key: Key, url: str, interval: int, stop: threading.Event) -> None:
    state = _state()
    while not stop.is_set():
        report = fetch(url)
        if report is not None and not stop.is_set():
            state.locust[key] = summarize(report)
            _safe_reconcile(key)
        stop.wait(interval)
