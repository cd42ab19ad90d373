"""Why a test's pods cannot start, read from their status (pure functions)."""

from __future__ import annotations

import dataclasses
from typing import Any

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


@dataclasses.dataclass(frozen=True)
class PodProblem:
    pod: str
    reason: str  # a PodsHealthy condition reason
    message: str
    since: str | None  # the pod's creationTimestamp, start of its grace period


def pod_problem(pod: dict[str, Any]) -> PodProblem | None:
    """The first reason this pod cannot run, or None if it is starting or fine."""
    metadata = pod.get("metadata", {})
    status = pod.get("status", {})
    name = metadata.get("name", "?")
    since = metadata.get("creationTimestamp")
    for condition in status.get("conditions", []):
        if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"):
            return PodProblem(name, "SchedulingError",
                              f"pod {name} cannot be scheduled: {condition.get('message', '')}".rstrip(),
                              since)
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for container in status.get(key, []):
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
            if init and terminated and terminated.get("exitCode", 0) != 0 \
                    and container.get("name") != "locust-metrics-exporter":
                return PodProblem(name, "InitializationError",
                                  f"pod {name} init container {container.get('name')} exited "
                                  f"with code {terminated.get('exitCode')}", since)
    return None

