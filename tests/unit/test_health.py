"""Pod health (rules/health.py): what keeps a pod from starting, and which problem is reported."""

from __future__ import annotations

from typing import Any

import pytest

from locust_operator.rules.health import (
    REASON_RANK,
    PodProblem,
    mount_problem,
    pod_problem,
    root_cause,
    still_creating,
)

EARLIER = "2026-11-23T11:59:00Z"


def _pod(init: tuple[dict[str, Any], ...] = (), **status: Any) -> dict[str, Any]:
    spec = {"initContainers": list(init), "containers": [{"name": "demo-master"}]}
    return {"metadata": {"name": "p", "creationTimestamp": EARLIER}, "spec": spec, "status": status}


def _waiting(reason: str, message: str = "", name: str = "demo-master") -> dict[str, Any]:
    return {"name": name, "state": {"waiting": {"reason": reason, "message": message}}}


def _exited(name: str, code: int) -> dict[str, Any]:
    return {"name": name, "state": {"terminated": {"exitCode": code}}}


# A mesh's native sidecar, as the metrics exporter is one: restartPolicy Always.
SIDECAR = {"name": "istio-proxy", "restartPolicy": "Always"}


RUNNING = {"name": "demo-master", "started": True, "state": {"running": {}}}


INITIALIZING = _waiting("PodInitializing")


@pytest.mark.parametrize(("pod", "reason", "words"), [
    (_pod(phase="Pending"), None, ""),
    (_pod(containerStatuses=[RUNNING]), None, ""),
    (_pod(containerStatuses=[_waiting("ErrImagePull", "pull access denied for nope")]),
     "ImagePullError", "pull access denied"),
    (_pod(containerStatuses=[_waiting("ImagePullBackOff")]), "ImagePullError", "ImagePullBackOff"),
    (_pod(containerStatuses=[_waiting("CreateContainerConfigError", 'configmap "x" not found')]),
     "ConfigurationError", 'configmap "x" not found'),
    (_pod(containerStatuses=[_waiting("CrashLoopBackOff")]), "CrashLoopBackOff", "CrashLoopBackOff"),
    (_pod(initContainerStatuses=[_waiting("CrashLoopBackOff", name="init")]),
     "InitializationError", "init"),
    (_pod(initContainerStatuses=[_exited("setup", 3)]),
     "InitializationError", "exited with code 3"),
    (_pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                       "message": "0/3 nodes are available: insufficient cpu"}]),
     "SchedulingError", "insufficient cpu"),
    # Native sidecars, by restartPolicy whatever their name: their exits never
    # count (the kubelet restarts them, and stops them when the pod ends) ...
    (_pod((SIDECAR,), initContainerStatuses=[_exited("istio-proxy", 1)],
          containerStatuses=[RUNNING]), None, ""),
    (_pod((SIDECAR,), initContainerStatuses=[_exited("istio-proxy", 137)],
          containerStatuses=[INITIALIZING]), None, ""),
    (_pod(({"name": "locust-metrics-exporter", "restartPolicy": "Always"},),
          initContainerStatuses=[_exited("locust-metrics-exporter", 2)], containerStatuses=[RUNNING]),
     None, ""),
    # ... nor their crash loops once the main container runs ...
    (_pod((SIDECAR,), initContainerStatuses=[_waiting("CrashLoopBackOff", name="istio-proxy")],
          containerStatuses=[RUNNING]), None, ""),
    # ... but they do while they hold back the start of the main container.
    (_pod((SIDECAR,), initContainerStatuses=[_waiting("CrashLoopBackOff", name="istio-proxy")],
          containerStatuses=[INITIALIZING]), "InitializationError", "istio-proxy"),
    (_pod((SIDECAR,), initContainerStatuses=[_waiting("ImagePullBackOff", name="istio-proxy")],
          containerStatuses=[INITIALIZING]), "ImagePullError", "istio-proxy"),
    # An ordinary init container of the same name is not a sidecar.
    (_pod(({"name": "istio-proxy"},), initContainerStatuses=[_exited("istio-proxy", 1)],
          containerStatuses=[INITIALIZING]), "InitializationError", "exited with code 1"),
    # Without a spec nothing is known to be a sidecar: an exit counts.
    ({**_pod(initContainerStatuses=[_exited("locust-metrics-exporter", 1)]), "spec": None},
     "InitializationError", "locust-metrics-exporter"),
])
def test_pod_problem(pod: dict[str, Any], reason: str | None, words: str) -> None:
    problem = pod_problem(pod)
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and problem.reason == reason and words in problem.message
        assert problem.since == EARLIER


