"""spec.loadShape -> the generated LoadTestShape file and the master's --locustfile list.

Two oracles are Locust itself, run once per module in a subprocess (importing
Locust monkey-patches the standard library with gevent, which must not happen
in the test process): its argument parser reads every rewritten argument list,
and its own locustfile loader imports every generated file and finds the shape
class, whose tick() is then driven at chosen run times.
"""

from __future__ import annotations

import ast
import copy
import enum
import json
import math
import os
import subprocess
import sys
import types
from collections.abc import Mapping
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locust_operator.build.load_shape import (
    DEFAULT_LOCUSTFILE,
    SHAPE_DIR,
    SHAPE_FILE,
    parse_shape,
    shape_source,
    shape_summary,
    with_shape_file,
)
from locust_operator.build.render import master_args
from tests.support.examples import BASE_TEST

P = f"{SHAPE_DIR}/{SHAPE_FILE}"

EXAMPLE: dict[str, Any] = {"stages": [{"duration": 30, "users": 10, "spawnRate": 5},
                                      {"duration": 60, "users": 50, "spawnRate": 10},
                                      {"duration": 90, "users": 0, "spawnRate": 2.5}]}

# (id, master args, expected args). A last -f without a value stays as it is: Locust
# exits with its own usage error, and nothing added after it could fix that.
REWRITES: list[tuple[str, list[str], list[str]]] = [
    ("-f X", ["-f", "user.py", "--headless"], ["-f", f"user.py,{P}", "--headless"]),
    ("-fX", ["-fuser.py"], [f"-fuser.py,{P}"]),
    ("-f=X", ["-f=user.py"], [f"-f=user.py,{P}"]),
    ("--locustfile X", ["--locustfile", "user.py", "-u", "3"], ["--locustfile", f"user.py,{P}", "-u", "3"]),
    ("--locustfile=X", ["--locustfile=user.py"], [f"--locustfile=user.py,{P}"]),
    ("abbreviated --locust X", ["--locust", "user.py"], ["--locust", f"user.py,{P}"]),
    ("abbreviated --loc=X", ["--loc=user.py"], [f"--loc=user.py,{P}"]),
    ("a list already", ["-f", "a.py,b.py"], ["-f", f"a.py,b.py,{P}"]),
    ("a directory", ["-f", "tests/"], ["-f", f"tests/,{P}"]),
    ("a quoted path with a space, already split", ["--locustfile", "my tests/user.py"],
     ["--locustfile", f"my tests/user.py,{P}"]),
    ("an = in the path", ["--locustfile=a=b.py", "-f", "c=d.py"],
     ["--locustfile=a=b.py", "-f", f"c=d.py,{P}"]),
    ("several: the last wins", ["-f", "a.py", "--locustfile=b.py", "-f", "c.py", "-H", "http://t"],
     ["-f", "a.py", "--locustfile=b.py", "-f", f"c.py,{P}", "-H", "http://t"]),
    ("several forms: the last is -fX", ["--locustfile", "a.py", "-fb.py"],
     ["--locustfile", "a.py", f"-fb.py,{P}"]),
    ("none: Locust's default, explicit", ["--headless", "-u", "5"],
     ["--headless", "-u", "5", "--locustfile", f"{DEFAULT_LOCUSTFILE},{P}"]),
    ("none, then User classes", ["--headless", "MyUser"],
     ["--headless", "MyUser", "--locustfile", f"{DEFAULT_LOCUSTFILE},{P}"]),
    ("none, before --", ["--headless", "--", "-f", "x.py"],
     ["--headless", "--locustfile", f"{DEFAULT_LOCUSTFILE},{P}", "--", "-f", "x.py"]),
    ("other --lo options are not it", ["--logfile", "f.log", "--loglevel=INFO", "-f", "u.py"],
     ["--logfile", "f.log", "--loglevel=INFO", "-f", f"u.py,{P}"]),
    ("--locustfiles is not an abbreviation", ["--locustfiles=a.py"],
     ["--locustfiles=a.py", "--locustfile", f"{DEFAULT_LOCUSTFILE},{P}"]),
    ("a negative number is a value", ["-f", "-1", "-u", "2"], [f"-f=-1,{P}", "-u", "2"]),
    ("so is -", ["--locust", "-"], [f"--locust=-,{P}"]),
    ("already listed", ["-f", f"user.py,{P}"], ["-f", f"user.py,{P}"]),
    ("already listed, with a space", [f"--locustfile=user.py, {P}"], [f"--locustfile=user.py, {P}"]),
    ("-f last, without a value", ["--headless", "-f"], ["--headless", "-f"]),
    ("-f followed by an option", ["-f", "--headless"], ["-f", "--headless"]),
    ("an earlier value, then a bare -f", ["-f", "a.py", "-f"], ["-f", "a.py", "-f"]),
]

