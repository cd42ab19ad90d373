"""Final results and thresholds (pure): Locust's CSV and --json output, status.result, the ConfigMap.

The data files are real Locust 2.47 output (tests/unit/data): the master's
/stats/requests/csv read just after a run stopped, and the log of a master of
another run, which ends with the `--json` stats and Locust's own final tables.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from locust_operator.rules.results import (
    AGGREGATED,
    COMPRESS_OVER,
    CSV_HEADER,
    PERCENTILES,
    Failure,
    RequestStats,
    ResultsError,
    RunStats,
    configmap_data,
    decimal,
    parse_final_json,
    parse_requests_csv,
    report_texts,
    requests_csv,
    summary,
    unavailable,
)
from locust_operator.rules.thresholds import evaluate, thresholds_set

DATA = Path(__file__).parent / "data"


def _locust_printed_aggregate(log: str) -> tuple[int, list[int]]:
    """Locust's own final numbers for all requests: the count and the percentile row."""
    rows = [line.split() for line in log.splitlines() if line.strip().startswith("Aggregated")]
    percentiles = rows[-1][1:]  # "Aggregated  5 6 7 ... 33  48"
    return int(percentiles[-1]), [int(v) for v in percentiles[:-1]]


def test_csv_from_the_masters_api() -> None:
    stats = parse_requests_csv((DATA / "locust-requests.csv").read_text())
    assert [(r.method, r.name, r.requests) for r in stats.requests] == [("GET", "/", 19),
                                                                        ("GET", "health", 4)]
    assert (stats.total.name, stats.total.requests, stats.total.failures) == (AGGREGATED, 23, 0)
    assert stats.total.percentile(0.5) == 6 and stats.total.percentile(0.95) == 9
    assert stats.total.percentile(0.99) == 11
    assert stats.duration_seconds == 2  # 23 requests at 10.9/s
    assert round(stats.total.avg_ms, 2) == 6.27


def test_final_json_in_the_log_gives_locusts_own_numbers() -> None:
    log = (DATA / "locust-master.log").read_text()
    stats = parse_final_json(log)
    count, printed = _locust_printed_aggregate(log)
    assert stats.total.requests == count == 48
    assert list(stats.total.percentiles or ()) == printed  # same percentile rule as Locust's
    assert {r.name: r.requests for r in stats.requests} == {"/": 39, "health": 9}
    assert stats.duration_seconds == 4
    assert stats.total.max_ms == pytest.approx(33.3, abs=0.01)


@pytest.mark.parametrize(("log", "words"), [
    ("Starting Locust\nShutting down (exit code 1)\n", "no final stats"),
    ("[\n{\"name\": \n]\n", "no final stats"),
    ("[\n    {\"name\": \"/\"}\n]\n", "malformed"),
    ("[\n    {\"name\": \"/\", \"num_requests\": \"x\", \"num_failures\": 0}\n]\n", "malformed"),
])
def test_final_json_errors_say_what_is_wrong(log: str, words: str) -> None:
    with pytest.raises(ResultsError, match=words):
        parse_final_json(log)


def test_no_requests_at_all() -> None:
    stats = parse_final_json("[2026] Shutting down (exit code 0)\n[]\n")
    assert stats.total.requests == 0 and stats.total.percentiles is None
    assert summary(stats, "MasterLog", None, None)["failRatio"] == "0"


@pytest.mark.parametrize("text", ["", "a,b\n1,2\n", "Type,Name,Request Count\nGET,/,1\n",
                                  ",".join(CSV_HEADER) + "\nGET,/,x" + ",0" * 20 + "\n"])
def test_bad_csv_is_an_error(text: str) -> None:
    with pytest.raises(ResultsError):
        parse_requests_csv(text)


def test_csv_written_from_the_log_reads_back_the_same() -> None:
    stats = parse_final_json((DATA / "locust-master.log").read_text())
    again = parse_requests_csv(requests_csv(stats))
    assert [(r.name, r.requests, r.percentiles) for r in again.requests] == \
        [(r.name, r.requests, r.percentiles) for r in stats.requests]
    assert again.total.percentiles == stats.total.percentiles