def test_rank_covers_every_pods_healthy_failure_reason_in_the_documented_order() -> None:
    assert sorted(REASON_RANK, key=REASON_RANK.__getitem__) == [
        "ConfigurationError", "ImagePullError", "SchedulingError", "CrashLoopBackOff",
        "TestFilesFetchFailed", "RequirementsFailed", "InitializationError"]


PIP_LOG = ("Looking in indexes: http://pypi.t.svc/simple/\n"
           "ERROR: Could not find a version that satisfies the requirement nosuchpkg (from versions: none)\n"
           "ERROR: No matching distribution found for nosuchpkg\n")
GIT_LOG = "fatal: unable to access 'http://nope.t.svc/r.git/': Could not resolve host: nope.t.svc\n"


def _failed_init(name: str, message: str | None, restart: str = "Never") -> dict[str, Any]:
    pod = _pod(({"name": name},), phase="Failed", initContainerStatuses=[
        {"name": name, "state": {"terminated": {"exitCode": 1, "message": message}}}])
    pod["spec"]["restartPolicy"] = restart
    return pod


@pytest.mark.parametrize(("pod", "reason", "message", "final"), [
    (_failed_init("install-requirements", PIP_LOG), "RequirementsFailed",
     "pod p init container install-requirements exited with code 1: "
     "ERROR: No matching distribution found for nosuchpkg", True),
    (_failed_init("fetch-test-files", GIT_LOG), "TestFilesFetchFailed",
     "pod p init container fetch-test-files exited with code 1: fatal: unable to access "
     "'http://nope.t.svc/r.git/': Could not resolve host: nope.t.svc", True),
    (_failed_init("setup", None), "InitializationError", "pod p init container setup exited with code 1",
     True),
    # A pod that restarts its containers may yet succeed: the grace period applies.
    (_failed_init("setup", "oops", restart="OnFailure"), "InitializationError",
     "pod p init container setup exited with code 1: oops", False),
])
def test_a_failed_init_step_says_which_and_why(pod: dict[str, Any], reason: str, message: str,
                                               final: bool) -> None:
    assert pod_problem(pod) == PodProblem("p", reason, message, EARLIER, final)


def test_mount_problem_names_the_newest_failedmount_event() -> None:
    assert mount_problem("m", None, []) is None
    problem = mount_problem("m", "t", ["old", 'configmap "x" not found'])
    assert problem == PodProblem("m", "ConfigurationError",
                                 'pod m: FailedMount: configmap "x" not found', "t")


SETUP = {"name": "setup"}
UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}


# A native sidecar's crash loop counts only until a main container has started, and
# each of the kubelet's ways of saying so (started, running, terminated) is enough.
@pytest.mark.parametrize(("main", "counts"), [
    ({"name": "demo-master", "started": True}, False),
    ({"name": "demo-master", "state": {"running": {"startedAt": EARLIER}}}, False),
    ({"name": "demo-master", "state": {"terminated": {"exitCode": 0}}}, False),
    ({"name": "demo-master", "started": False, "state": {"waiting": {"reason": "PodInitializing"}}}, True),
    ({"name": "demo-master", "started": False, "state": None}, True),
])
def test_a_sidecar_crash_loop_counts_until_a_main_container_starts(main: dict[str, Any],
                                                                   counts: bool) -> None:
    pod = _pod((SIDECAR,), initContainerStatuses=[_waiting("CrashLoopBackOff", "back-off", "istio-proxy")],
               containerStatuses=[main])
    expected = PodProblem("p", "InitializationError",
                          "pod p container istio-proxy: CrashLoopBackOff: back-off", EARLIER)
    assert pod_problem(pod) == (expected if counts else None)


