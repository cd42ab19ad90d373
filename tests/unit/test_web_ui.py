"""spec.webUI: the base path, the routes, login, keepAfterRun, interactive tests (pure parts)."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from locust_operator.api.config import OperatorConfig
from locust_operator.build import web_ui
from locust_operator.build.render import master_args, render
from locust_operator.cli.ui import page_url
from locust_operator.controller.creates import PermanentCreateError, create_children
from locust_operator.controller.kube_api import ApiError
from locust_operator.rules.jobs import STOP_AFTER_GRACE, STOP_KEEP_UI, STOP_NOW, role_deadline
from locust_operator.rules.locust_stats import stats_url
from locust_operator.rules.observation import Observation
from locust_operator.rules.status import derive_status
from tests.support.examples import BASE_TEST, load_example

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TEMPLATE = "http://{service}.{namespace}.svc:8089/stats/requests"


def _test(web: dict[str, Any] | None = None, **master: Any) -> dict[str, Any]:
    test = copy.deepcopy(BASE_TEST)
    if web is not None:
        test["spec"]["webUI"] = web
    test["spec"]["master"].update(master)
    return test


@pytest.mark.parametrize(("web", "path"), [
    (None, ""),
    ({}, "/locust/load/demo"),
    ({"keepAfterRun": 60}, "/locust/load/demo"),
    ({"path": "/team-a/checkout"}, "/team-a/checkout"),
])
def test_web_base_path(web: dict[str, Any] | None, path: str) -> None:
    assert web_ui.web_base_path(_test(web)) == path
    assert page_url(4321, _test(web)) == f"http://127.0.0.1:4321{path}/"


def test_the_base_path_of_a_test_without_a_namespace_is_defaults() -> None:
    test = _test({})
    del test["metadata"]["namespace"]
    assert web_ui.web_base_path(test) == "/locust/default/demo"


def _flags(spec: dict[str, Any], base_path: str = "") -> list[str]:
    """The arguments spec.webUI and autostart decide, in order (--autoquit with its value)."""
    args = master_args(spec, 0, 1, base_path)
    picked = [a for a in args if a.startswith("--web") or a in ("--autostart", "--autoquit")]
    if "--autoquit" in args:
        picked.insert(picked.index("--autoquit") + 1, args[args.index("--autoquit") + 1])
    return picked


@pytest.mark.parametrize(("web", "master", "base", "expected"), [
    (None, {}, "", ["--autostart", "--autoquit", "60"]),
    # Interactive: Locust refuses --autoquit without --autostart, so neither is passed.
    (None, {"autostart": False}, "", []),
    (None, {"autostart": False, "autoquit": {"enabled": True, "timeout": 5}}, "", []),
    (None, {"autoquit": {"enabled": False}}, "", ["--autostart"]),
    # keepAfterRun keeps the master up at least that long after the run.
    ({"keepAfterRun": 600}, {}, "/b", ["--autostart", "--autoquit", "600", "--web-base-path=/b"]),
    ({"keepAfterRun": 30}, {"autoquit": {"enabled": True, "timeout": 90}}, "/b",
     ["--autostart", "--autoquit", "90", "--web-base-path=/b"]),
    ({"auth": {"webLogin": True}}, {}, "/b", ["--autostart", "--autoquit", "60", "--web-base-path=/b",
                                              "--web-login"]),
    ({"auth": {"webLogin": False}}, {}, "", ["--autostart", "--autoquit", "60"]),
])
def test_master_arguments(web: dict[str, Any] | None, master: dict[str, Any], base: str,
                          expected: list[str]) -> None:
    assert _flags(_test(web, **master)["spec"], base) == expected


@pytest.mark.parametrize(("web", "templates", "refusal"), [
    (None, [], None),
    ({"keepAfterRun": 60}, [], None),
    ({"ingress": {"host": "h"}}, ["ingress.yaml.j2"], "spec.webUI.ingress"),
    ({"httpRoute": {"parentRefs": [{"name": "g"}]}}, ["httproute.yaml.j2"], "spec.webUI.httpRoute"),
    ({"httpRoute": {"parentRefs": [{"name": "g"}]}, "ingress": {"host": "h"}},
     ["ingress.yaml.j2", "httproute.yaml.j2"], "spec.webUI.ingress"),
])
def test_routes_and_their_refusal(web: dict[str, Any] | None, templates: list[str],
                                  refusal: str | None) -> None:
    spec = _test(web)["spec"]
    assert web_ui.route_templates(spec) == templates
    assert web_ui.route_refusal(spec, OperatorConfig(webRoutes=True)) is None
    said = web_ui.route_refusal(spec, OperatorConfig())
    if refusal is None:
        assert said is None
    else:
        assert said == (f"{refusal}: this operator does not create web UI routes (its chart's "
                        "config.webRoutes is false); remove the route or ask its admins")


def test_the_rendered_routes() -> None:
    objects = render(_test({"path": "/lt/demo", "ingress": {
        "host": "locust.example.com", "annotations": {"nginx.ingress.kubernetes.io/auth-type": "none",
                                                       "a": "b"}},
        "auth": {"basicAuthSecretRef": "pw"}, "httpRoute": {"parentRefs": [{"name": "gw"}]}}),
        OperatorConfig())
    assert [o["kind"] for o in objects] == ["Service", "Job", "Job", "Ingress", "HTTPRoute"]
    ingress, route = objects[3], objects[4]
    assert ingress["metadata"]["name"] == route["metadata"]["name"] == "demo-web"
    # The login wins over an annotation of the same name; the others are kept.
    assert ingress["metadata"]["annotations"] == {
        "a": "b", "nginx.ingress.kubernetes.io/auth-type": "basic",
        "nginx.ingress.kubernetes.io/auth-secret": "pw",
        "nginx.ingress.kubernetes.io/auth-realm": "Locust test demo"}
    assert "tls" not in ingress["spec"] and "ingressClassName" not in ingress["spec"]
    assert ingress["spec"]["rules"] == [{"host": "locust.example.com", "http": {"paths": [{
        "path": "/lt/demo", "pathType": "Prefix",
        "backend": {"service": {"name": "demo-master", "port": {"number": 8089}}}}]}}]
    assert route["spec"] == {"parentRefs": [{"name": "gw"}], "rules": [{
        "matches": [{"path": {"type": "PathPrefix", "value": "/lt/demo"}}],
        "backendRefs": [{"name": "demo-master", "port": 8089}]}]}
    assert route["metadata"]["labels"]["app.kubernetes.io/component"] == "web"
    master = objects[1]["spec"]["template"]["spec"]
    assert "--web-base-path=/lt/demo" in master["containers"][0]["args"]


def test_the_example_routes_carry_the_owner() -> None:
    test = load_example("web-ui")
    test["metadata"].update(namespace="team", uid="u-1")
    objects = render(test, OperatorConfig())
    for route in objects[3:]:
        assert route["metadata"]["namespace"] == "team"
        assert route["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    exporter = objects[1]["spec"]["template"]["spec"]["initContainers"][0]
    uri = {"name": "LOCUST_EXPORTER_URI", "value": "http://localhost:8089/locust/team/web-ui"}
    assert uri in exporter["env"]


@pytest.mark.parametrize(("base", "url"), [
    ("", "http://demo-master.load.svc:8089/stats/requests"),
    ("/locust/load/demo", "http://demo-master.load.svc:8089/locust/load/demo/stats/requests"),
])
def test_the_stats_url_is_under_the_base_path(base: str, url: str) -> None:
    assert stats_url(TEMPLATE, "demo-master", "load", base) == url
    assert stats_url("http://127.0.0.1:9/stats/requests?x=1", "s", "n", base) == \
        f"http://127.0.0.1:9{base}/stats/requests?x=1"


STARTED = {"startTime": (NOW - timedelta(seconds=100)).isoformat().replace("+00:00", "Z"), "active": 1}


@pytest.mark.parametrize(("role", "stop", "keep", "deadline"), [
    ("master", None, 0, None),
    ("master", STOP_NOW, 0, 1),
    ("worker", STOP_NOW, 0, 1),
    ("master", STOP_AFTER_GRACE, 0, None),
    ("worker", STOP_AFTER_GRACE, 0, 131),
    # keepAfterRun: the workers at once, the master keep seconds after now (from the Job's start).
    ("worker", STOP_KEEP_UI, 600, 1),
    ("master", STOP_KEEP_UI, 600, 701),
    ("master", STOP_KEEP_UI, 5, 106),
])
def test_role_deadline(role: str, stop: str | None, keep: int, deadline: int | None) -> None:
    assert role_deadline(STARTED, role, stop, NOW, keep) == deadline


def test_a_finished_master_job_is_not_given_a_deadline() -> None:
    done = {**STARTED, "conditions": [{"type": "Complete", "status": "True"}]}
    assert role_deadline(done, "master", STOP_KEEP_UI, NOW, 60) is None


RESULT = {"requests": 40, "failures": 0, "failRatio": "0", "rps": "4.0"}
RUNNING = {"phase": "Running", "startTime": "2026-12-03T11:58:00Z"}


def _obs(**fields: Any) -> Observation:
    defaults: dict[str, Any] = {
        "generation": 1, "expected_workers": 1, "now": NOW, "grace_seconds": 60, "service": True,
        "master_job": {"ready": 1, "active": 1}, "worker_job": {"ready": 1, "active": 1},
        "master_pods_ready": 1, "worker_pods_ready": 1, "master_pods_live": 1, "worker_pods_live": 1,
        "result": RESULT, "run_stopped": True}
    return Observation(**{**defaults, **fields})


@pytest.mark.parametrize(("fields", "phase", "reason", "message", "stop"), [
    # Without thresholds the verdict waits for the master's exit code...
    ({}, "Running", None, None, None),
    # ...unless the verdict comes when the run stopped: an interactive test, or keepAfterRun.
    ({"verdict_at_stop": True}, "Succeeded", "TestSucceeded",
     "the run stopped: 40 requests, 0 failed (0.00%), 4.0 rps", STOP_NOW),
    ({"verdict_at_stop": True, "result": {**RESULT, "failures": 2, "failRatio": "0.05"}}, "Failed",
     "LocustErrors", "the run stopped with failed requests: 40 requests, 2 failed (5.00%), 4.0 rps",
     STOP_NOW),
    ({"verdict_at_stop": True, "keep_ui_seconds": 120}, "Succeeded", "TestSucceeded",
     "the run stopped: 40 requests, 0 failed (0.00%), 4.0 rps", STOP_KEEP_UI),
    # Not stopped yet: no verdict.
    ({"verdict_at_stop": True, "run_stopped": False}, "Running", None, None, None),
    # An abort ends the master too, kept UI or not.
    ({"verdict_at_stop": True, "keep_ui_seconds": 120, "aborted": True}, "Failed", "Aborted",
     "aborted on request (annotation locust.io/abort); results up to then kept: "
     "40 requests, 0 failed (0.00%), 4.0 rps", STOP_NOW),
    # The master pod already gone: nothing to keep.
    ({"verdict_at_stop": True, "keep_ui_seconds": 120, "master_pods_live": 0}, "Succeeded", "TestSucceeded",
     "the run stopped: 40 requests, 0 failed (0.00%), 4.0 rps", STOP_NOW),
])
def test_the_verdict_when_the_run_stops(fields: dict[str, Any], phase: str, reason: str | None,
                                        message: str | None, stop: str | None) -> None:
    derived = derive_status(RUNNING, _obs(**fields))
    assert derived.status["phase"] == phase
    assert derived.stop_jobs == stop
    completed: dict[str, Any] = next(
        (c for c in derived.status["conditions"] if c["type"] == "TestCompleted"), {})
    if reason is None:
        assert completed.get("status") != "True"
    else:
        assert (completed["reason"], completed["message"]) == (reason, message)


def test_jobs_stopped_says_the_ui_is_kept() -> None:
    derived = derive_status(RUNNING, _obs(verdict_at_stop=True, keep_ui_seconds=120, worker_pods_live=3))
    stopped = next(c for c in derived.status["conditions"] if c["type"] == "JobsStopped")
    assert (stopped["reason"], stopped["message"]) == (
        "TestSucceeded", "the test passed (TestSucceeded); 3 worker pods ended; the master and its web UI "
        "stay up 120s more (webUI.keepAfterRun)")


class _Api:
    def __init__(self, missing: str = "") -> None:
        self.created: list[str] = []
        self.missing = missing

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == self.missing:
            raise ApiError(404, "the server could not find the requested resource")
        self.created.append(f"{obj['kind']}/{obj['metadata']['name']}")
        return obj

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        raise AssertionError("not used")


def _objects() -> list[dict[str, Any]]:
    test = load_example("web-ui")
    test["metadata"].update(namespace="team", uid="u-1")
    return render(test, OperatorConfig())


async def _nothing(_: dict[str, Any]) -> None:
    return None


def test_the_routes_are_created_before_the_jobs() -> None:
    api = _Api()
    asyncio.run(create_children(api, _objects(), "u-1", _nothing))  # type: ignore[arg-type]
    assert api.created == ["Service/web-ui-master", "Ingress/web-ui-web", "HTTPRoute/web-ui-web",
                           "Job/web-ui-master", "Job/web-ui-worker"]


def test_without_the_gateway_api_no_pod_starts_and_the_error_says_why() -> None:
    api = _Api(missing="HTTPRoute")
    with pytest.raises(PermanentCreateError) as caught:
        asyncio.run(create_children(api, _objects(), "u-1", _nothing))  # type: ignore[arg-type]
    assert str(caught.value) == (
        "HTTPRoute web-ui-web: the Gateway API is not installed in this cluster (no "
        "httproutes.gateway.networking.k8s.io); remove spec.webUI.httpRoute or install it")
    assert api.created == ["Service/web-ui-master", "Ingress/web-ui-web"]
