"""Start a real Locust master and workers on loopback with the args `render` produces."""

from __future__ import annotations

import contextlib
import copy
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import render
from tests.support.examples import BASE_TEST, EXAMPLES
from tests.support.ports import free_port


class _Server(http.server.ThreadingHTTPServer):
    latency = 0.0  # seconds before each answer
    fail_every = 0  # every Nth request of a path answers 500 (0: none)
    counts: dict[str, int]


class _Target(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        count = self.server.counts[self.path] = self.server.counts.get(self.path, 0) + 1
        if self.server.latency:
            time.sleep(self.server.latency)
        failing = self.server.fail_every and count % self.server.fail_every == 0
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def http_target(latency_ms: int = 0, fail_every: int = 0) -> Iterator[str]:
    """A tiny HTTP server on loopback for Locust to load: `latency_ms` per answer,
    and every `fail_every`-th request of each path answers 500."""
    server = _Server(("127.0.0.1", 0), _Target)
    server.latency, server.fail_every, server.counts = latency_ms / 1000, fail_every, {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _args(objects: list[dict[str, Any]], role: str) -> list[str]:
    job = next(o for o in objects if o["kind"] == "Job"
               and o["metadata"]["labels"]["app.kubernetes.io/component"] == role)
    args: list[str] = job["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


@dataclass
class LocustRun:
    master: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    web_port: int
    master_args: list[str]
    logs: Path

    def master_log(self) -> str:
        return (self.logs / "master.log").read_text()


@contextmanager
def locust_run(workdir: Path, target: str, workers: int = 2, run_time: str = "6s",
               autoquit: int = 1, started_workers: int | None = None,
               config: OperatorConfig | None = None, locustfile_text: str | None = None,
               users: int = 4, processes: int = 1) -> Iterator[LocustRun]:
    """Render a LocustTest for the demo locustfile, then run its master and workers.

    Only ports and hosts move off the in-cluster defaults, through extraArgs
    (which come last and win, as they would for a user). Each worker process stands
    for a pod: with `processes` it forks that many Locust workers, as a pod would, in
    its own process group so that all of them are ended.
    """
    configmap = next(d for d in yaml.safe_load_all((EXAMPLES / "configmaps.yaml").read_text())
                     if d["metadata"]["name"] == "demo-locustfile")
    locustfile = workdir / "demo.py"
    locustfile.write_text(locustfile_text or configmap["data"]["demo.py"])
    master_port, web_port = free_port(), free_port()
    test = copy.deepcopy(BASE_TEST)
    spec = test["spec"]
    spec["worker"]["replicas"] = workers
    if processes > 1:
        spec["worker"]["processes"] = processes
    spec["master"]["command"] = (f"--locustfile {locustfile} --host {target} -u {users} -r {users} "
                                 f"--run-time {run_time}")
    spec["master"]["autoquit"] = {"enabled": True, "timeout": autoquit}
    spec["master"]["extraArgs"] = [f"--master-bind-port={master_port}", "--master-bind-host=127.0.0.1",
                                   f"--web-port={web_port}", "--web-host=127.0.0.1"]
    spec["worker"]["command"] = f"--locustfile {locustfile}"
    spec["worker"]["extraArgs"] = [f"--master-port={master_port}", "--master-host=127.0.0.1"]
    objects = render(test, config or OperatorConfig())
    master_args, worker_args = _args(objects, "master"), _args(objects, "worker")
    locust = [sys.executable, "-m", "locust"]
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    master = subprocess.Popen([*locust, *master_args], cwd=workdir,
                              stdout=(logs / "master.log").open("w"), stderr=subprocess.STDOUT)
    procs = [subprocess.Popen([*locust, *worker_args], cwd=workdir, start_new_session=True,
                              stdout=(logs / f"worker{i}.log").open("w"), stderr=subprocess.STDOUT)
             for i in range(workers if started_workers is None else started_workers)]
    try:
        yield LocustRun(master, procs, web_port, master_args, logs)
    finally:
        for proc in procs:  # the pods' forked workers too (a worker outlives a killed parent)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in (master, *procs):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
