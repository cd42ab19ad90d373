#!/usr/bin/env python3
"""Controller numbers on a running local control plane (scripts/cluster up).

  KUBECONFIG=.cluster/kubeconfig python benchmarks/bench_operator.py [--latency-runs 20] [--tests 200]

Measures, with the controller as a real process:
- time from `kubectl apply` of a LocustTest to its Service and both Jobs
  existing (median and p90 over --latency-runs tests, created one at a time);
- API writes per test (from the controller's own counter);
- controller RSS idle, and after --tests LocustTests were created and tracked.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def _test(name: str) -> dict:
    test = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    test["metadata"]["name"] = name
    test["spec"]["worker"]["replicas"] = 1
    return test


def _kubectl(*args: str, stdin: str | None = None) -> None:
    subprocess.run(["kubectl", *args], input=stdin, text=True, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--tests", type=int, default=200)
    options = parser.parse_args()
    config.load_kube_config()
    api = client.ApiClient()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    namespace = f"bench-{secrets.token_hex(3)}"
    _kubectl("create", "namespace", namespace)
    _kubectl("-n", namespace, "apply", "-f", str(EXAMPLES / "configmaps.yaml"))
    metrics_port, liveness_port = _free_port(), _free_port()
    workdir = Path(tempfile.mkdtemp())
    log = (workdir / "operator.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "locust_operator", "run", "--namespace", namespace,
                             "--metrics-port", str(metrics_port), "--liveness-port", str(liveness_port)],
                            stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{liveness_port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(5)
        idle = _rss_mib(proc.pid)

        latencies = []
        for index in range(options.latency_runs):
            name = f"lat-{index}"
            started = time.monotonic()
            _kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(_test(name)))
            while True:
                jobs = {j.metadata.name for j in batch.list_namespaced_job(
                    namespace, label_selector=f"performance-test-name={name}").items}
                if f"{name}-worker" in jobs and f"{name}-master" in jobs and core.list_namespaced_service(
                        namespace, label_selector=f"performance-test-name={name}").items:
                    break
                time.sleep(0.01)
            latencies.append(time.monotonic() - started)
        writes_before = _metric(metrics_port, "locust_operator_api_writes_total")

        custom = client.CustomObjectsApi(api)
        stream = "".join("---\n" + yaml.safe_dump(_test(f"load-{i}")) for i in range(options.tests))
        started = time.monotonic()
        _kubectl("-n", namespace, "apply", "-f", "-", stdin=stream)
        while True:
            items = custom.list_namespaced_custom_object("locust.io", "v2", namespace, "locusttests")["items"]
            done = [t for t in items if t["metadata"]["name"].startswith("load-")
                    and t.get("status", {}).get("phase") in ("Succeeded", "Failed")]
            if len(done) == options.tests:
                break
            time.sleep(1)
        all_done = time.monotonic() - started
        loaded = _rss_mib(proc.pid)
        writes = _metric(metrics_port, "locust_operator_api_writes_total") - writes_before
        latencies.sort()
        print(f"apply -> Service and Jobs exist, {len(latencies)} tests one at a time: "
              f"median {statistics.median(latencies) * 1000:.0f} ms, "
              f"p90 {latencies[int(len(latencies) * 0.9) - 1] * 1000:.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms")
        print(f"{options.tests} tests applied at once: all terminal after {all_done:.1f} s; "
              f"{writes / options.tests:.1f} API writes per test")
        print(f"controller RSS: idle {idle:.0f} MiB; with {options.tests + len(latencies)} "
              f"LocustTests tracked {loaded:.0f} MiB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        _kubectl("delete", "namespace", namespace, "--wait=false")


if __name__ == "__main__":
    main()
