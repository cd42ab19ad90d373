#!/usr/bin/env python3
"""Faults under load: the operator SIGKILLed mid-burst, kube-apiserver and etcd restarted
under it, a soak, and the time a replacement operator takes to write again.

  python -m benchmarks.faults [--burst 200] [--soak 1000]     # full size, prints JSON

Needs a running cluster from `scripts/cluster up` (KUBECONFIG; CLUSTER_DIR for
the restarts). tests/integration/test_faults.py runs the same scenarios scaled
down in CI and asserts their outcome; this script runs them at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.support.examples import ROOT
from tests.support.operator import wait_until
from tests.support.timeline import TERMINAL

from benchmarks.harness import api_client, create_all, locust_test, operated_namespace
from locust_operator.api.contract import GROUP, PLURAL, VERSION

POD_DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"


def _tests(namespace: str, count: int, prefix: str = "t", pod_seconds: int | None = None
           ) -> list[dict[str, Any]]:
    tests = [locust_test(f"{prefix}{i}", namespace) for i in range(count)]
    if pod_seconds is not None:  # how long kwok keeps the pods Running
        for test in tests:
            for role in ("master", "worker"):
                test["spec"][role]["annotations"] = {POD_DELAY: f"{pod_seconds}s"}
    return tests


def children_report(api: Any, namespace: str, names: list[str]) -> dict[str, Any]:
    """Children per test, checked by name and by controller owner UID."""
    custom = client.CustomObjectsApi(api)
    tests = {t["metadata"]["name"]: t for t in custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL)["items"]}
    jobs = client.BatchV1Api(api).list_namespaced_job(namespace).items
    services = client.CoreV1Api(api).list_namespaced_service(namespace).items
    owned: dict[str, int] = {}
    for child in [*jobs, *services]:
        refs = [r for r in child.metadata.owner_references or [] if r.controller]
        if refs:
            owned[refs[0].uid] = owned.get(refs[0].uid, 0) + 1
    wrong = [n for n in names if owned.get(tests[n]["metadata"]["uid"], 0) != 3]
    phases = [t.get("status", {}).get("phase") for t in tests.values()]
    return {
        "tests": len(tests),
        "jobs": len(jobs),
        "services": len(services),
        "tests_without_exactly_3_children": len(wrong),
        "not_terminal": sum(1 for p in phases if p not in TERMINAL),
        "failed": sum(1 for p in phases if p == "Failed"),
    }


def kill_mid_burst(api: Any, count: int, workdir: Path, timeout: float = 600,
                   python: str = sys.executable) -> dict[str, Any]:
    """SIGKILL the operator when about half of a burst has children; restart it."""
    names = [f"t{i}" for i in range(count)]
    with operated_namespace(api, "kill", workdir, python) as (namespace, timeline, operator):
        operator.start().wait_healthy()
        create_all([[t] for t in _tests(namespace, count)])
        wait_until(lambda: len(timeline.with_children(names)) >= count // 2, timeout,
                   interval=0.02, description="half of the burst has children")
        operator.kill()
        with_children_at_kill = len(timeline.with_children(names))
        operator.start().wait_healthy()
        wait_until(lambda: len(timeline.in_phase(names, TERMINAL)) == count, timeout,
                   description="every test terminal after the restart")
        report = children_report(api, namespace, names)
        report["with_children_at_kill"] = with_children_at_kill
        report["already_existed_after_restart"] = operator.log().count("already existed")
        return report


def restart_component(api: Any, component: str, count: int, workdir: Path,
                      cluster_env: dict[str, str], timeout: float = 600,
                      python: str = sys.executable) -> dict[str, Any]:
    """Restart kube-apiserver or etcd while tests run; the operator must carry on."""
    names = [f"t{i}" for i in range(count)]
    with operated_namespace(api, "restart", workdir, python) as (namespace, timeline, operator):
        operator.start().wait_healthy()
        pid = operator.pid
        # The first half is running during the restart; the second half is applied
        # right after it, so the operator must create through re-established watches.
        first, second = names[: count // 2], names[count // 2:]
        tests = _tests(namespace, count, pod_seconds=20)
        create_all([[t] for t in tests[: len(first)]])
        wait_until(lambda: len(timeline.with_children(first)) == len(first), timeout,
                   description="children of the first half")
        started = time.monotonic()
        subprocess.run([str(ROOT / "scripts" / "cluster"), "restart", component], env=cluster_env,
                       check=True, capture_output=True, timeout=300)
        restart_s = time.monotonic() - started
        create_all([[t] for t in tests[len(first):]])
        wait_until(lambda: len(timeline.in_phase(names, TERMINAL)) == count, timeout,
                   description=f"every test terminal after restarting {component}")
        report = children_report(api, namespace, names)
        report.update(component=component, restart_s=round(restart_s, 1),
                      operator_restarted=operator.pid != pid or operator.proc is None
                      or operator.proc.poll() is not None,
                      second_half=len(second))
        return report


def soak(api: Any, count: int, workdir: Path, in_flight: int = 20, python: str = sys.executable,
         timeout: float = 3600) -> dict[str, Any]:
    """`count` tests one after another (`in_flight` at a time, each deleted when done).

    RSS growth is measured from test 100 (or half way) to the last test.
    """
    custom = client.CustomObjectsApi(api)
    rss: dict[int, float] = {}
    # The baseline is taken at test 100 (or half way for shorter runs): the
    # first tests warm up caches and the allocator, which is not growth.
    baseline = min(100, count // 2)
    with operated_namespace(api, "soak", workdir, python) as (namespace, timeline, operator):
        operator.start().wait_healthy()
        tests = _tests(namespace, count, pod_seconds=1)
        done, submitted, deadline = 0, 0, time.monotonic() + timeout
        live: list[str] = []
        while done < count:
            assert time.monotonic() < deadline, f"soak: {done}/{count} done before the timeout"
            while submitted < count and len(live) < in_flight:
                create_all([[tests[submitted]]])
                live.append(tests[submitted]["metadata"]["name"])
                submitted += 1
            finished = timeline.in_phase(live, TERMINAL)
            for name in finished:
                live.remove(name)
                custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
                done += 1
                if done in (baseline, count // 2, count):
                    time.sleep(1)
                    rss[done] = operator.rss_mib()
            time.sleep(0.05)
        first, last = rss[baseline], rss[count]
        return {"tests": count, "rss_mib": rss, "growth_percent": round(100 * (last - first) / first, 1),
                "failed": sum(1 for p in timeline.phases.values() if "Failed" in p)}


def failover(api: Any, workdir: Path, python: str = sys.executable) -> dict[str, float]:
    """Kill the running operator, start its replacement: seconds until a status is written again.

    A test is created at the moment of the kill; the measured time is from the
    SIGKILL to that test's first status write by the replacement (one replica,
    restarted at once, as a Deployment with `Recreate` does after the kubelet
    notices the exit).
    """
    with operated_namespace(api, "failover", workdir, python) as (namespace, timeline, operator):
        operator.start().wait_healthy()
        time.sleep(1)
        operator.kill()
        killed = time.monotonic()
        operator.start()
        create_all([[locust_test("after-kill", namespace)]])
        wait_until(lambda: timeline.phases["after-kill"], 60, interval=0.01, description="status")
        first_write = min(timeline.phases["after-kill"].values())
        return {"kill_to_status_write_s": round(first_write - killed, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--restart-tests", type=int, default=100)
    parser.add_argument("--soak", type=int, default=1000)
    parser.add_argument("--python", default=sys.executable)
    options = parser.parse_args()
    api = api_client()
    env = dict(os.environ)

    def workdir() -> Path:
        return Path(tempfile.mkdtemp())

    results = {
        "failover": failover(api, workdir(), options.python),
        "kill_mid_burst": kill_mid_burst(api, options.burst, workdir(), python=options.python),
        "restart_apiserver": restart_component(api, "kube-apiserver", options.restart_tests, workdir(),
                                               env, python=options.python),
        "restart_etcd": restart_component(api, "etcd", options.restart_tests, workdir(), env,
                                          python=options.python),
        "soak": soak(api, options.soak, workdir(), python=options.python),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
