"""Did it get worse? A run's final results against its baseline: earlier passed runs of its series (pure).

A series is the LocustTests of one namespace with the same `locust.io/series`
label. `choose` picks the baseline runs from the series as `spec.baseline` asks
(the last passed run, a named run, or the last N passed runs), `compare` turns
this run's `status.result` and theirs into `status.result.baseline`: the deltas
of every compared metric and a line per exceeded change, e.g.
`p95 190 ms vs 150 ms in nightly-20261130-0300 (+26.7% > +10%)`.

The other runs' statuses are read back from the API, and a tenant may write
their own tests' status: every number is parsed within bounds, and whatever is
not a number is a missing metric, never an error.

Rules of the math, table-tested: response times and RPS change relatively
(percent of the baseline), the failure ratio absolutely (points of the 0-1
ratio); a zero baseline has no relative change (`n/a`, not a breach); a metric
missing on either side is not compared.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from locust_operator.api.contract import SERIES_LABEL, SUCCEEDED
from locust_operator.rules import bounded
from locust_operator.rules.results import RunStats, decimal

LAST_PASSED, NAMED, MEDIAN = "LastPassed", "Named", "Median"
TIMES = ("p50", "p95", "p99", "avg")
METRICS = (*TIMES, "rps", "failRatio")
MAX_DELTAS = 100
# Decimals longer than this are not numbers (a tenant's status could hold anything).
_NUMBER_CHARS = 40
_LABELS = {"failRatio": "fail ratio"}


class BaselineError(ValueError):
    """spec.baseline cannot be honoured (one line naming the field)."""


def baseline_set(spec: Mapping[str, Any]) -> bool:
    return isinstance(spec.get("baseline"), dict)


def series_of(metadata: Mapping[str, Any]) -> str | None:
    series = (metadata.get("labels") or {}).get(SERIES_LABEL)
    return series if isinstance(series, str) and series else None


def _finished(test: Mapping[str, Any]) -> tuple[str, str]:
    status = test.get("status") or {}
    stamp = status.get("completionTime")
    return (stamp if isinstance(stamp, str) else "", str((test.get("metadata") or {}).get("name", "")))


def _has_results(test: Mapping[str, Any]) -> bool:
    result = (test.get("status") or {}).get("result")
    return isinstance(result, dict) and "requests" in result


def choose(baseline: Mapping[str, Any], this: Mapping[str, Any],
           series: Sequence[Mapping[str, Any]]) -> tuple[str, list[Mapping[str, Any]]]:
    """(mode, baseline runs newest first) from the other runs of this test's series.

    No runs is "no baseline yet"; a named run that is missing, of another series
    or without results raises BaselineError.
    """
    metadata = this.get("metadata") or {}
    name = metadata.get("name")
    if series_of(metadata) is None:
        raise BaselineError(f"spec.baseline: the test has no label {SERIES_LABEL}, so it is in no series "
                            "to compare with")
    others = [t for t in series if (t.get("metadata") or {}).get("name") != name]
    if baseline.get("run"):
        wanted = baseline["run"]
        named = [t for t in others if (t.get("metadata") or {}).get("name") == wanted]
        if not named:
            raise BaselineError(f"spec.baseline.run: no LocustTest {wanted!r} in series "
                                f"{series_of(metadata)!r} of namespace {metadata.get('namespace')!r}")
        if not _has_results(named[0]):
            raise BaselineError(f"spec.baseline.run: {wanted!r} has no final results")
        return NAMED, named
    passed = sorted((t for t in others if (t.get("status") or {}).get("phase") == SUCCEEDED
                     and _has_results(t) and _finished(t)[0]), key=_finished, reverse=True)
    if baseline.get("medianOf"):
        return MEDIAN, passed[:int(baseline["medianOf"])]
    return LAST_PASSED, passed[:1]


def _decimal(value: Any) -> Decimal | None:
    """A non-negative finite number from a status (int, or a decimal string), else None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value)
    if len(text) > _NUMBER_CHARS:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() and 0 <= number <= bounded.MAX_NUMBER else None


def metric(entry: Mapping[str, Any], name: str) -> Decimal | None:
    """One metric of a status.result (or one of its perRequest entries)."""
    if name in TIMES:
        times = entry.get("responseTimeMs")
        return _decimal(times.get(name)) if isinstance(times, dict) else None
    return _decimal(entry.get(name))


def _entries(result: Mapping[str, Any], name: str, method: str | None) -> dict[str, Mapping[str, Any]]:
    """This result's perRequest entries of a rule, by method."""
    found: dict[str, Mapping[str, Any]] = {}
    for entry in result.get("perRequest") or []:
        if isinstance(entry, dict) and entry.get("name") == name and (
                method is None or entry.get("method") == method):
            found[str(entry.get("method") or "")] = entry
    return found


def _median(values: Sequence[Decimal | None]) -> Decimal | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclasses.dataclass(frozen=True)
class _Scope:
    """One comparison: all requests ("" label) or one request, with its allowed changes."""

    label: str
    rules: Mapping[str, Any]
    measured: Mapping[str, Any] | None
    baselines: list[Mapping[str, Any] | None]


