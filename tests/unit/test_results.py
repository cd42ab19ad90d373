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
    CSV_HEADER,
    PERCENTILES,
    RequestStats,
    ResultsError,
    RunStats,
    configmap_data,
    parse_final_json,
    parse_requests_csv,
    report_texts,
    requests_csv,
    summary,
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
