"""The child watches against a scripted API: list, watch, resume, re-list, deletions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from locust_operator.controller.kube_api import ApiError
from locust_operator.controller.watches import ChildWatches

KEY = ("ns", "t")


def job(uid: str, role: str = "master", version: str = "1", owner: str = "u1") -> dict[str, Any]:
    return {"metadata": {"uid": uid, "namespace": "ns", "resourceVersion": version,
                         "labels": {"performance-test-name": "t", "app.kubernetes.io/component": role},
                         "ownerReferences": [{"controller": True, "uid": owner}]},
            "status": {"active": 1}}


class ScriptedApi:
    """Lists and watch streams per kind, in the order they are asked for."""

    def __init__(self, lists: dict[str, list[dict[str, Any]]],
                 streams: dict[str, list[list[dict[str, Any]] | Exception]]) -> None:
        self.lists = lists
        self.streams = streams
        self.paths: list[str] = []

    @staticmethod
    def _kind(path: str) -> str:
        return next(k for k in ("jobs", "services", "pods") if f"/{k}?" in path)

    async def get_json(self, path: str) -> dict[str, Any]:
        self.paths.append(path)
        return {"metadata": {"resourceVersion": "10"}, "items": self.lists.get(self._kind(path), [])}

    async def stream_lines(self, path: str) -> AsyncIterator[bytes]:
        self.paths.append(path)
        script = self.streams.get(self._kind(path), [])
        if not script:
            await asyncio.sleep(3600)  # an idle watch
        step = script.pop(0)
        if isinstance(step, Exception):
            raise step
        for event in step:
            yield json.dumps(event).encode()


class Listener:
    def __init__(self) -> None:
        self.woken: list[tuple[str, str]] = []
        self.deleted: list[tuple[tuple[str, str], str | None, str]] = []

    def wake(self, key: tuple[str, str]) -> None:
        self.woken.append(key)

    def child_deleted(self, key: tuple[str, str], owner_uid: str | None, what: str, last: Any = None) -> None:
        if what != "Pod":
            self.deleted.append((key, owner_uid, what))


def run(api: ScriptedApi, until: Any) -> tuple[ChildWatches, Listener]:
    listener = Listener()

    async def main() -> ChildWatches:
        watches = ChildWatches(api, listener, ("ns",), retry_delays=(0.01,))
        watches.start()
        try:
            await asyncio.wait_for(watches.synced(), 5)
            for _ in range(500):
                if until(watches, listener):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("never reached the expected state")
        finally:
            await watches.stop()
        return watches

    return asyncio.run(main()), listener


def test_list_then_watch_keeps_the_index_and_wakes_the_test() -> None:
    api = ScriptedApi(
        lists={"jobs": [job("a")]},
        streams={"jobs": [[
            {"type": "ADDED", "object": job("b", role="worker", version="11")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
            {"type": "DELETED", "object": job("a", version="13")},
        ], ApiError(500, "etcd leader changed"), [
            {"type": "MODIFIED", "object": job("b", role="worker", version="14")},
        ]]})
    watches, listener = run(api, lambda w, listener: len(api.paths) >= 6)
    views = watches.index.children(KEY).jobs
    assert [(v.uid, v.role) for v in views] == [("b", "worker")]
    assert listener.deleted == [(KEY, "u1", "master Job")]
    assert KEY in listener.woken
    job_paths = [p for p in api.paths if "/jobs?" in p]
    assert "watch=1" not in job_paths[0] and "labelSelector=managed-by=locust-k8s-operator" in job_paths[0]
    # Resumed after the error from the last version seen (a bookmark counts).
    assert "resourceVersion=10" in job_paths[1] and "resourceVersion=13" in job_paths[2]


def test_an_expired_version_lists_again_and_forgets_what_is_gone() -> None:
    api = ScriptedApi(
        lists={"jobs": [job("a")]},
        streams={"jobs": [[{"type": "ERROR", "object": {"code": 410, "message": "too old"}}]]})

    def relisted(w: ChildWatches, listener: Listener) -> bool:
        return sum(1 for p in api.paths if "/jobs?" in p and "watch=1" not in p) >= 2

    api_lists = api.lists

    async def empty_after_first(path: str, first: list[bool] = [True]) -> dict[str, Any]:  # noqa: B006
        api.paths.append(path)
        if "/jobs?" in path and not first[0]:
            return {"metadata": {"resourceVersion": "20"}, "items": []}
        if "/jobs?" in path:
            first[0] = False
        return {"metadata": {"resourceVersion": "10"}, "items": api_lists.get(api._kind(path), [])}

    api.get_json = empty_after_first  # type: ignore[method-assign]
    watches, listener = run(api, relisted)
    assert watches.index.children(KEY).jobs == []
    assert listener.deleted == []  # a re-list proves no deletion
    assert listener.woken.count(KEY) >= 2
