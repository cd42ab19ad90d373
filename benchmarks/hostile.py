#!/usr/bin/env python3
"""Hostile Locust masters in a burst: does one operator still judge everyone, and how late?

  python -m benchmarks.hostile [--sizes 100,500] [--hostile-share 0,0.1]
                               [--unreachable [hang|blackhole]] [--run-seconds 15]

Needs a running cluster (`KUBECONFIG`), sized like bench_scale's: each test is
three kwok pods (`KWOK_NODES=4 scripts/cluster up` holds 3,000). One fake-master
server on loopback (tests/support/fake_masters.py) answers for every master;
the operator reads it through `statsUrlTemplate`, every second. For each size:

1. baseline: only normal masters, with the master reads off (`statsPollSeconds:
   0`): how late a verdict is from the Job and pod watches alone;
2. for each share in --hostile-share: that share of the tests get hostile
   masters (cycling through the hostile kinds), the rest normal ones;
3. with --unreachable, instead of 2: every master hangs (`hang`: the request
   is taken and never answered) or never accepts a connection (`blackhole`).
   The goal there: the last test terminal at most 5 s after the last master
   Job finished.

Printed per run, as one JSON line: operator RSS (idle, peak sampled, the
kernel's high-water mark) and CPU, the master Jobs' finish times (the timeline
the verdicts follow), verdict lag (terminal minus own master Job finished;
p50/p95/max, all and per kind), the normal tests with the right verdict and
results read from the master API, the verdicts per kind, the master reads per
endpoint, and whether the operator survived without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.support.fake_masters import HOSTILE_KINDS, FakeMasters, blackhole, expected_requests, serve_masters
from tests.support.operator import Operator, wait_until
from tests.support.timeline import TERMINAL, Timeline

from benchmarks.harness import (
    BENCH_CONFIG,
    api_client,
    create_all,
    locust_test,
    operated_namespace,
    percentile,
)
from locust_operator.api.contract import GROUP, PLURAL, VERSION

POD_DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
UNREACHABLE_GOAL_S = 5.0


@dataclass(frozen=True)
class Plan:
    """One run: its label, its tests' names and how the operator reaches their masters."""

    label: str
    names: list[str]
    url_template: str
    poll_seconds: int


def config_text(url_template: str, poll_seconds: int) -> str:
    """BENCH_CONFIG's small pod resources, with the master reads this run wants (it turns them off)."""
    text = BENCH_CONFIG.replace(
        "statsPollSeconds: 0\n", f"statsPollSeconds: {poll_seconds}\nstatsUrlTemplate: '{url_template}'\n")
    assert "statsUrlTemplate" in text, "BENCH_CONFIG no longer starts with statsPollSeconds: 0"
    return text


def kind_of(name: str) -> str:
    return name.split("-", 1)[0]


def mixed_names(size: int, share: float) -> list[str]:
    hostile = round(size * share)
    return ([f"{HOSTILE_KINDS[i % len(HOSTILE_KINDS)]}-{i}" for i in range(hostile)]
            + [f"normal-{i}" for i in range(size - hostile)])


def manifest(name: str, namespace: str, run_seconds: int) -> dict[str, Any]:
    test = locust_test(name, namespace)
    for role in ("master", "worker"):  # how long kwok keeps the pods Running
        test["spec"][role]["annotations"] = {POD_DELAY: f"{run_seconds}s"}
    return test


def high_water_mib(operator: Operator) -> float:
    """The kernel's peak RSS of the process (VmHWM): spikes between samples included."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{operator.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "max": max(values) if values else float("nan")}


def _right(test: dict[str, Any]) -> bool:
    status, name = test.get("status") or {}, test["metadata"]["name"]
    result = status.get("result") or {}
    return (status.get("phase"), status.get("verdict"), result.get("source"), result.get("requests")) == (
        "Succeeded", "TestSucceeded", "MasterApi", expected_requests(name))


def _verdict(test: dict[str, Any]) -> str:
    status = test.get("status") or {}
    source = (status.get("result") or {}).get("source")
    return f"{kind_of(test['metadata']['name'])}: {status.get('phase')} {status.get('verdict')} {source}"


def measure(plan: Plan, timeline: Timeline, tests: list[dict[str, Any]], t0: float) -> dict[str, Any]:
    """Lag, the Jobs' timeline and the verdicts of one finished run."""
    names = plan.names
    terminal = timeline.in_phase(names, TERMINAL)
    masters_done = timeline.master_finished(names)
    lag = {n: terminal[n] - masters_done[n] for n in names if n in terminal and n in masters_done}
    by_kind: dict[str, list[float]] = {}
    for name, seconds in lag.items():
        by_kind.setdefault(kind_of(name), []).append(seconds)
    normal = [t for t in tests if kind_of(t["metadata"]["name"]) == "normal"]
    verdicts = Counter(_verdict(t) for t in tests)
    last_job = max(masters_done.values(), default=float("nan"))
    last_terminal = max(terminal.values(), default=float("nan"))
    return {
        "terminal": f"{len(terminal)}/{len(names)}",
        "master_jobs_done_first_s": min(masters_done.values(), default=float("nan")) - t0,
        "master_jobs_done_last_s": last_job - t0,
        "terminal_last_s": last_terminal - t0,
        "terminal_last_after_last_master_job_s": last_terminal - last_job,
        "verdict_lag_s": _stats(list(lag.values())),
        "verdict_lag_by_kind_s": {kind: _stats(values) for kind, values in sorted(by_kind.items())},
        # With the reads off, no result can come from the master API: nothing to count.
        "normal_right": (f"{sum(1 for t in normal if _right(t))}/{len(normal)}"
                         if normal and plan.poll_seconds else "n/a"),
        "verdicts": dict(sorted(verdicts.items())),
    }


