"""Bounded reads of a master's REST API, against a real HTTP server on loopback.

The server plays a hostile master: answers over the cap (declared, streamed,
gzip-inflated), endless and dripping bodies, deep nesting, wrong shapes, no
answer at all. Every read must end within its bounds with a clear outcome.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from locust_operator.controller.master_api import (
    CSV,
    FAILURES,
    STATS,
    Answer,
    ByteBudget,
    Limits,
    MasterClient,
    master_url,
    read_capped,
)
from locust_operator.controller.master_api import REPORT as REPORT_ENDPOINT

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REPORT = {"state": "running", "user_count": 3, "stats": [{"name": "/", "num_requests": 4}]}


async def _json(_: web.Request) -> web.StreamResponse:
    return web.json_response(REPORT)


async def _endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b'{"stats": [')
    for _ in range(100_000):  # bounded: ~3 GB at most, far past any cap
        await response.write(b'{"name": "x", "num_requests": 1},' * 1000)
    return response


async def _drip(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(600):
        await response.write(b" ")
        await asyncio.sleep(0.1)
    return response


async def _hang(_: web.Request) -> web.StreamResponse:
    await asyncio.sleep(600)
    return web.Response()


async def _deep(_: web.Request) -> web.StreamResponse:
    return web.Response(body=b"[" * 2000 + b"]" * 2000, content_type="application/json")


async def _gzip_bomb(_: web.Request) -> web.StreamResponse:
    return web.Response(body=gzip.compress(b" " * (20 * 1024 * 1024)),
                        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


def _body(data: bytes) -> Handler:
    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(body=data, content_type="application/json")
    return handler


async def _redirect(_: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ok/stats/requests")


ROUTES: dict[str, Handler] = {
    "ok": _json, "endless": _endless, "drip": _drip, "hang": _hang, "deep": _deep,
    "bomb": _gzip_bomb, "list": _body(b"[1, 2]"), "garbage": _body(b"{not json"),
    "big": _body(b'{"x": "' + b"y" * 5000 + b'"}'), "redirect": _redirect,
}


@asynccontextmanager
async def masters() -> AsyncIterator[str]:
    """A loopback server with one hostile master per path prefix; yields its base URL."""
    app = web.Application()
    for name, handler in ROUTES.items():
        app.router.add_get(f"/{name}/stats/requests", handler)
        app.router.add_get(f"/{name}/stats/requests/csv", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


LIMITS = Limits(stats_bytes=4096, csv_bytes=4096, live_seconds=1.0, final_seconds=1.0)


@pytest.mark.parametrize(("name", "expected"), [
    ("ok", Answer(value=REPORT)),
    ("big", Answer(problem="the master's /stats/requests answer is over 4 KiB")),
    ("endless", Answer(problem="the master's /stats/requests answer is over 4 KiB")),
    ("bomb", Answer(problem="the master's /stats/requests answer is over 4 KiB")),
    ("deep", Answer(problem="the master's /stats/requests answer is nested deeper than 32 levels")),
    ("list", Answer(problem="the master's /stats/requests answer is not a JSON object")),
    ("garbage", Answer(problem="the master's /stats/requests answer is not JSON")),
    ("drip", Answer()),  # the total timeout ends it: unreachable, as far as the verdict goes
    ("hang", Answer()),
    ("redirect", Answer()),  # never followed: a master does not send the operator elsewhere
    ("missing", Answer()),  # 404
])
def test_live_stats_reads_are_bounded(name: str, expected: Answer) -> None:
    async def read() -> tuple[Answer, float]:
        async with masters() as base:
            client = MasterClient(LIMITS)
            try:
                start = time.monotonic()
                answer = await client.stats(f"{base}/{name}/stats/requests")
                return answer, time.monotonic() - start
            finally:
                await client.close()

    answer, seconds = asyncio.run(read())
    assert answer == expected
    assert seconds < LIMITS.live_seconds + 1.0  # never past the total timeout


@pytest.mark.parametrize("cap", [1024, 4096, 65536])
def test_the_cap_is_the_setting(cap: int) -> None:
    """Just under the cap is read; just over it is refused (the cap is a parameter)."""
    def body(size: int) -> bytes:
        return b'{"x": "' + b"y" * (size - 9) + b'"}'

    async def read() -> list[Answer]:
        ROUTES["under"], ROUTES["over"] = _body(body(cap)), _body(body(cap + 1))
        try:
            async with masters() as base:
                client = MasterClient(Limits(stats_bytes=cap))
                try:
                    return [await client.stats(f"{base}/{name}/stats/requests") for name in ("under", "over")]
                finally:
                    await client.close()
        finally:
            del ROUTES["under"], ROUTES["over"]

    under, over = asyncio.run(read())
    assert isinstance(under.value, dict) and under.problem is None
    assert over.value is None and over.problem is not None and "is over" in over.problem


def test_text_reads_have_their_own_cap_and_budget() -> None:
    """Live polls stuck on masters that never answer leave the final reads their slots."""
    async def read() -> tuple[Answer, Answer, float]:
        async with masters() as base:
            client = MasterClient(Limits(live_slots=2, final_slots=1, live_seconds=5.0, final_seconds=5.0,
                                         csv_bytes=4096))
            try:
                stuck = [asyncio.ensure_future(client.stats(f"{base}/hang/stats/requests")) for _ in range(4)]
                await asyncio.sleep(0.2)
                start = time.monotonic()
                csv = await client.text(f"{base}/ok/stats/requests", CSV)
                seconds = time.monotonic() - start
                over = await client.text(f"{base}/endless/stats/requests", CSV)
                for task in stuck:
                    task.cancel()
                return csv, over, seconds
            finally:
                await client.close()

    csv, over, seconds = asyncio.run(read())
    assert isinstance(csv.value, str) and json.loads(csv.value) == REPORT
    assert seconds < 1.0  # not behind the four polls that wait for 5 s
    assert over.problem == "the master's /stats/requests/csv answer is over 4 KiB"


def test_read_capped_stops_reading_at_the_cap() -> None:
    """An endless body is not read to its end: the read stops at the first chunk past the cap."""
    class Content:
        def __init__(self) -> None:
            self.chunks = 0

        async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
            for _ in range(10**6):
                self.chunks += 1
                yield b"x" * size

    class Response:
        content_length = None
        content = Content()

    async def read() -> str:
        try:
            await read_capped(Response(), 256 * 1024, "/stats/requests")  # type: ignore[arg-type]
        except ValueError as exc:
            return str(exc)
        return "read"

    assert asyncio.run(read()) == "the master's /stats/requests answer is over 256 KiB"
    assert Response.content.chunks == 5  # 5 x 64 KiB is past the cap; never the million


def test_master_url() -> None:
    assert master_url("http://m.ns.svc:8089/stats/requests", "/stop") == "http://m.ns.svc:8089/stop"
    assert master_url("http://127.0.0.1:1/ns/t-master/stats/requests", "/stats/requests/csv") == \
        "http://127.0.0.1:1/ns/t-master/stats/requests/csv"
    assert master_url("http://h/stats/requests?x=1", "/stop") == "http://h/stop"


def _stop_app(post: bool, seen: list[str]) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append(request.method)
        return web.Response(status=200 if (request.method == "POST") == post else 405)
    app = web.Application()
    app.router.add_route("*", "/stop", answer)
    return app


@pytest.mark.parametrize(("post", "methods"), [(True, ["POST"]), (False, ["POST", "GET"])])
def test_stop_posts_and_falls_back_to_get_for_older_locust(post: bool, methods: list[str]) -> None:
    """Newer Locust takes POST /stop; 2.43 answers a POST with 405 and takes GET."""
    seen: list[str] = []

    async def stop() -> bool:
        runner = web.AppRunner(_stop_app(post, seen))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = MasterClient()
        try:
            return await client.stop(f"http://127.0.0.1:{port}/stop")
        finally:
            await client.close()
            await runner.cleanup()

    assert asyncio.run(stop()) is True
    assert seen == methods


def test_an_unreachable_master_is_no_answer() -> None:
    async def read() -> tuple[Answer, bool]:
        client = MasterClient(Limits(connect_seconds=1.0))
        try:
            # Port 9 on loopback: nothing listens (connection refused at once).
            return await client.stats("http://127.0.0.1:9/stats/requests"), \
                await client.stop("http://127.0.0.1:9/stop")
        finally:
            await client.close()

    assert asyncio.run(read()) == (Answer(), False)


def test_the_byte_budget_bounds_the_bytes_in_flight() -> None:
    """Reservations of declared lengths wait for one another and never deadlock; a body
    of unknown length past the free budget ends its read (no answer this time)."""
    budget = ByteBudget(1000)
    held: list[int] = []

    async def reader(size: int) -> None:
        await budget.take(size)
        held.append(budget.size - budget.free)
        await asyncio.sleep(0.01)
        await budget.give(size)

    async def main() -> tuple[bool, bool]:
        await asyncio.wait_for(asyncio.gather(*(reader(300 + i * 100) for i in range(8))), 5)
        assert budget.free == 1000
        first = budget.try_take(900)
        second = budget.try_take(200)  # does not fit: the read would end
        return first, second

    assert asyncio.run(main()) == (True, False)
    assert max(held) <= 1000


def test_a_body_of_unknown_length_past_the_budget_is_no_answer() -> None:
    async def read() -> tuple[Answer, Answer]:
        async with masters() as base:
            client = MasterClient(Limits(stats_bytes=1024 * 1024, budget_bytes=4096))
            try:
                # chunked, far past the budget but under the cap: not the master's fault
                endless = await client.stats(f"{base}/endless/stats/requests")
                ok = await client.stats(f"{base}/ok/stats/requests")  # the budget was given back
                return endless, ok
            finally:
                await client.close()

    endless, ok = asyncio.run(read())
    assert endless == Answer() and ok == Answer(value=REPORT)


@pytest.mark.parametrize(("endpoint", "cap"), [(STATS, 1), (CSV, 2), (FAILURES, 2), (REPORT_ENDPOINT, 3)])
def test_each_endpoint_has_its_cap(endpoint: str, cap: int) -> None:
    assert Limits(stats_bytes=1, csv_bytes=2, report_bytes=3).cap(endpoint) == cap
