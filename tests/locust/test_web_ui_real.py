"""Locust's web UI on a real master, in a real headless Chromium (tests/support/cdp.py).

A master and one worker run on loopback with the args `render` builds, against a local HTTP
server. Two things the operator relies on and no REST call alone shows:

- an interactive test (spec.master.autostart false: no --autostart, and no --autoquit, which Locust
  refuses without it) is started from the UI: the swarm form filled in (users, ramp-up, host) and
  its Start button clicked, then stopped with the UI's Stop button;
- `--web-base-path` (a UI behind a path prefix, e.g. /locust/NAMESPACE/NAME) is honoured: the page,
  its script and styles, and the REST calls its script makes, are all under the prefix, and
  nothing answers outside it.

Runs where a Chromium is installed (or with LOCUST_OPERATOR_BROWSER_TESTS=1, which installs it).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import render
from tests.support.browser import png_size
from tests.support.cdp import Browser, chromium_or_skip
from tests.support.examples import BASE_TEST
from tests.support.ports import free_port
from tests.support.real_locust import _args, http_target

WIDTH, HEIGHT = 1280, 900
BASE_PATH = "/locust/ns1/demo"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, every request there fails
LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.1)

    @task
    def home(self):
        self.client.get("/")
"""


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return chromium_or_skip()


@dataclass
class Master:
    process: subprocess.Popen[bytes]
    web: str  # http://127.0.0.1:PORT, plus the base path if there is one
    args: list[str]
    log: Path

    def get(self, path: str, timeout: float = 3) -> tuple[int, str, bytes]:
        """Status, content type and body of a GET of the master's `path` (under its base path)."""
        try:
            with urllib.request.urlopen(f"{self.web}{path}", timeout=timeout) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()

    def stats(self) -> dict[str, Any]:
        status, _, body = self.get("/stats/requests")
        assert status == 200, (status, body[:200])
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    def wait_stats(self, what: str, check: Any, timeout: float = 20) -> dict[str, Any]:
        """The first /stats/requests for which `check(stats)` holds; a failure naming `what` after
        `timeout` s, or at once if the master exited."""
        deadline, last = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the master exited ({self.process.returncode}):\n{self.logs()}")
            with contextlib.suppress(OSError, AssertionError, ValueError):
                last = self.stats()
                if check(last):
                    return last
            time.sleep(0.25)
        summary = {k: last.get(k) for k in ("state", "user_count", "worker_count", "total_rps")}
        pytest.fail(f"no {what} within {timeout} s (last stats: {summary}):\n{self.logs()}")

    def logs(self) -> str:
        logs = sorted(self.log.parent.glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs)


