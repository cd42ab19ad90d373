"""Kopf declarations: a daemon per live LocustTest, and wake-ups on spec changes and aborts.

- A daemon per live LocustTest runs `Reconciler.run` (reconciler.py), which Kopf
  starts with the test and stops when it goes away or finishes.
- The children (Jobs, Services, Pods) are watched by `watches.ChildWatches`,
  not by Kopf: they are most of the watch events, and all they need to do is
  update a small view and wake their test's loop.

The Reconciler and the watches come from the operator memo (built in startup.py);
nothing here holds state.
"""

from __future__ import annotations

from typing import Any

import kopf

from locust_operator.api.contract import (
    ABORT_ANNOTATION,
    GROUP,
    PLURAL,
    SCHEDULE_LABEL,
    SCHEDULE_PLURAL,
    SERIES_LABEL,
    TERMINAL,
    VERSION,
)


def _spec_changed(meta: kopf.Meta, status: kopf.Status, **_: Any) -> bool:
    return int(meta.get("generation") or 1) != int(status.get("observedGeneration") or 1)


@kopf.on.event(GROUP, VERSION, PLURAL, when=_spec_changed)
async def spec_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    memo.reconciler.wake((namespace, name))  # the loop reports it: SpecDrifted


def _abort_asked(meta: kopf.Meta, status: kopf.Status, **_: Any) -> bool:
    return meta.annotations.get(ABORT_ANNOTATION) == "true" and status.get("phase") not in TERMINAL


@kopf.on.event(GROUP, VERSION, PLURAL, when=_abort_asked)
async def abort_asked(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    memo.reconciler.wake((namespace, name))  # the loop stops the master and ends the test


def _live(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL


# Kopf holds a finalizer on the test while this daemon may run, to stop it before
# the test is gone; once the phase is terminal the filter stops matching, and Kopf
# removes the finalizer in the same step.
# cancellation_backoff: when the filter stops matching (the loop itself wrote the
# terminal status) Kopf first asks the loop to stop and waits for it; without it
# Kopf cancels at once and logs a WARNING for every test that ended normally.
@kopf.daemon(GROUP, VERSION, PLURAL, when=_live, cancellation_backoff=5, cancellation_timeout=10)
async def test_loop(namespace: str, name: str, body: kopf.Body, memo: kopf.Memo,
                    stopped: kopf.DaemonStopped, **_: Any) -> None:
    key = (namespace, name)
    await memo.watches.synced()  # never judge a test by an index not yet listed
    await memo.reconciler.run(body, lambda: memo.watches.index.children(key), stopped)


# --- LocustTestSchedule --------------------------------------------------------
# A daemon per schedule runs `ScheduleLoops.run` (schedules.py); it sleeps until the
# next tick, and the events wake it early: a change of the schedule, or of one of its runs.
# Registered by `register_schedules` only when the config enables schedules (their CRD
# and RBAC may not be installed).
async def schedule_loop(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    await memo.schedules.run(body, stopped)


async def schedule_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    memo.schedules.wake((namespace, name))


async def run_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    memo.schedules.wake((namespace, labels[SCHEDULE_LABEL]))


def _series_run_done(labels: kopf.Labels, status: kopf.Status, **_: Any) -> bool:
    return SERIES_LABEL in labels and status.get("phase") in TERMINAL


# Every finished run of a series sets the series' gauges (series_metrics.py); Kopf's
# initial list of the tests replays them all after a restart, newest run winning.
@kopf.on.event(GROUP, VERSION, PLURAL, labels={SERIES_LABEL: kopf.PRESENT}, when=_series_run_done)
async def series_run_done(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.series_metrics.restore([body])


def register_schedules(registry: kopf.OperatorRegistry) -> None:
    kopf.daemon(GROUP, VERSION, SCHEDULE_PLURAL, cancellation_backoff=5, cancellation_timeout=10,
                registry=registry)(schedule_loop)
    kopf.on.event(GROUP, VERSION, SCHEDULE_PLURAL, registry=registry)(schedule_changed)
    kopf.on.event(GROUP, VERSION, PLURAL, labels={SCHEDULE_LABEL: kopf.PRESENT},
                  registry=registry)(run_changed)
