"""Reads of a test's Locust master REST API, bounded in size, time and depth.

What answers on a master's web port is the test author's code, so every read
here stops at a size cap (checked on the declared length, then on the bytes as
they stream in), has a connect and a total timeout, and parses JSON only once
its nesting is known to be shallow (`bounded.loads`).

Budgets: live polls (`/stats/requests` every statsPollSeconds) and final
reads (the CSVs, the report, /stop) hold separate connection slots, so a
thousand polls of unreachable masters never delay the reads a verdict waits
for; and every body in flight draws on one byte budget (`ByteBudget`), so
memory is bounded by bytes, not by how many masters are slow: a master that
has not answered yet holds a slot but no memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp

from locust_operator.controller.kube_api import API_ERRORS
from locust_operator.rules.bounded import Refused, loads, mib

STATS, CSV, FAILURES, REPORT = "/stats/requests", "/stats/requests/csv", "/stats/failures/csv", \
    "/stats/report?download=1"
_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Limits:
    """Caps per endpoint (bytes) and timeouts (seconds), from the operator config."""

    stats_bytes: int = 1024 * 1024
    csv_bytes: int = 2 * 1024 * 1024
    report_bytes: int = 4 * 1024 * 1024
    connect_seconds: float = 1.0
    live_seconds: float = 3.0
    final_seconds: float = 15.0
    live_slots: int = 16
    final_slots: int = 32
    # Bytes of all bodies being read at once (a body over its cap is refused first).
    budget_bytes: int = 32 * 1024 * 1024

    def cap(self, endpoint: str) -> int:
        """The cap of one of the endpoints read (STATS, CSV, FAILURES, REPORT)."""
        return {CSV: self.csv_bytes, FAILURES: self.csv_bytes, REPORT: self.report_bytes}.get(
            endpoint, self.stats_bytes)


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a read gave: a value, or a refusal (`problem`), or neither (unreachable)."""

    value: Any = None
    problem: str | None = None


def master_url(stats: str, path: str) -> str:
    """Another endpoint of the master whose /stats/requests is at `stats`, e.g. /stop."""
    base = stats.split("?", 1)[0]
    if base.endswith(STATS):
        base = base[: -len(STATS)]
    return base.rstrip("/") + path


class ByteBudget:
    """Bytes that may sit in memory at once.

    A body of declared length reserves it whole before it is read (`take`, which
    waits: holders never wait for more, so there is no deadlock); a body of unknown
    length takes its chunks only while they fit (`try_take`), else the read ends.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._changed = asyncio.Condition()

    async def take(self, count: int) -> None:
        count = min(count, self.size)  # one read never waits forever
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= count)
            self.free -= count

    def try_take(self, count: int) -> bool:
        if self.free < count:
            return False
        self.free -= count
        return True

    async def give(self, count: int) -> None:
        async with self._changed:
            self.free = min(self.size, self.free + count)
            self._changed.notify_all()


class Busy(Exception):
    """The byte budget is spent by other reads: no answer this time."""


async def read_capped(response: aiohttp.ClientResponse, cap: int, what: str,
                      budget: ByteBudget | None = None) -> bytes:
    """The body, or Refused once it is over `cap` bytes (declared or streamed)."""
    declared = response.content_length
    if declared is not None and declared > cap:
        raise Refused(f"the master's {what} answer is over {mib(cap)}")
    reserved = 0
    if budget is not None and declared is not None:
        await budget.take(declared)
        reserved = min(declared, budget.size)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > cap:
                raise Refused(f"the master's {what} answer is over {mib(cap)}")
            if budget is not None and size > reserved:
                if not budget.try_take(size - reserved):
                    raise Busy
                reserved = size
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        if budget is not None and reserved:
            await budget.give(reserved)


# A read that gets no answer: no slot or bytes free (Busy), or the master's trouble.
_NO_ANSWER: tuple[type[Exception], ...] = (Busy, *API_ERRORS)


class MasterClient:
    """One HTTP session for every master; bounded reads under two budgets."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._live = asyncio.Semaphore(self.limits.live_slots)
        self._final = asyncio.Semaphore(self.limits.final_slots)
        self._bytes = ByteBudget(self.limits.budget_bytes)
        self._session: aiohttp.ClientSession | None = None

    def _connect(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No cookies kept, no proxy from the environment: each master is a stranger.
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                                  trust_env=False)
        return self._session

    def _timeout(self, final: bool) -> aiohttp.ClientTimeout:
        total = self.limits.final_seconds if final else self.limits.live_seconds
        return aiohttp.ClientTimeout(total=total, connect=self.limits.connect_seconds)

    async def _get(self, url: str, endpoint: str, final: bool) -> Answer:
        what = endpoint.split("?", 1)[0]  # as messages name it
        try:
            async with (self._final if final else self._live), self._connect().get(
                    url, timeout=self._timeout(final), allow_redirects=False) as response:
                if response.status != 200:
                    return Answer()
                return Answer(value=await read_capped(response, self.limits.cap(endpoint), what, self._bytes))
        except Refused as exc:
            return Answer(problem=str(exc))
        except _NO_ANSWER:
            return Answer()

    async def stats(self, url: str) -> Answer:
        """The master's /stats/requests (a live poll): a dict, a problem, or nothing."""
        answer = await self._get(url, STATS, final=False)
        if not isinstance(answer.value, bytes):
            return answer
        try:
            loaded = loads(answer.value)
        except Refused as exc:
            return Answer(problem=f"the master's {STATS} answer {exc}")
        if not isinstance(loaded, dict):
            return Answer(problem=f"the master's {STATS} answer is not a JSON object")
        return Answer(value=loaded)

    async def text(self, stats_url: str, endpoint: str) -> Answer:
        """A text endpoint (CSV, FAILURES, REPORT) of the master whose /stats/requests is at
        `stats_url`, read for the final results: str, problem or nothing."""
        answer = await self._get(master_url(stats_url, endpoint), endpoint, final=True)
        if isinstance(answer.value, bytes):
            return Answer(value=answer.value.decode("utf-8", errors="replace"))
        return answer

    async def stop(self, url: str) -> bool:
        """Ask the master to stop its run; True if it said so.

        Newer Locust takes POST /stop; up to 2.43 (the pinned image) only GET, and
        answers a POST with 405 (found on the real node): then GET.
        """
        timeout = self._timeout(final=True)
        try:
            async with self._final:
                async with self._connect().post(url, timeout=timeout, allow_redirects=False) as response:
                    if response.status != 405:
                        return response.status == 200
                async with self._connect().get(url, timeout=timeout, allow_redirects=False) as response:
                    return response.status == 200
        except API_ERRORS:
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
