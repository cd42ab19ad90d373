"""Live results of a running test, read from the Locust master's REST API.

The master serves `GET /stats/requests` on its web port (8089). While a test
is Running the controller reads it every `statsPollSeconds` and puts a summary
in the status: the workers Locust actually sees connected (not just worker pods
that exist), users, request rate, failure ratio and response times.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import aiohttp

from locust_operator.results import decimal

# Locust's runner states, as its web API reports them.
_STATES = {"ready", "spawning", "running", "cleanup", "stopping", "stopped", "missing"}


def stats_url(template: str, service: str, namespace: str) -> str:
    return template.format(service=service, namespace=namespace)


def master_url(stats: str, path: str) -> str:
    """Another endpoint of the master whose /stats/requests is at `stats`, e.g. /stop."""
    base = stats.split("?", 1)[0]
    if base.endswith("/stats/requests"):
        base = base[: -len("/stats/requests")]
    return base.rstrip("/") + path


class StatsReader:
    """Reads masters' /stats/requests over one shared HTTP session.

    At most `concurrency` reads are in flight, so a thousand running tests
    never mean a thousand open connections.
    """

    def __init__(self, concurrency: int = 16, timeout: float = 3.0) -> None:
        self._limit = asyncio.Semaphore(concurrency)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, url: str) -> dict[str, Any] | None:
        """The master's /stats/requests JSON, or None if it cannot be read (yet)."""
        try:
            async with self._limit, self._connect().get(url) as response:
                if response.status != 200:
                    return None
                loaded = json.loads(await response.read())
        except (TimeoutError, OSError, ValueError, aiohttp.ClientError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def _connect(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def fetch_text(self, url: str, timeout: float = 30.0) -> str | None:
        """A text endpoint of the master (CSV, the HTML report), or None if unreadable."""
        try:
            async with self._limit, self._connect().get(
                    url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                if response.status != 200:
                    return None
                return (await response.read()).decode("utf-8", errors="replace")
        except (TimeoutError, OSError, aiohttp.ClientError):
            return None

    async def stop(self, url: str) -> bool:
        """Ask the master to stop its run; True if it said so.

        Newer Locust takes POST /stop; up to 2.43 (the pinned image) only GET, and
        answers a POST with 405 (found on the real node): then GET.
        """
        try:
            async with self._limit:
                async with self._connect().post(url) as response:
                    if response.status != 405:
                        return response.status == 200
                async with self._connect().get(url) as response:
                    return response.status == 200
        except (TimeoutError, OSError, aiohttp.ClientError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _decimal(value: Any, places: int) -> str | None:
    """A finite number as a plain decimal string ("153.5", "0.0125", "12"), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return decimal(value, places)


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The status summary of one /stats/requests report (pure; tolerant of missing keys)."""
    summary: dict[str, Any] = {}
    state = report.get("state")
    if isinstance(state, str) and state in _STATES:
        summary["state"] = state
    for source, target in (("user_count", "userCount"), ("worker_count", "workerCount")):
        value = report.get(source)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            summary[target] = value
    for source, target, places in (("total_rps", "totalRps", 1), ("fail_ratio", "failRatio", 4)):
        text = _decimal(report.get(source), places)
        if text is not None:
            summary[target] = text
    percentiles = report.get("current_response_time_percentiles")
    if isinstance(percentiles, dict):
        for source, target in (("response_time_percentile_0.5", "responseTimeP50Ms"),
                               ("response_time_percentile_0.95", "responseTimeP95Ms")):
            text = _decimal(percentiles.get(source), 1)
            if text is not None:
                summary[target] = text
    return summary
