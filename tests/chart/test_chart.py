"""Helm chart tests: render charts/locust-operator with the pinned helm and
check what the cluster would get (RBAC, security, operator config, args) and
what helm must refuse (values.schema.json)."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "locust-operator"
RELEASE = "locust-operator"
NAMESPACE = "locust-operator"

# The controller package lives in controller/ (importable without installing).
if str(REPO / "controller") not in sys.path:
    sys.path.insert(0, str(REPO / "controller"))

from locust_operator.api.config import (  # noqa: E402
    MetricsExporterConfig,
    OperatorConfig,
    load_config,
)
from locust_operator.build.render import TEMPLATE_NAMES  # noqa: E402
from locust_operator.build.render import render as render_locusttest  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
from versions import read_versions  # noqa: E402  (scripts/versions.py: the one parser)

KUBE_VERSION = read_versions()["KUBERNETES_VERSION"]


def _bin_dir() -> Path | None:
    if os.environ.get("LOCUST_OPERATOR_BIN_DIR"):
        return Path(os.environ["LOCUST_OPERATOR_BIN_DIR"])
    try:
        out = subprocess.run(
            [str(REPO / "scripts" / "cluster"), "bin-dir"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the pinned helm build; a missing helm is a failure, never a skip."""
    bin_dir = _bin_dir()
    path = bin_dir / "helm" if bin_dir else None
    if path is None or not os.access(path, os.X_OK):
        pytest.fail(
            f"helm not found (bin dir: {bin_dir}): run `scripts/cluster build` "
            "(or set LOCUST_OPERATOR_BIN_DIR to a directory containing helm)",
            pytrace=False,
        )
    return str(path)


Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def helm_template(helm: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `helm template` on the chart with extra args; returns the process."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture(scope="session")
def render(helm_template: Callable[..., subprocess.CompletedProcess[str]]) -> Render:
    """Render the chart (must succeed) and return its manifests."""

    @functools.cache
    def rendered(args: tuple[str, ...]) -> str:
        proc = helm_template(*args)
        assert proc.returncode == 0, f"helm template {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout

    def run(*args: str) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(rendered(args)) if doc]

    return run


CONFIG_DIR = "/etc/locust-operator"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]

NAMESPACED_RULES = {
    ("locust.io", "locusttests"): {"get", "list", "watch", "create", "patch", "delete"},
    ("locust.io", "locusttests/status"): {"patch"},
    ("locust.io", "locusttestschedules"): {"list", "watch", "patch"},
    ("locust.io", "locusttestschedules/status"): {"patch"},
    # patch: the TTL of a passed test's Jobs (cleanup.keepFailedPods), and
    # activeDeadlineSeconds to end an aborted test's pods (no delete verb).
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch"},
    ("", "services"): {"get", "list", "watch", "create"},
    ("", "pods"): {"list", "watch"},
    ("", "pods/log"): {"get"},  # the master's final stats when its REST API was not read
    ("", "configmaps"): {"create", "delete"},  # the results; an old run's report (keepReportRuns)
    # list: a stuck pod's FailedMount events (the kubelet reports a missing ConfigMap only there)
    ("", "events"): {"create", "list"},
}


