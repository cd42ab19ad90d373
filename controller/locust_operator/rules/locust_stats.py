"""Live results of a running test, read from the Locust master's REST API.

The master serves `GET /stats/requests` on its web port (8089). While a test
is Running the controller reads it every `statsPollSeconds` and puts a summary
in the status: the workers Locust actually sees connected (not just worker pods
that exist), users, request rate, failure ratio and response times.
"""

from __future__ import annotations

import itertools
import urllib.parse
from collections.abc import Callable
from typing import Any

from locust_operator.rules.bounded import count, number
from locust_operator.rules.results import decimal

# Locust's runner states, as its web API reports them.
_STATES = {"ready", "spawning", "running", "cleanup", "stopping", "stopped", "missing"}


def stats_url(template: str, service: str, namespace: str, base_path: str = "") -> str:
    """The master's /stats/requests: the operator's template, under the test's web base
    path (spec.webUI) when it has one, e.g. http://demo-master.ns.svc:8089/locust/ns/demo/stats/requests."""
    url = urllib.parse.urlsplit(template.format(service=service, namespace=namespace))
    return urllib.parse.urlunsplit(url._replace(path=base_path + url.path)) if base_path else url.geturl()


# status.locust.userCount and workerCount are int32 in the CRD.
_INT32 = 2**31 - 1
# The most entries of the master's `workers` list looked at (the answer is size-capped
# before it is parsed; this bounds the loop as well).
MAX_WORKERS_READ = 100_000


# Locust's own threshold for its "CPU usage above 90%" warnings (locust.runners.CPU_WARNING_THRESHOLD).
CPU_WARNING_PERCENT = 90


def _count_workers(workers: Any, matches: Callable[[dict[str, Any]], bool]) -> int | None:
    """How many entries of the master's `workers` list match, or None when it is not a list."""
    if not isinstance(workers, list):
        return None
    return sum(1 for w in itertools.islice(workers, MAX_WORKERS_READ) if isinstance(w, dict) and matches(w))


def cpu_saturated_workers(workers: Any) -> int | None:
    """How many of the master's workers report CPU above Locust's warning threshold, or None.

    Each worker sends its process's CPU percent with every heartbeat; over 90% its users
    wait for the CPU, and the response times it measures grow with the wait.
    """
    return _count_workers(workers, lambda w: (number(w.get("cpu_usage"), 1e6) or 0) > CPU_WARNING_PERCENT)


def missing_workers(workers: Any) -> int | None:
    """How many of the master's workers Locust marks `missing` (their heartbeats stopped), or None."""
    return _count_workers(workers, lambda w: w.get("state") == "missing")


def _decimal(value: Any, places: int, limit: float) -> str | None:
    """A finite number in 0..limit as a plain decimal string ("153.5", "0.0125"), else None."""
    checked = number(value, limit)
    return None if checked is None else decimal(checked, places)


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The status summary of one /stats/requests report (pure).

    Every value is type- and range-checked (a master is the tenant's code): a
    missing or wrong one is left out, never copied into the status.
    """
    summary: dict[str, Any] = {}
    state = report.get("state")
    if isinstance(state, str) and state in _STATES:
        summary["state"] = state
    for source, target in (("user_count", "userCount"), ("worker_count", "workerCount")):
        value = count(report.get(source), _INT32)
        if value is not None:
            summary[target] = value
    missing = missing_workers(report.get("workers"))
    if missing:  # only when some are: a healthy run's status stays as it was
        summary["missingWorkerCount"] = missing
    saturated = cpu_saturated_workers(report.get("workers"))
    if saturated:
        summary["cpuSaturatedWorkerCount"] = saturated
    for source, target, places, limit in (("total_rps", "totalRps", 1, 1e12),
                                          ("fail_ratio", "failRatio", 4, 1.0)):
        text = _decimal(report.get(source), places, limit)
        if text is not None:
            summary[target] = text
    percentiles = report.get("current_response_time_percentiles")
    if isinstance(percentiles, dict):
        for source, target in (("response_time_percentile_0.5", "responseTimeP50Ms"),
                               ("response_time_percentile_0.95", "responseTimeP95Ms")):
            text = _decimal(percentiles.get(source), 1, 1e9)
            if text is not None:
                summary[target] = text
    return summary
