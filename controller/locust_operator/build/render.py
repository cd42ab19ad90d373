"""Render a LocustTest into the Kubernetes objects that run it.

`render(test, config)` is a pure function: LocustTest dict + operator config
-> [Service, master Job, worker Job, and the web UI's Ingress / HTTPRoute when
spec.webUI asks for them], with no cluster access.  The
controller, `locust-operator render` and the tests all call it, so a preview
is exactly what the cluster gets.  Python computes the values (names, args,
labels, volumes); the Jinja2 templates lay out the objects and embed every
value with `tojson`, so no user string can break or inject YAML.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

import jinja2
import yaml

from locust_operator.api.config import OperatorConfig
from locust_operator.api.contract import (
    LOAD_SHAPE_ANNOTATION,
    MASTER_PORT,
    WEB_PORT,
    WORKER_PORT,
    child_names,
    owner_reference,
    selector_labels,
    service_selector,
)
from locust_operator.api.shipped import shipped_dir
from locust_operator.build import pod_setup
from locust_operator.build.load_shape import SHAPE_DIR, SHAPE_FILE, shape_source, with_shape_file
from locust_operator.build.web_ui import (
    interactive,
    keep_after_run,
    route_context,
    route_templates,
    web_base_path,
    web_ui,
)
from locust_operator.build.workers import processes_per_pod
from locust_operator.validation.documents import SAFE_LOADER

TEMPLATE_NAMES = ("service.yaml.j2", "master-job.yaml.j2", "worker-job.yaml.j2")
LOCUST_UID = 1000  # the `locust` user of the official image

Manifest = dict[str, Any]


class RenderError(ValueError):
    """A template produced something that is not a Kubernetes object."""


def split_seed(seed: str) -> list[str]:
    """Split a command seed as a shell would, without expanding anything."""
    return shlex.split(seed, comments=False, posix=True)


def master_args(spec: dict[str, Any], worker_connect_timeout: int = 0, processes: int = 1,
                base_path: str = "") -> list[str]:
    """The master's arguments; it waits for replicas x `processes` workers (build/workers.py)
    and serves its web UI under `base_path` (spec.webUI)."""
    master = spec["master"]
    args = split_seed(master["command"])
    if _otel_enabled(spec):
        args.append("--otel")
    args += ["--master", f"--master-port={MASTER_PORT}",
             f"--expect-workers={int(spec['worker']['replicas']) * processes}"]
    if worker_connect_timeout > 0:
        # Without it a master whose workers never come waits forever (exit 1 instead).
        args.append(f"--expect-workers-max-wait={worker_connect_timeout}")
    autoquit = master.get("autoquit", {})
    if not interactive(spec):
        args.append("--autostart")
        # Locust refuses --autoquit without --autostart (exit 1): an interactive test's
        # master stays up until the operator ends it (its verdict, keepAfterRun).
        if autoquit.get("enabled", True):
            args += ["--autoquit", str(max(int(autoquit.get("timeout", 60)), keep_after_run(spec)))]
    if base_path:
        args.append(f"--web-base-path={base_path}")
    if (web_ui(spec).get("auth") or {}).get("webLogin"):
        args.append("--web-login")
    # --json prints every request's stats on exit: the operator reads them from the
    # master's log when it was not up to read the REST API before autoquit (rules/results.py).
    args += ["--enable-rebalancing", "--only-summary", "--json"]
    args += list(master.get("extraArgs", []))
    # spec.loadShape: the generated LoadTestShape joins the user's locustfile(s).
    return with_shape_file(args, f"{SHAPE_DIR}/{SHAPE_FILE}") if spec.get("loadShape") else args


def worker_args(spec: dict[str, Any], master_host: str, processes: int = 1) -> list[str]:
    worker = spec["worker"]
    args = split_seed(worker["command"])
    if _otel_enabled(spec):
        args.append("--otel")
    args += ["--worker", f"--master-port={MASTER_PORT}", f"--master-host={master_host}"]
    if processes > 1:
        # Locust forks after importing the locustfile; 1 needs no fork (Locust would add one).
        args.append(f"--processes={processes}")
    return args + list(worker.get("extraArgs", []))


def _otel_enabled(spec: dict[str, Any]) -> bool:
    return bool(spec.get("observability", {}).get("openTelemetry", {}).get("enabled", False))


def exporter_enabled(spec: dict[str, Any], config: OperatorConfig) -> bool:
    # OpenTelemetry replaces the exporter: both would report the same numbers.
    return config.metricsExporter.enabled and not _otel_enabled(spec)


def _env(spec: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    otel = spec.get("observability", {}).get("openTelemetry", {})
    if otel.get("enabled"):
        env += [
            {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"},
            {"name": "OTEL_METRICS_EXPORTER", "value": "otlp"},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": otel["endpoint"]},
            {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": otel.get("protocol", "grpc")},
        ]
        if otel.get("insecure"):
            env.append({"name": "OTEL_EXPORTER_OTLP_INSECURE", "value": "true"})
        env += [{"name": k, "value": v} for k, v in sorted(otel.get("extraEnvVars", {}).items())]
    # The user's variables come last, as in the Go operator: for a duplicate name
    # Kubernetes keeps the last entry, so the user can override an OTEL_* value.
    env += [dict(v) for v in spec.get("env", {}).get("variables", [])]
    return pod_setup.with_python_path(env, spec)


def _env_from(spec: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, ref_kind in (("configMapRefs", "configMapRef"), ("secretRefs", "secretRef")):
        for ref in spec.get("env", {}).get(key, []):
            item: dict[str, Any] = {ref_kind: {"name": ref["name"]}}
            if ref.get("prefix"):
                item["prefix"] = ref["prefix"]
            out.append(item)
    return out


def secret_volume_name(secret: str) -> str:
    """The volume of a mounted Secret: volume names are DNS labels, Secret names may have dots."""
    return f"secret-{secret.replace('.', '-')}"


def _volumes_and_mounts(
    spec: dict[str, Any], role: str, role_volume: str, config: OperatorConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    files = spec.get("testFiles", {})
    if files.get("configMapRef"):
        volumes.append({"name": role_volume, "configMap": {"name": files["configMapRef"]}})
        mounts.append({"name": role_volume, "mountPath": files["srcMountPath"], "readOnly": True})
    if files.get("libConfigMapRef"):
        volumes.append({"name": pod_setup.LIB_VOLUME, "configMap": {"name": files["libConfigMapRef"]}})
        mounts.append({"name": pod_setup.LIB_VOLUME, "mountPath": files["libMountPath"], "readOnly": True})
    volumes += pod_setup.setup_volumes(spec, config)
    mounts += pod_setup.setup_mounts(spec)
    if role == "master" and spec.get("loadShape"):
        shape_volume, shape_mount = pod_setup.load_shape_volume()
        volumes.append(shape_volume)
        mounts.append(shape_mount)
    for secret in spec.get("env", {}).get("secretMounts", []):
        volume = secret_volume_name(secret["name"])
        volumes.append({"name": volume, "secret": {"secretName": secret["name"]}})
        mounts.append({"name": volume, "mountPath": secret["mountPath"],
                       "readOnly": secret.get("readOnly", True)})
    wanted = {m["name"] for m in spec.get("volumeMounts", []) if m.get("target", "both") in (role, "both")}
    volumes += [dict(v) for v in spec.get("volumes", []) if v["name"] in wanted]
    for mount in spec.get("volumeMounts", []):
        if mount.get("target", "both") in (role, "both"):
            mounts.append({k: v for k, v in mount.items() if k != "target"})
    return volumes, mounts


def _pod_security_context(spec: dict[str, Any]) -> dict[str, Any]:
    given = spec.get("security", {}).get("podSecurityContext")
    if given is not None:
        return dict(given)
    return {"runAsNonRoot": True, "runAsUser": LOCUST_UID, "runAsGroup": LOCUST_UID,
            "fsGroup": LOCUST_UID, "seccompProfile": {"type": "RuntimeDefault"}}


def _container_security_context(spec: dict[str, Any]) -> dict[str, Any]:
    given = spec.get("security", {}).get("containerSecurityContext")
    if given is not None:
        return dict(given)
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True}


def _scheduling(spec: dict[str, Any], config: OperatorConfig) -> dict[str, Any]:
    scheduling = spec.get("scheduling", {})
    out: dict[str, Any] = {}
    if config.honourAffinity and scheduling.get("affinity"):
        out["affinity"] = scheduling["affinity"]
    if config.honourTolerations and scheduling.get("tolerations"):
        out["tolerations"] = scheduling["tolerations"]
    if scheduling.get("nodeSelector"):
        out["nodeSelector"] = scheduling["nodeSelector"]
    runtime_class = scheduling.get("runtimeClassName", config.defaultRuntimeClassName)
    if runtime_class:  # "" in the test means: no runtime class, even if the operator has one
        out["runtimeClassName"] = runtime_class
    return out


def _role(test: dict[str, Any], config: OperatorConfig, role: str) -> dict[str, Any]:
    spec = test["spec"]
    name = test["metadata"]["name"]
    names = child_names(name)
    pod_name = names[role]
    user = spec[role]
    labels = selector_labels(name, pod_name, role)
    annotations: dict[str, str] = {}
    if role == "master" and exporter_enabled(spec, config):
        annotations = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics",
                       "prometheus.io/port": str(config.metricsExporter.port)}
    # The user's annotations win over the exporter defaults (e.g. scrape: "false").
    annotations.update(user.get("annotations", {}))
    if role == "master" and spec.get("loadShape"):
        annotations[LOAD_SHAPE_ANNOTATION] = shape_source(spec["loadShape"])
    volumes, mounts = _volumes_and_mounts(spec, role, pod_name, config)
    processes = processes_per_pod(spec, config)
    return {
        "name": pod_name,
        "labels": labels,
        # User labels merge in but never override the selector labels.
        "pod_labels": {**user.get("labels", {}), **labels},
        "pod_annotations": annotations,
        "args": (master_args(spec, config.workerConnectTimeoutSeconds, processes, web_base_path(test))
                 if role == "master"
                 else worker_args(spec, names["master"], processes)),
        "resources": user.get("resources") or config.role_resources(role),
        "volumes": volumes,
        "volume_mounts": mounts,
        "init_containers": pod_setup.init_containers(spec, config, _container_security_context(spec)),
    }


def job_ttl(spec: dict[str, Any], config: OperatorConfig) -> int | None:
    """The Jobs' ttlSecondsAfterFinished: the test's own, else the operator's default."""
    ttl = (spec.get("cleanup") or {}).get("ttlSecondsAfterFinished")
    return int(ttl) if ttl is not None else config.jobTtlSecondsAfterFinished


