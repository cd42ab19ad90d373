"""The pipeline commands' connection to the cluster: credentials and namespace, like kubectl.

The commands (`wait`, `report`) log in with Kopf's own credential readers, as
the operator does (runner.login), but in kubectl's order: the kubeconfig
(KUBECONFIG, else ~/.kube/config) first, the pod's service account only when
there is none. A CI job running in a pod often has a service account mounted
and a kubeconfig for the cluster under test; the kubeconfig must win.
"""

from __future__ import annotations

import kopf

from locust_operator import GROUP, PLURAL, VERSION
from locust_operator.controller.kube_api import KubeApi


class ClusterError(Exception):
    """No usable credentials (the message is one line for the user)."""


def login() -> kopf.ConnectionInfo:
    """Credentials of the current kubeconfig context, else of the pod's service account."""
    settings = kopf.OperatorSettings()
    try:
        info = (kopf.login_with_kubeconfig(settings=settings)
                or kopf.login_with_service_account(settings=settings))
    except (kopf.LoginError, OSError, KeyError, ValueError, TypeError) as exc:
        raise ClusterError(f"cannot read the cluster credentials: {exc}") from None
    if info is None:
        raise ClusterError("no cluster credentials: no kubeconfig (set KUBECONFIG or create "
                           "~/.kube/config) and not in a pod with a service account")
    return info


def connect(namespace: str | None) -> tuple[KubeApi, str]:
    """An API client and the namespace to use: `namespace`, else the context's, else default."""
    info = login()
    try:
        info.as_ssl_context()  # a missing or bad certificate is a credentials problem, said now
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cannot use the cluster credentials: {exc}") from None
    return KubeApi(lambda: info), namespace or info.default_namespace or "default"


def tests_path(namespace: str) -> str:
    """The REST path of the LocustTests in `namespace`."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


def configmap_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"
