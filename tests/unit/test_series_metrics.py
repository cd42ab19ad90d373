"""SeriesMetrics: the latest run of each load-test series, as Prometheus scrapes it.

Every check reads the exposition back with prometheus_client's own text parser, so
what is asserted is what Prometheus would store: sample names, labels and values.
"""

from __future__ import annotations

import inspect
import itertools
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from locust_operator.api.contract import SERIES_LABEL
from locust_operator.controller import series_metrics as sm
from locust_operator.controller.series_metrics import SeriesMetrics

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
FULL_RESULT: dict[str, Any] = {
    "source": "api", "requests": 12000, "failures": 30, "failRatio": "0.0025", "rps": "40.1",
    "responseTimeMs": {"p50": 12, "p95": 250, "p99": 900, "avg": "12.3", "max": "1500.2"},
    "completionTime": "2026-03-01T12:00:00Z",
}
Labels = frozenset[tuple[str, str]]


def labels(**kv: str) -> Labels:
    return frozenset(kv.items())


def scrape(registry: CollectorRegistry) -> dict[tuple[str, Labels], float]:
    """(sample name, labels) -> value, parsed from the text exposition."""
    text = generate_latest(registry).decode()
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return samples


def types(registry: CollectorRegistry) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(generate_latest(registry).decode())}


def of_series(samples: dict[tuple[str, Labels], float], namespace: str, series: str) -> dict[str, float]:
    """Sample name -> value of one series (the info gauge under name{run,reason})."""
    found = {}
    for (name, lbls), value in samples.items():
        d = dict(lbls)
        if d.get("namespace") == namespace and d.get("series") == series:
            extra = {k: v for k, v in d.items() if k not in ("namespace", "series")}
            found[name + (str(sorted(extra.items())) if extra else "")] = value
    return found


def info(samples: dict[tuple[str, Labels], float], namespace: str, series: str) -> dict[str, str]:
    """The run and reason labels of a series' info sample (exactly one)."""
    rows = [dict(lbls) for (name, lbls), _ in samples.items()
            if name == sm.LAST_RUN_INFO and dict(lbls)["namespace"] == namespace
            and dict(lbls)["series"] == series]
    assert len(rows) == 1, rows
    return {"run": rows[0]["run"], "reason": rows[0]["reason"]}


def totals(samples: dict[tuple[str, Labels], float]) -> tuple[float, float]:
    return samples[(sm.TRACKED, frozenset())], samples[(sm.EVICTED, frozenset())]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> SeriesMetrics:
    return SeriesMetrics(registry)


def record(m: SeriesMetrics, series: str = "checkout", run: str = "checkout-1", *, namespace: str = "shop",
           passed: bool = True, reason: str = "TestSucceeded", result: Any = FULL_RESULT,
           finished: datetime = T0) -> None:
    m.record(namespace, series, run, passed, reason, result, finished)


# --------------------------------------------------------------------------- exposition


def test_a_full_run_is_exposed_in_base_units(registry: CollectorRegistry, metrics: SeriesMetrics) -> None:
    record(metrics)
    s = labels(namespace="shop", series="checkout")
    assert scrape(registry) == {
        (sm.RESPONSE_TIME_P50, s): 0.012,
        (sm.RESPONSE_TIME_P95, s): 0.25,
        (sm.RESPONSE_TIME_P99, s): 0.9,
        (sm.RESPONSE_TIME_AVERAGE, s): 0.0123,
        (sm.RPS, s): 40.1,
        (sm.FAILURE_RATIO, s): 0.0025,
        (sm.REQUESTS, s): 12000,
        (sm.FAILURES, s): 30,
        (sm.PASSED, s): 1,
        (sm.LAST_RUN_INFO, labels(namespace="shop", series="checkout", run="checkout-1",
                                  reason="TestSucceeded")): 1,
        (sm.LAST_RUN_TIMESTAMP, s): T0.timestamp(),
        (sm.TRACKED, frozenset()): 1,
        (sm.EVICTED, frozenset()): 0,
    }


