"""How big a test's kept results are: the results ConfigMap of real Locust runs.

Runs a real Locust master and 2 workers on loopback (the args `render` gives
them) against a local HTTP target where every 20th request of a path fails,
once with 1 request name and once with N (default 50), reads the master's
REST API after the run as the controller does, and packs the ConfigMap with
`results.configmap_data`. Prints raw and stored sizes per key; the 1-endpoint
run is the baseline of the same run time.

    python -m benchmarks.results_size [--endpoints 50] [--run-time 20s]
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.support.real_locust import http_target, locust_run

from locust_operator.rules.results import configmap_data, parse_requests_csv, report_texts, summary


def locustfile(endpoints: int) -> str:
    tasks = "\n".join(f"    @task\n    def ep{i}(self):\n        self.client.get('/ep/{i:02d}')\n"
                      for i in range(endpoints))
    return ("from locust import HttpUser, constant, task\n\n\n"
            f"class Visitor(HttpUser):\n    wait_time = constant(0.05)\n\n{tasks}")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def measure(endpoints: int, run_time: str) -> dict[str, int | str]:
    with tempfile.TemporaryDirectory() as tmp, http_target(fail_every=20) as target, locust_run(
            Path(tmp), target, run_time=run_time, autoquit=30, users=10,
            locustfile_text=locustfile(endpoints)) as run:
        base = f"http://127.0.0.1:{run.web_port}"
        while True:
            try:
                if json.loads(_get(base + "/stats/requests")).get("state") == "stopped":
                    break
            except OSError:
                pass
            time.sleep(0.5)
        time.sleep(2)  # the workers' last report
        csv, failures, html = (_get(base + path) for path in
                               ("/stats/requests/csv", "/stats/failures/csv", "/stats/report?download=1"))
    stats = parse_requests_csv(csv, failures)
    texts = report_texts(summary(stats, "MasterApi", 10, 2), stats, csv, failures, html)
    packed = configmap_data(texts)
    stored = sum(len(v.encode()) for v in packed.data.values()) + sum(
        len(v) for v in packed.binary_data.values())
    row: dict[str, int | str] = {"endpoints": endpoints, "requests": stats.total.requests}
    row.update({f"raw {k}": len(v.encode()) for k, v in texts.items()})
    row.update({"raw total": sum(len(v.encode()) for v in texts.values()), "stored total": stored,
                "gzipped keys": ", ".join(packed.binary_data) or "-",
                "left out": packed.truncated or "-"})
    assert all(base64.b64decode(v) for v in packed.binary_data.values())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--run-time", default="20s")
    args = parser.parse_args()
    rows = [measure(1, args.run_time), measure(args.endpoints, args.run_time)]
    for key in rows[0]:
        print(f"{key:24} " + "  ".join(f"{r.get(key, '')!s:>14}" for r in rows))


if __name__ == "__main__":
    main()
