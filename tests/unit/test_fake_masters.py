"""The fake Locust masters (tests/support/fake_masters.py): normal ones speak Locust's
formats, hostile ones really are hostile, and nothing they do outlives its client."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from locust_operator.rules.results import parse_requests_csv
from tests.support import fake_masters
from tests.support.fake_masters import (
    FAILURES_CSV,
    REPORT,
    REQUESTS_CSV,
    STATS,
    STOP,
    FakeMasters,
    deep_bodies,
    expected_failures,
    expected_requests,
    serve_masters,
)

REAL_CSV = Path(__file__).parent / "data" / "locust-requests.csv"
NS = "ns"


@pytest.fixture(scope="module")
def masters() -> Iterator[FakeMasters]:
    with serve_masters() as served:
        yield served


def _get(url: str, method: str = "GET") -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as response:
        body: bytes = response.read()
        return body


def _idle(masters: FakeMasters, timeout: float = 2.0) -> bool:
    """Whether every request in flight ended within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while masters.active and time.monotonic() < deadline:
        time.sleep(0.02)
    return masters.active == 0


def test_the_url_template_leaves_namespace_and_service_to_the_operator(masters: FakeMasters) -> None:
    url = masters.url_template.format(namespace=NS, service="normal-1-master")
    assert url == masters.url(NS, "normal-1") == f"http://127.0.0.1:{masters.port}/ns/normal-1-master/stats/requests"


def test_the_normal_csv_is_locusts_and_the_operator_parses_it(masters: FakeMasters) -> None:
    csv_text = _get(masters.url(NS, "normal-csv", REQUESTS_CSV)).decode()
    failures = _get(masters.url(NS, "normal-csv", FAILURES_CSV)).decode()
    # The header and line ends of a CSV real Locust 2.47 served.
    assert csv_text.split("\r\n", 1)[0] == REAL_CSV.read_text().splitlines()[0]
    stats = parse_requests_csv(csv_text, failures)
    assert stats.total.requests == expected_requests("normal-csv") >= 100
    assert stats.total.failures == expected_failures("normal-csv") > 0
    assert sum(f.occurrences for f in stats.failures) == stats.total.failures
    assert [(r.method, r.name) for r in stats.requests] == [("GET", "/"), ("GET", "health")]
    assert stats.duration_seconds == fake_masters.RUN_SECONDS
    assert masters.count(NS, "normal-csv", REQUESTS_CSV) == 1


def test_a_normal_master_runs_then_stops(masters: FakeMasters, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_masters, "STOPS_AFTER_SECONDS", 0.2)
    first = json.loads(_get(masters.url(NS, "normal-run")))
    assert {"state", "user_count", "worker_count", "total_rps", "fail_ratio", "stats", "errors",
            "current_response_time_percentiles"} <= set(first)
    assert (first["state"], first["worker_count"]) == ("running", 2) and first["user_count"] > 0
    time.sleep(0.25)
    last = json.loads(_get(masters.url(NS, "normal-run")))
    assert last["state"] == "stopped"
    assert last["stats"][-1]["num_requests"] == expected_requests("normal-run")
    assert b"Locust" in _get(masters.url(NS, "normal-run", REPORT) + "?download=1")
    assert json.loads(_get(masters.url(NS, "normal-run", STOP), "POST"))["success"] is True
    assert json.loads(_get(masters.url(NS, "normal-run", STOP)))["success"] is True


def test_the_endless_body_keeps_streaming_until_the_client_leaves(masters: FakeMasters) -> None:
    wanted, received = 2 * 1024 * 1024, b""
    with urllib.request.urlopen(masters.url(NS, "endless-1"), timeout=5) as response:
        assert response.headers.get("Content-Length") is None
        assert masters.active >= 1
        for _ in range(wanted // 4096 + 1):  # bounded: the loop ends well before
            received += response.read(64 * 1024)
            if len(received) >= wanted:
                break
    assert len(received) >= wanted and received.startswith(b'{"stats": [{"name": "x"')
    assert _idle(masters), "the stream went on after its client left"


def test_a_dripping_master_sends_a_byte_at_a_time(masters: FakeMasters) -> None:
    with urllib.request.urlopen(masters.url(NS, "drip-1"), timeout=5) as response:
        started = time.monotonic()
        assert response.read(2) == b"{ "
        assert time.monotonic() - started >= fake_masters.DRIP_SECONDS * 0.8
    assert _idle(masters)


def test_a_hanging_master_never_answers_and_lets_go_of_a_client_that_left(masters: FakeMasters) -> None:
    with pytest.raises(TimeoutError):
        urllib.request.urlopen(masters.url(NS, "hang-1"), timeout=0.3)
    assert _idle(masters)


def test_the_deep_body_is_small_and_too_deep_for_json_loads() -> None:
    for body in deep_bodies():
        assert len(body) < 256 * 1024
        with pytest.raises(RecursionError):
            json.loads(body)


def test_types_cycle_through_their_variants(masters: FakeMasters) -> None:
    bodies = [_get(masters.url(NS, "types-1")) for _ in range(len(fake_masters.types_bodies()))]
    assert len(set(bodies)) == len(bodies)
    assert max(len(b) for b in bodies) >= fake_masters.HUGE_STATE_BYTES
    assert b"NaN" in b"".join(bodies) and b"1" + b"0" * 30 in b"".join(bodies)


def test_an_unknown_kind_is_not_found(masters: FakeMasters) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        _get(masters.url(NS, "nosuchkind-1", STATS))
    assert raised.value.code == 404
