"""Prometheus gauges of the latest run of every load-test series (docs/series-metrics.md).

LocustTests labelled `locust.io/series: NAME` form a series in their namespace. When a
run ends, `SeriesMetrics.record` keeps its verdict and numbers as the series' latest run;
`collect()` (called by the registry at each scrape) exposes them, one sample per series
and metric, so Prometheus keeps the history and a dashboard shows the trend across runs.

It is a custom collector over a bounded dict rather than labelled `Gauge`s: forgetting a
series removes all its samples at once, and beyond `max_series` series the one whose
latest run finished longest ago is evicted (counted in `locust_operator_series_evicted_total`),
so tenants creating series cannot grow the scrape without bound. Label values come from
tenants: they are capped and stripped of unprintable characters; numbers in `result` that
are missing or not plain non-negative decimals give no sample, never an exception.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from locust_operator.api.contract import SERIES_LABEL, SUCCEEDED, TERMINAL
from locust_operator.api.times import parse_timestamp

# Metric names as PromQL sees them (the counter with its `_total`).
RESPONSE_TIME_P50 = "locust_series_response_time_p50_seconds"
RESPONSE_TIME_P95 = "locust_series_response_time_p95_seconds"
RESPONSE_TIME_P99 = "locust_series_response_time_p99_seconds"
RESPONSE_TIME_AVERAGE = "locust_series_response_time_average_seconds"
RPS = "locust_series_requests_per_second"
FAILURE_RATIO = "locust_series_failure_ratio"
REQUESTS = "locust_series_requests"
FAILURES = "locust_series_failures"
PASSED = "locust_series_passed"
LAST_RUN_INFO = "locust_series_last_run_info"
LAST_RUN_TIMESTAMP = "locust_series_last_run_timestamp_seconds"
TRACKED = "locust_operator_series_tracked"
EVICTED = "locust_operator_series_evicted_total"

SERIES_LABELS = ("namespace", "series")


class _Number(NamedTuple):
    """A number of status.result and its gauge."""

    metric: str
    help: str
    unit: str  # the base unit the name ends with (OpenMetrics' UNIT), or ""
    path: tuple[str, ...]  # keys in status.result
    scale: int = 1  # divisor from the result's unit to the base unit (ms -> s: 1000)
    maximum: int | None = None  # larger values are garbage (no sample)


# One gauge per percentile rather than a `quantile` label: that label belongs to summaries
# (`promtool check metrics` rejects it on anything else), and aggregating across percentiles
# means nothing, which is the naming guide's cue to split a metric.
_NUMBERS = (
    _Number(RESPONSE_TIME_P50, "Median response time of the series' latest run (all requests)",
            "seconds", ("responseTimeMs", "p50"), 1000),
    _Number(RESPONSE_TIME_P95, "95th percentile response time of the series' latest run (all requests)",
            "seconds", ("responseTimeMs", "p95"), 1000),
    _Number(RESPONSE_TIME_P99, "99th percentile response time of the series' latest run (all requests)",
            "seconds", ("responseTimeMs", "p99"), 1000),
    _Number(RESPONSE_TIME_AVERAGE, "Mean response time of the series' latest run (all requests)",
            "seconds", ("responseTimeMs", "avg"), 1000),
    _Number(RPS, "Requests per second of the series' latest run (over its whole duration)", "", ("rps",)),
    _Number(FAILURE_RATIO, "Failed requests / requests of the series' latest run (0..1)", "ratio",
            ("failRatio",), maximum=1),
    _Number(REQUESTS, "Requests the series' latest run made", "", ("requests",)),
    _Number(FAILURES, "Failed requests of the series' latest run", "", ("failures",)),
)
METRIC_NAMES = (*(n.metric for n in _NUMBERS), PASSED, LAST_RUN_INFO, LAST_RUN_TIMESTAMP, TRACKED, EVICTED)

# Caps on label values: namespaces and label values are at most 63 characters in
# Kubernetes, object names 253; a reason is a CamelCase word, 128 is plenty.
MAX_LABEL_CHARS = 63
MAX_RUN_CHARS = 253
MAX_REASON_CHARS = 128
UNKNOWN_REASON = "Unknown"

# A plain decimal as the status writes numbers ("40.1", "0.0025", "1e3"); not nan, inf,
# "1_000" (float() takes all three), and short (no huge strings parsed at each record).
_DECIMAL = re.compile(r"[+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d{1,3})?")
_MAX_NUMBER_CHARS = 40


@dataclass(frozen=True)
class _Run:
    """The latest run of a series, its numbers already in base units (absent: None)."""

    run: str
    passed: bool
    reason: str
    finished: datetime
    numbers: tuple[float | None, ...]  # in base units, in the order of _NUMBERS; None: no sample

    def order(self) -> tuple[datetime, str]:
        """Newer runs sort later; the run name only breaks ties of the same second."""
        return self.finished, self.run


def _label(value: object, limit: int) -> str:
    """A tenant's string as a label value: printable characters only, at most `limit` of them."""
    if not isinstance(value, str):
        return ""
    return "".join(c if c.isprintable() else "_" for c in value[:limit])


def _decimal(value: object) -> Decimal | None:
    """A non-negative finite number from the status (int, float or decimal string), else None."""
    number: Decimal | int | float | str
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str) and len(value) <= _MAX_NUMBER_CHARS and _DECIMAL.fullmatch(value.strip()):
        number = value.strip()
    else:
        return None
    try:
        number = Decimal(number)
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() and number >= 0 else None


def _float(number: Decimal | None) -> float | None:
    if number is None:
        return None
    value = float(number)
    return value if math.isfinite(value) else None