def test_metric_names_are_the_exported_ones_and_typed(registry: CollectorRegistry,
                                                     metrics: SeriesMetrics) -> None:
    record(metrics)
    assert {name for name, _ in scrape(registry)} == set(sm.METRIC_NAMES)
    kinds = types(registry)
    assert kinds.pop("locust_operator_series_evicted") == "counter"  # the parser drops `_total`
    assert set(kinds.values()) == {"gauge"}
    for name in sm.METRIC_NAMES:  # Prometheus naming: base units, `_total` for counters only
        assert name.startswith(("locust_series_", "locust_operator_series_"))
        assert name.endswith("_total") == (name == sm.EVICTED)
        assert "_ms" not in name and "milliseconds" not in name


def test_an_empty_collector_exposes_only_the_totals(registry: CollectorRegistry,
                                                   metrics: SeriesMetrics) -> None:
    assert scrape(registry) == {(sm.TRACKED, frozenset()): 0, (sm.EVICTED, frozenset()): 0}


def test_a_failed_run_says_so_with_its_reason(registry: CollectorRegistry, metrics: SeriesMetrics) -> None:
    record(metrics, passed=False, reason="Regressed")
    samples = scrape(registry)
    assert samples[(sm.PASSED, labels(namespace="shop", series="checkout"))] == 0
    assert info(samples, "shop", "checkout") == {"run": "checkout-1", "reason": "Regressed"}


def test_registering_twice_in_one_registry_is_refused(registry: CollectorRegistry,
                                                     metrics: SeriesMetrics) -> None:
    """describe() names the metrics, so a second collector cannot shadow the first."""
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        SeriesMetrics(registry)


def test_defaults_and_construction() -> None:
    params = inspect.signature(SeriesMetrics).parameters
    assert params["registry"].default is REGISTRY
    assert params["max_series"].default == 1000
    unregistered = SeriesMetrics(None)  # no registry: nothing registered, still collectable
    record(unregistered)
    assert any(f.name == sm.PASSED and f.samples for f in unregistered.collect())
    with pytest.raises(ValueError, match="max_series"):
        SeriesMetrics(CollectorRegistry(), max_series=0)


# --------------------------------------------------------------------------- numbers

NUMBER_CASES = [
    # (result, metric, expected value; None: no sample)
    ({"rps": "40.1"}, sm.RPS, 40.1),
    ({"rps": "1e3"}, sm.RPS, 1000),
    ({"rps": " 7.5 "}, sm.RPS, 7.5),
    ({"rps": 40}, sm.RPS, 40),
    ({"rps": 40.5}, sm.RPS, 40.5),
    ({"rps": "0"}, sm.RPS, 0),
    ({"rps": "nan"}, sm.RPS, None),
    ({"rps": "inf"}, sm.RPS, None),
    ({"rps": float("nan")}, sm.RPS, None),
    ({"rps": float("inf")}, sm.RPS, None),
    ({"rps": "1_000"}, sm.RPS, None),
    ({"rps": "-1"}, sm.RPS, None),
    ({"rps": -1}, sm.RPS, None),
    ({"rps": ""}, sm.RPS, None),
    ({"rps": "12 rps"}, sm.RPS, None),
    ({"rps": "0x10"}, sm.RPS, None),
    ({"rps": "1" * 41}, sm.RPS, None),
    ({"rps": "1e999"}, sm.RPS, None),
    ({"rps": True}, sm.RPS, None),
    ({"rps": None}, sm.RPS, None),
    ({"rps": [1]}, sm.RPS, None),
    ({"rps": {"value": 1}}, sm.RPS, None),
    ({}, sm.RPS, None),
    ({"failRatio": "0.0025"}, sm.FAILURE_RATIO, 0.0025),
    ({"failRatio": "1"}, sm.FAILURE_RATIO, 1),
    ({"failRatio": "1.5"}, sm.FAILURE_RATIO, None),
    ({"requests": 12000}, sm.REQUESTS, 12000),
    ({"requests": "12000"}, sm.REQUESTS, 12000),
    ({"requests": 10**400}, sm.REQUESTS, None),
    ({"requests": 10**5000}, sm.REQUESTS, None),
    ({"failures": 3}, sm.FAILURES, 3),
    ({"responseTimeMs": {"p95": 250}}, sm.RESPONSE_TIME_P95, 0.25),
    ({"responseTimeMs": {"p95": "250"}}, sm.RESPONSE_TIME_P95, 0.25),
    ({"responseTimeMs": {"p99": 1}}, sm.RESPONSE_TIME_P99, 0.001),
    ({"responseTimeMs": {"p50": 0}}, sm.RESPONSE_TIME_P50, 0),
    ({"responseTimeMs": {"avg": "12.3"}}, sm.RESPONSE_TIME_AVERAGE, 0.0123),
    ({"responseTimeMs": {"p95": 250}}, sm.RESPONSE_TIME_P99, None),
    ({"responseTimeMs": {"p95": "slow"}}, sm.RESPONSE_TIME_P95, None),
    ({"responseTimeMs": [250]}, sm.RESPONSE_TIME_P95, None),
    ({"responseTimeMs": "250"}, sm.RESPONSE_TIME_P95, None),
    ({"p95": 250}, sm.RESPONSE_TIME_P95, None),  # only under responseTimeMs
]


