"""Real Locust processes, started with exactly the args the operator renders.

A master and two workers run on loopback against a local HTTP server. This
proves the rendered distributed-mode flags work end to end: the master waits
for the expected workers, autostarts, runs, and quits with exit code 0.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.real_locust import http_target, locust_run


def _stats(web_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/stats/requests", timeout=2) as resp:
        loaded: dict[str, Any] = json.loads(resp.read())
        return loaded


def test_rendered_master_and_workers_run_a_real_test(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    with http_target() as target, locust_run(tmp_path, target) as run:
        assert "--expect-workers=2" in run.master_args and "--autostart" in run.master_args
        deadline = time.monotonic() + 90
        while run.master.poll() is None and time.monotonic() < deadline:
            try:
                stats = _stats(run.web_port)
            except OSError:
                stats = {}
            if stats.get("state") == "running" and stats.get("worker_count") == 2:
                seen = stats
            time.sleep(0.3)
        code = run.master.wait(timeout=60)
        for worker in run.workers:
            worker.wait(timeout=60)
        log = run.master_log()
    assert code == 0, log
    assert seen, f"never saw 2 connected workers in a running test:\n{log}"
    assert {w["state"] for w in seen["workers"]} <= {"running", "spawning"}
    assert "Aggregated" in log  # --only-summary prints the final table
    assert seen["user_count"] > 0
