"""spec.webUI on the local control plane: the routes as the API server takes them, and as
the operator creates them (owned by the test) only when its config allows.

No ingress controller or Gateway runs here (kwok has no data plane): what is proven is
that the API server accepts the rendered Ingress and HTTPRoute (the HTTPRoute CRD from
the Gateway API module) and that the operator makes them; a real master honouring the
base path is proven on the real node (test_real_e2e.py) and with Locust itself
(tests/locust/test_web_ui_real.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import render
from tests.support.cluster import Cluster
from tests.support.examples import EXAMPLES, load_example
from tests.support.gateway_api import httproute_crd
from tests.support.operator import OperatorProcess, install_crd


@pytest.fixture(scope="module", autouse=True)
def crds(cluster: Cluster) -> None:
    install_crd(cluster)
    cluster.kubectl("apply", "--server-side", "-f", str(httproute_crd()))
    cluster.wait_for(lambda: cluster.kubectl(
        "get", "crd/httproutes.gateway.networking.k8s.io", "-o",
        "jsonpath={.status.conditions[?(@.type=='Established')].status}").stdout == "True",
        timeout=60, what="the HTTPRoute CRD established")


def _example(namespace: str, name: str = "web-ui") -> dict[str, Any]:
    test = load_example("web-ui")
    test["metadata"].update(name=name, namespace=namespace)
    test["spec"]["webUI"]["keepAfterRun"] = 5
    return test


def test_the_api_server_accepts_every_rendered_object(cluster: Cluster, namespace: str) -> None:
    objects = render(_example(namespace), OperatorConfig())
    assert [o["kind"] for o in objects] == ["Service", "Job", "Job", "Ingress", "HTTPRoute"]
    for obj in objects:
        done = cluster.kubectl("create", "-n", namespace, "--dry-run=server", "-o", "json", "-f", "-",
                               input=yaml.safe_dump(obj), check=False)
        assert done.returncode == 0, f"{obj['kind']}: {done.stderr}"
    route = yaml.safe_load(cluster.kubectl("create", "-n", namespace, "--dry-run=server", "-o", "yaml",
                                           "-f", "-", input=yaml.safe_dump(objects[4])).stdout)
    # The API server defaulted it like any HTTPRoute (the CRD's own schema ran).
    assert route["spec"]["rules"][0]["matches"][0]["path"] == {
        "type": "PathPrefix", "value": f"/locust/{namespace}/web-ui"}


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path,
             request: pytest.FixtureRequest) -> Iterator[OperatorProcess]:
    process = OperatorProcess(cluster, [namespace], tmp_path, config_text=request.param)
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "configmaps.yaml"))
    process.start()
    yield process
    cluster.kubectl("-n", namespace, "delete", "locusttests", "--all", "--timeout=60s", check=False)
    process.stop()
    print(f"--- operator log ({namespace}) ---\n{process.log()[-4000:]}")


def _apply(cluster: Cluster, test: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(test))


@pytest.mark.parametrize("operator", ["webRoutes: true\n"], indirect=True)
def test_the_operator_creates_the_routes_owned_by_the_test(cluster: Cluster, namespace: str,
                                                          operator: OperatorProcess) -> None:
    _apply(cluster, _example(namespace))
    test = cluster.kubectl_json("-n", namespace, "get", "locusttest", "web-ui")
    for kind in ("ingress", "httproute.gateway.networking.k8s.io"):

        def made(kind: str = kind) -> bool:
            return cluster.kubectl("-n", namespace, "get", kind, "web-ui-web", check=False).returncode == 0

        cluster.wait_for(made, timeout=60, what=f"{kind} web-ui-web")
        route = cluster.kubectl_json("-n", namespace, "get", kind, "web-ui-web")
        owner = route["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "LocustTest", "web-ui", test["metadata"]["uid"], True)
    ingress = cluster.kubectl_json("-n", namespace, "get", "ingress", "web-ui-web")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == f"/locust/{namespace}/web-ui"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-secret"] == "locust-htpasswd"
    master = cluster.kubectl_json("-n", namespace, "get", "job", "web-ui-master")
    args = master["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--web-base-path=/locust/{namespace}/web-ui" in args
    assert args[args.index("--autoquit") + 1] == "60"  # keepAfterRun 5 < the autoquit of 60


@pytest.mark.parametrize("operator", [""], indirect=True)
def test_routes_refused_by_the_operator_fail_the_test_before_any_pod(cluster: Cluster, namespace: str,
                                                                    operator: OperatorProcess) -> None:
    _apply(cluster, _example(namespace))

    def failed() -> dict[str, Any] | None:
        test: dict[str, Any] = cluster.kubectl_json("-n", namespace, "get", "locusttest", "web-ui")
        return test if (test.get("status") or {}).get("phase") == "Failed" else None

    test = cluster.wait_for(failed, timeout=60, what="web-ui Failed")
    assert test is not None
    ready = next(c for c in test["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "WebRoutesOff", "spec.webUI.ingress: this operator does not create web UI routes (its "
        "chart's config.webRoutes is false); remove the route or ask its admins")
    assert cluster.kubectl_json("-n", namespace, "get", "jobs,ingresses")["items"] == []
