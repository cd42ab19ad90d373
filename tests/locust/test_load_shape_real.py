"""spec.loadShape with real Locust processes: the generated shape drives a distributed run.

A master and two workers run on loopback against a local HTTP server, with the
args `render` builds for the master (master_args, then with_shape_file naming
the generated file where the ConfigMap would be mounted). Two views of the run:
the master's log, whose "Shape test updating to N users" and "All users spawned"
lines are timed to the millisecond, and its REST API (/stats/requests: `state`,
`user_count`), polled every 0.5 s, which Locust caches for up to 2 s, so what it
shows may be that much behind. Times count from the master's "Shape test starting."
line: process start-up and the wait for workers do not blur the stage windows.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from locust_operator.build.load_shape import SHAPE_FILE, shape_source, with_shape_file
from locust_operator.build.render import master_args, worker_args
from tests.support.examples import BASE_TEST
from tests.support.ports import free_port
from tests.support.real_locust import http_target

USER_FILE = """
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.2)

    @task
    def visit(self):
        self.client.get("/")
"""

# Stages of 6 s: room for the API's 2 s cache and a loaded CI machine (4 s ones flaked there).
STAGES: dict[str, Any] = {"stages": [{"duration": 6, "users": 2, "spawnRate": 10},
                                     {"duration": 12, "users": 6, "spawnRate": 10},
                                     {"duration": 18, "users": 3, "spawnRate": 10}], "stop": True}
TICK_SLACK = 2.5  # tick() runs about once a second; more under load
AUTOQUIT = 2
API_LAG = 2.0 + 0.6  # /stats/requests is memoized for 2 s (locust/web.py), plus a poll and a ramp
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


@dataclass
class Sample:
    at: float  # wall clock, as in the master's log
    state: str
    users: int


@dataclass
class ShapedRun:
    master: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    web_port: int
    master_args: list[str]
    log: Path
    samples: list[Sample] = field(default_factory=list)

    def poll(self, until: float) -> None:
        """Sample the master's REST API every 0.5 s until it exits or `until` (monotonic) passes."""
        while self.master.poll() is None and time.monotonic() < until:
            try:
                url = f"http://127.0.0.1:{self.web_port}/stats/requests"
                with urllib.request.urlopen(url, timeout=1) as resp:
                    stats = json.loads(resp.read())
                self.samples.append(Sample(time.time(), stats["state"], stats["user_count"]))
            except (OSError, ValueError, KeyError):
                pass  # not listening yet, or quitting
            time.sleep(0.5)

    def logged(self, message: str) -> list[float]:
        """Wall-clock times of the master's log lines containing `message`."""
        return [at for at, _ in self.log_lines(message)]

    def log_lines(self, message: str) -> list[tuple[float, str]]:
        """(wall-clock time, line) of the master's log lines containing `message`."""
        found = []
        for line in self.log.read_text().splitlines():
            stamp = _LOG_TIME.match(line)
            if stamp and message in line:
                found.append((datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp(), line))
        return found

    def since_start(self) -> list[tuple[float, str, int]]:
        """(seconds since the shape started, state, users) of every sample."""
        [start] = self.logged("Shape test starting")
        return [(round(s.at - start, 2), s.state, s.users) for s in self.samples]


@contextmanager
def shaped_run(workdir: Path, target: str, load_shape: dict[str, Any],
               extra: str = "") -> Iterator[ShapedRun]:
    """A master (with the generated shape file) and two workers; whatever still runs is killed after."""
    user = workdir / "user.py"
    user.write_text(USER_FILE)
    shape = workdir / "load-shape" / SHAPE_FILE
    shape.parent.mkdir()
    shape.write_text(shape_source(load_shape))
    master_port, web_port = free_port(), free_port()
    spec = copy.deepcopy(BASE_TEST["spec"])
    spec["master"] = {"command": f"--locustfile {user} --host {target} {extra}",
                      "autoquit": {"enabled": True, "timeout": AUTOQUIT},
                      "extraArgs": [f"--master-bind-port={master_port}", "--master-bind-host=127.0.0.1",
                                    f"--web-port={web_port}", "--web-host=127.0.0.1"]}
    spec["worker"] = {"command": f"--locustfile {user}", "replicas": 2,
                      "extraArgs": [f"--master-port={master_port}"]}
    # render's own master args; only the shape file's path differs from the pod's mount.
    args = with_shape_file(master_args(spec), str(shape))
    locust = [sys.executable, "-m", "locust"]
    log = workdir / "master.log"
    master = subprocess.Popen([*locust, *args], cwd=workdir, stdout=log.open("w"), stderr=subprocess.STDOUT)
    workers = [subprocess.Popen([*locust, *worker_args(spec, "127.0.0.1")], cwd=workdir,
                                stdout=(workdir / f"worker{i}.log").open("w"), stderr=subprocess.STDOUT)
               for i in range(2)]
    try:
        yield ShapedRun(master, workers, web_port, args, log)
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def _active(load_shape: dict[str, Any], start: float, end: float) -> set[int]:
    """Users of every stage that overlaps [start, end] (seconds since the shape started)."""
    begins = [0, *[s["duration"] for s in load_shape["stages"]]]
    return {s["users"] for begin, s in zip(begins, load_shape["stages"], strict=False)
            if begin <= end and s["duration"] >= start}


