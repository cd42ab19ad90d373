"""The operator's own watches of its children (Jobs, Services, Pods).

Kopf runs the LocustTests (their daemons and finalizers). The children are
watched here instead: they are ~90% of all watch events (every pod status
change of every test), and all the controller needs of each is a small view
(observe.py) and a wake-up of its test's loop. Kopf's per-event machinery
(per-object workers, handler invocation, cause detection) cost more CPU than
the rest of the operator together.

Each kind is watched as Kubernetes clients do: LIST (label-selected), then WATCH
from the list's resourceVersion with bookmarks; a dropped connection resumes
from the last version seen, an expired version (410) lists again. A deletion is
reported only when the watch delivers it: an object missing from a re-list may
just be newer than the list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import aiohttp

from locust_operator.api.contract import CHILD_SELECTOR, TEST_NAME_LABEL
from locust_operator.controller.kube_api import ApiError, backoff, collection_path, plural
from locust_operator.rules.observe import (
    Children,
    JobView,
    Key,
    PodView,
    ServiceView,
    controller_uid,
    job_view,
    pod_view,
    service_view,
)

log = logging.getLogger("locust_operator")

View = JobView | ServiceView | PodView
# kind -> the view the index keeps of one object
_VIEWS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "Job": job_view,
    "Service": service_view,
    "Pod": pod_view,
}
_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class Streams(Protocol):
    """What the watches need from the API client (kube_api.KubeApi)."""

    async def get_json(self, path: str) -> dict[str, Any]: ...

    def stream_lines(self, path: str) -> AsyncIterator[bytes]: ...


class Listener(Protocol):
    def wake(self, key: Key) -> None: ...

    def child_deleted(self, key: Key, owner_uid: str | None, what: str, last: Any = None) -> None: ...


class _Expired(Exception):
    """The resourceVersion is too old (410 Gone): list again."""


@dataclasses.dataclass
class ChildIndex:
    """Views of the children by (namespace, test name) and object UID."""

    by_kind: dict[str, dict[Key, dict[str, Any]]] = dataclasses.field(
        default_factory=lambda: {kind: {} for kind in _VIEWS})

    def children(self, key: Key) -> Children:
        return Children(jobs=list(self.by_kind["Job"].get(key, {}).values()),
                        services=list(self.by_kind["Service"].get(key, {}).values()),
                        pods=list(self.by_kind["Pod"].get(key, {}).values()))

    def put(self, kind: str, key: Key, uid: str, view: Any) -> None:
        self.by_kind[kind].setdefault(key, {})[uid] = view

    def remove(self, kind: str, key: Key, uid: str) -> None:
        views = self.by_kind[kind].get(key)
        if views is not None:
            views.pop(uid, None)
            if not views:
                del self.by_kind[kind][key]

    def size(self) -> int:
        return sum(len(v) for views in self.by_kind.values() for v in views.values())


def _key(obj: Mapping[str, Any]) -> Key:
    metadata = obj.get("metadata") or {}
    return (metadata.get("namespace", ""), (metadata.get("labels") or {}).get(TEST_NAME_LABEL, ""))


class ChildWatches:
    """Keeps a ChildIndex of the operator's children current; wakes the listener."""

    def __init__(self, api: Streams, listener: Listener, namespaces: tuple[str, ...],
                 retry_delays: tuple[float, ...] = _RETRY_DELAYS, timeout_seconds: int = 300) -> None:
        self.index = ChildIndex()
        self._api = api
        self._listener = listener
        self._namespaces = namespaces or ("",)  # "": all namespaces
        self._retry_delays = retry_delays
        self._timeout = timeout_seconds
        self._listed: dict[tuple[str, str], asyncio.Event] = {
            (kind, ns): asyncio.Event() for kind in _VIEWS for ns in self._namespaces}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(kind, ns), name=f"watch {kind} {ns or '*'}")
                       for kind in _VIEWS for ns in self._namespaces]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def synced(self) -> None:
        """Until every kind was listed once (a loop must not judge an empty index)."""
        for event in self._listed.values():
            await event.wait()

    def _path(self, kind: str, namespace: str) -> str:
        return f"{collection_path(kind, namespace)}?labelSelector={CHILD_SELECTOR}"

    async def _run(self, kind: str, namespace: str) -> None:
        failures = 0
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list(kind, namespace)
                    self._listed[(kind, namespace)].set()
                version = await self._watch(kind, namespace, version)
                failures = 0
            except _Expired:
                version = None
            except (ApiError, OSError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                delay = backoff(self._retry_delays, failures)
                failures += 1
                log.warning("watching %s: %s; again in %ss", plural(kind), exc, delay)
                await asyncio.sleep(delay)

    async def _list(self, kind: str, namespace: str) -> str:
        listed = await self._api.get_json(self._path(kind, namespace))
        view_of = _VIEWS[kind]
        fresh: dict[Key, dict[str, Any]] = {}
        for obj in listed.get("items") or []:
            fresh.setdefault(_key(obj), {})[obj["metadata"]["uid"]] = view_of(obj)
        table = self.index.by_kind[kind]
        stale = [key for key in table if key not in fresh and (not namespace or key[0] == namespace)]
        for key in stale:
            del table[key]
        table.update(fresh)
        for key in [*fresh, *stale]:
            self._listener.wake(key)
        return str((listed.get("metadata") or {}).get("resourceVersion", ""))

    async def _watch(self, kind: str, namespace: str, version: str) -> str:
        """Apply watch events until the server ends the watch; the last version seen."""
        path = (f"{self._path(kind, namespace)}&watch=1&allowWatchBookmarks=true"
                f"&resourceVersion={version}&timeoutSeconds={self._timeout}")
        view_of = _VIEWS[kind]
        async for line in self._api.stream_lines(path):
            event = json.loads(line)
            kind_of_event, obj = event.get("type"), event.get("object") or {}
            if kind_of_event == "ERROR":
                if obj.get("code") == 410:
                    raise _Expired()
                raise ApiError(int(obj.get("code") or 500), str(obj.get("message", "")))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind_of_event == "BOOKMARK":
                continue
            key, uid = _key(obj), obj["metadata"]["uid"]
            if kind_of_event == "DELETED":
                self.index.remove(kind, key, uid)
                view = view_of(obj)  # its last state: a Job deleted by its TTL had finished
                if isinstance(view, PodView):
                    self._listener.child_deleted(key, view.job_uid, "Pod", view)
                else:
                    what = "Service" if kind == "Service" else f"{view.role} Job"
                    self._listener.child_deleted(key, controller_uid(obj["metadata"]), what, view)
            else:
                self.index.put(kind, key, uid, view_of(obj))
                self._listener.wake(key)
        return version
