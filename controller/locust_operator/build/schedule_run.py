"""The LocustTest a LocustTestSchedule makes for one scheduled time (pure).

The run is the template's spec under a name derived from the schedule and the
tick (`rules.schedule.run_name`), so an operator that restarts at a tick asks
for the same object and gets AlreadyExists, never a second run. It carries the
series and schedule labels, its scheduled time, and the schedule as its
controller owner: deleting the schedule deletes its runs and their results.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from locust_operator.api.contract import (
    API_VERSION,
    KIND,
    SCHEDULE_KIND,
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    SEPARATE_REPORT_ANNOTATION,
    SERIES_LABEL,
)
from locust_operator.api.times import timestamp

# A run is named <schedule>-<YYYYMMDD>-<HHMM> and a LocustTest's name has at most 56
# characters (so that <name>-worker is a 63-character label): a schedule's, 42.
RUN_SUFFIX_CHARS = len("-YYYYMMDD-HHMM")
MAX_SCHEDULE_NAME = 56 - RUN_SUFFIX_CHARS


def run_name(schedule_name: str, tick: datetime) -> str:
    """The run of a scheduled time, e.g. nightly-20261130-0300: the tick in UTC, so names
    are unique and sort in time order whatever the schedule's time zone and its DST."""
    return f"{schedule_name}-{tick.astimezone(UTC):%Y%m%d-%H%M}"


def series_name(schedule: Mapping[str, Any]) -> str:
    """The series of a schedule's runs: spec.series, else the schedule's name."""
    return str(schedule["spec"].get("series") or schedule["metadata"]["name"])


def schedule_owner(metadata: Mapping[str, Any]) -> dict[str, Any]:
    # No blockOwnerDeletion: it would need update on the schedule's finalizers, and a
    # schedule deleted in the background may go before its runs do.
    return {"apiVersion": API_VERSION, "kind": SCHEDULE_KIND, "name": metadata["name"],
            "uid": metadata["uid"], "controller": True}


def run_test(schedule: Mapping[str, Any], tick: datetime) -> dict[str, Any]:
    """The run of `schedule` (validated and defaulted) for the scheduled time `tick`."""
    metadata = schedule["metadata"]
    template = schedule["spec"]["template"]
    template_meta = template.get("metadata") or {}
    run_metadata: dict[str, Any] = {
        "name": run_name(metadata["name"], tick),
        "labels": {**(template_meta.get("labels") or {}), SERIES_LABEL: series_name(schedule),
                   SCHEDULE_LABEL: metadata["name"]},
        "annotations": {**(template_meta.get("annotations") or {}),
                        SCHEDULED_TIME_ANNOTATION: timestamp(tick)},
    }
    if schedule["spec"].get("keepReportRuns") is not None:
        run_metadata["annotations"][SEPARATE_REPORT_ANNOTATION] = "true"
    if metadata.get("namespace"):
        run_metadata["namespace"] = metadata["namespace"]
    if metadata.get("uid"):
        run_metadata["ownerReferences"] = [schedule_owner(metadata)]
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": run_metadata,
            "spec": copy.deepcopy(template["spec"])}
