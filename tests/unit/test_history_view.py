"""The views of a series' runs and of two runs side by side (history_view.py, pure)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locust_operator.cli.history_view import (
    COMPARE_LIMIT,
    HistoryRow,
    compare_lines,
    history_html,
    history_json,
    history_rows,
    history_table,
)

EVIL = "<script>alert(1)</script>"


def result(p95: Any = 150, rps: Any = "40.1", ratio: Any = "0.0025", **extra: Any) -> dict[str, Any]:
    return {"source": "MasterApi", "requests": 1200, "failures": 3, "failRatio": ratio, "rps": rps,
            "durationSeconds": 30,
            "responseTimeMs": {"p50": 12, "p95": p95, "p99": 300, "avg": "20.5", "max": "900"}, **extra}


def run(name: str, start: str | None = "2026-11-30T03:00:00Z", phase: str | None = "Succeeded",
        verdict: str | None = "TestSucceeded", res: Any = None, created: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    for key, value in (("phase", phase), ("verdict", verdict), ("startTime", start), ("result", res)):
        if value is not None:
            status[key] = value
    metadata: dict[str, Any] = {"name": name, "namespace": "perf", "labels": {"locust.io/series": "nightly"}}
    if created:
        metadata["creationTimestamp"] = created
    return {"apiVersion": "locust.io/v2", "kind": "LocustTest", "metadata": metadata, "status": status}


def baseline(runs: list[str], passed: bool = True, deltas: list[dict[str, Any]] | None = None,
             **extra: Any) -> dict[str, Any]:
    return {"mode": "LastPassed", "runs": runs, "passed": passed, "deltas": deltas or [], **extra}


def delta(metric: str, change: str, breached: bool = True, request: str = "") -> dict[str, Any]:
    return {"metric": metric, "request": request, "baseline": "150", "measured": "190", "change": change,
            "limit": "+10%", "breached": breached}


def series(count: int = 5, regressed: int = 3) -> list[dict[str, Any]]:
    """`count` daily runs, oldest first (nightly-1 ...); run number `regressed` is Regressed."""
    tests = []
    for day in range(1, count + 1):
        verdict, phase = ("Regressed", "Failed") if day == regressed else ("TestSucceeded", "Succeeded")
        tests.append(run(f"nightly-{day}", f"2026-11-{day:02d}T03:00:00Z", phase, verdict,
                         result(p95=100 + 10 * day, rps=f"{40 + day}.5", ratio=f"0.00{day}")))
    return tests


# ---- rows ----------------------------------------------------------------------------------------------

def test_a_row_holds_the_runs_numbers() -> None:
    res = result(baseline=baseline(["nightly-20261130-0300"]))
    assert history_rows([run("nightly-20261201-0300", res=res)]) == [HistoryRow(
        name="nightly-20261201-0300", start="2026-11-30T03:00:00Z", phase="Succeeded",
        verdict="TestSucceeded",
        requests=1200, rps="40.1", p50=12, p95=150, p99=300, fail_percent="0.25",
        vs_baseline="ok vs nightly-20261130-0300")]


def test_rows_are_newest_first() -> None:
    tests = [
        run("b-same-time", "2026-11-30T03:00:00Z"),
        run("no-time", start=None),
        run("created-only", start=None, created="2026-11-30T05:00:00Z"),  # not started yet: by creation
        run("a-same-time", "2026-11-30T03:00:00Z"),
        run("offset", "2026-11-30T04:30:00+02:00"),  # 02:30 UTC: older than 03:00Z, though it sorts later
        run("newest", "2026-12-01T00:00:00Z", created="2026-01-01T00:00:00Z"),  # startTime wins
        run("also-no-time", start="yesterday"),
    ]
    assert [r.name for r in history_rows(tests)] == [
        "newest", "created-only", "a-same-time", "b-same-time", "offset", "also-no-time", "no-time"]


def test_the_start_of_an_unstarted_run_is_missing() -> None:
    (row,) = history_rows([run("pending", start=None, phase="Pending", verdict=None,
                               created="2026-11-30T05:00:00Z")])
    assert (row.start, row.phase, row.verdict, row.requests, row.vs_baseline) == \
        (None, "Pending", None, None, None)
    assert row.outcome == "pending"


@pytest.mark.parametrize(("phase", "verdict", "outcome"), [
    ("Succeeded", "TestSucceeded", "passed"),
    ("Failed", "Regressed", "regressed"),
    ("Succeeded", "Regressed", "regressed"),  # the verdict decides, whatever the phase
    ("Failed", "ThresholdsBreached", "failed"),
    ("Failed", "TestCrashed", "failed"),
    ("Failed", None, "failed"),
    ("Running", None, "pending"),
])
def test_the_outcome(phase: str, verdict: str | None, outcome: str) -> None:
    assert history_rows([run("r", phase=phase, verdict=verdict)])[0].outcome == outcome


@pytest.mark.parametrize(("base", "text"), [
    (None, None),
    (baseline([], message="no baseline yet: the first run of series nightly"), "first run"),
    (baseline([]), "first run"),
    (baseline([], message="baseline run nightly-0 not found"), "no baseline"),
    (baseline(["nightly-1"]), "ok vs nightly-1"),
    (baseline(["nightly-1"], deltas=[delta("p95", "+5.0%", breached=False)]), "ok vs nightly-1"),
    ({**baseline(["n-1", "n-2", "n-3"]), "mode": "Median"}, "ok vs median of 3 runs"),
    (baseline(["nightly-1"], passed=False, deltas=[delta("p95", "+26.7%")]), "+26.7% p95 vs nightly-1"),
    # the worst breached delta, by size: a drop of rps is as bad as a rise of latency
    (baseline(["nightly-1"], passed=False, deltas=[
        delta("p95", "+26.7%"), delta("p99", "+80.0%", breached=False), delta("rps", "-40.0%"),
        delta("p50", "+12.0%")]), "-40.0% rps vs nightly-1 (+2 more)"),
    (baseline(["nightly-1"], passed=False, deltas=[delta("p99", "+50.0%", request="GET /checkout")]),
     "+50.0% p99 of GET /checkout vs nightly-1"),
    (baseline(["nightly-1"], passed=False, deltas=[delta("failRatio", "n/a"), delta("p95", "+11.0%")]),
     "+11.0% p95 vs nightly-1 (+1 more)"),
    (baseline(["nightly-1"], passed=False, deltas=[delta("failRatio", "n/a")]), "n/a failRatio vs nightly-1"),
    (baseline(["nightly-1"], passed=False, breaches=["p95 190 ms vs 150 ms"]), "regressed vs nightly-1"),
    ({"mode": "LastPassed", "runs": ["nightly-1"]}, None),  # no outcome recorded
])
def test_vs_baseline(base: dict[str, Any] | None, text: str | None) -> None:
    res = result() if base is None else result(baseline=base)
    assert history_rows([run("r", res=res)])[0].vs_baseline == text


def test_zero_is_a_value_not_a_missing_one() -> None:
    res = {"requests": 0, "failures": 0, "failRatio": "0", "rps": "0",
           "responseTimeMs": {"p50": 0, "p95": 0, "p99": 0}}
    (row,) = history_rows([run("idle", res=res)])
    assert (row.requests, row.rps, row.p50, row.p95, row.p99, row.fail_percent) == (0, "0.0", 0, 0, 0, "0.00")
    assert history_table([row]).splitlines()[1].split()[3:9] == ["0", "0.0", "0", "0", "0", "0.00"]


def test_the_fail_percent_without_a_ratio_comes_from_the_counts() -> None:
    res = {"requests": 400, "failures": 3}
    assert history_rows([run("r", res=res)])[0].fail_percent == "0.75"


@pytest.mark.parametrize("status", [
    "Succeeded", ["phase"], None, 12,
    {"phase": 7, "verdict": ["x"], "startTime": 20261130, "result": "lots"},
    {"result": {"requests": "1200", "failures": -1, "failRatio": "2", "rps": "NaN",
                "responseTimeMs": {"p50": True, "p95": 1.5, "p99": 10**16}}},
    {"result": {"requests": 1.0, "rps": "Infinity", "failRatio": "1e999999", "responseTimeMs": [150]}},
    {"result": {"rps": "9" * 100, "failRatio": "-0.1", "baseline": {"runs": "nightly-1", "deltas": "x"}}},
    {"result": {"baseline": {"runs": [None, 3, ""], "passed": "yes",
                             "deltas": [None, "x", {"breached": True}]}}},
    {"startTime": "2026-13-45T99:00:00Z", "result": {"baseline": ["x"]}},
])
def test_garbage_is_missing_never_an_error(status: Any) -> None:
    test = {"metadata": {"name": "junk"}, "status": status}
    (row,) = history_rows([test])
    numbers = (row.start, row.requests, row.rps, row.p50, row.p95, row.p99, row.fail_percent)
    assert numbers == (None,) * 7
    assert row.vs_baseline in (None, "first run")  # the runs of a baseline are a list of names
    assert history_table([row]) and history_json([row]) and history_html("s", "n", [row])


def test_objects_that_are_not_mappings_are_skipped() -> None:
    assert [r.name for r in history_rows([None, "x", run("kept"), {"metadata": "x"}])] == ["kept", ""]  # type: ignore[list-item]


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["metadata", "status", "name", "result", "baseline", "deltas", "runs", "breached",
                         "change", "metric", "rps", "failRatio", "requests", "failures", "responseTimeMs",
                         "p95", "startTime", "phase", "verdict", "percentilesMs", "95%", "method"]),
        inner, max_size=6),
    max_leaves=30)


@settings(max_examples=150, deadline=None)
@given(st.lists(JSONISH, max_size=4), JSONISH, JSONISH)
def test_no_input_makes_a_view_raise(tests: list[Any], a_doc: Any, b_doc: Any) -> None:
    rows = history_rows(tests)
    assert history_table(rows) and history_json(rows) and history_html("s", "n", rows)
    compare_lines("a", a_doc, "b", b_doc)


# ---- text and JSON -------------------------------------------------------------------------------------

def test_the_table() -> None:
    tests = [run("nightly-1", "2026-11-01T03:00:00Z", res=result(baseline=baseline([]))),
             run("nightly-2", "2026-11-02T03:00:00Z", "Failed", "Regressed",
                 result(p95=190, baseline=baseline(["nightly-1"], False, [delta("p95", "+26.7%")]))),
             run("nightly-3", "2026-11-03T03:00:00Z", "Running", None)]
    assert history_table(history_rows(tests)) == (
        "NAME        START                  VERDICT         REQUESTS   RPS    P50   P95   P99   FAIL%"
        "   VS BASELINE\n"
        "nightly-3   2026-11-03T03:00:00Z   Running         -          -      -     -     -     -"
        "       -\n"
        "nightly-2   2026-11-02T03:00:00Z   Regressed       1200       40.1   12    190   300   0.25"
        "    +26.7% p95 vs nightly-1\n"
        "nightly-1   2026-11-01T03:00:00Z   TestSucceeded   1200       40.1   12    150   300   0.25"
        "    first run\n")


def test_the_table_of_no_runs_is_its_header() -> None:
    assert history_table([]) == \
        "NAME   START   VERDICT   REQUESTS   RPS   P50   P95   P99   FAIL%   VS BASELINE\n"


def test_control_characters_do_not_reach_the_terminal() -> None:
    (row,) = history_rows([run("r", verdict="Bad\x1b[2Jverdict\nsecond line")])
    assert row.verdict == "Bad?[2Jverdict second line"


def test_the_json() -> None:
    rows = history_rows([run("nightly-2", "2026-11-02T03:00:00Z",
                             res=result(baseline=baseline(["nightly-1"]))),
                         run("nightly-1", "2026-11-01T03:00:00Z", "Failed", "TestCrashed")])
    text = history_json(rows)
    assert json.loads(text) == [
        {"fail_percent": "0.25", "name": "nightly-2", "p50": 12, "p95": 150, "p99": 300, "phase": "Succeeded",
         "requests": 1200, "rps": "40.1", "start": "2026-11-02T03:00:00Z", "verdict": "TestSucceeded",
         "vs_baseline": "ok vs nightly-1"},
        {"fail_percent": None, "name": "nightly-1", "p50": None, "p95": None, "p99": None, "phase": "Failed",
         "requests": None, "rps": None, "start": "2026-11-01T03:00:00Z", "verdict": "TestCrashed",
         "vs_baseline": None}]
    assert text.index('"fail_percent"') < text.index('"name"') < text.index('"vs_baseline"')


# ---- HTML ----------------------------------------------------------------------------------------------

class Page(HTMLParser):
    """The charts' points and lines, and the table's rows, of a history page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.svg: str | None = None
        self.points: dict[str, list[dict[str, str]]] = {}
        self.paths: dict[str, list[dict[str, str]]] = {}
        self.texts: dict[str, list[str]] = {}
        self.titles: list[str] = []
        self.rows: list[dict[str, str]] = []
        self._in: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self._in.append(tag)
        if tag == "svg" and found.get("id", "").startswith("chart-"):
            self.svg = found["id"]
            self.points[self.svg], self.paths[self.svg], self.texts[self.svg] = [], [], []
        elif self.svg and tag == "circle":
            self.points[self.svg].append(found)
        elif self.svg and tag == "path":
            self.paths[self.svg].append(found)
        elif tag == "tr" and "data-run" in found:
            self.rows.append(found)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag == "svg":
            self.svg = None

    def handle_data(self, data: str) -> None:
        if self.svg and self._in and self._in[-1] == "text":
            self.texts[self.svg].append(data)
        if self.svg and self._in and self._in[-1] == "title":
            self.titles.append(data)


