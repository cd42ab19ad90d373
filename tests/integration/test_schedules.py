"""LocustTestSchedules on the local control plane: runs made on a one-minute cadence.

Two schedules side by side (so the ticks are waited for once): `replace`
aborts its live run at each tick and keeps one failed run (its history limit),
`forbid` skips a tick while its run is live. kwok keeps the runs' pods Running,
so a run stays live until it is aborted. A results ConfigMap owned by the
first run shows that a deleted run takes its results with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster
from tests.support.examples import EXAMPLES, load_example
from tests.support.operator import OperatorProcess, install_crd
from tests.support.real_runs import STAY_RUNNING


@pytest.fixture(scope="module", autouse=True)
def crd(cluster: Cluster) -> None:
    install_crd(cluster)


def schedule(name: str, policy: str) -> dict[str, Any]:
    template = load_example("minimal")
    for role in ("master", "worker"):
        template["spec"][role]["annotations"] = dict(STAY_RUNNING)
    template["spec"]["worker"]["replicas"] = 1
    return {"apiVersion": "locust.io/v2", "kind": "LocustTestSchedule", "metadata": {"name": name},
            "spec": {"schedule": "* * * * *", "concurrencyPolicy": policy, "failedRunsHistoryLimit": 1,
                     "template": {"metadata": {"labels": {"team": "perf"}}, "spec": template["spec"]}}}


def runs(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cluster.kubectl_json(
        "-n", namespace, "get", "locusttests", "-l", f"locust.io/schedule={name}")["items"]
    return sorted(found, key=lambda t: t["metadata"]["name"])


def events(cluster: Cluster, namespace: str, name: str) -> list[str]:
    items = cluster.kubectl_json("-n", namespace, "get", "events", "--field-selector",
                                 f"involvedObject.kind=LocustTestSchedule,involvedObject.name={name}")["items"]
    return [f"{e['reason']}: {e['message']}" for e in sorted(items, key=lambda e: e["metadata"]["name"])]


def owned_results(cluster: Cluster, namespace: str, run: dict[str, Any]) -> str:
    """A results ConfigMap owned by `run`, as the operator writes one for a run with results."""
    name = f"{run['metadata']['name']}-results"
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "locust.io/v2", "kind": "LocustTest", "name": run["metadata"]["name"],
            "uid": run["metadata"]["uid"], "controller": True}]}, "data": {"result.json": "{}"}}))
    return name


def test_schedules_make_runs_replace_aborts_forbid_skips_and_history_is_pruned(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "configmaps.yaml"))
    operator = OperatorProcess(cluster, [namespace], tmp_path, config_text="statsPollSeconds: 1\n")
    operator.start()
    try:
        for name, policy in (("replace", "Replace"), ("forbid", "Forbid")):
            cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(schedule(name, policy)))
        first = cluster.wait_for(lambda: (runs(cluster, namespace, "replace") or None), timeout=90,
                                 what="the first run of `replace`")[0]
        results = owned_results(cluster, namespace, first)
        # Two more ticks: the first run aborted by the second, the second by the third,
        # and the first (the older of two failed runs) deleted with its results.
        cluster.wait_for(lambda: len({r["metadata"]["name"] for r in runs(cluster, namespace, "replace")}
                                     | {first["metadata"]["name"]}) >= 3 or None,
                         timeout=150, what="the third run of `replace`")

        def pruned() -> list[dict[str, Any]] | None:
            now = runs(cluster, namespace, "replace")
            names = [r["metadata"]["name"] for r in now]
            return now if first["metadata"]["name"] not in names and len(now) == 2 else None

        kept = cluster.wait_for(pruned, timeout=60, what="the oldest failed run deleted")
        cluster.wait_for(lambda: cluster.kubectl("-n", namespace, "get", "configmap", results,
                                                 check=False).returncode != 0,
                         timeout=60, what="its results ConfigMap garbage-collected")
        forbid_runs = runs(cluster, namespace, "forbid")
        replace_status = cluster.kubectl_json("-n", namespace, "get", "lotestsched", "replace")["status"]
        forbid_events = events(cluster, namespace, "forbid")
        replace_events = events(cluster, namespace, "replace")
        columns = cluster.kubectl("-n", namespace, "get", "lotestsched").stdout
        waiting = subprocess.run([sys.executable, "-m", "locust_operator", "wait", "--schedule", "forbid",
                                  "-n", namespace, "--timeout", "3s"], capture_output=True, text=True,
                                 env=cluster.env, timeout=60)
    finally:
        operator.stop()
        print(f"--- operator log ---\n{operator.log()[-4000:]}")
    print(columns)

    # Replace: the older run aborted (Failed, Aborted), the newest live; runs are the template's.
    older, newest = kept
    assert (older["status"]["phase"], older["status"]["verdict"]) == ("Failed", "Aborted")
    assert newest["status"]["phase"] in ("Pending", "Running")
    for run in kept:
        labels = run["metadata"]["labels"]
        assert {k: labels[k] for k in ("team", "locust.io/series", "locust.io/schedule")} == {
            "team": "perf", "locust.io/series": "replace", "locust.io/schedule": "replace"}
        tick = run["metadata"]["annotations"]["operator.locust.io/scheduled-time"]
        assert run["metadata"]["name"] == "replace-" + time.strftime(
            "%Y%m%d-%H%M", time.strptime(tick, "%Y-%m-%dT%H:%M:%SZ"))
        assert run["metadata"]["ownerReferences"][0]["kind"] == "LocustTestSchedule"
    assert replace_status["live"] == [newest["metadata"]["name"]]
    assert replace_status["lastVerdict"] == "Aborted"
    assert [r["name"] for r in replace_status["recentRuns"]] == [newest["metadata"]["name"],
                                                                  older["metadata"]["name"]]
    assert any(e.startswith(f"RunReplaced: aborting {first['metadata']['name']}") for e in replace_events)
    assert f"RunDeleted: deleted run {first['metadata']['name']} (history limits)" in replace_events

    # Forbid: one run, live through the later ticks, each skipped with an event.
    assert len(forbid_runs) == 1 and forbid_runs[0]["status"]["phase"] in ("Pending", "Running")
    assert any(e.startswith("RunSkipped: skipped the run of ") and
               f"{forbid_runs[0]['metadata']['name']} still running (concurrencyPolicy Forbid)" in e
               for e in forbid_events), forbid_events
    # `wait --schedule` follows the live run (and times out here: it never ends).
    assert waiting.returncode == 2, waiting.stdout + waiting.stderr
    assert f"{forbid_runs[0]['metadata']['name']}: timed out after 3s" in waiting.stderr
    assert columns.split("\n")[0].split()[:5] == ["NAME", "SCHEDULE", "SUSPEND", "LIVE", "LAST"]