def _entry(name: str, requests: int, failures: int = 0, p95: int = 100, avg: float = 50.0,
           rps: float = 10.0, method: str = "GET") -> RequestStats:
    percentiles = tuple(p95 // 2 if p < 0.95 else p95 for p in PERCENTILES) if requests else None
    return RequestStats(method=method, name=name, requests=requests, failures=failures, avg_ms=avg,
                        max_ms=float(p95), rps=rps, percentiles=percentiles)


def _run(*entries: RequestStats, total: RequestStats | None = None) -> RunStats:
    if total is None:
        total = _entry(AGGREGATED, sum(e.requests for e in entries), sum(e.failures for e in entries),
                       max((e.percentile(0.95) or 0) for e in entries) if entries else 0,
                       rps=sum(e.rps for e in entries), method="")
    return RunStats(requests=entries, total=total, duration_seconds=60)


RUN = _run(_entry("/", 1000, failures=5, p95=120), _entry("/checkout", 100, failures=10, p95=812,
                                                          method="POST", avg=300.4, rps=2.0))


@pytest.mark.parametrize(("thresholds", "breaches"), [
    ({"maxFailRatio": "0.05"}, []),
    ({"maxFailRatio": "0.01"}, ["fail ratio 0.0136 > 0.01"]),
    ({"minRps": "12"}, []),
    ({"minRps": "12.5"}, ["rps 12 < 12.5"]),
    ({"responseTimeMs": {"p95": 500}}, ["p95 812 ms > 500 ms"]),
    ({"responseTimeMs": {"p95": 812, "p50": 406, "p99": 900}}, []),
    ({"responseTimeMs": {"avg": 49}}, ["avg 50 ms > 49 ms"]),
    ({"perRequest": [{"name": "/checkout", "method": "POST", "maxFailRatio": "0",
                      "responseTimeMs": {"p95": 800}}]},
     ["POST /checkout fail ratio 0.1 > 0", "POST /checkout p95 812 ms > 800 ms"]),
    ({"perRequest": [{"name": "/checkout", "responseTimeMs": {"avg": 300}}]},
     ["/checkout avg 300.4 ms > 300 ms"]),
    ({"perRequest": [{"name": "/", "responseTimeMs": {"p95": 200}}]}, []),
    ({"perRequest": [{"name": "/missing"}]}, ["/missing: no requests were made"]),
    ({"perRequest": [{"name": "/checkout", "method": "GET"}]}, ["GET /checkout: no requests were made"]),
])
def test_thresholds(thresholds: dict[str, Any], breaches: list[str]) -> None:
    assert thresholds_set(thresholds)
    assert evaluate(thresholds, RUN) == breaches


@pytest.mark.parametrize(("avg", "rps", "thresholds", "breaches"), [
    # rps and avg are rounded to 1 place, then compared and shown.
    (12.34, 2.37, {"minRps": "3", "responseTimeMs": {"avg": 12}}, ["rps 2.4 < 3", "avg 12.3 ms > 12 ms"]),
    (12.34, 2.96, {"minRps": "3"}, []),
    # The limit itself passes: avg 12.04 is 12.0, not over 12.
    (12.04, 3.0, {"minRps": "3", "responseTimeMs": {"avg": 12}}, []),
])
def test_thresholds_round_before_they_compare(avg: float, rps: float, thresholds: dict[str, Any],
                                              breaches: list[str]) -> None:
    run = _run(_entry("/", 10, avg=avg, rps=rps), total=_entry(AGGREGATED, 10, avg=avg, rps=rps, method=""))
    assert evaluate(thresholds, run) == breaches


def test_thresholds_without_results_or_requests_never_pass() -> None:
    assert evaluate({"maxFailRatio": "1"}, None) == ["no results to evaluate the thresholds on"]
    assert evaluate({"responseTimeMs": {"p95": 1}}, _run()) == ["no requests were made"]
    assert not thresholds_set(None) and not thresholds_set({}) and not thresholds_set({"perRequest": []})


def test_one_name_with_two_methods_is_judged_per_method() -> None:
    run = _run(_entry("/cart", 10, p95=900), _entry("/cart", 10, p95=100, method="POST"))
    assert evaluate({"perRequest": [{"name": "/cart", "responseTimeMs": {"p95": 500}}]}, run) == \
        ["GET /cart p95 900 ms > 500 ms"]


def test_summary_is_the_status_result() -> None:
    stats = parse_requests_csv(
        (DATA / "locust-requests.csv").read_text(),
        "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
        "GET,health,HTTPError('500 Server Error'),3,,\nGET,health,ConnectionError(),1,,\n")
    result = summary(stats, "MasterApi", users=8, workers=3)
    assert result == {
        "source": "MasterApi", "requests": 23, "failures": 0, "failRatio": "0", "rps": "10.9",
        "durationSeconds": 2, "users": 8, "workers": 3,
        "responseTimeMs": {"p50": 6, "p95": 9, "p99": 11, "avg": "6.3", "max": "10.9"},
    }
    failing = RunStats(requests=(_entry("a", 10, 2), _entry("health", 10, 4)),
                       total=_entry(AGGREGATED, 20, 6), duration_seconds=1, failures=stats.failures)
    top = summary(failing, "MasterApi", None, None)["topFailures"]
    assert top == [{"method": "GET", "name": "health", "failures": 4,
                    "error": "HTTPError('500 Server Error')"},
                   {"method": "GET", "name": "a", "failures": 2}]


def _unpack(packed: Any, key: str) -> str:
    if key in packed.data:
        return str(packed.data[key])
    return gzip.decompress(base64.b64decode(packed.binary_data[key + ".gz"])).decode()


def test_configmap_keeps_text_when_small_and_compresses_when_large() -> None:
    stats = parse_requests_csv((DATA / "locust-requests.csv").read_text())
    result = summary(stats, "MasterApi", 4, 2)
    texts = report_texts(result, stats, "csv", "", "<html>small</html>")
    small = configmap_data(texts)
    assert small.binary_data == {} and small.truncated is None
    assert small.keys == ["result.json", "requests.csv", "report.html"]  # no failures: no key
    assert json.loads(small.data["result.json"])["result"] == result
    html = "<html>" + "x" * 2_000_000 + "</html>"  # Locust's report is ~1 MB of inlined script
    large = configmap_data(report_texts(result, stats, "csv", "f", html))
    assert set(large.binary_data) == {"report.html.gz"} and large.truncated is None
    assert _unpack(large, "report.html") == html


def test_configmap_leaves_out_what_cannot_fit_and_says_so() -> None:
    stats = parse_requests_csv((DATA / "locust-requests.csv").read_text())
    incompressible = base64.b64encode(random.Random(1).randbytes(400_000)).decode()
    packed = configmap_data(report_texts(summary(stats, "MasterApi", 1, 1), stats, "csv", "f",
                                         incompressible), budget=200_000)
    assert packed.keys == ["result.json", "requests.csv", "failures.csv"]
    assert packed.truncated is not None and "left out report.html" in packed.truncated
    assert sum(len(v) for v in (*packed.data.values(), *packed.binary_data.values())) <= 200_000


# A --json log made by hand, so every number below can be worked out on paper.
HAND_LOG = """[2026-12-01 10:00:00] master: Ramping to 2 users
[
    {"method": "POST", "name": "/b", "num_requests": 2, "num_failures": 0, "total_response_time": 50.0,
     "max_response_time": 30.0, "response_times": {"20": 1, "30": 1},
     "start_time": 1001.0, "last_request_timestamp": 1004.0},
    {"method": "GET", "name": "/a", "num_requests": 4, "num_failures": 1, "total_response_time": 100.0,
     "max_response_time": 40.0, "response_times": {"10": 2, "30": 1, "40": 1},
     "start_time": 1000.0, "last_request_timestamp": 1002.0}
]
[2026-12-01 10:00:05] master: Shutting down (exit code 1)
"""
HAND_A = RequestStats("GET", "/a", 4, 1, avg_ms=25.0, max_ms=40.0, rps=2.0,
                      percentiles=(30, 30, 40, 40, 40, 40, 40, 40, 40, 40, 40))
HAND_B = RequestStats("POST", "/b", 2, 0, avg_ms=25.0, max_ms=30.0, rps=2 / 3, percentiles=(30,) * 11)
HAND_TOTAL = RequestStats("", AGGREGATED, 6, 1, avg_ms=25.0, max_ms=40.0, rps=1.5,
                          percentiles=(30, 30, 30, 30, 40, 40, 40, 40, 40, 40, 40))


def test_final_json_whole() -> None:
    assert parse_final_json(HAND_LOG) == RunStats(requests=(HAND_A, HAND_B), total=HAND_TOTAL,
                                                  duration_seconds=4)


@pytest.mark.parametrize(("change", "duration", "rps"), [
    ({"start_time": None}, None, 0.0),  # no start: no duration
    ({"last_request_timestamp": 1000.0}, None, 0.0),  # no time passed
    ({"last_request_timestamp": 1000.0 + 400 * 86400}, None, 0.0),  # over a year: unknown
    ({"start_time": 999.5}, 2, 2.4),  # 2.5 s: rounded half to even
])
def test_final_json_duration(change: dict[str, Any], duration: int | None, rps: float) -> None:
    entry = {"method": "GET", "name": "/", "num_requests": 6, "num_failures": 0, "total_response_time": 6.0,
             "max_response_time": 1.0, "response_times": {"1": 6}, "start_time": 1000.0,
             "last_request_timestamp": 1002.0, **change}
    stats = parse_final_json("[\n" + json.dumps(entry) + "\n]\n")
    assert (stats.duration_seconds, stats.requests[0].rps) == (duration, pytest.approx(rps))


def test_requests_csv_whole() -> None:
    text = requests_csv(parse_final_json(HAND_LOG))
    assert text.splitlines() == [
        ",".join(CSV_HEADER),
        "GET,/a,4,1,30,25.0,,40.0,,2.0,,30,30,40,40,40,40,40,40,40,40,40",
        "POST,/b,2,0,30,25.0,,30.0,,0.667,,30,30,30,30,30,30,30,30,30,30,30",
        ",Aggregated,6,1,30,25.0,,40.0,,1.5,,30,30,30,30,40,40,40,40,40,40,40"]
    empty = RunStats(requests=(), total=RequestStats("", AGGREGATED, 0, 0, 0.0, 0.0, 0.0, None),
                     duration_seconds=None)
    assert requests_csv(empty).splitlines()[1] == \
        ",Aggregated,0,0,0,0.0,,0.0,,0.0,," + ",".join(["N/A"] * 11)


def test_result_json_lists_every_request_with_its_percentiles() -> None:
    stats = parse_final_json(HAND_LOG)
    texts = report_texts({"requests": 6}, stats, "csv", None, None)
    assert list(texts) == ["result.json", "requests.csv"]
    kept = json.loads(texts["result.json"])
    assert kept["result"] == {"requests": 6}
    labels = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
    assert kept["requests"][1] == {"method": "POST", "name": "/b", "requests": 2, "failures": 0,
                                   "avgMs": 25.0, "maxMs": 30.0, "rps": 0.667,
                                   "percentilesMs": dict.fromkeys(labels, 30)}
    assert [r["name"] for r in kept["requests"]] == ["/a", "/b", AGGREGATED]
    none = RunStats(requests=(), total=RequestStats("", AGGREGATED, 0, 0, 0.0, 0.0, 0.0, None),
                    duration_seconds=None)
    assert json.loads(report_texts({}, none, "", None, None)["result.json"])["requests"][0][
        "percentilesMs"] is None


def test_top_failures_are_the_five_worst_with_their_commonest_error() -> None:
    entries = tuple(_entry(name, 10, failures) for name, failures in
                    [("f", 1), ("b", 5), ("a", 5), ("c", 4), ("d", 3), ("e", 2), ("ok", 0)])
    errors = (Failure("GET", "a", "rare", 1), Failure("GET", "a", "common", 4),
              Failure("POST", "a", "other", 9), Failure("GET", "b", "x" * 300, 5))
    stats = RunStats(requests=entries, total=_entry(AGGREGATED, 70, 20), duration_seconds=7, failures=errors)
    top = summary(stats, "MasterApi", None, None)["topFailures"]
    assert [(t["name"], t["failures"]) for t in top] == [("a", 5), ("b", 5), ("c", 4), ("d", 3), ("e", 2)]
    assert top[0]["error"] == "common"  # its method's commonest, not another method's
    assert top[1]["error"] == "x" * 200
    assert "error" not in top[2]


@pytest.mark.parametrize(("row", "percentiles"), [
    ({}, (5,) * 11),
    ({"99%": "N/A"}, None),  # one percentile missing: none are kept
    ({"Request Count": "0"}, None),  # no requests: no percentiles
])
def test_csv_row_percentiles(row: dict[str, str], percentiles: tuple[int, ...] | None) -> None:
    values = {**dict.fromkeys(CSV_HEADER, "5"), "Type": "GET", "Name": "/", **row}
    aggregate = {**values, "Type": "", "Name": AGGREGATED}
    header = dict(zip(CSV_HEADER, CSV_HEADER, strict=True))
    text = "\n".join(",".join(r[c] for c in CSV_HEADER) for r in (header, values, aggregate))
    assert parse_requests_csv(text).requests[0].percentiles == percentiles


def test_csv_duration_and_bounded_names() -> None:
    values = {**dict.fromkeys(CSV_HEADER, "1"), "Type": "GET", "Name": "n" * 500}
    slow = {**values, "Type": "", "Name": AGGREGATED, "Request Count": "100", "Requests/s": "0.000001"}
    text = ",".join(CSV_HEADER) + "\n" + "\n".join(",".join(r[c] for c in CSV_HEADER) for r in (values, slow))
    stats = parse_requests_csv(text)
    assert stats.duration_seconds is None  # 100 requests at 1e-6/s: over a year, unknown
    assert len(stats.requests[0].name) == 200 and stats.requests[0].method == "GET"
    with pytest.raises(ResultsError, match="column 'Failure Count': not a number in range: 'lots'"):
        parse_requests_csv(text.replace(",".join(["1"] * 2), "1,lots", 1))


NO_FINAL_STATS = "the master's log has no final stats (Locust prints them with --json on exit)"


@pytest.mark.parametrize(("text", "message"), [
    ("", "the requests CSV has no header or rows"),
    ("a,b\n1,2\n", "the requests CSV has no header or rows"),
    ("Type,Name,Request Count\nGET,/,1\n", "the requests CSV has no Aggregated row"),
    # The aggregate is the row named Aggregated without a method, no other.
    ("Type,Name,Request Count\n,/x,1\nGET,Aggregated,1\n", "the requests CSV has no Aggregated row"),
])
def test_a_bad_csv_says_what_is_missing(text: str, message: str) -> None:
    with pytest.raises(ResultsError) as caught:
        parse_requests_csv(text)
    assert str(caught.value) == message


def test_a_csv_without_percentile_columns_has_no_percentiles() -> None:
    text = "Type,Name,Request Count,Failure Count\nGET,/,3,0\n,Aggregated,3,0\n"
    stats = parse_requests_csv(text)
    assert stats.requests[0].percentiles is None and stats.total.percentiles is None


def test_failures_csv_rows_are_bounded() -> None:
    text = "Type,Name,Request Count,Failure Count\nGET,/,3,1\n,Aggregated,3,1\n"
    failures = ("Method,Name,Error,Occurrences\n" + ",".join(["M" * 300, "N" * 300, "E" * 300, "2"])
                + "\n,,,1\n")
    found = parse_requests_csv(text, failures).failures
    assert found[0] == Failure("M" * 199 + "…", "N" * 199 + "…", "E" * 199 + "…", 2)
    assert found[1] == Failure("", "", "", 1)


def _entry_log(*entries: dict[str, Any]) -> str:
    return "[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]\n"


def _json_entry(**change: Any) -> dict[str, Any]:
    return {"method": "GET", "name": "/", "num_requests": 3, "num_failures": 0, "total_response_time": 10.0,
            "max_response_time": 5.12345, "response_times": {"3": 3}, "start_time": 1000.0,
            "last_request_timestamp": 1000.5, **change}


def test_final_json_edges() -> None:
    stats = parse_final_json(_entry_log(_json_entry()))
    entry = stats.requests[0]
    assert entry.rps == 6.0  # 3 requests in half a second
    assert (round(entry.avg_ms, 4), entry.max_ms) == (3.3333, 5.12345)
    kept = json.loads(report_texts({}, stats, "", None, None)["result.json"])["requests"][0]
    assert (kept["avgMs"], kept["maxMs"], kept["rps"]) == (3.33, 5.12, 6.0)
    empty = parse_final_json(_entry_log(_json_entry(num_requests=0, response_times={})))
    assert (empty.requests[0].avg_ms, empty.requests[0].percentiles) == (0.0, None)
    with pytest.raises(ResultsError) as caught:
        parse_final_json(_entry_log(_json_entry(name="n" * 150, num_requests=-1)))
    assert str(caught.value) == \
        f"the master's final stats are malformed: {'n' * 150}: a count or time out of range"
    with pytest.raises(ResultsError) as caught:  # a longer name: the message is cut at 200 characters
        parse_final_json(_entry_log(_json_entry(name="n" * 300, num_requests=-1)))
    assert str(caught.value) == f"the master's final stats are malformed: {'n' * 199}…"


def test_the_last_final_stats_of_the_log_are_read_within_three_tries() -> None:
    good = _entry_log(_json_entry())
    broken = "[\n{not json\n]\n"
    assert parse_final_json(good + broken + broken).total.requests == 3  # two bad blocks after it
    with pytest.raises(ResultsError) as caught:
        parse_final_json(good + broken * 3)  # three: given up, a tenant's log costs 3 parses at most
    assert str(caught.value) == NO_FINAL_STATS
    assert parse_final_json(good + "[]\n").total.requests == 0  # the newest stats: none
    with pytest.raises(ResultsError) as caught:
        parse_final_json("no stats here\n")
    assert str(caught.value) == NO_FINAL_STATS


def test_configmap_compresses_the_largest_key_first_and_only_what_it_must() -> None:
    texts = {"result.json": "r" * 100, "requests.csv": "a" * 50_000, "failures.csv": "b" * 30_000}
    packed = configmap_data(texts, budget=60_000)
    assert set(packed.binary_data) == {"requests.csv.gz"}
    assert set(packed.data) == {"result.json", "failures.csv"}
    assert _unpack(packed, "requests.csv") == texts["requests.csv"] and packed.truncated is None
    exact = {"result.json": "x" * 1000}
    assert configmap_data(exact, budget=len("result.json") + 1000).binary_data == {}  # just fits
    assert set(configmap_data(exact, budget=len("result.json") + 999).binary_data) == {"result.json.gz"}


def test_final_json_more_edges() -> None:
    stats = parse_final_json(_entry_log(_json_entry()))
    assert stats.duration_seconds == 0  # half a second, rounded
    assert requests_csv(stats).splitlines()[1] == "GET,/,3,0,3,3.33,,5.12,,6.0,,3,3,3,3,3,3,3,3,3,3,3"
    assert "\r" not in requests_csv(stats) and requests_csv(stats).endswith("\n")
    quick = parse_final_json(_entry_log(_json_entry(total_response_time=0, max_response_time=0.4,
                                                    response_times={"0": 3})))
    assert (quick.total.avg_ms, quick.total.max_ms) == (0.0, 0.4)
    nameless = _json_entry()
    del nameless["method"], nameless["name"]
    unnamed = parse_final_json(_entry_log(nameless)).requests[0]
    assert (unnamed.method, unnamed.name) == ("", "")
    year = parse_final_json(_entry_log(_json_entry(last_request_timestamp=1000.0 + 366 * 86400)))
    assert year.duration_seconds == 366 * 86400  # a year is the longest known duration


def test_result_json_is_sorted_and_indented_and_the_summary_rounds() -> None:
    stats = parse_final_json(_entry_log(_json_entry(num_failures=1)))
    text = report_texts({"b": 1, "a": 2}, stats, "", None, None)["result.json"]
    assert text.startswith('{\n "requests": [\n  {\n   "avgMs": 3.33,')
    assert summary(stats, "MasterLog", None, None)["failRatio"] == "0.3333"
    assert unavailable("the master did not answer") == {"source": "Unavailable",
                                                        "message": "the master did not answer"}


# --- the survivors of mutation testing (scripts/mutation --own-tests rules/results.py) -------------


def _csv(*rows: str) -> str:
    return "Type,Name,Request Count,Failure Count,Requests/s\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize(("text", "method", "name", "failures", "rps", "duration"), [
    # An empty count or rate is 0 (not a missing number).
    (_csv("GET,/,3,,", ",Aggregated,3,0,1.5"), "GET", "/", 0, 0.0, 2),
    # An empty name stays empty; a long method is cut like a name.
    (_csv("M" * 300 + ",,3,1,2", ",Aggregated,3,1,1.5"), "M" * 199 + "…", "", 1, 2.0, 2),
    # Under one request a second, the duration still follows: 10 requests at 0.5/s.
    (_csv("GET,/,10,0,0.5", ",Aggregated,10,0,0.5"), "GET", "/", 0, 0.5, 20),
    # A year of one request a second is the longest known duration; a second more is unknown.
    (_csv("GET,/,31622400,0,1", ",Aggregated,31622400,0,1"), "GET", "/", 0, 1.0, 366 * 86400),
    (_csv("GET,/,31622401,0,1", ",Aggregated,31622401,0,1"), "GET", "/", 0, 1.0, None),
])
def test_csv_rows_whole(text: str, method: str, name: str, failures: int, rps: float,
                        duration: int | None) -> None:
    stats = parse_requests_csv(text)
    assert [(r.method, r.name, r.failures, r.rps) for r in stats.requests] == [(method, name, failures, rps)]
    assert stats.duration_seconds == duration


