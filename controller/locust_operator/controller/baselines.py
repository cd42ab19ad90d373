"""A finished run's comparison with its series: list the series, choose the baseline, compare.

The series is listed from the API server with a label selector, within bounds
(its objects are the tenant's); the choice and the math are pure
(rules/baseline.py). Whatever cannot be read or honoured becomes
`status.result.baseline.error`, one line, and the verdict BaselineInvalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from locust_operator.api.contract import KIND, SERIES_LABEL
from locust_operator.controller.kube_api import API_ERRORS, Api
from locust_operator.rules.baseline import BaselineError, choose, compare, series_of
from locust_operator.rules.bounded import text

# Runs of a series read per comparison, and the bytes of their list. A schedule keeps
# at most 100 passed and 100 failed runs (its history limits), so a page holds them all.
SERIES_LIMIT = 250
SERIES_MAX_BYTES = 32 * 1024 * 1024


async def against_series(api: Api, test: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """status.result.baseline of a run with `spec.baseline`, its final `result` at hand."""
    metadata = test["metadata"]
    wanted = test["spec"]["baseline"]
    series = series_of(metadata)
    runs: list[dict[str, Any]] = []
    if series is not None:
        try:
            runs = await api.list_labelled(KIND, metadata["namespace"], f"{SERIES_LABEL}={series}",
                                           SERIES_LIMIT, SERIES_MAX_BYTES)
        except API_ERRORS as exc:
            return {"passed": False,
                    "error": f"spec.baseline: cannot list the runs of series {series!r}: {text(exc, 300)}"}
    try:
        mode, chosen = choose(wanted, test, runs)
    except BaselineError as exc:
        return {"passed": False, "error": str(exc)}
    return compare(wanted, result, mode, chosen, series or "")
