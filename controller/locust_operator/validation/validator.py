"""Validate a LocustTest exactly as the API server will, from the CRD itself.

The CRD (one source: charts/locust-operator/crds/) carries the OpenAPI schema,
the defaults and the CEL rules.  This module applies them offline: defaults
first (as the API server does), then unknown fields (kubectl's strict field
validation), the schema (jsonschema) and the `x-kubernetes-validations` CEL
rules (cel-python).  No rule is written twice.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import decimal
import functools
import itertools
import re
from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from locust_operator.api.contract import API_VERSION, KIND, PLURAL, SCHEDULE_KIND, SCHEDULE_PLURAL
from locust_operator.api.shipped import crd_path

# The API server's cap on one object's metadata.annotations, keys plus values
# in bytes (apimachinery's TotalAnnotationSizeLimitB).
MAX_ANNOTATIONS_BYTES = 256 * 1024
# Where render finds annotations: the test's own, and those it puts on each role's pods.
ANNOTATION_FIELDS = (("metadata", "annotations"), ("spec", "master", "annotations"),
                     ("spec", "worker", "annotations"))
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
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


# The kinds validated here, with their CRDs' plurals.
_PLURALS = {KIND: PLURAL, SCHEDULE_KIND: SCHEDULE_PLURAL}


@functools.cache
def crd(kind: str = KIND) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(crd_path(_PLURALS[kind]).read_text())
    return loaded


@functools.cache
def schema(kind: str = KIND) -> dict[str, Any]:
    version = next(v for v in crd(kind)["spec"]["versions"] if v["name"] == API_VERSION.split("/")[1])
    result: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return result


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not key.isprintable():  # e.g. a newline in a label key: the message stays one line
        return f"{path}[{key!r}]"
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


def _schema_problems(value: dict[str, Any], kind: str) -> Iterator[Problem]:
    errors = _validator(kind).iter_errors(value)
    for error in sorted(errors, key=lambda e: [str(k) for k in e.absolute_path]):
        path = ""
        for key in error.absolute_path:
            path = _join(path, key)
        if error.validator == "required":
            missing = re.search(r"'([^']+)' is a required property", error.message)
            path = _join(path, missing.group(1) if missing else "?")
        yield Problem(path, _schema_message(error))


@functools.cache
def _validator(kind: str) -> Any:
    return jsonschema.Draft7Validator(schema(kind))


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


# Kubernetes' CEL library functions the CRD uses that cel-python lacks.
def _cel_replace(text: Any, old: Any, new: Any) -> Any:
    return celpy.celtypes.StringType(str(text).replace(str(old), str(new)))


_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_MAX_INT64 = 2**63 - 1
_NANO = decimal.Decimal("1e-9")


def _split_quantity(text: str) -> tuple[bool, str, str, str, str] | None:
    """(positive, value, numerator, denominator, suffix), as apimachinery's parseQuantityString."""
    match = re.fullmatch(r"([+-]?)(0*)([0-9]*)(?:\.([0-9]*))?(.*)", text, re.DOTALL)
    assert match is not None  # every part may be empty
    sign, _, num, denom, rest = match.groups()
    value = text[: len(text) - len(rest)]
    if not rest:
        return sign != "-", value, num or "0", denom or "", ""
    # The suffix: letters of "eEinumkKMGTP", then an optional sign and digits.
    suffix = re.fullmatch(r"[eEinumkKMGTP]*[+-]?[0-9]*", rest)
    if suffix is None:
        return None
    return sign != "-", value, num or "0", denom or "", rest


def parse_quantity(text: str) -> decimal.Decimal | None:
    """The value of a Kubernetes quantity string, or None where resource.ParseQuantity fails."""
    if text == "":
        return None
    if text == "0":
        return decimal.Decimal(0)
    parts = _split_quantity(text)
    if parts is None:
        return None
    positive, value, num, denom, suffix = parts
    base, binary = 10, False
    if suffix in _DECIMAL_SUFFIXES:
        exponent = _DECIMAL_SUFFIXES[suffix]
    elif suffix in _BINARY_SUFFIXES:
        base, binary, exponent = 2, True, _BINARY_SUFFIXES[suffix]
    elif len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[+-]?[0-9]+", suffix[1:]):
        exponent = int(suffix[1:])
        if not -(2**63) <= exponent < 2**63:
            return None
        exponent = (exponent + 2**31) % 2**32 - 2**31  # Go's int32() conversion
    else:
        return None
    fast = (not binary and len(num) + len(denom) <= 18 and exponent - len(denom) >= -9) or (
        binary and not denom and 15 - len(num) - int(exponent * 3 / 10) - 1 >= 0)
    if not fast and not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)", value):
        return None  # inf.Dec refuses what the fast path would have accepted
    amount = decimal.Decimal(f"{num}.{denom or 0}")
    with decimal.localcontext(decimal.Context(prec=1000, Emax=10**9, Emin=-(10**9))):
        amount = amount * (decimal.Decimal(base) ** exponent)
        if amount != 0:
            amount = amount.quantize(_NANO, rounding=decimal.ROUND_UP) if amount.adjusted() < 400 else amount
        if binary and amount > _MAX_INT64:
            amount = decimal.Decimal(_MAX_INT64)
        return amount if positive else -amount