def _wait(operator: Operator, what: Any, timeout: float, description: str) -> None:
    """wait_until, but give up at once if the operator exited."""
    def check() -> bool:
        assert operator.proc is not None
        if operator.proc.poll() is not None:
            raise RuntimeError(f"the operator exited ({operator.proc.returncode})")
        return bool(what())
    wait_until(check, timeout, description=description)


def run(api: Any, plan: Plan, options: argparse.Namespace, masters: FakeMasters) -> dict[str, Any]:
    names, size = plan.names, len(plan.names)
    with operated_namespace(api, f"hostile-{size}", Path(tempfile.mkdtemp()), options.python) as (
            namespace, timeline, operator):
        operator.config_path.write_text(config_text(plan.url_template, plan.poll_seconds))
        operator.start()
        operator.wait_healthy()
        time.sleep(2)
        idle, cpu0, reads0 = operator.rss_mib(), operator.cpu_seconds(), Counter(masters.counts_by_endpoint())
        error = None
        with operator.sampling_rss():
            t0 = time.monotonic()
            create_all([[manifest(n, namespace, options.run_seconds)] for n in names])
            try:
                _wait(operator, lambda: len(timeline.in_phase(names, TERMINAL)) == size, options.timeout,
                      "terminal")
                _wait(operator, lambda: len(timeline.master_finished(names)) == size, 60, "master Jobs done")
                time.sleep(1)
            except (TimeoutError, RuntimeError) as exc:
                error = str(exc)
        alive = operator.proc is not None and operator.proc.poll() is None
        row: dict[str, Any] = {
            "run": plan.label, "size": size, "error": error, "operator_alive": alive,
            "tracebacks": operator.log().count("Traceback"),
            "rss_idle_mib": idle, "rss_peak_sampled_mib": operator.peak_rss,
            "rss_high_water_mib": high_water_mib(operator) if alive else float("nan"),
            "cpu_ms_per_test": 1000 * (operator.cpu_seconds() - cpu0) / size if alive else float("nan"),
        }
        listed: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL)
        row.update(measure(plan, timeline, listed["items"], t0))
        row["master_reads"] = dict(Counter(masters.counts_by_endpoint()) - reads0)
        if plan.label.startswith("unreachable"):
            row["goal_met"] = row["terminal_last_after_last_master_job_s"] <= UNREACHABLE_GOAL_S
        return row


def plans(size: int, options: argparse.Namespace, masters: FakeMasters, hole: str) -> Iterator[Plan]:
    normal = mixed_names(size, 0.0)
    if options.baseline:
        yield Plan("baseline: normal masters, reads off", normal, masters.url_template, 0)
    if options.unreachable == "hang":
        yield Plan("unreachable: every master hangs", [f"hang-{i}" for i in range(size)],
                   masters.url_template, 1)
    elif options.unreachable == "blackhole":
        yield Plan("unreachable: no master accepts", [f"unreachable-{i}" for i in range(size)], hole, 1)
    else:
        for share in options.hostile_share:
            yield Plan(f"hostile share {share:g}", mixed_names(size, share), masters.url_template, 1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="100,500", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--hostile-share", default="0,0.1", type=lambda s: [float(x) for x in s.split(",")])
    parser.add_argument("--unreachable", nargs="?", const="hang", choices=("hang", "blackhole"),
                        help="every master unreachable (default: hang) instead of the hostile shares")
    parser.add_argument("--run-seconds", type=int, default=15,
                        help="how long kwok keeps each test's pods Running")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument("--python", default=sys.executable,
                        help="Python that runs the operator (e.g. a runtime-only venv)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


def main() -> None:
    options = parse_args()
    api = api_client()
    results: list[dict[str, Any]] = []
    with serve_masters() as masters, blackhole() as hole:
        for size in options.sizes:
            for plan in plans(size, options, masters, hole):
                load_before = os.getloadavg()[0]
                row = run(api, plan, options, masters)
                row["load1_before"], row["load1_after"] = load_before, os.getloadavg()[0]
                results.append(row)
                print(json.dumps(row), flush=True)
    print_table(results)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'size':>5} {'run':<38} {'peak MiB':>8} {'lag p50':>7} {'p95':>6} {'max':>6} "
          f"{'last-job':>8} {'normal ok':>10} alive")
    for row in results:
        lag = row["verdict_lag_s"]
        print(f"{row['size']:>5} {row['run']:<38} {row['rss_high_water_mib']:>8.1f} {lag['p50']:>7.2f} "
              f"{lag['p95']:>6.2f} {lag['max']:>6.2f} {row['terminal_last_after_last_master_job_s']:>8.2f} "
              f"{row['normal_right']:>10} {row['operator_alive'] and not row['tracebacks']}")


if __name__ == "__main__":
    main()
