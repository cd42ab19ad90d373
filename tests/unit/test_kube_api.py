"""The controller's async API client against a small local HTTP server (no cluster).

Requests, paths, content types, error mapping, re-login after a 401, and the
priority order in which queued requests are sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import kopf
from aiohttp import web

from locust_operator.controller.kube_api import CREATE, EVENT, STATUS, ApiError, KubeApi, PriorityLimit


def test_priority_limit_serves_the_most_urgent_waiter_first() -> None:
    async def main() -> list[str]:
        limit = PriorityLimit(1)
        order: list[str] = []
        release = asyncio.Event()

        async def holder() -> None:
            async with limit.hold(CREATE):
                await release.wait()

        async def waiter(name: str, priority: int) -> None:
            async with limit.hold(priority):
                order.append(name)

        first = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiters = [asyncio.create_task(waiter(n, p)) for n, p in
                   (("event", EVENT), ("status", STATUS), ("create-1", CREATE), ("create-2", CREATE))]
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(waiter("cancelled", CREATE))
        await asyncio.sleep(0)
        cancelled.cancel()
        release.set()
        await asyncio.gather(first, *waiters)
        async with limit.hold(EVENT):  # every slot came back
            order.append("after")
        return order

    assert asyncio.run(main()) == ["status", "create-1", "create-2", "event", "after"]


class Server:
    """Answers like the API server for the few calls the controller makes."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, Any]] = []
        self.unauthorized = 0  # answer 401 this many times
        self.tokens: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.tokens.append(request.headers.get("Authorization", ""))
        self.requests.append((request.method, request.path, request.content_type,
                              json.loads(body) if body else None))
        if self.unauthorized:
            self.unauthorized -= 1
            return web.json_response({"message": "Unauthorized"}, status=401)
        if request.path.endswith("/taken"):
            return web.json_response({"message": 'jobs "taken" already exists'}, status=409)
        if request.path.endswith("/broken"):
            return web.Response(status=500, text="not json")
        return web.json_response({"metadata": {"name": request.path.rsplit("/", 1)[-1]}})


def run_with_server(scenario: Any) -> Any:
    async def main() -> Any:
        server = Server()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        logins = []

        def login() -> kopf.ConnectionInfo:
            logins.append(1)
            return kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", token=f"token-{len(logins)}")

        api = KubeApi(login, concurrency=2)
        try:
            return await scenario(api, server, logins)
        finally:
            await api.close()
            await runner.cleanup()

    return asyncio.run(main())


def test_requests_go_where_the_api_server_expects_them() -> None:
    async def scenario(api: KubeApi, server: Server, logins: list[int]) -> None:
        job = {"kind": "Job", "metadata": {"name": "t-master", "namespace": "ns"}}
        assert (await api.create(job))["metadata"]["name"] == "jobs"
        await api.create({"kind": "Service", "metadata": {"name": "t-master", "namespace": "ns"}})
        await api.create({"kind": "Event", "metadata": {"generateName": "t.", "namespace": "ns"}})
        await api.read("Job", "ns", "t-master")
        await api.patch_status("ns", "t", {"phase": "Running"})
        assert [(m, p, c) for m, p, c, _ in server.requests] == [
            ("POST", "/apis/batch/v1/namespaces/ns/jobs", "application/json"),
            ("POST", "/api/v1/namespaces/ns/services", "application/json"),
            ("POST", "/api/v1/namespaces/ns/events", "application/json"),
            ("GET", "/apis/batch/v1/namespaces/ns/jobs/t-master", "application/json"),
            ("PATCH", "/apis/locust.io/v2/namespaces/ns/locusttests/t/status",
             "application/merge-patch+json"),
        ]
        assert server.requests[0][3] == job
        assert server.requests[-1][3] == {"status": {"phase": "Running"}}
        assert set(server.tokens) == {"Bearer token-1"}

    run_with_server(scenario)


def test_errors_carry_the_status_and_the_api_servers_message() -> None:
    async def scenario(api: KubeApi, server: Server, logins: list[int]) -> list[tuple[int, str]]:
        errors = []
        for name in ("taken", "broken"):
            try:
                await api.read("Job", "ns", name)
            except ApiError as exc:
                errors.append((exc.status, exc.message))
        return errors

    assert run_with_server(scenario) == [(409, 'jobs "taken" already exists'),
                                         (500, "Internal Server Error")]


def test_a_401_logs_in_again_once() -> None:
    async def scenario(api: KubeApi, server: Server, logins: list[int]) -> tuple[int, int]:
        server.unauthorized = 1
        await api.read("Service", "ns", "x")  # retried with fresh credentials
        server.unauthorized = 2
        try:
            await api.read("Service", "ns", "x")
        except ApiError as exc:
            return exc.status, len(logins)
        raise AssertionError("a second 401 in a row must surface")

    assert run_with_server(scenario) == (401, 3)