@pytest.mark.parametrize(("result", "metric", "expected"), NUMBER_CASES,
                         ids=[f"{i}-{m.removeprefix('locust_series_')}"
                              for i, (_, m, _) in enumerate(NUMBER_CASES)])
def test_numbers_of_the_result(registry: CollectorRegistry, metrics: SeriesMetrics,
                               result: dict[str, Any], metric: str, expected: float | None) -> None:
    record(metrics, result=result)
    value = scrape(registry).get((metric, labels(namespace="shop", series="checkout")))
    assert value == expected


GARBAGE_RESULTS = [None, "no results", 42, [], [{"rps": "1"}], {"responseTimeMs": None},
                   {"rps": object(), "requests": {"x": 1}, "responseTimeMs": {"p95": object()}},
                   {"source": "unavailable", "message": "master unreachable"}]


@pytest.mark.parametrize("result", GARBAGE_RESULTS, ids=lambda r: type(r).__name__)
def test_garbage_results_still_give_the_verdict(registry: CollectorRegistry, metrics: SeriesMetrics,
                                                result: Any) -> None:
    record(metrics, result=result, passed=False, reason="TestFailed")
    assert of_series(scrape(registry), "shop", "checkout") == {
        sm.PASSED: 0,
        sm.LAST_RUN_INFO + "[('reason', 'TestFailed'), ('run', 'checkout-1')]": 1,
        sm.LAST_RUN_TIMESTAMP: T0.timestamp(),
    }


def test_random_junk_never_raises_nor_breaks_the_exposition(registry: CollectorRegistry,
                                                            metrics: SeriesMetrics) -> None:
    rng = random.Random(20260301)
    atoms: list[Any] = [None, True, -1, 0, 1.5, float("nan"), "", "x", "1e5", "\x00", "\ud800", [], {}]

    def junk(depth: int = 0) -> Any:
        if depth > 2 or rng.random() < 0.4:
            return rng.choice(atoms)
        keys = ["rps", "failRatio", "requests", "failures", "responseTimeMs", "p50", "p95", "avg"]
        return {rng.choice(keys): junk(depth + 1) for _ in range(rng.randint(0, 5))}

    for i in range(300):
        metrics.record(rng.choice(["shop", "\ud800", "a\nb", ""]), f"s{i % 17}", rng.choice(["r", "\x7f"]),
                       rng.random() < 0.5, rng.choice(["", "x" * 500, "Regressed", "\r\n"]), junk(),
                       T0 + timedelta(seconds=rng.randint(0, 100)))
    samples = scrape(registry)  # encodes and parses: no surrogate or newline broke it
    kept = {(dict(lbls)["namespace"], dict(lbls)["series"]) for name, lbls in samples if name == sm.PASSED}
    assert samples[(sm.TRACKED, frozenset())] == len(kept) > 0
    assert ("_", "s0") in kept or ("a_b", "s0") in kept or ("shop", "s0") in kept
    assert all(ns in ("shop", "_", "a_b") for ns, _ in kept)  # "" is no namespace: never kept