@pytest.mark.timeout(60)
def test_the_master_follows_the_stages_then_stops_by_itself(tmp_path: Path) -> None:
    with http_target() as target, shaped_run(tmp_path, target, STAGES) as run:
        files = f"{tmp_path / 'user.py'},{tmp_path / 'load-shape' / SHAPE_FILE}"
        assert run.master_args[:2] == ["--locustfile", files]
        run.poll(until=time.monotonic() + 45)
        code = run.master.wait(timeout=10)
        ended = time.time()
        for worker in run.workers:
            worker.wait(timeout=10)
        log = run.log.read_text()
        samples = run.since_start()
    print("samples (s since shape start, state, users):", samples)  # the report's per-stage counts
    assert code == 0, log
    [start] = run.logged("Shape test starting")
    updates = [(at - start, int(m.group(1))) for at, line in run.log_lines("Shape test updating to")
               if (m := re.search(r"updating to (\d+) users", line))]
    spawned = [(at - start, int(m.group(1))) for at, line in run.log_lines("All users spawned")
               if (m := re.search(r"\((\d+) total users\)", line))]
    print("master log, updates:", updates, "spawned:", spawned)
    assert [users for _, users in updates] == [s["users"] for s in STAGES["stages"]], log
    begin = 0
    for stage, (updated, _) in zip(STAGES["stages"], updates, strict=True):
        # tick() runs about once a second: each stage starts soon after the previous end,
        assert begin <= updated <= begin + TICK_SLACK, (stage, updates)
        # and the REST API shows its users within the stage's window, allowing for its cache.
        # (Locust's "All users spawned" lines are printed, not asserted: under load a stage
        # may be replaced before its ramp is reported complete.)
        seen = {users for at, state, users in samples if begin <= at <= stage["duration"] + API_LAG}
        assert stage["users"] in seen, (stage, samples)
        begin = stage["duration"]
    for at, state, users in samples:
        if state in ("spawning", "running"):  # never more than a stage just now or just before allows
            assert users <= max(_active(STAGES, at - API_LAG, at + 0.25)), (at, samples)
    [stopping] = run.logged("Shape test stopping")
    last_end = STAGES["stages"][-1]["duration"]
    assert last_end <= stopping - start <= last_end + TICK_SLACK  # tick() returned None after the last stage
    assert "stopped" in {state for at, state, _ in samples if at > last_end}, samples
    assert ended - stopping <= AUTOQUIT + 8, log  # then --autoquit ended the master on its own


@pytest.mark.timeout(60)
def test_users_spawn_rate_and_run_time_are_ignored_next_to_a_shape(tmp_path: Path) -> None:
    """-u/-r/-t with a shape: Locust warns that it ignores them, and it does. --run-time
    does not even bound the run: Locust arms it only after the shape's tick() returned
    None, so a held last stage (stop: false) runs until something else stops it."""
    held = {"stages": [{"duration": 2, "users": 2, "spawnRate": 10}], "stop": False}
    with http_target() as target, shaped_run(tmp_path, target, held, extra="-u 7 -r 7 --run-time 3s") as run:
        deadline = time.monotonic() + 30
        while not run.logged("Shape test starting") and run.master.poll() is None \
                and time.monotonic() < deadline:
            run.poll(until=time.monotonic() + 0.5)  # one sample
        [start] = run.logged("Shape test starting")
        run.poll(until=time.monotonic() + max(0.0, start + 3 + AUTOQUIT + 4 - time.time()))
        still_running = run.master.poll() is None
        samples = run.since_start()
        log = run.log.read_text()
    print("samples with -u 7 -r 7 --run-time 3s:", samples)
    assert "have no impact on LoadShapes" in log, log
    assert "The following option(s) will be ignored: --users, --spawn-rate, --run-time" in log, log
    assert still_running, f"the master quit although the shape holds its users:\n{log}"
    assert max(users for _, _, users in samples) == 2, samples  # the shape's 2, never -u's 7
    # Once at the shape's 2 (under load the master may see the ramp late), held at 2 past
    # where --run-time 3s would have stopped it.
    reached = next(i for i, (_, state, users) in enumerate(samples) if (state, users) == ("running", 2))
    held = samples[reached:]
    assert {(state, users) for _, state, users in held} == {("running", 2)}, samples
    assert held[-1][0] > 3 + AUTOQUIT, samples
    assert "Run time limit set to" not in log and "--run-time limit reached" not in log
    assert "Shape test updating to 2 users" in log and "7 users" not in log
