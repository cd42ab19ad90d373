"""Create a test's rendered objects in order; AlreadyExists counts as success."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from locust_operator.metrics import API_WRITES


class PermanentCreateError(Exception):
    """The API server refused an object for a reason a retry will not fix."""


class TransientCreateError(Exception):
    """The API server could not be reached or was overloaded; retry later."""


def _create(api: client.ApiClient, obj: dict[str, Any]) -> None:
    namespace = obj["metadata"]["namespace"]
    if obj["kind"] == "Service":
        API_WRITES.labels("services", "create").inc()
        client.CoreV1Api(api).create_namespaced_service(namespace, obj)  # type: ignore[arg-type]
    elif obj["kind"] == "Job":
        API_WRITES.labels("jobs", "create").inc()
        client.BatchV1Api(api).create_namespaced_job(namespace, obj)  # type: ignore[arg-type]
    else:  # a template override produced something the operator has no permission for
        raise PermanentCreateError(f"cannot create kind {obj['kind']}: only Service and Job")


def _reason(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)


def create_children(api: client.ApiClient, objects: list[dict[str, Any]],
                    on_created: Callable[[dict[str, Any]], None]) -> list[str]:
    """Create each object in order; return the names of those that already existed."""
    existing = []
    for obj in objects:
        try:
            _create(api, obj)
        except ApiException as exc:
            if exc.status == 409:
                existing.append(f"{obj['kind']}/{obj['metadata']['name']}")
                continue
            if exc.status in (400, 403, 404, 422):
                raise PermanentCreateError(
                    f"{obj['kind']} {obj['metadata']['name']}: {_reason(exc)}") from None
            raise TransientCreateError(
                f"{obj['kind']} {obj['metadata']['name']}: {exc.status} {_reason(exc)}") from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # unreachable API server
            raise TransientCreateError(f"{obj['kind']} {obj['metadata']['name']}: {exc}") from None
        on_created(obj)
    return existing