# --------------------------------------------------------------------------- labels


LABEL_CASES = [
    # (namespace, series, run, reason) given -> (namespace, series, run, reason) exposed
    (("shop", "s" * 200, "r", "Regressed"), ("shop", "s" * 63, "r", "Regressed")),
    (("n" * 100, "checkout", "r", "Regressed"), ("n" * 63, "checkout", "r", "Regressed")),
    (("shop", "checkout", "r" * 300, "Regressed"), ("shop", "checkout", "r" * 253, "Regressed")),
    (("shop", "checkout", "r", "R" * 500), ("shop", "checkout", "r", "R" * 128)),
    (("shop", "checkout", "r", "a\nb\x00c\ud800"), ("shop", "checkout", "r", "a_b_c_")),
    (("shop", "checkout", "r", 'quote" back\\slash'), ("shop", "checkout", "r", 'quote" back\\slash')),
    (("shop", "checkout", "r", ""), ("shop", "checkout", "r", "Unknown")),
    (("shop", "checkout", "", "Regressed"), ("shop", "checkout", "", "Regressed")),
]


@pytest.mark.parametrize(("given", "exposed"), LABEL_CASES, ids=range(len(LABEL_CASES)))
def test_label_values_are_bounded_and_printable(registry: CollectorRegistry, metrics: SeriesMetrics,
                                                given: tuple[str, ...], exposed: tuple[str, ...]) -> None:
    namespace, series, run, reason = given
    metrics.record(namespace, series, run, True, reason, FULL_RESULT, T0)
    samples = scrape(registry)
    ns, se, ru, re_ = exposed
    assert info(samples, ns, se) == {"run": ru, "reason": re_}
    assert samples[(sm.PASSED, labels(namespace=ns, series=se))] == 1


@pytest.mark.parametrize(("namespace", "series"), [("", "checkout"), ("shop", ""), ("shop", None)])
def test_no_namespace_or_no_series_is_not_kept(registry: CollectorRegistry, metrics: SeriesMetrics,
                                               namespace: str, series: Any) -> None:
    metrics.record(namespace, series, "r", True, "TestSucceeded", FULL_RESULT, T0)
    assert totals(scrape(registry)) == (0, 0)


def test_series_names_equal_in_their_first_63_characters_are_one_series(
        registry: CollectorRegistry, metrics: SeriesMetrics) -> None:
    """Capped labels are the key too, so two samples never share one label set."""
    record(metrics, series="s" * 63 + "-a", run="a", finished=T0)
    record(metrics, series="s" * 63 + "-b", run="b", finished=T0 + timedelta(seconds=1))
    samples = scrape(registry)
    assert totals(samples) == (1, 0)
    assert info(samples, "shop", "s" * 63)["run"] == "b"


# --------------------------------------------------------------------------- newer vs older

H = timedelta(hours=1)
ORDER_CASES = {
    # name: ([(run, finished offset, rps)] in the order recorded, the run kept, its rps)
    "newer-after-older": ([("r1", 0 * H, "1"), ("r2", 1 * H, "2")], "r2", 2),
    "older-after-newer": ([("r2", 1 * H, "2"), ("r1", 0 * H, "1")], "r2", 2),
    "oldest-last-of-three": ([("r2", 1 * H, "2"), ("r3", 2 * H, "3"), ("r1", 0 * H, "1")], "r3", 3),
    "same-run-again-updates": ([("r1", 0 * H, "1"), ("r1", 0 * H, "5")], "r1", 5),
    "same-second-higher-name": ([("r-b", 0 * H, "2"), ("r-a", 0 * H, "1")], "r-b", 2),
    "same-second-higher-name-last": ([("r-a", 0 * H, "1"), ("r-b", 0 * H, "2")], "r-b", 2),
}


