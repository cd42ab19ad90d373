"""Property-based: every v1 object the v1 schema accepts migrates, losing nothing quietly.

Objects are drawn from the v1 schema (the reference's "v1 (legacy) spec",
written out below as the v1 CRD had it), edge values included. Each one
migrates to a v2 object the v2 CRD accepts (checked offline with the project's
validator) or to one-line messages naming the field; never to a traceback.
Nothing is dropped without a warning: mapped back, the v2 spec gives the v1
spec again, and every field outside the v1 schema is named in a warning.
Derandomized, so CI runs the same examples every time.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locust_operator.build.migrate import _KNOWN_V1, migrate_v1, problems
from locust_operator.cli.main import _Failed, cli

NODE = "requiredDuringSchedulingIgnoredDuringExecution"
# cel-python raises the recursion limit when the validator first builds a CEL
# environment; raise it now, or Hypothesis warns that a test changed it.
celpy.Environment()
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_ROLE_MAPS = {"type": "object", "properties": {"master": _STRING_MAP, "worker": _STRING_MAP}}
# The v1 CRD's spec schema (locust.io/v1, as its CRD served it).
V1_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["masterCommandSeed", "workerCommandSeed", "image"],  # workerReplicas is defaulted
    "additionalProperties": False,
    "properties": {
        "masterCommandSeed": {"type": "string"},
        "workerCommandSeed": {"type": "string"},
        "workerReplicas": {"type": "integer", "minimum": 1, "maximum": 500, "default": 1},
        "image": {"type": "string"},
        "imagePullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
        "imagePullSecrets": {"type": "array", "items": {"type": "string"}},
        "configMap": {"type": "string"},
        "libConfigMap": {"type": "string"},
        "labels": _ROLE_MAPS,
        "annotations": _ROLE_MAPS,
        "affinity": {"type": "object", "properties": {"nodeAffinity": {
            "type": "object", "properties": {NODE: _STRING_MAP}}}},
        "tolerations": {"type": "array", "items": {
            "type": "object", "required": ["key", "operator", "effect"],
            "properties": {"key": {"type": "string"},
                           "operator": {"type": "string", "enum": ["Exists", "Equal"]},
                           "value": {"type": "string"},
                           "effect": {"type": "string",
                                      "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]}}}},
    },
}


def test_migrate_knows_every_v1_field() -> None:
    assert set(V1_SPEC_SCHEMA["properties"]) == _KNOWN_V1


# Values v1 accepts (any string) that v2 or Kubernetes may refuse.
edge_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "-", "A", "a_b", "a" * 64, "x" * 254, "'", '"', "\\", "a b", "\n",
                     "a\u2028b", "é", "-f 'a b", "prefix/", "/name", "a/b/c", "1"]),
)


def _text(valid: st.SearchStrategy[str], edges: bool) -> st.SearchStrategy[str]:
    return st.one_of(valid, edge_text) if edges else valid


subdomain = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?){0,2}",
                          fullmatch=True)
label_key = st.from_regex(r"([a-z0-9]{1,8}(\.[a-z]{1,4})?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?",
                          fullmatch=True)
label_value = st.from_regex(r"(([A-Za-z0-9][-A-Za-z0-9_.]{0,10})?[A-Za-z0-9])?", fullmatch=True)
command = st.lists(st.from_regex(r"[A-Za-z0-9_./:=-]{1,12}", fullmatch=True),
                   min_size=1, max_size=5).map(" ".join)
image = st.from_regex(r"[a-z0-9./-]{1,20}(:[a-z0-9.]{1,8})?", fullmatch=True)
# Names a v2 LocustTest may have: a letter first, at most 56 characters.
v2_name = st.from_regex(r"[a-z]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,2}", fullmatch=True)
# Any name the API server allowed a v1 object: a DNS subdomain of up to 253 characters.
v1_name = st.one_of(v2_name, subdomain, st.sampled_from(["1a", "a" * 57, "a" * 253, "0.team"]))


@st.composite
def v1_specs(draw: st.DrawFn, edges: bool) -> dict[str, Any]:
    """A spec the v1 schema accepts; with `edges`, strings v1 allowed and Kubernetes may not."""
    spec: dict[str, Any] = {
        "masterCommandSeed": draw(_text(command, edges)),
        "workerCommandSeed": draw(_text(command, edges)),
        "image": draw(_text(image, edges)),
    }

    def maybe(key: str, strategy: st.SearchStrategy[Any]) -> None:
        if draw(st.booleans()):
            spec[key] = draw(strategy)

    maybe("workerReplicas", st.one_of(st.sampled_from([1, 500]), st.integers(1, 500)))
    maybe("imagePullPolicy", st.sampled_from(["Always", "IfNotPresent", "Never"]))
    maybe("imagePullSecrets", st.lists(_text(subdomain, edges), max_size=20 if edges else 4))
    maybe("configMap", _text(subdomain, edges))
    maybe("libConfigMap", _text(subdomain, edges))
    for key, values in (("labels", _text(label_value, edges)), ("annotations", st.text(max_size=20))):
        role_map = st.dictionaries(_text(label_key, edges), values, max_size=4)
        maybe(key, st.fixed_dictionaries({}, optional={"master": role_map, "worker": role_map}))
    required = st.dictionaries(_text(label_key, edges), _text(label_value, edges), max_size=4)
    maybe("affinity", st.one_of(
        st.just({}), st.just({"nodeAffinity": {}}),
        st.fixed_dictionaries({"nodeAffinity": st.fixed_dictionaries({NODE: required})})))
    toleration = st.fixed_dictionaries(
        {"key": _text(label_key, edges), "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule",
                                                                    "NoExecute"])},
        optional={"value": _text(label_value, edges)})
    operator = st.sampled_from(["Exists", "Equal"]) if edges else st.just("Equal")
    maybe("tolerations", st.lists(st.builds(lambda t, o: {**t, "operator": o}, toleration, operator),
                                  max_size=3))
    if not edges and draw(st.booleans()):  # Exists tolerations, as Kubernetes takes them: no value
        spec.setdefault("tolerations", []).append(
            {"key": draw(label_key), "operator": "Exists", "effect": "NoExecute"})
    return spec


# Fields outside the v1 schema that a v1 manifest may carry (the v1 API server
# pruned them, or they were never applied): (the field a warning must name, how to add it).
def _add(path: str, value: Any) -> Any:
    def add(manifest: dict[str, Any]) -> str | None:
        *parents, key = path.split(".")
        node: Any = manifest
        for parent in parents:
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):
                return None
        node[key] = value
        return path
    return add


def _toleration_seconds(manifest: dict[str, Any]) -> str | None:
    tolerations = manifest["spec"].get("tolerations")
    if not tolerations:
        return None
    tolerations[0]["tolerationSeconds"] = 30
    return "spec.tolerations[0].tolerationSeconds"


EXTRAS = [
    _add("extraTop", {"a": 1}), _add("spec.colour", "blue"), _add("spec.labels.team", "payments"),
    _add("spec.labels.both", {"a": "b"}), _add("spec.annotations.both", {"a": "b"}),
    _add("spec.affinity.podAffinity", {}),
    _add("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution", []),
    _toleration_seconds, _add("spec.odd\u2028key", 1),
]


@st.composite
def v1_tests(draw: st.DrawFn, edges: bool) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(manifest, its v1 spec without the extras, the fields outside v1 that were added)."""
    spec = draw(v1_specs(edges))
    assert jsonschema.Draft7Validator(V1_SPEC_SCHEMA).is_valid(spec)
    metadata: dict[str, Any] = {"name": draw(v1_name if edges else v2_name)}
    if draw(st.booleans()):
        metadata.update(namespace="load", uid="0f2c", resourceVersion="42", generation=3,
                        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"})
    manifest = {"apiVersion": "locust.io/v1", "kind": "LocustTest", "metadata": metadata,
                "spec": copy.deepcopy(spec)}
    extras = draw(st.lists(st.sampled_from(EXTRAS), max_size=3, unique=True))
    # A key that is not printable text is quoted in messages, which stay one line.
    added = [field.replace("odd\u2028key", repr("odd\u2028key"))
             for extra in extras if (field := extra(manifest))]
    return manifest, spec, added


def _role_map(v2: dict[str, Any], key: str) -> dict[str, Any]:
    return {role: v2[role][key] for role in ("master", "worker") if key in v2[role]}


def back_to_v1(v2: dict[str, Any]) -> dict[str, Any]:
    """The v1 spec a migrated v2 spec says it came from (the reference's mapping, reversed)."""
    spec: dict[str, Any] = {"masterCommandSeed": v2["master"]["command"],
                            "workerCommandSeed": v2["worker"]["command"],
                            "workerReplicas": v2["worker"]["replicas"], "image": v2["image"]}
    assert v2["master"]["autostart"] is True
    assert v2["master"]["autoquit"] == {"enabled": True, "timeout": 60}
    if "imagePullPolicy" in v2:
        spec["imagePullPolicy"] = v2["imagePullPolicy"]
    if "imagePullSecrets" in v2:
        spec["imagePullSecrets"] = [s["name"] for s in v2["imagePullSecrets"]]
    for v2_key, v1_key in (("configMapRef", "configMap"), ("libConfigMapRef", "libConfigMap")):
        if v2_key in v2.get("testFiles", {}):
            spec[v1_key] = v2["testFiles"][v2_key]
    for key in ("labels", "annotations"):
        if _role_map(v2, key):
            spec[key] = _role_map(v2, key)
    scheduling = v2.get("scheduling", {})
    if "affinity" in scheduling:
        terms = scheduling["affinity"]["nodeAffinity"][NODE]["nodeSelectorTerms"]
        assert len(terms) == 1
        expressions = terms[0]["matchExpressions"]
        assert all(e["operator"] == "In" and len(e["values"]) == 1 for e in expressions)
        spec["affinity"] = {"nodeAffinity": {NODE: {e["key"]: e["values"][0] for e in expressions}}}
    if "tolerations" in scheduling:
        spec["tolerations"] = scheduling["tolerations"]
    return spec


def normalised(spec: dict[str, Any]) -> dict[str, Any]:
    """A v1 spec as it means: the default replicas, without empty maps and lists."""
    result = {key: value for key, value in spec.items() if value not in ({}, [])}
    result.setdefault("workerReplicas", 1)
    for key in ("labels", "annotations"):
        roles = {role: m for role, m in result.get(key, {}).items() if m}
        result.pop(key, None)
        if roles:
            result[key] = roles
    required = result.pop("affinity", {}).get("nodeAffinity", {}).get(NODE)
    if required:
        result["affinity"] = {"nodeAffinity": {NODE: required}}
    return result


_PATH = re.compile(r"^(metadata|spec)[.\[]")


def _check(manifest: dict[str, Any], spec: dict[str, Any], added: list[str], edges: bool) -> None:
    migration = migrate_v1(manifest)  # a v1 object is never refused outright
    assert back_to_v1(migration.manifest["spec"]) == normalised(spec)  # nothing lost on the way
    # Every field outside v1 is named, and nothing else is warned about.
    assert sorted(w.split(": ", 1)[0] for w in migration.dropped) == sorted(added)
    assert all(len(w.splitlines()) == 1 for w in migration.dropped)
    lines = problems(migration.manifest)  # the v2 CRD's verdict, by the project's validator
    for line in lines:  # a clear message: one line, naming the field
        assert len(line.splitlines()) == 1 and _PATH.match(line), line
    if not edges:
        assert lines == []


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_settings(200)
@given(v1_tests(edges=False))
def test_kubernetes_valid_v1_tests_migrate_to_valid_v2(case: tuple[dict[str, Any], dict[str, Any],
                                                                    list[str]]) -> None:
    _check(*case, edges=False)


@_settings(300)
@given(v1_tests(edges=True))
def test_any_v1_test_migrates_or_gets_a_one_line_message(case: tuple[dict[str, Any], dict[str, Any],
                                                                      list[str]]) -> None:
    _check(*case, edges=True)


@_settings(30)
@given(st.lists(v1_tests(edges=True), min_size=1, max_size=3), st.booleans())
def test_the_command_never_shows_a_traceback(
        cases: list[tuple[dict[str, Any], dict[str, Any], list[str]]], as_list: bool) -> None:
    tests = [manifest for manifest, _, _ in cases]
    text = (yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": tests}) if as_list
            else yaml.safe_dump_all(tests))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "in.yaml"
        path.write_text(text)
        result = CliRunner().invoke(cli, ["migrate", str(path)], standalone_mode=False)
    assert result.exception is None or isinstance(result.exception, _Failed), result.exception
    assert all(line.startswith(f"{path}#") for line in result.stderr.splitlines()), result.stderr
    if result.exception is None:
        names = [d["metadata"]["name"] for d in yaml.safe_load_all(result.stdout)]
        assert names == [t["metadata"]["name"] for t in tests]  # in order
