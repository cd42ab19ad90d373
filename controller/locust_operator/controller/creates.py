"""Create a test's rendered objects in order; an existing child must be ours."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from locust_operator.controller.kube_api import API_ERRORS, Api, ApiError
from locust_operator.rules.observe import controller_ref, controller_uid

# The kinds a test's children may be: its Service and Jobs, and spec.webUI's routes.
CHILD_KINDS = ("Service", "Job", "Ingress", "HTTPRoute")


class PermanentCreateError(Exception):
    """The API server refused an object for a reason a retry will not fix."""


class TransientCreateError(Exception):
    """The API server could not be reached or was overloaded; retry later."""


class NameConflict(Exception):
    """A child's name is taken by an object this test does not control."""


def _owner(existing: dict[str, Any]) -> str:
    ref = controller_ref(existing.get("metadata", {}))
    if ref is None:
        return "no controller owner"
    return f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})"


async def _create_one(api: Api, obj: dict[str, Any], owner_uid: str) -> bool:
    """Create `obj`; False if it already existed and is ours."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    try:
        if kind not in CHILD_KINDS:  # a template override made something else
            raise PermanentCreateError(f"cannot create kind {kind}: only {', '.join(CHILD_KINDS)}")
        try:
            await api.create(obj)
            return True
        except ApiError as exc:
            if exc.status != 409:
                raise
            found = await api.read(kind, obj["metadata"]["namespace"], name)
            if controller_uid(found.get("metadata", {})) != owner_uid:
                raise NameConflict(f"{kind} {name} already exists and belongs to "
                                   f"{_owner(found)}") from None
            return False
    except ApiError as exc:
        if exc.status == 404 and kind == "HTTPRoute":
            raise PermanentCreateError(
                f"HTTPRoute {name}: the Gateway API is not installed in this cluster (no "
                "httproutes.gateway.networking.k8s.io); remove spec.webUI.httpRoute or install it") from None
        if exc.status in (400, 403, 404, 422):
            raise PermanentCreateError(f"{kind} {name}: {exc.message}") from None
        raise TransientCreateError(f"{kind} {name}: {exc}") from None
    except API_ERRORS as exc:  # API server unreachable, or its answer unreadable
        raise TransientCreateError(f"{kind} {name}: {exc!r}") from None


async def create_children(api: Api, objects: list[dict[str, Any]], owner_uid: str,
                          on_created: Callable[[dict[str, Any]], Awaitable[None]]) -> list[str]:
    """Create each object in order; return those that already existed and are ours.

    In order, and stopping at the first conflict, so a test whose name clashes
    never gets workers that would connect to another test's master. AlreadyExists
    is success only when the existing object's controller owner is `owner_uid` (a
    restart after a partial create); anything else is a conflict.
    """
    existing = []
    # The routes before the Jobs: a route that cannot be made fails the test before any pod starts.
    for obj in sorted(objects, key=lambda o: o["kind"] == "Job"):
        if await _create_one(api, obj, owner_uid):
            await on_created(obj)
        else:
            existing.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return existing
