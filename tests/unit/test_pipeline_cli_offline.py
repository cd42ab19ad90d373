"""`wait` and `report` when the cluster cannot be asked: one line, exit 2, never a traceback.

The commands run as processes (`python -m locust_operator`) with a kubeconfig
made for each case; tests/integration/test_pipeline_cli.py runs them against
a real API server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ports import free_port


def _kubeconfig(path: Path, server: str, namespace: str | None = None, **cluster: str) -> Path:
    context = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "ctx", "context": context}],
    }))
    return path


def _cli(*args: str, kubeconfig: Path | None, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(home)  # no ~/.kube/config to fall back on
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([sys.executable, "-m", "locust_operator", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", [["wait", "demo"], ["report", "demo"]])
def test_without_credentials(command: list[str], tmp_path: Path) -> None:
    result = _cli(*command, kubeconfig=None, home=tmp_path)
    assert result.returncode == 2
    assert _one_line(result) == (f"{command[0]}: no cluster credentials: no kubeconfig (set KUBECONFIG "
                                 "or create ~/.kube/config) and not in a pod with a service account")


@pytest.mark.parametrize("command", [["wait", "demo"], ["report", "demo", "-o", "json"]])
def test_unreadable_or_unusable_credentials(command: list[str], tmp_path: Path) -> None:
    result = _cli(*command, kubeconfig=tmp_path / "absent", home=tmp_path)
    assert result.returncode == 2
    assert _one_line(result).startswith(f"{command[0]}: cannot read the cluster credentials: ")

    broken = _kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:1",
                         **{"certificate-authority": str(tmp_path / "no-such-ca.crt")})
    result = _cli(*command, kubeconfig=broken, home=tmp_path)
    assert result.returncode == 2
    assert _one_line(result).startswith(f"{command[0]}: cannot use the cluster credentials: ")


@pytest.mark.parametrize("command", [["wait", "demo", "--timeout", "1m"], ["report", "demo"]])
def test_an_unreachable_api_server(command: list[str], tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}", namespace="load")
    result = _cli(*command, kubeconfig=config, home=tmp_path)
    assert result.returncode == 2
    assert _one_line(result).startswith("demo: cannot reach the API server: ")
    assert result.stdout == ""


def test_a_bad_timeout_is_a_usage_error(tmp_path: Path) -> None:
    result = _cli("wait", "demo", "--timeout", "soon", kubeconfig=None, home=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '--timeout': 'soon' is not a duration" in result.stderr
    assert "Traceback" not in result.stderr
