"""Operator configuration: one typed object, loaded from YAML and environment.

The same object drives `render`, `run` and the Helm chart (the chart writes
this file into a ConfigMap), so a preview and the cluster use the same
settings.  Keys in YAML are camelCase like Kubernetes fields; every key can
also be set through an environment variable ``LOCUST_OPERATOR_<KEY_PATH>``,
e.g. ``LOCUST_OPERATOR_METRICS_EXPORTER_ENABLED=false``.  Structured values
(resources) given through the environment are parsed as YAML.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

ENV_PREFIX = "LOCUST_OPERATOR_"


class ConfigError(ValueError):
    """An invalid operator setting; the message names the setting."""


def _default_resources() -> dict[str, dict[str, str]]:
    return {
        "requests": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "30M"},
        "limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "50M"},
    }


def _default_exporter_resources() -> dict[str, dict[str, str]]:
    return {
        "requests": {"cpu": "50m", "memory": "32Mi", "ephemeral-storage": "10M"},
        "limits": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "30M"},
    }


@dataclasses.dataclass(frozen=True)
class MetricsExporterConfig:
    enabled: bool = True
    # The long-standing default image; it is unmaintained, hence configurable.
    image: str = "containersol/locust_exporter:v0.5.0"
    port: int = 9646
    pullPolicy: str = "IfNotPresent"
    resources: dict[str, dict[str, str]] = dataclasses.field(
        default_factory=_default_exporter_resources
    )


def _default_init_resources() -> dict[str, dict[str, str]]:
    # pip builds and unpacks in the volume: the pod's ephemeral storage is the largest of
    # its init containers' limits and the sum of its containers', so this limit is its room.
    return {
        "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "100M"},
        "limits": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "1G"},
    }


@dataclasses.dataclass(frozen=True)
class InitContainersConfig:
    """The init containers that prepare a test's files (git) and Python packages (pip)."""

    # Runs `git` and a POSIX shell (spec.testFiles.git); pip runs in the test's own image.
    gitImage: str = "alpine/git:2.47.2"
    gitPullPolicy: str = "IfNotPresent"
    resources: dict[str, dict[str, str]] = dataclasses.field(default_factory=_default_init_resources)
    # sizeLimit of each volume they fill (the fetched files; the installed packages).
    volumeSizeLimit: str = "512Mi"


@dataclasses.dataclass(frozen=True)
class MasterReadsConfig:
    """Caps on what the operator reads from a test's master (the tenant's code).

    Sizes are bytes, checked on the declared length and on the bytes as they
    arrive; an answer over its cap is refused with a message in the test's status.
    """

    # GET /stats/requests (a live poll): Locust's answer is a few KiB per request name.
    statsMaxBytes: int = 1024 * 1024
    # Each of /stats/requests/csv and /stats/failures/csv, read once the run stopped.
    csvMaxBytes: int = 2 * 1024 * 1024
    # Locust's HTML report (/stats/report): ~1 MB for 50 request names.
    reportMaxBytes: int = 4 * 1024 * 1024
    # The tail of the master's log read for its final stats when its API was not read.
    logMaxBytes: int = 4 * 1024 * 1024
    connectTimeoutSeconds: int = 1
    # A live poll's whole answer; a slow master only delays its own next poll.
    timeoutSeconds: int = 3
    # Each read of the final results (CSVs, report).
    resultsTimeoutSeconds: int = 15


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    # Locust container resources; masterResources / workerResources replace
    # them per role when set.
    resources: dict[str, dict[str, str]] = dataclasses.field(default_factory=_default_resources)
    masterResources: dict[str, dict[str, str]] | None = None
    workerResources: dict[str, dict[str, str]] | None = None
    metricsExporter: MetricsExporterConfig = dataclasses.field(
        default_factory=MetricsExporterConfig
    )
    jobTtlSecondsAfterFinished: int | None = None
    defaultRuntimeClassName: str | None = None
    honourAffinity: bool = True
    honourTolerations: bool = True
    # Run LocustTestSchedules (their CRD installed); the chart grants the RBAC they need
    # (create, get and delete of LocustTests, delete of ConfigMaps) only when true.
    schedules: bool = True
    # Create the Ingress / HTTPRoute of a test's spec.webUI; the chart grants create and get
    # of ingresses and httproutes only when true. Off: such a test fails with a message.
    webRoutes: bool = False
    # Time a pod may spend starting before image/config errors fail the test.
    podHealthGraceSeconds: int = 120
    # Seconds a master waits for its workers before it gives up (exit 1, verdict
    # WorkersNotConnected); 0: wait forever, as the Go operator's masters do.
    workerConnectTimeoutSeconds: int = 600
    # How often a Running test's master is asked for live results (0: never).
    statsPollSeconds: int = 10
    # Where the master's REST API is reached; {service} and {namespace} are filled in.
    statsUrlTemplate: str = "http://{service}.{namespace}.svc:8089/stats/requests"
    masterReads: MasterReadsConfig = dataclasses.field(default_factory=MasterReadsConfig)
    initContainers: InitContainersConfig = dataclasses.field(default_factory=InitContainersConfig)
    # The longest a test may run, from its creation, when its spec.maxDurationSeconds
    # is not set: then its Jobs are ended and it fails (DeadlineExceeded). 0: no limit.
    maxTestDurationSeconds: int = 86400
    # Namespaces the controller watches; empty means all namespaces.
    namespaces: tuple[str, ...] = ()
    logFormat: str = "text"
    # A directory whose *.yaml.j2 files replace the built-in templates.
    templatesDir: str | None = None

    def role_resources(self, role: str) -> dict[str, dict[str, str]]:
        override = self.masterResources if role == "master" else self.workerResources
        return override if override is not None else self.resources