# (id, spec.loadShape, expected fragment of the ValueError)
REJECTED: list[tuple[str, Any, str]] = [
    ("not an object", [1, 2], "spec.loadShape must be an object"),
    ("no stages", {"stop": True}, "stages must be a non-empty list"),
    ("empty stages", {"stages": []}, "stages must be a non-empty list"),
    ("stages a string", {"stages": "30,10,5"}, "stages must be a non-empty list"),
    ("stages null", {"stages": None}, "stages must be a non-empty list"),
    ("stages an object", {"stages": {"duration": 1}}, "stages must be a non-empty list"),
    ("stage a number", {"stages": [5]}, "stages[0] must be an object, not int"),
    ("unknown stage field", {"stages": [{"duration": 1, "users": 1, "spawnRate": 1, "x": 1}]},
     "stages[0] has unknown field(s): x"),
    ("unknown shape field", {"stages": [{"duration": 1, "users": 1, "spawnRate": 1}], "code": "x"},
     "spec.loadShape has unknown field(s): code"),
    ("missing fields", {"stages": [{"duration": 1}]}, "stages[0] misses users, spawnRate"),
    ("duration a bool", {"stages": [{"duration": True, "users": 1, "spawnRate": 1}]},
     "duration must be a number, not bool"),
    ("duration a string", {"stages": [{"duration": "30", "users": 1, "spawnRate": 1}]},
     "duration must be a number, not str"),
    ("duration null", {"stages": [{"duration": None, "users": 1, "spawnRate": 1}]},
     "duration must be a number, not NoneType"),
    ("duration a float", {"stages": [{"duration": 30.5, "users": 1, "spawnRate": 1}]},
     "duration must be an integer, not float"),
    ("duration 0", {"stages": [{"duration": 0, "users": 1, "spawnRate": 1}]}, "duration must be > 0"),
    ("users a bool", {"stages": [{"duration": 1, "users": False, "spawnRate": 1}]}, "users must be a number"),
    ("users code", {"stages": [{"duration": 1, "users": "__import__('os').system('id')", "spawnRate": 1}]},
     "users must be a number, not str"),
    ("users a float", {"stages": [{"duration": 1, "users": 1.5, "spawnRate": 1}]},
     "users must be an integer"),
    ("users negative", {"stages": [{"duration": 1, "users": -1, "spawnRate": 1}]}, "users must be >= 0"),
    ("spawnRate a bool", {"stages": [{"duration": 1, "users": 1, "spawnRate": True}]},
     "spawnRate must be a number, not bool"),
    ("spawnRate a string", {"stages": [{"duration": 1, "users": 1, "spawnRate": "1"}]},
     "spawnRate must be a number, not str"),
    ("spawnRate null", {"stages": [{"duration": 1, "users": 1, "spawnRate": None}]},
     "spawnRate must be a number, not NoneType"),
    ("spawnRate NaN", {"stages": [{"duration": 1, "users": 1, "spawnRate": math.nan}]},
     "spawnRate must be a finite number"),
    ("spawnRate inf", {"stages": [{"duration": 1, "users": 1, "spawnRate": math.inf}]},
     "spawnRate must be a finite number"),
    ("spawnRate -inf", {"stages": [{"duration": 1, "users": 1, "spawnRate": -math.inf}]},
     "spawnRate must be a finite number"),
    ("spawnRate 0", {"stages": [{"duration": 1, "users": 1, "spawnRate": 0}]}, "spawnRate must be > 0"),
    ("spawnRate negative", {"stages": [{"duration": 1, "users": 1, "spawnRate": -0.5}]},
     "spawnRate must be > 0"),
    ("equal durations", {"stages": [{"duration": 30, "users": 1, "spawnRate": 1},
                                    {"duration": 30, "users": 2, "spawnRate": 1}]},
     "stages[1].duration must be greater than the previous stage's (30 <= 30)"),
    ("decreasing durations", {"stages": [{"duration": 60, "users": 1, "spawnRate": 1},
                                         {"duration": 30, "users": 2, "spawnRate": 1}]},
     "stages[1].duration must be greater"),
    ("stop a string", {**EXAMPLE, "stop": "true"}, "stop must be a boolean, not str"),
    ("stop an int", {**EXAMPLE, "stop": 1}, "stop must be a boolean, not int"),
    ("stop null", {**EXAMPLE, "stop": None}, "stop must be a boolean, not NoneType"),
]

