"""Big tests: how fast N Locust workers connect, through the operator and without it.

    python -m benchmarks.big_test                       # the floor and the poll cost only
    python -m benchmarks.big_test --cluster-dir DIR     # and through the operator (a kwok
                                                        # cluster: `scripts/cluster up`)
        [--plot docs/big_test.png]                      # the times as bars (matplotlib:
                                                        # pip install '.[bench]')

For 10 / 50 / 100 / 200 Locust workers (10 x 1, 25 x 2, 25 x 4 and 50 x 4 processes per pod):

- floor: the Locust master and worker processes `render` gives a test, started
  directly on loopback (tests/support/real_locust.py); the time from the start of
  the processes to the master listening, and from there to its Nth worker; the
  master's CPU seconds over the run and its largest RSS; how many workers Locust
  marked missing.
- operator: the same processes, with the LocustTest applied on a kwok cluster and a
  real controller reading the master every second (tests/support/real_runs.py):
  start -> status.connectedWorkers == N, and the operator's CPU seconds per
  poll and RSS.
- poll cost: CPU of one live read of a big master (json.loads and summarize of a
  /stats/requests answer with 1,000 request names and 200 workers; Locust itself
  sends at most 500 names) against json.loads alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.cluster import Cluster, cluster_env, cluster_script
from tests.support.operator import install_crd
from tests.support.real_locust import http_target, locust_run
from tests.support.real_runs import real_test

from locust_operator.rules.locust_stats import summarize

SIZES = {10: (10, 1), 50: (25, 2), 100: (25, 4), 200: (50, 4)}  # workers: (pods, processes per pod)
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def _stamp(line: str) -> float | None:
    found = _STAMP.match(line)
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if found else None


def _first(log: str, words: str) -> float | None:
    return next((_stamp(line) for line in log.splitlines() if words in line), None)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _group_rss_mib(pgids: set[int]) -> float:
    """RSS of every process in these process groups (a pod's parent and its forked workers;
    shared copy-on-write pages count in each, so this is an upper bound)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, StopIteration, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) in pgids:
                total += _rss_mib(int(stat.parent.name))
    return total


def floor(workers: int) -> dict[str, Any]:
    """Locust alone: start -> master listening -> all workers connected."""
    pods, processes = SIZES[workers]
    with tempfile.TemporaryDirectory() as tmp, http_target() as target:
        started = time.time()
        with locust_run(Path(tmp), target, workers=pods, processes=processes, run_time="5s",
                        autoquit=2, users=workers) as run:
            cpu, rss, workers_rss = 0.0, 0.0, 0.0
            pgids = {proc.pid for proc in run.workers}  # each started in its own session
            deadline = time.monotonic() + 300
            while run.master.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(OSError, StopIteration):  # it may exit between the reads
                    cpu, rss = _cpu_seconds(run.master.pid), max(rss, _rss_mib(run.master.pid))
                workers_rss = max(workers_rss, _group_rss_mib(pgids))
                time.sleep(0.5)
            log = run.master_log()
    listening = _first(log, "Starting web interface")
    connected = _first(log, f"{workers} workers connected")
    return {"workers": workers, "pods": pods, "processes": processes,
            "start_to_listening": None if listening is None else listening - started,
            "listening_to_all": None if connected is None or listening is None else connected - listening,
            "master_cpu": cpu, "master_rss": rss, "worker_rss_per_process": workers_rss / workers,
            "missing": len(re.findall(r"failed to send heartbeat", log))}


def through_operator(c: Cluster, workers: int) -> dict[str, Any]:
    """The same processes with the operator: start -> status.connectedWorkers == N."""
    pods, processes = SIZES[workers]
    ns = f"big-{workers}-{os.getpid()}"
    c.kubectl("create", "namespace", ns)
    try:
        with tempfile.TemporaryDirectory() as tmp, real_test(c, ns, Path(tmp), "big", workers=pods,
                                                             processes=processes, run_time="30s") as case:
            assert case.operator.proc is not None
            pid, started = case.operator.proc.pid, time.monotonic()
            cpu_before = _cpu_seconds(pid)
            status = case.wait_status(lambda s: s.get("connectedWorkers") == workers
                                      and (s.get("locust") or {}).get("workerCount") == workers,
                                      f"{workers} workers connected", timeout=300)
            connected = time.monotonic() - started
            polls_from = time.monotonic()
            time.sleep(10)  # ten live polls (statsPollSeconds 1) of a master with N workers
            cpu = _cpu_seconds(pid) - cpu_before
            per_poll = cpu / max(1.0, time.monotonic() - polls_from + connected)
            rss = _rss_mib(pid)
            overloaded = any(x["type"] == "MasterOverloaded" for x in status.get("conditions", []))
    finally:
        c.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    return {"workers": workers, "operator_connected": connected, "operator_cpu_per_poll": per_poll,
            "operator_rss": rss, "overloaded": overloaded}


