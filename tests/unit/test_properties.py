"""Property-based: anything the schema accepts renders; user strings come out unchanged."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import render
from locust_operator.validation.validator import validate
from tests.support.examples import BASE_TEST

# Strings meant to break YAML or templates if embedded naively.
nasty_text = st.one_of(
    st.text(min_size=1, max_size=40),
    st.sampled_from(["a: b", "- x", "{{ name }}", "{% raw %}", "'\"", "#c", "\n: |", "&a *a",
                     "!!python/object", "null", "true", "0x1F", "---", "..."]),
)
label_key = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.io/[a-z]{1,8})?", fullmatch=True)
safe_word = st.from_regex(r"[A-Za-z0-9_./:=-]{1,20}", fullmatch=True)

specs = st.fixed_dictionaries(
    {
        "replicas": st.integers(min_value=1, max_value=500),
        "annotations": st.dictionaries(label_key, nasty_text, max_size=4),
        "env": st.lists(st.tuples(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True),
                                  nasty_text), max_size=4),
        "extra": st.lists(nasty_text, max_size=4),
        "seed": st.lists(safe_word, min_size=1, max_size=6),
        "autostart": st.booleans(),
        "autoquit": st.booleans(),
        "timeout": st.integers(min_value=0, max_value=10_000),
        "image": st.from_regex(r"[a-z0-9./-]{1,30}(:[a-z0-9.]{1,10})?", fullmatch=True),
        "otel": st.booleans(),
        "endpoint": nasty_text,
    }
)


def _test(values: dict[str, Any]) -> dict[str, Any]:
    test = copy.deepcopy(BASE_TEST)
    spec = test["spec"]
    spec["image"] = values["image"]
    spec["worker"]["replicas"] = values["replicas"]
    spec["master"]["command"] = " ".join(values["seed"])
    spec["master"]["annotations"] = values["annotations"]
    spec["master"]["extraArgs"] = values["extra"]
    spec["master"]["autostart"] = values["autostart"]
    spec["master"]["autoquit"] = {"enabled": values["autoquit"], "timeout": values["timeout"]}
    spec["env"] = {"variables": [{"name": n, "value": v} for n, v in values["env"]]}
    if values["otel"]:
        spec["observability"] = {"openTelemetry": {"enabled": True, "endpoint": values["endpoint"]}}
    return test


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs)
def test_accepted_specs_render_to_valid_objects_with_strings_unchanged(values: dict[str, Any]) -> None:
    test = _test(values)
    _, problems = validate(test)
    if problems:  # the schema rejected it (e.g. an over-long string): nothing to render
        return
    objects = {o["metadata"]["name"] + o["kind"]: o for o in render(test, OperatorConfig())}
    for obj in objects.values():
        kubernetes_validate.validate(obj, "1.34.0", strict=True)
    master = objects["demo-masterJob"]["spec"]["template"]
    container = master["spec"]["containers"][0]
    assert container["image"] == values["image"]
    assert container["args"][-len(values["extra"]):] == values["extra"] or not values["extra"]
    for key, value in values["annotations"].items():
        assert master["metadata"]["annotations"][key] == value
    env = [(e["name"], e["value"]) for e in container.get("env", [])]
    assert env[len(env) - len(values["env"]):] == values["env"]  # the user's come last
    if values["otel"]:
        assert ("OTEL_EXPORTER_OTLP_ENDPOINT", values["endpoint"]) in env
    assert objects["demo-workerJob"]["spec"]["parallelism"] == values["replicas"]


def test_astral_and_control_characters_survive() -> None:
    test = copy.deepcopy(BASE_TEST)
    value = "\U0001F600 \\ud83d <&'> \x85\u2028 {{ x }} \\"
    test["spec"]["env"] = {"variables": [{"name": "V", "value": value}]}
    job = render(test, OperatorConfig())[2]
    assert job["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "V", "value": value}]
