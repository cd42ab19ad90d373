"""scripts/mutation.py: what it makes of mutmut's results, and the copy it runs mutmut in."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.examples import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import mutation


@pytest.mark.parametrize(("code", "kind"), [
    (1, "killed"), (3, "killed"), (37, "killed"), (0, "survived"), (5, "no tests"), (33, "no tests"),
    (36, "timeout"), (-24, "timeout"), (None, "not checked"), (35, "suspicious"), (-11, "suspicious"),
])
def test_each_exit_code_has_its_outcome(code: int | None, kind: str) -> None:
    assert mutation.outcome(code) == kind


def test_a_modules_tally_counts_outcomes_and_names_the_survivors() -> None:
    meta = {"exit_code_by_key": {"m.x_b__mutmut_2": 0, "m.x_a__mutmut_1": 1, "m.x_a__mutmut_3": 33,
                                 "m.x_c__mutmut_1": 36, "m.x_c__mutmut_2": None}}
    found = mutation.tally("rules/m.py", meta)
    assert (found.total, found.killed) == (5, 2)  # a timeout is noticed; not checked is not
    assert found.survivors == ["m.x_a__mutmut_3", "m.x_b__mutmut_2"]  # sorted; no tests counts
    assert mutation.tally("rules/none.py", {}).total == 0


def test_the_report_ends_with_the_total_line() -> None:
    tallies = [mutation.tally("a.py", {"exit_code_by_key": {"k1": 1, "k2": 1, "k3": 0}}),
               mutation.tally("b.py", {"exit_code_by_key": {"k4": 1}})]
    lines = mutation.report(tallies)
    assert lines[-1] == "mutation: 3 killed of 4 (75.0%)"
    assert "| a.py | 3 | 2 | 1 | 0 | 66.7% |" in lines and "| b.py | 1 | 1 | 0 | 0 | 100.0% |" in lines
    assert lines[lines.index("survivors in a.py (1):") + 1] == "  k3"
    assert mutation.report([])[-1] == "mutation: 0 killed of 0 (n/a)"


def test_the_work_copy_has_the_package_under_src_and_mutmuts_settings(tmp_path: Path) -> None:
    work = tmp_path / "work"
    mutation.prepare(work, ["rules/health.py"])
    assert (work / "src" / "locust_operator" / "rules" / "health.py").read_bytes() == \
        (ROOT / "controller" / "locust_operator" / "rules" / "health.py").read_bytes()
    assert (work / "controller").resolve() == (work / "src").resolve()
    settings = tomllib.loads((work / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert settings["only_mutate"] == ["src/locust_operator/rules/health.py"]
    assert settings["source_paths"] == ["src/locust_operator"]
    assert "tests/unit/test_health.py" in settings["pytest_add_cli_args_test_selection"]
    assert "tests/unit/test_history_browser.py" not in settings["pytest_add_cli_args_test_selection"]
    args = settings["pytest_add_cli_args"]
    assert args[args.index("--deselect") + 1] == mutation.DESELECTED[0] and "no:xdist" in args
    mutation.prepare(work, ["api/contract.py"])  # again: a fresh copy, not a second table
    assert tomllib.loads((work / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"] == \
        ["src/locust_operator/api/contract.py"]


def test_an_unknown_module_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert mutation.main(["rules/nosuch.py"]) == 2
    assert capsys.readouterr().err.strip() == \
        "mutation: no such module under controller/locust_operator: rules/nosuch.py"


# Every imported name may be a module (`from P.rules import health`), so a function's name
# gives a path too (rules/status/derive_status.py): it matches no module, so it is harmless.
@pytest.mark.parametrize(("source", "modules"), [
    ("from locust_operator.rules.status import derive_status\n",
     {"rules/status.py", "rules/status/derive_status.py"}),
    ("from locust_operator.rules import health, locust_stats as stats\n",
     {"rules.py", "rules/health.py", "rules/locust_stats.py"}),
    ("from locust_operator.rules import (\n    jobs,\n    verdict,\n)\n",
     {"rules.py", "rules/jobs.py", "rules/verdict.py"}),
    ("import locust_operator.api.contract as contract\n", {"api/contract.py"}),
    ("    from locust_operator.api import config\n", {"api.py", "api/config.py"}),
    ("from locust import HttpUser\nimport locust_operatorx\n# from locust_operator.rules import status\n",
     set()),
])
def test_imports_are_read_as_paths_under_the_package(source: str, modules: set[str]) -> None:
    assert mutation.imported(source) == modules


def test_own_tests_are_those_that_reach_the_module_through_the_pure_layers(tmp_path: Path) -> None:
    work = tmp_path / "work"
    mutation.prepare(work, ["rules/verdict.py"], own=True)
    tests = tomllib.loads((work / "pyproject.toml").read_text())["tool"]["mutmut"][
        "pytest_add_cli_args_test_selection"]
    # verdict has no test file of its own: status uses it, and test_status imports status.
    assert "tests/unit/test_status.py" in tests
    assert "tests/unit/test_crd.py" not in tests and "tests/unit/test_startup.py" not in tests
    assert set(tests) < set(mutation.unit_tests(work))
    assert mutation.importers(work, "rules/observe.py") == {"rules/observe.py"}  # the shell is not a way


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                   capture_output=True)


def test_changed_modules_are_the_pure_cores_changed_since_a_ref(tmp_path: Path) -> None:
    rules = tmp_path / "controller" / "locust_operator" / "rules"
    rules.mkdir(parents=True)
    for name in ("status.py", "health.py", "bounded.py"):
        (rules / name).write_text("X = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    assert mutation.changed_modules("HEAD", tmp_path) == []
    for name in ("health.py", "status.py", "bounded.py"):  # bounded is not in the pure core's list
        (rules / name).write_text("X = 2\n")
    assert mutation.changed_modules("HEAD", tmp_path) == ["rules/status.py", "rules/health.py"]


def test_no_changed_module_is_a_zero_line_and_success(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mutation, "changed_modules", lambda ref: [])
    assert mutation.main(["--changed", "HEAD~1", "--fail-under", "90"]) == 0
    assert capsys.readouterr().out.strip() == \
        "mutation: 0 killed of 0 (no module of the pure core changed since HEAD~1)"
