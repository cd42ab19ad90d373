"""A run's final results: parsed from what the Locust master reports, kept in the status (pure).

Two sources give the same `RunStats`:
- the master's REST API after the run ended (`/stats/requests/csv` and
  `/stats/failures/csv`, while `--autoquit` keeps the master up): the normal path;
- the master's final output in its pod log (`--json` prints every request's
  stats with its response-time histogram on exit): the fallback when the
  operator was not up while the master was.

`summary` turns them into `status.result`, `report_texts` into the keys of the
results ConfigMap, and `configmap_data` fits those under the object size limit.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import gzip
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from locust_operator.api.contract import FAILURES_CSV_KEY, REPORT_HTML_KEY, REQUESTS_CSV_KEY, RESULT_KEY
from locust_operator.rules import bounded

MASTER_API, MASTER_LOG, UNAVAILABLE = "MasterApi", "MasterLog", "Unavailable"
AGGREGATED = "Aggregated"
# Locust's own percentile columns (locust.stats.PERCENTILES_TO_REPORT).
PERCENTILES = (0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0)
TOP_FAILURES = 5
ERROR_CHARS = 200
# A ConfigMap's data must stay under 1 MiB; leave room for metadata.
CONFIGMAP_BUDGET = 1_000_000
# Keys larger than this are always gzipped: Locust's HTML report is ~1 MB of inlined
# script that compresses to a quarter, and every kept test's results live in etcd.
COMPRESS_OVER = 64 * 1024


class ResultsError(ValueError):
    """The master's output could not be read as results."""


@dataclasses.dataclass(frozen=True)
class RequestStats:
    method: str
    name: str
    requests: int
    failures: int
    avg_ms: float
    max_ms: float
    rps: float
    # Response time (ms) at each of PERCENTILES; None when there were no requests.
    percentiles: tuple[int, ...] | None

    def percentile(self, share: float) -> int | None:
        return None if self.percentiles is None else self.percentiles[PERCENTILES.index(share)]

    @property
    def fail_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclasses.dataclass(frozen=True)
class Failure:
    method: str
    name: str
    error: str
    occurrences: int


@dataclasses.dataclass(frozen=True)
class RunStats:
    requests: tuple[RequestStats, ...]  # one per (method, name), without the aggregate
    total: RequestStats
    duration_seconds: int | None
    failures: tuple[Failure, ...] = ()


def _percentile_label(share: float) -> str:
    text = f"{share * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


CSV_HEADER = ("Type", "Name", "Request Count", "Failure Count", "Median Response Time",
              "Average Response Time", "Min Response Time", "Max Response Time",
              "Average Content Size", "Requests/s", "Failures/s",
              *(_percentile_label(p) for p in PERCENTILES))


def _number(row: Mapping[str, str], column: str) -> float:
    """A finite, non-negative number of at most bounded.MAX_NUMBER (the CSV is the tenant's)."""
    raw = row.get(column) or 0
    try:
        value = bounded.number(float(raw))
    except (TypeError, ValueError):
        value = None
    if value is None:
        raise ResultsError(f"column {column!r}: not a number in range: {bounded.text(raw, 40)!r}")
    return value


# Request names and errors, as they reach the status and the breach messages.
NAME_CHARS = 200
# The longest run a duration may claim (a year); beyond it the duration is unknown.
_MAX_SECONDS = 366 * 86400


def _row_stats(row: Mapping[str, str]) -> RequestStats:
    requests = int(_number(row, "Request Count"))
    labels = [_percentile_label(p) for p in PERCENTILES]
    percentiles: tuple[int, ...] | None = None
    if requests and all((row.get(label) or "N/A") != "N/A" for label in labels):
        percentiles = tuple(int(_number(row, label)) for label in labels)
    return RequestStats(method=bounded.text(row.get("Type") or "", NAME_CHARS),
                        name=bounded.text(row.get("Name") or "", NAME_CHARS), requests=requests,
                        failures=int(_number(row, "Failure Count")),
                        avg_ms=_number(row, "Average Response Time"),
                        max_ms=_number(row, "Max Response Time"), rps=_number(row, "Requests/s"),
                        percentiles=percentiles)


def parse_requests_csv(text: str, failures_csv: str = "") -> RunStats:
    """RunStats from the master's /stats/requests/csv (and /stats/failures/csv)."""
    try:
        return _parse_csvs(text, failures_csv)
    except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit
        raise ResultsError(f"the master's CSV is malformed: {exc}") from exc