CHARTS = ("chart-p95", "chart-rps", "chart-fail")


def test_the_page_has_a_point_per_run_in_each_chart_oldest_left() -> None:
    rows = history_rows(series(5, regressed=3))
    page = Page(history_html("nightly", "perf", rows))
    for chart in CHARTS:
        points = page.points[chart]
        assert [p["data-run"] for p in points] == [f"nightly-{d}" for d in range(1, 6)]
        assert [p["class"] for p in points] == \
            ["point passed"] * 2 + ["point regressed"] + ["point passed"] * 2
        xs = [float(p["cx"]) for p in points]
        assert xs == sorted(xs) and len(set(xs)) == 5
        ys = [float(p["cy"]) for p in points]
        assert ys == sorted(ys, reverse=True) and len(set(ys)) == 5  # every series rises: up the page
    assert [p["data-value"] for p in page.points["chart-p95"]] == ["110", "120", "130", "140", "150"]
    assert [p["data-value"] for p in page.points["chart-rps"]] == ["41.5", "42.5", "43.5", "44.5", "45.5"]
    assert [p["data-value"] for p in page.points["chart-fail"]] == ["0.10", "0.20", "0.30", "0.40", "0.50"]
    assert "nightly-3: 130 ms (Regressed)" in page.titles
    assert "nightly-5: 45.5 rps (TestSucceeded)" in page.titles
    assert "nightly-1: 0.10% (TestSucceeded)" in page.titles
    # the y axis: from 0 in steps of 1, 2 or 5 x 10^n, to the first step at or above the largest value
    assert page.texts["chart-p95"][:5] == ["0", "50", "100", "150", "11-01 03:00"]
    assert page.texts["chart-rps"][:4] == ["0", "20", "40", "60"]
    assert page.texts["chart-fail"][:5] == ["0.0", "0.2", "0.4", "0.6", "11-01 03:00"]
    assert page.texts["chart-p95"][-5:] == ["11-01 03:00", "11-02 03:00", "11-03 03:00", "11-04 03:00",
                                            "11-05 03:00"]
    # the table, newest first, with the regressed run marked
    assert [(r["data-run"], r["class"]) for r in page.rows] == [
        ("nightly-5", "passed"), ("nightly-4", "passed"), ("nightly-3", "regressed"), ("nightly-2", "passed"),
        ("nightly-1", "passed")]


