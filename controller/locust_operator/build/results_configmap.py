"""The `<name>-results` ConfigMap that keeps a test's results after its pods are gone (and
`<name>-report`, its HTML report, when a schedule keeps reports for its newest runs only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from locust_operator.api.contract import child_labels, owner_reference, report_name, results_name


def results_configmap(metadata: Mapping[str, Any], data: dict[str, str],
                      binary_data: dict[str, str], report: bool = False) -> dict[str, Any]:
    """The ConfigMap of a test's kept results (or of its HTML report alone: `report`), owned by
    the test (gone with it)."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": (report_name if report else results_name)(metadata["name"]),
            "namespace": metadata["namespace"],
            "labels": child_labels(metadata["name"], "report" if report else "results"),
            "ownerReferences": [owner_reference(metadata)]},
        "data": data,
        **({"binaryData": binary_data} if binary_data else {}),
    }
