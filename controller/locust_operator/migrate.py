"""Turn locust.io/v1 LocustTests into equivalent v2 manifests."""

from __future__ import annotations

import dataclasses
from typing import Any

from locust_operator import API_VERSION, KIND

V1_API_VERSION = "locust.io/v1"
# Written by the API server, meaningless in a new manifest.
_SERVER_METADATA = {"uid", "resourceVersion", "generation", "creationTimestamp",
                    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}
_KNOWN_V1 = {"masterCommandSeed", "workerCommandSeed", "workerReplicas", "image",
             "imagePullPolicy", "imagePullSecrets", "configMap", "libConfigMap", "labels",
             "annotations", "affinity", "tolerations"}


@dataclasses.dataclass
class Migration:
    manifest: dict[str, Any]
    # Things of the v1 manifest that the v2 manifest does not carry.
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


def _node_affinity(v1_affinity: Any, dropped: list[str]) -> dict[str, Any] | None:
    if not isinstance(v1_affinity, dict):
        return None
    node = _mapping(v1_affinity.get("nodeAffinity"), "spec.affinity.nodeAffinity")
    for key in sorted(set(v1_affinity) - {"nodeAffinity"}):
        dropped.append(f"spec.affinity.{key}: only nodeAffinity exists in v1; not carried over")
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    for key in sorted(set(node) - {"requiredDuringSchedulingIgnoredDuringExecution"}):
        dropped.append(f"spec.affinity.nodeAffinity.{key}: not carried over")
    if not required:
        return None
    if not isinstance(required, dict):
        raise MigrationError(
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: "
            "expected a map of node label to value"
        )
    expressions = [{"key": str(k), "operator": "In", "values": [str(v)]}
                   for k, v in sorted(required.items())]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": expressions}]}}}


def _role(spec: dict[str, Any], role: str) -> dict[str, Any]:
    out: dict[str, Any] = {"command": spec.get(f"{role}CommandSeed")}
    for key in ("labels", "annotations"):
        value = _mapping(_mapping(spec.get(key), f"spec.{key}").get(role), f"spec.{key}.{role}")
        if value:
            out[key] = dict(value)
    return out


def migrate_v1(manifest: Any) -> Migration:
    """v2 equivalent of one v1 LocustTest; raises MigrationError if it is not one."""
    if not isinstance(manifest, dict):
        raise MigrationError(f"expected a mapping, got {type(manifest).__name__}")
    if manifest.get("apiVersion") != V1_API_VERSION or manifest.get("kind") != KIND:
        raise MigrationError(
            f"expected apiVersion {V1_API_VERSION} kind {KIND}, got apiVersion "
            f"{manifest.get('apiVersion')!r} kind {manifest.get('kind')!r}"
        )
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        raise MigrationError("spec: required field is missing")
    for key in ("masterCommandSeed", "workerCommandSeed", "image"):
        if not spec.get(key):
            raise MigrationError(f"spec.{key}: required field is missing")
    dropped = [f"spec.{key}: unknown v1 field, not carried over" for key in sorted(set(spec) - _KNOWN_V1)]
    given = _mapping(manifest.get("metadata"), "metadata")
    metadata = {k: v for k, v in given.items() if k not in _SERVER_METADATA}
    annotations = dict(_mapping(metadata.get("annotations"), "metadata.annotations"))
    metadata["annotations"] = annotations
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not annotations:
        metadata.pop("annotations", None)
    if manifest.get("status"):
        dropped.append("status: not carried over (the operator writes v2 status)")

    master = _role(spec, "master")
    master["autostart"] = True
    master["autoquit"] = {"enabled": True, "timeout": 60}
    worker = _role(spec, "worker")
    worker["replicas"] = spec.get("workerReplicas", 1)
    v2: dict[str, Any] = {"image": spec["image"]}
    if spec.get("imagePullPolicy"):
        v2["imagePullPolicy"] = spec["imagePullPolicy"]
    secrets = _list_of(spec.get("imagePullSecrets"), str, "spec.imagePullSecrets", "Secret names")
    if secrets:
        v2["imagePullSecrets"] = [{"name": name} for name in secrets]
    v2["master"] = master
    v2["worker"] = worker
    files = {k2: spec[k1] for k1, k2 in (("configMap", "configMapRef"),
                                         ("libConfigMap", "libConfigMapRef")) if spec.get(k1)}
    if files:
        v2["testFiles"] = files
    scheduling: dict[str, Any] = {}
    affinity = _node_affinity(spec.get("affinity"), dropped)
    if affinity:
        scheduling["affinity"] = affinity
    tolerations = _list_of(spec.get("tolerations"), dict, "spec.tolerations", "tolerations")
    if tolerations:
        scheduling["tolerations"] = [dict(t) for t in tolerations]
    if scheduling:
        v2["scheduling"] = scheduling
    return Migration({"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": v2},
                     dropped)