class CelQuantity:
    """A `quantity(...)` value in CEL rules."""

    def __init__(self, amount: decimal.Decimal) -> None:
        self.amount = amount


def _cel_is_quantity(text: Any) -> Any:
    return celpy.celtypes.BoolType(isinstance(text, str) and parse_quantity(str(text)) is not None)


def _cel_quantity(text: Any) -> Any:
    amount = parse_quantity(str(text)) if isinstance(text, str) else None
    if amount is None:
        return CELEvalError(f"invalid quantity {text!r}")
    return CelQuantity(amount)


def _cel_compare_to(left: Any, right: Any) -> Any:
    return celpy.celtypes.IntType((left.amount > right.amount) - (left.amount < right.amount))


def _cel_is_less_than(left: Any, right: Any) -> Any:
    return celpy.celtypes.BoolType(left.amount < right.amount)


def _cel_is_sorted(items: Any) -> Any:
    """Kubernetes' lists library `isSorted()`: every item <= the next."""
    values = list(items)
    return celpy.celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(values)))


def _cel_sum(items: Any) -> Any:
    return celpy.celtypes.IntType(sum(int(item) for item in items))


_CEL_FUNCTIONS: dict[str, Any] = {
    "replace": _cel_replace, "isQuantity": _cel_is_quantity, "quantity": _cel_quantity,
    "compareTo": _cel_compare_to, "isLessThan": _cel_is_less_than, "sum": _cel_sum,
    "isSorted": _cel_is_sorted}


@functools.cache
def _cel_program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule), functions=_CEL_FUNCTIONS)


class _CelAnswers:
    """The answers of CEL rules, remembered for small values (a bounded LRU).

    A rule is a pure function of `self`, and the interpreter (celpy walks the
    parse tree) costs ~7 ms a rule: 90% of `render`'s time. The same values come
    back in every test (resources, tolerations, probes), so an answer is kept,
    keyed by the rule and the value's repr (exact for what YAML and JSON load:
    1, 1.0, "1" and True differ).
    """

    def __init__(self, size: int = 4096, key_chars: int = 4096) -> None:
        self._answers: collections.OrderedDict[tuple[str, str], bool | str] = collections.OrderedDict()
        self._size = size
        self._key_chars = key_chars

    def answer(self, rule: str, value: Any) -> bool | str:
        """True or False, or why the rule could not be evaluated."""
        shown = repr(value)
        key = (rule, shown) if len(shown) <= self._key_chars else None
        if key is not None and key in self._answers:
            self._answers.move_to_end(key)
            return self._answers[key]
        try:
            found: bool | str = bool(_cel_program(rule).evaluate({"self": json_to_cel(value)}))
        except CELEvalError as exc:
            found = str(exc.args[0])
        if key is not None:
            self._answers[key] = found
            if len(self._answers) > self._size:
                self._answers.popitem(last=False)
        return found


_CEL_ANSWERS = _CelAnswers()


def _cel_problems(node_schema: dict[str, Any], value: Any, path: str) -> Iterator[Problem]:
    if value is None:
        return
    rules = node_schema.get("x-kubernetes-validations", [])
    for rule in rules:
        field = path + rule["fieldPath"] if rule.get("fieldPath") else path
        field = field.lstrip(".")
        answer = _CEL_ANSWERS.answer(rule["rule"], value)
        if isinstance(answer, str):
            yield Problem(field, f"rule {rule['rule']!r} could not be evaluated: {answer}")
        elif not answer:
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
    if manifest.get("apiVersion") != API_VERSION or manifest.get("kind") not in _PLURALS:
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


def _is_subdomain(text: str) -> bool:
    return len(text) <= 253 and _DNS_SUBDOMAIN.fullmatch(text) is not None


def is_qualified_name(key: str) -> bool:
    """apimachinery's IsQualifiedName: [DNS subdomain '/'] name of at most 63 characters."""
    prefix, slash, name = key.rpartition("/")
    if slash and not _is_subdomain(prefix):
        return False
    return len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None


