"""How the in-cluster test servers (targets, package index, git server) say they are up."""

from __future__ import annotations

from typing import Any


def serving_once_up(path: str, port: int | str) -> dict[str, Any]:
    """A startup probe and no readiness probe: Ready (and in the Service's endpoints) once
    `path` answers, and never taken out again. A readiness probe (1 s timeout, 3 misses)
    took a busy target out of its endpoints on the loaded 2-core node, and kube-proxy
    then refused the load test's connections (CI, 2026-12-02: 29% ConnectionRefusedError
    in a run that must pass). A server that never answers is restarted after a minute."""
    return {"startupProbe": {"httpGet": {"path": path, "port": port}, "periodSeconds": 1,
                             "timeoutSeconds": 5, "failureThreshold": 60}}