def _parse_csvs(text: str, failures_csv: str) -> RunStats:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not isinstance(rows[0], dict) or "Request Count" not in rows[0]:
        raise ResultsError("the requests CSV has no header or rows")
    entries = [_row_stats(row) for row in rows]
    total = next((e for e in entries if e.name == AGGREGATED and not e.method), None)
    if total is None:
        raise ResultsError("the requests CSV has no Aggregated row")
    requests = tuple(e for e in entries if e is not total)
    duration = round(total.requests / total.rps) if total.rps > 0 else None
    duration = duration if duration is not None and duration <= _MAX_SECONDS else None
    failures = tuple(
        Failure(method=bounded.text(row.get("Method") or "", NAME_CHARS),
                name=bounded.text(row.get("Name") or "", NAME_CHARS),
                error=bounded.text(row.get("Error") or "", ERROR_CHARS),
                occurrences=int(_number(row, "Occurrences")))
        for row in csv.DictReader(io.StringIO(failures_csv)))
    return RunStats(requests=requests, total=total, duration_seconds=duration, failures=failures)


def _histogram_percentile(histogram: Mapping[int, int], count: int, share: float) -> int:
    """Locust's own percentile of a {rounded ms: count} histogram."""
    wanted = int(count * share)
    processed = 0
    for response_time in sorted(histogram, reverse=True):
        processed += histogram[response_time]
        if count - processed <= wanted:
            return response_time
    return 0


def _entry_stats(method: str, name: str, requests: int, failures: int, total_ms: float,
                 max_ms: float, histogram: Mapping[int, int], seconds: float) -> RequestStats:
    if None in (bounded.count(requests), bounded.count(failures), bounded.number(total_ms),
                bounded.number(max_ms)):
        raise ValueError(f"{bounded.text(name, NAME_CHARS)}: a count or time out of range")
    method, name = bounded.text(method, NAME_CHARS), bounded.text(name, NAME_CHARS)
    counted = sum(histogram.values())
    percentiles = (tuple(_histogram_percentile(histogram, counted, p) for p in PERCENTILES)
                   if counted else None)
    return RequestStats(method=method, name=name, requests=requests, failures=failures,
                        avg_ms=total_ms / counted if counted else 0.0, max_ms=max_ms,
                        rps=requests / seconds if seconds > 0 else 0.0, percentiles=percentiles)


# Closing brackets tried, from the end of the log, before giving up (each costs a parse).
_JSON_TRIES = 3


def _final_json(log: str) -> list[Any]:
    """The last JSON array printed at column 0 of the log (Locust's `--json` output).

    One backward pass over the lines: a log is the tenant's output, so a log of
    nothing but brackets must not cost a parse per line.
    """
    lines = log.splitlines()
    end: int | None = None
    tries = 0
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if line == "[]" and end is None:
            return []
        if line == "]" and end is None:
            end = index
        elif line == "[" and end is not None:
            try:
                value = bounded.loads("\n".join(lines[index:end + 1]).encode())
            except bounded.Refused:
                value = None
            if isinstance(value, list):
                return value
            tries += 1
            if tries >= _JSON_TRIES:
                break
            end = None
    raise ResultsError("the master's log has no final stats (Locust prints them with --json on exit)")


def parse_final_json(log: str) -> RunStats:
    """RunStats from the master's log: the stats Locust prints on exit with `--json`."""
    entries = _final_json(log)
    requests: list[RequestStats] = []
    merged: dict[int, int] = {}
    totals = {"requests": 0, "failures": 0, "total_ms": 0.0, "max_ms": 0.0}
    start: float | None = None
    last: float | None = None
    try:
        for entry in entries:
            histogram = {int(float(k)): int(v) for k, v in (entry.get("response_times") or {}).items()}
            first, final = entry.get("start_time"), entry.get("last_request_timestamp")
            seconds = float(final) - float(first) if first is not None and final is not None else 0.0
            seconds = seconds if 0 < seconds <= _MAX_SECONDS else 0.0
            stats = _entry_stats(str(entry.get("method") or ""), str(entry.get("name") or ""),
                                 int(entry["num_requests"]), int(entry["num_failures"]),
                                 float(entry.get("total_response_time") or 0),
                                 float(entry.get("max_response_time") or 0), histogram, seconds)
            requests.append(stats)
            for key, value in histogram.items():
                merged[key] = merged.get(key, 0) + value
            totals["requests"] += stats.requests
            totals["failures"] += stats.failures
            totals["total_ms"] += float(entry.get("total_response_time") or 0)
            totals["max_ms"] = max(totals["max_ms"], stats.max_ms)
            if first is not None:
                start = float(first) if start is None else min(start, float(first))
            if final is not None:
                last = float(final) if last is None else max(last, float(final))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ResultsError(f"the master's final stats are malformed: {bounded.text(exc, 200)}") from exc
    seconds = (last - start) if start is not None and last is not None else 0.0
    seconds = seconds if 0 < seconds <= _MAX_SECONDS else 0.0  # inf, nan or years: unknown
    try:
        total = _entry_stats("", AGGREGATED, int(totals["requests"]), int(totals["failures"]),
                             totals["total_ms"], totals["max_ms"], merged, seconds)
    except ValueError as exc:
        raise ResultsError(f"the master's final stats are malformed: {exc}") from exc
    requests.sort(key=lambda r: (r.name, r.method))
    return RunStats(requests=tuple(requests), total=total,
                    duration_seconds=round(seconds) if seconds > 0 else None)