# The Jobs' own activeDeadlineSeconds: the run ceiling plus this margin, so the Job
# controller ends a run that outlives its ceiling even while the operator is down (the
# operator itself stops the run at the ceiling, keeping its results).
DEADLINE_MARGIN_SECONDS = 300


def max_duration(spec: Mapping[str, Any], config: OperatorConfig) -> int:
    """The test's run ceiling in seconds: its own, else the operator's (0: none)."""
    own = spec.get("maxDurationSeconds")
    return int(own) if isinstance(own, int) and own > 0 else config.maxTestDurationSeconds


def job_deadline_backstop(spec: Mapping[str, Any], config: OperatorConfig) -> int | None:
    limit = max_duration(spec, config)
    return limit + DEADLINE_MARGIN_SECONDS if limit else None


def keeps_failed_pods(spec: dict[str, Any]) -> bool:
    """With cleanup.keepFailedPods the Jobs start without a TTL; the operator sets it
    once the test passed, so a failed test's pods stay for debugging."""
    return bool((spec.get("cleanup") or {}).get("keepFailedPods"))


def context(test: dict[str, Any], config: OperatorConfig) -> dict[str, Any]:
    """Everything the templates need, computed from a validated, defaulted test."""
    spec = test["spec"]
    metadata = test["metadata"]
    owner = owner_reference(metadata) if metadata.get("uid") else None
    exporter = config.metricsExporter
    return {
        "test": test,
        "spec": spec,
        "config": config,
        "name": metadata["name"],
        "namespace": metadata.get("namespace"),
        "owner_references": [owner] if owner else [],
        "names": child_names(metadata["name"]),
        "master": _role(test, config, "master"),
        "worker": _role(test, config, "worker"),
        "ttl_seconds_after_finished": None if keeps_failed_pods(spec) else job_ttl(spec, config),
        "active_deadline_seconds": job_deadline_backstop(spec, config),
        "image_pull_secrets": spec.get("imagePullSecrets", []),
        "pod_security_context": _pod_security_context(spec),
        "container_security_context": _container_security_context(spec),
        "scheduling": _scheduling(spec, config),
        "env": _env(spec),
        "env_from": _env_from(spec),
        "exporter": {
            "enabled": exporter_enabled(spec, config),
            "image": exporter.image,
            "port": exporter.port,
            "pull_policy": exporter.pullPolicy,
            "resources": exporter.resources,
        },
        "ports": {"master": MASTER_PORT, "web": WEB_PORT, "worker": WORKER_PORT},
        "web_base_path": web_base_path(test),
        "route": route_context(test) if "webUI" in spec else None,
        "service_selector": service_selector(child_names(metadata["name"])["master"]),
    }