def test_a_point_the_larger_the_higher() -> None:
    tests = [run(f"r{i}", f"2026-11-0{i}T00:00:00Z", res=result(p95=p95))
             for i, p95 in enumerate([100, 400, 200], 1)]
    page = Page(history_html("s", "n", history_rows(tests)))
    cy = {p["data-run"]: float(p["cy"]) for p in page.points["chart-p95"]}
    top, bottom = 14, 230 - 36  # the plot area: 0 at the bottom, the axis' top (400) at the top
    assert cy == {"r1": pytest.approx(bottom - 100 / 400 * (bottom - top)), "r2": top,
                  "r3": pytest.approx(bottom - 200 / 400 * (bottom - top))}


def test_failed_runs_have_their_own_marker() -> None:
    tests = series(3, regressed=0)
    tests[1]["status"].update(phase="Failed", verdict="ThresholdsBreached")
    page = Page(history_html("s", "n", history_rows(tests)))
    assert [p["class"] for p in page.points["chart-p95"]] == ["point passed", "point failed", "point passed"]
    assert {r["class"] for r in page.rows} == {"passed", "failed"}


def test_a_run_without_numbers_breaks_the_line() -> None:
    tests = series(5, regressed=0)
    tests[2]["status"]["result"] = {"source": "Unavailable", "message": "the master never answered"}
    del tests[4]["status"]["result"]["responseTimeMs"]["p95"]
    page = Page(history_html("s", "n", history_rows(tests)))
    assert [p["data-run"] for p in page.points["chart-p95"]] == ["nightly-1", "nightly-2", "nightly-4"]
    assert [p["data-run"] for p in page.points["chart-rps"]] == ["nightly-1", "nightly-2", "nightly-4",
                                                                 "nightly-5"]
    (line,) = [p for p in page.paths["chart-rps"] if p.get("class") == "line"]
    assert re.fullmatch(r"M\S+ \S+ L\S+ \S+ M\S+ \S+ L\S+ \S+", line["d"])  # two pieces, the gap between
    (line,) = [p for p in page.paths["chart-p95"] if p.get("class") == "line"]
    assert re.fullmatch(r"M\S+ \S+ L\S+ \S+ M\S+ \S+", line["d"])  # the last piece: one point, no line
    assert [p["data-run"] for p in page.paths["chart-p95"] if p.get("class") == "nodata"] == ["nightly-3",
                                                                                             "nightly-5"]
    assert "nightly-3: no value (TestSucceeded)" in page.titles


