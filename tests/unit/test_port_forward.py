"""The port-forward of `locust-operator ui`, against a real API server side on loopback.

A small aiohttp server plays the API server (and the kubelet behind it): it
speaks v4.channel.k8s.io at the pods/portforward path and relays channel 0 to a
real local "Locust master" (an aiohttp app). The forward is driven by real TCP
clients and real aiohttp client WebSockets; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from locust_operator.cli.port_forward import (
    PROTOCOL,
    ForwardError,
    PortForward,
    WebSocket,
    data_frame,
    one_line,
    parse_frame,
    port_of,
    portforward_path,
)

REMOTE_PORT = 8089
NAMESPACE, POD = "load", "shop-master-0"
REFUSED = ("error forwarding port 8089 to pod 0123abcd, uid : failed to execute portforward in network "
           "namespace \"/var/run/netns/cni-1\": failed to connect to localhost:8089 inside namespace "
           "\"0123abcd\", IPv4: dial tcp4 127.0.0.1:8089: connect:\n\tconnection refused " + "x" * 600)
BIG = bytes(range(256)) * 4096  # 1 MiB: many local reads and WebSocket messages


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.01)


# --- the "Locust master": the pod's port 8089 ----------------------------------------------------------

@dataclass
class Master:
    port: int = 0
    waiting: int = 0
    both_in: asyncio.Event = field(default_factory=asyncio.Event)

    async def index(self, _: web.Request) -> web.StreamResponse:
        return web.Response(text="Locust web UI")

    async def hold(self, _: web.Request) -> web.StreamResponse:
        """Answers only once two requests are in at the same time."""
        self.waiting += 1
        if self.waiting == 2:
            self.both_in.set()
        await self.both_in.wait()
        return web.Response(text="held")

    async def big(self, _: web.Request) -> web.StreamResponse:
        return web.Response(body=BIG)

    async def echo(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=await request.read())


# --- the API server side of pods/portforward -----------------------------------------------------------

@dataclass
class ApiServer:
    """Modes: relay (to the master), refuse (nothing listens on the pod's port), wrong-port,
    silent (never sends the handshake), hang-up (closes at once), text, data-first (before the
    error channel's port), bad-channel, forbidden (refuses the upgrade)."""

    master_port: int
    mode: str = "relay"
    opened: int = 0
    active: int = 0
    most_active: int = 0
    paths: list[str] = field(default_factory=list)

    async def portforward(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "forbidden":
            raise web.HTTPForbidden(text="pods/portforward is forbidden")
        if request.query.getall("ports", []) != [str(REMOTE_PORT)]:
            raise web.HTTPBadRequest(text="one port, 8089")
        ws = web.WebSocketResponse(protocols=(PROTOCOL,))
        if ws.can_prepare(request).protocol != PROTOCOL:
            raise web.HTTPBadRequest(text="v4.channel.k8s.io only")
        await ws.prepare(request)
        self.paths.append(request.path_qs)
        self.opened += 1
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await self._serve(ws)
        finally:
            self.active -= 1
            await ws.close()
        return ws

    async def _serve(self, ws: web.WebSocketResponse) -> None:
        if self.mode == "silent":
            async for _ in ws:  # until the client gives up
                pass
            return
        if self.mode in ("hang-up", "text"):
            if self.mode == "text":
                await ws.send_str("8089")
            return
        port = (REMOTE_PORT + 1 if self.mode == "wrong-port" else REMOTE_PORT).to_bytes(2, "little")
        await ws.send_bytes(b"\x00" + port)
        if self.mode == "data-first":
            await ws.send_bytes(b"\x00HTTP/1.1 200 OK")
        await ws.send_bytes(b"\x01" + port)
        if self.mode == "bad-channel":
            await ws.send_bytes(b"\x03hello")
            return
        target = _free_port() if self.mode == "refuse" else self.master_port
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            await ws.send_bytes(b"\x01" + REFUSED.encode())
            return
        try:
            await _relay(ws, reader, writer)
        finally:
            writer.close()


async def _relay(ws: web.WebSocketResponse, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    async def to_pod() -> None:
        async for message in ws:
            assert message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == b"\x00"
            writer.write(message.data[1:])
            await writer.drain()

    async def from_pod() -> None:
        while chunk := await reader.read(32 * 1024):
            await ws.send_bytes(b"\x00" + chunk)

    tasks = [asyncio.create_task(to_pod()), asyncio.create_task(from_pod())]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


@dataclass
class World:
    forward: PortForward
    port: int  # the forward's local port
    api: ApiServer
    master: Master
    errors: list[str]


@asynccontextmanager
async def world(mode: str = "relay", handshake_seconds: float = 10.0) -> AsyncIterator[World]:
    master = Master()
    master_app = web.Application()
    master_app.router.add_get("/", master.index)
    master_app.router.add_get("/hold", master.hold)
    master_app.router.add_get("/big", master.big)
    master_app.router.add_post("/echo", master.echo)
    async with _serving(master_app) as master_port:
        api = ApiServer(master_port, mode)
        api_app = web.Application()
        api_app.router.add_get("/api/v1/namespaces/{namespace}/pods/{pod}/portforward", api.portforward)
        async with _serving(api_app) as api_port, aiohttp.ClientSession() as session:
            errors: list[str] = []
            forward = PortForward(_opener(session, f"http://127.0.0.1:{api_port}"), NAMESPACE, POD,
                                  REMOTE_PORT, on_error=errors.append, handshake_seconds=handshake_seconds)
            port = await forward.start()
            try:
                yield World(forward, port, api, master, errors)
            finally:
                await forward.close()


def _opener(session: aiohttp.ClientSession, base: str) -> Callable[[str], Awaitable[WebSocket]]:
    async def open_socket(path: str) -> WebSocket:
        return await session.ws_connect(base + path, protocols=(PROTOCOL,))
    return open_socket


async def _request(port: int, raw: bytes) -> bytes:
    """Everything the forward sends back until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(-1)
    finally:
        writer.close()


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()


def _body(answer: bytes) -> bytes:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return body


# --- through the forward -------------------------------------------------------------------------------

def test_an_http_get_reaches_the_master() -> None:
    async def main() -> tuple[bytes, World]:
        async with world() as w:
            answer = await _request(w.port, _get("/"))
            await _eventually(lambda: w.forward.active == 0 and w.api.active == 0)
            return answer, w

    answer, w = asyncio.run(main())
    assert _body(answer) == b"Locust web UI"
    assert w.api.paths == [f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}/portforward?ports={REMOTE_PORT}"]
    assert w.forward.connections == 1 and w.errors == []


def test_large_bodies_cross_both_ways() -> None:
    async def main() -> tuple[bytes, bytes]:
        async with world() as w:
            down = await _request(w.port, _get("/big"))
            upload = BIG[:300_000]
            up = await _request(w.port, b"POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                                + f"Content-Length: {len(upload)}\r\n\r\n".encode() + upload)
            return _body(down), _body(up)

    down, up = asyncio.run(main())
    assert down == BIG
    assert up == BIG[:300_000]


def test_each_connection_gets_its_own_websocket() -> None:
    async def main() -> tuple[list[bytes], World]:
        async with world() as w:
            answers = await asyncio.gather(_request(w.port, _get("/hold")), _request(w.port, _get("/hold")))
            return list(answers), w

    answers, w = asyncio.run(main())
    assert [_body(a) for a in answers] == [b"held", b"held"]  # only possible with both in at once
    assert w.api.opened == 2 and w.api.most_active == 2
    assert w.forward.connections == 2 and w.errors == []


def test_a_refusing_pod_is_one_bounded_line_and_a_closed_connection() -> None:
    async def main() -> tuple[bytes, World]:
        async with world("refuse") as w:
            answer = await _request(w.port, _get("/"))
            await _eventually(lambda: bool(w.errors) and w.forward.active == 0)
            return answer, w

    answer, w = asyncio.run(main())
    assert answer == b""
    [error] = w.errors
    assert error.startswith("error forwarding port 8089 to pod 0123abcd")
    assert "connect: connection refused xxx" in error  # the kubelet's text, whitespace collapsed
    assert "\n" not in error and "\t" not in error and len(error) <= 300 and error.endswith("…")


@pytest.mark.parametrize(("mode", "expected"), [
    ("wrong-port", "the port-forward answered for port 8090, not 8089"),
    ("bad-channel", "the port-forward sent a message on channel 3, not 0 or 1"),
    ("data-first", "the port-forward sent data on channel 0 before it started"),
    ("hang-up", "the port-forward to port 8089 of pod load/shop-master-0 closed before it started"),
    ("text", "the port-forward sent a text message, not a binary one"),
    ("forbidden", "could not open a port-forward to port 8089 of pod load/shop-master-0: "
                  "the API server answered HTTP 403"),
])
def test_a_broken_port_forward_is_reported(mode: str, expected: str) -> None:
    async def main() -> tuple[bytes, World]:
        async with world(mode) as w:
            answer = await _request(w.port, _get("/"))
            await _eventually(lambda: bool(w.errors) and w.forward.active == 0 and w.api.active == 0)
            return answer, w

    answer, w = asyncio.run(main())
    assert answer == b""
    assert w.errors == [expected]


def test_a_server_that_never_answers_times_out() -> None:
    async def main() -> tuple[bytes, float, World]:
        async with world("silent", handshake_seconds=0.3) as w:
            start = asyncio.get_running_loop().time()
            answer = await _request(w.port, _get("/"))
            seconds = asyncio.get_running_loop().time() - start
            await _eventually(lambda: w.api.active == 0 and w.forward.active == 0)
            return answer, seconds, w

    answer, seconds, w = asyncio.run(main())
    assert answer == b""
    assert 0.3 <= seconds < 1.5
    assert w.errors == ["port 8089 of pod load/shop-master-0 did not answer the port-forward within 0.3 s"]
    assert w.api.opened == 1  # and the server saw its WebSocket closed (active == 0)


def test_a_client_that_leaves_leaks_nothing() -> None:
    async def main() -> World:
        async with world() as w:
            _, writer = await asyncio.open_connection("127.0.0.1", w.port)
            writer.write(b"GET / HTTP/1.1\r\n")  # half a request: the master keeps waiting
            await writer.drain()
            await _eventually(lambda: w.api.active == 1)
            writer.close()
            await _eventually(lambda: w.forward.active == 0 and w.api.active == 0)
            return w

    w = asyncio.run(main())
    assert w.forward.connections == 1 and w.errors == []


def test_close_ends_open_connections_and_is_idempotent() -> None:
    async def main() -> tuple[bytes, World, bool]:
        async with world() as w:
            reader, writer = await asyncio.open_connection("127.0.0.1", w.port)
            writer.write(b"GET / HTTP/1.1\r\n")
            await writer.drain()
            await _eventually(lambda: w.api.active == 1)
            await w.forward.close()
            async with asyncio.timeout(2):
                left = await reader.read(-1)
            writer.close()
            await _eventually(lambda: w.api.active == 0)
            await w.forward.close()
            try:
                await asyncio.open_connection("127.0.0.1", w.port)
                listening = True
            except ConnectionRefusedError:
                listening = False
            return left, w, listening

    left, w, listening = asyncio.run(main())
    assert left == b""
    assert w.forward.active == 0 and not listening and w.errors == []


def test_a_forward_starts_once() -> None:
    async def main() -> None:
        async with world() as w:
            with pytest.raises(RuntimeError):
                await w.forward.start()

    asyncio.run(main())


# --- the pure helpers ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("payload", "expected"), [
    (b"", b"\x00"),
    (b"GET /", b"\x00GET /"),
    (b"\x01\x00", b"\x00\x01\x00"),
])
def test_data_frame(payload: bytes, expected: bytes) -> None:
    assert data_frame(payload) == expected


@pytest.mark.parametrize(("message", "expected"), [
    (b"\x00", (0, b"")),
    (b"\x00abc", (0, b"abc")),
    (b"\x01\x99\x1f", (1, b"\x99\x1f")),
    (b"\x01refused", (1, b"refused")),
])
def test_parse_frame(message: bytes, expected: tuple[int, bytes]) -> None:
    assert parse_frame(message) == expected


@pytest.mark.parametrize(("message", "error"), [
    (b"", "empty message"),
    (b"\x02abc", "channel 2, not 0 or 1"),
    (b"\xff", "channel 255, not 0 or 1"),
])
def test_parse_frame_refuses(message: bytes, error: str) -> None:
    with pytest.raises(ForwardError, match=error):
        parse_frame(message)


@pytest.mark.parametrize(("payload", "expected"), [
    (b"\x99\x1f", 8089),
    (b"\x01\x00", 1),
    (b"\x00\x01", 256),
    (b"\xff\xff", 65535),
])
def test_port_of(payload: bytes, expected: int) -> None:
    assert port_of(payload) == expected


@pytest.mark.parametrize("payload", [b"", b"\x99", b"\x99\x1f\x00"])
def test_port_of_refuses(payload: bytes) -> None:
    with pytest.raises(ForwardError, match=f"has {len(payload)} bytes"):
        port_of(payload)


@pytest.mark.parametrize(("namespace", "pod", "port", "expected"), [
    ("default", "master-0", 8089, "/api/v1/namespaces/default/pods/master-0/portforward?ports=8089"),
    ("a/b", "c?d", 1, "/api/v1/namespaces/a%2Fb/pods/c%3Fd/portforward?ports=1"),
    ("n s", "p#&", 65535, "/api/v1/namespaces/n%20s/pods/p%23%26/portforward?ports=65535"),
])
def test_portforward_path(namespace: str, pod: str, port: int, expected: str) -> None:
    assert portforward_path(namespace, pod, port) == expected


@pytest.mark.parametrize(("namespace", "pod", "port"), [
    ("default", "pod", 0),
    ("default", "pod", 65536),
    ("default", "pod", -1),
    ("default", "pod", True),
    ("default", "pod", "8089"),
    ("", "pod", 8089),
    ("default", "", 8089),
])
def test_portforward_path_refuses(namespace: str, pod: str, port: int) -> None:
    with pytest.raises(ValueError):
        portforward_path(namespace, pod, port)


def test_a_bad_port_is_refused_before_listening() -> None:
    async def never(_: str) -> WebSocket:
        raise AssertionError("not opened")

    with pytest.raises(ValueError):
        PortForward(never, "default", "pod", 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("plain", "plain"),
    ("  a\n\tb\r\n  c  ", "a b c"),
    ("red \x1b[31mtext\x00", "red [31mtext"),
    ("x" * 300, "x" * 300),
    ("x" * 301, "x" * 299 + "…"),
])
def test_one_line(text: str, expected: str) -> None:
    assert one_line(text) == expected