_SURROGATE_PAIR = re.compile(r"\\\\|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _pair_to_yaml(match: re.Match[str]) -> str:
    if match.group(1) is None:  # an escaped backslash: keep it, and what follows is literal
        return match.group(0)
    high, low = int(match.group(1), 16), int(match.group(2), 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"


def to_yaml_value(value: Any) -> str:
    """Embed any value in YAML safely.

    JSON is YAML, except that YAML reads a JSON surrogate-pair escape as two
    lone surrogates, so characters beyond U+FFFF become YAML's 8-digit escapes.
    """
    return _SURROGATE_PAIR.sub(_pair_to_yaml, json.dumps(value, sort_keys=True))


@functools.cache
def _environment(templates_dir: str | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(shipped_dir("templates")))]
    if templates_dir:
        # Overrides first; missing names fall back to the built-in templates.
        loaders.insert(0, jinja2.FileSystemLoader(templates_dir))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = to_yaml_value
    return env


def _render_template(env: jinja2.Environment, template_name: str, ctx: dict[str, Any]) -> str:
    try:
        return env.get_template(template_name).render(ctx)
    except jinja2.TemplateSyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        raise RenderError(f"template {template_name}: syntax error{where}: {exc.message}") from None
    except jinja2.TemplateError as exc:  # an undefined variable, a failing filter...
        raise RenderError(f"template {template_name}: {exc.message or type(exc).__name__}") from None
    except Exception as exc:
        # Override templates are the platform team's code: any error in one
        # (a division by zero, a bad method call) is a problem of that
        # template, to report by name, not a traceback of the CLI.
        raise RenderError(f"template {template_name}: {type(exc).__name__}: {exc}") from None


def render_validated(test: dict[str, Any], config: OperatorConfig) -> list[Manifest]:
    """Render a test the API server already validated and defaulted."""
    env = _environment(config.templatesDir)
    ctx = context(test, config)
    objects: list[Manifest] = []
    for template_name in (*TEMPLATE_NAMES, *route_templates(test["spec"])):
        text = _render_template(env, template_name, ctx)
        try:
            obj = yaml.load(text, Loader=SAFE_LOADER)
        except yaml.YAMLError as exc:
            raise RenderError(f"template {template_name} produced invalid YAML: {exc}") from None
        if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
            raise RenderError(f"template {template_name} did not produce a Kubernetes object")
        objects.append(obj)
    return objects


def render(test: dict[str, Any], config: OperatorConfig) -> list[Manifest]:
    """Validate and default `test` like the API server, then render its objects.

    Raises validation.InvalidLocustTest listing every problem, of the test or
    of a rendered child the API server would refuse.
    """
    # Imported here: the controller renders tests the API server validated, and
    # never loads the schema validator and CEL compiler it does not need.
    from locust_operator.validation.validator import InvalidLocustTest, Problem, child_problems, validated

    defaulted = validated(test)
    if not isinstance(defaulted.get("spec"), dict):
        # The CRD does not require spec, but there is nothing to run without one.
        raise InvalidLocustTest([Problem("spec", "required field is missing")])
    objects = render_validated(defaulted, config)
    # What the CRD cannot see: the children as rendered (operator labels and
    # annotations added, names derived, override templates applied).
    problems = child_problems(objects)
    if problems:
        raise InvalidLocustTest(problems)
    return objects