@pytest.mark.parametrize("value", [0, 150])
def test_equal_values_make_a_flat_line(value: int) -> None:
    tests = [run(f"r{i}", f"2026-11-0{i}T00:00:00Z", res=result(p95=value, rps="0", ratio="0"))
             for i in (1, 2, 3)]
    page = Page(history_html("s", "n", history_rows(tests)))
    for chart in CHARTS:
        assert len({p["cy"] for p in page.points[chart]}) == 1
    assert page.points["chart-fail"][0]["cy"] == f"{230 - 36:.1f}"  # zero sits on the axis
    assert page.texts["chart-rps"][:4] == ["0.0", "0.5", "1.0", "11-01 00:00"]  # all zeros: 0 to 1


def test_one_run() -> None:
    page = Page(history_html("s", "n", history_rows(series(1, regressed=1))))
    for chart in CHARTS:
        (point,) = page.points[chart]
        assert point["class"] == "point regressed" and point["cx"] == f"{64 + (960 - 64 - 20) / 2:.1f}"


def test_no_runs() -> None:
    page = history_html("nightly", "perf", [])
    assert 'id="no-runs"' in page and "No runs of series <b>nightly</b> in namespace <b>perf</b> yet." in page
    assert "<svg" not in page and "<table" not in page


def test_names_are_escaped_everywhere() -> None:
    tests = series(3, regressed=2)
    tests[1]["metadata"]["name"] = EVIL
    tests[1]["status"]["verdict"] = EVIL
    tests[2]["status"]["result"]["baseline"] = baseline([f'"{EVIL}'], False,
                                                        [delta("p95", "+1%", request=EVIL)])
    page = history_html(f"nightly{EVIL}", f'perf"{EVIL}', history_rows(tests))
    assert "<script" not in page and "</script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f'data-run="{EVIL}"' not in page and 'data-run="&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    parsed = Page(page)
    assert parsed.points["chart-p95"][1]["data-run"] == EVIL  # the browser reads the name back as it was
    assert f"{EVIL}: 120 ms ({EVIL})" in parsed.titles


