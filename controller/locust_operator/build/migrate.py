"""Turn locust.io/v1 LocustTests into equivalent v2 manifests.

Every field of the v1 schema is mapped (see the reference's "v1 (legacy)
spec"). Anything else in a v1 manifest, which the v1 API server pruned or
never had, is not carried over, and each such field is named in a warning:
nothing is dropped quietly. Input the v1 schema refuses in a way the mapping
cannot follow (a list where a map belongs, say) is a MigrationError naming the
field; what v2 refuses is reported by `problems`, with the v1 field it came from.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from locust_operator.api.contract import API_VERSION, KIND

V1_API_VERSION = "locust.io/v1"
# What `kubectl get -o yaml` prints for several objects, and what the API returns for a list.
LIST_KINDS = {("v1", "List"), (V1_API_VERSION, f"{KIND}List")}
# Written by the API server, meaningless in a new manifest.
_SERVER_METADATA = {"uid", "resourceVersion", "generation", "creationTimestamp",
                    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
_KNOWN_V1 = {"masterCommandSeed", "workerCommandSeed", "workerReplicas", "image",
             "imagePullPolicy", "imagePullSecrets", "configMap", "libConfigMap", "labels",
             "annotations", "affinity", "tolerations"}
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_TOLERATION_FIELDS = ("key", "operator", "value", "effect")
_ROLES = ("master", "worker")


@dataclasses.dataclass
class Migration:
    manifest: dict[str, Any]
    # Things of the v1 manifest that the v2 manifest does not carry, one line each.
    dropped: list[str]


class MigrationError(ValueError):
    pass


def _type_name(value: Any) -> str:
    names: dict[type, str] = {dict: "map", list: "list", str: "string"}
    return names.get(type(value), type(value).__name__)


def _mapping(value: Any, field: str) -> dict[Any, Any]:
    """`value` if it is a map (None counts as empty), else MigrationError naming `field`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MigrationError(f"{field}: expected a map, got {_type_name(value)}")
    return value


def _string_map(value: Any, field: str) -> dict[str, Any]:
    """A map whose keys become v2 keys: they must be strings (kubectl would send them as such)."""
    result = _mapping(value, field)
    for key in result:
        if not isinstance(key, str):
            raise MigrationError(f"{field}: key {key!r} is not a string")
    return dict(result)


