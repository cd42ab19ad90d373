#!/usr/bin/env python3
"""Bursts of LocustTests on the local control plane: the operator against a bare client.

  python -m benchmarks.bench_scale [--sizes 100,500,1000] [--python PY] [--plot docs/scale.png]

Needs a running cluster (`KUBECONFIG`); start one sized for it with
`KWOK_NODES=4 scripts/cluster up` (3,000 kwok pods). For each size, in this order:

1. bare client: the rendered Service and two Jobs of every test, created by an
   async client (32 requests in flight), and nothing else: the cluster's limit;
2. operator: a fresh `locust-operator run` (started with --python, e.g. a
   venv with only the runtime dependencies, as the image has) and the same
   number of LocustTests POSTed the same way.

Printed per size: time until every test had its children, was Running, was
terminal; per-test latencies apply -> children and master pod Ready -> phase
Running (p50/p95); the gap between each test's Jobs finishing and its phase;
operator CPU seconds per test, RSS idle and peak; API writes per test. The
machine's load average is printed with each size: the numbers move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.operator import wait_until
from tests.support.timeline import TERMINAL, Timeline, apiserver_writes

from benchmarks.harness import (
    BENCH_CONFIG,
    api_client,
    apiserver_metrics,
    create_all,
    create_namespace,
    delete_namespace,
    locust_test,
    operated_namespace,
    percentile,
)
from locust_operator.api.config import load_config
from locust_operator.build.render import render


def _config_file() -> Path:
    path = Path(tempfile.mkdtemp()) / "config.yaml"
    path.write_text(BENCH_CONFIG)
    return path


def bare(api: Any, size: int, timeout: float) -> dict[str, float]:
    namespace = f"bare-{size}-{secrets.token_hex(2)}"
    create_namespace(api, namespace)
    config = load_config(_config_file(), env={})
    names = [f"t{i}" for i in range(size)]
    groups = [render(locust_test(n, namespace), config) for n in names]
    timeline = Timeline(namespace).start(api)
    time.sleep(1)
    try:
        t0 = time.monotonic()
        applied = create_all(groups)
        wait_until(lambda: len(timeline.with_children(names)) == size, timeout, description="children")
        children = timeline.with_children(names)
        wait_until(lambda: len(timeline.finished_jobs(names)) == size, timeout, description="jobs done")
        done = timeline.finished_jobs(names)
        return {
            "children_all_s": max(children.values()) - t0,
            "jobs_done_all_s": max(done.values()) - t0,
            "apply_to_children_p50_ms": 1000 * percentile(
                [children[n] - applied[n] for n in names], 0.5),
        }
    finally:
        timeline.stop()
        delete_namespace(api, namespace)


def operated(api: Any, size: int, timeout: float, python: str) -> dict[str, Any]:
    names = [f"t{i}" for i in range(size)]
    with operated_namespace(api, f"op-{size}", Path(tempfile.mkdtemp()), python) as (
            namespace, timeline, operator):
        operator.start()
        watching_s = operator.wait_healthy()
        time.sleep(3)
        idle = operator.rss_mib()
        cpu0 = operator.cpu_seconds()
        test_writes0 = apiserver_writes(apiserver_metrics()).get("locusttests", 0.0)
        with operator.sampling_rss():
            t0 = time.monotonic()
            applied = create_all([[locust_test(n, namespace)] for n in names])
            wait_until(lambda: len(timeline.with_children(names)) == size, timeout, description="children")
            wait_until(lambda: len(timeline.in_phase(names, TERMINAL)) == size, timeout,
                       description="terminal")
            wait_until(lambda: len(timeline.finished_jobs(names)) == size, 60, description="jobs done")
            time.sleep(2)  # let the last status writes and finalizer removals land
        cpu = operator.cpu_seconds() - cpu0
        # Writes on the LocustTests other than status: the POSTs themselves, and Kopf's
        # finalizer (added, removed) and touch annotations.
        test_writes_now = apiserver_writes(apiserver_metrics()).get("locusttests", 0.0)
        test_writes = (test_writes_now - test_writes0) / size - 1
        children = timeline.with_children(names)
        running = timeline.in_phase(names, ("Running", *TERMINAL))
        terminal = timeline.in_phase(names, TERMINAL)
        jobs_done = timeline.finished_jobs(names)
        masters_done = timeline.master_finished(names)
        ready = timeline.master_ready
        ready_to_running = [running[n] - ready[n] for n in names if n in ready and n in running]
        showed_running = sum(1 for n in names if "Running" in timeline.phase_sequence[n])
        writes = {label: operator.metric("locust_operator_api_writes_total", label)
                  for label in ('resource="jobs"', 'resource="services"', 'resource="events"',
                                'resource="locusttests/status"')}
        return {
            "watching_s": watching_s,
            "children_all_s": max(children.values()) - t0,
            "running_all_s": max(running.values()) - t0,
            "terminal_all_s": max(terminal.values()) - t0,
            "jobs_done_all_s": max(jobs_done.values()) - t0,
            "terminal_after_last_job_s": max(terminal.values()) - max(jobs_done.values()),
            "terminal_after_own_master_job_p95_s": percentile(
                [terminal[n] - masters_done[n] for n in names if n in masters_done], 0.95),
            "apply_to_children_p50_ms": 1000 * percentile([children[n] - applied[n] for n in names], 0.5),
            "apply_to_children_p95_ms": 1000 * percentile([children[n] - applied[n] for n in names], 0.95),
            "ready_to_running_p50_s": percentile(ready_to_running, 0.5),
            "ready_to_running_p95_s": percentile(ready_to_running, 0.95),
            "showed_running": showed_running,
            "succeeded": sum(1 for n in names if "Succeeded" in timeline.phases[n]),
            "cpu_ms_per_test": 1000 * cpu / size,
            "rss_idle_mib": idle,
            "rss_peak_mib": operator.peak_rss,
            "job_creates_per_test": writes['resource="jobs"'] / size,
            "service_creates_per_test": writes['resource="services"'] / size,
            "events_per_test": writes['resource="events"'] / size,
            "status_patches_per_test": writes['resource="locusttests/status"'] / size,
            "kopf_test_patches_per_test": test_writes,
        }


def startup(api: Any, python: str) -> dict[str, float]:
    """A test already waiting when the operator starts: time to watching, to its children."""
    with operated_namespace(api, "start", Path(tempfile.mkdtemp()), python) as (
            namespace, timeline, operator):
        create_all([[locust_test("first", namespace)]])
        operator.start()
        watching = operator.wait_healthy()
        wait_until(lambda: timeline.with_children(["first"]), 60, interval=0.01, description="children")
        return {"startup_watching_s": watching,
                "startup_first_children_s": timeline.with_children(["first"])["first"] - operator.started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--python", default=sys.executable,
                        help="Python that runs the operator (e.g. a runtime-only venv)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG plot here (needs matplotlib)")
    options = parser.parse_args()
    api = api_client()
    results: dict[str, Any] = {"startup": startup(api, options.python), "sizes": {}}
    print(json.dumps(results["startup"]), flush=True)
    for size in (int(s) for s in options.sizes.split(",")):
        load_before = os.getloadavg()[0]
        row = {"bare": bare(api, size, options.timeout),
               "operator": operated(api, size, options.timeout, options.python),
               "load1_before": load_before, "load1_after": os.getloadavg()[0]}
        row["children_ratio"] = row["operator"]["children_all_s"] / row["bare"]["children_all_s"]
        results["sizes"][size] = row
        print(json.dumps({size: row}), flush=True)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")
    if options.plot:
        plot(results, options.plot)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in results["sizes"])
    rows = [results["sizes"][s] if s in results["sizes"] else results["sizes"][str(s)] for s in sizes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label, style in (("children_all_s", "all children exist", "o-"),
                              ("jobs_done_all_s", "all Jobs finished", "s-")):
        left.plot(sizes, [r["bare"][key] for r in rows], style, label=f"bare client: {label}")
        left.plot(sizes, [r["operator"][key] for r in rows], style + "-", label=f"operator: {label}")
    left.plot(sizes, [r["operator"]["terminal_all_s"] for r in rows], "^--", label="operator: all terminal")
    left.set_xlabel("LocustTests in one burst (2 workers each)")
    left.set_ylabel("seconds after the first create")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    right.plot(sizes, [r["operator"]["rss_peak_mib"] for r in rows], "o-", label="peak RSS (MiB)")
    right.plot(sizes, [r["operator"]["cpu_ms_per_test"] for r in rows], "s-", label="CPU ms per test")
    right.axhline(150, color="grey", ls=":", label="RSS goal at 1,000 (150 MiB)")
    right.axhline(25, color="grey", ls="--", label="CPU goal (25 ms/test)")
    right.set_xlabel("LocustTests in one burst")
    right.legend(fontsize=7)
    right.grid(alpha=0.3)
    fig.suptitle("locust-operator on the local control plane (kwok pods), 2 cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