@pytest.mark.parametrize(("text", "message"), [
    # The value in the message is cut at 40 characters.
    (_csv("GET,/,3," + "x" * 100 + ",1", ",Aggregated,3,0,1"),
     "column 'Failure Count': not a number in range: '" + "x" * 39 + "…'"),
    (_csv("GET,/,3," + "x" * 40 + ",1", ",Aggregated,3,0,1"),
     "column 'Failure Count': not a number in range: '" + "x" * 40 + "'"),
    # A field over the csv module's limit.
    (_csv("GET,/" + "n" * 200_000 + ",3,0,1", ",Aggregated,3,0,1"),
     "the master's CSV is malformed: field larger than field limit (131072)"),
])
def test_a_bad_csv_value_says_which_and_what(text: str, message: str) -> None:
    with pytest.raises(ResultsError) as caught:
        parse_requests_csv(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(("log", "message"), [
    ("", NO_FINAL_STATS),
    # A closing bracket that is not a line of its own is not the end of Locust's output.
    ("[\n1]\n", NO_FINAL_STATS),
    # Every entry within bounds, their sum is not: the aggregate says so.
    (_entry_log(_json_entry(num_requests=6 * 10**14), _json_entry(name="/b", num_requests=6 * 10**14)),
     "the master's final stats are malformed: Aggregated: a count or time out of range"),
])
def test_final_json_refused(log: str, message: str) -> None:
    with pytest.raises(ResultsError) as caught:
        parse_final_json(log)
    assert str(caught.value) == message


def test_final_json_sums_and_defaults() -> None:
    stats = parse_final_json(_entry_log(_json_entry(num_failures=1), _json_entry(name="/b", num_failures=2)))
    assert (stats.total.requests, stats.total.failures) == (6, 3)
    # Without its total and largest response time, an entry's are 0.
    bare = _json_entry()
    del bare["total_response_time"], bare["max_response_time"]
    entry = parse_final_json(_entry_log(bare)).requests[0]
    assert (entry.avg_ms, entry.max_ms) == (0.0, 0.0)
    # An entry's year is still a known duration: its rate counts it.
    year = parse_final_json(_entry_log(_json_entry(last_request_timestamp=1000.0 + 366 * 86400)))
    assert year.requests[0].rps == 3 / (366 * 86400)


def test_final_json_cuts_long_methods_and_names() -> None:
    entry = parse_final_json(_entry_log(_json_entry(method="M" * 300, name="n" * 300))).requests[0]
    assert (entry.method, entry.name) == ("M" * 199 + "…", "n" * 199 + "…")


def test_decimal_without_places_keeps_its_zeros() -> None:
    assert [decimal(v, 0) for v in (150.0, 0.0, 2.5)] == ["150", "0", "2"]
    assert [decimal(v, 2) for v in (150.0, 0.0, 2.5, 0.125)] == ["150", "0", "2.5", "0.12"]


def _gzipped(text: str) -> int:
    return len(base64.b64encode(gzip.compress(text.encode(), 9)))


def test_configmap_compresses_over_64_kib_only_and_keeps_what_fits_exactly() -> None:
    exact = {"result.json": "{}", "report.html": "x" * COMPRESS_OVER}
    assert configmap_data(exact).binary_data == {}  # 64 KiB is not over 64 KiB
    texts = {"result.json": "r" * 100, "report.html": "x" * 300_000}
    budget = len("result.json") + 100 + len("report.html.gz") + _gzipped(texts["report.html"])
    packed = configmap_data(texts, budget=budget)  # just fits: nothing left out
    assert (packed.keys, packed.truncated) == (["result.json", "report.html"], None)
    assert set(packed.binary_data) == {"report.html.gz"}


def test_configmap_says_every_key_it_leaves_out() -> None:
    noise = random.Random(2)
    texts = {"result.json": "{}", "requests.csv": base64.b64encode(noise.randbytes(300_000)).decode(),
             "report.html": base64.b64encode(noise.randbytes(300_000)).decode()}
    packed = configmap_data(texts, budget=200_000)
    assert packed.keys == ["result.json"]
    assert packed.truncated == ("left out report.html, requests.csv: the results exceed the 200 kB a "
                                "ConfigMap can keep, even compressed")