def _limit(rules: Mapping[str, Any], name: str) -> str | None:
    limit = (rules.get("responseTimeMs") or {}).get(name) if name in TIMES else rules.get(name)
    return limit if isinstance(limit, str) else None


def _change(name: str, measured: Decimal, base: Decimal) -> Decimal | None:
    """The change from base to measured: percent, or points of the ratio for failRatio."""
    if name == "failRatio":
        return measured - base
    if base == 0:
        return None
    return (measured - base) * 100 / base


def _signed(value: Decimal, places: int, suffix: str = "") -> str:
    """`value` with its sign, rounded half away from zero (-5.25 is -5.3, as people round)."""
    text = f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):+f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return ("+0" if text in ("-0", "+0") else text) + suffix


def _plain(value: Decimal) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def _breached(name: str, change: Decimal, limit: str) -> bool:
    allowed = Decimal(limit.rstrip("%"))
    return change < allowed if name == "rps" else change > allowed


def _delta(scope: _Scope, name: str, where: str) -> tuple[dict[str, Any], str | None] | None:
    measured = metric(scope.measured, name) if scope.measured is not None else None
    base = _median([metric(b, name) if b is not None else None for b in scope.baselines])
    limit = _limit(scope.rules, name)
    if measured is None or base is None:
        return None
    change = _change(name, measured, base)
    delta: dict[str, Any] = {"request": scope.label, "metric": name, "baseline": _plain(base),
                             "measured": _plain(measured), "limit": limit or "", "breached": False}
    if change is None:
        delta["change"] = "n/a"
        return delta, None
    shown = _signed(change, 4) if name == "failRatio" else _signed(change, 1, "%")
    delta["change"] = shown
    if limit is None or not _breached(name, change, limit):
        return delta, None
    delta["breached"] = True
    unit = " ms" if name in TIMES else ""
    op = "<" if name == "rps" else ">"
    prefix = f"{scope.label} " if scope.label else ""
    return delta, (f"{prefix}{_LABELS.get(name, name)} {_plain(measured)}{unit} vs {_plain(base)}{unit} "
                   f"in {where} ({shown} {op} {limit})")


def _scopes(baseline: Mapping[str, Any], result: Mapping[str, Any],
            runs: Sequence[Mapping[str, Any]]) -> list[_Scope]:
    results = [(r.get("status") or {}).get("result") or {} for r in runs]
    scopes = [_Scope("", baseline, result, list(results))]
    for rule in baseline.get("perRequest") or []:
        method = rule.get("method")
        mine = _entries(result, rule["name"], method)
        theirs = [_entries(r, rule["name"], method) for r in results]
        for key in sorted(mine):
            scopes.append(_Scope(f"{key} {rule['name']}".strip(), rule, mine[key],
                                 [t.get(key) for t in theirs]))
    return scopes


def compare(baseline: Mapping[str, Any], result: Mapping[str, Any], mode: str,
            runs: Sequence[Mapping[str, Any]], series: str) -> dict[str, Any]:
    """status.result.baseline: this run's result against the baseline runs (newest first)."""
    names = [str((r.get("metadata") or {}).get("name")) for r in runs]
    if not runs:
        return {"mode": mode, "runs": [], "passed": True,
                "message": f"no baseline yet: no earlier passed run in series {series!r}"}
    where = names[0] if len(names) == 1 else f"the median of {len(names)} runs"
    deltas: list[dict[str, Any]] = []
    breaches: list[str] = []
    for scope in _scopes(baseline, result, runs):
        for name in METRICS:
            found = _delta(scope, name, where)
            if found is None or (scope.label and not found[0]["limit"]):
                continue
            deltas.append(found[0])
            if found[1]:
                breaches.append(found[1])
    out: dict[str, Any] = {"mode": mode, "runs": names, "passed": not breaches,
                           "deltas": deltas[:MAX_DELTAS]}
    if breaches:
        out["breaches"] = breaches[:MAX_DELTAS]
    return out


def _rule_names(spec: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    rules = [*((spec.get("thresholds") or {}).get("perRequest") or []),
             *((spec.get("baseline") or {}).get("perRequest") or [])]
    return [(r["name"], r.get("method")) for r in rules if isinstance(r, dict) and "name" in r]


def kept_requests(spec: Mapping[str, Any], stats: RunStats) -> list[dict[str, Any]]:
    """status.result.perRequest: the final numbers of the requests the spec's rules name.

    Later runs of the series compare with them (the full per-request stats are in
    the results ConfigMap, which the operator may not read).
    """
    wanted = _rule_names(spec)
    kept: list[dict[str, Any]] = []
    for entry in stats.requests:
        if not any(entry.name == name and method in (None, entry.method) for name, method in wanted):
            continue
        times: dict[str, Any] = {"avg": decimal(entry.avg_ms, 1)}
        for share, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            value = entry.percentile(share)
            if value is not None:
                times[key] = value
        kept.append({"method": entry.method, "name": entry.name, "requests": entry.requests,
                     "failRatio": decimal(entry.fail_ratio, 4), "rps": decimal(entry.rps, 1),
                     "responseTimeMs": times})
        if len(kept) >= MAX_DELTAS:
            break
    return kept
