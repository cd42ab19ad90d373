"""Real Locust processes, started with exactly the args the operator renders.

A master and two workers run on loopback against a local HTTP server; only
ports and hosts are moved off the in-cluster defaults (via extraArgs, which
come last and win, as they would for a user).  This proves the rendered
distributed-mode flags work end to end: the master waits for the expected
workers, autostarts, runs, and quits with exit code 0.
"""

from __future__ import annotations

import copy
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from locust_operator.config import OperatorConfig
from locust_operator.render import render
from tests.conftest import BASE_TEST, EXAMPLES


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Target(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def target() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _locustfile(directory: Path) -> Path:
    configmap = next(d for d in yaml.safe_load_all((EXAMPLES / "configmaps.yaml").read_text())
                     if d["metadata"]["name"] == "demo-locustfile")
    path = directory / "demo.py"
    path.write_text(configmap["data"]["demo.py"])
    return path


def _args(objects: list[dict[str, Any]], role: str) -> list[str]:
    job = next(o for o in objects if o["kind"] == "Job"
               and o["metadata"]["labels"]["app.kubernetes.io/component"] == role)
    args: list[str] = job["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def _stats(web_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/stats/requests", timeout=2) as resp:
        loaded: dict[str, Any] = json.loads(resp.read())
        return loaded


def test_rendered_master_and_workers_run_a_real_test(tmp_path: Path, target: str) -> None:
    locustfile = _locustfile(tmp_path)
    master_port, web_port = _free_port(), _free_port()
    test = copy.deepcopy(BASE_TEST)
    spec = test["spec"]
    spec["worker"]["replicas"] = 2
    spec["master"]["command"] = f"--locustfile {locustfile} --host {target} -u 4 -r 4 --run-time 6s"
    spec["master"]["autoquit"] = {"enabled": True, "timeout": 1}
    spec["master"]["extraArgs"] = [f"--master-bind-port={master_port}", "--master-bind-host=127.0.0.1",
                                   f"--web-port={web_port}", "--web-host=127.0.0.1"]
    spec["worker"]["command"] = f"--locustfile {locustfile}"
    spec["worker"]["extraArgs"] = [f"--master-port={master_port}", "--master-host=127.0.0.1"]
    objects = render(test, OperatorConfig())
    master_args, worker_args = _args(objects, "master"), _args(objects, "worker")
    assert "--expect-workers=2" in master_args and "--autostart" in master_args

    locust = [sys.executable, "-m", "locust"]
    logs = tmp_path / "logs"
    logs.mkdir()
    master = subprocess.Popen([*locust, *master_args], cwd=tmp_path,
                              stdout=(logs / "master.log").open("w"), stderr=subprocess.STDOUT)
    workers = [subprocess.Popen([*locust, *worker_args], cwd=tmp_path,
                                stdout=(logs / f"worker{i}.log").open("w"), stderr=subprocess.STDOUT)
               for i in range(2)]
    seen: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 90
        while master.poll() is None and time.monotonic() < deadline:
            try:
                stats = _stats(web_port)
            except OSError:
                stats = {}
            if stats.get("state") == "running" and stats.get("worker_count") == 2:
                seen = stats
            time.sleep(0.3)
        code = master.wait(timeout=60)
        for worker in workers:
            worker.wait(timeout=60)
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
    log = (logs / "master.log").read_text()
    assert code == 0, log
    assert seen, f"never saw 2 connected workers in a running test:\n{log}"
    assert {w["state"] for w in seen["workers"]} <= {"running", "spawning"}
    assert "Aggregated" in log  # --only-summary prints the final table
    assert seen["user_count"] > 0