# (id, spec.loadShape, run times, expected (users, spawn rate) or None per time)
HOLD = {**EXAMPLE, "stop": False}
TICKS: list[tuple[str, dict[str, Any], list[float], list[list[Any] | None]]] = [
    ("stop (default)", EXAMPLE, [0, 0.5, 29.999, 30, 30.001, 59.9, 60, 89.99, 90, 90.5, 1e6],
     [[10, 5.0], [10, 5.0], [10, 5.0], [50, 10.0], [50, 10.0], [50, 10.0], [0, 2.5], [0, 2.5],
      None, None, None]),
    ("stop: true", {**EXAMPLE, "stop": True}, [29, 30, 90], [[10, 5.0], [50, 10.0], None]),
    ("stop: false holds the last stage", HOLD, [0, 30, 60, 89.99, 90, 1e6],
     [[10, 5.0], [50, 10.0], [0, 2.5], [0, 2.5], [0, 2.5], [0, 2.5]]),
    ("one stage", {"stages": [{"duration": 5, "users": 1, "spawnRate": 0.25}]}, [0, 4.99, 5],
     [[1, 0.25], [1, 0.25], None]),
    ("one stage, held", {"stages": [{"duration": 5, "users": 7, "spawnRate": 3}], "stop": False},
     [0, 5, 3600], [[7, 3.0], [7, 3.0], [7, 3.0]]),
]

_ORACLE = r"""
import json, os, sys, tempfile
from locust.argument_parser import get_parser
from locust.util.load_locustfile import load_locustfile

job = json.loads(sys.stdin.read())

def parse(argv):
    try:
        options, _ = get_parser(default_config_files=[]).parse_known_args(argv)
    except SystemExit:
        return {"error": True}
    return {"locustfile": options.locustfile, "user_classes": options.user_classes}

def load(source, times):
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, job["file"])
    with open(path, "w") as f:
        f.write(source)
    loaded = load_locustfile(path)  # (users, shapes); Locust < 2.24: (docstring, users, shapes)
    users, shapes = loaded[-2], loaded[-1]
    shape = shapes[0]
    ticks = []
    for t in times:
        shape.get_run_time = lambda t=t: t
        tick = shape.tick()
        ticks.append(None if tick is None else [tick[0], tick[1], type(tick[1]).__name__])
    return {"users": sorted(users), "shapes": [type(s).__name__ for s in shapes],
            "doc": type(shape).__doc__, "abstract": type(shape).abstract, "ticks": ticks}

print(json.dumps({"args": [[parse(a), parse(b)] for a, b in job["args"]],
                  "shapes": [load(s, t) for s, t in job["shapes"]]}))
"""


