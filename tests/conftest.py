"""Shared helpers for the test suite."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.support.examples import BASE_TEST, ROOT

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
