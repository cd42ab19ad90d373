"""Live results of a running test, read from the Locust master's REST API.

The master serves `GET /stats/requests` on its web port (8089). While a test
is Running the controller reads it every `statsPollSeconds` and puts a summary
in the status: the workers Locust actually sees connected (not just worker pods
that exist), users, request rate, failure ratio and response times.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from typing import Any

# Locust's runner states, as its web API reports them.
_STATES = {"ready", "spawning", "running", "cleanup", "stopping", "stopped", "missing"}


def stats_url(template: str, service: str, namespace: str) -> str:
    return template.format(service=service, namespace=namespace)


def fetch(url: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """The master's /stats/requests JSON, or None if it cannot be read (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            loaded = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _decimal(value: Any, places: int) -> str | None:
    """A finite number as a plain decimal string ("153.5", "0.0125", "12"), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    text = f"{value:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The status summary of one /stats/requests report (pure; tolerant of missing keys)."""
    summary: dict[str, Any] = {}
    state = report.get("state")
    if isinstance(state, str) and state in _STATES:
        summary["state"] = state
    for source, target in (("user_count", "userCount"), ("worker_count", "workerCount")):
        value = report.get(source)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            summary[target] = value
    for source, target, places in (("total_rps", "totalRps", 1), ("fail_ratio", "failRatio", 4)):
        text = _decimal(report.get(source), places)
        if text is not None:
            summary[target] = text
    percentiles = report.get("current_response_time_percentiles")
    if isinstance(percentiles, dict):
        for source, target in (("response_time_percentile_0.5", "responseTimeP50Ms"),
                               ("response_time_percentile_0.95", "responseTimeP95Ms")):
            text = _decimal(percentiles.get(source), 1)
            if text is not None:
                summary[target] = text
    return summary
