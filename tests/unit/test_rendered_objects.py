"""Rendered objects are valid Kubernetes objects and carry the reference's values."""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from locust_operator.api.config import MetricsExporterConfig, OperatorConfig
from locust_operator.build.render import render
from tests.support.examples import BASE_TEST, EXAMPLE_TESTS, load_example
from tests.support.gateway_api import httproute_crd

KUBERNETES_VERSION = "1.34.0"


def _objects(test: dict[str, Any], config: OperatorConfig | None = None) -> dict[str, Any]:
    rendered = render(test, config or OperatorConfig())
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in rendered}


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


@functools.cache
def _httproute_schema() -> dict[str, Any]:
    """The v1 openAPIV3Schema of the Gateway API's own HTTPRoute CRD (not in kubernetes_validate)."""
    crd = yaml.safe_load(httproute_crd().read_text())
    (v1,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    schema: dict[str, Any] = v1["schema"]["openAPIV3Schema"]
    return schema


def _validate(obj: dict[str, Any]) -> None:
    if obj["apiVersion"] == "gateway.networking.k8s.io/v1":
        jsonschema.validate(obj, _httproute_schema())
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("example", EXAMPLE_TESTS)
def test_rendered_objects_validate_against_kubernetes_schema(example: str) -> None:
    for obj in render(load_example(example), OperatorConfig()):
        _validate(obj)


def test_the_httproute_schema_rejects_a_parent_without_a_name() -> None:
    """The CRD schema check above can fail: a parentRef without its required name."""
    (route,) = [o for o in render(load_example("web-ui"), OperatorConfig()) if o["kind"] == "HTTPRoute"]
    route["spec"]["parentRefs"] = [{"namespace": "gateways"}]
    with pytest.raises(jsonschema.ValidationError, match="'name' is a required property"):
        _validate(route)


def test_children_names_ports_and_jobs() -> None:
    test = copy.deepcopy(BASE_TEST)
    test["metadata"]["name"] = "shop.checkout"
    objs = _objects(test)
    assert sorted(objs) == ["Job/shop-checkout-master", "Job/shop-checkout-worker",
                            "Service/shop-checkout-master"]
    service = objs["Service/shop-checkout-master"]
    assert service["spec"]["selector"] == {"performance-test-pod-name": "shop-checkout-master"}
    assert {p["port"] for p in service["spec"]["ports"]} == {5557, 8089, 9646}
    master, worker = objs["Job/shop-checkout-master"], objs["Job/shop-checkout-worker"]
    for job in (master, worker):
        assert job["spec"]["backoffLimit"] == 0
        assert _pod(job)["restartPolicy"] == "Never"
        assert "command" not in _pod(job)["containers"][0]
        assert "ttlSecondsAfterFinished" not in job["spec"]
    assert master["spec"]["parallelism"] == 1
    assert worker["spec"]["parallelism"] == 3
    assert [p["containerPort"] for p in _pod(master)["containers"][0]["ports"]] == [5557, 8089]
    assert [p["containerPort"] for p in _pod(worker)["containers"][0]["ports"]] == [8080]
    assert "--master-host=shop-checkout-master" in _pod(worker)["containers"][0]["args"]
    # Container names as the Go operator has them (`kubectl logs -c shop-checkout-master`).
    assert [c["name"] for c in _pod(master)["containers"]] == ["shop-checkout-master"]
    assert [c["name"] for c in _pod(worker)["containers"]] == ["shop-checkout-worker"]


def test_exporter_is_a_native_sidecar_with_prometheus_annotations() -> None:
    master = _objects(copy.deepcopy(BASE_TEST))["Job/demo-master"]
    (sidecar,) = _pod(master)["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == "containersol/locust_exporter:v0.5.0"
    assert {e["name"]: e["value"] for e in sidecar["env"]} == {
        "LOCUST_EXPORTER_URI": "http://localhost:8089",
        "LOCUST_EXPORTER_WEB_LISTEN_ADDRESS": ":9646"}
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    annotations = master["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9646"


@pytest.mark.parametrize(("otel", "config", "exporter"), [
    (False, OperatorConfig(), True),
    (True, OperatorConfig(), False),
    (False, OperatorConfig(metricsExporter=MetricsExporterConfig(enabled=False)), False),
])
def test_exporter_presence(otel: bool, config: OperatorConfig, exporter: bool) -> None:
    test = copy.deepcopy(BASE_TEST)
    if otel:
        test["spec"]["observability"] = {"openTelemetry": {"enabled": True, "endpoint": "http://c:4317"}}
    objs = _objects(test, config)
    assert ("initContainers" in _pod(objs["Job/demo-master"])) is exporter
    ports = {p["port"] for p in objs["Service/demo-master"]["spec"]["ports"]}
    assert (9646 in ports) is exporter


def test_opentelemetry_env_and_flag() -> None:
    env = _pod(_objects(load_example("opentelemetry"))["Job/opentelemetry-worker"])["containers"][0]
    values = {e["name"]: e.get("value") for e in env["env"]}
    assert values["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert values["OTEL_EXPORTER_OTLP_INSECURE"] == "true"
    assert [e["name"] for e in env["env"]][-2:] == ["OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"]
    assert "--otel" in env["args"]


def _effective_env(env: list[dict[str, Any]]) -> dict[str, Any]:
    """What the container sees: for a duplicate name, Kubernetes keeps the last entry."""
    return {e["name"]: e.get("value") for e in env}


@pytest.mark.parametrize(("otel", "variables", "expected"), [
    # The user's duplicate of an operator variable wins, because it comes last.
    (True, [{"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"}],
     {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}),
    (True, [{"name": "OTEL_SERVICE_NAME", "value": "from-env"}], {"OTEL_SERVICE_NAME": "from-env"}),
    (True, [{"name": "TARGET", "value": "a"}], {"TARGET": "a", "OTEL_TRACES_EXPORTER": "otlp"}),
    (False, [{"name": "TARGET", "value": "a"}], {"TARGET": "a"}),
])
def test_user_env_comes_after_the_operators_and_wins(otel: bool, variables: list[dict[str, Any]],
                                                     expected: dict[str, str]) -> None:
    test = load_example("opentelemetry")
    test["spec"]["observability"]["openTelemetry"]["enabled"] = otel
    test["spec"]["env"] = {"variables": variables}
    for role in ("master", "worker"):
        env = _pod(_objects(test)[f"Job/opentelemetry-{role}"])["containers"][0]["env"]
        assert env[-len(variables):] == variables
        effective = _effective_env(env)
        assert {k: effective.get(k) for k in expected} == expected


@pytest.mark.parametrize(("user", "expected"), [
    ({}, {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics",
          "prometheus.io/port": "9646"}),
    # A user's own values win over the exporter defaults.
    ({"prometheus.io/scrape": "false"}, {"prometheus.io/scrape": "false",
                                         "prometheus.io/path": "/metrics", "prometheus.io/port": "9646"}),
    ({"prometheus.io/port": "9100", "prometheus.io/path": "/custom", "team": "a"},
     {"prometheus.io/scrape": "true", "prometheus.io/path": "/custom", "prometheus.io/port": "9100",
      "team": "a"}),
])
def test_user_pod_annotations_win_over_exporter_defaults(user: dict[str, str],
                                                         expected: dict[str, str]) -> None:
    test = copy.deepcopy(BASE_TEST)
    test["spec"]["master"]["annotations"] = user
    annotations = _objects(test)["Job/demo-master"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == expected


def test_user_labels_cannot_override_selector_labels() -> None:
    test = copy.deepcopy(BASE_TEST)
    test["spec"]["master"]["labels"] = {"performance-test-pod-name": "evil", "app": "x", "team": "a"}
    labels = _objects(test)["Job/demo-master"]["spec"]["template"]["metadata"]["labels"]
    assert labels["performance-test-pod-name"] == "demo-master"
    assert labels["app"] == "demo"
    assert labels["team"] == "a"


@pytest.mark.parametrize(("given", "default", "expected"), [
    (None, None, None),
    (None, "gvisor", "gvisor"),
    ("kata", "gvisor", "kata"),
    ("", "gvisor", None),
])
def test_runtime_class(given: str | None, default: str | None, expected: str | None) -> None:
    test = copy.deepcopy(BASE_TEST)
    if given is not None:
        test["spec"]["scheduling"] = {"runtimeClassName": given}
    pod = _pod(_objects(test, OperatorConfig(defaultRuntimeClassName=default))["Job/demo-worker"])
    assert pod.get("runtimeClassName") == expected


@pytest.mark.parametrize(("honour_affinity", "honour_tolerations"), [(True, True), (False, False),
                                                                      (True, False)])
def test_affinity_and_toleration_switches(honour_affinity: bool, honour_tolerations: bool) -> None:
    config = OperatorConfig(honourAffinity=honour_affinity, honourTolerations=honour_tolerations)
    pod = _pod(_objects(load_example("scheduling-and-resources"), config)[
        "Job/scheduling-and-resources-worker"])
    assert ("affinity" in pod) is honour_affinity
    assert ("tolerations" in pod) is honour_tolerations
    assert pod["nodeSelector"] == {"workload": "load-test"}


def test_resources_default_per_role_and_override() -> None:
    config = OperatorConfig(workerResources={"requests": {"cpu": "2"}})
    objs = _objects(copy.deepcopy(BASE_TEST), config)
    master = _pod(objs["Job/demo-master"])["containers"][0]["resources"]
    worker = _pod(objs["Job/demo-worker"])["containers"][0]["resources"]
    assert master["requests"] == {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "30M"}
    assert master["limits"] == {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "50M"}
    assert worker == {"requests": {"cpu": "2"}}
    given = _pod(_objects(load_example("scheduling-and-resources"))[
        "Job/scheduling-and-resources-worker"])["containers"][0]["resources"]
    assert given["limits"] == {"cpu": "2", "memory": "1Gi"}


def test_mounts_volumes_and_targets() -> None:
    objs = _objects(load_example("scheduling-and-resources"))
    master = _pod(objs["Job/scheduling-and-resources-master"])
    worker = _pod(objs["Job/scheduling-and-resources-worker"])
    assert "/reports" in [m["mountPath"] for m in master["containers"][0]["volumeMounts"]]
    assert "/reports" not in [m["mountPath"] for m in worker["containers"][0]["volumeMounts"]]
    env_objs = _objects(load_example("env-and-secrets"))
    pod = _pod(env_objs["Job/env-and-secrets-worker"])
    assert {"name": "secret-demo-credentials", "secret": {"secretName": "demo-credentials"}} in pod["volumes"]
    assert pod["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "demo-settings"}},
        {"prefix": "DEMO_", "secretRef": {"name": "demo-credentials"}}]
    lib = _pod(_objects(load_example("with-lib"))["Job/with-lib-master"])
    assert {"name": "locust-lib", "mountPath": "/opt/locust/lib", "readOnly": True} in \
        lib["containers"][0]["volumeMounts"]


def test_security_defaults_and_overrides() -> None:
    pod = _pod(_objects(copy.deepcopy(BASE_TEST))["Job/demo-worker"])
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    test = copy.deepcopy(BASE_TEST)
    test["spec"]["security"] = {"podSecurityContext": {"runAsUser": 4242}}
    assert _pod(_objects(test)["Job/demo-worker"])["securityContext"] == {"runAsUser": 4242}


def test_owner_reference_and_ttl_when_known() -> None:
    test = copy.deepcopy(BASE_TEST)
    test["metadata"]["uid"] = "0b5e-uid"
    for obj in render(test, OperatorConfig(jobTtlSecondsAfterFinished=600)):
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner == {"apiVersion": "locust.io/v2", "kind": "LocustTest", "name": "demo",
                         "uid": "0b5e-uid", "controller": True, "blockOwnerDeletion": True}
        assert obj["metadata"]["namespace"] == "load"
        if obj["kind"] == "Job":
            assert obj["spec"]["ttlSecondsAfterFinished"] == 600


def test_template_override_directory(tmp_path: Path) -> None:
    builtin = (Path(__file__).resolve().parents[2] / "templates" / "worker-job.yaml.j2").read_text()
    (tmp_path / "worker-job.yaml.j2").write_text(
        builtin.replace("backoffLimit: 0", "backoffLimit: 0\n  suspend: false"))
    config = dataclasses.replace(OperatorConfig(), templatesDir=str(tmp_path))
    objs = _objects(copy.deepcopy(BASE_TEST), config)
    assert objs["Job/demo-worker"]["spec"]["suspend"] is False
    assert "suspend" not in objs["Job/demo-master"]["spec"]


@pytest.mark.parametrize(("spec", "config", "deadline"), [
    ({}, {}, 86400 + 300),  # the operator's default ceiling, plus the margin
    ({"maxDurationSeconds": 600}, {}, 900),  # the test's own wins
    ({"maxDurationSeconds": 600}, {"maxTestDurationSeconds": 0}, 900),
    ({}, {"maxTestDurationSeconds": 0}, None),  # no ceiling: no backstop
])
def test_jobs_carry_the_run_ceiling_as_a_backstop(spec: dict[str, Any], config: dict[str, Any],
                                                  deadline: int | None) -> None:
    """Past the ceiling the operator stops the run itself; the Jobs' own deadline ends it
    even while the operator is down."""
    test = copy.deepcopy(BASE_TEST)
    test["spec"].update(spec)
    objs = _objects(test, dataclasses.replace(OperatorConfig(), **config))
    for job in ("Job/demo-master", "Job/demo-worker"):
        assert objs[job]["spec"].get("activeDeadlineSeconds") == deadline


def test_rendering_is_deterministic() -> None:
    first = render(load_example("env-and-secrets"), OperatorConfig())
    assert render(load_example("env-and-secrets"), OperatorConfig()) == first