@pytest.mark.parametrize(("runs", "kept", "rps"), ORDER_CASES.values(), ids=ORDER_CASES.keys())
def test_the_newest_run_wins_whatever_the_order(registry: CollectorRegistry, metrics: SeriesMetrics,
                                                runs: list[tuple[str, timedelta, str]], kept: str,
                                                rps: float) -> None:
    for run, offset, run_rps in runs:
        record(metrics, run=run, finished=T0 + offset, result={"rps": run_rps})
    samples = scrape(registry)
    finished = T0 + max(offset for run, offset, _ in runs if run == kept)
    assert info(samples, "shop", "checkout")["run"] == kept
    assert samples[(sm.RPS, labels(namespace="shop", series="checkout"))] == rps
    assert samples[(sm.LAST_RUN_TIMESTAMP, labels(namespace="shop", series="checkout"))] == \
        finished.timestamp()


def test_an_older_run_leaves_no_number_of_its_own(registry: CollectorRegistry,
                                                  metrics: SeriesMetrics) -> None:
    """The newer run had no p95: the older one's p95 must not appear beside it."""
    record(metrics, run="new", finished=T0 + H, result={"rps": "2"})
    record(metrics, run="old", finished=T0, result=FULL_RESULT)
    samples = of_series(scrape(registry), "shop", "checkout")
    assert sm.RESPONSE_TIME_P95 not in samples and samples[sm.RPS] == 2


def test_naive_times_are_utc(registry: CollectorRegistry, metrics: SeriesMetrics) -> None:
    record(metrics, run="aware", finished=T0)
    record(metrics, run="naive-older", finished=(T0 - H).replace(tzinfo=None))  # must not raise
    assert info(scrape(registry), "shop", "checkout")["run"] == "aware"
    record(metrics, run="naive-newer", finished=(T0 + H).replace(tzinfo=None))
    samples = scrape(registry)
    assert info(samples, "shop", "checkout")["run"] == "naive-newer"
    assert samples[(sm.LAST_RUN_TIMESTAMP, labels(namespace="shop", series="checkout"))] == \
        (T0 + H).timestamp()


def test_series_are_per_namespace(registry: CollectorRegistry, metrics: SeriesMetrics) -> None:
    record(metrics, namespace="team-a", run="a", finished=T0 + H)
    record(metrics, namespace="team-b", run="b", finished=T0)
    samples = scrape(registry)
    assert info(samples, "team-a", "checkout")["run"] == "a"
    assert info(samples, "team-b", "checkout")["run"] == "b"
    assert totals(samples) == (2, 0)


# --------------------------------------------------------------------------- forget


def test_forget_removes_every_sample_of_the_series(registry: CollectorRegistry,
                                                   metrics: SeriesMetrics) -> None:
    record(metrics, series="checkout")
    record(metrics, series="search", run="search-1")
    before = of_series(scrape(registry), "shop", "search")
    metrics.forget("shop", "checkout")
    samples = scrape(registry)
    assert of_series(samples, "shop", "checkout") == {}
    assert of_series(samples, "shop", "search") == before
    assert totals(samples) == (1, 0)  # forgetting is not evicting


def test_forget_of_an_unknown_series_and_recording_again(registry: CollectorRegistry,
                                                         metrics: SeriesMetrics) -> None:
    metrics.forget("shop", "never-seen")
    metrics.forget("other", "checkout")
    record(metrics, run="new", finished=T0 + H)
    metrics.forget("shop", "checkout")
    record(metrics, run="old", finished=T0)  # after forget, an older run is the latest again
    assert info(scrape(registry), "shop", "checkout")["run"] == "old"


def test_forget_caps_like_record(registry: CollectorRegistry, metrics: SeriesMetrics) -> None:
    record(metrics, series="s" * 100)
    metrics.forget("shop", "s" * 100)
    assert totals(scrape(registry)) == (0, 0)


# --------------------------------------------------------------------------- eviction


