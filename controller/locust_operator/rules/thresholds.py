"""Evaluate `spec.thresholds` on a run's final stats (pure).

Each breach is one line naming the threshold and the measured value, e.g.
`p95 812 ms > 500 ms` or `POST /checkout fail ratio 0.05 > 0`. Decimals in the
spec are strings (no floats in the API), compared as Decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from locust_operator.rules.results import RequestStats, RunStats, decimal

_PERCENTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def thresholds_set(thresholds: Mapping[str, Any] | None) -> bool:
    return bool(thresholds) and any(value not in (None, {}, []) for value in thresholds.values())  # type: ignore[union-attr]


def _measured(value: float, places: int) -> Decimal:
    return Decimal(decimal(value, places))


def _check(rules: Mapping[str, Any], entry: RequestStats, label: str) -> list[str]:
    prefix = f"{label} " if label else ""
    breaches: list[str] = []
    if entry.requests == 0:
        return [f"{prefix}no requests were made".strip()]
    if rules.get("maxFailRatio") is not None:
        ratio = _measured(entry.fail_ratio, 4)
        if ratio > Decimal(str(rules["maxFailRatio"])):
            breaches.append(f"{prefix}fail ratio {ratio} > {rules['maxFailRatio']}")
    if rules.get("minRps") is not None:
        rps = _measured(entry.rps, 1)
        if rps < Decimal(str(rules["minRps"])):
            breaches.append(f"{prefix}rps {rps} < {rules['minRps']}")
    times = rules.get("responseTimeMs") or {}
    for key, share in _PERCENTILES:
        limit = times.get(key)
        measured = entry.percentile(share)
        if limit is not None and measured is not None and measured > int(limit):
            breaches.append(f"{prefix}{key} {measured} ms > {limit} ms")
    if times.get("avg") is not None:
        avg = _measured(entry.avg_ms, 1)
        if avg > int(times["avg"]):
            breaches.append(f"{prefix}avg {avg} ms > {times['avg']} ms")
    return breaches


def evaluate(thresholds: Mapping[str, Any], stats: RunStats | None) -> list[str]:
    """Every breached threshold, one line each; [] when the run passed them all."""
    if stats is None:
        return ["no results to evaluate the thresholds on"]
    breaches = _check(thresholds, stats.total, "")
    for rule in thresholds.get("perRequest") or []:
        method = rule.get("method")
        label = f"{method} {rule['name']}" if method else str(rule["name"])
        matching = [r for r in stats.requests
                    if r.name == rule["name"] and (method is None or r.method == method)]
        if not matching:
            breaches.append(f"{label}: no requests were made")
        for entry in matching:
            entry_label = label if method or len(matching) == 1 else f"{entry.method} {entry.name}"
            breaches.extend(_check(rule, entry, entry_label))
    return breaches
