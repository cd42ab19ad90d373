"""Bounds on tenant input: JSON depth before parsing, strings, counts and numbers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from locust_operator.rules import bounded
from locust_operator.rules.results import ResultsError, parse_final_json, parse_requests_csv


@pytest.mark.parametrize(("data", "depth"), [
    (b"1", 0), (b'"[[[["', 0), (b"[]", 1), (b'{"a": [1, {"b": []}]}', 4),
    (b'["]]]]", ["[[["]]', 2), (b'"\\"[["', 0), (b"[" * 50 + b"]" * 50, 50),
    (b"]]]][", 0),  # malformed: never negative
])
def test_json_depth(data: bytes, depth: int) -> None:
    assert bounded.json_depth(data) == depth


@pytest.mark.parametrize("limit", [1, 8, 32])
def test_loads_refuses_past_the_depth_limit(limit: int) -> None:
    assert bounded.loads(b"[" * limit + b"]" * limit, limit) is not None
    with pytest.raises(bounded.Refused, match=f"nested deeper than {limit} levels"):
        bounded.loads(b"[" * (limit + 1) + b"]" * (limit + 1), limit)


def test_loads_of_a_depth_bomb_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = b"[" * 1_000_000  # json.loads would raise RecursionError on this
    parsed: list[bytes] = []
    monkeypatch.setattr(bounded.json, "loads", lambda data: parsed.append(data))
    with pytest.raises(bounded.Refused, match="deep"):
        bounded.loads(bomb)
    assert parsed == []  # refused by the linear depth scan, never handed to the parser


@pytest.mark.parametrize(("data", "words"), [(b"{x", "is not JSON"), (b"", "is not JSON"),
                                              (b"\xff\xfe", "is not JSON")])
def test_loads_refuses_what_is_not_json(data: bytes, words: str) -> None:
    with pytest.raises(bounded.Refused, match=words):
        bounded.loads(data)


@pytest.mark.parametrize(("value", "limit", "expected"), [
    ("abc", 5, "abc"), ("abcdef", 5, "abcd…"), (ValueError("boom"), 10, "boom"), ("x" * 10**7, 3, "xx…"),
])
def test_text(value: Any, limit: int, expected: str) -> None:
    assert bounded.text(value, limit) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0), (5, 5), (10**15, 10**15), (10**15 + 1, None), (-1, None), (True, None), (1.0, None),
    ("5", None), (None, None),
])
def test_count(value: Any, expected: int | None) -> None:
    assert bounded.count(value) == expected


@pytest.mark.parametrize(("value", "limit", "expected"), [
    (1.5, 10, 1.5), (3, 10, 3.0), (11, 10, None), (10**400, 10, None), (float("nan"), 10, None),
    (float("inf"), 10, None), (-0.1, 10, None), (False, 10, None), ("1", 10, None),
])
def test_number(value: Any, limit: float, expected: float | None) -> None:
    assert bounded.number(value, limit) == expected


@pytest.mark.parametrize(("size", "text"), [(1024 * 1024, "1 MiB"), (4096, "4 KiB"), (1000, "1000 bytes")])
def test_mib(size: int, text: str) -> None:
    assert bounded.mib(size) == text


HEADER = "Type,Name,Request Count,Failure Count,Average Response Time,Max Response Time,Requests/s\n"


@pytest.mark.parametrize("row", [
    ",Aggregated,inf,0,1,1,1", ",Aggregated,nan,0,1,1,1", ",Aggregated,1e400,0,1,1,1",
    ",Aggregated,-5,0,1,1,1", ",Aggregated,1e16,0,1,1,1", ",Aggregated,3,0,1,1,x" + "y" * 100,
    '"' + "x" * 200_000 + '",Aggregated,3,0,1,1,1',  # a field past the csv module's limit
])
def test_a_hostile_requests_csv_is_refused_cleanly(row: str) -> None:
    with pytest.raises(ResultsError) as caught:
        parse_requests_csv(HEADER + row + "\n")
    assert len(str(caught.value)) < 300


def test_request_names_are_cut_before_they_reach_the_status() -> None:
    stats = parse_requests_csv(HEADER + f"GET,{'n' * 5000},3,0,1,1,1\n,Aggregated,3,0,1,1,1\n")
    assert len(stats.requests[0].name) == 200


@pytest.mark.parametrize("log", [
    "]\n" * 200_000,  # brackets only: one pass, never a parse per line
    "[\n" + "[" * 100_000 + "\n]\n",
    '[\n{"num_requests": 1e400, "num_failures": 0}\n]\n',
    '[\n{"num_requests": 10000000000000000, "num_failures": 0}\n]\n',
    '[\n{"num_requests": 1, "num_failures": 0, "response_times": {"1e400": 1}}\n]\n',
    '[\n{"num_requests": 1, "num_failures": 0, "start_time": "nan", "last_request_timestamp": 1}\n]\n',
])
def test_a_hostile_master_log_is_refused_quickly(log: str) -> None:
    start = time.monotonic()
    try:
        stats = parse_final_json(log)
    except ResultsError:
        pass
    else:
        assert stats.total.requests <= bounded.MAX_NUMBER and stats.duration_seconds is None
    assert time.monotonic() - start < 2.0
