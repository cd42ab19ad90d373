"""The controller on the real local control plane: lifecycle, failure, drift, restart, health.

Pods never really run here: kwok moves them Running -> Succeeded (or Failed,
for pods annotated `locust-operator.test/exit-code`), and the health tests
stand in for the kubelet, which kwok lacks, by patching pod status by hand.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch

from locust_operator.api.config import load_config
from locust_operator.build.render import render
from tests.support.cluster import Cluster
from tests.support.examples import EXAMPLES, load_example
from tests.support.operator import OperatorProcess, install_crd
from tests.support.timeline import apiserver_writes

GROUP, VERSION, PLURAL = "locust.io", "v2", "locusttests"
GRACE_SECONDS = 3


@pytest.fixture(scope="module", autouse=True)
def crd(cluster: Cluster) -> None:
    install_crd(cluster)


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """A controller watching only this test's namespace (started by the test)."""
    process = OperatorProcess(cluster, [namespace], tmp_path,
                              config_text=f"podHealthGraceSeconds: {GRACE_SECONDS}\n")
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "configmaps.yaml"))
    yield process
    if process.proc is not None:  # live tests hold the loop's finalizer: delete them first
        cluster.kubectl("-n", namespace, "delete", "locusttests", "--all", "--timeout=60s", check=False)
    process.stop()
    print(f"--- operator log ({namespace}) ---\n{process.log()[-6000:]}")


