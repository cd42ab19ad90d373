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


def _node_affinity(v1_affinity: Any, dropped: list[str]) -> dict[str, Any] | None:
    if not isinstance(v1_affinity, dict):
        return None
    node = v1_affinity.get("nodeAffinity") or {}
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
        value = (spec.get(key) or {}).get(role)
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
    metadata = {k: v for k, v in (manifest.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    annotations = metadata.get("annotations") or {}
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
    if spec.get("imagePullSecrets"):
        v2["imagePullSecrets"] = [{"name": str(name)} for name in spec["imagePullSecrets"]]
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
    if spec.get("tolerations"):
        scheduling["tolerations"] = [dict(t) for t in spec["tolerations"]]
    if scheduling:
        v2["scheduling"] = scheduling
    return Migration({"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": v2},
                     dropped)