# --------------------------------------------------------------------------- helpers


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in kinds(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = pod_spec(docs)["containers"]
    return c  # type: ignore[no-any-return]


def rule_map(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, flattened over the role's rules."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def load_rendered_config(docs: list[dict[str, Any]], tmp_path: Path) -> OperatorConfig:
    """The rendered config.yaml, parsed by the controller's own loader."""
    cm = one(docs, "ConfigMap", "locust-operator-config")
    path = tmp_path / "config.yaml"
    path.write_text(cm["data"]["config.yaml"])
    return load_config(path, env={})


def mounted_files(docs: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Absolute file path in the operator container -> (ConfigMap name, key)."""
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    out = {}
    for mount in container(docs)["volumeMounts"]:
        volume = volumes[mount["name"]]
        sources = volume.get("projected", {}).get("sources", [])
        if "configMap" in volume:
            sources = [{"configMap": volume["configMap"]}]
        for source in sources:
            cm = source["configMap"]
            for item in cm["items"]:
                out[f"{mount['mountPath']}/{item['path']}"] = (cm["name"], item["key"])
    return out


# --------------------------------------------------------------------------- RBAC

RBAC_CASES = {
    "all-namespaces": [],
    "watched": ["--set", "watchNamespaces={team-a,team-b}"],
}


@pytest.mark.parametrize("args", RBAC_CASES.values(), ids=RBAC_CASES.keys())
def test_rbac_has_no_wildcards_secrets_or_deletes_but_of_runs(render: Render, args: list[str]) -> None:
    roles = kinds(render(*args), "ClusterRole") + kinds(render(*args), "Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['kind']} has a wildcard in {field}: {rule}"
            assert "secrets" not in rule["resources"], rule
            # ConfigMaps may hold test data: create (the results), delete (an old run's report,
            # with schedules), never read.
            if "configmaps" in rule["resources"]:
                assert (rule["resources"], rule["verbs"]) == (["configmaps"], ["create", "delete"]), rule
            # delete: only LocustTests (a schedule's runs past its history limits) and ConfigMaps.
            forbidden = {"deletecollection", "escalate", "bind", "impersonate"} | (
                set() if rule["resources"] in (["locusttests"], ["configmaps"]) else {"delete"})
            assert not forbidden & set(rule["verbs"]), rule
            assert "nonResourceURLs" not in rule and "resourceNames" not in rule, rule


def test_rbac_without_schedules_has_no_delete_and_no_schedule_rules(render: Render) -> None:
    role = one(render("--set", "config.schedules=false"), "ClusterRole")
    rules = rule_map(role)
    assert rules[("locust.io", "locusttests")] == {"list", "watch", "patch"}
    assert rules[("", "configmaps")] == {"create"}
    assert ("locust.io", "locusttestschedules") not in rules
    assert not any("delete" in verbs for verbs in rules.values())


@pytest.mark.parametrize("args", RBAC_CASES.values(), ids=RBAC_CASES.keys())
def test_rbac_grows_by_the_web_routes_only_when_enabled(render: Render, args: list[str]) -> None:
    web = {("networking.k8s.io", "ingresses"): {"get", "create"},
           ("gateway.networking.k8s.io", "httproutes"): {"get", "create"}}
    for role in kinds(render(*args), "ClusterRole") + kinds(render(*args), "Role"):
        assert not web.keys() & rule_map(role).keys()
    enabled = render(*args, "--set", "config.webRoutes=true")
    for role in kinds(enabled, "ClusterRole") + kinds(enabled, "Role"):
        rules = rule_map(role)
        assert {key: rules[key] for key in web} == web
        assert {key: verbs for key, verbs in rules.items() if key not in web} == NAMESPACED_RULES


def test_rbac_all_namespaces_is_one_cluster_role(render: Render) -> None:
    docs = render()
    assert kinds(docs, "Role") == [] and kinds(docs, "RoleBinding") == []
    role = one(docs, "ClusterRole")
    assert rule_map(role) == NAMESPACED_RULES
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    sa = one(docs, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    ]
    assert pod_spec(docs)["serviceAccountName"] == sa["metadata"]["name"]


def test_rbac_watched_namespaces_get_a_role_each(render: Render) -> None:
    docs = render("--set", "watchNamespaces={team-a,team-b}")
    assert kinds(docs, "ClusterRole") == [] and kinds(docs, "ClusterRoleBinding") == []
    roles = {r["metadata"]["namespace"]: r for r in kinds(docs, "Role")}
    bindings = {b["metadata"]["namespace"]: b for b in kinds(docs, "RoleBinding")}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    for ns, role in roles.items():
        assert rule_map(role) == NAMESPACED_RULES
        assert bindings[ns]["roleRef"]["kind"] == "Role"
        assert bindings[ns]["roleRef"]["name"] == role["metadata"]["name"]
        assert bindings[ns]["subjects"][0]["namespace"] == NAMESPACE


def test_rbac_create_false_renders_no_rbac(render: Render) -> None:
    docs = render("--set", "rbac.create=false")
    assert not [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io/")]


# --------------------------------------------------------------------------- pod


def test_pod_and_container_security(render: Render) -> None:
    docs = render()
    spec = pod_spec(docs)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 65532
    assert spec["securityContext"]["fsGroup"] == 65532
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is True
    sc = container(docs)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in sc or sc["privileged"] is False
    # A writable /tmp on the read-only root filesystem.
    volumes = {v["name"]: v for v in spec["volumes"]}
    (tmp,) = [m for m in container(docs)["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]


def test_deployment_shape_probe_and_ports(render: Render) -> None:
    docs = render()
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    c = container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    probe = c["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and probe["port"] == "health"
    assert c["resources"] == VALUES["resources"]
    assert c["command"] == ["locust-operator"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for key, value in deployment["spec"]["selector"]["matchLabels"].items():
        assert labels[key] == value
    assert labels["app.kubernetes.io/name"] == "locust-operator"
    assert labels["app.kubernetes.io/instance"] == "locust-operator"


@pytest.mark.parametrize(
    ("args", "image"),
    [
        ([], f"ghcr.io/locust-operator/locust-operator:{APP_VERSION}"),
        (["--set", "image.tag=1.2.3"], "ghcr.io/locust-operator/locust-operator:1.2.3"),
        (["--set", "image.repository=registry.local/op"], f"registry.local/op:{APP_VERSION}"),
    ],
    ids=["default-appVersion", "tag", "repository"],
)
def test_image(render: Render, args: list[str], image: str) -> None:
    assert container(render(*args))["image"] == image


def test_pod_scheduling_values_pass_through(render: Render) -> None:
    docs = render(
        "--set",
        "nodeSelector.pool=ops",
        "--set",
        "tolerations[0].key=dedicated,tolerations[0].operator=Exists",
        "--set",
        "podAnnotations.a=b",
        "--set",
        "imagePullSecrets[0].name=regcred",
        "--set",
        "priorityClassName=high",
    )
    spec = pod_spec(docs)
    assert spec["nodeSelector"] == {"pool": "ops"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["priorityClassName"] == "high"
    assert one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["a"] == "b"


def test_config_change_rolls_the_pod(render: Render) -> None:
    def checksum(*args: str) -> str:
        annotations = one(render(*args), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    assert checksum() != checksum("--set", "config.logFormat=json")


@pytest.mark.parametrize(
    ("args", "present"),
    [([], False), (["--set", "metrics.service.enabled=true"], True)],
    ids=["default-off", "enabled"],
)
def test_metrics_service(render: Render, args: list[str], present: bool) -> None:
    services = kinds(render(*args), "Service")
    assert bool(services) == present
    if present:
        (svc,) = services
        assert svc["spec"]["ports"] == [
            {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
        ]
        assert svc["spec"]["selector"] == one(render(*args), "Deployment")["spec"]["selector"]["matchLabels"]


# --------------------------------------------------------------------------- optional objects

OPTIONAL_KINDS = {"ServiceMonitor", "PodMonitor", "PodDisruptionBudget", "NetworkPolicy"}
ALL_OPTIONS = CHART / "ci" / "all-options-values.yaml"
# The API server address of the NetworkPolicy tests (required when it is on).
API_CIDR = ["--set", "networkPolicy.enabled=true,networkPolicy.apiServer.cidrs={10.1.2.3/32}"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels, matchExpressions) matches labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        if {
            "In": present and value in expr.get("values", []),
            "NotIn": not present or value not in expr.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[expr["operator"]] is False:
            return False
    return True


def test_selects() -> None:
    labels = {"a": "1", "b": "2"}
    assert selects({}, labels)
    assert selects({"matchLabels": {"a": "1"}}, labels)
    assert not selects({"matchLabels": {"a": "2"}}, labels)
    assert selects({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}, labels)
    assert not selects({"matchExpressions": [{"key": "c", "operator": "Exists"}]}, labels)


def test_optional_objects_are_off_by_default(render: Render) -> None:
    docs = render()
    assert not [d for d in docs if d["kind"] in OPTIONAL_KINDS]
    assert "priorityClassName" not in pod_spec(docs)
    assert not VALUES["metrics"]["serviceMonitor"]["enabled"]
    assert not VALUES["metrics"]["masterPodMonitor"]["enabled"]
    assert not VALUES["podDisruptionBudget"]["enabled"]
    assert not VALUES["networkPolicy"]["enabled"]


def test_all_options_values_turn_every_option_on(render: Render) -> None:
    docs = render("-f", str(ALL_OPTIONS))
    assert {d["kind"] for d in docs} >= OPTIONAL_KINDS | {"Service"}
    spec = pod_spec(docs)
    assert spec["priorityClassName"] == "locust-operator-ci"
    metadata = one(docs, "Deployment")["spec"]["template"]["metadata"]
    assert metadata["labels"]["example.com/team"] == "perf"
    assert metadata["annotations"]["example.com/owner"] == "perf-team"


def test_core_objects_validate_against_the_kubernetes_schema(render: Render) -> None:
    """Everything but the Prometheus Operator kinds (CRDs) is checked strictly
    against the pinned Kubernetes minor's OpenAPI schema."""
    version = ".".join(KUBE_VERSION.lstrip("v").split(".")[:2]) + ".0"
    for values in sorted((CHART / "ci").glob("*-values.yaml")):
        for doc in render("-f", str(values)):
            if not doc["apiVersion"].startswith("monitoring.coreos.com/"):
                kubernetes_validate.validate(doc, version, strict=True)


def controller_pods(docs: list[dict[str, Any]], tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Role -> pod template the controller renders for examples/minimal.yaml
    with the chart's rendered config (the pods the monitors and policy target)."""
    config = load_rendered_config(docs, tmp_path)
    test = yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())
    test["metadata"]["namespace"] = "load-tests"
    jobs = [o for o in render_locusttest(test, config) if o["kind"] == "Job"]
    return {
        j["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: j["spec"]["template"]
        for j in jobs
    }


def pod_ports(pod: dict[str, Any]) -> dict[str, int]:
    """Container port name -> number over containers and (native sidecar) init containers."""
    containers = pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
    return {p["name"]: p["containerPort"] for c in containers for p in c.get("ports", [])}


@pytest.mark.parametrize(
    "args",
    [["--set", "metrics.serviceMonitor.enabled=true"], ["-f", str(ALL_OPTIONS)]],
    ids=["enabled", "all-options"],
)
def test_service_monitor_scrapes_the_operator_metrics_port(render: Render, args: list[str]) -> None:
    docs = render(*args)
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    # It selects exactly the metrics Service, which the ServiceMonitor implies.
    selector = monitor["spec"]["selector"]
    (service,) = [s for s in kinds(docs, "Service") if selects(selector, s["metadata"]["labels"])]
    assert service["metadata"]["name"] == "locust-operator-metrics"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels)
    assert {p["name"]: p["containerPort"] for p in container(docs)["ports"]}[port["targetPort"]] == 9090


def test_service_monitor_labels_and_scrape_settings(render: Render) -> None:
    monitor = one(render("-f", str(ALL_OPTIONS)), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("30s", "10s")
    docs = render("--set", "metrics.serviceMonitor.enabled=true")
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert "interval" not in endpoint and "scrapeTimeout" not in endpoint


@pytest.mark.parametrize(
    "args",
    [[], ["--set", "config.metricsExporter.port=9999"]],
    ids=["default-port", "port-9999"],
)
def test_master_pod_monitor_scrapes_the_masters_exporter(
    render: Render, tmp_path: Path, args: list[str]
) -> None:
    docs = render("--set", "metrics.masterPodMonitor.enabled=true", *args)
    monitor = one(docs, "PodMonitor")
    pods = controller_pods(docs, tmp_path)
    assert selects(monitor["spec"]["selector"], pods["master"]["metadata"]["labels"])
    assert not selects(monitor["spec"]["selector"], pods["worker"]["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    exporter_port = load_rendered_config(docs, tmp_path).metricsExporter.port
    assert endpoint["portNumber"] == exporter_port == pod_ports(pods["master"])["metrics"]
    assert endpoint["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}


def test_master_pod_monitor_watches_only_the_watched_namespaces(render: Render) -> None:
    docs = render(
        "--set", "metrics.masterPodMonitor.enabled=true", "--set", "watchNamespaces={team-a,team-b}"
    )
    assert one(docs, "PodMonitor")["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}


def test_master_pod_monitor_needs_the_exporter(helm_template: Any) -> None:
    proc = helm_template(
        "--set", "metrics.masterPodMonitor.enabled=true", "--set", "config.metricsExporter.enabled=false"
    )
    assert proc.returncode != 0
    assert "metrics.masterPodMonitor.enabled needs config.metricsExporter.enabled" in proc.stderr


DASHBOARD_FILE = CHART / "files" / "grafana" / "locust-series.json"
DASHBOARD_CONFIGMAP = "locust-operator-grafana-dashboard"


def test_grafana_dashboard_is_off_by_default(render: Render) -> None:
    assert VALUES["grafana"]["dashboard"]["enabled"] is False
    assert [c["metadata"]["name"] for c in kinds(render(), "ConfigMap")] == ["locust-operator-config"]


def test_grafana_dashboard_configmap_for_the_sidecar(render: Render) -> None:
    docs = render("--set", "grafana.dashboard.enabled=true")
    dashboard = one(docs, "ConfigMap", DASHBOARD_CONFIGMAP)
    assert dashboard["metadata"]["namespace"] == NAMESPACE
    labels = dashboard["metadata"]["labels"]
    assert labels["grafana_dashboard"] == "1"  # the Grafana chart sidecar's default label
    assert labels["app.kubernetes.io/instance"] == RELEASE
    assert "annotations" not in dashboard["metadata"]
    (key,) = dashboard["data"]
    assert key == "locust-series.json"
    text = DASHBOARD_FILE.read_text()
    assert dashboard["data"][key] == text.strip()  # verbatim, not re-encoded by the template
    assert json.loads(dashboard["data"][key]) == json.loads(text)
    version = ".".join(KUBE_VERSION.lstrip("v").split(".")[:2]) + ".0"
    kubernetes_validate.validate(dashboard, version, strict=True)


@pytest.mark.parametrize(
    ("args", "label", "value"),
    [
        (["--set", "grafana.dashboard.label=example.com/dashboard,grafana.dashboard.labelValue=yes"],
         "example.com/dashboard", "yes"),
        (["--set", "grafana.dashboard.labelValue=2"], "grafana_dashboard", "2"),  # --set gives an int
        (["--set-string", "grafana.dashboard.labelValue=1"], "grafana_dashboard", "1"),
        (["--set", "grafana.dashboard.labelValue="], "grafana_dashboard", ""),  # any value, for the sidecar
    ],
    ids=["custom-label", "integer-value", "string-value", "empty-value"],
)
def test_grafana_dashboard_label_is_configurable(
    render: Render, args: list[str], label: str, value: str
) -> None:
    docs = render("--set", "grafana.dashboard.enabled=true", *args)
    labels = one(docs, "ConfigMap", DASHBOARD_CONFIGMAP)["metadata"]["labels"]
    assert labels[label] == value and isinstance(labels[label], str)
    assert ("grafana_dashboard" in labels) == (label == "grafana_dashboard")


def test_grafana_dashboard_namespace_and_annotations(render: Render) -> None:
    docs = render(
        "--set", "grafana.dashboard.enabled=true,grafana.dashboard.namespace=monitoring",
        "--set", "grafana.dashboard.annotations.grafana_folder=Load tests",
    )
    metadata = one(docs, "ConfigMap", DASHBOARD_CONFIGMAP)["metadata"]
    assert metadata["namespace"] == "monitoring"
    assert metadata["annotations"] == {"grafana_folder": "Load tests"}
    assert one(docs, "ConfigMap", "locust-operator-config")["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("max_unavailable", [None, 0])
def test_pod_disruption_budget(render: Render, max_unavailable: int | None) -> None:
    args = ["--set", "podDisruptionBudget.enabled=true"]
    if max_unavailable is not None:
        args += ["--set", f"podDisruptionBudget.maxUnavailable={max_unavailable}"]
    docs = render(*args)
    pdb = one(docs, "PodDisruptionBudget")
    expected = VALUES["podDisruptionBudget"]["maxUnavailable"] if max_unavailable is None else max_unavailable
    assert pdb["spec"]["maxUnavailable"] == expected
    assert "minAvailable" not in pdb["spec"]
    deployment = one(docs, "Deployment")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def network_policy(render: Render, *args: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    docs = render(*API_CIDR, *args)
    return one(docs, "NetworkPolicy")["spec"], docs


def test_network_policy_needs_the_api_server_cidrs(helm_template: Any) -> None:
    proc = helm_template("--set", "networkPolicy.enabled=true")
    assert proc.returncode != 0
    assert "networkPolicy.apiServer.cidrs is required" in proc.stderr


def test_network_policy_selects_the_operator_and_restricts_both_ways(render: Render) -> None:
    spec, docs = network_policy(render)
    assert spec["podSelector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    # Ingress: only the liveness and metrics ports (by the container's port names).
    ports = {p["name"]: p["containerPort"] for p in container(docs)["ports"]}
    ingress = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
    assert ingress == {"health", "metrics"} and ingress <= set(ports)
    assert all("from" not in rule for rule in spec["ingress"])  # metricsFrom: [] means any source
    # Egress: every rule names its peers and its ports (nothing open-ended).
    for rule in spec["egress"]:
        assert rule["to"] and rule["ports"], rule


def test_network_policy_egress_dns_and_api_server(render: Render) -> None:
    spec, _ = network_policy(render)
    dns, api, _masters = spec["egress"]
    assert dns["to"] == VALUES["networkPolicy"]["dns"]["to"]
    assert sorted((p["port"], p["protocol"]) for p in dns["ports"]) == [(53, "TCP"), (53, "UDP")]
    assert api["to"] == [{"ipBlock": {"cidr": "10.1.2.3/32"}}]
    assert [(p["port"], p["protocol"]) for p in api["ports"]] == [(443, "TCP"), (6443, "TCP")]


@pytest.mark.parametrize(
    ("args", "namespaces"),
    [([], None), (["--set", "watchNamespaces={team-a,team-b}"], ["team-a", "team-b"])],
    ids=["all-namespaces", "watched"],
)
def test_network_policy_egress_to_the_masters_web_port(
    render: Render, tmp_path: Path, args: list[str], namespaces: list[str] | None
) -> None:
    spec, docs = network_policy(render, *args)
    masters = spec["egress"][2]
    (peer,) = masters["to"]
    pods = controller_pods(docs, tmp_path)
    assert selects(peer["podSelector"], pods["master"]["metadata"]["labels"])
    assert not selects(peer["podSelector"], pods["worker"]["metadata"]["labels"])
    if namespaces is None:
        assert peer["namespaceSelector"] == {}
    else:
        for ns in namespaces:
            assert selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": ns})
        assert not selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": "kube-system"})
    # The port the controller polls (config.statsUrlTemplate) is the masters' web port.
    config = load_rendered_config(docs, tmp_path)
    (port,) = masters["ports"]
    assert port == {"port": urlsplit(config.statsUrlTemplate).port, "protocol": "TCP"}
    assert port["port"] == pod_ports(pods["master"])["web"]


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("http://{service}.{namespace}.svc:18089/stats/requests", 18089),
        ("http://{service}.{namespace}.svc/stats/requests", 80),
        ("https://{service}.{namespace}.svc/stats/requests", 443),
    ],
)
def test_network_policy_follows_the_stats_url(render: Render, url: str, port: int) -> None:
    spec, _ = network_policy(render, "--set", f"config.statsUrlTemplate={url}")
    assert spec["egress"][2]["ports"] == [{"port": port, "protocol": "TCP"}]


def test_network_policy_without_stats_polling_has_no_master_egress(render: Render) -> None:
    spec, _ = network_policy(render, "--set", "config.statsPollSeconds=0")
    assert len(spec["egress"]) == 2  # DNS and the API server only


def test_network_policy_metrics_from(render: Render) -> None:
    spec, _ = network_policy(render, "-f", str(ALL_OPTIONS))
    health, metrics = spec["ingress"]
    assert "from" not in health  # the kubelet's probes come from the node
    assert metrics["from"] == yaml.safe_load(ALL_OPTIONS.read_text())["networkPolicy"]["metricsFrom"]


def test_pod_labels_and_annotations(render: Render) -> None:
    docs = render("--set", "podLabels.team=perf", "--set", "podAnnotations.owner=perf-team")
    metadata = one(docs, "Deployment")["spec"]["template"]["metadata"]
    assert metadata["labels"]["team"] == "perf"
    assert metadata["annotations"]["owner"] == "perf-team"
    assert "checksum/config" in metadata["annotations"]


# ---------------------------------------------------------------- controller config and args


def test_default_config_is_the_controllers_default(render: Render, tmp_path: Path) -> None:
    docs = render()
    assert load_rendered_config(docs, tmp_path) == OperatorConfig()
    files = mounted_files(docs)
    assert files[f"{CONFIG_DIR}/config.yaml"] == ("locust-operator-config", "config.yaml")
    args = container(docs)["args"]
    assert args == ["run", "--config", f"{CONFIG_DIR}/config.yaml", "--all-namespaces"]


CONFIG_CASES = [
    (["--set", "config.jobTtlSecondsAfterFinished=300"], "jobTtlSecondsAfterFinished", 300),
    (["--set", "config.logFormat=json"], "logFormat", "json"),
    (["--set", "config.honourAffinity=false"], "honourAffinity", False),
    (["--set", "config.podHealthGraceSeconds=30"], "podHealthGraceSeconds", 30),
    (["--set", "config.defaultRuntimeClassName=gvisor"], "defaultRuntimeClassName", "gvisor"),
    (
        ["--set", "config.masterResources.requests.cpu=2,config.masterResources.limits.cpu=4"],
        "masterResources",
        {"requests": {"cpu": "2"}, "limits": {"cpu": "4"}},
    ),
]


@pytest.mark.parametrize(("args", "field", "expected"), CONFIG_CASES, ids=[c[1] for c in CONFIG_CASES])
def test_values_reach_the_controller_config(
    render: Render, tmp_path: Path, args: list[str], field: str, expected: Any
) -> None:
    docs = render(*args)
    config = load_rendered_config(docs, tmp_path)
    assert getattr(config, field) == expected
    # Everything else keeps the controller's defaults.
    assert dataclasses.replace(config, **{field: getattr(OperatorConfig(), field)}) == (OperatorConfig())


def test_metrics_exporter_settings_reach_the_controller(render: Render, tmp_path: Path) -> None:
    docs = render(
        "--set",
        "config.metricsExporter.enabled=false",
        "--set",
        "config.metricsExporter.port=9999",
        "--set",
        "config.metricsExporter.image=example.com/exporter:1",
    )
    exporter = load_rendered_config(docs, tmp_path).metricsExporter
    assert (exporter.enabled, exporter.port, exporter.image) == (
        False,
        9999,
        "example.com/exporter:1",
    )


def test_watch_namespaces_reach_args_and_config(render: Render, tmp_path: Path) -> None:
    docs = render("--set", "watchNamespaces={team-a,team-b}")
    args = container(docs)["args"]
    assert args == [
        "run",
        "--config",
        f"{CONFIG_DIR}/config.yaml",
        "--namespace",
        "team-a",
        "--namespace",
        "team-b",
    ]
    assert load_rendered_config(docs, tmp_path).namespaces == ("team-a", "team-b")


def test_template_overrides_mounted_and_configured(render: Render, tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ name }}-master\n"
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"templateOverrides": {"service.yaml.j2": text}}))
    docs = render("-f", str(values))
    cm = one(docs, "ConfigMap", "locust-operator-templates")
    assert cm["data"] == {"service.yaml.j2": text}  # byte for byte
    config = load_rendered_config(docs, tmp_path)
    assert config.templatesDir == f"{CONFIG_DIR}/templates"
    files = mounted_files(docs)
    assert files[f"{config.templatesDir}/service.yaml.j2"] == (
        "locust-operator-templates",
        "service.yaml.j2",
    )
    assert files[f"{CONFIG_DIR}/config.yaml"] == ("locust-operator-config", "config.yaml")


def test_no_template_overrides_no_templates_configmap(render: Render, tmp_path: Path) -> None:
    docs = render()
    assert [c["metadata"]["name"] for c in kinds(docs, "ConfigMap")] == ["locust-operator-config"]
    assert load_rendered_config(docs, tmp_path).templatesDir is None


def test_template_override_is_used_by_the_controller(render: Render, tmp_path: Path) -> None:
    """ci/overrides-values.yaml's service.yaml.j2, as mounted, changes what the
    controller renders for a LocustTest (and the other templates still work)."""
    docs = render("-f", str(CHART / "ci" / "overrides-values.yaml"))
    config = load_rendered_config(docs, tmp_path)
    assert config.templatesDir == f"{CONFIG_DIR}/templates"
    templates = tmp_path / "templates"
    templates.mkdir()
    for path, (cm_name, key) in mounted_files(docs).items():
        if path.startswith(config.templatesDir + "/"):
            text = one(docs, "ConfigMap", cm_name)["data"][key]
            (templates / Path(path).name).write_text(text)
    test = yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())
    objects = render_locusttest(test, dataclasses.replace(config, templatesDir=str(templates)))
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["metadata"]["labels"]["example.com/site"] == "eu-1"
    assert {o["kind"] for o in objects} == {"Service", "Job"}


CLI_CASES = {
    "all-namespaces": ([], ()),
    "watched": (["--set", "watchNamespaces={team-a,team-b}"], ("team-a", "team-b")),
}


@pytest.mark.parametrize(("args", "namespaces"), CLI_CASES.values(), ids=CLI_CASES.keys())
def test_rendered_command_is_accepted_by_the_cli(
    render: Render,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    namespaces: tuple[str, ...],
) -> None:
    """The container's command line, run through the real click CLI (only the
    controller loop is replaced), yields the rendered config and namespaces."""
    import types

    from click.testing import CliRunner

    from locust_operator.cli.main import cli

    docs = render(*args)
    c = container(docs)
    assert c["command"] == ["locust-operator"]
    cm = one(docs, "ConfigMap", "locust-operator-config")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(cm["data"]["config.yaml"])
    cli_args = [str(config_file) if a == f"{CONFIG_DIR}/config.yaml" else a for a in c["args"]]

    calls: list[tuple[OperatorConfig, dict[str, Any]]] = []
    fake_runner = types.ModuleType("locust_operator.controller.startup")
    fake_runner.run_controller = lambda config, **kw: calls.append((config, kw))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "locust_operator.controller.startup", fake_runner)
    for name in list(os.environ):
        if name.startswith("LOCUST_OPERATOR_"):
            monkeypatch.delenv(name)

    result = CliRunner().invoke(cli, cli_args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ((config, kwargs),) = calls
    assert config == dataclasses.replace(OperatorConfig(), namespaces=namespaces)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert kwargs["liveness_port"] == ports["health"]
    assert kwargs["metrics_port"] == ports["metrics"]


@pytest.mark.parametrize("values_file", sorted((CHART / "ci").glob("*-values.yaml")), ids=lambda p: p.name)
def test_ci_values_render_and_controller_accepts_config(
    render: Render, tmp_path: Path, values_file: Path
) -> None:
    load_rendered_config(render("-f", str(values_file)), tmp_path)


# --------------------------------------------------------------------------- rejected values

BAD_VALUES = [
    # (args, what helm's error must name: the JSON pointer of the field)
    (["--set", "config.logFormat=xml"], ["/config/logFormat"]),
    (["--set", "config.metricsExporter.pullPolicy=Sometimes"], ["/config/metricsExporter/pullPolicy"]),
    (["--set", "image.pullPolicy=Sometimes"], ["/image/pullPolicy"]),
    (["--set", "config.jobTtlSecondsAfterFinished=-1"], ["/config/jobTtlSecondsAfterFinished"]),
    (["--set-string", "config.podHealthGraceSeconds=120"], ["/config/podHealthGraceSeconds"]),
    (["--set", "config.metricsExporter.port=70000"], ["/config/metricsExporter/port"]),
    (["--set", "config.honourAffinity=maybe"], ["/config/honourAffinity"]),
    (["--set", "config.resources.requests.cpu=lots"], ["/config/resources/requests/cpu"]),
    (["--set", "config.resources.spare.cpu=1"], ["/config/resources", "spare"]),
    (["--set", "config.unknownSetting=1"], ["/config", "unknownSetting"]),
    (["--set", "replicaCount=2"], ["replicaCount"]),
    (["--set", "metrics.service.port=http"], ["/metrics/service/port"]),
    (["--set", "watchNamespaces=team-a"], ["/watchNamespaces"]),
    (["--set", "watchNamespaces={Team_A}"], ["/watchNamespaces/0"]),
    (["--set", "config.namespaces={team-a}"], ["/config/namespaces"]),
    (["--set", "config.templatesDir=/elsewhere"], ["/config/templatesDir"]),
    (["--set", "templateOverrides.locustfile\\.py=x"], ["/templateOverrides", "locustfile.py"]),
    (["--set", "templateOverrides.service\\.yaml\\.j2="], ["/templateOverrides/service.yaml.j2"]),
    (["--set", "podDisruptionBudget.maxUnavailable=2"], ["/podDisruptionBudget/maxUnavailable"]),
    (["--set", "networkPolicy.apiServer.cidrs={10.0.0.1}"], ["/networkPolicy/apiServer/cidrs/0"]),
    (["--set", "networkPolicy.apiServer.ports={}"], ["/networkPolicy/apiServer/ports"]),
    (["--set", "networkPolicy.metricsFrom[0].pods=x"], ["/networkPolicy/metricsFrom/0"]),
    (["--set", "networkPolicy.dns.to[0].podSelector.matchLabels=x"], ["/networkPolicy/dns/to/0"]),
    (["--set", "metrics.serviceMonitor.interval=often"], ["/metrics/serviceMonitor/interval"]),
    (["--set", "metrics.masterPodMonitor.labels.team=a b"], ["/metrics/masterPodMonitor/labels/team"]),
    (["--set", "metrics.serviceMonitor.scrape=true"], ["/metrics/serviceMonitor", "scrape"]),
    # Keys the chart sets itself: a duplicate would break the selector or the roll on config change.
    # (helm's validator reports propertyNames failures at '', naming the key.)
    (["--set", "podLabels.app\\.kubernetes\\.io/name=x"], ["invalid propertyName 'app.kubernetes.io/name'"]),
    (["--set", "podAnnotations.checksum/config=x"], ["invalid propertyName 'checksum/config'"]),
    (["--set", "metrics.serviceMonitor.labels.helm\\.sh/chart=x"], ["invalid propertyName 'helm.sh/chart'"]),
    (["--set", "priorityClassName=High_Priority"], ["/priorityClassName"]),
    (["--set", "grafana.dashboard.enabled=yes"], ["/grafana/dashboard/enabled"]),
    (["--set", "grafana.dashboard.label=not a key"], ["/grafana/dashboard/label"]),
    (["--set", "grafana.dashboard.label=app\\.kubernetes\\.io/name"], ["/grafana/dashboard/label"]),
    (["--set", "grafana.dashboard.labelValue=a b"], ["/grafana/dashboard/labelValue"]),
    (["--set", "grafana.dashboard.labelValue=-1"], ["/grafana/dashboard/labelValue"]),
    (["--set", "grafana.dashboard.namespace=Monitoring"], ["/grafana/dashboard/namespace"]),
    (["--set", "grafana.dashboard.folder=x"], ["/grafana/dashboard", "folder"]),
]


@pytest.mark.parametrize(("args", "words"), BAD_VALUES, ids=[" ".join(a[1:]) for a, _ in BAD_VALUES])
def test_bad_values_are_rejected_naming_the_field(
    helm_template: Any, args: list[str], words: list[str]
) -> None:
    proc = helm_template(*args)
    assert proc.returncode != 0, f"helm accepted {args}"
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, f"error does not name {word!r}:\n{proc.stderr}"


def test_old_kubernetes_is_rejected(helm: str) -> None:
    proc = subprocess.run(
        [helm, "template", "x", str(CHART), "--kube-version", "1.28.9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "kubeVersion" in proc.stderr or "incompatible" in proc.stderr, proc.stderr


def test_pinned_kubernetes_is_supported(render: Render) -> None:
    assert KUBE_VERSION and render()


# --------------------------------------------------------------------------- drift guards


def test_schema_config_matches_operator_config() -> None:
    config = SCHEMA["properties"]["config"]
    assert config["additionalProperties"] is False
    fields = {f.name for f in dataclasses.fields(OperatorConfig)}
    assert set(config["properties"]) == fields
    exporter = config["properties"]["metricsExporter"]
    exporter_fields = {f.name for f in dataclasses.fields(MetricsExporterConfig)}
    assert set(exporter["properties"]) == exporter_fields
    # values.yaml spells out every setting, with the controller's defaults.
    assert set(VALUES["config"]) == fields


def test_schema_rejects_unknown_top_level_keys() -> None:
    assert SCHEMA["additionalProperties"] is False
    assert set(SCHEMA["properties"]) - {"global"} == set(VALUES)


def test_template_override_names_are_the_builtin_templates() -> None:
    names = SCHEMA["properties"]["templateOverrides"]["propertyNames"]["enum"]
    assert sorted(names) == sorted(TEMPLATE_NAMES)
    top = {p.name for p in (REPO / "templates").glob("*.yaml.j2")}
    assert set(TEMPLATE_NAMES) <= top


def test_templates_have_one_home() -> None:
    """The chart ships the package's templates through a link, never a copy."""
    shipped = CHART / "files" / "templates"
    assert shipped.is_symlink(), "charts/locust-operator/files/templates must link to templates/"
    assert shipped.resolve() == (REPO / "templates").resolve()
    assert {p.name for p in shipped.glob("*.yaml.j2")} >= set(TEMPLATE_NAMES)


def _leaf_paths(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _leaf_paths(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_every_values_key_has_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        if re.match(r"^\s*[\w.-]+:", line):
            previous = lines[i - 1].strip() if i else ""
            if not previous.startswith("#"):
                missing.append(f"{i + 1}: {line.strip()}")
    assert not missing, "values.yaml keys without a comment line above:\n" + "\n".join(missing)


def test_docs_values_table_lists_every_key() -> None:
    docs = (REPO / "docs" / "chart.md").read_text()
    missing = [p for p in _leaf_paths(VALUES) if f"`{p}`" not in docs]
    assert not missing, f"docs/chart.md values table lacks: {missing}"


@pytest.mark.parametrize("name", ["lintconf.yaml", "chart_schema.yaml"])
def test_ct_config_copies_match_the_pinned_chart_testing(helm: str, name: str) -> None:
    """.ct/ holds copies of the pinned ct's etc/ files (scripts/cluster build
    puts the originals in <cache key>/ct-etc/ next to bin/)."""
    original = Path(helm).parent.parent / "ct-etc" / name
    assert original.is_file(), f"{original} missing: run `scripts/cluster build`"
    assert (REPO / ".ct" / name).read_bytes() == original.read_bytes(), (
        f"resync with: cp {original} .ct/{name}"
    )
