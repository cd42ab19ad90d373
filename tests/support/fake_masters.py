"""Fake Locust masters on loopback, hostile ones among them, for the operator's reads.

One aiohttp server on 127.0.0.1 answers for every test's master REST API. The
operator's `statsUrlTemplate` is set to `url_template`, so the master of test
NAME in namespace NS is served under `/NS/NAME-master/`. The part of NAME before
its first "-" chooses how that master behaves:

- `normal`: Locust's own JSON and CSV shapes (as Locust 2.47 serves them). It
  reports "running", then "stopped" from STOPS_AFTER_SECONDS after its first
  request; its CSV counts `expected_requests(NAME)` requests.
- `endless`: /stats/requests never ends, streamed as fast as the client reads.
- `drip`: one byte every DRIP_SECONDS, never a whole body.
- `deep`: a small /stats/requests nested DEEP arrays deep.
- `hugecsv`: "stopped" at once, then an endless /stats/requests/csv and failures CSV.
- `hugereport`: normal, except for an endless HTML report.
- `types`: each read of /stats/requests (and of its CSV) is wrong in another way:
  numbers as strings, huge or out-of-range numbers, objects and lists where
  numbers belong, NaN and Infinity, a 10 MB state, a list for the whole report.
- `hang`: takes the request and never answers.

`blackhole()` is the other way to be unreachable: a socket that listens but
never accepts, so connections wait in the kernel's backlog or never complete.

Nothing here grows without bound, so a hostile master cannot take the test
run down with it. A stream ends when its client goes away (aiohttp's handler
cancellation), after MAX_STREAM_BYTES, or after MAX_STREAM_SECONDS. aiohttp's
`write` waits until the client takes the data, so a slow reader never piles up
more than about one chunk in the buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
import math
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
MAX_STREAM_SECONDS = 600.0
MAX_STREAM_BYTES = 2 * 1024**3
CHUNK_BYTES = 64 * 1024
STOPS_AFTER_SECONDS = 1.5
DRIP_SECONDS = 0.5
DEEP = 100_000
HUGE_STATE_BYTES = 10_000_000
WORKERS = 2  # the worker replicas of examples/minimal.yaml
RUN_SECONDS = 5  # the run a normal master reports: its Requests/s is requests / RUN_SECONDS

STATS, REQUESTS_CSV, FAILURES_CSV, REPORT, STOP = (
    "stats/requests", "stats/requests/csv", "stats/failures/csv", "stats/report", "stop")
HOSTILE_KINDS = ("endless", "drip", "deep", "hugecsv", "hugereport", "types", "hang")
KINDS = ("normal", *HOSTILE_KINDS)

# The CSV headers of Locust 2.47 (tests/unit/data/locust-requests.csv is a real one).
PERCENTILE_COLUMNS = ("50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%")
REQUESTS_HEADER = ("Type", "Name", "Request Count", "Failure Count", "Median Response Time",
                   "Average Response Time", "Min Response Time", "Max Response Time",
                   "Average Content Size", "Requests/s", "Failures/s", *PERCENTILE_COLUMNS)
FAILURES_HEADER = ("Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen")


# --- what a normal master reports --------------------------------------------------------

@dataclass(frozen=True)
class _Row:
    method: str
    name: str
    requests: int
    failures: int
    median_ms: int


def expected_requests(test: str) -> int:
    """The requests a normal master of test `test` counts: what status.result.requests must say."""
    return 100 + zlib.crc32(test.encode()) % 900


def _rows(test: str) -> tuple[_Row, _Row, _Row]:
    """The demo locustfile's two requests and Locust's Aggregated row; a tenth of them failed."""
    total = expected_requests(test)
    home = total * 3 // 4
    health = total - home
    rows = (_Row("GET", "/", home, home // 10, 11), _Row("GET", "health", health, health // 10, 9))
    return (*rows, _Row("", "Aggregated", total, rows[0].failures + rows[1].failures, 10))


def expected_failures(test: str) -> int:
    return _rows(test)[-1].failures


def _percentiles(row: _Row) -> list[int]:
    # Non-decreasing, as Locust's are; the 100% column is the rounded maximum.
    return [row.median_ms + step for step in (0, 1, 2, 2, 4, 6, 6, 6, 7, 7, 7)]


def requests_csv(test: str) -> str:
    """/stats/requests/csv as Locust writes it (csv.writer's defaults: \\r\\n, minimal quoting)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REQUESTS_HEADER)
    for row in _rows(test):
        percentiles = _percentiles(row)
        writer.writerow([row.method, row.name, row.requests, row.failures, row.median_ms,
                         row.median_ms + 0.4375, row.median_ms - 3.5, percentiles[-1] - 0.25, 2.0,
                         row.requests / RUN_SECONDS, row.failures / RUN_SECONDS, *percentiles])
    return out.getvalue()


def _error(row: _Row) -> str:
    return f"HTTPError('500 Server Error: Internal Server Error for url: {row.name}')"


def failures_csv(test: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FAILURES_HEADER)
    for row in _rows(test)[:-1]:
        writer.writerow([row.method, row.name, _error(row), row.failures, "2026-01-01T00:00:01Z",
                         "2026-01-01T00:00:05Z"])
    return out.getvalue()


def _entry(row: _Row, share: float) -> dict[str, Any]:
    requests, failures = int(row.requests * share), int(row.failures * share)
    percentiles = _percentiles(row)
    return {
        "avg_content_length": 2.0, "avg_response_time": row.median_ms + 0.4375,
        "current_fail_per_sec": 0.0, "current_rps": 0.0, "max_response_time": float(percentiles[-1]),
        "median_response_time": row.median_ms, "method": row.method,
        "min_response_time": row.median_ms - 3.5, "name": row.name,
        "num_failures": failures, "num_requests": requests,
        "response_time_percentile_0.95": percentiles[5], "response_time_percentile_0.99": percentiles[7],
        "total_fail_per_sec": failures / RUN_SECONDS, "total_rps": requests / RUN_SECONDS,
    }


def stats_report(test: str, stopped: bool) -> dict[str, Any]:
    """/stats/requests in Locust's shape; a running master has counted about half the requests."""
    rows = _rows(test)
    share = 1.0 if stopped else 0.5
    total = _entry(rows[-1], share)
    return {
        "current_fail_per_sec": 0.0,
        "current_response_time_percentiles": {"response_time_percentile_0.5": rows[-1].median_ms,
                                              "response_time_percentile_0.95": _percentiles(rows[-1])[5]},
        "current_rps": 0.0 if stopped else total["total_rps"],
        "errors": [{"error": _error(r), "method": r.method, "name": r.name, "occurrences": r.failures,
                    "first_seen": 1767225601.0, "last_seen": 1767225605.0} for r in rows[:-1]],
        "fail_ratio": total["num_failures"] / max(1, total["num_requests"]),
        "state": "stopped" if stopped else "running",
        "stats": [_entry(r, share) for r in rows],
        "total_fail_per_sec": total["total_fail_per_sec"],
        "total_rps": total["total_rps"],
        "user_count": 0 if stopped else 4,
        "worker_count": WORKERS,
        "workers": [{"cpu_usage": 0.0, "id": f"worker-{i}", "memory_usage": 0,
                     "state": "ready" if stopped else "running", "user_count": 0 if stopped else 2}
                    for i in range(WORKERS)],
    }


def report_html(test: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\" />"
            "<title>Locust</title></head>\n"
            f"<body><h1>Locust test report: {test}</h1><p>{expected_requests(test)} requests</p>"
            "</body></html>\n")


# --- what hostile masters send -------------------------------------------------------------

_ENDLESS_ITEM = b'{"name": "x", "method": "GET", "num_requests": 1, "num_failures": 0},'
_CSV_ROW = b"GET,/x,1,0,1,1.0,1.0,1.0,2.0,1.0,0.0" + b",1" * len(PERCENTILE_COLUMNS) + b"\r\n"
_HTML_ROW = b"<div>" + b"x" * 250 + b"</div>\n"


def _chunk(item: bytes) -> bytes:
    return item * max(1, CHUNK_BYTES // len(item))


@functools.cache
def deep_bodies() -> tuple[bytes, ...]:
    """Valid JSON, DEEP arrays deep: bare, and inside a report. Python's json.loads
    raises RecursionError (not a ValueError) on it."""
    nested = b"[" * DEEP + b"]" * DEEP
    return nested, b'{"state": "running", "user_count": 1, "stats": ' + nested + b"}"


@functools.cache
def types_bodies() -> tuple[bytes, ...]:
    """/stats/requests bodies with the wrong types, one kind of wrong each."""
    base = stats_report("types-0", stopped=False)
    pct, p50, p95 = "current_response_time_percentiles", "response_time_percentile_0.5", \
        "response_time_percentile_0.95"
    variants: list[Any] = [
        {**base, "user_count": "4", "worker_count": "2", "total_rps": "12.5", "fail_ratio": "0.1",
         pct: {p50: "10", p95: "16"}},
        {**base, "user_count": 10**30, "worker_count": -(10**30), "total_rps": 10**30, "fail_ratio": 10**30,
         pct: {p50: 10**30, p95: -(10**30)}},
        {**base, "user_count": {"n": {"n": 4}}, "worker_count": [2], "total_rps": {"rps": 1.5},
         "fail_ratio": [0.1], pct: {p50: {"ms": 10}, p95: [16]}},
        # json.dumps writes the NaN, Infinity and -Infinity literals JSON itself does not have.
        {**base, "total_rps": math.nan, "fail_ratio": math.inf, pct: {p50: -math.inf, p95: math.nan}},
        [base],
        {**base, pct: [10, 16], "stats": {"Aggregated": 1}, "errors": {"e": 1}, "workers": "all"},
        {**base, "state": 7, "user_count": True, "worker_count": False, "fail_ratio": 5, "total_rps": -1},
        # A plausible "stopped" that sends the reader on to the CSV, which is wrong too.
        {**base, "state": "stopped", "worker_count": "2"},
    ]
    bodies = [json.dumps(v).encode() for v in variants]
    # Past Python's 4,300-digit limit for int(): json.loads raises ValueError on it.
    bodies.append(b'{"state": "running", "user_count": ' + b"9" * 5000 + b"}")
    bodies.append(b'{"state": "' + b"x" * HUGE_STATE_BYTES + b'", "user_count": 4}')
    return tuple(bodies)


@functools.cache
def types_csvs() -> tuple[str, ...]:
    """/stats/requests/csv texts with Locust's header and numbers that are not numbers,
    or out of range: int(float("nan")) raises ValueError, int(float("inf")) OverflowError."""
    header = ",".join(REQUESTS_HEADER)
    texts = []
    for count, percentile in (("NaN", "10"), ("inf", "10"), ("-inf", "10"), ("1e30", "10"), ("-5", "10"),
                              ("lots", "10"), ("9" * 5000, "10"), ("100", "NaN"), ("100", "1e400")):
        cells = ["", "Aggregated", count, "0", "10", "10.5", "7.0", "17.0", "2.0", "20.0", "0.0",
                 *[percentile] * len(PERCENTILE_COLUMNS)]
        texts.append(f"{header}\r\n{','.join(cells)}\r\n")
    texts.append(f"{header}\r\n,Aggregated,100\r\n")  # a short row
    texts.append(f"{header}\r\n,Aggregated,{','.join(['1'] * 40)}\r\n")  # a long one
    return tuple(texts)


# --- behaviours ------------------------------------------------------------------------------

@dataclass
class _Master:
    test: str
    first_seen: float = field(default_factory=time.monotonic)
    reads: Counter[str] = field(default_factory=Counter)

    def stopped(self) -> bool:
        return time.monotonic() - self.first_seen >= STOPS_AFTER_SECONDS

    def next_read(self, endpoint: str) -> int:
        """How many reads of `endpoint` came before this one."""
        self.reads[endpoint] += 1
        return self.reads[endpoint] - 1


Behaviour = Callable[[web.Request, _Master, str], Awaitable[web.StreamResponse]]


def _json(body: Any) -> web.Response:
    return web.Response(body=body if isinstance(body, bytes) else json.dumps(body).encode(),
                        content_type="application/json")


def _csv(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/csv")


async def _stream(request: web.Request, content_type: str, head: bytes, chunk: bytes,
                  interval: float = 0.0) -> web.StreamResponse:
    """`head`, then `chunk` over and over (chunked encoding, no length), until the client
    goes away or a bound is reached."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.force_close()  # no keep-alive after a body nobody read to the end
    await response.prepare(request)
    sent = 0
    # ConnectionResetError: the client went away between two writes (handler
    # cancellation covers the rest); TimeoutError: the time bound.
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        async with asyncio.timeout(MAX_STREAM_SECONDS):
            await response.write(head)
            while sent < MAX_STREAM_BYTES:
                if interval:
                    await asyncio.sleep(interval)
                await response.write(chunk)
                sent += len(chunk)
    return response


async def _normal(request: web.Request, master: _Master, endpoint: str) -> web.StreamResponse:
    if endpoint == STATS:
        return _json(stats_report(master.test, master.stopped()))
    if endpoint == REQUESTS_CSV:
        return _csv(requests_csv(master.test))
    if endpoint == FAILURES_CSV:
        return _csv(failures_csv(master.test))
    if endpoint == REPORT:
        return web.Response(text=report_html(master.test), content_type="text/html")
    if endpoint == STOP:
        return _json({"success": True, "message": "Test stopped"})
    raise web.HTTPNotFound()


async def _endless(request: web.Request, master: _Master, endpoint: str) -> web.StreamResponse:
    if endpoint == STOP:
        return await _normal(request, master, endpoint)
    return await _stream(request, "application/json", b'{"stats": [', _chunk(_ENDLESS_ITEM))


async def _drip(request: web.Request, master: _Master, endpoint: str) -> web.StreamResponse:
    return await _stream(request, "application/json", b"{", b" ", interval=DRIP_SECONDS)


async def _deep(request: web.Request, master: _Master, endpoint: str) -> web.StreamResponse:
    if endpoint == STATS:
        bodies = deep_bodies()
        return _json(bodies[master.next_read(endpoint) % len(bodies)])
    return await _normal(request, master, endpoint)


async def _hugecsv(request: web.Request, master: _Master, endpoint: str) -> web.StreamResponse:
    if endpoint == STATS:
        return _json(stats_report(master.test, stopped=True))
    if endpoint in (REQUESTS_CSV, FAILURES_CSV):
        header = ",".join(REQUESTS_HEADER if endpoint == REQUESTS_CSV else FAILURES_HEADER)
        return await _stream(request, "text/csv", f"{header}\r\n".encode(), _chunk(_CSV_ROW))
    return await _normal(request, master, endpoint)


async def _hugereport(request: web.Request, master: _Master, endpoint: str) -> web.StreamResponse:
    if endpoint == REPORT:
        head = b"<!DOCTYPE html>\n<html><head><title>Locust</title></head><body>\n"
        return await _stream(request, "text/html; charset=utf-8", head, _chunk(_HTML_ROW))
    return await _normal(request, master, endpoint)


async def _types(request: web.Request, master: _Master, endpoint: str) -> web.StreamResponse:
    if endpoint == STATS:
        bodies = types_bodies()
        return _json(bodies[master.next_read(endpoint) % len(bodies)])
    if endpoint == REQUESTS_CSV:
        texts = types_csvs()
        return _csv(texts[master.next_read(endpoint) % len(texts)])
    return await _normal(request, master, endpoint)


async def _hang(request: web.Request, master: _Master, endpoint: str) -> web.StreamResponse:
    await asyncio.sleep(MAX_STREAM_SECONDS)  # cancelled as soon as the client goes away
    raise web.HTTPServiceUnavailable()


BEHAVIOURS: dict[str, Behaviour] = {
    "normal": _normal, "endless": _endless, "drip": _drip, "deep": _deep, "hugecsv": _hugecsv,
    "hugereport": _hugereport, "types": _types, "hang": _hang,
}
assert set(BEHAVIOURS) == set(KINDS)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the server --------------------------------------------------------------------------------

class FakeMasters:
    """The running server: where it listens and what it was asked.

    The counters are written on the server's thread and read from the test's,
    hence the lock.
    """

    def __init__(self) -> None:
        self.port = 0
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._active = 0
        self._masters: dict[tuple[str, str], _Master] = {}

    @property
    def url_template(self) -> str:
        """The operator's statsUrlTemplate: `{namespace}` and `{service}` left to fill in."""
        return f"http://{HOST}:{self.port}/{{namespace}}/{{service}}/{STATS}"

    def url(self, namespace: str, test: str, endpoint: str = STATS) -> str:
        return f"http://{HOST}:{self.port}{self.path(namespace, test, endpoint)}"

    @staticmethod
    def path(namespace: str, test: str, endpoint: str = STATS) -> str:
        return f"/{namespace}/{test}-master/{endpoint}"

    def count(self, namespace: str, test: str, endpoint: str = STATS) -> int:
        """Requests so far to one endpoint of one master (any method, the query left out)."""
        with self._lock:
            return self._counts[self.path(namespace, test, endpoint)]

    def counts(self) -> dict[str, int]:
        """Requests so far, by path."""
        with self._lock:
            return dict(self._counts)

    def counts_by_endpoint(self) -> dict[str, int]:
        """Requests so far, by endpoint, all masters together."""
        totals: Counter[str] = Counter()
        for path, n in self.counts().items():
            totals[path.split("/", 3)[-1] if path.count("/") >= 3 else path] += n
        return dict(totals)

    @property
    def active(self) -> int:
        """Requests being answered now (streams and hangs included)."""
        with self._lock:
            return self._active

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._counting])
        app.router.add_route("*", "/{namespace}/{service}/{endpoint:.+}", self._handle)
        return app

    @web.middleware
    async def _counting(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with self._lock:
            self._counts[request.path] += 1
            self._active += 1
        try:
            return await handler(request)
        finally:
            with self._lock:
                self._active -= 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        namespace, service = request.match_info["namespace"], request.match_info["service"]
        test = service.removesuffix("-master")
        behaviour = BEHAVIOURS.get(test.split("-", 1)[0])
        if behaviour is None or test == service:
            raise web.HTTPNotFound(text=f"no fake master {service!r}")
        # Only the server's thread touches a _Master: no lock needed past this lookup.
        with self._lock:
            master = self._masters.setdefault((namespace, test), _Master(test))
        return await behaviour(request, master, request.match_info["endpoint"])


async def _start(masters: FakeMasters) -> web.AppRunner:
    # handler_cancellation: a client that goes away ends its handler (a stream, a
    # hang) at once. shutdown_timeout: hanging handlers must not hold up the end.
    runner = web.AppRunner(masters.app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0).start()
    masters.port = int(runner.addresses[0][1])
    return runner


async def _shutdown(runner: web.AppRunner) -> None:
    await runner.cleanup()
    rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    if rest:
        await asyncio.wait(rest, timeout=5)


@contextlib.contextmanager
def serve_masters() -> Iterator[FakeMasters]:
    """The fake masters' server, on its own event loop in a background thread."""
    masters = FakeMasters()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-masters", daemon=True)
    thread.start()
    try:
        runner = asyncio.run_coroutine_threadsafe(_start(masters), loop).result(timeout=30)
        try:
            yield masters
        finally:
            asyncio.run_coroutine_threadsafe(_shutdown(runner), loop).result(timeout=30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()


@contextlib.contextmanager
def blackhole() -> Iterator[str]:
    """A statsUrlTemplate whose port listens but never accepts: the first connections
    wait unanswered in the kernel's backlog, later ones never complete."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen(1)
        yield f"http://{HOST}:{sock.getsockname()[1]}/{{namespace}}/{{service}}/{STATS}"
