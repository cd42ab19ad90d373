"""ResultsKeeper.keep: the ConfigMaps it writes (the report apart for a schedule's run with
keepReportRuns), the per-request numbers and the baseline it adds to status.result."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from locust_operator.controller.kube_api import ApiError
from locust_operator.controller.results_keeper import ResultsKeeper
from locust_operator.rules.results import RequestStats, RunStats

CSV = "Type,Name,Request Count\n"


class FakeApi:
    def __init__(self, series: list[dict[str, Any]] | Exception | None = None) -> None:
        self.created: list[dict[str, Any]] = []
        self.series = series or []
        self.selectors: list[str] = []

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.created.append(obj)
        return {**obj, "metadata": {**obj["metadata"], "uid": f"uid-of-{obj['metadata']['name']}"}}

    async def list_labelled(self, kind: str, namespace: str, selector: str, limit: int,
                            cap: int) -> list[dict[str, Any]]:
        self.selectors.append(f"{kind} {namespace} {selector}")
        if isinstance(self.series, Exception):
            raise self.series
        return self.series


def _stats() -> RunStats:
    def one(method: str, name: str, p95: int) -> RequestStats:
        return RequestStats(method=method, name=name, requests=100, failures=0, avg_ms=10, max_ms=50, rps=10,
                            percentiles=(5, 6, 7, 8, 9, p95, 11, 12, 13, 14, 15))
    return RunStats(requests=(one("GET", "/a", 150),), total=one("", "Aggregated", 150), duration_seconds=10)


def _test(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "nightly-1", "namespace": "team", "uid": "t1",
                         "labels": {"locust.io/series": "nightly"}, "annotations": annotations or {}},
            "spec": spec}


def _keep(api: FakeApi, test: dict[str, Any], html: str | None = "<html>report</html>") -> dict[str, Any]:
    keeper = ResultsKeeper(api, master=None, log_limit_bytes=1024)  # type: ignore[arg-type]
    return asyncio.run(keeper.keep(test, _stats(), "MasterApi", {}, None, CSV, None, html))


def _keys(configmap: dict[str, Any]) -> set[str]:
    return {*configmap.get("data", {}), *configmap.get("binaryData", {})}


def test_the_report_is_kept_with_the_results_by_default() -> None:
    api = FakeApi()
    result = _keep(api, _test())
    (configmap,) = api.created
    assert configmap["metadata"]["name"] == "nightly-1-results"
    assert _keys(configmap) == {"result.json", "requests.csv", "report.html"}
    assert result["report"] == {"configMap": "nightly-1-results",
                                "keys": ["result.json", "requests.csv", "report.html"]}


def test_a_schedules_run_keeps_its_report_apart_and_its_uid() -> None:
    api = FakeApi()
    result = _keep(api, _test({"operator.locust.io/separate-report": "true"}))
    results, report = api.created
    assert _keys(results) == {"result.json", "requests.csv"}
    assert report["metadata"]["name"] == "nightly-1-report"
    assert report["data"] == {"report.html": "<html>report</html>"}
    assert report["metadata"]["ownerReferences"][0]["uid"] == "t1"
    assert report["metadata"]["labels"]["app.kubernetes.io/component"] == "report"
    assert result["report"]["keys"] == ["result.json", "requests.csv"]
    assert result["report"]["reportConfigMap"] == {"name": "nightly-1-report",
                                                   "uid": "uid-of-nightly-1-report"}
    # No HTML (results from the log): nothing apart.
    api = FakeApi()
    assert "reportConfigMap" not in _keep(api, _test({"operator.locust.io/separate-report": "true"}),
                                          html=None)["report"]
    assert len(api.created) == 1


def test_per_request_numbers_and_the_baseline_are_in_the_result() -> None:
    previous = {"metadata": {"name": "nightly-0"}, "status": {
        "phase": "Succeeded", "completionTime": "2026-12-01T03:10:00Z",
        "result": {"requests": 90, "rps": "10", "failRatio": "0", "responseTimeMs": {"p95": 100}}}}
    api = FakeApi([previous])
    result = _keep(api, _test(baseline={"responseTimeMs": {"p95": "+10%"}},
                              thresholds={"perRequest": [{"name": "/a"}]}))
    assert api.selectors == ["LocustTest team locust.io/series=nightly"]
    assert [(e["method"], e["name"]) for e in result["perRequest"]] == [("GET", "/a")]
    assert result["baseline"]["runs"] == ["nightly-0"]
    assert result["baseline"]["breaches"] == ["p95 150 ms vs 100 ms in nightly-0 (+50% > +10%)"]


@pytest.mark.parametrize(("series", "error"), [
    (ApiError(403, "forbidden"), "spec.baseline: cannot list the runs of series 'nightly': 403 forbidden"),
    (OSError("connection refused"),
     "spec.baseline: cannot list the runs of series 'nightly': connection refused"),
    ([], None),
])
def test_a_series_that_cannot_be_read_is_a_baseline_error(series: Any, error: str | None) -> None:
    result = _keep(FakeApi(series), _test(baseline={}))
    assert result["baseline"].get("error") == error
    assert result["baseline"]["passed"] is (error is None)


def test_without_a_series_label_the_baseline_says_so_without_listing() -> None:
    api = FakeApi()
    test = _test(baseline={})
    test["metadata"]["labels"] = {}
    result = _keep(api, test)
    assert api.selectors == []
    assert result["baseline"]["error"].startswith("spec.baseline: the test has no label locust.io/series")
