"""How much etcd grows per kept run: LocustTests with a final status and their results ConfigMaps.

On its own local control plane (`scripts/cluster up` in a temp CLUSTER_DIR, `down` at the end), with
the LocustTest CRD: one real Locust run's results (master + 2 workers on loopback, 20 request names,
every 20th request of a path fails), packed by `report_texts` + `configmap_data` as the operator does;
per variant, in a fresh namespace, 100 LocustTests (status through the status subresource), then their
`<name>-results` ConfigMaps: (a) all with the HTML report, (b) only the newest 10. etcd's
`etcd_mvcc_db_total_size_in_bytes` / `_in_use_in_bytes` are read after a compaction + defrag (through
its gRPC gateway), right after each step's writes and after another compaction + defrag. Baselines:
the JSON bytes sent, and the bytes of the values etcd holds under those keys.

    python -m benchmarks.etcd_growth [--runs 100] [--keep-report 10] [--run-time 5s]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from tests.support.cluster import Cluster, cluster_env, cluster_script
from tests.support.operator import wait_until
from tests.support.real_locust import http_target, locust_run

from benchmarks.harness import create_namespace, locust_test
from benchmarks.results_size import locustfile
from locust_operator.api.contract import GROUP, PLURAL, REPORT_HTML_KEY, VERSION, results_name
from locust_operator.build.results_configmap import results_configmap
from locust_operator.rules.results import Packed, configmap_data, parse_requests_csv, report_texts, summary

CRD = Path(__file__).resolve().parents[1] / "charts/locust-operator/crds/locusttests.locust.io.yaml"
NOW = "2026-11-27T03:00:00Z"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def real_results(endpoints: int, run_time: str) -> tuple[dict[str, Any], dict[str, str]]:
    """status.result (without report) and the ConfigMap texts of one real Locust run."""
    with tempfile.TemporaryDirectory() as tmp, http_target(fail_every=20) as target, locust_run(
            Path(tmp), target, run_time=run_time, autoquit=30, users=10,
            locustfile_text=locustfile(endpoints)) as run:
        base = f"http://127.0.0.1:{run.web_port}"

        def stopped() -> bool:
            with contextlib.suppress(OSError):
                return bool(json.loads(_get(base + "/stats/requests")).get("state") == "stopped")
            return False

        wait_until(stopped, 120, 0.5, "the Locust run to stop")
        time.sleep(4)  # the workers' last report (Locust's 3 s interval)
        csv, failures, html = (_get(base + path) for path in
                               ("/stats/requests/csv", "/stats/failures/csv", "/stats/report?download=1"))
    stats = parse_requests_csv(csv, failures)
    result = summary(stats, "MasterApi", 10, 2)
    return result, report_texts(result, stats, csv, failures, html)


class Etcd:
    """The cluster's etcd: its metrics and its gRPC gateway (there is no etcdctl here)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.url + "/v3/" + path, json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def sizes(self) -> tuple[int, int]:
        """etcd_mvcc_db_total_size_in_bytes, etcd_mvcc_db_total_size_in_use_in_bytes."""
        found = dict(line.split(" ", 1) for line in _get(self.url + "/metrics").splitlines()
                     if line.startswith("etcd_mvcc_db_total_size_in_"))
        return (int(float(found["etcd_mvcc_db_total_size_in_bytes"])),
                int(float(found["etcd_mvcc_db_total_size_in_use_in_bytes"])))

    def compact_defrag(self) -> None:
        revision = int(self.call("maintenance/status", {})["header"]["revision"])
        try:
            self.call("kv/compaction", {"revision": revision, "physical": True})
        except urllib.error.HTTPError as exc:  # nothing written since the last compaction
            if b"compacted" not in exc.read():
                raise
        self.call("maintenance/defragment", {})

    def value_bytes(self, prefix: str) -> int:
        """The bytes of the values under `prefix`: what the API server stored."""
        key, end = prefix.encode(), prefix[:-1].encode() + bytes([ord(prefix[-1]) + 1])
        total = 0
        while True:
            page = self.call("kv/range", {"key": base64.b64encode(key).decode(),
                                          "range_end": base64.b64encode(end).decode(), "limit": 10})
            kvs = page.get("kvs", [])
            total += sum(len(base64.b64decode(kv.get("value", ""))) for kv in kvs)
            if not page.get("more") or not kvs:
                return total
            key = base64.b64decode(kvs[-1]["key"]) + b"\x00"


