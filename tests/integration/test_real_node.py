"""The real node of ``scripts/cluster up --real-node``: real containers.

containerd + runc run the pods, kube-proxy programs Services, CoreDNS answers
``cluster.local``, kubelet serves logs. Every test here uses the
``real_node_cluster`` fixture (a cluster of its own, started with
``--real-node``; see tests/integration/conftest.py) and the test image built
from ``realnode_tool/`` (one static Go binary). A machine without the kernel
features fails these tests with ``up``'s message naming the missing one; they
are never skipped.
"""

from __future__ import annotations

import json
import secrets
import subprocess

import pytest

from .conftest import Cluster

pytestmark = pytest.mark.real_node

REAL_NODE = "real-node"
NETNS = "locust-rn"


def pod(name: str, image: str, args: list[str], labels: dict[str, str] | None = None, **spec) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "main", "image": image, "imagePullPolicy": "Never", "args": args}
                ],
                **spec,
            },
        }
    )


def phase(cluster: Cluster, ns: str, name: str) -> str:
    return cluster.kubectl_json("-n", ns, "get", "pod", name)["status"].get("phase", "")


def wait_done(cluster: Cluster, ns: str, name: str, timeout: float = 120) -> str:
    return cluster.wait_for(
        lambda: (p := phase(cluster, ns, name)) in ("Succeeded", "Failed") and p,
        timeout=timeout,
        what=f"pod {ns}/{name} to terminate",
    )


def run_to_completion(cluster: Cluster, ns: str, image: str, args: list[str]) -> tuple[str, str]:
    """Run a pod with ``args``; return (phase, log)."""
    name = f"run-{secrets.token_hex(3)}"
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=pod(name, image, args))
    result = wait_done(cluster, ns, name)
    return result, cluster.kubectl("-n", ns, "logs", name).stdout


def test_real_node_is_ready_and_kwok_is_tainted(real_node_cluster):
    node = real_node_cluster.kubectl_json("get", "node", REAL_NODE)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == real_node_cluster.versions["KUBERNETES_VERSION"]
    assert not node["spec"].get("taints")
    taint = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
    for kwok in real_node_cluster.kubectl_json("get", "nodes", "-l", "type=kwok")["items"]:
        assert taint in kwok["spec"]["taints"]


def test_namespace_has_no_way_out(real_node_cluster):
    """No default route in the cluster's network namespace: no packet can leave the machine."""
    ns = f"/run/netns/{NETNS}"
    routes = subprocess.run(["nsenter", f"--net={ns}", "ip", "-4", "route", "show", "default"],
                            capture_output=True, text=True, check=True).stdout
    assert routes == ""
    links = subprocess.run(["nsenter", f"--net={ns}", "ip", "-o", "link", "show"],
                           capture_output=True, text=True, check=True).stdout
    # lo, the node's veth pair, the pods' bridge (made with the first pod) and
    # the pods' veths: nothing else.
    names = {line.split(": ")[1].split("@")[0] for line in links.splitlines()}
    assert {"lo", "rn-node", "rn-peer"} <= names
    assert all(n in {"lo", "rn-node", "rn-peer", "rn0"} or n.startswith("veth") for n in names), names


def test_container_runs_to_completion_with_logs(real_node_cluster, real_node_namespace, real_node_image):
    c, ns = real_node_cluster, real_node_namespace
    result, log = run_to_completion(c, ns, real_node_image, ["echo", "hello", "from", "runc"])
    assert (result, log) == ("Succeeded", "hello from runc\n")
    p = c.kubectl_json("-n", ns, "get", "pods")["items"][0]
    assert p["spec"]["nodeName"] == REAL_NODE
    assert p["status"]["podIP"].startswith("198.18.0.")
    state = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (0, "Completed")


