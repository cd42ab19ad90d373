"""The operator's own watches of its children (Jobs, Services, Pods).

Kopf runs the LocustTests (their daemons and finalizers). The children are
watched here instead: they are ~90% of all watch events (every pod status
change of every test), and all the controller needs of each is a small view
(rules/observe.py) and a wake-up of its test's loop. Kopf's per-event machinery
(per-object workers, handler invocation, cause detection) cost more CPU than
the rest of the operator together.

Each kind is watched as Kubernetes clients do (list_watch.py): LIST (label-selected),
then WATCH from the list's resourceVersion with bookmarks; a dropped connection
resumes from the last version seen, an expired version (410) lists again. A deletion is
reported only when the watch delivers it: an object missing from a re-list may
just be newer than the list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from locust_operator.api.contract import CHILD_SELECTOR, TEST_NAME_LABEL
from locust_operator.controller.kube_api import API_ERRORS, backoff, collection_path, plural
from locust_operator.controller.list_watch import Expired, ListWatch, Streams
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


class Listener(Protocol):
    def wake(self, key: Key) -> None: ...

    def child_deleted(self, key: Key, owner_uid: str | None, what: str, last: Any = None) -> None: ...


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
        children = ListWatch(self._api, self._path(kind, namespace), self._timeout)
        failures = 0
        while True:
            try:
                if children.version is None:
                    self._listed_all(kind, namespace, await children.list())
                    self._listed[(kind, namespace)].set()
                async for event, obj in children.events():
                    self._apply(kind, event, obj)
                failures = 0
            except Expired:
                pass  # listed again
            except API_ERRORS as exc:
                delay = backoff(self._retry_delays, failures)
                failures += 1
                log.warning("watching %s: %s; again in %ss", plural(kind), exc, delay)
                await asyncio.sleep(delay)

    def _listed_all(self, kind: str, namespace: str, listed: Mapping[str, Any]) -> None:
        """Replace the index's views of `kind` (in `namespace`) by the list; wake each test touched."""
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

    def _apply(self, kind: str, event: str, obj: Mapping[str, Any]) -> None:
        """One watch event into the index; the test's loop is woken (or told of a deletion)."""
        view_of = _VIEWS[kind]
        key, uid = _key(obj), obj["metadata"]["uid"]
        if event == "DELETED":
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
