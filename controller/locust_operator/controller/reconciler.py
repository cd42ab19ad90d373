"""The controller's runtime: one Reconciler per process, one loop per live test.

`startup.py` builds the Reconciler with its config, API access, master client and
clock, and hands it to Kopf through the operator memo. Kopf runs
`Reconciler.run` as a daemon for every LocustTest (`handlers.py`): Kopf starts it
when the test appears (or the operator restarts) and stops it when the test goes
away or finishes. The Reconciler owns what is shared (`run_actions.Runtime`) and
the registry of live tests the watches wake (`wake`, `child_deleted`); each
test's loop is `test_loop.TestLoop`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from locust_operator.api.config import OperatorConfig
from locust_operator.api.contract import MASTER
from locust_operator.controller.kube_api import Api
from locust_operator.controller.results_keeper import MasterSource, ResultsKeeper
from locust_operator.controller.run_actions import Clock, Object, Runtime, StopFlag, utc_now
from locust_operator.controller.test_loop import LiveTest, TestLoop
from locust_operator.rules.jobs import job_finished
from locust_operator.rules.observe import Children, JobView, Key, PodView

__all__ = ["Object", "Reconciler", "StopFlag", "utc_now"]

# Seconds between retries when the API server cannot be reached.
_RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
# Seconds between retries after an unexpected error while observing a test.
_ERROR_DELAYS = (1.0, 5.0, 15.0, 60.0)


class Reconciler:
    """Owns the controller's runtime state: the loops of the live tests."""

    def __init__(self, config: OperatorConfig, api: Api, master: MasterSource,
                 clock: Clock = utc_now,
                 after_create: Callable[[Object], Awaitable[None]] | None = None,
                 retry_delays: tuple[float, ...] = _RETRY_DELAYS,
                 settle_seconds: float = 0.25, results_settle_seconds: float = 1.0,
                 error_delays: tuple[float, ...] = _ERROR_DELAYS) -> None:
        self.config = config
        self.runtime = Runtime(
            config=config, api=api, master=master, clock=clock,
            results=ResultsKeeper(api, master, config.masterReads.logMaxBytes, results_settle_seconds),
            after_create=after_create, retry_delays=retry_delays, error_delays=error_delays,
            settle_seconds=settle_seconds)
        self._loop = TestLoop(self.runtime)
        self._live: dict[Key, LiveTest] = {}

    def wake(self, key: Key) -> None:
        """Something about this test or its children changed: derive its status again."""
        live = self._live.get(key)
        if live is not None:
            live.wake.set()

    def child_deleted(self, key: Key, owner_uid: str | None, what: str, last: Any = None) -> None:
        """A child is gone; `last` is its view as deleted (None when unknown).

        A Job that had finished (its TTL, or a cascade after the test ended) is
        no failure: its last view stands in for it, as does a master pod's with its
        exit code. Any other deletion of a child of a running test fails the test.
        """
        live = self._live.get(key)
        if live is None:
            return
        if isinstance(last, PodView):
            if last.role == MASTER and last.exit_code is not None:
                live.gone_pods[last.name] = last
        elif live.uid != owner_uid:
            return
        elif isinstance(last, JobView) and job_finished(last.status):
            live.gone_jobs[last.role] = last
        else:
            live.deleted.add(what)
        live.wake.set()

    @property
    def live_tests(self) -> int:
        return len(self._live)

    async def run(self, body: Mapping[str, Any], children: Callable[[], Children],
                  stopped: StopFlag) -> None:
        """Track one test until its phase is terminal (or Kopf stops the loop)."""
        metadata = body["metadata"]
        key: Key = (metadata["namespace"], metadata["name"])
        live = self._live[key] = LiveTest(uid=metadata["uid"])
        try:
            await self._loop.run(body, children, stopped, live)
        finally:
            if self._live.get(key) is live:
                del self._live[key]
