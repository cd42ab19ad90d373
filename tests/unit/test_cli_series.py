"""cli/series.py: which run `wait --schedule` follows, and a kept result.json read back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from locust_operator.cli.kept_report import ReportError
from locust_operator.cli.series import next_run, result_document, series_runs
from locust_operator.controller.kube_api import ApiError

SCHEDULE_PATH = "/apis/locust.io/v2/namespaces/team/locusttestschedules/nightly"


class FakeApi:
    """get_json by path; list_labelled answers the next of `lists` (the last one repeats)."""

    def __init__(self, objects: dict[str, Any], lists: list[list[str]] | None = None) -> None:
        self.objects = objects
        self.lists = lists or [[]]
        self.selectors: list[str] = []

    async def get_json(self, path: str) -> dict[str, Any]:
        found = self.objects.get(path)
        if found is None:
            raise ApiError(404, "not found")
        if isinstance(found, Exception):
            raise found
        return dict(found)

    async def list_labelled(self, kind: str, namespace: str, selector: str, limit: int,
                            cap: int) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        names = self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]
        return [{"metadata": {"name": n}} for n in names]


def _next(api: FakeApi, lines: list[str]) -> str:
    return asyncio.run(next_run(api, "team", "nightly", lines.append, poll_seconds=0))  # type: ignore[arg-type]


def test_the_live_run_is_followed() -> None:
    api = FakeApi({SCHEDULE_PATH: {"status": {"live": ["nightly-20261201-0300", "nightly-20261202-0300"]}}})
    lines: list[str] = []
    assert _next(api, lines) == "nightly-20261202-0300"
    assert lines == [] and api.selectors == []


def test_else_the_next_run_it_starts() -> None:
    api = FakeApi({SCHEDULE_PATH: {"status": {"nextScheduleTime": "2026-12-02T03:00:00Z"}}},
                  lists=[["nightly-20261201-0300"], ["nightly-20261201-0300"],
                         ["nightly-20261201-0300", "nightly-20261202-0300"]])
    lines: list[str] = []
    assert _next(api, lines) == "nightly-20261202-0300"
    assert lines == ["nightly: waiting for the next run (due 2026-12-02T03:00:00Z)"]
    assert set(api.selectors) == {"locust.io/schedule=nightly"}


@pytest.mark.parametrize(("answer", "error"), [
    (None, "nightly: no LocustTestSchedule nightly in namespace team"),
    (ApiError(403, "forbidden"), "403 forbidden"),
])
def test_no_schedule_is_one_line(answer: Any, error: str) -> None:
    api = FakeApi({SCHEDULE_PATH: answer} if answer else {})
    with pytest.raises((ReportError, ApiError), match=error):
        _next(api, [])


def test_a_result_json_that_is_not_json_is_one_line() -> None:
    test_path = "/apis/locust.io/v2/namespaces/team/locusttests/r1"
    objects = {test_path: {"status": {"phase": "Succeeded"}},
               "/api/v1/namespaces/team/configmaps/r1-results": {"data": {"result.json": "{not json"}}}
    with pytest.raises(ReportError, match=r"^r1: result.json is not JSON \("):
        asyncio.run(result_document(FakeApi(objects), "team", "r1"))  # type: ignore[arg-type]
    objects["/api/v1/namespaces/team/configmaps/r1-results"] = {"data": {"result.json": '{"requests": []}'}}
    assert asyncio.run(result_document(FakeApi(objects), "team", "r1")) == {"requests": []}  # type: ignore[arg-type]


def test_series_runs_are_listed_by_label() -> None:
    api = FakeApi({}, lists=[["checkout-1"]])
    assert asyncio.run(series_runs(api, "team", "checkout")) == [{"metadata": {"name": "checkout-1"}}]  # type: ignore[arg-type]
    assert api.selectors == ["locust.io/series=checkout"]
