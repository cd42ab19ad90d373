"""Kubernetes Events about a LocustTest, written with the official client."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from locust_operator import API_VERSION, KIND
from locust_operator.metrics import API_WRITES, ERRORS

COMPONENT = "locust-operator"
log = logging.getLogger(__name__)


def post_event(api: client.ApiClient, test_meta: dict[str, Any], event_type: str, reason: str,
               message: str) -> None:
    """Record an event on the test; a failure to record is logged, never raised."""
    now = datetime.now(UTC)
    namespace = test_meta["namespace"]
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{test_meta['name']}.", "namespace": namespace},
        "involvedObject": {"apiVersion": API_VERSION, "kind": KIND, "name": test_meta["name"],
                           "namespace": namespace, "uid": test_meta.get("uid")},
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "count": 1,
    }
    try:
        API_WRITES.labels("events", "create").inc()
        client.CoreV1Api(api).create_namespaced_event(namespace, body)  # type: ignore[arg-type]
    except Exception as exc:  # events are best effort; the status carries the truth
        ERRORS.labels("event").inc()
        log.warning("could not record event %s on %s/%s: %s", reason, namespace,
                    test_meta["name"], exc)