def requests_csv(stats: RunStats) -> str:
    """Locust's requests CSV layout, for results parsed from the log."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for entry in (*stats.requests, stats.total):
        percentiles: Sequence[Any] = entry.percentiles or ["N/A"] * len(PERCENTILES)
        writer.writerow([entry.method, entry.name, entry.requests, entry.failures,
                         entry.percentile(0.5) or 0, round(entry.avg_ms, 2), "", round(entry.max_ms, 2),
                         "", round(entry.rps, 3), "", *percentiles])
    return out.getvalue()


def decimal(value: float, places: int) -> str:
    text = f"{value:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _top_failures(stats: RunStats) -> list[dict[str, Any]]:
    failing = sorted((r for r in stats.requests if r.failures), key=lambda r: (-r.failures, r.name))
    top = []
    for entry in failing[:TOP_FAILURES]:
        errors = sorted((f for f in stats.failures if f.name == entry.name and f.method == entry.method),
                        key=lambda f: -f.occurrences)
        item: dict[str, Any] = {"method": entry.method, "name": entry.name, "failures": entry.failures}
        if errors:
            item["error"] = errors[0].error[:ERROR_CHARS]
        top.append(item)
    return top


def summary(stats: RunStats, source: str, users: int | None, workers: int | None) -> dict[str, Any]:
    """`status.result` for a run (without thresholds and report, which the caller adds)."""
    total = stats.total
    result: dict[str, Any] = {
        "source": source,
        "requests": total.requests,
        "failures": total.failures,
        "failRatio": decimal(total.fail_ratio, 4),
        "rps": decimal(total.rps, 1),
    }
    if stats.duration_seconds is not None:
        result["durationSeconds"] = stats.duration_seconds
    times: dict[str, Any] = {"avg": decimal(total.avg_ms, 1), "max": decimal(total.max_ms, 1)}
    for share, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        value = total.percentile(share)
        if value is not None:
            times[key] = value
    result["responseTimeMs"] = times
    if users is not None:
        result["users"] = users
    if workers is not None:
        result["workers"] = workers
    top = _top_failures(stats)
    if top:
        result["topFailures"] = top
    return result


def unavailable(message: str) -> dict[str, Any]:
    return {"source": UNAVAILABLE, "message": message}


def _stats_json(stats: RunStats) -> list[dict[str, Any]]:
    return [{"method": r.method, "name": r.name, "requests": r.requests, "failures": r.failures,
             "avgMs": round(r.avg_ms, 2), "maxMs": round(r.max_ms, 2), "rps": round(r.rps, 3),
             "percentilesMs": (None if r.percentiles is None
                               else dict(zip((_percentile_label(p) for p in PERCENTILES),
                                             r.percentiles, strict=True)))}
            for r in (*stats.requests, stats.total)]


def report_texts(result: Mapping[str, Any], stats: RunStats, requests_csv_text: str,
                 failures_csv_text: str | None, html: str | None) -> dict[str, str]:
    """The results ConfigMap's keys, in the order they are given up when space runs out."""
    texts = {RESULT_KEY: json.dumps({"result": result, "requests": _stats_json(stats)}, indent=1,
                                    sort_keys=True),
             REQUESTS_CSV_KEY: requests_csv_text}
    if failures_csv_text:
        texts[FAILURES_CSV_KEY] = failures_csv_text
    if html:
        texts[REPORT_HTML_KEY] = html
    return texts


@dataclasses.dataclass(frozen=True)
class Packed:
    data: dict[str, str]
    binary_data: dict[str, str]
    keys: list[str]
    truncated: str | None


def configmap_data(texts: Mapping[str, str], budget: int = CONFIGMAP_BUDGET) -> Packed:
    """Fit the texts under `budget` bytes: gzip large keys, then the largest first until it
    fits, then leave out the last keys."""
    data = dict(texts)
    binary: dict[str, str] = {}
    for key in [k for k, v in texts.items() if len(v.encode()) > COMPRESS_OVER]:
        binary[key + ".gz"] = base64.b64encode(gzip.compress(data.pop(key).encode(), 9)).decode()

    def size() -> int:
        return sum(len(k) + len(v.encode()) for k, v in data.items()) + sum(
            len(k) + len(v) for k, v in binary.items())

    for key in sorted(data, key=lambda k: -len(data[k].encode())):
        if size() <= budget:
            break
        binary[key + ".gz"] = base64.b64encode(gzip.compress(data.pop(key).encode(), 9)).decode()
    dropped = []
    for key in reversed(list(texts)):
        if size() <= budget or key == RESULT_KEY:
            break
        data.pop(key, None)
        binary.pop(key + ".gz", None)
        dropped.append(key)
    truncated = None
    if dropped:
        truncated = (f"left out {', '.join(dropped)}: the results exceed the "
                     f"{budget // 1000} kB a ConfigMap can keep, even compressed")
    keys = [k for k in texts if k in data or k + ".gz" in binary]
    return Packed(data=data, binary_data=binary, keys=keys, truncated=truncated)
