"""The lines `locust-operator wait` prints about a test (summary.py, pure)."""

from __future__ import annotations

from typing import Any

import pytest

from locust_operator.cli.status_lines import final_lines, phase_line, progress, result_lines, verdict_line

RESULT: dict[str, Any] = {
    "source": "MasterApi",
    "durationSeconds": 300,
    "requests": 12345,
    "failures": 12,
    "failRatio": "0.000972",
    "rps": "41.15",
    "responseTimeMs": {"p50": 12, "p95": 812, "p99": 1200, "avg": "15.31", "max": "2045.5"},
    "users": 40,
    "workers": 3,
    "topFailures": [
        {"method": "GET", "name": "/api/items", "failures": 10, "error": 'ConnectionError("boom")'},
        {"method": "POST", "name": "/login", "failures": 2, "error": "HTTPError 500"},
    ],
    "thresholds": {"passed": False, "breaches": ["p95 812 ms > 500 ms", "fail ratio 0.1 > 0.01"]},
    "report": {"configMap": "demo-results", "keys": ["result.json"]},
}


@pytest.mark.parametrize(("status", "line"), [
    ({}, "12:00:00 demo: no status yet (is the operator running?)"),
    ({"phase": "Pending"}, "12:00:00 demo: Pending"),
    ({"phase": "Pending", "expectedWorkers": 3}, "12:00:00 demo: Pending (0/3 workers connected)"),
    ({"phase": "Running", "expectedWorkers": 3, "connectedWorkers": 3,
      "locust": {"userCount": 40, "totalRps": "55.23", "failPercent": "0.00", "failRatio": "0"}},
     "12:00:00 demo: Running (3/3 workers connected, 40 users, 55.2 rps, 0.00% failed)"),
    ({"phase": "Running", "connectedWorkers": 2, "locust": {"failRatio": "0.125"}},
     "12:00:00 demo: Running (2/? workers connected, 12.50% failed)"),
    ({"phase": "Running", "locust": {"totalRps": "n/a", "failRatio": "bad"}},
     "12:00:00 demo: Running (n/a rps, bad (ratio) failed)"),
    ({"phase": "Succeeded", "expectedWorkers": 3, "connectedWorkers": 3}, "12:00:00 demo: Succeeded"),
    ({"phase": "Failed", "locust": {"userCount": 4}}, "12:00:00 demo: Failed"),
])
def test_phase_line(status: dict[str, Any], line: str) -> None:
    assert phase_line("demo", {"status": status} if status else {}, "12:00:00") == line


def test_progress_of_an_empty_status_is_empty() -> None:
    assert progress({}) == ""


@pytest.mark.parametrize(("status", "line"), [
    ({"verdict": "TestSucceeded", "conditions": [
        {"type": "Ready", "status": "True", "message": "not this one"},
        {"type": "TestCompleted", "status": "True", "reason": "TestSucceeded",
         "message": "the master Job completed"}]},
     "verdict: TestSucceeded: the master Job completed"),
    ({"verdict": "ThresholdsBreached", "conditions": [
        {"type": "TestCompleted", "status": "False", "reason": "ThresholdsBreached",
         "message": "p95 812 ms > 500 ms"}]},
     "verdict: ThresholdsBreached: p95 812 ms > 500 ms"),
    # an operator that writes no verdict yet: TestCompleted's reason stands in
    ({"conditions": [{"type": "TestCompleted", "status": "False", "reason": "TestFailed",
                      "message": 'configmap "demo" not found'}]},
     'verdict: TestFailed: configmap "demo" not found'),
    ({"verdict": "Aborted"}, "verdict: Aborted"),
    ({"verdict": "Aborted", "conditions": [{"type": "TestCompleted", "message": "Aborted"}]},
     "verdict: Aborted"),
    ({}, "verdict: no verdict recorded"),
])
def test_verdict_line(status: dict[str, Any], line: str) -> None:
    assert verdict_line({"status": status}) == line


def test_result_table() -> None:
    assert result_lines({"result": RESULT}) == [
        "  requests       12,345",
        "  failures       12 (0.10%)",
        "  rps            41.1",
        "  response time  p50 12 ms  p95 812 ms  p99 1200 ms  avg 15.3 ms  max 2045.5 ms",
        "  users          40",
        "  workers        3",
        "  duration       5m0s",
        "  thresholds     2 breached",
        "                 p95 812 ms > 500 ms",
        "                 fail ratio 0.1 > 0.01",
        "  top failures:",
        "    METHOD  NAME        FAILURES  ERROR",
        '    GET     /api/items  10        ConnectionError("boom")',
        "    POST    /login      2         HTTPError 500",
    ]


@pytest.mark.parametrize(("result", "lines"), [
    (None, ["no results recorded"]),
    ({}, ["no results recorded"]),
    ({"source": "Unavailable", "message": "the master's log was gone"},
     ["  results  unavailable", "  note     the master's log was gone"]),
    # fail % from the counts when failRatio is absent; none when nothing was requested
    ({"requests": 200, "failures": 3}, ["  requests  200", "  failures  3 (1.50%)"]),
    ({"requests": 0, "failures": 0}, ["  requests  0", "  failures  0"]),
    ({"failRatio": "0.5"}, ["  fail %  50.00%"]),
    ({"thresholds": {"passed": True, "breaches": []}}, ["  thresholds  passed"]),
    ({"thresholds": {}}, []),
    ({"durationSeconds": 3725}, ["  duration  1h2m5s"]),
    ({"durationSeconds": 42}, ["  duration  42s"]),
    ({"durationSeconds": "soon"}, ["  duration  soon"]),
    ({"responseTimeMs": {"p95": 80, "max": "oops"}}, ["  response time  p95 80 ms  max oops ms"]),
    ({"topFailures": [{"method": "GET", "name": "/", "failures": 1, "error": "x\n  " * 60}]},
     ["  top failures:", "    METHOD  NAME  FAILURES  ERROR",
      "    GET     /     1         " + "x " * 48 + "x..."]),
])
def test_partial_results(result: dict[str, Any] | None, lines: list[str]) -> None:
    assert result_lines({"result": result}) == lines


def test_final_lines_name_the_report_only_when_one_was_kept() -> None:
    test = {"status": {"phase": "Failed", "verdict": "ThresholdsBreached", "result": RESULT}}
    lines = final_lines("demo", "load", test)
    assert lines[0] == "verdict: ThresholdsBreached"
    assert lines[-1] == "full results: locust-operator report demo -n load -o html (or json, csv)"
    assert final_lines("demo", "load", {"status": {"phase": "Succeeded"}}) == [
        "verdict: no verdict recorded", "no results recorded"]


@pytest.mark.parametrize(("fetched", "lines"), [
    ({"commit": "a" * 40, "ref": "v1"}, [f"test files: git v1 at {'a' * 40}"]),
    ({"commit": "a" * 40, "ref": ""}, [f"test files: git the default branch at {'a' * 40}"]),
    ({"commit": "a" * 40, "ref": "main", "message": "not all pods ran commit aaa: w ran bbb"},
     [f"test files: git main at {'a' * 40}", "  not all pods ran commit aaa: w ran bbb"]),
    ({"ref": "v1"}, []),  # nothing fetched yet
    ("not a mapping", []),
])
def test_final_lines_name_the_commit_the_files_came_from(fetched: Any, lines: list[str]) -> None:
    test = {"status": {"phase": "Succeeded", "verdict": "TestSucceeded", "testFiles": fetched}}
    assert final_lines("demo", "load", test)[2:] == lines
