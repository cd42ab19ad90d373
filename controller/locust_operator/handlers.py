"""Kopf declarations: what the controller watches, and which object does the work.

- Indexes keep a small view of every child Job, Service and Pod (observe.py),
  selected server-side by the operator's label (contract.py).
- A daemon per LocustTest runs `Reconciler.run` (reconciler.py), which Kopf
  starts with the test and stops when it goes away.
- Watch events of a test or its children only wake that test's loop.

The Reconciler comes from the operator memo (built in runner.py); nothing here
holds state.
"""

from __future__ import annotations

from typing import Any

import kopf

from locust_operator import GROUP, PLURAL, VERSION
from locust_operator.contract import MANAGED_BY, MANAGED_BY_LABEL, TEST_NAME_LABEL
from locust_operator.observe import (
    Children,
    JobView,
    Key,
    PodView,
    ServiceView,
    controller_uid,
    job_view,
    pod_view,
    service_view,
)
from locust_operator.status import TERMINAL

CHILD_LABELS = {MANAGED_BY_LABEL: MANAGED_BY}


def _key(namespace: str | None, labels: kopf.Labels) -> Key:
    return (namespace or "", labels.get(TEST_NAME_LABEL, ""))


# Every change of a child wakes its test's loop right from the index function:
# children are most of the watch events, and a handler invocation per event
# was a large part of the operator's CPU.
@kopf.index("batch", "v1", "jobs", labels=CHILD_LABELS)
async def jobs_index(namespace: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo,
                     **_: Any) -> dict[Key, JobView]:
    key = _key(namespace, labels)
    memo.reconciler.wake(key)
    return {key: job_view(body)}


@kopf.index("", "v1", "services", labels=CHILD_LABELS)
async def services_index(namespace: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo,
                         **_: Any) -> dict[Key, ServiceView]:
    key = _key(namespace, labels)
    memo.reconciler.wake(key)
    return {key: service_view(body)}


@kopf.index("", "v1", "pods", labels=CHILD_LABELS)
async def pods_index(namespace: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo,
                     **_: Any) -> dict[Key, PodView]:
    key = _key(namespace, labels)
    memo.reconciler.wake(key)
    return {key: pod_view(body)}


def _deleted(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


# A deletion is seen only here (an object gone from an index proves nothing: a
# new Job may just not be listed yet).
@kopf.on.event("batch", "v1", "jobs", labels=CHILD_LABELS, when=_deleted)
@kopf.on.event("", "v1", "services", labels=CHILD_LABELS, when=_deleted)
async def child_deleted(namespace: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo,
                        **_: Any) -> None:
    what = "Service" if body.get("kind") == "Service" else f"{job_view(body).role} Job"
    memo.reconciler.child_deleted(_key(namespace, labels), controller_uid(body.metadata), what)


def _spec_changed(meta: kopf.Meta, status: kopf.Status, **_: Any) -> bool:
    return int(meta.get("generation") or 1) != int(status.get("observedGeneration") or 1)


@kopf.on.event(GROUP, VERSION, PLURAL, when=_spec_changed)
async def spec_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    memo.reconciler.wake((namespace, name))  # the loop reports it: SpecDrifted


def _live(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL


# Kopf holds a finalizer on the test while this daemon may run, to stop it before
# the test is gone; once the phase is terminal the filter stops matching, and Kopf
# removes the finalizer in the same step.
@kopf.daemon(GROUP, VERSION, PLURAL, when=_live, cancellation_timeout=10)
async def test_loop(namespace: str, name: str, body: kopf.Body, memo: kopf.Memo,
                    stopped: kopf.DaemonStopped, jobs_index: kopf.Index[Key, JobView],
                    services_index: kopf.Index[Key, ServiceView],
                    pods_index: kopf.Index[Key, PodView], **_: Any) -> None:
    key = (namespace, name)

    def children() -> Children:
        return Children(jobs=list(jobs_index.get(key, ())),
                        services=list(services_index.get(key, ())),
                        pods=list(pods_index.get(key, ())))

    await memo.reconciler.run(body, children, stopped)
