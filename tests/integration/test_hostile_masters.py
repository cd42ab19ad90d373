"""Hostile Locust masters beside normal ones: one operator process stays up and judges them all.

One fake-master server on loopback (tests/support/fake_masters.py) answers for
the master of every test. NORMAL tests have plausible masters; one test of each
hostile kind has a master that streams forever, drips, nests 100,000 deep,
sends a huge CSV or report, sends the wrong types, or never answers. All are
applied at once, so the hostile masters are read while the normal tests need
their results. kwok runs the pods and completes them RUN_SECONDS after they are
Ready. The operator shares one process, one event loop and one HTTP session
among all tests, so one bad master must not cost the others their verdicts.
"""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster
from tests.support.examples import EXAMPLES, load_example
from tests.support.fake_masters import (
    HOSTILE_KINDS,
    REPORT,
    REQUESTS_CSV,
    STATS,
    expected_requests,
    serve_masters,
)
from tests.support.operator import OperatorProcess, install_crd
from tests.support.timeline import TERMINAL, Timeline

NORMAL = 20
# kwok completes a pod this long after it is Ready. The default 5 s is about what
# a normal master needs before its results can be read (it stops ~1.5 s after the
# first read, then the CSV is read until two reads agree): leave room.
RUN_SECONDS = 15
KWOK_DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
TERMINAL_TIMEOUT = 75.0
RSS_LIMIT_MIB = 256  # the operator's memory limit in the chart
PROBE_TIMEOUT = 5  # the chart's livenessProbe timeoutSeconds
# Kinds whose master sends something that must be refused, and say so in status.locust.message.
REFUSED = ("endless", "deep", "types", "hugecsv")
# Where each hostile kind is hostile: each must have been read, or the test proves nothing.
HOSTILE_ENDPOINT = {"endless": STATS, "drip": STATS, "deep": STATS, "hugecsv": REQUESTS_CSV,
                    "hugereport": REPORT, "types": STATS, "hang": STATS}


@pytest.fixture(scope="module", autouse=True)
def crd(cluster: Cluster) -> None:
    install_crd(cluster)


def manifest(name: str, thresholds: bool) -> dict[str, Any]:
    test = load_example("minimal")
    test["metadata"]["name"] = name
    for role in ("master", "worker"):
        test["spec"][role]["annotations"] = {KWOK_DELAY: f"{RUN_SECONDS}s"}
    if thresholds:
        test["spec"]["thresholds"] = {"maxFailRatio": "0.5"}
    return test


@dataclass
class Watched(Timeline):
    """The harness's Timeline of the namespace, plus the last status of each test and
    every status.locust.message it ever had (a watch sees each one, however briefly
    it stayed), and how /healthz answered meanwhile."""

    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    probes: int = 0
    failed_probes: int = 0

    def _test(self, kind: str, obj: dict[str, Any], now: float) -> None:
        super()._test(kind, obj, now)
        status, name = obj.get("status") or {}, obj["metadata"]["name"]
        self.statuses[name] = status
        message = (status.get("locust") or {}).get("message")
        if isinstance(message, str):
            self.messages[name].add(message)

    def status(self, name: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.statuses.get(name) or {})

    def seen_messages(self, name: str) -> set[str]:
        with self._lock:
            return set(self.messages[name])

    def pending(self, names: list[str]) -> dict[str, str | None]:
        return {n: self.status(n).get("phase") for n in names if self.status(n).get("phase") not in TERMINAL}


def live(operator: OperatorProcess) -> bool:
    """/healthz answered within the chart's probe timeout; fails the test if the process exited."""
    assert operator.proc is not None
    code = operator.proc.poll()
    assert code is None, f"the operator exited ({code}):\n{operator.log()[-4000:]}"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.liveness_port}/healthz",
                                    timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def wait_terminal(watched: Watched, operator: OperatorProcess, names: list[str]) -> None:
    """Until every test is terminal, probing /healthz about once a second meanwhile."""
    deadline = time.monotonic() + TERMINAL_TIMEOUT
    while time.monotonic() < deadline:
        watched.probes += 1
        if not live(operator):
            watched.failed_probes += 1
        if not watched.pending(names):
            return
        time.sleep(1)
    raise AssertionError(f"not terminal after {TERMINAL_TIMEOUT:.0f} s: {watched.pending(names)}\n"
                         f"--- operator log ---\n{operator.log()[-4000:]}")


