"""Mutation testing of the pure core: mutmut 3 against the unit tests (scripts/mutation).

    scripts/mutation                          # every module of PURE_CORE
    scripts/mutation rules/status.py ...      # some modules (paths under controller/locust_operator)
    scripts/mutation --diffs rules/health.py  # and the diff of each surviving mutant

It prints, per module, the mutants and how many the tests killed, then the survivors;
the last line is `mutation: N killed of M (P%)`. A survivor is a change to the code
that no unit test noticed: a missing test, or an equivalent mutant (docs/testing.md).

mutmut names a mutant after its file's path and strips only a leading `src.` from it,
so it runs in a copy of the tracked files with controller/ as src/ (and controller/ a
link to it, for the tests that read the sources), under the cache directory.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "locust_operator"
# The pure decision modules (issue: every one kills >= 90% of its mutants).
PURE_CORE = ("api/contract.py", "rules/status.py", "rules/verdict.py", "rules/thresholds.py",
             "rules/baseline.py", "rules/health.py", "rules/observe.py", "rules/results.py",
             "rules/locust_stats.py", "rules/schedule.py", "rules/schedule_plan.py")
# Unit tests that check no pure module, yet cost time in mutmut's first, full pass; this
# tool's own (git is not in the copy); and test_wait.py, the CLI's watch loop, whose
# timing failed it in mutmut's clean run once (it checks no pure module either).
NOT_RUN = ("test_history_browser.py", "test_images.py", "test_cluster_scripts.py",
           "test_package_index.py", "test_git_server.py", "test_mutation_tool.py", "test_wait.py")

# mutmut's exit codes per mutant (mutmut/stats.py), grouped as this report counts them.
KILLED = {1, 3, 37}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {36, 24, -24, 152, 255}


@dataclass
class Tally:
    """The mutants of one module, by outcome; survivors by name."""

    module: str
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    survivors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def killed(self) -> int:
        return self.counts["killed"] + self.counts["timeout"]  # a mutant that hangs is noticed


def outcome(exit_code: int | None) -> str:
    if exit_code in KILLED:
        return "killed"
    if exit_code in SURVIVED:
        return "survived"
    if exit_code in NO_TESTS:
        return "no tests"
    if exit_code in TIMEOUT:
        return "timeout"
    return "not checked" if exit_code is None else "suspicious"


def tally(module: str, meta: Mapping[str, object]) -> Tally:
    """One module's outcomes from the `.meta` file mutmut writes beside its mutated copy."""
    found = Tally(module)
    codes = meta.get("exit_code_by_key")
    for name, code in sorted(codes.items() if isinstance(codes, dict) else []):
        kind = outcome(code if isinstance(code, int) else None)
        found.counts[kind] += 1
        if kind in ("survived", "no tests"):
            found.survivors.append(str(name))
    return found


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def report(tallies: Iterable[Tally]) -> list[str]:
    """The table, the survivors, and the last line."""
    rows = list(tallies)
    lines = ["| module | mutants | killed | survived | no tests | score |", "|---|---|---|---|---|---|"]
    lines += [f"| {t.module} | {t.total} | {t.killed} | {t.counts['survived']} | {t.counts['no tests']} | "
              f"{percent(t.killed, t.total)} |" for t in rows]
    for t in rows:
        if t.survivors:
            lines.append(f"survivors in {t.module} ({len(t.survivors)}):")
            lines += [f"  {name}" for name in t.survivors]
    killed, total = sum(t.killed for t in rows), sum(t.total for t in rows)
    lines.append(f"mutation: {killed} killed of {total} ({percent(killed, total)})")
    return lines


def config_toml(modules: Iterable[str], tests: Iterable[str], also_copy: Iterable[str]) -> str:
    """The [tool.mutmut] table of the work copy's pyproject.toml."""
    def listed(items: Iterable[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"
    return (f"\n[tool.mutmut]\nsource_paths = [\"src/{PACKAGE}\"]\n"
            f"only_mutate = {listed(f'src/{PACKAGE}/{m}' for m in modules)}\n"
            f"pytest_add_cli_args_test_selection = {listed(tests)}\n"
            "pytest_add_cli_args = [\"-p\", \"no:cacheprovider\", \"-q\", \"-x\", \"-p\", \"no:xdist\"]\n"
            f"also_copy = {listed(also_copy)}\n")


def unit_tests(root: Path) -> list[str]:
    return sorted(f"tests/unit/{p.name}" for p in (root / "tests" / "unit").glob("test_*.py")
                  if p.name not in NOT_RUN)


def prepare(work: Path, modules: list[str]) -> None:
    """A fresh copy of the tracked files, controller/ as src/, with mutmut's configuration."""
    if work.exists():
        shutil.rmtree(work)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO_ROOT / name
        if not source.is_file():
            continue
        target = work / ("src" + name[len("controller"):] if name.startswith("controller/") else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    (work / "controller").symlink_to("src")
    # The tests read examples, templates, the chart, workflows...: mutmut copies them all.
    also_copy = sorted(p.name for p in work.iterdir() if p.name not in ("src", "tests"))
    with (work / "pyproject.toml").open("a") as config:
        config.write(config_toml(modules, unit_tests(work), also_copy))


def results(work: Path, modules: list[str]) -> list[Tally]:
    found = []
    for module in modules:
        meta = work / "mutants" / "src" / PACKAGE / f"{module}.meta"
        found.append(tally(module, json.loads(meta.read_text()) if meta.exists() else {}))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*",
                        help=f"paths under controller/{PACKAGE} (default: the pure core)")
    parser.add_argument("--diffs", action="store_true", help="print each survivor's diff (mutmut show)")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    args = parser.parse_args(argv)
    modules = args.modules or list(PURE_CORE)
    missing = [m for m in modules if not (REPO_ROOT / "controller" / PACKAGE / m).is_file()]
    if missing:
        print(f"mutation: no such module under controller/{PACKAGE}: {', '.join(missing)}", file=sys.stderr)
        return 2
    cache = Path(os.environ.get("LOCUST_OPERATOR_CACHE", Path.home() / ".cache" / "locust-operator"))
    work = cache / "mutation"
    prepare(work, modules)
    env = {**os.environ, "PYTHONPATH": "src:."}  # relative: mutmut runs the tests in mutants/
    log = work.parent / "mutation.log"
    with log.open("w") as out:
        run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.children)],
                             cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    tallies = results(work, modules)
    checked = sum(t.total - t.counts["not checked"] for t in tallies)
    if run.returncode != 0 or not checked:
        print(log.read_text(errors="replace").replace("\r", "\n")[-3000:], file=sys.stderr)
        print(f"mutation: mutmut run failed (exit {run.returncode}; its output: {log})", file=sys.stderr)
        return 1
    lines = report(tallies)
    print("\n".join(lines[:-1]))
    if args.diffs:
        for name in (n for t in tallies for n in t.survivors):
            shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, env=env,
                                   capture_output=True, text=True)
            print(shown.stdout)
    print(lines[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
