"""Shared helpers for the test suite."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Every example LocustTest (configmaps.yaml and demo-target.yaml hold what they need,
# v1/ is for migrate).
EXAMPLE_TESTS = sorted(p.stem for p in EXAMPLES.glob("*.yaml")
                       if p.stem not in ("configmaps", "demo-target"))

BASE_TEST: dict[str, Any] = {
    "apiVersion": "locust.io/v2",
    "kind": "LocustTest",
    "metadata": {"name": "demo", "namespace": "load"},
    "spec": {
        "image": "locustio/locust:2.43.3",
        "master": {"command": "--locustfile /lotest/src/demo.py --host http://target -u 10 -r 2"},
        "worker": {"command": "--locustfile /lotest/src/demo.py", "replicas": 3},
        "testFiles": {"configMapRef": "demo-locustfile"},
    },
}


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def load_example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return loaded


# Under pytest-xdist (scripts/test runs `-n 2 --dist loadgroup`): the tests that need the
# machine's one real node, or build the images into its containerd, run in one worker,
# in order; every other module of tests/integration stays together in one worker (its
# module fixtures, its own cluster per worker); unit and chart tests spread freely.
SERIAL_GROUP = "machine"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("real_node") or item.get_closest_marker("images"):
            item.add_marker(pytest.mark.xdist_group(SERIAL_GROUP))
        elif Path(item.path).resolve().relative_to(ROOT).parts[:2] in (("tests", "integration"),
                                                                      ("tests", "locust")):
            item.add_marker(pytest.mark.xdist_group(Path(item.path).stem))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail at once if xdist would not keep a group together (real-node tests in two
    workers would both try to start the machine's one real node)."""
    if not session.config.getoption("loadgroup", default=False):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(f"pytest-xdist did not apply the test groups (e.g. {lost[0]}): "
                                f"pytest {pytest.__version__} with this pytest-xdist; see pyproject.toml")


@pytest.fixture
def base_test() -> dict[str, Any]:
    return copy.deepcopy(BASE_TEST)
