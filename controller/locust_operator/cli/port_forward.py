"""A local TCP port forwarded to a pod's port through the API server, with no kubectl.

`locust-operator ui NAME` opens a Locust master's web UI (port 8089) on the
user's machine as `kubectl port-forward` would, but through the API server's
`pods/portforward` subresource over WebSocket ("v4.channel.k8s.io", as the
Python kubernetes client and kr8s speak it), so only the cluster credentials are
needed. Every message is binary and starts with its channel: for the one port
asked for, 0 carries data and 1 carries the kubelet's error text. The server
first sends the port number (2 bytes, little-endian) once on each channel.

The protocol has no way to tell several TCP connections apart on one socket,
nor to half-close one, so each accepted local connection gets its own
WebSocket, and either side ending ends both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import quote

import aiohttp

PROTOCOL = "v4.channel.k8s.io"
DATA, ERROR = 0, 1
CHUNK = 64 * 1024  # one local read, one WebSocket message: memory per connection stays bounded
LINE_LIMIT = 300  # the kubelet's text is not ours: a report is one line of at most this much
CLOSE_SECONDS = 2.0  # a peer that does not acknowledge a close is dropped after this
DRAIN_SECONDS = 1.0  # when the WebSocket refuses data, its last messages may still say why


class ForwardError(Exception):
    """One connection through the forward failed (the message is for the user)."""


class WebSocket(Protocol):
    """What the forward uses of an open aiohttp ClientWebSocketResponse."""

    @property
    def closed(self) -> bool: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def receive(self) -> aiohttp.WSMessage: ...

    async def close(self) -> bool: ...


OpenSocket = Callable[[str], Awaitable[WebSocket]]


def data_frame(payload: bytes) -> bytes:
    """A message carrying bytes to the pod."""
    return bytes((DATA,)) + payload


def parse_frame(message: bytes) -> tuple[int, bytes]:
    """The channel and the payload of a message from the server."""
    if not message:
        raise ForwardError("the port-forward sent an empty message")
    if message[0] not in (DATA, ERROR):
        raise ForwardError(f"the port-forward sent a message on channel {message[0]}, not 0 or 1")
    return message[0], bytes(message[1:])


def port_of(payload: bytes) -> int:
    """The port number of a channel's first message."""
    if len(payload) != 2:
        raise ForwardError(f"the port-forward's first message on a channel has {len(payload)} bytes, "
                           "not a 2-byte port number")
    return int.from_bytes(payload, "little")


def portforward_path(namespace: str, pod: str, port: int) -> str:
    """The API server's path that forwards one port of one pod."""
    if not namespace or not pod:
        raise ValueError("a port-forward needs a namespace and a pod name")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"{port!r} is not a port number (1-65535)")
    return (f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}"
            f"/portforward?ports={port}")


