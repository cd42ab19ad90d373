"""The `<name>-results` ConfigMap that keeps a test's results after its pods are gone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from locust_operator.api.contract import child_labels, owner_reference, results_name


def results_configmap(metadata: Mapping[str, Any], data: dict[str, str],
                      binary_data: dict[str, str]) -> dict[str, Any]:
    """The ConfigMap of a test's kept results, owned by the test (gone with it)."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": results_name(metadata["name"]), "namespace": metadata["namespace"],
            "labels": child_labels(metadata["name"], "results"),
            "ownerReferences": [owner_reference(metadata)]},
        "data": data,
        **({"binaryData": binary_data} if binary_data else {}),
    }
