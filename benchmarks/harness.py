"""Shared parts of the scale benchmark, the fault script and the fault tests.

- `Timeline`: watches a namespace's LocustTests, Jobs, Services and Pods and
  records when each thing was first seen (monotonic seconds): children
  created, master pod Ready, phase changes, Jobs finished.
- `Operator`: `locust-operator run` as a real process, with its RSS, CPU time
  and Prometheus counters.
- `create_all`: POST many objects with a bounded-concurrency async client (the
  same aiohttp stack and credentials the operator uses); the bare-client
  baseline creates the rendered children with it, the operator runs get their
  LocustTests with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import yaml
from kubernetes import client, config
from tests.support.operator import Operator
from tests.support.timeline import Timeline

from locust_operator.api.contract import GROUP, PLURAL, TEST_NAME_LABEL, VERSION
from locust_operator.controller.kube_api import KubeApi

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Small requests, so thousands of kwok pods fit a few fake nodes.
BENCH_CONFIG = """\
statsPollSeconds: 0
resources:
  requests: {cpu: 10m, memory: 16Mi}
  limits: {cpu: 100m, memory: 64Mi}
metricsExporter:
  resources:
    requests: {cpu: 1m, memory: 8Mi}
    limits: {cpu: 10m, memory: 16Mi}
"""


def api_client() -> client.ApiClient:
    config.load_kube_config()
    return client.ApiClient()


def locust_test(name: str, namespace: str, workers: int = 2) -> dict[str, Any]:
    test: dict[str, Any] = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    test["metadata"] = {"name": name, "namespace": namespace}
    test["spec"]["worker"]["replicas"] = workers
    return test


def create_namespace(api: client.ApiClient, name: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # pods need the "default" ServiceAccount
        with contextlib.suppress(client.ApiException):
            core.read_namespaced_service_account("default", name)
            return
        time.sleep(0.2)
    raise TimeoutError(f"no default ServiceAccount in {name}")


def delete_namespace(api: client.ApiClient, name: str) -> None:
    """Delete a namespace, first releasing tests whose operator is already stopped
    (a live test keeps the operator's finalizer, which only a running operator removes)."""
    custom = client.CustomObjectsApi(api)
    with contextlib.suppress(client.ApiException):
        for test in custom.list_namespaced_custom_object(GROUP, VERSION, name, PLURAL)["items"]:
            if test["metadata"].get("finalizers"):
                custom.patch_namespaced_custom_object(GROUP, VERSION, name, PLURAL,
                                                      test["metadata"]["name"],
                                                      {"metadata": {"finalizers": None}})
    with contextlib.suppress(client.ApiException):
        client.CoreV1Api(api).delete_namespace(name)


# --- creating many objects --------------------------------------------------------------

def _login() -> kopf.ConnectionInfo:
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert info is not None, "no kubeconfig"
    return info


class _CrApi(KubeApi):
    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] != "LocustTest":
            return await super().create(obj)
        namespace = obj["metadata"]["namespace"]
        return await self._request("POST", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}",
                                   obj)


def create_all(groups: list[list[dict[str, Any]]], concurrency: int = 32) -> dict[str, float]:
    """Create each group's objects in order, groups concurrently; when each test's group was done."""
    async def main() -> dict[str, float]:
        api = _CrApi(_login, concurrency=concurrency, timeout=120)
        done: dict[str, float] = {}

        async def one(group: list[dict[str, Any]]) -> None:
            for obj in group:
                await api.create(obj)
            metadata = group[0]["metadata"]  # a LocustTest, or a test's first child
            done[(metadata.get("labels") or {}).get(TEST_NAME_LABEL, metadata["name"])] = time.monotonic()

        try:
            await asyncio.gather(*(one(g) for g in groups))
        finally:
            await api.close()
        return done

    return asyncio.run(main())


# --- what happened, and when -----------------------------------------------------------


def apiserver_metrics() -> str:
    return subprocess.run(["kubectl", "get", "--raw", "/metrics"], capture_output=True, text=True,
                          check=True).stdout


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- the operator as a process ---------------------------------------------------------


@contextlib.contextmanager
def operated_namespace(api: client.ApiClient, prefix: str, workdir: Path, python: str = sys.executable
                       ) -> Iterator[tuple[str, Timeline, Operator]]:
    """A fresh namespace, a Timeline of it and an (unstarted) operator watching it; all
    stopped and deleted afterwards."""
    namespace = f"{prefix}-{secrets.token_hex(3)}"
    create_namespace(api, namespace)
    timeline = Timeline(namespace).start(api)
    operator = Operator([namespace], workdir, python=python, config_text=BENCH_CONFIG)
    try:
        yield namespace, timeline, operator
    finally:
        operator.stop()
        timeline.stop()
        delete_namespace(api, namespace)