def test_the_page_is_self_contained() -> None:
    page = history_html("nightly", "perf", history_rows(series(5)))
    for needle in ("http://", "https://", "//", "src=", "href=", "url(", "@import", "<link", "<script",
                   "<img", "<iframe", "<object"):
        assert needle not in page.replace("</", ""), needle
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; " in page
    assert "<title>Series nightly in perf</title>" in page


# ---- compare -------------------------------------------------------------------------------------------

def stats(method: str, name: str, requests: int, failures: int, rps: float, avg: float,
          p50: int | None = None, p95: int | None = None, p99: int | None = None) -> dict[str, Any]:
    percentiles = None if p50 is None else {"50%": p50, "66%": p50, "95%": p95, "99%": p99, "100%": 900}
    return {"method": method, "name": name, "requests": requests, "failures": failures, "avgMs": avg,
            "maxMs": 900.0, "rps": rps, "percentilesMs": percentiles}


def doc(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"result": result(), "requests": list(entries)}


A = doc(stats("GET", "/checkout", 600, 0, 20.0, 30.5, 12, 150, 300),
        stats("GET", "/old", 10, 0, 0.3, 5.0, 5, 6, 7),
        stats("", "Aggregated", 1200, 3, 40.1, 20.5, 12, 150, 300))
B = doc(stats("GET", "/checkout", 700, 7, 23.3, 40.0, 12, 190, 0),
        stats("POST", "/new", 5, 5, 0.2, 1.0, 1, 1, 1),
        stats("", "Aggregated", 1300, 13, 43.3, 25.0))


