"""A scheduled series on the real node: its own target (whose latency the test raises),
its locustfile, and a LocustTestSchedule whose runs compare with the last passed one.

Used by tests/integration/test_real_e2e.py: the target is deployed with the other
scenarios, the schedule once they are done (its runs would load the node meanwhile).
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.probes import serving_once_up

SCHEDULE = "nightly"
TARGET = "series-target"
# Waits DELAY_MS before each answer: BASE_DELAY_MS at first, SLOW_DELAY_MS before the third run.
# The base keeps p95 well above a loaded node's jitter of a few milliseconds (a p95 of
# 12 ms vs 20 ms is +67%: a run regressed without the target changing).
BASE_DELAY_MS, SLOW_DELAY_MS = 50, 400
TARGET_SCRIPT = """
import http.server
import os
import time

DELAY = int(os.environ.get("DELAY_MS", "0")) / 1000


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(DELAY)
        body = b"ok\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


Server(("", 8080), Handler).serve_forever()
"""
LOCUSTFILE = """
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.1)

    @task
    def visit(self):
        self.client.get("/checkout")
"""


def _configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _target(image: str, delay_ms: int) -> list[dict[str, Any]]:
    labels = {"app": TARGET}
    container = {
        "name": "target", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "/srv/target.py"], "ports": [{"containerPort": 8080}],
        "env": [{"name": "DELAY_MS", "value": str(delay_ms)}],
        **serving_once_up("/", 8080),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "script", "mountPath": "/srv"}],
    }
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": TARGET},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  # The slow target replaces the fast one before it answers: no run sees both.
                  "strategy": {"type": "Recreate"},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000},
                      "terminationGracePeriodSeconds": 1, "containers": [container],
                      "volumes": [{"name": "script", "configMap": {"name": f"{TARGET}-script"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": TARGET},
         "spec": {"selector": labels, "ports": [{"port": 8080, "targetPort": 8080}]}},
    ]


def series_objects(image: str) -> list[dict[str, Any]]:
    """The target and the locustfile."""
    return [_configmap(f"{TARGET}-script", {"target.py": TARGET_SCRIPT}),
            _configmap("series-locustfile", {"series.py": LOCUSTFILE}), *_target(image, BASE_DELAY_MS)]


def schedule(image: str) -> dict[str, Any]:
    """A run a minute, each compared with the last passed run (p95 at most twice as high); the
    newest run alone keeps its HTML report."""
    files = "/lotest/src/series.py"
    return {
        "apiVersion": "locust.io/v2", "kind": "LocustTestSchedule", "metadata": {"name": SCHEDULE},
        "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid", "successfulRunsHistoryLimit": 5,
                 "failedRunsHistoryLimit": 2, "keepReportRuns": 1, "template": {"spec": {
                     "image": image,
                     "master": {"command": f"--locustfile {files} --host http://{TARGET}:8080 -u 2 -r 2 "
                                           "--run-time 12s", "autoquit": {"timeout": 20}},
                     "worker": {"command": f"--locustfile {files}", "replicas": 1},
                     "testFiles": {"configMapRef": "series-locustfile"},
                     "baseline": {"responseTimeMs": {"p95": "+100%"}},
                 }}}}


def slow_target(image: str, delay_ms: int) -> str:
    """The target's Deployment answering `delay_ms` later (kubectl apply input)."""
    return json.dumps(_target(image, delay_ms)[0])
