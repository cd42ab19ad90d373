"""The CRD: generated from its one source, documented, and complete."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from locust_operator.validation.validator import crd, schema
from tests.support.examples import ROOT


def test_generated_crd_is_up_to_date() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_crd.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _fields(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, sub in node.get("properties", {}).items():
        yield f"{path}.{key}", sub
        yield from _fields(sub, f"{path}.{key}")
    if "items" in node:
        yield from _fields(node["items"], f"{path}[]")


def test_every_field_has_a_description() -> None:
    missing = [path for path, sub in _fields(schema(), "") if not sub.get("description")
               and not path.endswith(".metadata")]
    assert missing == []


def test_identity_and_printer_columns() -> None:
    spec = crd()["spec"]
    assert spec["names"]["shortNames"] == ["lotest"]
    (version,) = spec["versions"]
    assert version["name"] == "v2" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Phase", "State", "Workers", "Connected", "Users", "RPS", "Fail %", "Verdict",
                             "Image", "Age"]
    assert columns["State"]["jsonPath"] == ".status.locust.state"  # Running says the master is Ready
    assert columns["Image"]["priority"] == 1 and columns["Verdict"]["priority"] == 1
    assert columns["Verdict"]["jsonPath"] == ".status.verdict"
    assert columns["Fail %"]["jsonPath"] == ".status.locust.failPercent"
    assert columns["Workers"]["jsonPath"] == ".status.expectedWorkers"  # pods x processes


def test_status_conditions_schema() -> None:
    status = schema()["properties"]["status"]["properties"]
    assert set(status) >= {"phase", "observedGeneration", "expectedWorkers", "connectedWorkers",
                           "startTime", "completionTime", "conditions"}
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_metadata_declares_name_and_generate_name_so_the_cost_estimator_sees_the_bound() -> None:
    # The API server's CEL cost estimator uses metadata.name's maxLength only when the
    # schema declares both name and generateName; otherwise the reserved-volume-name
    # rule (which calls replace() on the name) is refused as too costly.
    metadata = schema()["properties"]["metadata"]["properties"]
    assert set(metadata) == {"name", "generateName"}
    assert metadata["name"]["maxLength"] == 56
    assert all(field["type"] == "string" for field in metadata.values())
    rules = [r["rule"] for r in schema()["x-kubernetes-validations"]]
    assert any("self.metadata.name.replace('.', '-')" in rule for rule in rules)
