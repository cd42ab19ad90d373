"""`locust-operator run`: build the Reconciler, configure Kopf and start it."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import kopf
from prometheus_client import start_http_server

from locust_operator.api.config import OperatorConfig
from locust_operator.api.contract import ANNOTATION_PREFIX, GROUP, PLURAL
from locust_operator.controller import credentials, handlers
from locust_operator.controller.kube_api import KubeApi
from locust_operator.controller.master_api import Limits, MasterClient
from locust_operator.controller.reconciler import Object, Reconciler
from locust_operator.controller.run_actions import utc_now
from locust_operator.controller.schedules import ScheduleLoops
from locust_operator.controller.series_metrics import SeriesMetrics
from locust_operator.controller.watches import ChildWatches

log = logging.getLogger("locust_operator")
# Fault injection for the restart tests, wired here and never in the create path:
# `after-service-created` exits (code 70) right after a test's Service is created.
FAILPOINT_ENV = "LOCUST_OPERATOR_FAILPOINT"

__all__ = ["handlers", "run_controller", "settings_for"]  # handlers: imported to register them


def login(settings: kopf.OperatorSettings | None = None) -> kopf.ConnectionInfo | None:
    """The operator's credentials: its service account first, else the current kubeconfig."""
    return credentials.login(kubeconfig_first=False, settings=settings)


class NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled state: the operator has no change handlers that need a diff.

    Kopf builds a deep copy of every watched object on every event to detect
    changes (`DiffBaseStorage.build`); with thousands of pods that copy was a
    third of the operator's CPU, for a diff nothing reads.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return {}

    def fetch(self, *, body: kopf.Body) -> Any:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        pass


def settings_for(config: OperatorConfig, settings: kopf.OperatorSettings) -> None:
    """Kopf settings: our annotation prefix, no peering, label-selected watches."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase()
    # Held only while a test's loop runs, so Kopf can stop the loop before the
    # test goes away; removed when the test finishes (the loop returns).
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
    settings.posting.enabled = False  # events are written by the Reconciler
    settings.peering.standalone = True
    # No CRD/namespace discovery, so the RBAC needs no access to them.
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = 2  # only Kopf's own sync helpers; our code is async


# Kopf's own requests: its LocustTest watch and its finalizer patches. Its default
# pool has no limit: a burst of a thousand tests opened hundreds of TLS
# connections at ~150 KiB each, most of the operator's peak memory.
KOPF_CONNECTIONS = 16


def kopf_session(info: kopf.ConnectionInfo | None) -> kopf.AiohttpSession | None:
    """Kopf's HTTP session, with a bounded connection pool (called in the event loop)."""
    if info is None:
        return None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=KOPF_CONNECTIONS, ssl=info.as_ssl_context()),
        headers={**info.as_http_headers(), "User-Agent": "locust-operator (kopf)"})
    return kopf.AiohttpSession(aiohttp_session=session, server=info.server,
                               default_namespace=info.default_namespace, priority=info.priority)


def failpoint(name: str | None) -> Callable[[Object], Awaitable[None]] | None:
    """The hook that makes the process exit at a chosen point (tests only)."""
    if name != "after-service-created":
        return None

    async def exit_after_service(obj: Object) -> None:
        if obj["kind"] == "Service":
            log.error("failpoint %s: exiting", FAILPOINT_ENV)
            os._exit(70)

    return exit_after_service


def master_limits(config: OperatorConfig) -> Limits:
    """The bounds of every read from a master, from the operator's masterReads settings."""
    reads = config.masterReads
    return Limits(stats_bytes=reads.statsMaxBytes, csv_bytes=reads.csvMaxBytes,
                  report_bytes=reads.reportMaxBytes, connect_seconds=reads.connectTimeoutSeconds,
                  live_seconds=reads.timeoutSeconds, final_seconds=reads.resultsTimeoutSeconds)


def run_controller(config: OperatorConfig, liveness_port: int, metrics_port: int,
                   verbose: bool) -> None:
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if config.logFormat == "json"
                   else kopf.LogFormat.FULL)
    if not verbose:  # one line per handled watch event is noise at a thousand tests
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        if login() is None:
            print("run: no cluster credentials: not in a pod with a service account, and no "
                  "kubeconfig (set KUBECONFIG or create ~/.kube/config)", file=sys.stderr)
            sys.exit(1)
    except (kopf.LoginError, OSError, KeyError, ValueError) as exc:
        print(f"run: cannot read the cluster credentials: {exc}", file=sys.stderr)
        sys.exit(1)

    api = KubeApi(lambda: _required(login()))
    stats = MasterClient(master_limits(config))
    reconciler = Reconciler(config, api, stats, after_create=failpoint(os.environ.get(FAILPOINT_ENV)))
    watches = ChildWatches(api, reconciler, config.namespaces)
    schedules = ScheduleLoops(api, utc_now)
    series_metrics = SeriesMetrics()
    if config.schedules:
        handlers.register_schedules(kopf.get_default_registry())
    if metrics_port:
        start_http_server(metrics_port)

    @kopf.on.login()
    async def login_fn(settings: kopf.OperatorSettings, **_: Any) -> kopf.AiohttpSession | None:
        return kopf_session(login(settings))

    @kopf.on.startup()
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings_for(config, settings)
        watches.start()
        scope = ", ".join(config.namespaces) if config.namespaces else "all namespaces"
        log.info("watching %s.%s in %s", PLURAL, GROUP, scope)

    @kopf.on.cleanup()
    async def cleanup(**_: Any) -> None:
        await watches.stop()
        await api.close()
        await stats.close()

    asyncio.run(kopf.operator(
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        standalone=True,
        memo=kopf.Memo(reconciler=reconciler, watches=watches, schedules=schedules,
                       series_metrics=series_metrics),
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
    ))


def _required(info: kopf.ConnectionInfo | None) -> kopf.ConnectionInfo:
    if info is None:
        raise kopf.LoginError("the cluster credentials are gone")
    return info
