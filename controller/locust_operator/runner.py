"""`locust-operator run`: configure Kopf and start the controller."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from kubernetes import client
from kubernetes import config as kube_config
from prometheus_client import start_http_server

from locust_operator import GROUP, PLURAL, handlers
from locust_operator.config import OperatorConfig
from locust_operator.handlers import ANNOTATION_PREFIX, MANAGED_BY, State

log = logging.getLogger("locust_operator")


def _api_client() -> client.ApiClient:
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def settings_for(config: OperatorConfig, settings: kopf.OperatorSettings) -> None:
    """Kopf settings: our annotation prefix, no peering, label-selected watches."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"  # never added: no delete handler
    settings.posting.enabled = False  # events are written explicitly (events.py)
    settings.peering.standalone = True
    # No CRD/namespace discovery, so the RBAC needs no access to them.
    settings.scanning.disabled = True
    for resource in ("jobs", "pods", "services"):
        settings.watching.label_selectors[resource] = f"managed-by={MANAGED_BY}"
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 8


def run_controller(config: OperatorConfig, liveness_port: int, metrics_port: int,
                   verbose: bool) -> None:
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if config.logFormat == "json"
                   else kopf.LogFormat.FULL)
    handlers.configure(State(config=config, api=_api_client()))
    if metrics_port:
        start_http_server(metrics_port)

    @kopf.on.startup()
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings_for(config, settings)
        scope = ", ".join(config.namespaces) if config.namespaces else "all namespaces"
        log.info("watching %s.%s in %s", PLURAL, GROUP, scope)

    asyncio.run(kopf.operator(
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        standalone=True,
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
    ))
