"""render rejects what the API server rejects, naming the field; nothing else."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest
import yaml

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import render
from locust_operator.validation.validator import (
    InvalidLocustTest,
    annotation_size_problems,
    validate,
    validated,
)
from tests.support.examples import BASE_TEST, EXAMPLE_TESTS, EXAMPLES, load_example
from tests.unit.bad_examples import BAD_EXAMPLES, RESERVED_VOLUME_NAMES, bad_manifest, with_volume


@pytest.mark.parametrize(("mutation", "field", "words"),
                         [pytest.param(m, f, w, id=i) for i, m, f, w in BAD_EXAMPLES])
def test_bad_input_is_rejected_naming_the_field(mutation: Any, field: str, words: str) -> None:
    _, problems = validate(bad_manifest(mutation))
    assert problems, "expected the manifest to be rejected"
    matching = [p for p in problems if p.path == field]
    assert matching, f"no problem for {field}: {[str(p) for p in problems]}"
    assert any(words in p.message for p in matching), [str(p) for p in matching]


@pytest.mark.parametrize("example", EXAMPLE_TESTS)
def test_examples_are_valid(example: str) -> None:
    assert validate(load_example(example))[1] == []


def test_defaults_are_applied_like_the_api_server() -> None:
    spec = validated(copy.deepcopy(BASE_TEST))["spec"]
    assert spec["imagePullPolicy"] == "IfNotPresent"
    assert spec["master"]["autostart"] is True
    assert spec["master"]["autoquit"] == {"enabled": True, "timeout": 60}
    assert spec["testFiles"]["srcMountPath"] == "/lotest/src"
    assert spec["testFiles"]["libMountPath"] == "/opt/locust/lib"


def test_mount_overlap_only_matters_when_the_configmap_is_mounted() -> None:
    test = copy.deepcopy(BASE_TEST)
    del test["spec"]["testFiles"]
    test["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    test["spec"]["volumeMounts"] = [{"name": "data", "mountPath": "/lotest/src"}]
    assert validate(test)[1] == []


@pytest.mark.parametrize(("name", "volume", "reserved"), RESERVED_VOLUME_NAMES)
def test_reserved_volume_names_are_the_childrens_dashed_names(name: str, volume: str,
                                                              reserved: bool) -> None:
    problems = validate(with_volume(name, volume))[1]
    assert [p.path for p in problems] == (["spec.volumes"] if reserved else [])


def test_sibling_path_is_not_an_overlap() -> None:
    test = copy.deepcopy(BASE_TEST)
    test["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    test["spec"]["volumeMounts"] = [{"name": "data", "mountPath": "/lotest/srcdata"}]
    assert validate(test)[1] == []


@pytest.mark.parametrize(("manifest", "words"), [
    ([1, 2], "expected a mapping"),
    ({"apiVersion": "locust.io/v1", "kind": "LocustTest"}, "locust-operator migrate"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "kind 'ConfigMap'"),
    ({"apiVersion": "locust.io/v2", "kind": "LocustTest", "metadata": {}}, "metadata.name"),
    ({"apiVersion": "locust.io/v2", "kind": "LocustTest", "metadata": {"name": "Bad_Name"}},
     "RFC 1123"),
])
def test_identity_problems(manifest: Any, words: str) -> None:
    with pytest.raises(InvalidLocustTest) as error:
        render(manifest, OperatorConfig())
    assert words in str(error.value)


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "locust_operator", *args], input=stdin,
                          capture_output=True, text=True, check=False)


def test_cli_prints_one_line_per_problem_without_traceback() -> None:
    docs = [bad_manifest(m) for _, m, _, _ in BAD_EXAMPLES]
    result = _cli("render", "-", stdin=yaml.safe_dump_all(docs))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= len(docs)
    for index, (_, _, field, _) in enumerate(BAD_EXAMPLES, start=1):
        assert any(line.startswith(f"<stdin>#{index} ") and f": {field}:" in line
                   for line in lines), (index, field, lines)


@pytest.mark.parametrize(("stdin", "words"), [
    ("a: [unclosed", "not valid YAML"),
    ("", "no LocustTest found"),
    ("- 1\n- 2\n", "expected a mapping"),
])
def test_cli_rejects_garbage(stdin: str, words: str) -> None:
    result = _cli("render", "-", stdin=stdin)
    assert result.returncode == 1
    assert words in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("config_text", "words"), [
    ("logFormat: xml\n", "config: logFormat: must be one of text, json"),
    ("podHealthGraceSeconds: -5\n", "config: podHealthGraceSeconds: must be >= 0"),
])
def test_run_refuses_a_bad_config_before_connecting(tmp_path: Any, config_text: str, words: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(config_text)
    result = _cli("run", "--config", str(path))
    assert result.returncode == 1
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_render_config_and_template_override(tmp_path: Any) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("jobTtlSecondsAfterFinished: 42\nmetricsExporter: {enabled: false}\n")
    result = _cli("render", str(EXAMPLES / "minimal.yaml"), "--config", str(config), "-o", "json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    assert [i["kind"] for i in items] == ["Service", "Job", "Job"]
    assert all(i["spec"]["ttlSecondsAfterFinished"] == 42 for i in items if i["kind"] == "Job")
    assert "initContainers" not in items[1]["spec"]["template"]["spec"]


_KIB = 1024


def _annotated(field: str, annotations: Any) -> dict[str, Any]:
    test = copy.deepcopy(BASE_TEST)
    *parents, last = field.split(".")
    node = test
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = annotations
    return test


# (field, annotations, problem expected): the cap is on keys plus values, in UTF-8 bytes.
ANNOTATION_SIZES: list[tuple[str, str, Any, bool]] = [
    ("small", "metadata.annotations", {"a": "b"}, False),
    ("at-the-cap", "metadata.annotations", {"k": "x" * (256 * _KIB - 1)}, False),
    ("one-byte-over", "metadata.annotations", {"k": "x" * (256 * _KIB)}, True),
    ("keys-count", "metadata.annotations", {"k" * (128 * _KIB + 1): "x" * (128 * _KIB)}, True),
    ("summed-over-entries", "metadata.annotations",
     {f"k{i}": "x" * (64 * _KIB) for i in range(4)}, True),
    ("utf-8-bytes-not-characters", "metadata.annotations", {"k": "é" * (128 * _KIB)}, True),
    ("master-over", "spec.master.annotations", {"k": "x" * (256 * _KIB)}, True),
    ("worker-over", "spec.worker.annotations", {"k": "x" * (256 * _KIB)}, True),
    ("worker-at-the-cap", "spec.worker.annotations", {"k": "x" * (256 * _KIB - 1)}, False),
    ("not-a-map-left-to-the-schema", "metadata.annotations", "x" * (300 * _KIB), False),
]


@pytest.mark.parametrize(("field", "annotations", "over"),
                         [pytest.param(f, a, o, id=i) for i, f, a, o in ANNOTATION_SIZES])
def test_annotation_size_cap(field: str, annotations: Any, over: bool) -> None:
    problems = annotation_size_problems(_annotated(field, annotations))
    assert [p.path for p in problems] == ([field] if over else [])
    assert all("the API server allows at most 262144" in p.message for p in problems)


def test_render_refuses_oversized_role_annotations_naming_the_field() -> None:
    with pytest.raises(InvalidLocustTest) as error:
        render(_annotated("spec.master.annotations", {"k": "x" * (300 * _KIB)}), OperatorConfig())
    assert [p.path for p in error.value.problems] == ["spec.master.annotations"]


def test_cel_answers_are_remembered_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    from locust_operator.validation import validator

    evaluated: list[str] = []
    real = validator._cel_program

    def counting(rule: str) -> Any:
        evaluated.append(rule)
        return real(rule)

    monkeypatch.setattr(validator, "_cel_program", counting)
    answers = validator._CelAnswers(size=2, key_chars=20)
    rule = "self.a > 1"
    assert [answers.answer(rule, {"a": 2}), answers.answer(rule, {"a": 2})] == [True, True]
    assert len(evaluated) == 1  # the second answer was remembered
    # Same repr, different types: 1 and "1" are different values.
    assert answers.answer(rule, {"a": 1}) is False
    assert isinstance(answers.answer(rule, {"a": "1"}), str)  # no such overload: said, not raised
    assert len(evaluated) == 3
    assert answers.answer(rule, {"a": 2}) is True and len(evaluated) == 4  # evicted: size 2
    big = {"a": 2, "pad": "x" * 20}
    answers.answer(rule, big)
    answers.answer(rule, big)
    assert len(evaluated) == 6  # over key_chars: never kept
