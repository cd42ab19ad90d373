"""The controller's own writes to the API server, async, over Kopf's credentials.

Why not the official client or kubernetes_asyncio: the controller makes five
kinds of request (create a Service or Job, read one back, patch a status,
create an Event), and both clients cost ~20 MiB of RSS for their models alone.
Kopf already speaks to the API server with aiohttp; this module uses the same
library with the credentials Kopf's login produced (`kopf.ConnectionInfo`),
so the operator loads one HTTP stack and one login. A 401 (e.g. a rotated
service-account token) logs in again once and retries.

Concurrency is bounded, so a burst of a thousand tests queues here instead of
opening a thousand connections; and the queue is ordered by priority, because
under a burst the API server is the bottleneck: status patches go first (a
test that turned Running says so before more tests are created: measured with
500 tests, 1.98x the bare client's time to all children instead of 2.35x, and
79% instead of 63% of the tests showed Running before finishing), creating
children next, events last.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import kopf

from locust_operator.api.contract import GROUP, KIND, PLURAL, SCHEDULE_KIND, SCHEDULE_PLURAL, VERSION
from locust_operator.controller.metrics import API_WRITES
from locust_operator.rules.bounded import Refused, mib, text

Object = dict[str, Any]

# Where each kind the controller writes or watches lives in the REST API.
_PATHS = {
    "Service": ("/api/v1", "services"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Pod": ("/api/v1", "pods"),
    "Event": ("/api/v1", "events"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses"),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    KIND: (f"/apis/{GROUP}/{VERSION}", PLURAL),
    SCHEDULE_KIND: (f"/apis/{GROUP}/{VERSION}", SCHEDULE_PLURAL),
}


def plural(kind: str) -> str:
    return _PATHS[kind][1]


def collection_path(kind: str, namespace: str = "") -> str:
    """The REST path of a kind's objects in `namespace` ("" for all namespaces)."""
    prefix, resource = _PATHS[kind]
    return f"{prefix}/namespaces/{namespace}/{resource}" if namespace else f"{prefix}/{resource}"


def object_path(kind: str, namespace: str, name: str) -> str:
    """The REST path of one object."""
    return f"{collection_path(kind, namespace)}/{name}"


def backoff(delays: tuple[float, ...], failures: int) -> float:
    """The delay before retry number `failures` + 1: the last one repeats."""
    return delays[min(failures, len(delays) - 1)]


STATUS, CREATE, EVENT = 0, 1, 2  # request priorities, most urgent first


