"""Each example renders to its checked-in golden file.

A deliberate change to the templates shows up as a readable diff; regenerate
with `UPDATE_GOLDEN=1 pytest tests/unit/test_golden.py` and review it.
"""

from __future__ import annotations

import difflib
import os

import pytest
import yaml

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import render
from tests.support.examples import EXAMPLE_TESTS, ROOT, load_example

GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("example", EXAMPLE_TESTS)
def test_example_matches_golden(example: str) -> None:
    rendered = yaml.safe_dump_all(render(load_example(example), OperatorConfig()),
                                  sort_keys=False, explicit_start=True, width=1000)
    golden = GOLDEN / f"{example}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(rendered)
    expected = golden.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), rendered.splitlines(True),
                                        f"golden/{example}.yaml", "rendered"))
    assert rendered == expected, f"rendering changed (UPDATE_GOLDEN=1 to accept):\n{diff}"


def test_every_example_has_a_golden_file() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == EXAMPLE_TESTS
