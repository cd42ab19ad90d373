"""Validate a LocustTest exactly as the API server will, from the CRD itself.

The CRD (one source: charts/locust-operator/crds/) carries the OpenAPI schema,
the defaults and the CEL rules.  This module applies them offline: defaults
first (as the API server does), then unknown fields (kubectl's strict field
validation), the schema (jsonschema) and the `x-kubernetes-validations` CEL
rules (cel-python).  No rule is written twice.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from locust_operator import API_VERSION, KIND
from locust_operator.resources import crd_path

# The API server's cap on one object's metadata.annotations, keys plus values
# in bytes (apimachinery's TotalAnnotationSizeLimitB).
MAX_ANNOTATIONS_BYTES = 256 * 1024
# Where render finds annotations: the test's own, and those it puts on each role's pods.
ANNOTATION_FIELDS = (("metadata", "annotations"), ("spec", "master", "annotations"),
                     ("spec", "worker", "annotations"))
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One reason a manifest is invalid; `path` is the field, e.g. spec.worker.replicas."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidLocustTest(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@functools.cache
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(crd_path().read_text())
    return loaded


@functools.cache
def schema() -> dict[str, Any]:
    version = next(v for v in crd()["spec"]["versions"] if v["name"] == API_VERSION.split("/")[1])
    result: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return result


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def apply_defaults(node_schema: dict[str, Any], value: Any) -> Any:
    """Fill `default`s into a copy of `value`, the way the API server does."""
    if isinstance(value, dict):
        out = {}
        props = node_schema.get("properties", {})
        for key, item in value.items():
            sub = props.get(key) or _dict_schema(node_schema.get("additionalProperties"))
            out[key] = apply_defaults(sub, item) if sub else item
        for key, sub in props.items():
            if key not in out and "default" in sub:
                out[key] = apply_defaults(sub, copy.deepcopy(sub["default"]))
        return out
    if isinstance(value, list) and "items" in node_schema:
        return [apply_defaults(node_schema["items"], item) for item in value]
    return value


def _dict_schema(candidate: Any) -> dict[str, Any] | None:
    return candidate if isinstance(candidate, dict) else None


def _unknown_fields(node_schema: dict[str, Any], value: Any, path: str) -> Iterator[Problem]:
    if node_schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = node_schema.get("properties")
        extra = _dict_schema(node_schema.get("additionalProperties"))
        for key, item in value.items():
            if props is not None and key in props:
                yield from _unknown_fields(props[key], item, _join(path, key))
            elif extra is not None:
                yield from _unknown_fields(extra, item, _join(path, key))
            elif props is not None and path != "metadata":
                yield Problem(_join(path, key), "unknown field")
    elif isinstance(value, list) and "items" in node_schema:
        for index, item in enumerate(value):
            yield from _unknown_fields(node_schema["items"], item, _join(path, index))


def _schema_problems(value: dict[str, Any]) -> Iterator[Problem]:
    errors = _validator().iter_errors(value)
    for error in sorted(errors, key=lambda e: [str(k) for k in e.absolute_path]):
        path = ""
        for key in error.absolute_path:
            path = _join(path, key)
        if error.validator == "required":
            missing = re.search(r"'([^']+)' is a required property", error.message)
            path = _join(path, missing.group(1) if missing else "?")
        yield Problem(path, _schema_message(error))


@functools.cache
def _validator() -> Any:
    return jsonschema.Draft7Validator(schema())


def _schema_message(error: jsonschema.ValidationError) -> str:
    bound = error.validator_value
    if error.validator == "required":
        return "required field is missing"
    if error.validator == "enum":
        return f"unsupported value {error.instance!r}: must be one of {', '.join(map(str, bound))}"
    if error.validator == "minimum":
        return f"must be >= {bound}, got {error.instance}"
    if error.validator == "maximum":
        return f"must be <= {bound}, got {error.instance}"
    if error.validator == "maxLength":
        return f"must be at most {bound} characters"
    if error.validator == "minLength":
        return f"must be at least {bound} characters"
    if error.validator == "maxItems":
        return f"must have at most {bound} items"
    if error.validator == "pattern":
        return f"{error.instance!r} must match {bound}"
    if error.validator == "type":
        return f"must be of type {bound}, got {type(error.instance).__name__}"
    return str(error.message)


# Kubernetes' CEL string extension functions the CRD uses that cel-python lacks.
def _cel_replace(text: Any, old: Any, new: Any) -> Any:
    return celpy.celtypes.StringType(str(text).replace(str(old), str(new)))


_CEL_FUNCTIONS = {"replace": _cel_replace}


@functools.cache
def _cel_program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule), functions=_CEL_FUNCTIONS)


def _cel_problems(node_schema: dict[str, Any], value: Any, path: str) -> Iterator[Problem]:
    if value is None:
        return
    rules = node_schema.get("x-kubernetes-validations", [])
    activation = {"self": json_to_cel(value)} if rules else {}  # converted once per node
    for rule in rules:
        field = path + rule["fieldPath"] if rule.get("fieldPath") else path
        field = field.lstrip(".")
        try:
            ok = _cel_program(rule["rule"]).evaluate(activation)
        except CELEvalError as exc:
            yield Problem(field, f"rule {rule['rule']!r} could not be evaluated: {exc.args[0]}")
            continue
        if not ok:
            yield Problem(field, rule.get("message", f"failed rule: {rule['rule']}"))
    if isinstance(value, dict):
        props = node_schema.get("properties", {})
        extra = _dict_schema(node_schema.get("additionalProperties"))
        for key, item in value.items():
            sub = props.get(key) or extra
            if sub:
                yield from _cel_problems(sub, item, _join(path, key))
    elif isinstance(value, list) and "items" in node_schema:
        for index, item in enumerate(value):
            yield from _cel_problems(node_schema["items"], item, _join(path, index))


def _identity_problems(manifest: dict[str, Any]) -> Iterator[Problem]:
    if manifest.get("apiVersion") != API_VERSION or manifest.get("kind") != KIND:
        is_v1 = manifest.get("apiVersion") == "locust.io/v1"
        hint = " (use `locust-operator migrate` for v1)" if is_v1 else ""
        yield Problem(
            "",
            f"expected apiVersion {API_VERSION} kind {KIND}, got apiVersion "
            f"{manifest.get('apiVersion')!r} kind {manifest.get('kind')!r}{hint}",
        )
        return
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        yield Problem("metadata.name", "required field is missing")
        return
    name = metadata["name"]
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        yield Problem("metadata.name", f"{name!r} must be a lowercase RFC 1123 subdomain")


def annotations_size(annotations: Any) -> int:
    """Bytes of a set of annotations as the API server counts them (UTF-8 keys + values)."""
    if not isinstance(annotations, dict):
        return 0  # not a map: the schema reports it
    return sum(len(str(k).encode("utf-8", "surrogatepass")) +
               len(str(v).encode("utf-8", "surrogatepass")) for k, v in annotations.items())


def _field(manifest: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = manifest
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def annotation_size_problems(manifest: dict[str, Any]) -> list[Problem]:
    """Each set of annotations (the test's, each role's pods') over the API server's cap."""
    problems = []
    for path in ANNOTATION_FIELDS:
        size = annotations_size(_field(manifest, path))
        if size > MAX_ANNOTATIONS_BYTES:
            problems.append(Problem(".".join(path), f"too long: {size} bytes, the API server "
                                    f"allows at most {MAX_ANNOTATIONS_BYTES} (keys and values)"))
    return problems


def validate(manifest: Any) -> tuple[dict[str, Any], list[Problem]]:
    """Defaulted copy of the manifest and every problem the API server would report."""
    if not isinstance(manifest, dict):
        return {}, [Problem("", f"expected a mapping, got {type(manifest).__name__}")]
    problems = list(_identity_problems(manifest))
    if problems:
        return manifest, problems
    # Checked first and alone: it is cheap, and the schema and CEL checks need
    # not walk megabytes of annotations the API server would refuse anyway.
    problems = annotation_size_problems(manifest)
    if problems:
        return manifest, problems
    defaulted: dict[str, Any] = apply_defaults(schema(), manifest)
    problems += _unknown_fields(schema(), defaulted, "")
    problems += _schema_problems(defaulted)
    if not problems:  # CEL rules only run on schema-valid objects, as in the API server
        problems += _cel_problems(schema(), defaulted, "")
    return defaulted, problems


def validated(manifest: Any) -> dict[str, Any]:
    """The defaulted manifest, or InvalidLocustTest listing every problem."""
    defaulted, problems = validate(manifest)
    if problems:
        raise InvalidLocustTest(problems)
    return defaulted
