"""LocustTestSchedules on the local control plane: runs made on a one-minute cadence.

Two schedules side by side (so the two ticks are waited for once): `replace`
aborts its live run at the second tick and keeps no failed run (its history
limit 0 deletes the aborted one), `forbid` skips the second tick while its run
is live. kwok keeps the runs' pods Running,
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
            "spec": {"schedule": "* * * * *", "concurrencyPolicy": policy, "failedRunsHistoryLimit": 0,
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
        # The second tick: the first run aborted (Failed), then deleted with its results
        # (no failed run is kept), the second live.

        def pruned() -> list[dict[str, Any]] | None:
            now = runs(cluster, namespace, "replace")
            names = [r["metadata"]["name"] for r in now]
            seen = names and all((r.get("status") or {}).get("phase") for r in now)
            return now if seen and first["metadata"]["name"] not in names else None

        (newest,) = cluster.wait_for(pruned, timeout=150, what="the first run aborted and deleted")
        cluster.wait_for(lambda: cluster.kubectl("-n", namespace, "get", "configmap", results,
                                                 check=False).returncode != 0,
                         timeout=60, what="its results ConfigMap garbage-collected")
        cluster.wait_for(lambda: any(e.startswith("RunSkipped: ")
                                     for e in events(cluster, namespace, "forbid")) or None,
                         timeout=90, what="forbid's second tick skipped")
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

    # Replace: the first run aborted by the second tick (then deleted), the newest live; runs
    # are the template's, named after their tick.
    assert newest["status"]["phase"] in ("Pending", "Running")
    labels = newest["metadata"]["labels"]
    assert {k: labels[k] for k in ("team", "locust.io/series", "locust.io/schedule")} == {
        "team": "perf", "locust.io/series": "replace", "locust.io/schedule": "replace"}
    tick = newest["metadata"]["annotations"]["operator.locust.io/scheduled-time"]
    assert newest["metadata"]["name"] == "replace-" + time.strftime(
        "%Y%m%d-%H%M", time.strptime(tick, "%Y-%m-%dT%H:%M:%SZ"))
    assert newest["metadata"]["ownerReferences"][0]["kind"] == "LocustTestSchedule"
    assert replace_status["live"] == [newest["metadata"]["name"]]
    assert replace_status["lastScheduleTime"] == tick
    first_name = first["metadata"]["name"]
    assert any(e.startswith(f"RunReplaced: aborting {first_name} for {newest['metadata']['name']}")
               for e in replace_events), replace_events
    assert f"RunDeleted: deleted run {first_name} (history limits)" in replace_events

    # Forbid: one run, live through the later ticks, each skipped with an event.
    assert len(forbid_runs) == 1 and forbid_runs[0]["status"]["phase"] in ("Pending", "Running")
    assert any(e.startswith("RunSkipped: skipped the run of ") and
               f"{forbid_runs[0]['metadata']['name']} still running (concurrencyPolicy Forbid)" in e
               for e in forbid_events), forbid_events
    # `wait --schedule` follows the live run (and times out here: it never ends).
    assert waiting.returncode == 2, waiting.stdout + waiting.stderr
    assert f"{forbid_runs[0]['metadata']['name']}: timed out after 3s" in waiting.stderr
    assert columns.split("\n")[0].split()[:5] == ["NAME", "SCHEDULE", "SUSPEND", "LIVE", "LAST"]
