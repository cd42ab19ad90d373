"""What a test's spec.webUI asks for (pure): the base path, the routes, how long the UI stays.

Locust serves its UI and REST API under `--web-base-path`; the Ingress and the
HTTPRoute route that path on a shared host to the master Service's web port, so
one host serves every test of a cluster (`/locust/<namespace>/<name>/`). The
routes are rendered by templates like the other children (templates/ingress.yaml.j2,
templates/httproute.yaml.j2) from the context built here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from locust_operator.api.config import OperatorConfig
from locust_operator.api.contract import (
    DEFAULT_WEB_PATH_PREFIX,
    WEB,
    WEB_PORT,
    child_labels,
    child_names,
    web_route_name,
)

INGRESS_TEMPLATE, HTTP_ROUTE_TEMPLATE = "ingress.yaml.j2", "httproute.yaml.j2"
# ingress-nginx's basic auth (spec.webUI.auth.basicAuthSecretRef): the Secret holds an
# htpasswd file under the key `auth`.
BASIC_AUTH_ANNOTATIONS = ("nginx.ingress.kubernetes.io/auth-type", "nginx.ingress.kubernetes.io/auth-secret",
                          "nginx.ingress.kubernetes.io/auth-realm")


def web_ui(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    found = spec.get("webUI")
    return found if isinstance(found, Mapping) else {}


def web_base_path(test: Mapping[str, Any]) -> str:
    """Locust's `--web-base-path` for the test: "" without spec.webUI (the UI at /)."""
    spec = test.get("spec") or {}
    if "webUI" not in spec:
        return ""
    metadata = test.get("metadata") or {}
    return str(web_ui(spec).get("path") or
               f"{DEFAULT_WEB_PATH_PREFIX}/{metadata.get('namespace', 'default')}/{metadata['name']}")


def keep_after_run(spec: Mapping[str, Any]) -> int:
    """Seconds the master and its UI stay up after the run stopped (webUI.keepAfterRun)."""
    return max(0, int(web_ui(spec).get("keepAfterRun", 0) or 0))


def interactive(spec: Mapping[str, Any]) -> bool:
    """An interactive test: its master waits for someone to start the run in the web UI."""
    return not (spec.get("master") or {}).get("autostart", True)


def route_templates(spec: Mapping[str, Any]) -> list[str]:
    """The templates of the routes the test asks for, in creation order."""
    ui = web_ui(spec)
    wanted = (("ingress", INGRESS_TEMPLATE), ("httpRoute", HTTP_ROUTE_TEMPLATE))
    return [template for key, template in wanted if ui.get(key)]


def route_refusal(spec: Mapping[str, Any], config: OperatorConfig) -> str | None:
    """Why the operator will not create the test's routes (one line), or None."""
    wanted = [key for key in ("ingress", "httpRoute") if web_ui(spec).get(key)]
    if not wanted or config.webRoutes:
        return None
    return (f"spec.webUI.{wanted[0]}: this operator does not create web UI routes "
            "(its chart's config.webRoutes is false); remove the route or ask its admins")


def _ingress(ui: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    given = ui.get("ingress")
    if not given:
        return None
    annotations = dict(given.get("annotations") or {})
    secret = (ui.get("auth") or {}).get("basicAuthSecretRef")
    if secret:  # the login wins over an annotation of the same name
        annotations.update(zip(BASIC_AUTH_ANNOTATIONS, ("basic", secret, f"Locust test {name}"), strict=True))
    return {"host": given["host"], "class_name": given.get("className"), "annotations": annotations,
            "tls_secret": given.get("tlsSecretRef")}


def _http_route(ui: Mapping[str, Any]) -> dict[str, Any] | None:
    given = ui.get("httpRoute")
    if not given:
        return None
    parents = [{key: ref[key] for key in ("name", "namespace", "sectionName") if ref.get(key)}
               for ref in given["parentRefs"]]
    return {"parent_refs": parents, "hostnames": list(given.get("hostnames") or [])}


def route_context(test: Mapping[str, Any]) -> dict[str, Any]:
    """What templates/ingress.yaml.j2 and httproute.yaml.j2 need (under `route`)."""
    name = test["metadata"]["name"]
    ui = web_ui(test["spec"])
    return {
        "name": web_route_name(name),
        "labels": child_labels(name, WEB),
        "path": web_base_path(test),
        "service": child_names(name)["master"],
        "port": WEB_PORT,
        "ingress": _ingress(ui, name),
        "http_route": _http_route(ui),
    }
