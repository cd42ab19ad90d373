"""Mutation testing of the pure core: mutmut 3 against the unit tests (scripts/mutation).

    scripts/mutation                          # every module of PURE_CORE
    scripts/mutation rules/status.py ...      # some modules (paths under controller/locust_operator)
    scripts/mutation --diffs rules/health.py  # and the diff of each surviving mutant
    scripts/mutation --changed HEAD~3 --own-tests --fail-under 90   # a fast subset (not in CI yet)

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
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "locust_operator"
# The pure decision modules (issue: every one kills >= 90% of its mutants).
PURE_CORE = ("api/contract.py", "rules/status.py", "rules/jobs.py", "rules/verdict.py",
             "rules/thresholds.py", "rules/baseline.py", "rules/health.py", "rules/crash.py",
             "rules/observe.py", "rules/results.py", "rules/locust_stats.py", "rules/schedule.py",
             "rules/schedule_plan.py")
# Unit tests that check no pure module, yet cost time in mutmut's first, full pass; this
# tool's own (git is not in the copy); and test_wait.py, the CLI's watch loop, whose
# timing failed it in mutmut's clean run once (it checks no pure module either).
NOT_RUN = ("test_history_browser.py", "test_images.py", "test_cluster_scripts.py",
           "test_package_index.py", "test_git_server.py", "test_mutation_tool.py", "test_wait.py")
# Single tests left out: this one measures the whole CLI process's peak memory, and
# mutmut's copy of the package (every function beside its mutants) doubles it.
DESELECTED = ("tests/unit/test_inputs.py::test_alias_bomb_is_refused_quickly_and_in_little_memory",)

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


def totals(tallies: Iterable[Tally]) -> tuple[int, int]:
    """Mutants killed and mutants in all, over the modules."""
    rows = list(tallies)
    return sum(t.killed for t in rows), sum(t.total for t in rows)


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
    killed, total = totals(rows)
    lines.append(f"mutation: {killed} killed of {total} ({percent(killed, total)})")
    return lines


def config_toml(modules: Iterable[str], tests: Iterable[str], also_copy: Iterable[str]) -> str:
    """The [tool.mutmut] table of the work copy's pyproject.toml."""
    def listed(items: Iterable[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"
    args = ["-p", "no:cacheprovider", "-q", "-x", "-p", "no:xdist"]
    args += [arg for test in DESELECTED for arg in ("--deselect", test)]
    return (f"\n[tool.mutmut]\nsource_paths = [\"src/{PACKAGE}\"]\n"
            f"only_mutate = {listed(f'src/{PACKAGE}/{m}' for m in modules)}\n"
            f"pytest_add_cli_args_test_selection = {listed(tests)}\n"
            f"pytest_add_cli_args = {listed(args)}\n"
            f"also_copy = {listed(also_copy)}\n")


def unit_tests(root: Path) -> list[str]:
    return sorted(f"tests/unit/{p.name}" for p in (root / "tests" / "unit").glob("test_*.py")
                  if p.name not in NOT_RUN)


_IMPORT = re.compile(
    rf"^\s*(?:from ({PACKAGE}(?:\.\w+)*) import (\([^)]*\)|[^\n]+)|import ({PACKAGE}(?:\.\w+)+))", re.M)
# The layers whose modules count as a way to a module (the shell and the CLI use everything).
PURE_LAYERS = ("api", "rules")


def imported(source: str) -> set[str]:
    """The package's modules a source imports, as paths under the package (rules/status.py):
    `from P.rules.status import x`, `from P.rules import status, health`, `import P.rules.status`."""
    found = set()
    for dotted_from, names, dotted_import in _IMPORT.findall(source):
        path = (dotted_from or dotted_import).removeprefix(PACKAGE).lstrip(".").replace(".", "/")
        if path:
            found.add(f"{path}.py")
        if dotted_from:  # the names may be modules of that package
            found.update(f"{path}/{n}.py" if path else f"{n}.py"
                         for n in re.findall(r"(\w+)(?:\s+as\s+\w+)?", names.strip("()")))
    return found


def importers(root: Path, module: str) -> set[str]:
    """The pure modules that import `module`, directly or through others, and itself."""
    package = root / "src" / PACKAGE
    graph = {str(p.relative_to(package)): imported(p.read_text())
             for layer in PURE_LAYERS for p in (package / layer).rglob("*.py")}
    reach, grew = {module}, True
    while grew:
        more = {name for name, uses in graph.items() if uses & reach} - reach
        reach |= more
        grew = bool(more)
    return reach


def own_tests(root: Path, modules: Iterable[str]) -> list[str]:
    """The unit tests that import one of the modules or a module that uses one: the fast
    subset (mutmut's two first passes over every unit test are most of a run's time)."""
    reach = set().union(*(importers(root, m) for m in modules))
    return [name for name in unit_tests(root) if imported((root / name).read_text()) & reach]


def changed_modules(ref: str, root: Path = REPO_ROOT) -> list[str]:
    """The modules of the pure core that differ between `ref` and the working tree."""
    names = subprocess.run(["git", "diff", "--name-only", ref, "--", f"controller/{PACKAGE}"], cwd=root,
                           check=True, capture_output=True, text=True).stdout.split()
    changed = {n.removeprefix(f"controller/{PACKAGE}/") for n in names}
    return [m for m in PURE_CORE if m in changed]


def prepare(work: Path, modules: list[str], own: bool = False) -> None:
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
        tests = own_tests(work, modules) if own else unit_tests(work)
        config.write(config_toml(modules, tests, also_copy))


def results(work: Path, modules: list[str]) -> list[Tally]:
    found = []
    for module in modules:
        meta = work / "mutants" / "src" / PACKAGE / f"{module}.meta"
        found.append(tally(module, json.loads(meta.read_text()) if meta.exists() else {}))
    return found


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*",
                        help=f"paths under controller/{PACKAGE} (default: the pure core)")
    parser.add_argument("--changed", metavar="REF",
                        help="only the modules of the pure core changed since the git ref REF")
    parser.add_argument("--own-tests", action="store_true",
                        help="only the unit tests that import the modules (fast; others' kills are lost)")
    parser.add_argument("--fail-under", type=float, metavar="P", help="exit 1 when under P%% are killed")
    parser.add_argument("--diffs", action="store_true", help="print each survivor's diff (mutmut show)")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    return parser.parse_args(argv)


def chosen_modules(args: argparse.Namespace) -> list[str]:
    if args.changed:
        return [m for m in changed_modules(args.changed) if not args.modules or m in args.modules]
    return args.modules or list(PURE_CORE)


def mutmut_log(work: Path) -> Path:
    return work.parent / "mutation.log"


def run_mutmut(work: Path, children: int) -> int:
    with mutmut_log(work).open("w") as out:
        run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
                             cwd=work, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    return run.returncode


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": "src:."}  # relative: mutmut runs the tests in mutants/


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    missing = [m for m in args.modules if not (REPO_ROOT / "controller" / PACKAGE / m).is_file()]
    if missing:
        print(f"mutation: no such module under controller/{PACKAGE}: {', '.join(missing)}", file=sys.stderr)
        return 2
    modules = chosen_modules(args)
    if not modules:
        print(f"mutation: 0 killed of 0 (no module of the pure core changed since {args.changed})")
        return 0
    cache = Path(os.environ.get("LOCUST_OPERATOR_CACHE", Path.home() / ".cache" / "locust-operator"))
    work = cache / "mutation"
    prepare(work, modules, own=args.own_tests)
    code = run_mutmut(work, args.children)
    tallies = results(work, modules)
    checked = sum(t.total - t.counts["not checked"] for t in tallies)
    if code != 0 or not checked:
        log = mutmut_log(work)
        print(log.read_text(errors="replace").replace("\r", "\n")[-3000:], file=sys.stderr)
        print(f"mutation: mutmut run failed (exit {code}; its output: {log})", file=sys.stderr)
        return 1
    lines = report(tallies)
    print("\n".join(lines[:-1]))
    if args.diffs:
        for name in (n for t in tallies for n in t.survivors):
            shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, env=_env(),
                                   capture_output=True, text=True)
            print(shown.stdout)
    print(lines[-1])
    killed, total = totals(tallies)
    if args.fail_under is not None and 100 * killed < args.fail_under * total:
        print(f"mutation: under the floor of {args.fail_under:g}% killed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
