"""`locust-operator wait`: follow one LocustTest until it succeeds or fails.

The test is listed (by name), then watched from the list's resourceVersion as
Kubernetes clients do; when the watch ends (the server's timeout, a dropped
connection, 410 Gone) the test is listed again, so a missed event cannot leave
the command waiting for a phase that was already reached (controller/list_watch.py). Once the test was
listed, connection errors and the API server's 5xx/429 answers are retried
for about a minute; anything else ends the wait with one line.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import Any

from locust_operator.api.contract import KIND, TERMINAL
from locust_operator.cli.status_lines import phase, phase_line
from locust_operator.controller.kube_api import API_ERRORS, ApiError, backoff, collection_path
from locust_operator.controller.list_watch import Expired, ListWatch, Streams

Object = dict[str, Any]

# Exit codes: the test succeeded, the test failed, the wait could not tell.
SUCCEEDED, FAILED, UNKNOWN = 0, 1, 2
# Consecutive failed attempts to reach the API server (about a minute), then give up.
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 10.0, 15.0, 15.0)
WATCH_SECONDS = 300  # the server ends each watch after this; the test is listed again

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


class WaitError(Exception):
    """The wait cannot go on (the message is one line for the user)."""


def parse_duration(text: str) -> float:
    """Seconds in a duration like kubectl's: 90s, 10m, 1h, 1h30m, 1.5h, 500ms (0 alone is 0)."""
    cleaned = text.strip()
    if cleaned == "0":
        return 0.0
    if not cleaned or _DURATION.sub("", cleaned):
        raise ValueError(f"{text!r} is not a duration: use e.g. 90s, 10m, 1h or 1h30m")
    return sum(float(number) * _UNITS[unit] for number, unit in _DURATION.findall(cleaned))


def exit_code(test: Mapping[str, Any]) -> int:
    """0 when the test succeeded, 1 when it failed, 2 while it has not finished."""
    return {"Succeeded": SUCCEEDED, "Failed": FAILED}.get(phase(test), UNKNOWN)


def _retriable(exc: Exception) -> bool:
    if isinstance(exc, ApiError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, API_ERRORS)


async def follow(api: Streams, namespace: str, name: str, seen: Callable[[Object], None],
                 retry_delays: tuple[float, ...] = RETRY_DELAYS) -> Object:
    """Call `seen` with every state of the test observed, until one is terminal; return that one.

    Raises WaitError when the test does not exist or is deleted, ApiError when
    the API server refuses (e.g. 403), and the connection error when the first
    list fails or, after that, once the retries are spent.
    """
    by_name = f"{collection_path(KIND, namespace)}?fieldSelector=metadata.name%3D{name}"
    one_test = ListWatch(api, by_name, WATCH_SECONDS)
    failures = 0
    listed_once = False  # the first list fails at once: a wrong server or namespace is not a blip
    while True:
        try:
            items = (await one_test.list()).get("items") or []
            failures, listed_once = 0, True
            if not items:
                raise WaitError(f"{name}: no LocustTest {name} in namespace {namespace}")
            test: Object = items[0]
            seen(test)
            if phase(test) in TERMINAL:
                return test
            async for kind, obj in one_test.events():
                if kind == "DELETED":
                    raise WaitError(f"{name}: deleted before it finished")
                seen(obj)
                if phase(obj) in TERMINAL:
                    return obj
        except Expired:
            continue
        except API_ERRORS as exc:
            if not listed_once or not _retriable(exc) or failures >= len(retry_delays):
                raise
            await asyncio.sleep(backoff(retry_delays, failures))
            failures += 1


class PhasePrinter:
    """Prints a line whenever the phase changes (the first state seen counts as a change)."""

    def __init__(self, name: str, echo: Callable[[str], None], clock: Callable[[], str]) -> None:
        self.name = name
        self.last: Object = {}
        self._echo = echo
        self._clock = clock
        self._phase: str | None = None

    def __call__(self, test: Object) -> None:
        self.last = test
        if phase(test) != self._phase:
            self._phase = phase(test)
            self._echo(phase_line(self.name, test, self._clock()))
