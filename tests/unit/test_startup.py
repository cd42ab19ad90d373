"""`locust-operator run` set-up: credentials, Kopf settings, the failpoint hook."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import kopf
import pytest

from locust_operator.api.config import OperatorConfig
from locust_operator.controller.startup import NoDiffBase, failpoint, settings_for


@pytest.mark.parametrize(("kubeconfig", "message"), [
    (None, "run: no cluster credentials: not in a pod with a service account, and no kubeconfig"),
    ("/nonexistent/kubeconfig", "run: cannot read the cluster credentials:"),
])
def test_run_without_credentials_is_one_line(tmp_path: Path, kubeconfig: str | None,
                                             message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    result = subprocess.run([sys.executable, "-m", "locust_operator", "run", "--all-namespaces"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_kopf_settings() -> None:
    settings = kopf.OperatorSettings()
    settings_for(OperatorConfig(), settings)
    assert settings.persistence.finalizer == "operator.locust.io/finalizer"
    assert isinstance(settings.persistence.diffbase_storage, NoDiffBase)
    assert settings.scanning.disabled and settings.peering.standalone
    assert not settings.posting.enabled


def test_no_diff_base_keeps_nothing() -> None:
    storage = NoDiffBase()
    body = kopf.Body({"metadata": {"name": "x"}, "spec": {"a": 1}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence={})
    assert not patch


def test_failpoint_is_off_unless_named() -> None:
    assert failpoint(None) is None
    assert failpoint("something-else") is None
    hook = failpoint("after-service-created")
    assert hook is not None
    asyncio.run(hook({"kind": "Job"}))  # only a Service makes it exit


def test_kopf_gets_a_bounded_connection_pool() -> None:
    from locust_operator.controller.startup import KOPF_CONNECTIONS, kopf_session

    async def main() -> tuple[int, str]:
        session = kopf_session(kopf.ConnectionInfo(server="https://127.0.0.1:6443", token="t"))
        assert session is not None
        try:
            return session.aiohttp_session.connector.limit, session.server  # type: ignore[union-attr]
        finally:
            await session.aiohttp_session.close()

    assert kopf_session(None) is None
    assert asyncio.run(main()) == (KOPF_CONNECTIONS, "https://127.0.0.1:6443")
