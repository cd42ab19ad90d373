"""Why a test's pods cannot start, read from their spec and status (pure functions)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from locust_operator.api.contract import FETCH_CONTAINER, INSTALL_CONTAINER
from locust_operator.rules.crash import last_error_line

# Container waiting reasons the kubelet reports, by PodsHealthy reason.
_WAITING_REASONS = {
    "ErrImagePull": "ImagePullError",
    "ImagePullBackOff": "ImagePullError",
    "InvalidImageName": "ImagePullError",
    "ErrImageNeverPull": "ImagePullError",
    "CreateContainerConfigError": "ConfigurationError",
    "CreateContainerError": "ConfigurationError",
    "RunContainerError": "ConfigurationError",
    "CrashLoopBackOff": "CrashLoopBackOff",
}

# When several pods have problems, the one reported names the likeliest root
# cause: a missing ConfigMap or a bad image explains a crash loop or a failed
# init step, rarely the other way round.  Lower ranks first.
REASON_RANK = {
    "ConfigurationError": 0,
    "ImagePullError": 1,
    "SchedulingError": 2,
    "CrashLoopBackOff": 3,
    "TestFilesFetchFailed": 4,
    "RequirementsFailed": 4,
    "InitializationError": 4,
}

# The operator's own init containers (build/pod_setup.py) fail with a reason that
# says which step failed; a user's or a mesh's init container with the general one.
_INIT_REASONS = {FETCH_CONTAINER: "TestFilesFetchFailed", INSTALL_CONTAINER: "RequirementsFailed"}


@dataclasses.dataclass(frozen=True)
class PodProblem:
    pod: str
    reason: str  # a PodsHealthy condition reason
    message: str
    since: str | None  # the pod's creationTimestamp, start of its grace period
    # Nothing will change it (an init container of a pod that is never restarted
    # exited with an error): it fails the test at once, without a grace period.
    final: bool = False


def root_cause(problems: Iterable[PodProblem]) -> PodProblem:
    """The problem to report (of at least one): best rank, then pod name and message.

    The tie-breaks make the choice independent of the order of `problems`.
    """
    return min(problems, key=lambda p: (REASON_RANK.get(p.reason, len(REASON_RANK)), p.pod, p.message))


def _native_sidecars(spec: Mapping[str, Any]) -> set[str]:
    """Init containers with restartPolicy Always: they run alongside the main containers."""
    return {c.get("name", "") for c in spec.get("initContainers") or []
            if c.get("restartPolicy") == "Always"}


def _main_started(status: Mapping[str, Any]) -> bool:
    """Whether a main container has started, i.e. the init phase is over."""
    return any(c.get("started") or "running" in (c.get("state") or {})
               or "terminated" in (c.get("state") or {})
               for c in status.get("containerStatuses") or [])


# Waiting reasons of a container the kubelet has not created yet. The kubelet
# reports nothing more in the pod's status when a volume cannot be mounted (a
# missing ConfigMap or Secret): only a FailedMount event says so.
_CREATING_REASONS = {"ContainerCreating", "PodInitializing"}


def still_creating(pod: Mapping[str, Any]) -> bool:
    """Whether no container of `pod` has been created yet (e.g. its volumes wait to mount)."""
    status = pod.get("status") or {}
    if status.get("phase", "Pending") != "Pending" or pod_problem(pod) is not None:
        return False
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    return bool(statuses) and all(
        ((c.get("state") or {}).get("waiting") or {}).get("reason") in _CREATING_REASONS for c in statuses)


def mount_problem(name: str, since: str | None, messages: list[str]) -> PodProblem | None:
    """The problem a pod's FailedMount events name (the newest), if any."""
    if not messages:
        return None
    return PodProblem(name, "ConfigurationError", f"pod {name}: FailedMount: {messages[-1]}", since)


def pod_problem(pod: Mapping[str, Any]) -> PodProblem | None:
    """The first reason this pod cannot run, or None if it is starting or fine.

    `pod` is the Pod object (metadata, spec, status).  A native sidecar (an
    init container with restartPolicy Always, e.g. the metrics exporter or a
    mesh proxy) is restarted by the kubelet and stopped when the pod ends, so
    its exits never count; its other problems count only while it holds back
    the start of the main containers.
    """
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    name = metadata.get("name", "?")
    since = metadata.get("creationTimestamp")
    sidecars = _native_sidecars(pod.get("spec") or {})
    started = _main_started(status)
    for condition in status.get("conditions", []):
        if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"):
            return PodProblem(name, "SchedulingError",
                              f"pod {name} cannot be scheduled: {condition.get('message', '')}".rstrip(),
                              since)
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for container in status.get(key, []):
            sidecar = init and container.get("name") in sidecars
            if sidecar and started:
                continue
            state = container.get("state", {})
            waiting = state.get("waiting") or {}
            reason = _WAITING_REASONS.get(waiting.get("reason", ""))
            if reason:
                if init and reason == "CrashLoopBackOff":
                    reason = "InitializationError"
                detail = waiting.get("message") or waiting["reason"]
                return PodProblem(name, reason,
                                  f"pod {name} container {container.get('name')}: "
                                  f"{waiting['reason']}: {detail}", since)
            terminated = state.get("terminated") or {}
            if init and not sidecar and terminated and terminated.get("exitCode", 0) != 0:
                return init_failure(name, since, container, terminated,
                                    (pod.get("spec") or {}).get("restartPolicy") == "Never")
    return None


def init_failure(pod: str, since: str | None, container: Mapping[str, Any], terminated: Mapping[str, Any],
                 final: bool) -> PodProblem:
    """An init container that exited with an error, with the last error line of its log."""
    name = str(container.get("name", ""))
    line = last_error_line(terminated.get("message"))
    return PodProblem(pod, _INIT_REASONS.get(name, "InitializationError"),
                      f"pod {pod} init container {name} exited with code {terminated.get('exitCode')}"
                      + (f": {line}" if line else ""), since, final)
