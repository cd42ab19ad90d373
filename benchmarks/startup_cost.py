"""What spec.python costs at start-up, on the real node: a test with requirements vs the same without.

Needs a real-node cluster that is up (`CLUSTER_DIR=D scripts/cluster up --real-node`; the
images imported by `scripts/images import --address D/realnode/containerd.sock`). Installs
the chart's operator (in-cluster, as the tests do), the tests' in-cluster package index
(tests/support/package_index.py: tabulate, python-slugify and text-unidecode) and a
target, then for 1 and for 20 worker pods, with and without `spec.python.requirements`,
creates a LocustTest and reads, from the pods' own statuses (the kubelet's timestamps,
1 s resolution): creation -> every Locust container started (the last of master and
workers), and the install step's time per pod (init container start to finish); and
creation -> Locust's own count of connected workers reaching N (status.locust.workerCount,
polled every 0.5 s here, published every 2 s by the operator). The baseline is the run
without requirements, in the same cluster, right before.

    python -m benchmarks.startup_cost --cluster-dir D [--workers 1 20] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.integration.test_real_e2e import target_objects
from tests.support import package_index
from tests.support.cluster import Cluster, cluster_env, cluster_script
from tests.support.real_operator import install_operator

LOCUSTFILE = """
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.5)

    @task
    def visit(self):
        self.client.get("/")
"""


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class Sample:
    workers: int
    requirements: bool
    containers_started_s: float
    connected_s: float | None
    install_s: list[float]
    most_workers: int  # the most Locust reported connected (status.locust.maxWorkerCount)
    verdict: str


def _test(name: str, image: str, ns: str, workers: int, requirements: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": image,
        "master": {"command": f"--locustfile /lotest/src/visit.py --host http://target:8080 -u {workers} "
                              f"-r {workers} --run-time 15s", "autoquit": {"timeout": 5}},
        "worker": {"command": "--locustfile /lotest/src/visit.py", "replicas": workers},
        "testFiles": {"configMapRef": "startup-files"},
    }
    if requirements:
        spec["python"] = {"requirements": ["tabulate==0.9.0", "python-slugify==8.0.4"],
                          "indexUrl": package_index.index_url(ns),
                          "trustedHosts": [package_index.index_host(ns)]}
    return {"apiVersion": "locust.io/v2", "kind": "LocustTest", "metadata": {"name": name}, "spec": spec}


def _pods(c: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = c.kubectl_json("-n", ns, "get", "pods", "-l",
                                                f"performance-test-name={name}")["items"]
    return pods


def _started(pod: dict[str, Any]) -> float | None:
    for status in pod["status"].get("containerStatuses") or []:
        state = status.get("state") or {}
        stamp = (state.get("running") or state.get("terminated") or {}).get("startedAt")
        if stamp:
            return _time(stamp)
    return None


def _install_seconds(pod: dict[str, Any]) -> float | None:
    for status in pod["status"].get("initContainerStatuses") or []:
        done = (status.get("state") or {}).get("terminated") or {}
        if status.get("name") == "install-requirements" and done.get("finishedAt"):
            return _time(done["finishedAt"]) - _time(done["startedAt"])
    return None


def measure(c: Cluster, ns: str, image: str, workers: int, requirements: bool) -> Sample:
    name = f"startup-{workers}-{'req' if requirements else 'plain'}-{secrets.token_hex(2)}"
    c.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(_test(name, image, ns, workers, requirements)))
    created = _time(c.kubectl_json("-n", ns, "get", "lotest", name)["metadata"]["creationTimestamp"])
    connected: float | None = None
    deadline = time.monotonic() + 300
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = c.kubectl_json("-n", ns, "get", "lotest", name).get("status") or {}
        if connected is None and (status.get("locust") or {}).get("workerCount") == workers:
            connected = time.time() - created
        if status.get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(0.5)
    pods = _pods(c, ns, name)
    starts = [s for s in (_started(p) for p in pods) if s is not None]
    installs = [s for s in (_install_seconds(p) for p in pods) if s is not None]
    sample = Sample(workers, requirements, max(starts) - created if starts else float("nan"), connected,
                    installs, int((status.get("locust") or {}).get("maxWorkerCount") or 0),
                    str(status.get("verdict")))
    if status.get("phase") != "Succeeded":
        completed = next((x for x in status.get("conditions", []) if x["type"] == "TestCompleted"), {})
        print(f"{name}: {status.get('verdict')}: {completed.get('message')}", flush=True)
    c.kubectl("-n", ns, "delete", "lotest", name, "--wait=true", "--timeout=120s", check=False)
    return sample


def _row(samples: list[Sample]) -> str:
    first = samples[0]
    started = statistics.median(s.containers_started_s for s in samples)
    connected = [s.connected_s for s in samples if s.connected_s is not None]
    installs = [i for s in samples for i in s.install_s]
    install = (f"{statistics.median(installs):.0f} s (max {max(installs):.0f} s)" if installs else "-")
    counted = f"{statistics.median(connected):.1f} s" if connected else "-"
    seen = ", ".join(f"{s.most_workers} ({s.verdict})" for s in samples)
    return (f"| {first.workers} | {'yes' if first.requirements else 'no'} | {started:.0f} s | "
            f"{counted} | {install} | {seen} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster-dir", type=Path, required=True)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--requirements", nargs="+", default=["no", "yes"], choices=["no", "yes"],
                        type=str)
    args = parser.parse_args()
    bin_dir = Path(cluster_script("bin-dir", env=dict(os.environ), capture=True).stdout.strip())
    kubeconfig = args.cluster_dir / "kubeconfig"
    c = Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, env=cluster_env(kubeconfig, bin_dir),
                cluster_dir=args.cluster_dir)
    suffix = secrets.token_hex(3)
    operator_ns, ns = f"startup-operator-{suffix}", f"startup-{suffix}"
    for name in (operator_ns, ns):
        c.kubectl("create", "namespace", name)
    image = package_index.locust_image()
    try:
        c.wait_for(lambda: c.kubectl("-n", ns, "get", "serviceaccount", "default", check=False)
                   .returncode == 0, timeout=60, what="ServiceAccount default")
        files = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "startup-files"},
                 "data": {"visit.py": LOCUSTFILE}}
        objects = [*target_objects(image), *package_index.index_objects(ns, package_index.download_wheels(),
                                                                          image), files]
        c.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                   "items": objects}))
        install_operator(c, f"startup-{suffix}", operator_ns, ns, 120)
        for deployment in ("target", package_index.NAME):
            c.run(str(c.bin_dir / "kubectl"), "-n", ns, "rollout", "status", f"deployment/{deployment}",
                  "--timeout=120s", timeout=130)
        print("| worker pods | requirements | creation -> all Locust containers started | "
              "creation -> Locust counts all workers | pip install per pod (median) | "
              "most workers Locust saw (verdict) |")
        print("|---|---|---|---|---|---|")
        for workers in args.workers:
            for requirements in (r == "yes" for r in args.requirements):
                samples = [measure(c, ns, image, workers, requirements) for _ in range(args.repeat)]
                print(_row(samples), flush=True)
    finally:
        c.helm("uninstall", f"startup-{suffix}", "-n", operator_ns, "--wait", check=False)
        for name in (ns, operator_ns):
            c.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


if __name__ == "__main__":
    main()
