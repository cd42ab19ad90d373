"""LIST then WATCH one collection, as Kubernetes clients do (the watches and `wait` use it).

`list()` reads the collection and remembers its resourceVersion; `events()`
watches from the last version seen, with bookmarks, so a watch the server
ended (its timeout, a dropped connection) resumes where it stopped. An expired
version (410 Gone) raises `Expired` and forgets the version: the caller lists
again. Retrying is the caller's policy: the operator retries for ever, `wait`
gives up after about a minute.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from locust_operator.controller.kube_api import ApiError

Object = dict[str, Any]


class Streams(Protocol):
    """What a list-then-watch needs from the API client (kube_api.KubeApi)."""

    async def get_json(self, path: str) -> Object: ...

    def stream_lines(self, path: str) -> AsyncIterator[bytes]: ...


class Expired(Exception):
    """The resourceVersion is too old (410 Gone): list again."""


class ListWatch:
    """One collection path (with its selectors), listed then watched."""

    def __init__(self, api: Streams, path: str, timeout_seconds: int) -> None:
        self._api = api
        self._path = path
        self._timeout = timeout_seconds
        self.version: str | None = None  # None: list before watching

    async def list(self) -> Object:
        listed = await self._api.get_json(self._path)
        self.version = str((listed.get("metadata") or {}).get("resourceVersion", ""))
        return listed

    async def events(self) -> AsyncIterator[tuple[str, Object]]:
        """(type, object) of each ADDED/MODIFIED/DELETED event until the server ends the watch."""
        separator = "&" if "?" in self._path else "?"
        path = (f"{self._path}{separator}watch=1&allowWatchBookmarks=true"
                f"&resourceVersion={self.version or ''}&timeoutSeconds={self._timeout}")
        async for line in self._api.stream_lines(path):
            event = json.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    self.version = None
                    raise Expired()
                raise ApiError(int(obj.get("code") or 500), str(obj.get("message", "")))
            self.version = str((obj.get("metadata") or {}).get("resourceVersion") or self.version)
            if kind != "BOOKMARK":
                yield str(kind), obj
