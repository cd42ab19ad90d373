"""What the watches keep of each child, and one test's Observation from it (pure).

The child watches (`watches.ChildWatches`) hold a small view per Job, Service
and Pod, keyed by (namespace, test name label). Two tests can share a label key only after a
delete and re-create, and two test names (`a.b`, `a-b`) can map to the same
child names; so every view carries the UID of its controller owner, and a
test only ever sees the children it owns (pods through their Job's UID).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from locust_operator.api.contract import COMPONENT_LABEL, FETCH_CONTAINER, MASTER, WORKER
from locust_operator.build.web_ui import interactive, keep_after_run
from locust_operator.rules.baseline import baseline_set
from locust_operator.rules.crash import is_locustfile_error, last_error_line
from locust_operator.rules.health import PodProblem, pod_problem, still_creating
from locust_operator.rules.observation import Observation
from locust_operator.rules.thresholds import thresholds_set

Key = tuple[str, str]  # (namespace, test name)


@dataclasses.dataclass(frozen=True)
class JobView:
    uid: str
    owner_uid: str | None
    role: str
    status: dict[str, Any]
    name: str = ""


@dataclasses.dataclass(frozen=True)
class ServiceView:
    owner_uid: str | None


@dataclasses.dataclass(frozen=True)
class PodView:
    job_uid: str | None
    role: str
    ready: bool
    problem: PodProblem | None
    name: str = ""
    # The Locust container's exit code once it terminated (sidecars are init containers).
    exit_code: int | None = None
    # No container created yet (e.g. a volume cannot mount); since: creationTimestamp.
    creating: bool = False
    since: str | None = None
    # The pod's phase is Succeeded or Failed: none of its containers runs any more.
    finished: bool = False
    # The last error line of the Locust container's log, when it exited with an error.
    crash: str | None = None
    # The commit its init container fetched (spec.testFiles.git), once it did.
    commit: str | None = None


def controller_ref(metadata: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The object's controller owner reference, if it has one."""
    return next((ref for ref in metadata.get("ownerReferences") or [] if ref.get("controller")), None)


def controller_uid(metadata: Mapping[str, Any]) -> str | None:
    """The UID of the object's controller owner, if it has one."""
    ref = controller_ref(metadata)
    return None if ref is None else str(ref.get("uid"))


def job_view(body: Mapping[str, Any]) -> JobView:
    metadata = body.get("metadata", {})
    return JobView(uid=str(metadata.get("uid", "")), owner_uid=controller_uid(metadata),
                   role=(metadata.get("labels") or {}).get(COMPONENT_LABEL, ""),
                   status=dict(body.get("status") or {}), name=str(metadata.get("name", "")))


def service_view(body: Mapping[str, Any]) -> ServiceView:
    return ServiceView(owner_uid=controller_uid(body.get("metadata", {})))


def pod_view(body: Mapping[str, Any]) -> PodView:
    metadata = body.get("metadata", {})
    status = body.get("status") or {}
    ready = status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    pod = {"metadata": dict(metadata), "spec": dict(body.get("spec") or {}), "status": dict(status)}
    terminated = [(c.get("state") or {}).get("terminated") or {}
                  for c in status.get("containerStatuses") or []]
    ended = [t for t in terminated if isinstance(t.get("exitCode"), int)]
    code = ended[0]["exitCode"] if ended else None
    return PodView(job_uid=controller_uid(metadata),
                   role=(metadata.get("labels") or {}).get(COMPONENT_LABEL, ""),
                   ready=ready, problem=pod_problem(pod), name=str(metadata.get("name", "")),
                   exit_code=code, creating=still_creating(pod),
                   since=metadata.get("creationTimestamp"),
                   finished=status.get("phase") in ("Succeeded", "Failed"),
                   crash=last_error_line(ended[0].get("message")) if code else None,
                   commit=fetched_commit(status))


