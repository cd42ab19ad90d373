"""The chart's operator installed on the real-node cluster for one test module (helm install)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHART = Path(__file__).resolve().parents[2] / "charts" / "locust-operator"


def install_operator(cluster: Any, release: str, operator_ns: str, watched_ns: str, grace: int,
                     *values: str) -> None:
    """`helm install` of the chart watching one namespace, with the settings the real-node
    modules share: a short pod start-up grace, live stats every 2 s, and small requests of
    the Locust pods and their init containers so that a module's scenarios fit the node's 2 CPUs at once."""
    cluster.helm("install", release, str(CHART), "-n", operator_ns, "--wait", "--timeout", "120s",
                 "--set", f"watchNamespaces={{{watched_ns}}}",
                 "--set", f"config.podHealthGraceSeconds={grace}",
                 "--set", "config.statsPollSeconds=2",
                 "--set", "config.resources.requests.cpu=10m",
                 "--set", "config.resources.requests.memory=64Mi",
                 # A pod's CPU request is the larger of its init containers' and its containers':
                 # 21 pods of 100m (the default) would not fit the node.
                 "--set", "config.initContainers.resources.requests.cpu=10m",
                 "--set", "config.initContainers.resources.requests.memory=64Mi", *values)