def _numbers(result: object) -> tuple[float | None, ...]:
    """The numbers of a status.result in base units, None for each missing or garbage one."""
    values: list[float | None] = []
    for number in _NUMBERS:
        value: object = result
        for key in number.path:
            value = value.get(key) if isinstance(value, Mapping) else None
        parsed = _decimal(value)
        if parsed is not None and number.maximum is not None and parsed > number.maximum:
            parsed = None
        values.append(_float(parsed / number.scale if parsed is not None else None))
    return tuple(values)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


class SeriesMetrics(Collector):
    """The latest run of every series as gauges labelled namespace and series.

    Thread-safe: `record`/`forget`/`restore` run in the operator's event loop while the
    metrics server's thread calls `collect`.
    """

    def __init__(self, registry: CollectorRegistry | None = REGISTRY, max_series: int = 1000) -> None:
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, not {max_series}")
        self.max_series = max_series
        self._runs: dict[tuple[str, str], _Run] = {}
        self._evicted = 0
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    # ------------------------------------------------------------------ updates

    def record(self, namespace: str, series: str, run: str, passed: bool, reason: str,
               result: Mapping[str, Any] | None, finished: datetime) -> None:
        """Keep a run that ended as its series' latest, unless a newer one is kept already.

        "Newer" compares `finished` (then the run name, for runs of the same second). An
        empty namespace or series is no series: nothing is kept.
        """
        key = (_label(namespace, MAX_LABEL_CHARS), _label(series, MAX_LABEL_CHARS))
        if not all(key) or not isinstance(finished, datetime):
            return
        entry = _Run(run=_label(run, MAX_RUN_CHARS), passed=bool(passed),
                     reason=_label(reason, MAX_REASON_CHARS) or UNKNOWN_REASON,
                     finished=_aware(finished), numbers=_numbers(result))
        with self._lock:
            kept = self._runs.get(key)
            if kept is not None:
                if entry.order() >= kept.order():
                    self._runs[key] = entry
                return
            self._runs[key] = entry
            if len(self._runs) > self.max_series:
                oldest = min(self._runs, key=lambda k: self._runs[k].order())
                del self._runs[oldest]
                self._evicted += 1

    def forget(self, namespace: str, series: str) -> None:
        """Drop a series (e.g. its last run was deleted): its samples leave the next scrape."""
        key = (_label(namespace, MAX_LABEL_CHARS), _label(series, MAX_LABEL_CHARS))
        with self._lock:
            self._runs.pop(key, None)

    def restore(self, tests: Iterable[Mapping[str, Any]]) -> int:
        """Rebuild the series from LocustTest objects (e.g. a list after a restart).

        Only runs of a series in a terminal phase with a readable status.completionTime
        count; the newest per series wins, in any order, and merges with what is kept
        already. Anything malformed is skipped. Returns how many such runs it read.
        """
        recorded = 0
        for test in tests:
            run = _terminal_run(test)
            if run is not None:
                self.record(*run)
                recorded += 1
        return recorded

    # ------------------------------------------------------------------ exposition

    def describe(self) -> Iterator[Metric]:
        """The metric families without samples, so the registry knows the names at register()."""
        yield from self._families([], 0)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            runs = sorted(self._runs.items())
            evicted = self._evicted
        yield from self._families(runs, evicted)

    @staticmethod
    def _families(runs: list[tuple[tuple[str, str], _Run]], evicted: int) -> Iterator[Metric]:
        numbers = [_gauge(n.metric, n.help, unit=n.unit) for n in _NUMBERS]
        passed = _gauge(PASSED, "1 when the series' latest run passed (Succeeded), 0 when it failed")
        info = _gauge(LAST_RUN_INFO, "The series' latest run (LocustTest name) and verdict reason; value 1",
                      ("run", "reason"))
        finished = _gauge(LAST_RUN_TIMESTAMP, "Unix time the series' latest run completed", unit="seconds")
        for (namespace, series), run in runs:
            labels = [namespace, series]
            for family, value in zip(numbers, run.numbers, strict=True):
                if value is not None:
                    family.add_metric(labels, value)
            passed.add_metric(labels, 1.0 if run.passed else 0.0)
            info.add_metric([*labels, run.run, run.reason], 1.0)
            finished.add_metric(labels, run.finished.timestamp())
        yield from (*numbers, passed, info, finished)
        yield GaugeMetricFamily(TRACKED, "Series whose latest run the operator exposes", value=len(runs))
        yield CounterMetricFamily(EVICTED, "Series dropped because more than max_series were tracked",
                                  value=evicted)


def _gauge(name: str, documentation: str, extra: tuple[str, ...] = (), unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=[*SERIES_LABELS, *extra], unit=unit)


def _terminal_run(test: object) -> tuple[str, str, str, bool, str, Mapping[str, Any] | None, datetime] | None:
    """record()'s arguments for a LocustTest object that ended in a series, else None."""
    if not isinstance(test, Mapping):
        return None
    metadata, status = test.get("metadata"), test.get("status")
    if not isinstance(metadata, Mapping) or not isinstance(status, Mapping):
        return None
    labels = metadata.get("labels")
    series = labels.get(SERIES_LABEL) if isinstance(labels, Mapping) else None
    namespace, name, phase = metadata.get("namespace"), metadata.get("name"), status.get("phase")
    if not (isinstance(series, str) and series and isinstance(namespace, str) and namespace
            and isinstance(name, str) and phase in TERMINAL):
        return None
    result = status.get("result")
    result = result if isinstance(result, Mapping) else None
    finished = _time(status.get("completionTime")) or _time((result or {}).get("completionTime"))
    if finished is None:
        return None
    verdict = status.get("verdict")
    reason = verdict if isinstance(verdict, str) and verdict else UNKNOWN_REASON
    return namespace, series, name, phase == SUCCEEDED, reason, result, finished