class PriorityLimit:
    """At most `limit` holders at once; waiters are served most urgent first, then FIFO."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @asynccontextmanager
    async def hold(self, priority: int) -> AsyncIterator[None]:
        if self._free > 0 and not self._waiters:
            self._free -= 1
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (priority, next(self._order), waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # the slot was handed over as we were cancelled
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the waiter
                return
        self._free += 1


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


# The one tuple of what a request to a server (the API server, a master) may raise that is
# the server's or the network's trouble, not the operator's: an error answer, no answer,
# a body over its cap (Refused) or not JSON (ValueError).
API_ERRORS: tuple[type[Exception], ...] = (TimeoutError, ApiError, OSError, aiohttp.ClientError, Refused,
                                          ValueError)


class Api(Protocol):
    """What the reconciler needs from the API server (a fake implements it in tests)."""

    async def create(self, obj: Object) -> Object: ...

    async def read(self, kind: str, namespace: str, name: str) -> Object: ...

    async def patch_status(self, namespace: str, name: str, status: Object, kind: str = KIND) -> None: ...

    async def patch(self, kind: str, namespace: str, name: str, body: Object) -> None: ...

    async def pod_log(self, namespace: str, pod: str, container: str, limit_bytes: int) -> str: ...

    async def pod_events(self, namespace: str, pod: str, reason: str) -> list[str]: ...

    async def list_labelled(self, kind: str, namespace: str, selector: str, limit: int,
                            cap: int) -> list[Object]: ...

    async def delete(self, kind: str, namespace: str, name: str, uid: str) -> None: ...


# Events read per pod, and the bytes of their list (each event can be large).
EVENTS_LIMIT = 20
EVENTS_MAX_BYTES = 1024 * 1024
_CHUNK = 64 * 1024


async def _read_body(response: aiohttp.ClientResponse, cap: int | None, tail: bool) -> bytes:
    if cap is None:
        return await response.read()
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > cap:
            if not tail:
                raise Refused(f"the API server's answer is over {mib(cap)}")
            del body[: len(body) - cap]
    return bytes(body)


def _message(body: bytes, fallback: str) -> str:
    try:
        return str(json.loads(body).get("message") or fallback)
    except (ValueError, AttributeError):
        return fallback


class KubeApi:
    """An aiohttp session to the API server, (re)built from a Kopf login."""

    def __init__(self, login: Callable[[], kopf.ConnectionInfo], concurrency: int = 32,
                 timeout: float = 30.0) -> None:
        self._login = login
        self._limit = PriorityLimit(concurrency)
        self._concurrency = concurrency
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None
        self._server = ""
        # A watch asks the server to end it after 300 s; silence longer than this is a dead link.
        self._stream_read_timeout = 360.0

    def _connect(self, stream: bool = False) -> aiohttp.ClientSession:
        """The session for requests, or the one for watch streams.

        Two sessions, so each has the connection limit it needs: requests share
        as many TLS connections as may be in flight (each costs ~150 KiB of
        buffers; an unlimited pool grew to hundreds in a burst), and each watch
        holds one connection of its own.
        """
        if self._session is None or self._session.closed or self._streams is None:
            info = self._login()
            self._server = info.server.rstrip("/")
            ssl, headers = info.as_ssl_context(), {**info.as_http_headers(), "User-Agent": "locust-operator"}
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency, ssl=ssl), headers=headers,
                timeout=self._timeout)
            self._streams = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=ssl), headers=headers)
        return self._streams if stream else self._session

    async def close(self) -> None:
        for session in (self._session, self._streams):
            if session is not None:
                await session.close()
        self._session = self._streams = None

    async def _send(self, method: str, path: str, body: Object | None = None,
                    content_type: str = "application/json", priority: int = CREATE,
                    cap: int | None = None, tail: bool = False) -> bytes:
        """The response body; ApiError on an error status.

        With `cap`, a body over `cap` bytes is refused (bounded.Refused), or with
        `tail` only its last `cap` bytes are kept: what a tenant wrote (a pod's log,
        events in its namespace) never sits in memory whole.
        """
        for attempt in (1, 2):
            session = self._connect()
            async with self._limit.hold(priority), session.request(
                    method, self._server + path,
                    data=None if body is None else json.dumps(body),
                    headers={"Content-Type": content_type}) as response:
                payload = await _read_body(response, cap, tail)
                if response.status == 401 and attempt == 1:
                    await self.close()  # credentials expired: log in again, once
                    continue
                if response.status >= 400:
                    raise ApiError(response.status, _message(payload, response.reason or ""))
                return payload
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request(self, method: str, path: str, body: Object | None = None,
                       content_type: str = "application/json", priority: int = CREATE,
                       cap: int | None = None) -> Object:
        payload = await self._send(method, path, body, content_type, priority, cap=cap)
        loaded = json.loads(payload) if payload else {}
        return loaded if isinstance(loaded, dict) else {}

    async def get_json(self, path: str, cap: int | None = None) -> Object:
        """GET (e.g. a label-selected list); `path` may carry a query."""
        return await self._request("GET", path, priority=STATUS, cap=cap)

    async def websocket(self, path: str, protocols: tuple[str, ...],
                        max_message: int = 1024 * 1024) -> aiohttp.ClientWebSocketResponse:
        """A WebSocket to the API server (e.g. a pod's portforward), on the streams' session.

        `max_message` bounds one message: what the far end sends is not trusted.
        """
        session = self._connect(stream=True)
        return await session.ws_connect(self._server + path, protocols=protocols, max_msg_size=max_message,
                                        timeout=aiohttp.ClientWSTimeout(ws_close=2.0), autoping=True)

    async def stream_lines(self, path: str) -> AsyncIterator[bytes]:
        """The lines of a watch response, until the server ends it."""
        session = self._connect(stream=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self._stream_read_timeout)
        async with session.get(self._server + path, timeout=timeout) as response:
            if response.status == 401:
                await self.close()  # log in again on the next attempt
            if response.status >= 400:
                raise ApiError(response.status, _message(await response.read(), response.reason or ""))
            pending = b""
            # Not readline(): aiohttp caps a line at 64 KiB, and a pod can be larger.
            async for chunk in response.content.iter_any():
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.strip():
                        yield line

    async def create(self, obj: Object) -> Object:
        kind = obj["kind"]
        API_WRITES.labels(plural(kind), "create").inc()
        return await self._request("POST", collection_path(kind, obj["metadata"]["namespace"]), obj,
                                   priority=EVENT if kind == "Event" else CREATE)

    async def read(self, kind: str, namespace: str, name: str) -> Object:
        return await self._request("GET", f"{collection_path(kind, namespace)}/{name}")

    async def patch_status(self, namespace: str, name: str, status: Object, kind: str = KIND) -> None:
        API_WRITES.labels(f"{plural(kind)}/status", "patch").inc()
        await self._request(
            "PATCH", f"{collection_path(kind, namespace)}/{name}/status",
            {"status": status}, content_type="application/merge-patch+json", priority=STATUS)

    async def patch(self, kind: str, namespace: str, name: str, body: Object) -> None:
        """A JSON merge patch of an object (e.g. a Job's TTL)."""
        API_WRITES.labels(plural(kind), "patch").inc()
        await self._request("PATCH", f"{collection_path(kind, namespace)}/{name}", body,
                            content_type="application/merge-patch+json")

    async def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        """Delete an object in the background (its dependents go by garbage collection), only if
        it is still the one with `uid` (a precondition: never a namesake created since)."""
        API_WRITES.labels(plural(kind), "delete").inc()
        await self._request("DELETE", f"{collection_path(kind, namespace)}/{name}",
                            {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                             "preconditions": {"uid": uid}})

    async def list_labelled(self, kind: str, namespace: str, selector: str, limit: int,
                            cap: int) -> list[Object]:
        """The first `limit` objects of `kind` in `namespace` with the labels of `selector`
        (e.g. a series), the answer read up to `cap` bytes (the objects are the tenant's)."""
        path = f"{collection_path(kind, namespace)}?labelSelector={quote(selector)}&limit={limit}"
        items = (await self.get_json(path, cap=cap)).get("items") or []
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    async def pod_events(self, namespace: str, pod: str, reason: str) -> list[str]:
        """The messages of a pod's events with `reason` (e.g. FailedMount), oldest first."""
        # Events in a test's namespace are the tenant's to write: a few, of bounded size.
        path = (f"{collection_path('Event', namespace)}?fieldSelector=involvedObject.kind%3DPod,"
                f"involvedObject.name%3D{pod},reason%3D{reason}&limit={EVENTS_LIMIT}")
        items = (await self.get_json(path, cap=EVENTS_MAX_BYTES)).get("items") or []
        if not isinstance(items, list):
            return []
        items = [e for e in items if isinstance(e, dict)]
        items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        return [text(e["message"]) for e in items if e.get("message")]

    async def pod_log(self, namespace: str, pod: str, container: str, limit_bytes: int) -> str:
        """The last `limit_bytes` (about) of a container's log, as text.

        The API server's limitBytes keeps the start of a log; the tail is what
        holds Locust's final stats, so ask for enough lines and cut here.
        """
        path = (f"{collection_path('Pod', namespace)}/{pod}/log?container={container}"
                f"&tailLines={max(1, limit_bytes // 8)}")
        payload = await self._send("GET", path, priority=STATUS, cap=limit_bytes, tail=True)
        return payload.decode("utf-8", errors="replace")
