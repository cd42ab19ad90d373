"""Kubernetes Events about a LocustTest (the body is built here, pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from locust_operator.api.contract import API_VERSION, KIND
from locust_operator.api.times import timestamp

COMPONENT = "locust-operator"


def event_body(test_meta: dict[str, Any], event_type: str, reason: str, message: str,
               now: datetime, kind: str = KIND) -> dict[str, Any]:
    """A core/v1 Event about the test (or a schedule: `kind`), as `kubectl describe` shows it."""
    namespace = test_meta["namespace"]
    stamp = timestamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{test_meta['name']}.", "namespace": namespace},
        "involvedObject": {"apiVersion": API_VERSION, "kind": kind, "name": test_meta["name"],
                           "namespace": namespace, "uid": test_meta.get("uid")},
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
