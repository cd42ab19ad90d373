"""Kubernetes-style conditions of a LocustTest: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from locust_operator.api.times import timestamp
from locust_operator.rules.bounded import text
from locust_operator.rules.observation import Observation, Status

# A condition's message is cut here: pod and Job messages in it are the tenant's.
MESSAGE_CHARS = 4096


CONDITION_ORDER = ("Ready", "WorkersConnected", "TestCompleted", "Finished", "PodsHealthy", "JobsStopped",
                   "SpecDrifted", "MasterOverloaded", "WorkersOverloaded", "Tracking")


def condition(status: Status, kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c.get("type") == kind), None)


def set_condition(conditions: dict[str, dict[str, Any]], previous: Status, kind: str, state: str,
         reason: str, message: str, obs: Observation) -> None:
    old = condition(previous, kind)
    moved = old is None or old.get("status") != state
    conditions[kind] = {
        "type": kind,
        "status": state,
        "reason": reason,
        "message": text(message, MESSAGE_CHARS),
        "lastTransitionTime": timestamp(obs.now) if moved else old["lastTransitionTime"],  # type: ignore[index]
        "observedGeneration": obs.generation,
    }


def keep_condition(conditions: dict[str, dict[str, Any]], previous: Status, kind: str) -> None:
    old = condition(previous, kind)
    if old is not None:
        conditions[kind] = old


def with_tracking_error(previous: Status, message: str, now: datetime) -> Status:
    """`previous` with condition Tracking=False: the operator cannot observe the test.

    Written by the loop when observing the test failed unexpectedly; the next
    derived status leaves it out again.
    """
    status = dict(previous)
    old = condition(previous, "Tracking") or {}
    others = [c for c in previous.get("conditions", []) if c.get("type") != "Tracking"]
    status["conditions"] = [*others, {
        "type": "Tracking", "status": "False", "reason": "ObserveError", "message": message,
        "lastTransitionTime": old.get("lastTransitionTime") or timestamp(now),
        "observedGeneration": int(previous.get("observedGeneration") or 1)}]
    return status
