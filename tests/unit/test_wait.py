"""`locust-operator wait` without a cluster: durations, exit codes, the list-then-watch loop.

The loop runs against a fake API that answers lists and watch streams from a
script, so re-lists (410 Gone, a watch the server ended), retries and every
way the wait ends are checked one by one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from locust_operator.cli.wait import PhasePrinter, WaitError, exit_code, follow, parse_duration
from locust_operator.controller.kube_api import ApiError

NO_DELAYS = (0.0, 0.0)
LIST = "/apis/locust.io/v2/namespaces/load/locusttests?fieldSelector=metadata.name%3Ddemo"


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5),
    ("2m30s", 150), (" 45s ", 45), ("0", 0), ("0s", 0),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "10x", "m", "1h 30m", "-5s", "1d", "s10", "10m!"])
def test_bad_durations_name_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"use e\.g\. 90s, 10m, 1h"):
        parse_duration(text)


@pytest.mark.parametrize(("status", "code"), [
    ({"phase": "Succeeded"}, 0), ({"phase": "Failed"}, 1), ({"phase": "Running"}, 2),
    ({"phase": "Pending"}, 2), ({}, 2), (None, 2),
])
def test_exit_codes(status: dict[str, Any] | None, code: int) -> None:
    assert exit_code({"status": status}) == code


def _test(phase: str | None, version: str = "1") -> dict[str, Any]:
    test: dict[str, Any] = {"metadata": {"name": "demo", "resourceVersion": version}}
    if phase:
        test["status"] = {"phase": phase}
    return test


def _listed(*tests: dict[str, Any], version: str = "10") -> dict[str, Any]:
    return {"metadata": {"resourceVersion": version}, "items": list(tests)}


def _event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


class FakeApi:
    """Answers each list and each watch with the next scripted answer."""

    def __init__(self, lists: list[Any], watches: list[Any]) -> None:
        self.lists = lists
        self.watches = watches
        self.paths: list[str] = []

    async def get_json(self, path: str) -> dict[str, Any]:
        self.paths.append(path)
        answer = self.lists.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    async def stream_lines(self, path: str) -> AsyncIterator[bytes]:
        self.paths.append(path)
        answer = self.watches.pop(0)
        if isinstance(answer, Exception):
            raise answer
        for item in answer:
            if isinstance(item, Exception):
                raise item
            yield json.dumps(item).encode()


def _follow(api: FakeApi) -> tuple[dict[str, Any], list[str | None]]:
    seen: list[str | None] = []

    def record(test: dict[str, Any]) -> None:
        seen.append((test.get("status") or {}).get("phase"))

    final = asyncio.run(follow(api, "load", "demo", record, retry_delays=NO_DELAYS))
    return final, seen


def test_lists_then_watches_from_the_listed_version_until_terminal() -> None:
    api = FakeApi([_listed(_test(None))], [[
        _event("BOOKMARK", {"metadata": {"resourceVersion": "11"}}),
        _event("MODIFIED", _test("Pending")),
        _event("MODIFIED", _test("Running")),
        _event("MODIFIED", _test("Succeeded")),
        _event("MODIFIED", _test("Failed")),  # never read: the wait ended
    ]])
    final, seen = _follow(api)
    assert final["status"]["phase"] == "Succeeded"
    assert seen == [None, "Pending", "Running", "Succeeded"]
    assert api.paths == [LIST, f"{LIST}&watch=1&allowWatchBookmarks=true&resourceVersion=10"
                               "&timeoutSeconds=300"]


def test_an_already_finished_test_ends_at_the_list() -> None:
    api = FakeApi([_listed(_test("Failed"))], [])
    assert _follow(api) == (_test("Failed"), ["Failed"])


@pytest.mark.parametrize("watch_end", [
    [_event("MODIFIED", _test("Running"))],  # the server ended the watch
    [_event("ERROR", {"code": 410, "message": "too old resource version"})],
    [_event("MODIFIED", _test("Running")), aiohttp.ClientPayloadError("connection reset")],
    ApiError(503, "unavailable"),
])
def test_lists_again_when_a_watch_ends_or_expires(watch_end: Any) -> None:
    api = FakeApi([_listed(_test("Pending")), _listed(_test("Succeeded"), version="20")], [watch_end])
    final, seen = _follow(api)
    assert final["status"]["phase"] == "Succeeded"
    assert seen[0] == "Pending" and seen[-1] == "Succeeded"
    assert api.paths[-1] == LIST


def test_connection_errors_after_the_first_list_are_retried_then_given_up() -> None:
    api = FakeApi([_listed(_test("Running")), OSError("refused"),
                   _listed(_test("Succeeded"))], [[]])
    assert _follow(api)[0]["status"]["phase"] == "Succeeded"

    failing: list[Any] = [OSError("refused")] * (len(NO_DELAYS) + 1)
    api = FakeApi([_listed(_test("Running")), *failing], [[]])
    with pytest.raises(OSError, match="refused"):
        _follow(api)
    assert api.lists == []


@pytest.mark.parametrize("error", [OSError("connection refused"), ApiError(503, "unavailable"),
                                   ApiError(403, "forbidden")])
def test_the_first_list_is_not_retried(error: Exception) -> None:
    api = FakeApi([error, _listed(_test("Succeeded"))], [])
    with pytest.raises(type(error)):
        _follow(api)


def test_a_refusal_during_the_watch_is_not_retried() -> None:
    api = FakeApi([_listed(_test("Running"))],
                  [[_event("ERROR", {"code": 403, "message": "forbidden"})]])
    with pytest.raises(ApiError, match="403 forbidden"):
        _follow(api)


@pytest.mark.parametrize(("lists", "watches", "message"), [
    ([_listed()], [], "demo: no LocustTest demo in namespace load"),
    ([_listed(_test("Running"))], [[_event("DELETED", _test("Running"))]],
     "demo: deleted before it finished"),
])
def test_a_missing_or_deleted_test_ends_the_wait(lists: list[Any], watches: list[Any],
                                                  message: str) -> None:
    with pytest.raises(WaitError) as error:
        _follow(FakeApi(lists, watches))
    assert str(error.value) == message


def test_the_printer_prints_phase_changes_only() -> None:
    lines: list[str] = []
    printer = PhasePrinter("demo", lines.append, lambda: "12:00:00")
    running = {"status": {"phase": "Running", "expectedWorkers": 2, "connectedWorkers": 1}}
    for test in ({}, {"status": {"phase": "Pending"}}, running,
                 {"status": {**running["status"], "connectedWorkers": 2}}, {"status": {"phase": "Failed"}}):
        printer(test)
    assert lines == [
        "12:00:00 demo: no status yet (is the operator running?)",
        "12:00:00 demo: Pending",
        "12:00:00 demo: Running (1/2 workers connected)",
        "12:00:00 demo: Failed",
    ]
    assert printer.last == {"status": {"phase": "Failed"}}