def one_line(text: str, limit: int = LINE_LIMIT) -> str:
    """Text made safe for one terminal line: no control characters, whitespace collapsed, bounded."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):  # the WebSocket upgrade was refused
        return f"the API server answered HTTP {exc.status}"
    return str(exc) or type(exc).__name__


async def _close_socket(ws: WebSocket) -> None:
    if ws.closed:
        return
    # aiohttp waits for the server's close reply; one that never comes must not hold close().
    with contextlib.suppress(TimeoutError, OSError, aiohttp.ClientError):
        async with asyncio.timeout(CLOSE_SECONDS):
            await ws.close()


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        # A local client that stopped reading would keep unsent bytes, and this wait, forever.
        async with asyncio.timeout(CLOSE_SECONDS):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()


async def _next_message(ws: WebSocket) -> bytes | None:
    """The next binary message, or None once the WebSocket is closed."""
    while True:
        message = await ws.receive()
        if message.type == aiohttp.WSMsgType.BINARY:
            return bytes(message.data)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return None
        if message.type == aiohttp.WSMsgType.ERROR:
            raise ForwardError(f"the port-forward connection failed: {_describe(message.data)}")
        if message.type == aiohttp.WSMsgType.TEXT:
            raise ForwardError("the port-forward sent a text message, not a binary one")
        # PING and PONG: aiohttp answers them itself


async def _upstream(reader: asyncio.StreamReader, ws: WebSocket) -> bool:
    """Copies the client's bytes to the pod: True when the client ended, False when the pod's side did."""
    while True:
        try:
            chunk = await reader.read(CHUNK)
        except OSError:
            return True
        if not chunk:
            return True
        try:
            await ws.send_bytes(data_frame(chunk))
        except (OSError, aiohttp.ClientError):
            return False


async def _downstream(ws: WebSocket, writer: asyncio.StreamWriter) -> None:
    """Copies the pod's bytes to the local client until either ends; the kubelet's error text is raised."""
    while (message := await _next_message(ws)) is not None:
        channel, payload = parse_frame(message)
        if channel == ERROR:
            if payload:
                raise ForwardError(payload.decode("utf-8", errors="replace"))
            continue
        if payload:
            writer.write(payload)
            try:
                await writer.drain()  # the client's pace bounds what waits in memory
            except OSError:
                return


async def _pump(ws: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    up = asyncio.create_task(_upstream(reader, ws))
    down = asyncio.create_task(_downstream(ws, writer))
    try:
        done, _ = await asyncio.wait((up, down), return_when=asyncio.FIRST_COMPLETED)
        if down not in done and not up.result():
            await asyncio.wait((down,), timeout=DRAIN_SECONDS)
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
    if down.done() and not down.cancelled() and (exc := down.exception()) is not None:
        raise exc


class PortForward:
    """Listens on a local port; each connection is copied to `remote_port` of the pod."""

    def __init__(self, open_socket: OpenSocket, namespace: str, pod: str, remote_port: int, *,
                 local_port: int = 0, host: str = "127.0.0.1",
                 on_error: Callable[[str], None] | None = None, handshake_seconds: float = 10.0) -> None:
        self._path = portforward_path(namespace, pod, remote_port)
        self._open_socket = open_socket
        self._target = f"port {remote_port} of pod {namespace}/{pod}"
        self._remote_port = remote_port
        self._local_port = local_port
        self._host = host
        self._on_error = on_error
        self._handshake_seconds = handshake_seconds
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.connections = 0  # local connections accepted so far

    @property
    def active(self) -> int:
        """Local connections being served now."""
        return len(self._tasks)

    async def start(self) -> int:
        """Starts listening; returns the local port (chosen by the system when 0 was asked for)."""
        if self._server is not None or self._closed:
            raise RuntimeError("a PortForward starts once")
        self._server = await asyncio.start_server(self._accept, self._host, self._local_port)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stops listening and ends every open connection; closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closed or task is None:  # accepted while close() ran: it cannot end this one
            await _close_writer(writer)
            return
        self._tasks.add(task)
        self.connections += 1
        try:
            ws = await self._connect()
            try:
                await _pump(ws, reader, writer)
            finally:
                await _close_socket(ws)
        except ForwardError as exc:
            if self._on_error is not None:
                self._on_error(one_line(str(exc)))
        finally:
            self._tasks.discard(task)
            await _close_writer(writer)

    async def _connect(self) -> WebSocket:
        """An open WebSocket whose server confirmed the port on both channels."""
        deadline = asyncio.get_running_loop().time() + self._handshake_seconds
        too_late = ForwardError(f"{self._target} did not answer the port-forward "
                                f"within {self._handshake_seconds:g} s")
        try:
            async with asyncio.timeout_at(deadline):
                ws = await self._open_socket(self._path)
        except TimeoutError:
            raise too_late from None
        except Exception as exc:  # the injected opener's failures (credentials, HTTP, network) are all one
            raise ForwardError(f"could not open a port-forward to {self._target}: {_describe(exc)}") from exc
        confirmed = False
        try:
            async with asyncio.timeout_at(deadline):
                await self._handshake(ws)
            confirmed = True
        except TimeoutError:
            raise too_late from None
        finally:
            if not confirmed:
                await _close_socket(ws)
        return ws

    async def _handshake(self, ws: WebSocket) -> None:
        seen: set[int] = set()
        while len(seen) < 2:
            message = await _next_message(ws)
            if message is None:
                raise ForwardError(f"the port-forward to {self._target} closed before it started")
            channel, payload = parse_frame(message)
            if channel in seen:
                raise ForwardError(payload.decode("utf-8", errors="replace") if channel == ERROR and payload
                                   else f"the port-forward sent data on channel {channel} before it started")
            port = port_of(payload)
            if port != self._remote_port:
                raise ForwardError(f"the port-forward answered for port {port}, not {self._remote_port}")
            seen.add(channel)