def peak_rss_mib(operator: OperatorProcess) -> float:
    """The kernel's high-water mark of the process's RSS: catches spikes between samples."""
    for line in Path(f"/proc/{operator.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wrong_normal_results(watched: Watched, names: list[str]) -> dict[str, Any]:
    wrong: dict[str, Any] = {}
    for name in names:
        status = watched.status(name)
        result = status.get("result") or {}
        got = (status.get("phase"), status.get("verdict"), result.get("source"), result.get("requests"))
        if got != ("Succeeded", "TestSucceeded", "MasterApi", expected_requests(name)):
            wrong[name] = {"got": got, "expected_requests": expected_requests(name),
                           "message": result.get("message")}
    return wrong


def test_hostile_masters_leave_the_operator_up_and_the_normal_verdicts_right(
        cluster: Cluster, api: Any, namespace: str, tmp_path: Path) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "configmaps.yaml"))
    normal = [f"normal-{i:02d}" for i in range(NORMAL)]
    hostile = [f"{kind}-0" for kind in HOSTILE_KINDS]
    manifests = [manifest(n, thresholds=i % 2 == 0) for i, n in enumerate(normal)]
    manifests += [manifest(n, thresholds=False) for n in hostile]
    watched = Watched(namespace)
    watched.start(api)
    try:
        with serve_masters() as masters:
            operator = OperatorProcess(cluster, [namespace], tmp_path, config_text=(
                f"statsPollSeconds: 1\nstatsUrlTemplate: '{masters.url_template}'\n"))
            operator.start()
            try:
                started = time.monotonic()
                cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(manifests))
                with operator.sampling_rss(interval=0.05):
                    wait_terminal(watched, operator, normal + hostile)
                elapsed = time.monotonic() - started
                still_live = live(operator)
                high_water = peak_rss_mib(operator)
            finally:
                operator.stop()
                log = operator.log()
                print(f"--- operator log (tail) ---\n{log[-6000:]}")
            reads = masters.counts_by_endpoint()
            hostile_reads = {kind: masters.count(namespace, f"{kind}-0", endpoint)
                             for kind, endpoint in HOSTILE_ENDPOINT.items()}
    finally:
        watched.stop()
    report(watched, normal, hostile, elapsed, operator.peak_rss, high_water, reads, hostile_reads)
    check(watched, normal, hostile, log, still_live, max(operator.peak_rss, high_water), hostile_reads)


def report(watched: Watched, normal: list[str], hostile: list[str], elapsed: float, sampled: float,
           high_water: float, reads: dict[str, int], hostile_reads: dict[str, int]) -> None:
    print(f"all terminal {elapsed:.1f} s after the apply; operator peak RSS {sampled:.1f} MiB sampled, "
          f"{high_water:.1f} MiB high-water mark; /healthz failed {watched.failed_probes} of "
          f"{watched.probes} probes")
    print(f"master reads by endpoint: {reads}; reads of the hostile endpoints: {hostile_reads}")
    terminal, jobs = watched.in_phase(normal + hostile, TERMINAL), watched.master_finished(normal + hostile)
    for group, names in (("normal", normal), ("hostile", hostile)):
        lags = sorted(terminal[n] - jobs[n] for n in names if n in terminal and n in jobs)
        if lags:
            print(f"verdict lag after the master Job finished, {group}: median {lags[len(lags) // 2]:.2f} s, "
                  f"max {lags[-1]:.2f} s")
    for name in hostile:
        status = watched.status(name)
        source = (status.get("result") or {}).get("source")
        print(f"{name}: {status.get('phase')} {status.get('verdict')}; result {source}; "
              f"messages {sorted(watched.seen_messages(name))}")


def check(watched: Watched, normal: list[str], hostile: list[str], log: str, still_live: bool,
          peak_rss: float, hostile_reads: dict[str, int]) -> None:
    assert still_live and watched.failed_probes == 0, "the operator stopped answering /healthz"
    assert "Traceback" not in log
    assert peak_rss < RSS_LIMIT_MIB, f"peak RSS {peak_rss:.1f} MiB"
    assert wrong_normal_results(watched, normal) == {}
    assert watched.pending(hostile) == {}  # whatever the verdict: kwok's exit code or a refusal
    for kind in REFUSED:
        name = f"{kind}-0"
        seen = watched.seen_messages(name)
        assert any("/stats/requests" in m or "csv" in m.lower() for m in seen), \
            f"{name}: no status.locust.message naming the endpoint; seen {seen}"
    assert all(hostile_reads.values()), f"a hostile endpoint was never read: {hostile_reads}"
