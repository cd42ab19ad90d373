"""Index views and one test's Observation from them; creating children (pure / fake API)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from locust_operator.rules.observation import Observation
from locust_operator.rules.observe import (
    Children,
    JobView,
    PodView,
    ServiceView,
    controller_uid,
    job_view,
    master_pod,
    observe,
    pod_view,
    service_view,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
TEST = {"metadata": {"name": "t", "uid": "u1", "generation": 2}, "spec": {"worker": {"replicas": 2}}}


def _meta(role: str, uid: str, owner: str | None, kind: str = "LocustTest") -> dict[str, Any]:
    refs = [{"controller": True, "uid": owner, "kind": kind, "name": "t"}] if owner else []
    return {"uid": uid, "labels": {"app.kubernetes.io/component": role}, "ownerReferences": refs,
            "name": f"{uid}-pod", "creationTimestamp": "2026-11-25T11:59:00Z"}


def _pod(role: str, job_uid: str, ready: bool, waiting: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running" if ready else "Pending",
                              "conditions": [{"type": "Ready", "status": str(ready)}]}
    if waiting:
        status["containerStatuses"] = [{"name": "locust", "state": {"waiting": {
            "reason": waiting, "message": "boom"}}}]
    return {"metadata": _meta(role, f"p-{job_uid}-{ready}", job_uid, "Job"), "spec": {},
            "status": status}


@pytest.mark.parametrize(("metadata", "expected"), [
    ({"ownerReferences": [{"uid": "a"}, {"uid": "b", "controller": True}]}, "b"),
    ({"ownerReferences": [{"uid": "a", "controller": False}]}, None),
    ({}, None),
])
def test_controller_uid(metadata: dict[str, Any], expected: str | None) -> None:
    assert controller_uid(metadata) == expected


def test_a_test_sees_only_the_children_it_owns() -> None:
    jobs = [job_view({"metadata": _meta("master", "jm", "u1"), "status": {"active": 1}}),
            job_view({"metadata": _meta("worker", "jw", "u1"), "status": {}}),
            job_view({"metadata": _meta("master", "other-job", "u2"), "status": {"ready": 1}})]
    pods = [pod_view(_pod("master", "jm", True)), pod_view(_pod("worker", "jw", True)),
            pod_view(_pod("worker", "jw", False, waiting="ImagePullBackOff")),
            pod_view(_pod("worker", "other-job", True))]
    services = [service_view({"metadata": _meta("master", "s", "u2")})]
    obs = observe(TEST, Children(jobs=jobs, services=services, pods=pods), now=NOW, grace_seconds=30,
                  deleted=["worker Job"])
    assert obs.master_job == {"active": 1}
    assert obs.worker_job == {}
    assert (obs.master_pods_ready, obs.worker_pods_ready) == (1, 1)
    assert obs.service is False  # the Service belongs to another test
    assert [p.reason for p in obs.problems] == ["ImagePullError"]
    assert (obs.generation, obs.expected_workers, obs.deleted) == (2, 2, ("worker Job",))


def test_just_created_children_count_before_the_watch_sees_them() -> None:
    obs = observe(TEST, Children(), now=NOW, grace_seconds=30, just_created=True)
    assert (obs.service, obs.master_job, obs.worker_job) == (True, {}, {})
    obs = observe(TEST, Children(), now=NOW, grace_seconds=30)
    assert (obs.service, obs.master_job, obs.worker_job) == (False, None, None)


def test_pod_view_ready_needs_running_and_the_ready_condition() -> None:
    body = _pod("master", "j", True)
    assert pod_view(body).ready
    body["status"]["phase"] = "Succeeded"
    assert not pod_view(body).ready


def _creating(phase: str = "Pending", init: str = "PodInitializing",
              main: str = "PodInitializing") -> dict[str, Any]:
    """A master pod as the real kubelet shows it while its volumes do not mount."""
    return {"metadata": {"name": "m", "creationTimestamp": "2026-11-25T12:00:00Z"},
            "spec": {"initContainers": [{"name": "exporter", "restartPolicy": "Always"}]},
            "status": {"phase": phase,
                       "initContainerStatuses": [{"name": "exporter",
                                                  "state": {"waiting": {"reason": init}}}],
                       "containerStatuses": [{"name": "locust", "state": {"waiting": {"reason": main}}}]}}


def test_pod_view_marks_a_pod_whose_containers_are_not_created_yet() -> None:
    view = pod_view(_creating())
    assert (view.creating, view.since, view.problem) == (True, "2026-11-25T12:00:00Z", None)
    assert pod_view(_creating(main="ContainerCreating", init="ContainerCreating")).creating
    # A container that runs, or waits for another reason, is not "being created".
    assert not pod_view(_creating(main="ErrImagePull")).creating
    assert not pod_view(_creating(phase="Running")).creating
    running = _creating()
    running["status"]["initContainerStatuses"][0]["state"] = {"running": {}}
    assert not pod_view(running).creating
    assert not pod_view({"metadata": {"name": "p"}, "status": {"phase": "Pending"}}).creating




def _exited_pod(role: str, name: str, code: int, message: str, commit: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Failed" if code else "Succeeded", "containerStatuses": [
        {"name": "locust", "state": {"terminated": {"exitCode": code, "message": message}}}]}
    if commit:
        status["initContainerStatuses"] = [{"name": "fetch-test-files", "state": {"terminated": {
            "exitCode": 0, "message": commit}}}]
    meta = {**_meta(role, name, "jm" if role == "master" else "jw", "Job"), "name": name}
    return {"metadata": meta, "spec": {}, "status": status}


IMPORT_ERROR = 'Traceback (most recent call last):\n  File "/lotest/src/hit.py", line 2, in <module>\n' \
               "ModuleNotFoundError: No module named 'helper'\n"


@pytest.mark.parametrize(("pods", "locustfile_error", "master_crash"), [
    # The master's reason first, whatever order the pods are listed in.
    ([("worker", "t-worker-b", 1, "No User class found!"), ("master", "t-master-a", 1, IMPORT_ERROR)],
     "master pod t-master-a: hit.py line 2: ModuleNotFoundError: No module named 'helper'",
     "hit.py line 2: ModuleNotFoundError: No module named 'helper'"),
    ([("worker", "t-worker-b", 1, IMPORT_ERROR), ("master", "t-master-a", 0, "")],
     "worker pod t-worker-b: hit.py line 2: ModuleNotFoundError: No module named 'helper'", None),
    # Killed, out of memory: a crash with its line, but no locustfile error.
    ([("master", "t-master-a", 137, "MemoryError")], None, "MemoryError"),
    ([("master", "t-master-a", 0, "done")], None, None),
])
def test_a_crashed_locust_container_says_why(pods: list[tuple[str, str, int, str]],
                                             locustfile_error: str | None, master_crash: str | None) -> None:
    jobs = [job_view({"metadata": _meta("master", "jm", "u1"), "status": {}}),
            job_view({"metadata": _meta("worker", "jw", "u1"), "status": {}})]
    views = [pod_view(_exited_pod(*pod)) for pod in pods]
    obs = observe(TEST, Children(jobs=jobs, pods=views), now=NOW, grace_seconds=30)
    assert (obs.locustfile_error, obs.master_crash) == (locustfile_error, master_crash)


def test_the_commits_fetched_master_first_and_the_ref_asked() -> None:
    sha_m, sha_w = "1" * 40, "2" * 40
    jobs = [job_view({"metadata": _meta("master", "jm", "u1"), "status": {}}),
            job_view({"metadata": _meta("worker", "jw", "u1"), "status": {}})]
    pods = [pod_view(_exited_pod("worker", "t-worker-a", 0, "", sha_w)),
            pod_view(_exited_pod("master", "t-master-z", 0, "", sha_m))]
    test = {**TEST, "spec": {**TEST["spec"], "testFiles": {"git": {"url": "https://g/r.git", "ref": "v1"}}}}
    obs = observe(test, Children(jobs=jobs, pods=pods), now=NOW, grace_seconds=30)
    assert obs.commits == (("t-master-z", sha_m), ("t-worker-a", sha_w))
    assert obs.git_ref == "v1"
    assert observe(TEST, Children(jobs=jobs, pods=pods), now=NOW, grace_seconds=30).git_ref is None


def _finished_pod(role: str, job_uid: str, phase: str, code: int, message: str = "") -> dict[str, Any]:
    terminated = {"exitCode": code, **({"message": message} if message else {})}
    return {"metadata": _meta(role, f"p-{role}", job_uid, "Job"), "spec": {},
            "status": {"phase": phase, "containerStatuses": [{"name": "locust", "state": {
                "terminated": terminated}}]}}


@pytest.mark.parametrize(("body", "expected"), [
    (_finished_pod("master", "jm", "Succeeded", 0),
     PodView(job_uid="jm", role="master", ready=False, problem=None, name="p-master-pod", exit_code=0,
             since="2026-11-25T11:59:00Z", finished=True)),
    (_finished_pod("worker", "jw", "Failed", 2, "Traceback ...\nKeyError: 'host'\n"),
     PodView(job_uid="jw", role="worker", ready=False, problem=None, name="p-worker-pod", exit_code=2,
             since="2026-11-25T11:59:00Z", finished=True, crash="KeyError: 'host'")),
    # Running with an exit code (a container restarted): not finished.
    ({**_finished_pod("master", "jm", "Running", 1), "status": {**_finished_pod("master", "jm", "Running", 1)[
        "status"], "conditions": [{"type": "Ready", "status": "True"}]}},
     PodView(job_uid="jm", role="master", ready=True, problem=None, name="p-master-pod", exit_code=1,
             since="2026-11-25T11:59:00Z")),
    # Another condition being True is not Ready.
    ({"metadata": _meta("worker", "w", "jw", "Job"), "status": {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}]}},
     PodView(job_uid="jw", role="worker", ready=False, problem=None, name="w-pod",
             since="2026-11-25T11:59:00Z")),
    # Without labels, name or metadata: an empty role and name, never None.
    ({"status": {"phase": "Pending"}}, PodView(job_uid=None, role="", ready=False, problem=None)),
    ({"metadata": {}, "status": {}}, PodView(job_uid=None, role="", ready=False, problem=None)),
])
def test_pod_view_whole(body: dict[str, Any], expected: PodView) -> None:
    assert pod_view(body) == expected


def test_pod_view_reads_the_spec_for_native_sidecars() -> None:
    main = {"name": "locust", "started": True, "state": {"running": {}}}
    status = {"phase": "Running", "containerStatuses": [main],
              "initContainerStatuses": [{"name": "proxy", "state": {"terminated": {"exitCode": 1}}}]}
    sidecar = {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}]}
    body = {"metadata": _meta("master", "m", "jm", "Job"), "status": status}
    assert pod_view({**body, "spec": sidecar}).problem is None
    assert pod_view(body).problem is not None  # without the spec, it is an init container that failed


def test_job_and_service_views_whole() -> None:
    body = {"metadata": {**_meta("worker", "jw", "u1"), "name": "t-worker"}, "status": {"active": 2}}
    assert job_view(body) == JobView(uid="jw", owner_uid="u1", role="worker", status={"active": 2},
                                     name="t-worker")
    assert job_view({}) == JobView(uid="", owner_uid=None, role="", status={}, name="")
    assert service_view({"metadata": _meta("master", "s", "u1")}) == ServiceView(owner_uid="u1")
    assert service_view({}) == ServiceView(owner_uid=None)


def test_observe_whole_with_its_defaults() -> None:
    test = {"metadata": {"name": "t", "uid": "u1"}, "spec": {
        "worker": {"replicas": 3}, "baseline": {"maxRegression": {}}, "testFiles": {"git": {"url": "x"}}}}
    jobs = [job_view({"metadata": _meta("master", "jm", "u1"), "status": {"active": 1}}),
            job_view({"metadata": _meta("worker", "jw", "u1"), "status": {"active": 3}})]
    pods = [pod_view(_finished_pod("worker", "jw", "Failed", 3)),  # a worker's code is not the master's
            pod_view(_pod("worker", "jw", True, waiting="ErrImagePull")),
            pod_view(_pod("master", "jm", True, waiting="CrashLoopBackOff")),
            pod_view(_pod("master", "jm", False))]
    obs = observe(test, Children(jobs=jobs, pods=pods), now=NOW, grace_seconds=30, processes_per_pod=2)
    problems = (pods[2].problem, pods[1].problem)  # by pod name: p-jm-True, p-jw-True
    assert obs == Observation(
        generation=1, expected_workers=6, processes_per_pod=2, now=NOW, grace_seconds=30, service=False,
        master_job={"active": 1}, worker_job={"active": 3}, master_pods_ready=1, worker_pods_ready=1,
        create_error=None, create_error_reason="ResourcesFailed", locust=None, result=None,
        thresholds_set=False, baseline_set=True, master_exit_code=None, aborted=False, run_stopped=False,
        deadline_exceeded=None, live_problem=None, results_pending=False, master_pods_live=2,
        worker_pods_live=1, deleted=(), locustfile_error=None, master_crash=None, git_ref="", commits=(),
        problems=problems)
    assert observe({"metadata": {"uid": "u1"}, "spec": {}}, Children(), now=NOW,
                   grace_seconds=1).expected_workers == 0


def test_problems_are_sorted_by_pod_name() -> None:
    pods = [pod_view({**_pod("worker", "jw", False, waiting="ErrImagePull"), "metadata": {
        **_meta("worker", name, "jw", "Job"), "name": name}}) for name in ("w-b", "w-c", "w-a")]
    jobs = [job_view({"metadata": _meta("worker", "jw", "u1"), "status": {}})]
    obs = observe(TEST, Children(jobs=jobs, pods=pods), now=NOW, grace_seconds=30)
    assert [p.pod for p in obs.problems] == ["w-a", "w-b", "w-c"]


def test_master_pod_is_the_last_master_pod_of_the_tests_own_master_job() -> None:
    jobs = [job_view({"metadata": _meta("master", "jm", "u1"), "status": {}}),
            job_view({"metadata": _meta("master", "other", "u2"), "status": {}}),
            job_view({"metadata": _meta("worker", "jw", "u1"), "status": {}})]
    first, last = (pod_view({**_pod("master", "jm", True), "metadata": {**_meta("master", n, "jm", "Job"),
                                                                       "name": n}}) for n in ("m1", "m2"))
    foreign = pod_view(_pod("master", "other", True))
    worker = pod_view(_pod("worker", "jw", True))
    assert master_pod(TEST, Children(jobs=jobs, pods=[first, last, foreign, worker])) == last
    assert master_pod(TEST, Children(jobs=jobs, pods=[foreign, worker])) is None
