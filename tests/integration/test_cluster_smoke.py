"""Smoke tests proving the local control plane (scripts/cluster) is real.

Pods never run: kwok moves them through their phases (scripts/kwok/). All
waits poll with generous timeouts; nothing asserts on speed.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import textwrap
from pathlib import Path

EXIT_CODE_ANNOTATION = "locust-operator.test/exit-code"
KWOK_IGNORE_ANNOTATION = "locust-operator.test/kwok-ignore"


def job_manifest(name: str, annotations: dict[str, str] | None = None, backoff_limit: int = 0) -> str:
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                "backoffLimit": backoff_limit,
                "template": {
                    "metadata": {"annotations": annotations or {}},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "main", "image": "busybox:1.36", "command": ["true"]}
                        ],
                    },
                },
            },
        }
    )


def job_condition(cluster, namespace: str, name: str, condition: str) -> bool:
    job = cluster.kubectl_json("-n", namespace, "get", "job", name)
    return any(
        c["type"] == condition and c["status"] == "True"
        for c in job.get("status", {}).get("conditions", [])
    )


def job_pods(cluster, namespace: str, name: str) -> list[dict]:
    return cluster.kubectl_json("-n", namespace, "get", "pods", "-l", f"job-name={name}")["items"]


def test_nodes_are_ready(cluster):
    nodes = cluster.kubectl_json("get", "nodes", "-l", "type=kwok")["items"]
    assert nodes, "no kwok nodes"
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True"
        pods = node["status"]["allocatable"]["pods"]  # a quantity, e.g. "1k"
        assert (int(pods[:-1]) * 1000 if pods.endswith("k") else int(pods)) >= 110


def test_job_completes(cluster, namespace):
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=job_manifest("ok"))
    cluster.wait_for(
        lambda: job_condition(cluster, namespace, "ok", "Complete"),
        timeout=180,
        what="Job ok to be Complete",
    )
    (pod,) = job_pods(cluster, namespace, "ok")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["spec"]["nodeName"].startswith("kwok-node-")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0


def test_job_with_exit_code_annotation_fails(cluster, namespace):
    manifest = job_manifest("bad", annotations={EXIT_CODE_ANNOTATION: "1"})
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=manifest)
    cluster.wait_for(
        lambda: job_condition(cluster, namespace, "bad", "Failed"),
        timeout=180,
        what="Job bad to be Failed",
    )
    assert not job_condition(cluster, namespace, "bad", "Complete")
    pods = job_pods(cluster, namespace, "bad")
    assert len(pods) == 1  # backoffLimit 0: no retry
    assert pods[0]["status"]["phase"] == "Failed"
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 1


def test_garbage_collector_removes_dependants(cluster, namespace):
    cluster.kubectl("-n", namespace, "create", "configmap", "owner")
    uid = cluster.kubectl_json("-n", namespace, "get", "configmap", "owner")["metadata"]["uid"]
    dependant = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependant",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
            ],
        },
    }
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(dependant))
    cluster.kubectl("-n", namespace, "delete", "configmap", "owner", "--wait=false")
    cluster.wait_for(
        lambda: cluster.kubectl(
            "-n", namespace, "get", "configmap", "dependant", check=False
        ).returncode != 0,
        timeout=180,
        what="garbage collection of ConfigMap dependant",
    )


def test_deleting_job_removes_its_pods(cluster, namespace):
    manifest = job_manifest("gc", annotations={"pod-complete.stage.kwok.x-k8s.io/delay": "1h"})
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=manifest)
    cluster.wait_for(
        lambda: [p for p in job_pods(cluster, namespace, "gc") if p["status"].get("phase") == "Running"],
        timeout=180,
        what="a Running pod of Job gc",
    )
    cluster.kubectl("-n", namespace, "delete", "job", "gc", "--cascade=background", "--wait=false")
    cluster.wait_for(
        lambda: not job_pods(cluster, namespace, "gc"),
        timeout=180,
        what="pods of the deleted Job gc to disappear",
    )


def test_deployment_becomes_available(cluster, namespace):
    cluster.kubectl("-n", namespace, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")
    cluster.wait_for(
        lambda: cluster.kubectl_json("-n", namespace, "get", "deployment", "web")["status"].get(
            "availableReplicas"
        )
        == 2,
        timeout=180,
        what="Deployment web to have 2 available replicas",
    )


def test_service_gets_cluster_ip(cluster, namespace):
    cluster.kubectl("-n", namespace, "create", "service", "clusterip", "svc", "--tcp=8089:8089")
    ip = cluster.kubectl_json("-n", namespace, "get", "service", "svc")["spec"]["clusterIP"]
    ports_env = (cluster.cluster_dir or cluster.kubeconfig.parent) / "ports.env"
    settings = dict(line.split("=", 1) for line in ports_env.read_text().split())
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(settings["SERVICE_CIDR"])
    assert ipaddress.ip_network(settings["SERVICE_CIDR"]).subnet_of(ipaddress.ip_network("198.18.0.0/15"))


def test_kubectl_reports_pinned_server_version(cluster):
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    expected = cluster.versions["KUBERNETES_VERSION"]
    assert version["serverVersion"]["gitVersion"] == expected
    assert version["clientVersion"]["gitVersion"] == expected
    major, minor = expected.lstrip("v").split(".")[:2]
    assert (version["serverVersion"]["major"], version["serverVersion"]["minor"]) == (major, minor)


def test_helm_talks_to_cluster(cluster, namespace, tmp_path: Path):
    assert cluster.versions["HELM_VERSION"] in cluster.helm("version", "--short").stdout
    cluster.helm("list", "--all-namespaces")

    chart = tmp_path / "smoke"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: v2
            name: smoke
            version: 0.1.0
            kubeVersion: ">=1.34.0-0"
            """
        )
    )
    (chart / "templates" / "cm.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Release.Name }}-cm
            data:
              kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
            """
        )
    )
    # Offline rendering uses helm's built-in default kube version (built to match).
    assert "v1.34" in cluster.helm("template", "x", str(chart)).stdout
    cluster.helm("install", "smoke", str(chart), "-n", namespace, "--wait", "--timeout", "2m")
    releases = json.loads(cluster.helm("list", "-n", namespace, "-o", "json").stdout)
    assert [r["name"] for r in releases] == ["smoke"]
    cm = cluster.kubectl_json("-n", namespace, "get", "configmap", "smoke-cm")
    assert cm["data"]["kubeVersion"] == cluster.versions["KUBERNETES_VERSION"]


def test_service_account_token_authenticates(cluster, namespace):
    token = cluster.kubectl("-n", namespace, "create", "token", "default").stdout.strip()
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == f"system:serviceaccount:{namespace}:default"
    whoami = json.loads(
        cluster.kubectl("--token", token, "auth", "whoami", "-o", "json").stdout
    )
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:default"
    # Authenticated but not authorized: RBAC denies, which proves the token was accepted.
    denied = cluster.kubectl("--token", token, "get", "pods", "-n", namespace, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()


def test_kwok_ignore_annotation_leaves_pod_to_the_test(cluster, namespace):
    def pod(name: str, annotations: dict[str, str]) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
        }

    items = {"apiVersion": "v1", "kind": "List", "items": [
        pod("ignored", {KWOK_IGNORE_ANNOTATION: "true"}),
        pod("canary", {}),
    ]}
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(items))
    get = lambda name: cluster.kubectl_json("-n", namespace, "get", "pod", name)  # noqa: E731
    cluster.wait_for(lambda: get("canary")["status"].get("phase") == "Running",
                     timeout=180, what="pod canary Running")
    ignored = cluster.wait_for(lambda: (p := get("ignored"))["spec"].get("nodeName") and p,
                               timeout=180, what="pod ignored scheduled")
    assert ignored["status"]["phase"] == "Pending"
    assert "podIP" not in ignored["status"]

    # Stand in for a kubelet reporting a broken container config.
    status = {"status": {"containerStatuses": [{
        "name": "main", "image": "busybox:1.36", "imageID": "", "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "CreateContainerConfigError",
                              "message": 'secret "missing" not found'}},
    }]}}
    cluster.kubectl("-n", namespace, "patch", "pod", "ignored", "--subresource=status",
                    "--type=merge", "-p", json.dumps(status))
    waiting = get("ignored")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"


def test_namespace_deletion_finishes(cluster):
    ns = f"it-ns-deletion-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", ns)
    cluster.wait_for(
        lambda: cluster.kubectl("-n", ns, "get", "sa", "default", check=False).returncode == 0,
        timeout=60, what="default ServiceAccount",
    )
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=job_manifest("j"))
    cluster.wait_for(lambda: job_pods(cluster, ns, "j"), timeout=180, what="job pod")
    cluster.kubectl("delete", "namespace", ns, "--wait=false")
    cluster.wait_for(
        lambda: cluster.kubectl("get", "namespace", ns, check=False).returncode != 0,
        timeout=300,
        what=f"namespace {ns} to be deleted",
    )


def test_api_client_fixture(api, namespace):
    from kubernetes import client

    names = [ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items]
    assert namespace in names


def test_kubectl_logs_serves_a_chosen_file(cluster, namespace, tmp_path: Path):
    """kwok serves a test's file as a container's log (pods/log subresource),
    before and after the pod has terminated; see Cluster.serve_pod_log."""
    job = json.loads(job_manifest("logs"))
    job["spec"]["template"]["spec"]["containers"] = [
        {"name": "master", "image": "locustio/locust:2.37.0"},
        {"name": "sidecar", "image": "busybox:1.36"},
    ]
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(job))
    (pod,) = cluster.wait_for(
        lambda: [p for p in job_pods(cluster, namespace, "logs") if p["spec"].get("nodeName")],
        timeout=180,
        what="the pod of Job logs to be scheduled",
    )
    name = pod["metadata"]["name"]
    master = "[2026-01-01 00:00:00,000] master/INFO/locust.main: starting\n" + json.dumps(
        {"stats": [{"name": "/", "num_requests": 10, "num_failures": 0}]}, indent=2
    ) + "\n"
    sidecar = "first line\nlast line without a newline"
    (tmp_path / "master.log").write_text(master)
    (tmp_path / "sidecar.log").write_text(sidecar)
    cluster.serve_pod_log(namespace, name, "master", tmp_path / "master.log")
    cluster.serve_pod_log(namespace, name, "sidecar", tmp_path / "sidecar.log")

    def logs(*args: str) -> str:
        return cluster.kubectl("-n", namespace, "logs", name, *args).stdout

    assert logs("-c", "master") == master
    assert logs("-c", "sidecar") == sidecar
    assert logs("-c", "master", "--tail=2") == "".join(master.splitlines(keepends=True)[-2:])
    assert logs("-c", "master", "--limit-bytes=10") == master[:10]
    assert logs("-c", "sidecar", "--tail=1") == "last line without a newline"

    # kwok moves the Job's pod to Succeeded (KWOK_POD_COMPLETE_DELAY); the log stays.
    cluster.wait_for(
        lambda: job_condition(cluster, namespace, "logs", "Complete"),
        timeout=180,
        what="Job logs to be Complete",
    )
    assert cluster.kubectl_json("-n", namespace, "get", "pod", name)["status"]["phase"] == "Succeeded"
    assert logs("-c", "master") == master
    path = f"/api/v1/namespaces/{namespace}/pods/{name}/log?container=master&limitBytes=20"
    assert cluster.kubectl("get", "--raw", path).stdout == master[:20]