def is_label_value(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


def _label_problems(labels: Any, path: str) -> Iterator[Problem]:
    for key, value in (labels or {}).items():
        if not is_qualified_name(str(key)):
            yield Problem(path, f"key {key!r} is not a qualified name")
        if not is_label_value(value):
            yield Problem(f"{path}[{key!r}]", f"{value!r} is not a label value (at most 63 characters, "
                          "alphanumeric, '-', '_' or '.', alphanumeric at both ends)")


def _annotation_problems(annotations: Any, path: str) -> Iterator[Problem]:
    for key in annotations or {}:
        if not is_qualified_name(str(key).lower()):
            yield Problem(path, f"key {key!r} is not a qualified name")
    size = annotations_size(annotations)
    if size > MAX_ANNOTATIONS_BYTES:
        yield Problem(path, f"too long: {size} bytes, the API server allows at most "
                      f"{MAX_ANNOTATIONS_BYTES} (keys and values)")


def _pod_problems(pod: dict[str, Any], path: str) -> Iterator[Problem]:
    names = [v.get("name") for v in pod.get("volumes") or []]
    for name in names:
        if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.fullmatch(name):
            yield Problem(f"{path}.volumes", f"volume name {name!r} is not a lowercase RFC 1123 label")
        elif names.count(name) > 1:
            yield Problem(f"{path}.volumes", f"volume name {name!r} is not unique")
    for key in ("initContainers", "containers"):
        for container in pod.get(key) or []:
            paths = [m.get("mountPath") for m in container.get("volumeMounts") or []]
            for index, mount in enumerate(container.get("volumeMounts") or []):
                where = f"{path}.{key}[{container.get('name')}].volumeMounts[{index}]"
                if mount.get("name") not in names:
                    yield Problem(where, f"no volume named {mount.get('name')!r}")
                if paths.count(mount.get("mountPath")) > 1:
                    yield Problem(where, f"mountPath {mount.get('mountPath')!r} is not unique")


def child_problems(objects: list[dict[str, Any]]) -> list[Problem]:
    """What the API server would refuse in the rendered children, beyond what the CRD checks.

    The object-level rules: names (a Service's is an RFC 1035 label, a Job's
    becomes a label value), label and annotation syntax and sizes, and the pod's
    volume names and mount paths, on the objects as rendered (with the
    operator's own labels and annotations, and any override template applied).
    """
    problems: list[Problem] = []
    for obj in objects:
        metadata = obj.get("metadata") or {}
        name = metadata.get("name")
        prefix = f"{obj.get('kind')} {name}: "
        if not isinstance(name, str) or not _is_subdomain(name):
            problems.append(Problem(prefix + "metadata.name", "must be a lowercase RFC 1123 subdomain"))
        elif obj.get("kind") == "Service" and (len(name) > 63 or not _DNS_1035_LABEL.fullmatch(name)):
            problems.append(Problem(prefix + "metadata.name", "a Service name must be an RFC 1035 label "
                                    "(start with a letter, at most 63 characters)"))
        elif obj.get("kind") == "Job" and len(name) > 63:
            problems.append(Problem(prefix + "metadata.name", "a Job name must be at most 63 characters"))
        problems += _label_problems(metadata.get("labels"), prefix + "metadata.labels")
        problems += _annotation_problems(metadata.get("annotations"), prefix + "metadata.annotations")
        spec = obj.get("spec") or {}
        if obj.get("kind") == "Service":
            problems += _label_problems(spec.get("selector"), prefix + "spec.selector")
        template = spec.get("template")
        if isinstance(template, dict):
            meta = template.get("metadata") or {}
            problems += _label_problems(meta.get("labels"), prefix + "spec.template.metadata.labels")
            problems += _annotation_problems(meta.get("annotations"),
                                             prefix + "spec.template.metadata.annotations")
            problems += _pod_problems(template.get("spec") or {}, prefix + "spec.template.spec")
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
    kind_schema = schema(manifest["kind"])
    defaulted: dict[str, Any] = apply_defaults(kind_schema, manifest)
    problems += _unknown_fields(kind_schema, defaulted, "")
    problems += _schema_problems(defaulted, manifest["kind"])
    if not problems:  # CEL rules only run on schema-valid objects, as in the API server
        problems += _cel_problems(kind_schema, defaulted, "")
    return defaulted, problems


def validated(manifest: Any) -> dict[str, Any]:
    """The defaulted manifest, or InvalidLocustTest listing every problem."""
    defaulted, problems = validate(manifest)
    if problems:
        raise InvalidLocustTest(problems)
    return defaulted
