"""How many Locust workers a test has: worker pods x Locust processes per pod.

`spec.worker.processes` becomes Locust's `--processes` on the worker command
(each pod forks that many workers after importing the locustfile), and the
master expects replicas x processes of them. Render and the controller resolve
the processes here (`processes_per_pod`, with the same config), so the master's
`--expect-workers` and the status's `expectedWorkers` cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from locust_operator.api.config import OperatorConfig
from locust_operator.validation.validator import parse_quantity

AUTO = "auto"
MAX_PROCESSES = 64  # the CRD's bound


def worker_cpu_limit(spec: Mapping[str, Any], config: OperatorConfig) -> float | None:
    """The worker container's CPU limit in cores (its own resources, else the operator's), or None."""
    resources = spec.get("worker", {}).get("resources") or config.role_resources("worker")
    limit = (resources.get("limits") or {}).get("cpu")
    if limit is None:
        return None
    value = parse_quantity(str(limit))
    return None if value is None else float(value)


def processes_per_pod(spec: Mapping[str, Any], config: OperatorConfig) -> int:
    """spec.worker.processes resolved: a number as given; `auto` one per whole core of the CPU limit.

    `auto` without a CPU limit (or under one core) is 1: Locust's own `-1` would count the
    node's cores, not the container's share of them.
    """
    value = spec.get("worker", {}).get("processes", 1)
    if value == AUTO:
        cores = worker_cpu_limit(spec, config)
        return 1 if cores is None else max(1, min(MAX_PROCESSES, math.floor(cores)))
    return int(value)


def cpu_limit_warning(spec: Mapping[str, Any], config: OperatorConfig) -> str | None:
    """A warning when spec.worker.processes is a number above the pod's CPU limit in cores.

    Allowed (an I/O-bound test may want it), but each Locust process is one busy thread:
    more of them than cores share the CPU, and their response times include the wait.
    `auto` follows the limit, and without a limit there is nothing to compare.
    """
    value = spec.get("worker", {}).get("processes", 1)
    cores = worker_cpu_limit(spec, config)
    if value == AUTO or cores is None or int(value) <= max(1, math.ceil(cores)):
        return None
    processes = int(value)
    return (f"spec.worker.processes is {processes} but the worker CPU limit is {cores:g} "
            f"core{'' if cores == 1 else 's'}: each pod's {processes} Locust processes share it "
            f"({cores / processes:.2g} core each) and may report over 90% CPU; give the pods a core per "
            f"process (spec.worker.resources.limits.cpu: {processes}) or set processes: auto")


def locust_workers(spec: Mapping[str, Any], config: OperatorConfig) -> int:
    """The Locust workers the master waits for: worker pods x processes per pod."""
    return int(spec.get("worker", {}).get("replicas", 0)) * processes_per_pod(spec, config)
