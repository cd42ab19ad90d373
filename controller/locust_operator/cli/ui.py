"""`locust-operator ui NAME`: a test's Locust web UI on a local port, through the API server.

The rules (which master pod, why there is none, what to say while waiting) are
pure functions; `serve` is the shell: it finds the master, forwards a local port
to its web port (cli/port_forward.py, the cluster credentials only: no kubectl)
and ends when the master pod goes away or the user presses Ctrl-C.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp

from locust_operator.api.contract import KIND, MASTER, POD_NAME_LABEL, TERMINAL, WEB_PORT, child_names
from locust_operator.build.web_ui import web_base_path
from locust_operator.cli.port_forward import PROTOCOL, PortForward, one_line
from locust_operator.cli.status_lines import phase
from locust_operator.controller.kube_api import ApiError

Object = dict[str, Any]
POLL_SECONDS = 2.0
PODS_LIMIT, PODS_MAX_BYTES = 20, 1024 * 1024  # a Job's pods: a few; the namespace is the tenant's


class UiError(Exception):
    """The UI cannot be opened (the message is one line for the user)."""


class Cluster(Protocol):
    """What `serve` uses of KubeApi."""

    async def read(self, kind: str, namespace: str, name: str) -> Object: ...

    async def list_labelled(self, kind: str, namespace: str, selector: str, limit: int,
                            cap: int) -> list[Object]: ...

    async def websocket(self, path: str, protocols: tuple[str, ...],
                        max_message: int = ...) -> aiohttp.ClientWebSocketResponse: ...


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def running_master(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """The name of the ready master pod to forward to (the newest, if a Job made several)."""
    ready = [p for p in pods if _ready(p) and not (p.get("metadata") or {}).get("deletionTimestamp")]
    ready.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    return str(ready[-1]["metadata"]["name"]) if ready else None


def finished_line(test: Mapping[str, Any], namespace: str) -> str | None:
    """Why a finished test has no UI to open, and where its results are; None while it runs."""
    name, ended = test["metadata"]["name"], phase(test)
    if ended not in TERMINAL:
        return None
    return (f"{name}: the test has finished ({ended}): its master and web UI are gone; its kept "
            f"report: locust-operator report {name} -n {namespace} --file report.html")


def waiting_line(test: Mapping[str, Any]) -> str:
    """The progress line while the master is not running yet: the phase and what holds it."""
    name = test["metadata"]["name"]
    conditions = {c.get("type"): c for c in (test.get("status") or {}).get("conditions") or []
                  if isinstance(c, dict)}
    pods = conditions.get("PodsHealthy") or {}
    why = f": {one_line(str(pods.get('message')), 200)}" if pods.get("status") != "True" and \
        pods.get("message") else ""
    return f"{name}: waiting for the master to run (test {phase(test) or 'without a status yet'}{why})"


async def _look(api: Cluster, namespace: str, name: str) -> tuple[Object, str | None]:
    """The test and its ready master pod, if any."""
    try:
        test = await api.read(KIND, namespace, name)
    except ApiError as exc:
        if exc.status == 404:
            raise UiError(f"{name}: no LocustTest {name} in namespace {namespace}") from None
        raise
    selector = f"{POD_NAME_LABEL}={child_names(name)[MASTER]}"
    pods = await api.list_labelled("Pod", namespace, selector, PODS_LIMIT, PODS_MAX_BYTES)
    return test, running_master(pods)


def page_url(port: int, test: Mapping[str, Any]) -> str:
    """The local URL of the UI: under the test's web base path (spec.webUI) when it has one."""
    return f"http://127.0.0.1:{port}{web_base_path(test)}/"


async def wait_for_master(api: Cluster, namespace: str, name: str, echo: Callable[[str], None],
                          timeout: float, poll: float = POLL_SECONDS) -> tuple[Object, str]:
    """The test and its master pod once it runs; a line whenever what it waits for changes."""
    said = ""
    async with asyncio.timeout(timeout):
        while True:
            test, pod = await _look(api, namespace, name)
            finished = finished_line(test, namespace)
            if finished:
                raise UiError(finished)
            if pod:
                return test, pod
            line = waiting_line(test)
            if line != said:
                echo(line)
                said = line
            await asyncio.sleep(poll)


async def serve(api: Cluster, namespace: str, name: str, port: int, echo: Callable[[str], None],
                opened: Callable[[str], None], timeout: float, poll: float = POLL_SECONDS) -> None:
    """Forward until the master pod goes away (a line says so); Ctrl-C ends it from outside."""
    try:
        test, pod = await wait_for_master(api, namespace, name, echo, timeout, poll)
    except TimeoutError:
        raise UiError(f"{name}: the master did not run within {timeout:g}s") from None
    forward = PortForward(lambda path: api.websocket(path, (PROTOCOL,)), namespace, pod, WEB_PORT,
                          local_port=port, on_error=lambda line: echo(f"{name}: {line}"))
    try:
        bound = await forward.start()
    except OSError as exc:
        raise UiError(f"{name}: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    try:
        url = page_url(bound, test)
        echo(f"{name}: Locust web UI at {url} (pod {pod}, through the API server; Ctrl-C to stop)")
        opened(url)
        while True:
            await asyncio.sleep(poll)
            test, now = await _look(api, namespace, name)
            if now != pod:
                ended = phase(test)
                echo(f"{name}: the master pod {pod} is gone" + (f" (test {ended})" if ended else "")
                     + ": the forward is closed")
                return
    finally:
        await forward.close()
