"""rules/baseline.py: choosing the baseline of a series and the regression math, table-driven;
and the verdict (rules/verdict.py) that both thresholds and the baseline decide."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from locust_operator.rules.baseline import (
    LAST_PASSED,
    MEDIAN,
    NAMED,
    BaselineError,
    choose,
    compare,
    kept_requests,
    metric,
)
from locust_operator.rules.observation import Observation
from locust_operator.rules.results import RequestStats, RunStats
from locust_operator.rules.verdict import judged
from tests.unit.test_status import NOW


def run(name: str, phase: str = "Succeeded", done: str | None = "2026-12-01T03:10:00Z",
        series: str | None = "nightly", **numbers: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"requests": 100, "failRatio": "0", "rps": "40",
                              "responseTimeMs": {"p50": 20, "p95": 150, "p99": 300, "avg": "30"}}
    result.update(numbers)
    status: dict[str, Any] = {"phase": phase, "result": result}
    if done:
        status["completionTime"] = done
    labels = {"locust.io/series": series} if series else {}
    return {"metadata": {"name": name, "namespace": "team", "labels": labels}, "status": status}


THIS = run("nightly-4", phase="Running", done=None)


@pytest.mark.parametrize(("baseline", "series", "mode", "chosen"), [
    # The last passed run by completion time (not by name or list order).
    ({}, [run("nightly-2", done="2026-12-02T03:10:00Z"), run("nightly-3", done="2026-12-01T03:10:00Z")],
     LAST_PASSED, ["nightly-2"]),
    # Failed, live and result-less runs are never a baseline; nor is the test itself.
    ({}, [run("nightly-3", phase="Failed", done="2026-12-03T03:10:00Z"), run("nightly-2", phase="Running"),
          {**run("nightly-1"), "status": {"phase": "Succeeded", "completionTime": "2026-12-03T00:00:00Z"}},
          run("nightly-0", done="2026-11-30T03:10:00Z"), {**THIS, "status": run("x")["status"]}],
     LAST_PASSED, ["nightly-0"]),
    # Ties on completion time: the later name.
    ({}, [run("nightly-a"), run("nightly-b")], LAST_PASSED, ["nightly-b"]),
    # The first run of a series: no baseline yet.
    ({}, [], LAST_PASSED, []),
    ({}, [THIS], LAST_PASSED, []),
    # Median: the last N passed, newest first; fewer when the series has fewer.
    ({"medianOf": 2}, [run("r1", done="2026-12-01T00:00:00Z"), run("r2", done="2026-12-02T00:00:00Z"),
                       run("r3", done="2026-12-03T00:00:00Z")], MEDIAN, ["r3", "r2"]),
    ({"medianOf": 5}, [run("r1")], MEDIAN, ["r1"]),
    # Named: that run, passed or not, as long as it has results.
    ({"run": "r1"}, [run("r1", phase="Failed"), run("r2", done="2026-12-09T00:00:00Z")], NAMED, ["r1"]),
    # A passed run without a completion time (or one that is not a timestamp) is no baseline.
    ({}, [run("nightly-1", done=None), run("nightly-0", done="2026-11-30T03:10:00Z")], LAST_PASSED,
     ["nightly-0"]),
    ({"medianOf": 3}, [run("nightly-1", done=None), run("nightly-0", done="2026-11-30T03:10:00Z")], MEDIAN,
     ["nightly-0"]),
    ({}, [{**run("nightly-1"), "status": {**run("nightly-1")["status"], "completionTime": 20261203}},
          run("nightly-0", done="2026-11-30T03:10:00Z")], LAST_PASSED, ["nightly-0"]),
])
def test_choose(baseline: dict[str, Any], series: list[dict[str, Any]], mode: str, chosen: list[str]) -> None:
    got_mode, runs = choose(baseline, THIS, series)
    assert (got_mode, [r["metadata"]["name"] for r in runs]) == (mode, chosen)


NO_SERIES = ("spec.baseline: the test has no label locust.io/series, so it is in no series to compare with")


@pytest.mark.parametrize(("baseline", "this", "series", "message"), [
    ({}, run("solo", series=None), [], NO_SERIES),
    # An empty label is no series either.
    ({}, {**run("solo"), "metadata": {"name": "solo", "labels": {"locust.io/series": ""}}}, [run("r1")],
     NO_SERIES),
    ({"run": "gone"}, THIS, [run("r1")], "spec.baseline.run: no LocustTest 'gone' in series 'nightly' "
     "of namespace 'team'"),
    # A run of another series is not in the list the controller reads (label-selected).
    ({"run": "other"}, THIS, [], "spec.baseline.run: no LocustTest 'other' in series 'nightly' "
     "of namespace 'team'"),
    ({"run": "r1"}, THIS, [{**run("r1"), "status": {"phase": "Running"}}],
     "spec.baseline.run: 'r1' has no final results"),
])
def test_choose_refuses_what_cannot_be_honoured(baseline: dict[str, Any], this: dict[str, Any],
                                                series: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(BaselineError) as caught:
        choose(baseline, this, series)
    assert str(caught.value) == message


def result(**numbers: Any) -> dict[str, Any]:
    return run("this", **numbers)["status"]["result"]


LIMITS = {"responseTimeMs": {"p50": "+10%", "p95": "+10%", "p99": "+20%", "avg": "+10%"}, "rps": "-5%",
          "failRatio": "+0.01"}


@pytest.mark.parametrize(("measured", "base", "breaches"), [
    # Within every allowed change (the limits themselves pass: they are "at most").
    ({}, {}, []),
    ({"responseTimeMs": {"p50": 22, "p95": 165, "p99": 360, "avg": "33"}, "rps": "38", "failRatio": "0.01"},
     {}, []),
    # Each metric beyond its limit, with the message format.
    ({"responseTimeMs": {"p50": 20, "p95": 190, "p99": 300, "avg": "30"}}, {},
     ["p95 190 ms vs 150 ms in r1 (+26.7% > +10%)"]),
    ({"responseTimeMs": {"p50": 23, "p95": 150, "p99": 361, "avg": "33.1"}}, {},
     ["p50 23 ms vs 20 ms in r1 (+15% > +10%)", "p99 361 ms vs 300 ms in r1 (+20.3% > +20%)",
      "avg 33.1 ms vs 30 ms in r1 (+10.3% > +10%)"]),
    ({"rps": "37.9"}, {}, ["rps 37.9 vs 40 in r1 (-5.3% < -5%)"]),
    ({"failRatio": "0.0502"}, {"failRatio": "0.04"}, ["fail ratio 0.0502 vs 0.04 in r1 (+0.0102 > +0.01)"]),
    # Better is never a breach: faster, more requests per second, fewer failures.
    ({"responseTimeMs": {"p95": 10}, "rps": "400", "failRatio": "0"}, {"failRatio": "0.5"}, []),
    # A zero baseline has no relative change; a failure ratio from zero is absolute.
    ({"responseTimeMs": {"p95": 5}, "rps": "5"}, {"responseTimeMs": {"p95": 0}, "rps": "0"}, []),
    ({"failRatio": "0.02"}, {"failRatio": "0"}, ["fail ratio 0.02 vs 0 in r1 (+0.02 > +0.01)"]),
    # Missing on either side, or not a number (a tenant may write a status): not compared.
    ({"responseTimeMs": {}}, {}, []),
    ({"responseTimeMs": {"p95": 900}}, {"responseTimeMs": {"p95": "fast"}, "rps": True}, []),
    ({"responseTimeMs": {"p95": 900}}, {"responseTimeMs": {"p95": "1" * 50}}, []),
    ({"responseTimeMs": {"p95": 900}}, {"responseTimeMs": {"p95": -1}}, []),
    ({"responseTimeMs": {"p95": 900}}, {"responseTimeMs": {"p95": "Infinity"}}, []),
])
def test_regression_math(measured: dict[str, Any], base: dict[str, Any], breaches: list[str]) -> None:
    out = compare(LIMITS, result(**measured), LAST_PASSED, [run("r1", **base)], "nightly")
    assert out.get("breaches", []) == breaches
    assert out["passed"] is (not breaches)
    assert out["runs"] == ["r1"] and out["mode"] == LAST_PASSED


def test_deltas_hold_every_overall_metric_with_its_limit_and_change() -> None:
    out = compare({"responseTimeMs": {"p95": "+10%"}}, result(responseTimeMs={"p50": 20, "p95": 190},
                                                                rps="44", failRatio="0.001"),
                  LAST_PASSED, [run("r1")], "nightly")
    by_metric = {d["metric"]: d for d in out["deltas"]}
    assert list(by_metric) == ["p50", "p95", "rps", "failRatio"]  # p99/avg missing in this run
    assert by_metric["p95"] == {"request": "", "metric": "p95", "baseline": "150", "measured": "190",
                                "change": "+26.7%", "limit": "+10%", "breached": True}
    assert by_metric["p50"] == {"request": "", "metric": "p50", "baseline": "20", "measured": "20",
                                "change": "+0%", "limit": "", "breached": False}
    assert by_metric["rps"]["change"] == "+10%" and by_metric["failRatio"]["change"] == "+0.001"


@pytest.mark.parametrize(("rules", "measured", "base", "delta"), [
    # A zero baseline: no relative change, whatever the limit.
    ({"responseTimeMs": {"p95": "+10%"}}, {"responseTimeMs": {"p95": 5}}, {"responseTimeMs": {"p95": 0}},
     {"metric": "p95", "baseline": "0", "measured": "5", "change": "n/a", "limit": "+10%"}),
    # The failure ratio's change in points, rounded to 4 places; the numbers to 4 places.
    ({"failRatio": "+0.01"}, {"failRatio": "0.01234"}, {"failRatio": "0.01"},
     {"metric": "failRatio", "baseline": "0.01", "measured": "0.0123", "change": "+0.0023",
      "limit": "+0.01"}),
    # A change that rounds to zero from below is +0, never -0.
    ({"responseTimeMs": {"p95": "+10%"}}, {"responseTimeMs": {"p95": "149.99"}}, {},
     {"metric": "p95", "baseline": "150", "measured": "149.99", "change": "+0%", "limit": "+10%"}),
    # A limit that is not a string (a status written by hand) is no limit.
    ({"responseTimeMs": {"p95": 10}}, {"responseTimeMs": {"p95": 190}}, {},
     {"metric": "p95", "baseline": "150", "measured": "190", "change": "+26.7%", "limit": ""}),
])
def test_delta_of_one_metric(rules: dict[str, Any], measured: dict[str, Any], base: dict[str, Any],
                             delta: dict[str, Any]) -> None:
    out = compare(rules, result(**measured), LAST_PASSED, [run("r1", **base)], "nightly")
    found = [d for d in out["deltas"] if d["metric"] == delta["metric"]]
    assert found == [{"request": "", **delta, "breached": False}]
    assert out["passed"] and "breaches" not in out


def test_median_of_the_baseline_runs_metric_by_metric() -> None:
    runs = [run("r1", responseTimeMs={"p95": 100}), run("r2", responseTimeMs={"p95": 300}),
            run("r3", responseTimeMs={"p95": 140}), run("r4", responseTimeMs={})]
    out = compare({"responseTimeMs": {"p95": "+10%"}}, result(responseTimeMs={"p95": 160}), MEDIAN, runs,
                  "nightly")
    assert out["breaches"] == ["p95 160 ms vs 140 ms in the median of 4 runs (+14.3% > +10%)"]
    two = compare({"responseTimeMs": {"p95": "+10%"}}, result(responseTimeMs={"p95": 160}), MEDIAN,
                  runs[:2], "nightly")
    assert two["passed"] and two["deltas"][0]["baseline"] == "200"


def test_no_baseline_yet_passes_and_says_so() -> None:
    out = compare(LIMITS, result(), LAST_PASSED, [], "nightly")
    assert out == {"mode": LAST_PASSED, "runs": [], "passed": True,
                   "message": "no baseline yet: no earlier passed run in series 'nightly'"}


def entry(method: str, name: str, p95: int, rps: str = "10") -> dict[str, Any]:
    return {"method": method, "name": name, "requests": 10, "failRatio": "0", "rps": rps,
            "responseTimeMs": {"p95": p95}}


@pytest.mark.parametrize(("rule", "mine", "theirs", "breaches", "labels"), [
    # By name and method.
    ({"name": "/cart", "method": "POST", "responseTimeMs": {"p95": "+10%"}},
     [entry("POST", "/cart", 300), entry("GET", "/cart", 900)],
     [entry("POST", "/cart", 200), entry("GET", "/cart", 100)],
     ["POST /cart p95 300 ms vs 200 ms in r1 (+50% > +10%)"], ["POST /cart"]),
    # By name: the entries of other names are not this rule's.
    ({"name": "/cart", "rps": "-5%"},
     [entry("GET", "/cart", 1, rps="10"), entry("GET", "/other", 1, rps="1")],
     [entry("GET", "/cart", 1, rps="10")], [], ["GET /cart"]),
    # An entry without a method (a status written by hand): labelled by its name alone.
    ({"name": "/cart", "rps": "-5%"}, [{"name": "/cart", "rps": "5"}], [{"name": "/cart", "rps": "10"}],
     ["/cart rps 5 vs 10 in r1 (-50% < -5%)"], ["/cart"]),
    # By name alone: each method against the same method of the baseline.
    ({"name": "/cart", "rps": "-5%"},
     [entry("GET", "/cart", 1, rps="5"), entry("POST", "/cart", 1, rps="10")],
     [entry("GET", "/cart", 1, rps="10"), entry("POST", "/cart", 1, rps="10")],
     ["GET /cart rps 5 vs 10 in r1 (-50% < -5%)"], ["GET /cart", "POST /cart"]),
    # Missing in the baseline: nothing to compare, no breach.
    ({"name": "/new", "responseTimeMs": {"p95": "+10%"}}, [entry("GET", "/new", 999)], [], [], []),
    # Not requested in this run: nothing to compare.
    ({"name": "/old", "responseTimeMs": {"p95": "+10%"}}, [], [entry("GET", "/old", 1)], [], []),
])
def test_per_request(rule: dict[str, Any], mine: list[dict[str, Any]], theirs: list[dict[str, Any]],
                     breaches: list[str], labels: list[str]) -> None:
    out = compare({"perRequest": [rule]}, result(perRequest=mine), LAST_PASSED,
                  [run("r1", perRequest=theirs)], "nightly")
    assert out.get("breaches", []) == breaches
    assert sorted({d["request"] for d in out["deltas"] if d["request"]}) == labels
    # Per request, only the metrics with an allowed change are listed.
    assert all(d["limit"] for d in out["deltas"] if d["request"])


def test_deltas_and_breaches_are_bounded() -> None:
    rules = [{"name": f"/r{i}", "responseTimeMs": {"p50": "+1%", "p95": "+1%"}} for i in range(80)]
    mine = [{**entry("GET", f"/r{i}", 900), "responseTimeMs": {"p50": 900, "p95": 900}} for i in range(80)]
    theirs = [{**entry("GET", f"/r{i}", 1), "responseTimeMs": {"p50": 1, "p95": 1}} for i in range(80)]
    out = compare({"perRequest": rules}, result(perRequest=mine), LAST_PASSED, [run("r1", perRequest=theirs)],
                  "nightly")
    assert len(out["deltas"]) == 100 and len(out["breaches"]) == 100


@pytest.mark.parametrize(("value", "expected"), [
    (150, Decimal(150)), ("40.5", Decimal("40.5")), ("0", Decimal(0)), (True, None), (None, None),
    ([1], None), ("-1", None), ("nan", None), ("1e400", None), ("x", None), ("9" * 41, None),
    # Neither an int nor a string: not a number of a status.
    (1.5, None), ({"value": 1}, None),
    # 40 characters are a number still; MAX_NUMBER is, one more is not.
    ("0.5" + "0" * 37, Decimal("0.5")), (10**15, Decimal(10**15)), (str(10**15), Decimal(10**15)),
    (10**15 + 1, None),
])
def test_metric_parses_within_bounds(value: Any, expected: Decimal | None) -> None:
    assert metric({"rps": value}, "rps") == expected
    assert metric({"responseTimeMs": {"p95": value}}, "p95") == expected
    assert metric({"responseTimeMs": "garbage"}, "p95") is None


def _stats(*entries: tuple[str, str]) -> RunStats:
    def one(method: str, name: str) -> RequestStats:
        return RequestStats(method=method, name=name, requests=10, failures=1, avg_ms=12.34, max_ms=50,
                            rps=2.5, percentiles=(10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20))
    return RunStats(requests=tuple(one(m, n) for m, n in entries), total=one("", "Aggregated"),
                    duration_seconds=4)


def test_kept_requests_are_those_the_rules_name() -> None:
    spec = {"thresholds": {"perRequest": [{"name": "/a", "method": "GET"}]},
            "baseline": {"perRequest": [{"name": "/b"}]}}
    kept = kept_requests(spec, _stats(("GET", "/a"), ("POST", "/a"), ("GET", "/b"), ("PUT", "/b"),
                                      ("GET", "/c")))
    assert [(k["method"], k["name"]) for k in kept] == [("GET", "/a"), ("GET", "/b"), ("PUT", "/b")]
    assert kept[0] == {"method": "GET", "name": "/a", "requests": 10, "failRatio": "0.1", "rps": "2.5",
                       "responseTimeMs": {"avg": "12.3", "p50": 10, "p95": 15, "p99": 17}}
    assert kept_requests({}, _stats(("GET", "/a"))) == []
    # A rule without a name (a spec the API server would refuse) names nothing.
    assert kept_requests({"baseline": {"perRequest": [{"method": "GET"}]}}, _stats(("GET", "/a"))) == []
    many = {"baseline": {"perRequest": [{"name": f"/{i}"} for i in range(150)]}}
    assert len(kept_requests(many, _stats(*(("GET", f"/{i}") for i in range(150))))) == 100


def test_kept_requests_round_the_ratio_to_4_places_and_rps_to_1() -> None:
    odd = RequestStats(method="GET", name="/a", requests=3, failures=1, avg_ms=12.34, max_ms=50, rps=2.37,
                       percentiles=None)
    stats = RunStats(requests=(odd,), total=odd, duration_seconds=4)
    assert kept_requests({"baseline": {"perRequest": [{"name": "/a"}]}}, stats) == [
        {"method": "GET", "name": "/a", "requests": 3, "failRatio": "0.3333", "rps": "2.4",
         "responseTimeMs": {"avg": "12.3"}}]


def _obs(thresholds: bool, baseline: bool) -> Observation:
    return Observation(generation=1, expected_workers=1, now=NOW, grace_seconds=60,
                       thresholds_set=thresholds, baseline_set=baseline)


NUMBERS = {"requests": 10, "failures": 0, "failRatio": "0", "rps": "2"}
REGRESSION = {"mode": LAST_PASSED, "runs": ["r1"], "passed": False,
              "breaches": ["p95 190 ms vs 150 ms in r1"]}


@pytest.mark.parametrize(("thresholds", "baseline", "result", "passed", "reason", "message"), [
    (False, True, {**NUMBERS, "baseline": {"runs": ["r1"], "passed": True}}, True, "TestSucceeded",
     "no regression vs r1: 10 requests"),
    (False, True, {**NUMBERS, "baseline": {"runs": ["r1", "r2"], "passed": True}}, True, "TestSucceeded",
     "no regression vs the median of 2 runs"),
    (False, True, {**NUMBERS, "baseline": {"runs": [], "passed": True, "message": "no baseline yet: x"}},
     True, "TestSucceeded", "no baseline yet: x: 10 requests"),
    (False, True, {**NUMBERS, "baseline": REGRESSION}, False, "Regressed",
     "regressed: p95 190 ms vs 150 ms in r1"),
    (False, True, {**NUMBERS, "baseline": {"passed": False, "error": "spec.baseline.run: no LocustTest"}},
     False, "BaselineInvalid", "spec.baseline.run: no LocustTest"),
    (False, True, {"source": "Unavailable", "message": "pod gone"}, False, "Regressed",
     "no results to compare with the baseline (pod gone)"),
    # Both apply: every breach in the message, the thresholds' reason first.
    (True, True, {**NUMBERS, "thresholds": {"passed": False, "breaches": ["p95 900 ms > 500 ms"]},
                  "baseline": REGRESSION}, False, "ThresholdsBreached",
     "thresholds breached: p95 900 ms > 500 ms; regressed: p95 190 ms vs 150 ms in r1"),
    (True, True, {**NUMBERS, "thresholds": {"passed": True, "breaches": []}, "baseline": REGRESSION},
     False, "Regressed", "regressed: p95"),
    (True, True, {**NUMBERS, "thresholds": {"passed": True, "breaches": []},
                  "baseline": {"runs": ["r1"], "passed": True}}, True, "TestSucceeded",
     "all thresholds passed, no regression vs r1: 10 requests"),
    (True, False, {**NUMBERS, "thresholds": {"passed": True, "breaches": []}}, True, "TestSucceeded",
     "all thresholds passed: 10 requests"),
])
def test_verdict_of_thresholds_and_baseline(thresholds: bool, baseline: bool, result: dict[str, Any],
                                            passed: bool, reason: str, message: str) -> None:
    got = judged(_obs(thresholds, baseline), result)
    assert got[:2] == (passed, reason)
    assert message in got[2], got[2]