def poll_cost(names: int = 1000, workers: int = 200, repeat: int = 200) -> dict[str, float]:
    entry = {"method": "GET", "num_requests": 12345, "num_failures": 3, "avg_response_time": 12.5,
             "min_response_time": 1, "max_response_time": 250, "current_rps": 33.3,
             "current_fail_per_sec": 0.1,
             "median_response_time": 11, "ninetieth_response_time": 40, "ninety_ninth_response_time": 90,
             "avg_content_length": 512, "safe_name": "x"}
    report = {"stats": [{**entry, "name": f"/item/{i}"} for i in range(names)], "errors": [],
              "total_rps": 999.5, "fail_ratio": 0.001, "state": "running", "user_count": 4000,
              "worker_count": workers,
              "current_response_time_percentiles": {"response_time_percentile_0.5": 11,
                                                    "response_time_percentile_0.95": 48},
              "workers": [{"id": f"w{i}", "state": "running", "user_count": 20, "cpu_usage": 40,
                           "memory_usage": 60_000_000} for i in range(workers)]}
    body = json.dumps(report).encode()
    began = time.process_time()
    for _ in range(repeat):
        json.loads(body)
    parse = (time.process_time() - began) / repeat
    began = time.process_time()
    for _ in range(repeat):
        summarize(json.loads(body))
    both = (time.process_time() - began) / repeat
    return {"bytes": len(body), "json_ms": parse * 1000, "json_and_summary_ms": both * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=sorted(SIZES), choices=sorted(SIZES))
    parser.add_argument("--cluster-dir", type=Path, help="a running kwok cluster (scripts/cluster up)")
    parser.add_argument("--plot", type=Path,
                        help="write the connection times as a PNG bar chart here (needs matplotlib)")
    args = parser.parse_args()
    cost = poll_cost()
    print(f"poll of a big master ({cost['bytes'] / 1024:.0f} KiB, 1,000 names, 200 workers): "
          f"json.loads {cost['json_ms']:.1f} ms, + summarize {cost['json_and_summary_ms']:.1f} ms CPU")
    cluster = None
    if args.cluster_dir:
        bin_dir = Path(cluster_script("bin-dir", env=dict(os.environ), capture=True).stdout.strip())
        kubeconfig = args.cluster_dir / "kubeconfig"
        cluster = Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, env=cluster_env(kubeconfig, bin_dir),
                          cluster_dir=args.cluster_dir)
        install_crd(cluster)
    print("| Locust workers | pods x processes | floor: start -> master listening | floor: listening -> "
          "all connected | master CPU s | master RSS MiB | worker RSS MiB per process | workers Locust "
          "marked missing | operator: "
          "start -> status shows all | operator CPU ms per poll | operator RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for workers in args.workers:
        base = floor(workers)
        row = [str(workers), f"{base['pods']} x {base['processes']}",
               _seconds(base["start_to_listening"]), _seconds(base["listening_to_all"]),
               f"{base['master_cpu']:.1f}", f"{base['master_rss']:.0f}",
               f"{base['worker_rss_per_process']:.0f}", str(base["missing"])]
        if cluster is not None:
            via = through_operator(cluster, workers)
            base.update(via)
            row += [f"{via['operator_connected']:.1f} s", f"{via['operator_cpu_per_poll'] * 1000:.0f}",
                    f"{via['operator_rss']:.0f}"]
        else:
            row += ["-", "-", "-"]
        results.append(base)
        print("| " + " | ".join(row) + " |", flush=True)
    if args.plot:
        plot(results, args.plot)
        print(f"plot: {args.plot}")


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """The connection times per size as grouped bars: the floor's two parts, and the operator."""
    import matplotlib  # the `bench` extra: only this option needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("start_to_listening", "floor: processes start -> master listening"),
              ("listening_to_all", "floor: master listening -> all workers connected"),
              ("operator_connected", "operator: apply -> status shows all connected")]
    series = [(key, label) for key, label in series if any(r.get(key) is not None for r in results)]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(series)
    for i, (key, label) in enumerate(series):
        values = [r.get(key) or 0.0 for r in results]
        bars = ax.bar([x + i * width for x in range(len(results))], values, width, label=label)
        ax.bar_label(bars, fmt="%.1f s", fontsize=8)
    ax.set_xticks([x + width for x in range(len(results))],
                  [f"{r['workers']} workers\n({r['pods']} pods x {r['processes']})" for r in results])
    ax.set_ylabel("seconds")
    ax.set_title("Big tests on 2 cores: time to connect every Locust worker (python -m benchmarks.big_test)",
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


if __name__ == "__main__":
    main()
