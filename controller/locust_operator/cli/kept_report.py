"""`locust-operator report`: the results a finished test kept in its results ConfigMap.

Each key of the ConfigMap is text in `data[key]`, or gzip in
`binaryData[key + ".gz"]` (base64 in the API, as Kubernetes stores binaryData)
when the text would not have fit; both read back as the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Mapping
from typing import Any

from locust_operator.api.contract import (
    KIND,
    REPORT_HTML_KEY,
    REQUESTS_CSV_KEY,
    RESULT_KEY,
    TERMINAL,
    results_name,
)
from locust_operator.cli.status_lines import phase
from locust_operator.controller.kube_api import ApiError, object_path
from locust_operator.controller.list_watch import Streams
from locust_operator.rules.observe import controller_uid

# -o value -> the ConfigMap key it prints
FORMATS = {"html": REPORT_HTML_KEY, "json": RESULT_KEY, "csv": REQUESTS_CSV_KEY}
GZIP_SUFFIX = ".gz"


class ReportError(Exception):
    """The report cannot be printed (the message is one line for the user)."""


def kept_keys(configmap: Mapping[str, Any]) -> set[str]:
    """The keys the ConfigMap holds, gzip or not, by their plain names."""
    binary = {key.removesuffix(GZIP_SUFFIX) for key in configmap.get("binaryData") or {}
              if key.endswith(GZIP_SUFFIX)}
    return set(configmap.get("data") or {}) | binary


def kept(configmap: Mapping[str, Any], key: str) -> bytes | None:
    """The content of `key`, unzipped if it was kept gzipped; None when absent.

    Raises ValueError when the gzipped copy does not decode.
    """
    data = configmap.get("data") or {}
    if key in data:
        return str(data[key]).encode()
    packed = (configmap.get("binaryData") or {}).get(key + GZIP_SUFFIX)
    if packed is None:
        return None
    try:
        return gzip.decompress(base64.b64decode(str(packed), validate=True))
    except (binascii.Error, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{key}{GZIP_SUFFIX} is not base64 gzip ({exc})") from None


def missing(name: str, output: str, configmap_name: str, keys: set[str],
            result: Mapping[str, Any]) -> str:
    """Why the format asked for is not in the ConfigMap, and which one to try instead."""
    key = FORMATS[output]
    others = [fmt for fmt in FORMATS if fmt != output and FORMATS[fmt] in keys]
    hint = f"; try -o {others[0]}" if others else ""
    if output == "html" and result.get("source") == "MasterLog":
        return f"{name}: no HTML report was kept (results came from the master's log){hint}"
    truncated = (result.get("report") or {}).get("truncated")
    why = f" (left out: {truncated})" if truncated else ""
    return f"{name}: ConfigMap {configmap_name} has no {key}{why}{hint}"


async def fetch(api: Streams, namespace: str, name: str, output: str) -> bytes:
    """The kept `output` (html, json or csv) of the test; ReportError when there is none."""
    try:
        test = await api.get_json(object_path(KIND, namespace, name))
    except ApiError as exc:
        if exc.status == 404:
            raise ReportError(f"{name}: no LocustTest {name} in namespace {namespace}") from None
        raise
    status = test.get("status") or {}
    result = status.get("result") or {}
    kept_report = result.get("report") or {}
    configmap_name = str(kept_report.get("configMap") or results_name(name))
    if output == "html":
        if kept_report.get("reportDropped"):
            raise ReportError(f"{name}: no HTML report any more ({kept_report['reportDropped']}); "
                              "try -o json")
        configmap_name = str((kept_report.get("reportConfigMap") or {}).get("name") or configmap_name)
    try:
        configmap = await api.get_json(object_path("ConfigMap", namespace, configmap_name))
    except ApiError as exc:
        if exc.status != 404:
            raise
        current = phase(test)
        if current not in TERMINAL:
            raise ReportError(f"{name}: {current or 'not started'}; its results are kept once it "
                              "finishes (locust-operator wait first)") from None
        note = f": {result['message']}" if result.get("message") else ""
        raise ReportError(f"{name}: no results ConfigMap {configmap_name}{note}") from None
    # The operator cannot read ConfigMaps, so it cannot tell whether one it found
    # under this name is its own: only report what this very test owns.
    uid = (test.get("metadata") or {}).get("uid")
    if uid and controller_uid(configmap.get("metadata") or {}) != uid:
        raise ReportError(f"{name}: ConfigMap {configmap_name} does not belong to this test; "
                          "not reporting it")
    try:
        content = kept(configmap, FORMATS[output])
    except ValueError as exc:
        raise ReportError(f"{name}: ConfigMap {configmap_name}: {exc}") from None
    if content is None:
        raise ReportError(missing(name, output, configmap_name, kept_keys(configmap), result))
    return content