_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def fetched_commit(status: Mapping[str, Any]) -> str | None:
    """The commit the fetch-test-files init container wrote to its termination log (checked:
    the message is the pod's own, so only a SHA-1 or SHA-256 hex name is taken)."""
    for container in status.get("initContainerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if container.get("name") == FETCH_CONTAINER and terminated.get("exitCode") == 0:
            message = str(terminated.get("message") or "").strip()
            return message if _COMMIT.fullmatch(message) else None
    return None


@dataclasses.dataclass(frozen=True)
class Children:
    """The views of one test's children, as the child watches hold them."""

    jobs: Iterable[JobView] = ()
    services: Iterable[ServiceView] = ()
    pods: Iterable[PodView] = ()


def master_pod(test: Mapping[str, Any], children: Children) -> PodView | None:
    """The test's master pod (the last one listed, if the Job made several)."""
    uid = test["metadata"].get("uid")
    jobs = {j.uid for j in children.jobs if j.owner_uid == uid and j.role == MASTER}
    pods = [p for p in children.pods if p.job_uid in jobs and p.role == MASTER]
    return pods[-1] if pods else None


def observe(test: Mapping[str, Any], children: Children, *, now: datetime, grace_seconds: int,
            create_error: str | None = None, create_error_reason: str = "ResourcesFailed",
            deleted: Iterable[str] = (), locust: dict[str, Any] | None = None,
            just_created: bool = False, result: dict[str, Any] | None = None,
            aborted: bool = False, run_stopped: bool = False, deadline_exceeded: int | None = None,
            live_problem: str | None = None, results_pending: bool = False,
            processes_per_pod: int = 1) -> Observation:
    """The Observation of `test` from the children it owns (by controller UID).

    `processes_per_pod` is spec.worker.processes resolved with the operator's config
    (build/workers.processes_per_pod): the Locust workers expected are pods x processes.
    """
    uid = test["metadata"].get("uid")
    jobs = {j.role: j for j in children.jobs if j.owner_uid == uid}
    job_uids = {j.uid for j in jobs.values()}
    pods = [p for p in children.pods if p.job_uid in job_uids]
    default: dict[str, Any] | None = {} if just_created else None
    master, worker = jobs.get(MASTER), jobs.get(WORKER)
    return Observation(
        generation=int(test["metadata"].get("generation", 1)),
        expected_workers=int(test["spec"].get("worker", {}).get("replicas", 0)) * processes_per_pod,
        processes_per_pod=processes_per_pod,
        now=now,
        grace_seconds=grace_seconds,
        service=just_created or any(s.owner_uid == uid for s in children.services),
        master_job=master.status if master else default,
        worker_job=worker.status if worker else default,
        master_pods_ready=sum(1 for p in pods if p.ready and p.role == MASTER),
        worker_pods_ready=sum(1 for p in pods if p.ready and p.role == WORKER),
        create_error=create_error,
        create_error_reason=create_error_reason,
        locust=locust,
        result=result,
        thresholds_set=thresholds_set(test["spec"].get("thresholds")),
        baseline_set=baseline_set(test["spec"]),
        master_exit_code=next((p.exit_code for p in pods if p.role == MASTER and p.exit_code is not None),
                              None),
        aborted=aborted,
        run_stopped=run_stopped,
        verdict_at_stop=interactive(test["spec"]) or keep_after_run(test["spec"]) > 0,
        keep_ui_seconds=keep_after_run(test["spec"]),
        deadline_exceeded=deadline_exceeded,
        live_problem=live_problem,
        results_pending=results_pending,
        master_pods_live=sum(1 for p in pods if p.role == MASTER and not p.finished),
        worker_pods_live=sum(1 for p in pods if p.role == WORKER and not p.finished),
        deleted=tuple(sorted(deleted)),
        locustfile_error=_locustfile_error(pods),
        master_crash=next((p.crash for p in pods if p.role == MASTER and p.crash), None),
        git_ref=_git_ref(test["spec"]),
        commits=tuple((p.name, p.commit) for p in sorted(pods, key=_master_first) if p.commit),
        problems=tuple(sorted((p.problem for p in pods if p.problem is not None),
                              key=lambda problem: problem.pod)),
    )


def _master_first(pod: PodView) -> tuple[bool, str]:
    return pod.role != MASTER, pod.name


def _locustfile_error(pods: Iterable[PodView]) -> str | None:
    """Why a Locust container could not load its locustfile, the master's first."""
    for pod in sorted(pods, key=_master_first):
        if pod.crash and is_locustfile_error(pod.crash):
            return f"{pod.role} pod {pod.name}: {pod.crash}"
    return None


def _git_ref(spec: Mapping[str, Any]) -> str | None:
    git = (spec.get("testFiles") or {}).get("git")
    return str(git.get("ref", "")) if isinstance(git, Mapping) else None
