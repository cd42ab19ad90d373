"""The pipeline commands' connection to the cluster: credentials and namespace, like kubectl.

The commands (`wait`, `report`, `ui`, ...) log in in kubectl's order
(controller/credentials.py): the kubeconfig (KUBECONFIG, else ~/.kube/config)
first, the pod's service account only when there is none. `--kubeconfig FILE` and
`--context NAME` mean what they mean to kubectl.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import kopf
import yaml

from locust_operator.controller import credentials
from locust_operator.controller.kube_api import KubeApi


class ClusterError(Exception):
    """No usable credentials (the message is one line for the user)."""


@contextlib.contextmanager
def _kubeconfig(path: str | None, context: str | None) -> Iterator[None]:
    """KUBECONFIG as `--kubeconfig`/`--context` ask, while the credentials are read.

    Kopf reads KUBECONFIG's files with kubectl's merge rule (the first file that sets
    current-context wins), so a context is chosen by a first file that sets only that.
    """
    if path is None and context is None:
        yield  # kopf reads KUBECONFIG (else ~/.kube/config) as it is
        return
    before = os.environ.get("KUBECONFIG")
    with tempfile.TemporaryDirectory(prefix="locust-operator-") as scratch:
        files = path or before or str(Path("~/.kube/config").expanduser())
        if context is not None:
            chosen = Path(scratch) / "context"
            chosen.write_text(yaml.safe_dump({"current-context": context}))
            files = os.pathsep.join([str(chosen), files])
        os.environ["KUBECONFIG"] = files
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = before


def login(kubeconfig: str | None = None, context: str | None = None) -> kopf.ConnectionInfo:
    """Credentials of the kubeconfig's (current or chosen) context, else of the pod's service account."""
    settings = kopf.OperatorSettings()
    if kubeconfig is not None and not Path(kubeconfig).is_file():
        raise ClusterError(f"--kubeconfig {kubeconfig}: no such file")
    try:
        with _kubeconfig(kubeconfig, context):
            info = credentials.login(kubeconfig_first=True, settings=settings)
    except (kopf.LoginError, OSError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, KeyError) and context is not None and exc.args == (context,):
            raise ClusterError(f"--context {context}: no such context in the kubeconfig") from None
        raise ClusterError(f"cannot read the cluster credentials: {exc}") from None
    if info is None:
        raise ClusterError("no cluster credentials: no kubeconfig (set KUBECONFIG or create "
                           "~/.kube/config) and not in a pod with a service account")
    return info


def connect(namespace: str | None, kubeconfig: str | None = None,
            context: str | None = None) -> tuple[KubeApi, str]:
    """An API client and the namespace to use: `namespace`, else the context's, else default."""
    info = login(kubeconfig, context)
    try:
        info.as_ssl_context()  # a missing or bad certificate is a credentials problem, said now
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cannot use the cluster credentials: {exc}") from None
    return KubeApi(lambda: info), namespace or info.default_namespace or "default"


GLOBAL_FLAGS = ("--kubeconfig", "--context")


def global_flags_first(argv: list[str]) -> list[str]:
    """kubectl's global flags moved before the command, wherever they were given.

    kubectl takes `--context` and `--kubeconfig` anywhere (`kubectl locust wait demo
    --context ci`); the command line's group reads them before the command's name.
    Arguments after `--` are left alone.
    """
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            rest += argv[index:]
            break
        flag = arg.split("=", 1)[0]
        if flag in GLOBAL_FLAGS and "=" in arg:
            front.append(arg)
        elif arg in GLOBAL_FLAGS and index + 1 < len(argv):
            front += [arg, argv[index + 1]]
            index += 1
        else:
            rest.append(arg)
        index += 1
    return front + rest
