"""Live results: summarizing the master's /stats/requests and putting them in status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from locust_operator.rules.locust_stats import stats_url, summarize
from locust_operator.rules.observation import Observation
from locust_operator.rules.status import derive_status

REPORT = {
    "state": "running", "user_count": 20, "worker_count": 2, "total_rps": 153.456789,
    "fail_ratio": 0.0125, "current_response_time_percentiles": {
        "response_time_percentile_0.5": 12, "response_time_percentile_0.95": 87.5},
    "workers": [{"id": "a", "state": "running"}, {"id": "b", "state": "running"}],
    "stats": [], "errors": [],
}


@pytest.mark.parametrize(("report", "expected"), [
    (REPORT, {"state": "running", "userCount": 20, "workerCount": 2, "totalRps": "153.5",
              "failRatio": "0.0125", "responseTimeP50Ms": "12", "responseTimeP95Ms": "87.5"}),
    ({"state": "ready", "user_count": 0}, {"state": "ready", "userCount": 0}),
    ({"state": "exploded", "user_count": -1, "worker_count": True, "total_rps": float("nan"),
      "current_response_time_percentiles": {"response_time_percentile_0.5": None}}, {}),
    ({}, {}),
    ({"total_rps": 1234567.89, "fail_ratio": 1, "current_response_time_percentiles": []},
     {"totalRps": "1234567.9", "failRatio": "1"}),
    # A hostile master's wrong types and ranges: nothing of them reaches the status
    # (an int32 field over its range would make the API server refuse every status write).
    ({"state": "x" * 10_000_000, "user_count": 2**31, "worker_count": 10**30, "total_rps": 1e300,
      "fail_ratio": 1.5, "current_response_time_percentiles": {
          "response_time_percentile_0.5": float("inf"), "response_time_percentile_0.95": "12"}}, {}),
    ({"state": ["running"], "user_count": "5", "worker_count": 2.0, "total_rps": None,
      "fail_ratio": {"a": 1}, "current_response_time_percentiles": {
          "response_time_percentile_0.5": -1, "response_time_percentile_0.95": True}}, {}),
    ({"user_count": 2**31 - 1, "total_rps": 1e12, "fail_ratio": 0},
     {"userCount": 2**31 - 1, "totalRps": "1000000000000", "failRatio": "0"}),
    # Just past each bound: left out; the failure ratio to 4 places, response times to 1.
    ({"total_rps": 1e12 + 0.5, "fail_ratio": 0.012345, "current_response_time_percentiles": {
        "response_time_percentile_0.5": 153.27, "response_time_percentile_0.95": 1e9 + 0.5}},
     {"failRatio": "0.0123", "responseTimeP50Ms": "153.3"}),
    ({"current_response_time_percentiles": {"response_time_percentile_0.95": 1e9}},
     {"responseTimeP95Ms": "1000000000"}),
    # Workers over Locust's 90% CPU warning, up to 1e6 % (more is not a CPU percent); missing ones.
    ({"workers": [{"cpu_usage": 90}, {"cpu_usage": 90.5}, {"cpu_usage": 1e6}, {"cpu_usage": 1e6 + 0.5},
                  {"cpu_usage": "99"}, {"cpu_usage": 0}, {}, "junk",
                  {"state": "missing", "cpu_usage": 95}]},
     {"cpuSaturatedWorkerCount": 3, "missingWorkerCount": 1}),
])
def test_summarize(report: dict[str, Any], expected: dict[str, Any]) -> None:
    assert summarize(report) == expected


def test_stats_url() -> None:
    assert stats_url("http://{service}.{namespace}.svc:8089/stats/requests", "t-master", "ns") == \
        "http://t-master.ns.svc:8089/stats/requests"


def test_status_uses_the_workers_locust_sees_and_keeps_results_after_the_end() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    base = {"generation": 1, "expected_workers": 3, "now": now, "grace_seconds": 60, "service": True}
    running_jobs = {"master_job": {"ready": 1}, "worker_job": {"ready": 3}}
    live = summarize({**REPORT, "worker_count": 2})
    running = derive_status({}, Observation(**base, **running_jobs, locust=live)).status
    assert running["connectedWorkers"] == 2  # 3 pods are ready, but Locust sees 2
    workers = next(c for c in running["conditions"] if c["type"] == "WorkersConnected")
    assert workers["message"] == "2/3 workers connected (as the Locust master reports)"
    assert running["locust"]["totalRps"] == "153.5"
    done = derive_status(running, Observation(
        **base, master_job={"conditions": [{"type": "Complete", "status": "True"}]},
        worker_job={"succeeded": 3})).status
    assert done["phase"] == "Succeeded"
    assert done["locust"] == running["locust"]