def test_beyond_max_series_the_least_recently_finished_is_evicted(registry: CollectorRegistry) -> None:
    m = SeriesMetrics(registry, max_series=2)
    # Recorded newest first: eviction follows `finished`, not the order of recording.
    record(m, series="newest", finished=T0 + 2 * H)
    record(m, series="oldest", finished=T0)
    record(m, series="middle", finished=T0 + H)
    samples = scrape(registry)
    assert totals(samples) == (2, 1)
    assert of_series(samples, "shop", "oldest") == {}
    assert of_series(samples, "shop", "newest") and of_series(samples, "shop", "middle")


def test_a_new_series_older_than_all_kept_is_itself_dropped(registry: CollectorRegistry) -> None:
    m = SeriesMetrics(registry, max_series=2)
    record(m, series="a", finished=T0 + H)
    record(m, series="b", finished=T0 + 2 * H)
    record(m, series="ancient", finished=T0)
    samples = scrape(registry)
    assert totals(samples) == (2, 1)
    assert of_series(samples, "shop", "ancient") == {}


def test_updating_a_kept_series_at_capacity_evicts_nothing(registry: CollectorRegistry) -> None:
    m = SeriesMetrics(registry, max_series=2)
    record(m, series="a", finished=T0)
    record(m, series="b", finished=T0 + H)
    record(m, series="a", run="a-2", finished=T0 + 2 * H)
    record(m, series="b", run="b-0", finished=T0 - H)  # older: ignored, not evicting either
    samples = scrape(registry)
    assert totals(samples) == (2, 0)
    assert info(samples, "shop", "a")["run"] == "a-2"
    assert info(samples, "shop", "b")["run"] == "checkout-1"


def test_a_flood_of_series_stays_bounded_and_keeps_the_newest(registry: CollectorRegistry) -> None:
    m = SeriesMetrics(registry, max_series=10)
    order = list(range(100))
    random.Random(7).shuffle(order)
    for i in order:
        record(m, series=f"s{i:03}", finished=T0 + i * timedelta(minutes=1))
    samples = scrape(registry)
    assert totals(samples) == (10, 90)
    kept = {dict(lbls)["series"] for name, lbls in samples if name == sm.PASSED}
    assert kept == {f"s{i:03}" for i in range(90, 100)}


# --------------------------------------------------------------------------- restore


def locusttest(name: str, *, series: Any = "checkout", namespace: Any = "shop", phase: Any = "Succeeded",
               verdict: Any = "TestSucceeded", completion: Any = "2026-03-01T12:00:00Z",
               result: Any = FULL_RESULT) -> dict[str, Any]:
    labels_ = {} if series is None else {SERIES_LABEL: series}
    status = {"phase": phase, "verdict": verdict, "completionTime": completion, "result": result}
    return {"apiVersion": "locust.io/v2", "kind": "LocustTest",
            "metadata": {"name": name, "namespace": namespace, "labels": labels_},
            "status": {k: v for k, v in status.items() if v is not None}}


RESTORE_OBJECTS: list[Any] = [  # garbage on purpose, hence Any
    locusttest("checkout-1", completion="2026-03-01T10:00:00Z", result={"rps": "10"}),
    locusttest("checkout-3", phase="Failed", verdict="Regressed", completion="2026-03-01T12:00:00Z",
               result={"rps": "30"}),
    locusttest("checkout-2", completion="2026-03-01T11:00:00Z", result={"rps": "20"}),
    locusttest("checkout-live", phase="Running", completion=None, result={"rps": "99"}),
    locusttest("checkout-pending", phase="Pending", completion=None),
    locusttest("search-1", series="search", verdict=None, result=None),
    locusttest("other-ns", namespace="team-b", completion="2026-03-01T09:00:00Z"),
    locusttest("no-series", series=None),
    locusttest("empty-series", series=""),
    locusttest("int-series", series=7),
    locusttest("no-time", series="no-time", completion=None, result={"rps": "1"}),
    locusttest("bad-time", series="bad-time", completion="yesterday", result={"rps": "1"}),
    locusttest("bad-times", series="bad-times", completion=1772366400,
               result={"completionTime": "2026-03-01 12:00"}),
    locusttest("time-in-result", series="late", completion=None,
               result={"rps": "5", "completionTime": "2026-03-01T08:00:00Z"}),
    locusttest("bad-phase", series="bad-phase", phase=["Succeeded"]),
    {"metadata": {"name": "no-status", "namespace": "shop", "labels": {SERIES_LABEL: "no-status"}}},
    {"metadata": {"name": "status-list", "namespace": "shop", "labels": {SERIES_LABEL: "x"}}, "status": []},
    {"metadata": {"name": "labels-list", "namespace": "shop", "labels": ["x"]}, "status": {}},
    {"metadata": None, "status": {"phase": "Succeeded"}},
    {},
    "not an object",
    None,
]


