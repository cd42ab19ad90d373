"""`helm install` the chart, run the controller with the chart's ServiceAccount, run a test.

The controller runs as a local process (there is no image to pull here) but
with a TokenRequest token of the chart's ServiceAccount, so the chart's RBAC
is exactly what is exercised; kwok stands in for the Deployment's pod.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import Cluster
from tests.support.examples import EXAMPLES, ROOT
from tests.support.operator import OperatorProcess

CHART = ROOT / "charts" / "locust-operator"


def _token_kubeconfig(cluster: Cluster, namespace: str, service_account: str, path: Path) -> Path:
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    token = cluster.kubectl("-n", namespace, "create", "token", service_account,
                            "--duration=1h").stdout.strip()
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": admin["clusters"][0]["name"],
                                                "user": service_account}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _release_objects(cluster: Cluster, release: str, namespaces: list[str]) -> list[str]:
    selector = f"app.kubernetes.io/instance={release}"
    found = [f"{o['kind']}/{o['metadata']['name']}" for o in cluster.kubectl_json(
        "get", "clusterroles,clusterrolebindings", "-l", selector)["items"]]
    for namespace in namespaces:
        found += [f"{o['kind']}/{namespace}/{o['metadata']['name']}" for o in cluster.kubectl_json(
            "-n", namespace, "get", "deployments,serviceaccounts,configmaps,services,roles,rolebindings",
            "-l", selector)["items"]]
    return found


def test_helm_install_run_a_test_and_uninstall(cluster: Cluster, namespace: str, tests_namespace: str,
                                               tmp_path: Path) -> None:
    release = "lo-e2e"
    install = cluster.helm("install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "120s",
                           "--set", f"watchNamespaces={{{tests_namespace}}}",
                           "--set", "config.podHealthGraceSeconds=30")
    assert "get lotest -w" in install.stdout  # NOTES.txt tells the user how to watch a test
    crd = cluster.kubectl_json("get", "crd", "locusttests.locust.io")
    assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
    deployment = cluster.kubectl_json("-n", namespace, "get", "deployment", release + "-locust-operator")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--namespace", tests_namespace]

    # The controller reads the config the chart wrote, with the chart's ServiceAccount token.
    fullname = release + "-locust-operator"
    configmap = cluster.kubectl_json("-n", namespace, "get", "configmap", fullname + "-config")
    kubeconfig = _token_kubeconfig(cluster, namespace, fullname, tmp_path / "sa.kubeconfig")
    operator = OperatorProcess(cluster, [tests_namespace], tmp_path,
                               config_text=configmap["data"]["config.yaml"],
                               env={"KUBECONFIG": str(kubeconfig)})
    try:
        operator.start()
        cluster.kubectl("-n", tests_namespace, "apply", "-f", str(EXAMPLES / "configmaps.yaml"),
                        "-f", str(EXAMPLES / "minimal.yaml"))
        cluster.wait_for(lambda: cluster.kubectl_json("-n", tests_namespace, "get", "lotest", "minimal")
                         .get("status", {}).get("phase") == "Succeeded",
                         timeout=180, what="minimal Succeeded under the chart's RBAC")
        assert operator.metric("locust_operator_errors_total") == 0
        assert "Forbidden" not in operator.log()
    finally:
        operator.stop()
        print(operator.log()[-4000:])

    # The token is least-privilege: no Secrets, nothing beyond the operator's needs.
    def can_i(*args: str) -> str:
        return cluster.run(str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig),
                           "auth", "can-i", *args, check=False).stdout.strip()

    # delete of LocustTests and ConfigMaps: a schedule's old runs and reports (config.schedules).
    denied = [("get", "secrets"), ("list", "secrets"), ("get", "configmaps"), ("list", "configmaps"),
              ("delete", "jobs"), ("create", "deployments"), ("update", "locusttests"), ("create", "pods"),
              ("*", "*"), ("deletecollection", "locusttests"), ("create", "customresourcedefinitions")]
    for verb, resource in denied:
        assert can_i(verb, resource, "-n", tests_namespace) == "no", (verb, resource)
    assert can_i("create", "jobs", "-n", "default") == "no"  # not a watched namespace
    assert can_i("list", "secrets", "-A") == "no"
    for allowed in (["create", "jobs", "-n", tests_namespace], ["patch", "locusttests/status", "-n",
                                                                   tests_namespace]):
        assert can_i(*allowed) == "yes", allowed
    secret_read = cluster.run(str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig),
                              "-n", tests_namespace, "get", "secret", "demo-credentials", check=False)
    assert secret_read.returncode != 0 and "Forbidden" in secret_read.stderr
    assert base64.b64encode(b"replace-me").decode() not in secret_read.stdout

    assert _release_objects(cluster, release, [namespace, tests_namespace])
    cluster.helm("uninstall", release, "-n", namespace, "--wait")
    leftovers = _release_objects(cluster, release, [namespace, tests_namespace])
    assert leftovers == [], f"helm uninstall left {leftovers}"
    # Documented: the CRD (and so every LocustTest) stays after uninstall.
    assert cluster.kubectl("get", "crd", "locusttests.locust.io", check=False).returncode == 0
    assert _helm_list(cluster, namespace) == []


def _helm_list(cluster: Cluster, namespace: str) -> list[Any]:
    listed: list[Any] = yaml.safe_load(cluster.helm("list", "-n", namespace, "-o", "yaml").stdout) or []
    return listed