def test_failing_container_reports_its_exit_code(real_node_cluster, real_node_namespace, real_node_image):
    c, ns = real_node_cluster, real_node_namespace
    c.kubectl("-n", ns, "apply", "-f", "-", input=pod("fails", real_node_image, ["exit", "3"]))
    assert wait_done(c, ns, "fails") == "Failed"
    state = c.kubectl_json("-n", ns, "get", "pod", "fails")["status"]["containerStatuses"][0]["state"]
    assert (state["terminated"]["exitCode"], state["terminated"]["reason"]) == (3, "Error")
    assert c.kubectl("-n", ns, "logs", "fails").stdout == "exiting with 3\n"


def test_service_clusterip_and_dns_reach_a_pod(real_node_cluster, real_node_namespace, real_node_image):
    c, ns = real_node_cluster, real_node_namespace
    web = pod("web", real_node_image, ["serve", "8080"], {"app": "web"})
    c.kubectl("-n", ns, "apply", "-f", "-", input=web)
    c.kubectl("-n", ns, "create", "service", "clusterip", "web", "--tcp=80:8080")
    c.wait_for(lambda: phase(c, ns, "web") == "Running", what="web pod Running")
    ip = c.kubectl_json("-n", ns, "get", "service", "web")["spec"]["clusterIP"]
    assert ip.startswith("198.19.")

    result, log = run_to_completion(c, ns, real_node_image, ["get", f"http://{ip}/"])
    # A Service just made may refuse until the node's proxy rules have it (seconds): the
    # tool retries and says so on a line each, then gets the page.
    *retries, page = log.splitlines()
    assert (result, page) == ("Succeeded", "hello from web"), log
    assert all(line.endswith("(retrying)") for line in retries), log
    fqdn = f"web.{ns}.svc.cluster.local"
    result, log = run_to_completion(c, ns, real_node_image, ["lookup", fqdn])
    assert (result, log) == ("Succeeded", f"{ip}\n"), log
    result, log = run_to_completion(c, ns, real_node_image, ["get", f"http://{fqdn}/"])
    assert (result, log) == ("Succeeded", "hello from web\n"), log
    # The search path of the pod's resolv.conf: the short name works too.
    result, log = run_to_completion(c, ns, real_node_image, ["get", "http://web/"])
    assert (result, log) == ("Succeeded", "hello from web\n"), log


def test_no_dns_upstream(real_node_cluster, real_node_namespace, real_node_image):
    """CoreDNS answers cluster.local only: nothing is forwarded off the machine."""
    result, log = run_to_completion(
        real_node_cluster, real_node_namespace, real_node_image, ["lookup", "example.com"]
    )
    assert result == "Failed", log


def test_pod_reaches_the_api_server_through_the_kubernetes_service(
    real_node_cluster, real_node_namespace, real_node_image
):
    c, ns = real_node_cluster, real_node_namespace
    result, log = run_to_completion(c, ns, real_node_image, ["apiserver"])
    assert result == "Succeeded", log
    assert json.loads(log)["gitVersion"] == c.versions["KUBERNETES_VERSION"]


def test_kubectl_exec_reaches_the_container(real_node_cluster, real_node_namespace, real_node_image):
    c, ns = real_node_cluster, real_node_namespace
    c.kubectl("-n", ns, "apply", "-f", "-", input=pod("srv", real_node_image, ["serve", "8080"]))
    c.wait_for(lambda: phase(c, ns, "srv") == "Running", what="srv pod Running")
    out = c.kubectl("-n", ns, "exec", "srv", "--", "/realnode-tool", "get", "http://127.0.0.1:8080/").stdout
    assert out == "hello from srv\n"


def test_kwok_pods_still_run_on_kwok(real_node_cluster, real_node_namespace):
    """Pods that tolerate the kwok taint and select type=kwok stay simulated."""
    c, ns = real_node_cluster, real_node_namespace
    manifest = json.loads(pod("fake", "busybox:1.36", ["true"]))
    manifest["spec"]["nodeSelector"] = {"type": "kwok"}
    manifest["spec"]["tolerations"] = [
        {"key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"}
    ]
    c.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(manifest))
    c.wait_for(lambda: phase(c, ns, "fake") == "Running", what="kwok pod Running")
    assert c.kubectl_json("-n", ns, "get", "pod", "fake")["spec"]["nodeName"].startswith("kwok-node-")
