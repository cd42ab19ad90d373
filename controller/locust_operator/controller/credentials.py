"""Cluster credentials, read with Kopf's own readers (the operator and the CLI use this).

The operator runs in a pod: its service account first, a kubeconfig only when
there is none (a developer's `locust-operator run`). The pipeline commands
(`wait`, `report`) take kubectl's order: a CI job in a pod often has a service
account mounted and a kubeconfig for the cluster under test; the kubeconfig wins.
"""

from __future__ import annotations

import kopf


def login(kubeconfig_first: bool,
          settings: kopf.OperatorSettings | None = None) -> kopf.ConnectionInfo | None:
    """The first credentials found, in the order asked; None when there are none."""
    settings = settings or kopf.OperatorSettings()
    readers = (kopf.login_with_kubeconfig, kopf.login_with_service_account)
    for read in readers if kubeconfig_first else readers[::-1]:
        info = read(settings=settings)
        if info is not None:
            return info
    return None