@dataclass
class Step:
    variant: str
    objects: str
    sent: int = 0
    stored: int = 0
    grown: int = 0
    in_use: int = 0
    compacted: int = 0


def measure(etcd: Etcd, step: Step, prefix: str, write: Any) -> Step:
    etcd.compact_defrag()
    size0, _ = etcd.sizes()
    step.sent = write()
    time.sleep(1)  # etcd commits its backend every 100 ms: the sizes follow
    size1, use1 = etcd.sizes()
    etcd.compact_defrag()
    size2, _ = etcd.sizes()
    step.grown, step.in_use, step.compacted = size1 - size0, use1 - size0, size2 - size0
    step.stored = etcd.value_bytes(prefix)
    return step


def _size(body: Any) -> int:
    return len(json.dumps(body).encode())  # as the kubernetes client sends it


def final_status(result: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    conditions = [{"type": kind, "status": "True", "reason": "TestSucceeded", "message": f"{kind}: done",
                   "lastTransitionTime": NOW, "observedGeneration": 1}
                  for kind in ("Ready", "WorkersConnected", "TestCompleted", "Finished", "PodsHealthy",
                               "JobsStopped")]
    return {"status": {
        "phase": "Succeeded", "observedGeneration": 1, "expectedWorkers": 2, "connectedWorkers": 2,
        "startTime": NOW, "completionTime": NOW, "verdict": "TestSucceeded",
        "locust": {"state": "stopped", "workerCount": 2, "userCount": 10, "maxUserCount": 10,
                   "maxWorkerCount": 2, "totalRps": result["rps"], "failRatio": result["failRatio"],
                   "failPercent": f"{float(result['failRatio']) * 100:.2f}", "responseTimeP50Ms": "1",
                   "responseTimeP95Ms": "3"},
        "result": {**result, "report": report}, "conditions": conditions}}


def variant(api: client.ApiClient, etcd: Etcd, name: str, runs: int, keep_report: int,
            result: dict[str, Any], full: Packed, bare: Packed) -> tuple[Step, Step]:
    """`runs` tests and ConfigMaps; only the newest `keep_report` ConfigMaps keep the report."""
    namespace = f"etcd-{name[1]}-{secrets.token_hex(2)}"
    create_namespace(api, namespace)
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    tests: list[Any] = []

    def packed(i: int) -> Packed:
        return full if i >= runs - keep_report else bare

    def write_tests() -> int:
        sent = 0
        for i in range(runs):
            test = locust_test(f"run-{i:03d}", namespace)
            test["metadata"]["labels"] = {"locust.io/series": "nightly"}
            sent += _size(test)
            tests.append(custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, test))
            status = final_status(result, {"configMap": results_name(f"run-{i:03d}"), "keys": packed(i).keys})
            sent += _size(status)
            custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, f"run-{i:03d}",
                                                         status)
        return sent

    def write_configmaps() -> int:
        sent = 0
        for i, test in enumerate(tests):
            body: Any = results_configmap(test["metadata"], packed(i).data, packed(i).binary_data)
            sent += _size(body)
            core.create_namespaced_config_map(namespace, body)
        return sent

    return (measure(etcd, Step(name, f"{runs} LocustTests + status"),
                    f"/registry/{GROUP}/{PLURAL}/{namespace}/", write_tests),
            measure(etcd, Step(name, f"{runs} ConfigMaps, {min(keep_report, runs)} with report"),
                    f"/registry/configmaps/{namespace}/", write_configmaps))


