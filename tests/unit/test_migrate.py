"""v1 -> v2 migration follows the reference mapping and reports what it drops."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
import yaml

from locust_operator.build.migrate import MigrationError, migrate_v1, problems
from locust_operator.validation.validator import validate
from tests.support.examples import EXAMPLES


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


# --- every v1 field, table-driven -------------------------------------------------------------

V1_BASE: dict[str, Any] = {
    "apiVersion": "locust.io/v1", "kind": "LocustTest", "metadata": {"name": "team.test"},
    "spec": {"masterCommandSeed": "-f /lotest/src/a.py -u 5", "workerCommandSeed": "-f /lotest/src/a.py",
             "image": "locustio/locust:2.43.3"},
}
NODE = "requiredDuringSchedulingIgnoredDuringExecution"


def _v1(**spec: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(V1_BASE)
    manifest["spec"].update(spec)
    return manifest


def _at(manifest: dict[str, Any], path: str) -> Any:
    value: Any = manifest
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


_ABSENT = object()

# (id, v1 spec fields, v2 field, its expected value; _ABSENT when the v2 field must not be set)
FIELD_CASES: list[tuple[str, dict[str, Any], str, Any]] = [
    ("masterCommandSeed", {}, "spec.master.command", "-f /lotest/src/a.py -u 5"),
    ("workerCommandSeed", {}, "spec.worker.command", "-f /lotest/src/a.py"),
    ("workerReplicas-default", {}, "spec.worker.replicas", 1),
    ("workerReplicas-null", {"workerReplicas": None}, "spec.worker.replicas", 1),
    ("workerReplicas-min", {"workerReplicas": 1}, "spec.worker.replicas", 1),
    ("workerReplicas-max", {"workerReplicas": 500}, "spec.worker.replicas", 500),
    ("image", {}, "spec.image", "locustio/locust:2.43.3"),
    ("imagePullPolicy-absent", {}, "spec.imagePullPolicy", _ABSENT),
    ("imagePullPolicy-Always", {"imagePullPolicy": "Always"}, "spec.imagePullPolicy", "Always"),
    ("imagePullPolicy-IfNotPresent", {"imagePullPolicy": "IfNotPresent"}, "spec.imagePullPolicy",
     "IfNotPresent"),
    ("imagePullPolicy-Never", {"imagePullPolicy": "Never"}, "spec.imagePullPolicy", "Never"),
    ("imagePullSecrets-strings", {"imagePullSecrets": ["regcred", "other.reg"]}, "spec.imagePullSecrets",
     [{"name": "regcred"}, {"name": "other.reg"}]),
    ("imagePullSecrets-objects", {"imagePullSecrets": [{"name": "regcred"}, "b"]}, "spec.imagePullSecrets",
     [{"name": "regcred"}, {"name": "b"}]),
    ("imagePullSecrets-empty", {"imagePullSecrets": []}, "spec.imagePullSecrets", _ABSENT),
    ("configMap", {"configMap": "files"}, "spec.testFiles", {"configMapRef": "files"}),
    ("libConfigMap", {"libConfigMap": "lib"}, "spec.testFiles", {"libConfigMapRef": "lib"}),
    ("no-configMaps", {}, "spec.testFiles", _ABSENT),
    ("labels.master", {"labels": {"master": {"team": "a", "example.com/x": ""}}}, "spec.master.labels",
     {"team": "a", "example.com/x": ""}),
    ("labels.worker", {"labels": {"worker": {"team": "b"}}}, "spec.worker.labels", {"team": "b"}),
    ("labels.worker-only", {"labels": {"worker": {"team": "b"}}}, "spec.master.labels", _ABSENT),
    ("labels-empty", {"labels": {"master": {}, "worker": None}}, "spec.master.labels", _ABSENT),
    ("annotations.master", {"annotations": {"master": {"a/b": "x y\nz"}}}, "spec.master.annotations",
     {"a/b": "x y\nz"}),
    ("annotations.worker", {"annotations": {"worker": {"c": ""}}}, "spec.worker.annotations", {"c": ""}),
    ("affinity", {"affinity": {"nodeAffinity": {NODE: {"zone": "a", "disk": "ssd"}}}},
     "spec.scheduling.affinity", {"nodeAffinity": {NODE: {"nodeSelectorTerms": [{"matchExpressions": [
         {"key": "disk", "operator": "In", "values": ["ssd"]},
         {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}),
    ("affinity-empty", {"affinity": {"nodeAffinity": {NODE: {}}}}, "spec.scheduling", _ABSENT),
    ("affinity-no-node", {"affinity": {}}, "spec.scheduling", _ABSENT),
    ("tolerations", {"tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "load", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Exists", "effect": "NoExecute"},
        {"key": "x", "operator": "Exists", "value": "", "effect": "PreferNoSchedule"}]},
     "spec.scheduling.tolerations", [
        {"key": "dedicated", "operator": "Equal", "value": "load", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Exists", "effect": "NoExecute"},
        {"key": "x", "operator": "Exists", "value": "", "effect": "PreferNoSchedule"}]),
    ("tolerations-empty", {"tolerations": []}, "spec.scheduling", _ABSENT),
    ("autostart", {}, "spec.master.autostart", True),
    ("autoquit", {}, "spec.master.autoquit", {"enabled": True, "timeout": 60}),
]


@pytest.mark.parametrize(("spec", "path", "expected"),
                         [pytest.param(s, p, e, id=i) for i, s, p, e in FIELD_CASES])
def test_each_v1_field_maps_to_v2(spec: dict[str, Any], path: str, expected: Any) -> None:
    migration = migrate_v1(_v1(**spec))
    assert migration.dropped == []
    assert problems(migration.manifest) == []
    parent, _, key = path.rpartition(".")
    if expected is _ABSENT:
        assert key not in (_at(migration.manifest, parent) or {})
    else:
        assert _at(migration.manifest, path) == expected


def test_metadata_keeps_the_users_and_drops_the_servers() -> None:
    manifest = _v1()
    manifest["metadata"] = {
        "name": "a", "namespace": "n", "labels": {"team": "x"}, "uid": "u", "resourceVersion": "1",
        "generation": 2, "creationTimestamp": "2024-01-01T00:00:00Z", "managedFields": [{}],
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "kept"}}
    migration = migrate_v1(manifest)
    assert migration.manifest["metadata"] == {"name": "a", "namespace": "n", "labels": {"team": "x"},
                                              "annotations": {"note": "kept"}}
    assert migration.dropped == []


def _set(path: str, value: Any) -> Any:
    def mutate(manifest: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        node = manifest
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return mutate


# (id, change to the v1 manifest, the one warning expected)
WARNING_CASES: list[tuple[str, Any, str]] = [
    ("top-level", _set("extra", 1), "extra: not a LocustTest field, not carried over"),
    ("unknown-spec", _set("spec.colour", "blue"), "spec.colour: unknown v1 field, not carried over"),
    ("flat-labels", _set("spec.labels", {"team": "payments"}),
     "spec.labels.team: not a v1 field (v1 has labels.master and labels.worker); not carried over: "
     "set it in spec.master.labels and/or spec.worker.labels"),
    ("labels.both", _set("spec.labels", {"both": {"a": "b"}, "master": {"c": "d"}}),
     "spec.labels.both: not a v1 field (v1 has labels.master and labels.worker); not carried over: "
     "set it in spec.master.labels and/or spec.worker.labels"),
    ("annotations.both", _set("spec.annotations", {"both": {"a": "b"}}),
     "spec.annotations.both: not a v1 field (v1 has annotations.master and annotations.worker); "
     "not carried over: set it in spec.master.annotations and/or spec.worker.annotations"),
    ("podAffinity", _set("spec.affinity", {"podAffinity": {}}),
     "spec.affinity.podAffinity: not a v1 field (v1 has only nodeAffinity); not carried over"),
    ("preferred", _set("spec.affinity.nodeAffinity",
                       {"preferredDuringSchedulingIgnoredDuringExecution": []}),
     "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution: not a v1 field "
     f"(v1 has only {NODE}); not carried over"),
    ("tolerationSeconds", _set("spec.tolerations", [
        {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]),
     "spec.tolerations[0].tolerationSeconds: not a v1 toleration field (v1 has key, operator, value, "
     "effect); not carried over"),
    ("secret-object-extra", _set("spec.imagePullSecrets", [{"name": "a", "namespace": "b"}]),
     "spec.imagePullSecrets[0].namespace: not carried over (a pull secret has only a name)"),
    ("status", _set("status", {"phase": "Running"}),
     "status: not carried over (the operator writes v2 status)"),
    ("finalizers", _set("metadata.finalizers", ["locust.io/cleanup"]),
     "metadata.finalizers: ['locust.io/cleanup'] not carried over (only the operator that added a "
     "finalizer removes it)"),
]


@pytest.mark.parametrize(("mutate", "warning"),
                         [pytest.param(m, w, id=i) for i, m, w in WARNING_CASES])
def test_each_drop_is_warned(mutate: Any, warning: str) -> None:
    manifest = _v1()
    mutate(manifest)
    migration = migrate_v1(manifest)
    assert migration.dropped == [warning]
    assert problems(migration.manifest) == []


# (id, v1 spec fields, the one problem expected, naming the v2 field and the v1 one)
PROBLEM_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("empty-command", {"masterCommandSeed": ""},
     "spec.master.command: must be at least 1 characters (v1: spec.masterCommandSeed)"),
    ("replicas-over", {"workerReplicas": 501},
     "spec.worker.replicas: must be <= 500, got 501 (v1: spec.workerReplicas)"),
    ("pull-secret-name", {"imagePullSecrets": ["ok", "Not_A_Name"]},
     "spec.imagePullSecrets[1].name: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', "
     "at most 253 characters, alphanumeric at both ends) (v1: spec.imagePullSecrets[1])"),
    ("configMap-name", {"libConfigMap": "Lib"},
     "spec.testFiles.libConfigMapRef: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', "
     "at most 253 characters, alphanumeric at both ends) (v1: spec.libConfigMap)"),
    ("exists-with-value", {"tolerations": [{"key": "k", "operator": "Exists", "value": "v",
                                            "effect": "NoSchedule"}]},
     "spec.scheduling.tolerations[0].value: value must be empty when operator is Exists "
     "(v1: spec.tolerations[0].value)"),
    ("affinity-key", {"affinity": {"nodeAffinity": {NODE: {"ok": "a", "not ok": "b"}}}},
     f"spec.scheduling.affinity.nodeAffinity.{NODE}.nodeSelectorTerms[0].matchExpressions[0].key: must be "
     "a qualified name: an optional DNS subdomain prefix and '/', then at most 63 characters "
     "(alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric) "
     f"(v1: spec.affinity.nodeAffinity.{NODE}['not ok'])"),
    ("pull-policy", {"imagePullPolicy": "Sometimes"},
     "spec.imagePullPolicy: unsupported value 'Sometimes': must be one of Always, IfNotPresent, Never"),
]


@pytest.mark.parametrize(("spec", "problem"), [pytest.param(s, p, id=i) for i, s, p in PROBLEM_CASES])
def test_v2_problems_name_the_v1_field(spec: dict[str, Any], problem: str) -> None:
    assert problems(migrate_v1(_v1(**spec)).manifest) == [problem]


# --- the command line: Lists, several documents, empty input ----------------------------------

def _migrate_cli(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "locust_operator", "migrate", "-"], input=text,
                          capture_output=True, text=True, check=False, timeout=120)


def _named(name: str, **spec: Any) -> dict[str, Any]:
    manifest = _v1(**spec)
    manifest["metadata"] = {"name": name}
    return manifest


def test_cli_migrates_a_kubectl_list_and_documents_in_order() -> None:
    exported = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                "items": [_named("one"), _named("two", labels={"team": "x"})]}
    text = yaml.safe_dump_all([_named("zero"), exported, _named("three")])
    result = _migrate_cli(text)
    assert result.returncode == 0, result.stderr
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(result.stdout)] == [
        "zero", "one", "two", "three"]
    assert result.stderr.splitlines() == [
        "<stdin>#2.items[1] (two): warning: spec.labels.team: not a v1 field (v1 has labels.master and "
        "labels.worker); not carried over: set it in spec.master.labels and/or spec.worker.labels"]


def test_cli_reports_what_a_list_holds_besides_v1_locusttests() -> None:
    exported = {"apiVersion": "locust.io/v1", "kind": "LocustTestList",
                "items": [_named("one"),
                          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}},
                          {**_named("new"), "apiVersion": "locust.io/v2"}]}
    result = _migrate_cli(yaml.safe_dump(exported))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "<stdin>#1.items[1] (cm): expected apiVersion locust.io/v1 kind LocustTest, got apiVersion 'v1' "
        "kind 'ConfigMap'",
        "<stdin>#1.items[2] (new): expected apiVersion locust.io/v1 kind LocustTest, got apiVersion "
        "'locust.io/v2' kind 'LocustTest'; already v2, nothing to migrate"]


@pytest.mark.parametrize(("text", "line"), [
    ("", "<stdin>: no LocustTest found"),
    ("---\n---\n# only a comment\n", "<stdin>: no LocustTest found"),
    ("apiVersion: v1\nkind: List\nitems: []\n", "<stdin>: no LocustTest found"),
    ("apiVersion: v1\nkind: List\nitems: {a: 1}\n", "<stdin>#1: items: expected a list, got map"),
])
def test_cli_refuses_input_without_a_locusttest(text: str, line: str) -> None:
    result = _migrate_cli(text)
    assert (result.returncode, result.stdout, result.stderr.splitlines()) == (1, "", [line])


def test_messages_stay_one_line_whatever_the_keys() -> None:
    odd = _v1(labels={"x\u2028y": {}}, **{"odd\nkey": 1})
    odd["metadata"]["name"] = "bad\nname"
    text = yaml.safe_dump_all([odd, _v1(labels={"master": {"a\nb": "c d"}})])
    result = _migrate_cli(text)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "<stdin>#1 ('bad\\nname'): warning: spec.'odd\\nkey': unknown v1 field, not carried over",
        "<stdin>#1 ('bad\\nname'): warning: spec.labels.'x\\u2028y': not a v1 field (v1 has labels.master "
        "and labels.worker); not carried over: set it in spec.master.labels and/or spec.worker.labels",
        "<stdin>#1 ('bad\\nname'): the v2 result is invalid: metadata.name: 'bad\\nname' must be a "
        "lowercase RFC 1123 subdomain",
        "<stdin>#2 (team.test): the v2 result is invalid: spec.master.labels: keys must be qualified names: "
        "an optional DNS subdomain prefix and '/', then at most 63 characters (alphanumeric, '-', '_' or "
        "'.', starting and ending with an alphanumeric) (v1: spec.labels.master)",
        "<stdin>#2 (team.test): the v2 result is invalid: spec.master.labels['a\\nb']: label values must "
        "be at most 63 characters (alphanumeric, '-', '_' or '.', starting and ending with an "
        "alphanumeric), or empty (v1: spec.labels.master['a\\nb'])",
    ]