def test_compare() -> None:
    assert compare_lines("run-a", A, "run-b", B) == [
        "A: run-a   B: run-b",
        "REQUEST        METRIC        A     B    CHANGE",
        "Aggregated     requests   1200  1300     +8.3%",
        "               rps        40.1  43.3     +8.0%",
        "               p50 ms       12     -         -",
        "               p95 ms      150     -         -",
        "               p99 ms      300     -         -",
        "               avg ms     20.5  25.0    +22.0%",
        "               fail %     0.25  1.00  +0.75 pp",
        "GET /checkout  requests    600   700    +16.7%",
        "               rps        20.0  23.3    +16.5%",
        "               p50 ms       12    12      0.0%",
        "               p95 ms      150   190    +26.7%",
        "               p99 ms      300     0   -100.0%",
        "               avg ms     30.5  40.0    +31.1%",
        "               fail %     0.00  1.00  +1.00 pp",
        "POST /new      only in B",
        "GET /old       only in A",
    ]


def test_compare_from_zero() -> None:
    a = doc(stats("GET", "/", 0, 0, 0.0, 0.0, 0, 0, 0), stats("", "Aggregated", 10, 0, 0.0, 0.0, 0, 5, 0))
    b = doc(stats("GET", "/", 10, 1, 1.0, 0.0, 0, 5, 0), stats("", "Aggregated", 10, 1, 0.0, 0.0, 0, 0, 0))
    lines = compare_lines("a", a, "b", b)
    assert [line.split()[-1] for line in lines[2:9]] == \
        ["0.0%", "0.0%", "0.0%", "-100.0%", "0.0%", "0.0%", "pp"]
    assert lines[8].split()[-4:] == ["0.00", "10.00", "+10.00", "pp"]
    assert [line.split()[-1] for line in lines[9:15]] == ["n/a", "n/a", "0.0%", "n/a", "0.0%", "0.0%"]
    assert lines[15].split()[-3:] == ["-", "10.00", "-"]  # no requests in A: no failure % there


def test_compare_reads_garbage_as_missing() -> None:
    for garbage in (None, [], "x", {"requests": "x"}, {"requests": [None, 1, {"method": 1, "name": "/"}]}):
        assert compare_lines("a", garbage, "b", {}) == ["A: a   B: b", "no per-request stats in either run"]
    a = doc({"method": "GET", "name": "/", "requests": "10", "failures": None, "rps": "fast", "avgMs": -1,
             "percentilesMs": {"50%": 1.5, "95%": True}})
    b = doc(stats("GET", "/", 10, 0, 1.0, 2.0, 1, 2, 3))
    assert [line.split()[-1] for line in compare_lines("a", a, "b", b)[2:]] == ["-"] * 7


def test_compare_bounds_its_output() -> None:
    many = doc(*(stats("GET", f"/item/{i:03d}", 1, 0, 1.0, 1.0, 1, 1, 1) for i in range(250)),
               stats("", "Aggregated", 250, 0, 250.0, 1.0, 1, 1, 1))
    lines = compare_lines("a", many, "b", doc())
    assert lines[2] == "Aggregated     only in A"
    assert lines[-2] == "GET /item/198  only in A"
    assert lines[-1] == f"... 51 more requests left out (at most {COMPARE_LIMIT} are compared)"
    assert len(lines) == 2 + COMPARE_LIMIT + 1


def test_compare_cuts_and_cleans_request_names() -> None:
    name = "/search?q=\x1b[31m" + "x" * 100
    (line,) = [line for line in compare_lines("a", doc(), "b", doc(stats("GET", name, 1, 0, 1.0, 1.0)))
               if "only in B" in line]
    assert line.startswith("GET /search?q=?[31mxxx") and "\x1b" not in line
    assert line.split()[1].endswith("...") and len(line.split()[1]) == 60 - 4
