"""The rendered args are accepted by Locust's own parser with the prescribed values.

Locust is imported in a subprocess: it monkey-patches the standard library with
gevent on import, which must not happen inside the test process.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import master_args, render, split_seed, worker_args
from tests.support.examples import BASE_TEST, EXAMPLE_TESTS, load_example

_PARSE = """
import json, sys
from locust.argument_parser import parse_options
options = parse_options(json.loads(sys.stdin.read()))
print(json.dumps({k: v for k, v in vars(options).items()
                  if isinstance(v, (str, int, float, bool, list, type(None)))}))
"""


def parse_options(args: list[str]) -> SimpleNamespace:
    """Locust's own argument parser, run in a separate process."""
    result = subprocess.run([sys.executable, "-c", _PARSE], input=json.dumps(args),
                            capture_output=True, text=True)
    assert result.returncode == 0, f"locust rejected {args}: {result.stderr}"
    return SimpleNamespace(**json.loads(result.stdout.strip().splitlines()[-1]))


def _args(test: dict[str, Any]) -> dict[str, list[str]]:
    out = {}
    for obj in render(test, OperatorConfig()):
        if obj["kind"] == "Job":
            role = obj["metadata"]["labels"]["app.kubernetes.io/component"]
            out[role] = obj["spec"]["template"]["spec"]["containers"][0]["args"]
    return out


@pytest.mark.parametrize("example", EXAMPLE_TESTS)
def test_locust_parses_rendered_args(example: str) -> None:
    test = load_example(example)
    args = _args(test)
    master = parse_options(args["master"])
    worker = parse_options(args["worker"])
    assert master.master and not master.worker
    assert master.master_bind_port == 5557
    processes = test["spec"]["worker"].get("processes", 1)
    assert master.expect_workers == test["spec"]["worker"]["replicas"] * processes
    assert master.autostart is True
    # The master outlives the run by spec.webUI.keepAfterRun when that is longer.
    keep = test["spec"].get("webUI", {}).get("keepAfterRun", 0)
    assert master.autoquit == max(test["spec"]["master"].get("autoquit", {}).get("timeout", 60), keep)
    assert master.enable_rebalancing and master.only_summary
    assert worker.worker and not worker.master
    assert worker.master_host == f"{test['metadata']['name']}-master"
    assert worker.master_port == 5557
    assert worker.processes == (processes if processes > 1 else None)  # Locust's own parse


def test_extra_args_come_last_and_win() -> None:
    test = copy.deepcopy(BASE_TEST)
    test["spec"]["master"]["extraArgs"] = ["--expect-workers=1", "--loglevel", "DEBUG"]
    args = _args(test)["master"]
    assert args[-3:] == ["--expect-workers=1", "--loglevel", "DEBUG"]
    options = parse_options(args)
    assert options.expect_workers == 1
    assert options.loglevel == "DEBUG"


def test_autostart_and_autoquit_switches() -> None:
    test = copy.deepcopy(BASE_TEST)
    test["spec"]["master"]["autostart"] = False
    test["spec"]["master"]["autoquit"] = {"enabled": False}
    args = _args(test)["master"]
    assert "--autostart" not in args
    assert "--autoquit" not in args
    options = parse_options(args)
    assert options.autoquit == -1


def test_quoted_seed_arrives_unquoted() -> None:
    args = _args(load_example("env-and-secrets"))["master"]
    options = parse_options(args)
    assert options.host == "http://demo-target:8080"
    assert options.tags == ["smoke checkout"]


@pytest.mark.parametrize(("seed", "expected"), [
    ("-u 10 -r 2", ["-u", "10", "-r", "2"]),
    ("--host 'http://a b'", ["--host", "http://a b"]),
    ('--tags "a b" c', ["--tags", "a b", "c"]),
    ("--host $HOME `id` ;rm", ["--host", "$HOME", "`id`", ";rm"]),
    ("a\\ b", ["a b"]),
    ("  spaced\tout\n", ["spaced", "out"]),
])
def test_split_seed_like_a_shell_without_expansion(seed: str, expected: list[str]) -> None:
    assert split_seed(seed) == expected


def test_role_args_order() -> None:
    spec = copy.deepcopy(BASE_TEST["spec"])
    spec["master"].update(autostart=True, autoquit={"enabled": True, "timeout": 7})
    assert master_args(spec)[-9:] == ["--master", "--master-port=5557", "--expect-workers=3",
                                      "--autostart", "--autoquit", "7", "--enable-rebalancing",
                                      "--only-summary", "--json"]
    assert "--expect-workers-max-wait=30" in master_args(spec, 30)
    assert not any(a.startswith("--expect-workers-max-wait") for a in master_args(spec, 0))
    assert worker_args(spec, "m")[-3:] == ["--worker", "--master-port=5557", "--master-host=m"]