@pytest.mark.parametrize(("pod", "expected"), [
    # Whole problems: the pod's name, the container's, the kubelet's reason and message.
    (_pod(containerStatuses=[_waiting("ErrImagePull", "pull access denied")]),
     PodProblem("p", "ImagePullError", "pod p container demo-master: ErrImagePull: pull access denied",
                EARLIER)),
    (_pod(containerStatuses=[_waiting("CrashLoopBackOff")]),
     PodProblem("p", "CrashLoopBackOff", "pod p container demo-master: CrashLoopBackOff: CrashLoopBackOff",
                EARLIER)),
    (_pod(conditions=[{**UNSCHEDULABLE, "message": "0/1 nodes are available"}]),
     PodProblem("p", "SchedulingError", "pod p cannot be scheduled: 0/1 nodes are available", EARLIER)),
    # Without the scheduler's message: no dangling separator.
    (_pod(conditions=[UNSCHEDULABLE]),
     PodProblem("p", "SchedulingError", "pod p cannot be scheduled:", EARLIER)),
    # Only the PodScheduled condition, False, for Unschedulable, is a scheduling problem.
    (_pod(conditions=[{**UNSCHEDULABLE, "status": "True"}]), None),
    (_pod(conditions=[{**UNSCHEDULABLE, "type": "Ready"}]), None),
    (_pod(conditions=[{**UNSCHEDULABLE, "reason": "SchedulerError"}]), None),
    # An init container that ended without an exit code has not failed.
    (_pod((SETUP,), initContainerStatuses=[
        {"name": "setup", "state": {"terminated": {"reason": "Completed"}}}]), None),
    # A status without a state (a kubelet that has not reported one) is no problem yet.
    (_pod(containerStatuses=[{"name": "demo-master"}]), None),
    # A pod without a name is reported as "?", not as None.
    ({**_pod(containerStatuses=[_waiting("ImagePullBackOff", "x")]), "metadata": {}},
     PodProblem("?", "ImagePullError", "pod ? container demo-master: ImagePullBackOff: x", None)),
])
def test_pod_problem_whole(pod: dict[str, Any], expected: PodProblem | None) -> None:
    assert pod_problem(pod) == expected


def test_mount_problem_takes_the_last_of_many_events() -> None:
    problem = mount_problem("m", None, ["first", "second", "third"])
    assert problem is not None and problem.message == "pod m: FailedMount: third"


def test_a_reason_without_a_rank_is_reported_last() -> None:
    unranked = PodProblem("a", "SomethingNew", "x", None)
    ranked = PodProblem("b", "CrashLoopBackOff", "y", None)
    assert root_cause([unranked, ranked]) == ranked
    assert root_cause([PodProblem("b", "Odd", "x", None), PodProblem("a", "Odd", "y", None)]).pod == "a"


@pytest.mark.parametrize(("status", "creating"), [
    ({"phase": "Pending", "containerStatuses": [_waiting("ContainerCreating")]}, True),
    ({"containerStatuses": [_waiting("ContainerCreating")]}, True),  # no phase yet: Pending
    ({"phase": "Running", "containerStatuses": [_waiting("ContainerCreating")]}, False),
    ({"phase": "Pending", "initContainerStatuses": [_waiting("PodInitializing", name="setup")],
      "containerStatuses": [RUNNING]}, False),  # a main container runs
    ({"phase": "Pending", "initContainerStatuses": [_waiting("PodInitializing", name="setup")],
      "containerStatuses": [INITIALIZING]}, True),
    ({"phase": "Pending"}, False),  # nothing reported: not known to be waiting for a mount
    ({"phase": "Pending", "containerStatuses": [_waiting("ErrImagePull")]}, False),  # a problem, not creating
])
def test_still_creating(status: dict[str, Any], creating: bool) -> None:
    assert still_creating(_pod(**status)) is creating