_CHOICES: dict[str, tuple[str, ...]] = {
    "metricsExporter.pullPolicy": ("Always", "IfNotPresent", "Never"),
    "initContainers.gitPullPolicy": ("Always", "IfNotPresent", "Never"),
    "logFormat": ("text", "json"),
}
_NON_NEGATIVE = {"jobTtlSecondsAfterFinished", "podHealthGraceSeconds", "statsPollSeconds",
                 "workerConnectTimeoutSeconds", "maxTestDurationSeconds"}
_POSITIVE = {f"masterReads.{name}" for name in (
    "statsMaxBytes", "csvMaxBytes", "reportMaxBytes", "logMaxBytes", "connectTimeoutSeconds",
    "timeoutSeconds", "resultsTimeoutSeconds")}
_PORT = {"metricsExporter.port"}
_RESOURCE_KEYS = {"requests", "limits"}
_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]i?|Ki)?$")

T = TypeVar("T")


def _env_name(path: str) -> str:
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", path).replace(".", "_")
    return ENV_PREFIX + snake.upper()


def _coerce(path: str, hint: Any, value: Any) -> Any:
    """Convert a YAML/env value to the annotated type, or raise ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(path, args[0], value)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: must be a mapping, got {type(value).__name__}")
        return _build(hint, value, path + ".")  # type: ignore[arg-type]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{path}: must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            return int(value)
        raise ConfigError(f"{path}: must be an integer, got {value!r}")
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: must be a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: must be a list of strings, got {value!r}")
        return tuple(value)
    if origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        return _resources(path, value)
    raise ConfigError(f"{path}: unsupported setting type")  # pragma: no cover


def _resources(path: str, value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: must be a mapping with requests/limits")
    unknown = set(value) - _RESOURCE_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; expected requests/limits")
    out: dict[str, dict[str, str]] = {}
    for kind, amounts in value.items():
        if amounts is None:
            continue
        if not isinstance(amounts, Mapping):
            raise ConfigError(f"{path}.{kind}: must be a mapping of resource name to quantity")
        out[kind] = {}
        for name, qty in amounts.items():
            text = str(qty)
            if not _QUANTITY.match(text):
                raise ConfigError(f"{path}.{kind}.{name}: {text!r} is not a Kubernetes quantity")
            out[kind][str(name)] = text
    return out


def _check(path: str, value: Any) -> None:
    if path in _CHOICES and value not in _CHOICES[path]:
        raise ConfigError(f"{path}: must be one of {', '.join(_CHOICES[path])}, got {value!r}")
    if path in _NON_NEGATIVE and value is not None and value < 0:
        raise ConfigError(f"{path}: must be >= 0, got {value}")
    if path in _POSITIVE and value < 1:
        raise ConfigError(f"{path}: must be >= 1, got {value}")
    if path in _PORT and not 1 <= value <= 65535:
        raise ConfigError(f"{path}: must be a port number 1..65535, got {value}")
    if path == "initContainers.volumeSizeLimit" and not _QUANTITY.match(value):
        raise ConfigError(f"{path}: {value!r} is not a Kubernetes quantity")
    if path == "statsUrlTemplate":
        try:
            url = value.format(service="s", namespace="n")
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"{path}: only {{service}} and {{namespace}} may be filled in, "
                              f"got {value!r}") from None
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{path}: must be an http(s) URL, got {value!r}")


def _build(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown setting")
    kwargs = {}
    for name, value in data.items():
        path = prefix + name
        coerced = _coerce(path, hints[name], value)
        _check(path, coerced)
        kwargs[name] = coerced
    return cls(**kwargs)


def _env_overrides(cls: type[Any], env: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
    """Nested dict of the settings given in the environment."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        path = prefix + field.name
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            nested = _env_overrides(hint, env, path + ".")  # type: ignore[arg-type]
            if nested:
                out[field.name] = nested
        elif _env_name(path) in env:
            out[field.name] = env[_env_name(path)]
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> OperatorConfig:
    """Settings from an optional YAML file, then the environment (which wins)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML ({exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: must be a mapping of settings")
        data = loaded or {}
    env_values = _env_overrides(OperatorConfig, os.environ if env is None else env)
    return _build(OperatorConfig, _merge(data, env_values))


def env_names() -> list[str]:
    """Every environment variable name the configuration reads (for docs)."""

    def walk(cls: type[Any], prefix: str) -> list[str]:
        names: list[str] = []
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            hint = hints[field.name]
            if dataclasses.is_dataclass(hint):
                names += walk(hint, prefix + field.name + ".")  # type: ignore[arg-type]
            else:
                names.append(_env_name(prefix + field.name))
        return names

    return walk(OperatorConfig, "")