def _list_of(value: Any, item_type: type, field: str, what: str) -> list[Any]:
    """`value` if it is a list of `item_type` (None counts as empty), else MigrationError."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MigrationError(f"{field}: expected a list of {what}, got {_type_name(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, item_type):
            raise MigrationError(f"{field}[{index}]: expected a {what[:-1]}, got {_type_name(item)}")
    return value


def _extra(keys: Any, known: Any) -> list[str]:
    """Keys of a map outside `known`, in a stable order whatever their types, as named in messages."""
    return [_key(key) for key in sorted(set(keys) - set(known), key=repr)]


def _key(key: Any) -> str:
    """A map key as a message names it: as is, or quoted if it is not printable text (one line)."""
    return key if isinstance(key, str) and key.isprintable() and key else repr(key)


def documents(document: Any) -> list[tuple[str, Any]]:
    """(suffix of the label, v1 object) for one input document.

    A List (`kubectl get -o yaml`) yields each of its items, labelled `.items[i]`;
    any other document yields itself.
    """
    if not isinstance(document, dict) or (document.get("apiVersion"), document.get("kind")) not in LIST_KINDS:
        return [("", document)]
    items = document.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise MigrationError(f"items: expected a list, got {_type_name(items)}")
    return [(f".items[{index}]", item) for index, item in enumerate(items)]


def _node_affinity(v1_affinity: Any, dropped: list[str]) -> dict[str, Any] | None:
    affinity = _mapping(v1_affinity, "spec.affinity")
    node = _mapping(affinity.get("nodeAffinity"), "spec.affinity.nodeAffinity")
    for key in _extra(affinity, {"nodeAffinity"}):
        dropped.append(f"spec.affinity.{key}: not a v1 field (v1 has only nodeAffinity); not carried over")
    for key in _extra(node, {_REQUIRED}):
        dropped.append(f"spec.affinity.nodeAffinity.{key}: not a v1 field (v1 has only {_REQUIRED}); "
                       "not carried over")
    field = f"spec.affinity.nodeAffinity.{_REQUIRED}"
    required = node.get(_REQUIRED)
    if required is not None and not isinstance(required, dict):
        raise MigrationError(f"{field}: expected a map of node label to value, got {_type_name(required)}")
    required = _string_map(required, field)
    if not required:
        return None
    expressions = [{"key": key, "operator": "In", "values": [value]}
                   for key, value in sorted(required.items())]
    return {"nodeAffinity": {_REQUIRED: {"nodeSelectorTerms": [{"matchExpressions": expressions}]}}}


def _role_maps(spec: dict[str, Any], key: str, dropped: list[str]) -> dict[str, dict[str, Any]]:
    """labels or annotations of each role; anything beside master and worker is dropped, named."""
    given = _mapping(spec.get(key), f"spec.{key}")
    for extra in _extra(given, _ROLES):
        dropped.append(f"spec.{key}.{extra}: not a v1 field (v1 has {key}.master and {key}.worker); "
                       f"not carried over: set it in spec.master.{key} and/or spec.worker.{key}")
    return {role: _string_map(given.get(role), f"spec.{key}.{role}") for role in _ROLES}


def _pull_secrets(value: Any, dropped: list[str]) -> list[dict[str, Any]]:
    if isinstance(value, str):
        raise MigrationError(f"spec.imagePullSecrets: expected a list of Secret names, got string "
                             f"(write [{_key(value)}])")
    secrets = _list_of(value, object, "spec.imagePullSecrets", "Secret names")
    result = []
    for index, item in enumerate(secrets):
        field = f"spec.imagePullSecrets[{index}]"
        if isinstance(item, str):
            result.append({"name": item})
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            result.append({"name": item["name"]})
            for key in _extra(item, {"name"}):
                dropped.append(f"{field}.{key}: not carried over (a pull secret has only a name)")
        else:
            raise MigrationError(f"{field}: expected a Secret name or {{name: ...}}, got {_type_name(item)}")
    return result


def _tolerations(value: Any, dropped: list[str]) -> list[dict[str, Any]]:
    result = []
    for index, item in enumerate(_list_of(value, dict, "spec.tolerations", "tolerations")):
        result.append({key: item[key] for key in _TOLERATION_FIELDS if item.get(key) is not None})
        for key in _extra(item, _TOLERATION_FIELDS):
            dropped.append(f"spec.tolerations[{index}].{key}: not a v1 toleration field "
                           f"(v1 has {', '.join(_TOLERATION_FIELDS)}); not carried over")
    return result


def _metadata(manifest: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    given = _mapping(manifest.get("metadata"), "metadata")
    metadata = {k: v for k, v in given.items() if k not in _SERVER_METADATA}
    annotations = dict(_mapping(metadata.get("annotations"), "metadata.annotations"))
    annotations.pop(_LAST_APPLIED, None)  # a copy of the v1 manifest
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    if metadata.get("finalizers"):
        dropped.append(f"metadata.finalizers: {metadata['finalizers']!r} not carried over "
                       "(only the operator that added a finalizer removes it)")
    metadata.pop("finalizers", None)
    return metadata


def migrate_v1(manifest: Any) -> Migration:
    """v2 equivalent of one v1 LocustTest; raises MigrationError if it is not one."""
    if not isinstance(manifest, dict):
        raise MigrationError(f"expected a mapping, got {type(manifest).__name__}")
    if manifest.get("apiVersion") != V1_API_VERSION or manifest.get("kind") != KIND:
        hint = "; already v2, nothing to migrate" if manifest.get("apiVersion") == API_VERSION else ""
        raise MigrationError(
            f"expected apiVersion {V1_API_VERSION} kind {KIND}, got apiVersion "
            f"{manifest.get('apiVersion')!r} kind {manifest.get('kind')!r}{hint}"
        )
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        raise MigrationError("spec: required field is missing")
    for key in ("masterCommandSeed", "workerCommandSeed", "image"):
        if spec.get(key) is None:
            raise MigrationError(f"spec.{key}: required field is missing")
    dropped = [f"{key}: not a LocustTest field, not carried over" for key in _extra(manifest, _TOP_LEVEL)]
    metadata = _metadata(manifest, dropped)
    dropped += [f"spec.{key}: unknown v1 field, not carried over" for key in _extra(spec, _KNOWN_V1)]
    if manifest.get("status"):
        dropped.append("status: not carried over (the operator writes v2 status)")

    labels = _role_maps(spec, "labels", dropped)
    annotations = _role_maps(spec, "annotations", dropped)
    roles: dict[str, dict[str, Any]] = {}
    for role in _ROLES:
        roles[role] = {"command": spec[f"{role}CommandSeed"]}
        if labels[role]:
            roles[role]["labels"] = labels[role]
        if annotations[role]:
            roles[role]["annotations"] = annotations[role]
    roles["master"]["autostart"] = True
    roles["master"]["autoquit"] = {"enabled": True, "timeout": 60}
    replicas = spec.get("workerReplicas")
    roles["worker"]["replicas"] = 1 if replicas is None else replicas

    v2: dict[str, Any] = {"image": spec["image"]}
    if spec.get("imagePullPolicy") is not None:
        v2["imagePullPolicy"] = spec["imagePullPolicy"]
    secrets = _pull_secrets(spec.get("imagePullSecrets"), dropped)
    if secrets:
        v2["imagePullSecrets"] = secrets
    v2["master"] = roles["master"]
    v2["worker"] = roles["worker"]
    files = {k2: spec[k1] for k1, k2 in (("configMap", "configMapRef"),
                                         ("libConfigMap", "libConfigMapRef")) if spec.get(k1) is not None}
    if files:
        v2["testFiles"] = files
    scheduling: dict[str, Any] = {}
    affinity = _node_affinity(spec.get("affinity"), dropped)
    if affinity:
        scheduling["affinity"] = affinity
    tolerations = _tolerations(spec.get("tolerations"), dropped)
    if tolerations:
        scheduling["tolerations"] = tolerations
    if scheduling:
        v2["scheduling"] = scheduling
    return Migration({"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": v2},
                     dropped)


# v2 field -> the v1 field it comes from, for problems of the v2 result.
_V1_FIELDS = (
    ("spec.master.command", "spec.masterCommandSeed"),
    ("spec.worker.command", "spec.workerCommandSeed"),
    ("spec.worker.replicas", "spec.workerReplicas"),
    ("spec.master.labels", "spec.labels.master"),
    ("spec.worker.labels", "spec.labels.worker"),
    ("spec.master.annotations", "spec.annotations.master"),
    ("spec.worker.annotations", "spec.annotations.worker"),
    ("spec.testFiles.configMapRef", "spec.configMap"),
    ("spec.testFiles.libConfigMapRef", "spec.libConfigMap"),
    ("spec.scheduling.tolerations", "spec.tolerations"),
)
_EXPRESSION = re.compile(r"^spec\.scheduling\.affinity\..*\.matchExpressions\[(\d+)\]")
_PULL_SECRET = re.compile(r"^(spec\.imagePullSecrets\[\d+\])\.name$")


def v1_field(path: str, manifest: dict[str, Any]) -> str | None:
    """The v1 field a field of a migrated manifest comes from, if its name differs."""
    for v2, v1 in _V1_FIELDS:
        if path == v2 or path.startswith((v2 + ".", v2 + "[")):
            return v1 + path[len(v2):]
    secret = _PULL_SECRET.match(path)
    if secret:
        return secret.group(1)
    expression = _EXPRESSION.match(path)
    if expression:
        try:
            terms = manifest["spec"]["scheduling"]["affinity"]["nodeAffinity"][_REQUIRED]["nodeSelectorTerms"]
            key = terms[0]["matchExpressions"][int(expression.group(1))]["key"]
        except (KeyError, IndexError, TypeError):
            return f"spec.affinity.nodeAffinity.{_REQUIRED}"
        return f"spec.affinity.nodeAffinity.{_REQUIRED}[{key!r}]"
    if path.startswith("spec.scheduling.affinity"):
        return f"spec.affinity.nodeAffinity.{_REQUIRED}"
    return None


def problems(manifest: dict[str, Any]) -> list[str]:
    """What the v2 CRD refuses in a migrated manifest, one line each, naming the v1 field too."""
    from locust_operator.validation.validator import validate  # the validator is loaded only when needed

    lines = []
    for problem in validate(manifest)[1]:
        origin = v1_field(problem.path, manifest)
        lines.append(f"{problem} (v1: {origin})" if origin else str(problem))
    return lines
