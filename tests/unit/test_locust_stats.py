"""Live results: summarizing the master's /stats/requests and putting them in status."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from locust_operator.locust_stats import StatsReader, stats_url, summarize
from locust_operator.status import Observation, derive_status

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
])
def test_summarize(report: dict[str, Any], expected: dict[str, Any]) -> None:
    assert summarize(report) == expected


def test_stats_url() -> None:
    assert stats_url("http://{service}.{namespace}.svc:8089/stats/requests", "t-master", "ns") == \
        "http://t-master.ns.svc:8089/stats/requests"


class _Handler(http.server.BaseHTTPRequestHandler):
    body = json.dumps(REPORT).encode()

    def do_GET(self) -> None:
        if self.path != "/stats/requests":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


def test_fetch_reads_json_and_tolerates_failures() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    async def reads() -> list[Any]:
        reader = StatsReader(concurrency=2, timeout=0.5)
        try:
            found = await asyncio.gather(*(reader.fetch(f"{base}/stats/requests") for _ in range(5)))
            missing = await reader.fetch(f"{base}/missing")
            server.shutdown()
            server.server_close()
            gone = await reader.fetch(f"{base}/stats/requests")  # nothing listens any more
            return [*found, missing, gone]
        finally:
            await reader.close()

    assert asyncio.run(reads()) == [REPORT] * 5 + [None, None]


class _StopHandler(http.server.BaseHTTPRequestHandler):
    """A master's /stop: `post` True like newer Locust (POST only), False like Locust 2.43
    (GET only: a POST gets 405)."""

    post = True
    seen: ClassVar[list[str]] = []

    def _answer(self, method: str) -> None:
        self.seen.append(method)
        allowed = (method == "POST") == self.post
        self.send_response(200 if allowed else 405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("post", "methods"), [(True, ["POST"]), (False, ["POST", "GET"])])
def test_stop_posts_and_falls_back_to_get_for_older_locust(post: bool, methods: list[str]) -> None:
    handler = type("Handler", (_StopHandler,), {"post": post, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    async def stop() -> bool:
        reader = StatsReader(timeout=2)
        try:
            return await reader.stop(f"http://127.0.0.1:{server.server_address[1]}/stop")
        finally:
            await reader.close()
            server.shutdown()
            server.server_close()

    assert asyncio.run(stop()) is True
    assert handler.seen == methods


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
