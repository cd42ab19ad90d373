"""v1 -> v2 migration follows the reference mapping and reports what it drops."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from locust_operator.migrate import MigrationError, migrate_v1
from locust_operator.validation import validate
from tests.conftest import EXAMPLES


def _legacy() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / "v1" / "legacy.yaml").read_text())
    return loaded


def test_example_maps_every_field() -> None:
    migration = migrate_v1(_legacy())
    v2 = migration.manifest
    assert migration.dropped == []
    assert validate(v2)[1] == []
    spec = v2["spec"]
    assert v2["apiVersion"] == "locust.io/v2"
    assert v2["metadata"] == {"name": "legacy", "namespace": "load-tests"}
    assert spec["master"]["command"].startswith("--locustfile /lotest/src/demo.py --host")
    assert spec["master"]["autostart"] is True
    assert spec["master"]["autoquit"] == {"enabled": True, "timeout": 60}
    assert spec["master"]["labels"] == {"team": "payments"}
    assert spec["master"]["annotations"] == {"example.com/owner": "payments-oncall"}
    assert "annotations" not in spec["worker"]
    assert spec["worker"]["replicas"] == 3
    assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert spec["testFiles"] == {"configMapRef": "demo-locustfile", "libConfigMapRef": "demo-lib"}
    terms = spec["scheduling"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "workload", "operator": "In",
                                            "values": ["load-test"]}]}]
    assert spec["scheduling"]["tolerations"][0]["key"] == "dedicated"


def test_replicas_default_and_dropped_fields() -> None:
    legacy = _legacy()
    del legacy["spec"]["workerReplicas"]
    legacy["spec"]["colour"] = "blue"
    legacy["spec"]["affinity"]["podAffinity"] = {}
    legacy["metadata"].update(uid="u", resourceVersion="1")
    legacy["status"] = {"phase": "Running"}
    migration = migrate_v1(legacy)
    assert migration.manifest["spec"]["worker"]["replicas"] == 1
    assert "uid" not in migration.manifest["metadata"]
    assert any("spec.colour" in d for d in migration.dropped)
    assert any("spec.affinity.podAffinity" in d for d in migration.dropped)
    assert any(d.startswith("status") for d in migration.dropped)


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda m: m.update(apiVersion="locust.io/v2"), "expected apiVersion locust.io/v1"),
    (lambda m: m["spec"].pop("masterCommandSeed"), "spec.masterCommandSeed"),
    (lambda m: m.pop("spec"), "spec: required"),
    (lambda m: m["spec"]["affinity"]["nodeAffinity"].update(
        requiredDuringSchedulingIgnoredDuringExecution=["x"]), "map of node label"),
])
def test_not_migratable(mutate: Any, words: str) -> None:
    legacy = _legacy()
    mutate(legacy)
    with pytest.raises(MigrationError, match=words):
        migrate_v1(legacy)


def test_cli_migrate_then_render_roundtrip() -> None:
    migrated = subprocess.run([sys.executable, "-m", "locust_operator", "migrate",
                               str(EXAMPLES / "v1" / "legacy.yaml")],
                              capture_output=True, text=True, check=True)
    rendered = subprocess.run([sys.executable, "-m", "locust_operator", "render", "-", "-o", "json"],
                              input=migrated.stdout, capture_output=True, text=True, check=True)
    assert '"name": "legacy-worker"' in rendered.stdout


def test_cli_migrate_reports_invalid_result() -> None:
    legacy = _legacy()
    legacy["spec"]["workerReplicas"] = 900
    result = subprocess.run([sys.executable, "-m", "locust_operator", "migrate", "-"],
                            input=yaml.safe_dump(legacy), capture_output=True, text=True)
    assert result.returncode == 1
    assert "spec.worker.replicas: must be <= 500" in result.stderr