def print_tables(steps: list[Step], runs: int, texts: dict[str, str], full: Packed) -> None:
    def kb(n: float) -> str:
        return f"{n / 1000:,.1f}"

    header = ("variant", "objects", "JSON sent kB", "etcd values kB", "db growth kB", "in-use growth kB",
              "after compact+defrag kB", "per run kB", "db / sent")
    rows: list[tuple[str, ...]] = [
        (s.variant, s.objects, kb(s.sent), kb(s.stored), kb(s.grown), kb(s.in_use), kb(s.compacted),
         kb(s.compacted / runs), f"{s.compacted / s.sent:.2f}") for s in steps]
    for name in dict.fromkeys(s.variant for s in steps):
        mine = [s for s in steps if s.variant == name]
        total = [sum(getattr(s, f) for s in mine) for f in ("sent", "stored", "grown", "in_use", "compacted")]
        rows.append((name, "total", *map(kb, total), kb(total[4] / runs), f"{total[4] / total[0]:.2f}"))
    for row in (header, ("---",) * len(header), *rows):
        print("| " + " | ".join(row) + " |")
    print("\none results ConfigMap with the report, by key (bytes):")
    print("| key | text | stored |\n|---|---|---|")
    for key, text in texts.items():
        stored = full.data.get(key) or full.binary_data.get(key + ".gz", "")
        name = key if key in full.data else key + ".gz (gzip, base64)"
        print(f"| {name} | {len(text.encode()):,} | {len(stored.encode()):,} |")
    one = steps[1]  # variant (a): every ConfigMap alike but for its name and owner
    print(f"| whole ConfigMap: JSON sent / etcd value (mean) | | {one.sent // runs:,} / "
          f"{one.stored // runs:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--keep-report", type=int, default=10)
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--run-time", default="5s")
    args = parser.parse_args()
    result, texts = real_results(args.endpoints, args.run_time)
    full = configmap_data(texts)
    bare = configmap_data({k: v for k, v in texts.items() if k != REPORT_HTML_KEY})
    print(f"real run: {result['requests']} requests, {result['failures']} failures, "
          f"{len(result.get('topFailures', []))} top failures; keys {full.keys}", flush=True)

    cluster_dir = Path(tempfile.mkdtemp(prefix="etcd-growth-"))
    bin_dir = Path(cluster_script("bin-dir", env=dict(os.environ), capture=True).stdout.strip())
    env = {**cluster_env(cluster_dir / "kubeconfig", bin_dir), "CLUSTER_DIR": str(cluster_dir)}
    up = cluster_script("up", env=env, capture=True)
    if up.returncode:
        raise SystemExit(f"scripts/cluster up failed:\n{up.stderr[-3000:]}")
    try:
        cluster = Cluster(cluster_dir / "kubeconfig", bin_dir, env, cluster_dir)
        cluster.kubectl("create", "-f", str(CRD))
        cluster.wait_for(lambda: cluster.kubectl("get", "crd/locusttests.locust.io", "-o", "jsonpath="
                         "{.status.conditions[?(@.type=='Established')].status}").stdout == "True",
                         timeout=60, what="the LocustTest CRD")
        ports = dict(line.split("=", 1) for line in (cluster_dir / "ports.env").read_text().split())
        etcd = Etcd(int(ports["ETCD_CLIENT_PORT"]))
        config.load_kube_config(config_file=str(cluster_dir / "kubeconfig"))  # type: ignore[no-untyped-call]
        api = client.ApiClient()
        time.sleep(5)  # let the control plane's own start-up writes settle
        steps = [*variant(api, etcd, "(a) all reports", args.runs, args.runs, result, full, bare),
                 *variant(api, etcd, f"(b) last {args.keep_report} reports", args.runs, args.keep_report,
                          result, full, bare)]
        print_tables(steps, args.runs, texts, full)
    finally:
        cluster_script("down", env=env, capture=True)
        shutil.rmtree(cluster_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