def _test(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster.kubectl_json("-n", namespace, "get", "locusttest", name)
    return result


def _apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def _phase(cluster: Cluster, namespace: str, name: str) -> str | None:
    return _test(cluster, namespace, name).get("status", {}).get("phase")


def _wait_phase(cluster: Cluster, namespace: str, name: str, phase: str,
                timeout: float = 120) -> dict[str, Any]:
    cluster.wait_for(lambda: _phase(cluster, namespace, name) == phase, timeout=timeout,
                     what=f"{name} phase {phase}")
    return _test(cluster, namespace, name)


def _conditions(test: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in test["status"]["conditions"]}


def _events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    events = cluster.kubectl_json("-n", namespace, "get", "events",
                                  "--field-selector", f"involvedObject.name={name},"
                                  "involvedObject.kind=LocustTest")["items"]
    return sorted(events, key=lambda e: e["metadata"]["creationTimestamp"])


def _is_subset(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` (from the cluster) differs from what was rendered."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: not a mapping"]
        return [d for k, v in expected.items() for d in _is_subset(v, actual.get(k), f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {actual!r} != {expected!r}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in _is_subset(e, a, f"{path}[{i}]")]
    return [] if expected == actual else [f"{path}: {actual!r} != {expected!r}"]


class PhaseRecorder:
    """Records every phase the API server stores, through a watch (no polling gaps)."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self.phases: list[str | None] = []
        self._watch = watch.Watch()
        # Listed here, watched from this version in the thread: no change made after
        # __init__ returns can be missed, however late the thread connects.
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, field_selector=f"metadata.name={name}")
        version = listed["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, args=(api, namespace, name, version),
                                        daemon=True)
        self._thread.start()

    def _run(self, api: client.ApiClient, namespace: str, name: str, version: str) -> None:
        custom = client.CustomObjectsApi(api)
        stream = self._watch.stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                                    PLURAL, field_selector=f"metadata.name={name}", timeout_seconds=300,
                                    resource_version=version)
        try:
            for event in stream:
                phase = event["object"].get("status", {}).get("phase")
                if not self.phases or self.phases[-1] != phase:
                    self.phases.append(phase)
        except Exception:  # the connection ends when stop() is called
            pass

    def stop(self) -> list[str | None]:
        self._watch.stop()
        return self.phases


def _apiserver_writes(cluster: Cluster) -> dict[str, float]:
    """Write requests the API server counted, by resource (all clients)."""
    return apiserver_writes(cluster.kubectl("get", "--raw", "/metrics").stdout)


def test_full_lifecycle(cluster: Cluster, namespace: str, operator: OperatorProcess, api: Any) -> None:
    operator.start()
    writes_before = _apiserver_writes(cluster)
    recorder = PhaseRecorder(api, namespace, "minimal")
    manifest = load_example("minimal")
    _apply(cluster, namespace, manifest)

    done = _wait_phase(cluster, namespace, "minimal", "Succeeded")
    phases = [p for p in recorder.stop() if p is not None]
    # Each phase once, in order. Pending may never be written: the status is patched only
    # on change, and on kwok the master can be ready before the first status is derived
    # (seen once in CI: the first write was Running, 200 ms after the create).
    assert phases in (["Pending", "Running", "Succeeded"], ["Running", "Succeeded"]), phases

    # The children are exactly what `render` previews for the stored test.
    config = load_config(operator.config_path, env={})
    for rendered in render(_test(cluster, namespace, "minimal"), config):
        kind, name = rendered["kind"].lower(), rendered["metadata"]["name"]
        live = cluster.kubectl_json("-n", namespace, "get", kind, name)
        if kind == "job":
            # The one field the operator may change: a worker Job still active when the
            # master exited gets a deadline 30 s on (its workers quit with the master).
            ceiling = rendered["spec"].pop("activeDeadlineSeconds")
            assert live["spec"]["activeDeadlineSeconds"] <= ceiling
        assert _is_subset(rendered, live) == [], f"{kind}/{name} differs from render"
        (owner,) = live["metadata"]["ownerReferences"]
        assert owner["controller"] is True and owner["uid"] == done["metadata"]["uid"]

    # Kopf keeps no bookkeeping annotations (there are no change handlers), and the
    # finalizer that stops a live test's loop goes away with the loop.
    annotations = done["metadata"].get("annotations", {})
    assert not any("kopf.zalando.org" in k or k.startswith("operator.locust.io/")
                   for k in annotations), annotations
    cluster.wait_for(lambda: not _test(cluster, namespace, "minimal")["metadata"].get("finalizers"),
                     timeout=30, what="finalizer removed once the test finished")

    status = done["status"]
    assert status["observedGeneration"] == 1
    assert status["expectedWorkers"] == 2
    assert status["startTime"] <= status["completionTime"]
    conditions = _conditions(done)
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("True", "ResourcesCreated")
    assert (conditions["TestCompleted"]["status"], conditions["TestCompleted"]["reason"]) == \
        ("True", "TestSucceeded")
    assert conditions["WorkersConnected"]["reason"] == "AllWorkersConnected"
    assert conditions["PodsHealthy"]["status"] == "True"
    assert "SpecDrifted" not in conditions

    reasons = [e["reason"] for e in _events(cluster, namespace, "minimal")]
    assert reasons.count("Created") == 1  # one event names all three children
    assert reasons.index("TestStarted") < reasons.index("TestCompleted")
    assert "LocustTest created: 'minimal'" in operator.log()
    # Quiet logs for normal life: a test that ended normally leaves no WARNING (Kopf's
    # "Daemon 'test_loop' is cancelled. Will escalate." once came with every test).
    warnings = [line for line in operator.log().splitlines() if "WARNING" in line]
    assert warnings == [], warnings

    table = cluster.kubectl("-n", namespace, "get", "lotest", "minimal").stdout
    assert table.splitlines()[0].split() == ["NAME", "PHASE", "STATE", "WORKERS", "CONNECTED", "USERS",
                                             "RPS", "FAIL", "%", "AGE"]
    assert "Succeeded" in table
    wide = cluster.kubectl("-n", namespace, "get", "lotest", "minimal", "-o", "wide").stdout
    assert "IMAGE" in wide and "locustio/locust:2.43.3" in wide
    assert "VERDICT" in wide and "TestSucceeded" in wide

    # No write storms: every write the operator sent during the whole lifecycle.
    writes = operator.metric("locust_operator_api_writes_total")
    status_patches = operator.metric("locust_operator_api_writes_total", 'resource="locusttests/status"')
    print(f"API writes for one lifecycle: {writes:.0f} (status patches {status_patches:.0f})")
    assert status_patches <= 4
    assert writes <= 3 + 4 + 5  # creates, status patches, events
    # Cross-check on the API server: only the operator writes LocustTests after the
    # test's own create (kubectl apply); Kopf's finalizer patches are included here.
    after = _apiserver_writes(cluster)
    test_writes = {k: after.get(k, 0) - writes_before.get(k, 0) for k in after
                   if k.startswith("locusttests")}
    print(f"API server writes on locusttests during the lifecycle: {test_writes}")
    assert test_writes.get("locusttests/status", 0) == status_patches
    assert test_writes.get("locusttests", 0) <= 3  # the apply itself + the finalizer added, removed


def test_failed_master_fails_the_test(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    operator.start()
    manifest = load_example("minimal")
    manifest["metadata"]["name"] = "failing"
    manifest["spec"]["master"]["annotations"] = {"locust-operator.test/exit-code": "1"}
    _apply(cluster, namespace, manifest)
    failed = _wait_phase(cluster, namespace, "failing", "Failed")
    completed = _conditions(failed)["TestCompleted"]
    # Exit code 1 and no thresholds: Locust's own verdict (kwok serves no master log here).
    assert (completed["status"], completed["reason"]) == ("False", "LocustErrors")
    assert "exit code 1" in completed["message"]
    warnings = [e for e in _events(cluster, namespace, "failing") if e["type"] == "Warning"]
    assert "TestFailed" in [e["reason"] for e in warnings]


def test_update_is_ignored_and_delete_collects_children(cluster: Cluster, namespace: str,
                                                       operator: OperatorProcess) -> None:
    operator.start()
    manifest = load_example("minimal")
    manifest["metadata"]["name"] = "drift"
    manifest["spec"]["master"]["annotations"] = {"locust-operator.test/kwok-ignore": "true"}
    _apply(cluster, namespace, manifest)
    cluster.wait_for(lambda: cluster.kubectl("-n", namespace, "get", "job", "drift-worker",
                                             check=False).returncode == 0, what="worker Job")
    cluster.kubectl("-n", namespace, "patch", "locusttest", "drift", "--type=merge",
                    "-p", json.dumps({"spec": {"worker": {"replicas": 7}}}))

    def drifted() -> bool:
        cond = _conditions(_test(cluster, namespace, "drift")).get("SpecDrifted", {})
        return cond.get("reason") == "SpecChangeIgnored" and cond.get("status") == "True"

    cluster.wait_for(drifted, what="SpecDrifted condition")
    worker = cluster.kubectl_json("-n", namespace, "get", "job", "drift-worker")
    assert worker["spec"]["parallelism"] == 2  # unchanged
    assert _test(cluster, namespace, "drift")["status"]["observedGeneration"] == 2
    assert "Update operations on drift are not currently supported!" in operator.log()
    assert "SpecChangeIgnored" in [e["reason"] for e in _events(cluster, namespace, "drift")]

    cluster.kubectl("-n", namespace, "delete", "locusttest", "drift", "--wait=true")
    cluster.wait_for(lambda: not cluster.kubectl_json(
        "-n", namespace, "get", "jobs,services", "-l", "performance-test-name=drift")["items"],
        what="children garbage-collected")


def test_restart_between_service_and_jobs_creates_each_child_once(
        cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    operator.start(LOCUST_OPERATOR_FAILPOINT="after-service-created")
    manifest = load_example("minimal")
    manifest["metadata"]["name"] = "restart"
    _apply(cluster, namespace, manifest)
    assert operator.wait_exit() == 70
    assert cluster.kubectl("-n", namespace, "get", "service", "restart-master",
                           check=False).returncode == 0
    assert cluster.kubectl_json("-n", namespace, "get", "jobs")["items"] == []

    operator.start()
    _wait_phase(cluster, namespace, "restart", "Succeeded")
    children = cluster.kubectl_json("-n", namespace, "get", "jobs,services",
                                    "-l", "performance-test-name=restart")["items"]
    assert sorted(f"{c['kind']}/{c['metadata']['name']}" for c in children) == [
        "Job/restart-master", "Job/restart-worker", "Service/restart-master"]


def _jobs_ended(cluster: Cluster, namespace: str, name: str, timeout: float = 30) -> float:
    """Seconds until both Jobs of the test are finished with no active pod (terminal means
    stopped: the operator ended them with activeDeadlineSeconds); asserted on the Jobs."""
    start = time.monotonic()

    def ended() -> list[dict[str, Any]] | None:
        jobs: list[dict[str, Any]] = cluster.kubectl_json(
            "-n", namespace, "get", "jobs", "-l", f"performance-test-name={name}")["items"]
        done = [j for j in jobs if not j["status"].get("active") and any(
            c["type"] in ("Failed", "Complete") and c["status"] == "True"
            for c in j["status"].get("conditions", []))]
        return jobs if len(jobs) == 2 and done == jobs else None

    jobs = cluster.wait_for(ended, timeout=timeout, what=f"both Jobs of {name} ended")
    assert {j["spec"]["activeDeadlineSeconds"] for j in jobs} == {1}
    pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", f"performance-test-name={name}")
    assert [p["metadata"]["name"] for p in pods["items"]
            if p["status"].get("phase") in ("Pending", "Running")] == []
    return time.monotonic() - start


@pytest.mark.parametrize(("role", "waiting", "reason", "words"), [
    ("master", {"reason": "CreateContainerConfigError",
                "message": 'configmap "missing-locustfile" not found'},
     "ConfigurationError", 'configmap "missing-locustfile" not found'),
    ("worker", {"reason": "ImagePullBackOff",
                "message": 'Back-off pulling image "locustio/locust:no-such-tag"'},
     "ImagePullError", "locustio/locust:no-such-tag"),
])
def test_pods_that_cannot_start_fail_the_test(cluster: Cluster, namespace: str,
                                              operator: OperatorProcess, role: str,
                                              waiting: dict[str, str], reason: str, words: str) -> None:
    operator.start()
    manifest = load_example("minimal")
    manifest["metadata"]["name"] = "unhealthy"
    # kwok leaves these pods Pending; the test then plays the kubelet.
    for each in ("master", "worker"):
        manifest["spec"][each]["annotations"] = {"locust-operator.test/kwok-ignore": "true"}
    _apply(cluster, namespace, manifest)
    selector = f"performance-test-pod-name=unhealthy-{role}"
    pod = cluster.wait_for(lambda: cluster.kubectl_json("-n", namespace, "get", "pods", "-l",
                                                        selector)["items"], what="pod")[0]
    status = {"status": {"phase": "Pending", "containerStatuses": [{
        "name": f"unhealthy-{role}", "image": "locustio/locust", "imageID": "", "ready": False,
        "restartCount": 0, "state": {"waiting": waiting}}]}}
    cluster.kubectl("-n", namespace, "patch", "pod", pod["metadata"]["name"], "--subresource=status",
                    "--type=merge", "-p", json.dumps(status))

    failed = _wait_phase(cluster, namespace, "unhealthy", "Failed", timeout=60)
    health = _conditions(failed)["PodsHealthy"]
    assert (health["status"], health["reason"]) == ("False", reason)
    assert words in health["message"]
    assert words in _conditions(failed)["TestCompleted"]["message"]
    reasons = [e["reason"] for e in _events(cluster, namespace, "unhealthy")]
    assert "PodFailure" in reasons and "TestFailed" in reasons
    # Terminal means stopped: no pod of the failed test waits to start later.
    print(f"{reason}: Jobs ended {_jobs_ended(cluster, namespace, 'unhealthy'):.1f}s after the verdict")
    stopped = _conditions(_test(cluster, namespace, "unhealthy"))["JobsStopped"]
    assert (stopped["status"], stopped["reason"]) == ("True", reason)
    assert "JobsStopped" in [e["reason"] for e in _events(cluster, namespace, "unhealthy")]


def test_invalid_test_never_reaches_the_operator(cluster: Cluster, namespace: str) -> None:
    manifest = load_example("minimal")
    manifest["spec"]["worker"]["replicas"] = 0
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest),
                             check=False)
    assert result.returncode != 0
    assert "spec.worker.replicas" in result.stderr


def test_child_deleted_by_hand_fails_the_test_and_is_not_recreated(
        cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    operator.start()
    manifest = load_example("minimal")
    manifest["metadata"]["name"] = "handdel"
    for role in ("master", "worker"):  # pods stay Pending: the test is still in progress
        manifest["spec"][role]["annotations"] = {"locust-operator.test/kwok-ignore": "true"}
    _apply(cluster, namespace, manifest)
    cluster.wait_for(lambda: _conditions(_test(cluster, namespace, "handdel"))
                     .get("Ready", {}).get("reason") == "ResourcesCreated", what="ResourcesCreated")
    cluster.kubectl("-n", namespace, "delete", "job", "handdel-worker")
    failed = _wait_phase(cluster, namespace, "handdel", "Failed", timeout=60)
    ready = _conditions(failed)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ResourcesFailed")
    assert "worker Job deleted" in ready["message"]
    assert "ResourceDeleted" in [e["reason"] for e in _events(cluster, namespace, "handdel")]
    assert cluster.kubectl("-n", namespace, "get", "job", "handdel-worker", check=False).returncode != 0
    # The master Job that is left is ended: its pending pod never starts.
    def master_ended() -> dict[str, Any] | None:
        job: dict[str, Any] = cluster.kubectl_json("-n", namespace, "get", "job", "handdel-master")
        return job if any(c["type"] == "Failed" and c["status"] == "True"
                          for c in job["status"].get("conditions", [])) else None
    job = cluster.wait_for(master_ended, timeout=30, what="handdel-master ended")
    assert job["spec"]["activeDeadlineSeconds"] == 1 and not job["status"].get("active")


def test_live_results_from_a_real_locust_master(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """Connected workers and results in status come from a real Locust master's REST API.

    kwok keeps the test's pods Running; a real master and two workers run on
    loopback, and `statsUrlTemplate` points the controller at that master
    instead of the in-cluster Service (which has no real pod behind it here).
    """
    from tests.support.real_locust import http_target, locust_run

    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "configmaps.yaml"))
    with http_target() as target, locust_run(tmp_path, target, run_time="120s") as run:
        process = OperatorProcess(cluster, [namespace], tmp_path, config_text=(
            "statsPollSeconds: 1\n"
            f"statsUrlTemplate: 'http://127.0.0.1:{run.web_port}/stats/requests'\n"))
        try:
            process.start()
            manifest = load_example("minimal")
            manifest["metadata"]["name"] = "live"
            for role in ("master", "worker"):  # pods stay Running while the real processes work
                manifest["spec"][role]["annotations"] = {"pod-complete.stage.kwok.x-k8s.io/delay": "300s"}
            _apply(cluster, namespace, manifest)

            def live_results() -> dict[str, Any] | None:
                status = _test(cluster, namespace, "live").get("status", {})
                locust = status.get("locust", {})
                if status.get("phase") == "Running" and locust.get("workerCount") == 2 \
                        and float(locust.get("totalRps", "0")) > 0:
                    return status
                return None

            status = cluster.wait_for(live_results, timeout=90, what="live Locust results in status")
        finally:
            process.stop()
            print(process.log()[-3000:])
    assert status["connectedWorkers"] == 2
    assert status["locust"]["state"] in ("running", "spawning")
    assert status["locust"]["userCount"] > 0
    assert float(status["locust"]["failRatio"]) == 0
    workers = _conditions({"status": status})["WorkersConnected"]
    assert workers["status"] == "True"
    assert workers["message"] == "2/2 workers connected (as the Locust master reports)"


@pytest.mark.parametrize("order", [("shop.checkout", "shop-checkout"), ("shop-checkout", "shop.checkout")])
def test_two_tests_with_the_same_children_names_never_share_them(
        cluster: Cluster, namespace: str, operator: OperatorProcess, order: tuple[str, str]) -> None:
    operator.start()
    first, second = order
    for name in order:
        manifest = load_example("minimal")
        manifest["metadata"]["name"] = name
        for role in ("master", "worker"):  # pods stay Running: the first test is still live
            manifest["spec"][role]["annotations"] = {"pod-complete.stage.kwok.x-k8s.io/delay": "300s"}
        _apply(cluster, namespace, manifest)
        if name == first:
            _wait_phase(cluster, namespace, first, "Running")
    failed = _wait_phase(cluster, namespace, second, "Failed", timeout=60)
    ready = _conditions(failed)["Ready"]
    owner_uid = _test(cluster, namespace, first)["metadata"]["uid"]
    assert (ready["status"], ready["reason"]) == ("False", "NameConflict")
    assert f"Service shop-checkout-master already exists and belongs to LocustTest {first} " \
        f"(uid {owner_uid})" in ready["message"]
    warnings = [e for e in _events(cluster, namespace, second) if e["type"] == "Warning"]
    assert "TestFailed" in [e["reason"] for e in warnings]
    assert _phase(cluster, namespace, first) == "Running"  # the first test is untouched
    jobs = cluster.kubectl_json("-n", namespace, "get", "jobs")["items"]
    assert {j["metadata"]["ownerReferences"][0]["uid"] for j in jobs} == {owner_uid}


def test_a_child_made_by_hand_is_not_adopted(cluster: Cluster, namespace: str,
                                              operator: OperatorProcess) -> None:
    operator.start()
    cluster.kubectl("-n", namespace, "create", "service", "clusterip", "byhand-master",
                    "--tcp=8089:8089")
    manifest = load_example("minimal")
    manifest["metadata"]["name"] = "byhand"
    _apply(cluster, namespace, manifest)
    failed = _wait_phase(cluster, namespace, "byhand", "Failed", timeout=60)
    ready = _conditions(failed)["Ready"]
    assert ready["reason"] == "NameConflict"
    assert "Service byhand-master already exists and belongs to no controller owner" in ready["message"]
    assert cluster.kubectl_json("-n", namespace, "get", "jobs")["items"] == []


@pytest.mark.parametrize(("exit_code", "phase"), [("0", "Succeeded"), ("1", "Failed")])
def test_keep_failed_pods_applies_the_ttl_only_to_a_passed_test(
        cluster: Cluster, namespace: str, operator: OperatorProcess, exit_code: str, phase: str) -> None:
    operator.start()
    name = f"keep{exit_code}"
    manifest = load_example("minimal")
    manifest["metadata"]["name"] = name
    manifest["spec"]["cleanup"] = {"keepFailedPods": True, "ttlSecondsAfterFinished": 0}
    manifest["spec"]["master"]["annotations"] = {"locust-operator.test/exit-code": exit_code}
    _apply(cluster, namespace, manifest)
    job = cluster.wait_for(lambda: cluster.kubectl_json("-n", namespace, "get", "job", f"{name}-master"),
                           timeout=60, what="master Job")
    assert "ttlSecondsAfterFinished" not in job["spec"]  # kept until the verdict
    _wait_phase(cluster, namespace, name, phase)

    def jobs() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = cluster.kubectl_json(
            "-n", namespace, "get", "jobs", "-l", f"performance-test-name={name}")["items"]
        return found

    if phase == "Succeeded":  # the TTL (0) is set now: the TTL controller removes the Jobs
        cluster.wait_for(lambda: not jobs(), timeout=60, what="Jobs of the passed test removed")
    else:
        time.sleep(5)
        kept = jobs()
        assert len(kept) == 2 and all("ttlSecondsAfterFinished" not in j["spec"] for j in kept)
