"""`locust-operator report` without a cluster: reading the results ConfigMap's keys."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import AsyncIterator
from typing import Any

import pytest

from locust_operator.cli.kept_report import ReportError, fetch, kept, kept_keys, missing
from locust_operator.controller.kube_api import ApiError

HTML = "<html><body>report ünïcode</body></html>\n"
CSV = "Type,Name,Request Count\nGET,/,10\n"


def _gz(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode())).decode()


CONFIGMAP: dict[str, Any] = {
    "metadata": {"name": "demo-results"},
    "data": {"result.json": '{"requests": 10}'},
    "binaryData": {"report.html.gz": _gz(HTML), "requests.csv.gz": _gz(CSV), "other": "eA=="},
}


@pytest.mark.parametrize(("key", "content"), [
    ("result.json", b'{"requests": 10}'),
    ("report.html", HTML.encode()),
    ("requests.csv", CSV.encode()),
    ("failures.csv", None),
    ("other", None),  # binaryData without .gz is not one of ours
])
def test_kept_reads_text_and_gzip_alike(key: str, content: bytes | None) -> None:
    assert kept(CONFIGMAP, key) == content


def test_kept_keys_by_plain_name() -> None:
    assert kept_keys(CONFIGMAP) == {"result.json", "report.html", "requests.csv"}
    assert kept_keys({}) == set()


@pytest.mark.parametrize(("packed", "words"), [
    ("not base64!", "report.html.gz is not base64 gzip"),
    (base64.b64encode(b"plain, not gzip").decode(), "report.html.gz is not base64 gzip"),
    (base64.b64encode(gzip.compress(b"x" * 1000, mtime=0)[:20]).decode(),
     "report.html.gz is not base64 gzip"),
])
def test_a_damaged_gzip_key_is_an_error(packed: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        kept({"binaryData": {"report.html.gz": packed}}, "report.html")


@pytest.mark.parametrize(("output", "keys", "result", "line"), [
    ("html", {"result.json", "requests.csv"}, {"source": "MasterLog"},
     "demo: no HTML report was kept (results came from the master's log); try -o json"),
    ("html", {"requests.csv"}, {"source": "MasterApi"},
     "demo: ConfigMap demo-results has no report.html; try -o csv"),
    ("html", {"result.json"}, {"report": {"truncated": "report.html (2.1 MiB gzipped)"}},
     "demo: ConfigMap demo-results has no report.html (left out: report.html (2.1 MiB gzipped)); "
     "try -o json"),
    ("csv", set(), {}, "demo: ConfigMap demo-results has no requests.csv"),
])
def test_missing_names_the_key_and_what_to_try(output: str, keys: set[str], result: dict[str, Any],
                                               line: str) -> None:
    assert missing("demo", output, "demo-results", keys, result) == line


class FakeApi:
    """Serves objects by REST path; anything else is a 404."""

    def __init__(self, objects: dict[str, Any]) -> None:
        self.objects = objects
        self.paths: list[str] = []

    async def get_json(self, path: str) -> dict[str, Any]:
        self.paths.append(path)
        answer = self.objects.get(path)
        if answer is None:
            raise ApiError(404, "not found")
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    async def stream_lines(self, path: str) -> AsyncIterator[bytes]:  # pragma: no cover - unused
        yield b""


TEST_PATH = "/apis/locust.io/v2/namespaces/load/locusttests/demo"


def _cm_path(name: str) -> str:
    return f"/api/v1/namespaces/load/configmaps/{name}"


def _fetch(objects: dict[str, Any], output: str = "html") -> bytes:
    return asyncio.run(fetch(FakeApi(objects), "load", "demo", output))


def test_fetch_reads_the_configmap_named_in_the_status() -> None:
    test = {"status": {"phase": "Succeeded", "result": {"report": {"configMap": "elsewhere"}}}}
    objects = {TEST_PATH: test, _cm_path("elsewhere"): CONFIGMAP}
    assert _fetch(objects) == HTML.encode()
    assert _fetch(objects, "json") == b'{"requests": 10}'
    assert _fetch(objects, "csv") == CSV.encode()


def test_fetch_falls_back_to_the_contracts_name() -> None:
    objects = {TEST_PATH: {"status": {"phase": "Failed"}}, _cm_path("demo-results"): CONFIGMAP}
    assert _fetch(objects, "json") == b'{"requests": 10}'


@pytest.mark.parametrize(("objects", "output", "line"), [
    ({}, "html", "demo: no LocustTest demo in namespace load"),
    ({TEST_PATH: {"status": {"phase": "Running"}}}, "html",
     "demo: Running; its results are kept once it finishes (locust-operator wait first)"),
    ({TEST_PATH: {}}, "json",
     "demo: not started; its results are kept once it finishes (locust-operator wait first)"),
    ({TEST_PATH: {"status": {"phase": "Failed"}}}, "json", "demo: no results ConfigMap demo-results"),
    ({TEST_PATH: {"status": {"phase": "Failed", "result": {"source": "Unavailable",
                                                           "message": "the master's log was gone"}}}},
     "json", "demo: no results ConfigMap demo-results: the master's log was gone"),
    ({TEST_PATH: {"status": {"phase": "Succeeded"}}, _cm_path("demo-results"): {"data": {}}},
     "csv", "demo: ConfigMap demo-results has no requests.csv"),
    ({TEST_PATH: {"status": {"phase": "Succeeded"}},
      _cm_path("demo-results"): {"binaryData": {"requests.csv.gz": "eA=="}}},
     "csv", "demo: ConfigMap demo-results: requests.csv.gz is not base64 gzip"),
])
def test_fetch_says_what_is_missing(objects: dict[str, Any], output: str, line: str) -> None:
    with pytest.raises(ReportError) as error:
        _fetch(objects, output)
    assert str(error.value).startswith(line)


@pytest.mark.parametrize("objects", [
    {TEST_PATH: ApiError(403, "forbidden")},
    {TEST_PATH: {"status": {"phase": "Succeeded"}}, _cm_path("demo-results"): ApiError(403, "forbidden")},
])
def test_fetch_passes_refusals_on(objects: dict[str, Any]) -> None:
    with pytest.raises(ApiError, match="403"):
        _fetch(objects)


def test_a_configmap_of_another_owner_is_not_reported() -> None:
    test = {"metadata": {"uid": "u1"}, "status": {"phase": "Succeeded"}}
    mine = {**CONFIGMAP, "metadata": {"name": "demo-results",
                                      "ownerReferences": [{"controller": True, "uid": "u1"}]}}
    assert _fetch({TEST_PATH: test, _cm_path("demo-results"): mine}, "json") == b'{"requests": 10}'
    for other in ({"name": "demo-results"},
                  {"name": "demo-results", "ownerReferences": [{"controller": True, "uid": "u2"}]}):
        with pytest.raises(ReportError, match="does not belong to this test"):
            _fetch({TEST_PATH: test, _cm_path("demo-results"): {**CONFIGMAP, "metadata": other}}, "json")


def test_html_kept_apart_is_read_from_its_own_configmap() -> None:
    test = {"status": {"phase": "Succeeded", "result": {"report": {
        "configMap": "demo-results", "reportConfigMap": {"name": "demo-report", "uid": "r1"}}}}}
    apart = {"data": {"report.html": "<html>apart</html>"}}
    objects = {TEST_PATH: test, _cm_path("demo-results"): {"data": {"result.json": "{}"}},
               _cm_path("demo-report"): apart}
    assert _fetch(objects) == b"<html>apart</html>"
    assert _fetch(objects, "json") == b"{}"


def test_a_dropped_html_report_says_why_and_what_to_try() -> None:
    test = {"status": {"phase": "Succeeded", "result": {"report": {
        "configMap": "demo-results", "reportDropped": "kept for the newest runs only (keepReportRuns)"}}}}
    with pytest.raises(ReportError) as error:
        _fetch({TEST_PATH: test, _cm_path("demo-results"): CONFIGMAP})
    assert str(error.value) == ("demo: no HTML report any more (kept for the newest runs only "
                                "(keepReportRuns)); try -o json")
