"""The pipeline commands' connection to the cluster: credentials and namespace, like kubectl.

The commands (`wait`, `report`) log in in kubectl's order (controller/credentials.py):
the kubeconfig (KUBECONFIG, else ~/.kube/config) first, the pod's service account
only when there is none.
"""

from __future__ import annotations

import kopf

from locust_operator.controller import credentials
from locust_operator.controller.kube_api import KubeApi


class ClusterError(Exception):
    """No usable credentials (the message is one line for the user)."""


def login() -> kopf.ConnectionInfo:
    """Credentials of the current kubeconfig context, else of the pod's service account."""
    settings = kopf.OperatorSettings()
    try:
        info = credentials.login(kubeconfig_first=True, settings=settings)
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