def test_restore_rebuilds_the_newest_terminal_run_of_each_series(registry: CollectorRegistry,
                                                                 metrics: SeriesMetrics) -> None:
    read = metrics.restore(RESTORE_OBJECTS)
    assert read == 6  # checkout-1/2/3, search-1, other-ns, time-in-result
    samples = scrape(registry)
    assert totals(samples) == (4, 0)
    assert info(samples, "shop", "checkout") == {"run": "checkout-3", "reason": "Regressed"}
    assert of_series(samples, "shop", "checkout")[sm.PASSED] == 0
    assert of_series(samples, "shop", "checkout")[sm.RPS] == 30  # not the live run's 99
    assert samples[(sm.LAST_RUN_TIMESTAMP, labels(namespace="shop", series="checkout"))] == \
        datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()
    assert info(samples, "shop", "search") == {"run": "search-1", "reason": "Unknown"}
    assert of_series(samples, "shop", "search")[sm.PASSED] == 1
    assert info(samples, "team-b", "checkout")["run"] == "other-ns"
    assert samples[(sm.LAST_RUN_TIMESTAMP, labels(namespace="shop", series="late"))] == \
        datetime(2026, 3, 1, 8, tzinfo=UTC).timestamp()


def test_restore_is_the_same_in_any_order(registry: CollectorRegistry) -> None:
    tests = RESTORE_OBJECTS[:7]
    expected = None
    for permutation in itertools.islice(itertools.permutations(tests), 0, 5040, 97):
        registry = CollectorRegistry()
        SeriesMetrics(registry).restore(permutation)
        if expected is None:
            expected = scrape(registry)
        assert scrape(registry) == expected


def test_restore_merges_with_runs_recorded_already(registry: CollectorRegistry,
                                                   metrics: SeriesMetrics) -> None:
    """An event handled before the startup list: the list's older runs must not undo it."""
    record(metrics, run="checkout-4", finished=datetime(2026, 3, 1, 13, tzinfo=UTC))
    metrics.restore(RESTORE_OBJECTS[:3])
    assert info(scrape(registry), "shop", "checkout")["run"] == "checkout-4"


def test_restore_respects_max_series(registry: CollectorRegistry) -> None:
    m = SeriesMetrics(registry, max_series=2)
    m.restore([locusttest(f"s{i}", series=f"s{i}", completion=f"2026-03-01T1{i}:00:00Z") for i in range(5)])
    samples = scrape(registry)
    assert totals(samples) == (2, 3)
    assert {dict(lbls)["series"] for name, lbls in samples if name == sm.PASSED} == {"s3", "s4"}


# --------------------------------------------------------------------------- threads


@pytest.mark.parametrize("call", ["collect", "record", "forget", "restore"])
def test_scrapes_and_updates_take_turns(registry: CollectorRegistry, call: str) -> None:
    """The metrics server scrapes in its own thread while the event loop records: every
    entry point waits for the collector's lock (here held by the test)."""
    m = SeriesMetrics(registry)
    actions: dict[str, Callable[[], object]] = {
        "collect": lambda: scrape(registry),
        "record": lambda: record(m),
        "forget": lambda: m.forget("shop", "checkout"),
        "restore": lambda: m.restore([locusttest("checkout-1")]),
    }
    done = threading.Event()

    def run() -> None:
        actions[call]()
        done.set()

    thread = threading.Thread(target=run)
    with m._lock:
        thread.start()
        assert not done.wait(0.2), f"{call} ran while the lock was held"
    assert done.wait(10)
    thread.join()