@pytest.fixture(scope="module")
def locust_oracle() -> dict[str, Any]:
    """Locust's parser on every REWRITES case and its loader on every TICKS case, in one process."""
    job = {"file": SHAPE_FILE, "args": [[before, after] for _, before, after in REWRITES],
           "shapes": [[shape_source(shape), times] for _, shape, times, _ in TICKS]}
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    result = subprocess.run([sys.executable, "-c", _ORACLE], input=json.dumps(job), capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize(("before", "after"), [(b, a) for _, b, a in REWRITES], ids=[i for i, *_ in REWRITES])
def test_with_shape_file_rewrites_the_last_locustfile_option(before: list[str], after: list[str]) -> None:
    original = list(before)
    assert with_shape_file(before, P) == after
    assert before == original  # a new list: the caller's is untouched
    assert with_shape_file(after, P) == after  # idempotent


@pytest.mark.parametrize("case", range(len(REWRITES)), ids=[i for i, *_ in REWRITES])
def test_locust_reads_the_users_files_then_the_shape_file(case: int, locust_oracle: dict[str, Any]) -> None:
    """What Locust's own parser makes of the rewritten args: exactly its old list plus the shape."""
    case_id, before, after = REWRITES[case]
    parsed_before, parsed_after = locust_oracle["args"][case]
    if before == after and "error" in parsed_before:  # a bare -f: Locust's usage error stays
        assert parsed_after == parsed_before == {"error": True}
        return
    assert "error" not in parsed_after, case_id
    assert parsed_after["user_classes"] == parsed_before["user_classes"]
    files = [f.strip() for f in parsed_after["locustfile"].split(",")]
    old = [f.strip() for f in parsed_before["locustfile"].split(",")]
    assert files == (old if P in old else [*old, P])


def test_without_a_locustfile_option_the_default_is_locusts_own(locust_oracle: dict[str, Any]) -> None:
    case = next(i for i, (case_id, *_) in enumerate(REWRITES) if case_id.startswith("none:"))
    assert locust_oracle["args"][case][0]["locustfile"] == DEFAULT_LOCUSTFILE


def test_the_rendered_master_args_gain_the_shape_file() -> None:
    spec = copy.deepcopy(BASE_TEST["spec"])
    plain = master_args(spec)
    shaped = master_args({**spec, "loadShape": EXAMPLE})
    assert shaped == [f"/lotest/src/demo.py,{P}" if a == "/lotest/src/demo.py" else a for a in plain]


@pytest.mark.parametrize(("load_shape", "message"), [(s, m) for _, s, m in REJECTED],
                         ids=[i for i, *_ in REJECTED])
def test_shape_source_rejects_anything_but_the_documented_numbers(load_shape: Any, message: str) -> None:
    for build in (shape_source, shape_summary):
        with pytest.raises(ValueError, match=r"^spec\.loadShape") as caught:
            build(load_shape)
        assert message in str(caught.value)
        assert "__import__" not in str(caught.value)  # the message names types, not hostile text


def test_shape_source_is_deterministic() -> None:
    reordered = {"stop": True, "stages": [dict(reversed(list(s.items()))) for s in EXAMPLE["stages"]]}
    source = shape_source(EXAMPLE)
    assert shape_source(copy.deepcopy(EXAMPLE)) == source == shape_source(reordered)
    assert source.startswith("# Generated by locust-operator from spec.loadShape")
    assert source.endswith("\n") and "\r" not in source
    assert ("SHAPE = json.loads(\n"
            "    '{\"stop\": true, \"stages\": ['\n"
            "    '{\"duration\": 30, \"users\": 10, \"spawnRate\": 5},'\n"
            "    '{\"duration\": 60, \"users\": 50, \"spawnRate\": 10},'\n"
            "    '{\"duration\": 90, \"users\": 0, \"spawnRate\": 2.5}'\n"
            "    ']}'\n"
            ")\n") in source


def _embedded(source: str) -> Any:
    """The one JSON text the file parses, found by the AST: the file holds no other data."""
    tree = ast.parse(source)
    [assign] = [n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "SHAPE"]
    assert isinstance(assign.value, ast.Call) and ast.unparse(assign.value.func) == "json.loads"
    [argument] = assign.value.args
    assert isinstance(argument, ast.Constant) and isinstance(argument.value, str)
    return json.loads(argument.value)


class _Count(enum.IntEnum):
    TEN = 10


def test_values_arrive_as_plain_json_numbers() -> None:
    shape = {"stages": [{"duration": 1, "users": _Count.TEN, "spawnRate": 0.1},
                        {"duration": 2678400, "users": 10_000_000, "spawnRate": 100000}], "stop": False}
    assert _embedded(shape_source(shape)) == {
        "stop": False, "stages": [{"duration": 1, "users": 10, "spawnRate": 0.1},
                                  {"duration": 2678400, "users": 10000000, "spawnRate": 100000}]}
    assert parse_shape(shape).stages[0].users.__class__ is int


def test_shape_summary() -> None:
    assert shape_summary(EXAMPLE) == "3 stages: 10 users by 30s, 50 by 60s, 0 by 90s, then stop"
    assert shape_summary(HOLD) == "3 stages: 10 users by 30s, 50 by 60s, 0 by 90s, then hold 0"
    assert shape_summary({"stages": [{"duration": 5, "users": 1, "spawnRate": 1}]}) == \
        "1 stage: 1 user by 5s, then stop"


@pytest.mark.parametrize("case", range(len(TICKS)), ids=[i for i, *_ in TICKS])
def test_real_locust_finds_the_shape_and_ticks_the_stages(case: int, locust_oracle: dict[str, Any]) -> None:
    """Locust's loader imports the file as the master does; tick() at each run time, boundaries included."""
    _, _, _, expected = TICKS[case]
    loaded = locust_oracle["shapes"][case]
    assert loaded["shapes"] == ["OperatorStages"] and loaded["users"] == [] and loaded["abstract"] is False
    assert "generated by locust-operator" in loaded["doc"]
    assert [t if t is None else t[:2] for t in loaded["ticks"]] == expected
    assert {t[2] for t in loaded["ticks"] if t is not None} == {"float"}


class _StubShape:
    """The part of locust.LoadTestShape the generated class uses (no gevent in this process)."""

    run_time = 0.0

    def get_run_time(self) -> float:
        return self.run_time


def _stub_tick(source: str, run_time: float) -> Any:
    stub = types.ModuleType("locust")
    stub.LoadTestShape = _StubShape  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"__name__": "locust_operator_load_shape"}
    with mock.patch.dict(sys.modules, {"locust": stub}):
        exec(compile(source, SHAPE_FILE, "exec"), namespace)
    shape = namespace["OperatorStages"]()
    shape.run_time = run_time
    return shape.tick()


_stages = st.lists(st.tuples(st.integers(1, 10_000), st.integers(0, 10_000_000),
                             st.floats(0.001, 100_000) | st.integers(1, 100_000)), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(stages=_stages, stop=st.booleans(), run_time=st.floats(0, 100_000))
def test_tick_is_the_stage_whose_end_is_still_ahead(stages: list[tuple[int, int, float]], stop: bool,
                                                     run_time: float) -> None:
    ends = [0]
    for step, _, _ in stages:
        ends.append(ends[-1] + step)
    shape: Mapping[str, Any] = {"stop": stop, "stages": [
        {"duration": end, "users": users, "spawnRate": rate}
        for end, (_, users, rate) in zip(ends[1:], stages, strict=True)]}
    following = [s for s in shape["stages"] if run_time < s["duration"]]
    current = following[0] if following else (None if stop else shape["stages"][-1])
    expected = None if current is None else (current["users"], float(current["spawnRate"]))
    assert _stub_tick(shape_source(shape), run_time) == expected