@contextlib.contextmanager
def locust(workdir: Path, *, host: str, autostart: bool, extra: tuple[str, ...] = (),
           users: int = 1) -> Iterator[Master]:
    """A master and one worker with the args `render` gives a LocustTest (autoquit off), ports
    and hosts moved onto loopback through extraArgs, `extra` appended to the master's; both
    processes killed (their process groups) at the end."""
    locustfile = workdir / "visitor.py"
    locustfile.write_text(LOCUSTFILE)
    master_port, web_port = free_port(), free_port()
    test = copy.deepcopy(BASE_TEST)
    spec = test["spec"]
    spec["master"]["command"] = f"--locustfile {locustfile} --host {host} -u {users} -r {users}"
    spec["master"]["autostart"] = autostart
    spec["master"]["autoquit"] = {"enabled": False}
    spec["master"]["extraArgs"] = [f"--master-bind-port={master_port}", "--master-bind-host=127.0.0.1",
                                   f"--web-port={web_port}", "--web-host=127.0.0.1", *extra]
    spec["worker"]["replicas"] = 1
    spec["worker"]["command"] = f"--locustfile {locustfile}"
    spec["worker"]["extraArgs"] = [f"--master-port={master_port}", "--master-host=127.0.0.1"]
    objects = render(test, OperatorConfig())
    master_args, worker_args = _args(objects, "master"), _args(objects, "worker")
    assert ("--autostart" in master_args) is autostart and "--autoquit" not in master_args, master_args
    assert "--headless" not in master_args
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    base = next((a.split("=", 1)[1] for a in extra if a.startswith("--web-base-path=")), "")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for role, args in (("master", master_args), ("worker", worker_args)):
            with (logs / f"{role}.log").open("w") as out:
                procs.append(subprocess.Popen([sys.executable, "-m", "locust", *args], cwd=workdir,
                                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        yield Master(procs[0], f"http://127.0.0.1:{web_port}{base}", master_args, logs / "master.log")
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _requests(stats: dict[str, Any]) -> tuple[int, int]:
    total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
    return int(total["num_requests"]), int(total["num_failures"])


@pytest.mark.timeout(60)
def test_an_interactive_test_is_started_and_stopped_from_the_web_ui(chromium_path: str,
                                                                     tmp_path: Path) -> None:
    with http_target() as target, locust(tmp_path, host=UNREACHABLE, autostart=False) as master:
        master.wait_stats("ready master with its worker",
                          lambda s: s["state"] == "ready" and s["worker_count"] == 1)
        time.sleep(2.5)  # /stats/requests is cached for 2 s: what the UI shows next must be fresh
        assert master.stats()["state"] == "ready", "the master started a test nobody asked for"
        with Browser(WIDTH, HEIGHT) as browser:
            page = browser.open(f"{master.web}/")
            page.wait_for("document.querySelector('form input[name=userCount]')", 15, what="the swarm form")
            assert "READY" in page.text()
            # the form starts from the master's command line: -u 1 -r 1 --host UNREACHABLE
            assert page.evaluate("document.querySelector('input[name=host]').value") == UNREACHABLE
            page.fill("form input[name=userCount]", "3")
            page.fill("form input[name=spawnRate]", "3")
            page.fill("form input[name=host]", target)  # requests to UNREACHABLE would all fail
            page.click("form button[type=submit]", text="start")

            running = master.wait_stats("running test of 3 users with requests",
                                        lambda s: s["state"] == "running" and s["user_count"] == 3
                                        and _requests(s)[0] > 0)
            requests, failures = _requests(running)
            assert failures == 0, f"{failures} of {requests} requests failed: the host field was not used"
            page.wait_for("document.body.innerText.includes('RUNNING')", 10, what="RUNNING in the UI")
            page.wait_for(f"document.body.innerText.includes({json.dumps(target)})", 5,
                          what="the filled-in host in the UI")
            png = page.screenshot(tmp_path / "running.png")
            data = png.read_bytes()
            assert png_size(data) == (WIDTH, HEIGHT)
            assert len(data) > 20_000, len(data)  # the header, tabs and a statistics table

            page.click("button", text="stop")
            master.wait_stats("stopped test", lambda s: s["state"] == "stopped", timeout=15)
            # The UI polls /stats/requests only while the test spawns or runs (Locust 2.47): a poll that
            # catches the master's short "stopping" (waiting for its workers) is its last one, and
            # the page shows STOPPING until it is loaded again, which shows STOPPED.
            page.wait_for("/STOPP(ING|ED)/.test(document.body.innerText)", 10, what="the UI's stopping test")
            page.goto(f"{master.web}/")
            page.wait_for("document.body.innerText.includes('STOPPED')", 10, what="STOPPED in the UI")
            swarm = [r for r in page.responses if r.url in (f"{master.web}/swarm", f"{master.web}/stop")]
            assert [(r.url.rsplit("/", 1)[1], r.status) for r in swarm] == [("swarm", 200), ("stop", 200)]
            assert page.errors == []
        assert master.process.poll() is None  # no --autoquit: the master waits for the next test


@pytest.mark.timeout(60)
def test_the_web_ui_is_served_under_the_web_base_path(chromium_path: str, tmp_path: Path) -> None:
    with http_target() as target, locust(tmp_path, host=target, autostart=True, users=2,
                                         extra=(f"--web-base-path={BASE_PATH}",)) as master:
        root = master.web.removesuffix(BASE_PATH)
        master.wait_stats("running test", lambda s: s["state"] == "running" and _requests(s)[0] > 0)

        status, kind, body = master.get("/")
        assert (status, kind.split(";")[0]) == (200, "text/html"), (status, kind)
        html = body.decode()
        assert "<title>Locust</title>" in html and "window.templateArgs" in html
        # the page names its assets relatively (./assets/...): right only under BASE_PATH/
        scripts = re.findall(r'<script[^>]* src="([^"]+)"', html)
        assert scripts and all(s.startswith("./assets/") for s in scripts), scripts
        status, kind, _ = master.get(scripts[0].removeprefix("."))
        assert (status, kind.split(";")[0]) == (200, "application/javascript")
        assert master.get("")[0] == 200  # BASE_PATH without the slash: redirected (308) to BASE_PATH/
        assert json.loads(master.get("/stats/requests")[2])["state"] == "running"
        for outside in ("/", "/stats/requests", scripts[0].removeprefix("."), "/locust/ns1/"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{root}{outside}", timeout=3).close()
            assert refused.value.code == 404, outside

        with Browser(WIDTH, HEIGHT) as browser:
            page = browser.open(master.web)  # as typed: no trailing slash
            assert page.url == f"{master.web}/"
            page.wait_for("['Workers', 'RPS', 'Users', 'RUNNING']"
                          ".every(word => document.body.innerText.includes(word))",
                          20, what="the UI's header of a running test")
            page.wait_for("document.querySelector('table') !== null", 10, what="the statistics table")
            assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # its styles applied
            assert page.wait_for_response(f"{master.web}/stats/requests", 10).status == 200
            fetched = [r for r in page.responses if r.url.startswith("http")]
            assert {r.resource_type for r in fetched} >= {"Document", "Script", "Fetch"}, fetched
            outside = [r for r in fetched if not r.url.startswith(f"{master.web}/")]
            assert outside == [], outside
            failed = [r for r in fetched if r.status != 200]
            assert failed == [], failed
            assert page.errors == []
            png = page.screenshot(tmp_path / "base-path.png")
            assert png_size(png.read_bytes()) == (WIDTH, HEIGHT)
