"""`helm upgrade` from the previous chart version, with a test running: the
CRD upgrade step of docs/versioning.md, then the upgraded controller keeps
tracking the test to its end, without recreating its children.

The previous chart comes from git: the newest `v*` tag other than this
version's, else PREVIOUS_CHART_COMMIT (the chart before the first release's
options). As in test_chart_e2e.py, the controller runs as a local process with
a token of the chart's ServiceAccount and the config the chart wrote; stopping
it before `helm upgrade` and starting it with the upgraded config plays the
Deployment's Recreate rollout (kwok stands in for the pod).
"""

from __future__ import annotations

import subprocess
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tests.integration.test_chart_e2e import _token_kubeconfig
from tests.support.cluster import Cluster
from tests.support.examples import EXAMPLES, ROOT
from tests.support.operator import OperatorProcess

CHART = ROOT / "charts" / "locust-operator"
PREVIOUS_CHART_COMMIT = "a5dff0a0588b270bacfd735524a5ad7a2f1ce38e"
# kwok keeps the test's pods Running this long: past the upgrade and restart.
POD_RUN_TIME = "30s"


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=True, timeout=60)


def previous_chart(dest: Path) -> tuple[str, Path]:
    """(git ref, directory) of the previous chart version, extracted from git."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    tags = _git("tag", "--list", "v*", "--sort=-v:refname", "--merged", "HEAD").stdout.decode().split()
    ref = next((t for t in tags if t != f"v{version}"), PREVIOUS_CHART_COMMIT)
    archive = dest / "chart.tar"
    archive.write_bytes(_git("archive", "--format=tar", ref, "charts/locust-operator").stdout)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return ref, dest / "charts" / "locust-operator"


def _start_operator(cluster: Cluster, namespace: str, release: str, tests_namespace: str, workdir: Path
                    ) -> OperatorProcess:
    """The controller with the release's current config and ServiceAccount."""
    fullname = release + "-locust-operator"
    workdir.mkdir()
    configmap = cluster.kubectl_json("-n", namespace, "get", "configmap", fullname + "-config")
    kubeconfig = _token_kubeconfig(cluster, namespace, fullname, workdir / "sa.kubeconfig")
    return OperatorProcess(cluster, [tests_namespace], workdir, config_text=configmap["data"]["config.yaml"],
                           env={"KUBECONFIG": str(kubeconfig)}).start()


def _children(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    """Kind/name -> uid of the test's Jobs and Service."""
    items = cluster.kubectl_json("-n", namespace, "get", "jobs,services",
                                 "-l", f"performance-test-name={name}")["items"]
    return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["uid"] for o in items}


def _status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = cluster.kubectl_json("-n", namespace, "get", "lotest", name).get("status", {})
    return status


def test_helm_upgrade_keeps_a_running_test_tracked(cluster: Cluster, namespace: str, tests_namespace: str,
                                                   tmp_path: Path) -> None:
    ref, old_chart = previous_chart(tmp_path)
    release = "lo-upgrade"
    values = ["--set", f"watchNamespaces={{{tests_namespace}}}",
              "--set", "config.podHealthGraceSeconds=30"]
    cluster.helm("install", release, str(old_chart), "-n", namespace, "--wait", "--timeout", "120s",
                 *values)
    operator = _start_operator(cluster, namespace, release, tests_namespace, tmp_path / "before")
    try:
        cluster.kubectl("-n", tests_namespace, "apply", "-f", str(EXAMPLES / "configmaps.yaml"))
        test = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
        test["metadata"]["name"] = "upgrade"
        for role in ("master", "worker"):
            test["spec"][role]["annotations"] = {"pod-complete.stage.kwok.x-k8s.io/delay": POD_RUN_TIME}
        cluster.kubectl("-n", tests_namespace, "apply", "-f", "-", input=yaml.safe_dump(test))
        cluster.wait_for(lambda: _status(cluster, tests_namespace, "upgrade").get("phase") == "Running",
                         timeout=120, what="upgrade Running under the previous chart")
        children = _children(cluster, tests_namespace, "upgrade")
        assert len(children) == 3, children
    finally:
        operator.stop()
        print(f"--- operator log, chart {ref} ---\n{operator.log()[-3000:]}")

    # The documented CRD step (docs/versioning.md), then the upgrade, with new options on.
    crd = cluster.kubectl("apply", "--server-side", "-f", str(CHART / "crds"), check=False)
    if crd.returncode != 0:
        assert "conflict" in crd.stderr.lower(), crd.stderr
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/locusttests.locust.io")
    cluster.helm("upgrade", release, str(CHART), "-n", namespace, "--wait", "--timeout", "120s", *values,
                 "--set", "podDisruptionBudget.enabled=true",
                 "--set", "networkPolicy.enabled=true,networkPolicy.apiServer.cidrs={127.0.0.1/32}")
    history = yaml.safe_load(cluster.helm("history", release, "-n", namespace, "-o", "yaml").stdout)
    assert [h["status"] for h in history] == ["superseded", "deployed"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert history[-1]["chart"] == f"locust-operator-{chart['version']}"
    fullname = release + "-locust-operator"
    for kind in ("deployment", "poddisruptionbudget", "networkpolicy"):
        cluster.kubectl("-n", namespace, "get", kind, fullname)

    # The test is still running, and the upgraded controller tracks it to its end.
    assert _status(cluster, tests_namespace, "upgrade")["phase"] == "Running"
    jobs = cluster.kubectl_json("-n", tests_namespace, "get", "jobs", "-l", "performance-test-name=upgrade")
    assert any(j["status"].get("active") for j in jobs["items"]), (
        f"the pods completed before the upgraded controller started: raise POD_RUN_TIME ({POD_RUN_TIME})")
    operator = _start_operator(cluster, namespace, release, tests_namespace, tmp_path / "after")
    try:
        cluster.wait_for(lambda: _status(cluster, tests_namespace, "upgrade").get("phase") == "Succeeded",
                         timeout=180, what="upgrade Succeeded under the upgraded chart")
        assert operator.metric("locust_operator_errors_total") == 0
    finally:
        operator.stop()
        print(f"--- operator log, upgraded chart ---\n{operator.log()[-3000:]}")
    assert _children(cluster, tests_namespace, "upgrade") == children  # none recreated
    cluster.helm("uninstall", release, "-n", namespace, "--wait")
