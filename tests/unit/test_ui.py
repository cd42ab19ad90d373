"""`locust-operator ui` (cli/ui.py) and kubectl's flags (cli/login.py): the rules, and the wait
for the master against a scripted cluster."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from locust_operator.cli import ui
from locust_operator.cli.login import ClusterError, global_flags_first, login
from locust_operator.controller.kube_api import ApiError

READY = [{"type": "Ready", "status": "True"}]


def _pod(name: str, phase: str = "Running", conditions: list[dict[str, str]] | None = None,
         created: str = "2026-12-01T10:00:00Z", **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created, **metadata},
            "status": {"phase": phase, "conditions": READY if conditions is None else conditions}}


@pytest.mark.parametrize(("pods", "chosen"), [
    ([], None),
    ([_pod("m", "Pending", [])], None),
    ([_pod("m", conditions=[{"type": "Ready", "status": "False"}])], None),  # running, not ready
    ([_pod("m", conditions=[{"type": "PodScheduled", "status": "True"}])], None),
    ([_pod("m", "Succeeded")], None),
    ([_pod("m")], "m"),
    ([_pod("new", created="2026-12-01T10:05:00Z"), _pod("old")], "new"),  # the newest ready one
    ([_pod("going", deletionTimestamp="2026-12-01T10:06:00Z"), _pod("m", created="2026-12-01T09:00:00Z")],
     "m"),  # one being deleted is not chosen
])
def test_running_master(pods: list[dict[str, Any]], chosen: str | None) -> None:
    assert ui.running_master(pods) == chosen


def _test(phase: str | None = None, **pods_healthy: str) -> dict[str, Any]:
    status: dict[str, Any] = {} if phase is None else {"phase": phase}
    if pods_healthy:
        status["conditions"] = [{"type": "PodsHealthy", **pods_healthy}]
    return {"metadata": {"name": "demo"}, "status": status}


@pytest.mark.parametrize(("test", "line"), [
    (_test(), "demo: waiting for the master to run (test without a status yet)"),
    (_test("Pending"), "demo: waiting for the master to run (test Pending)"),
    (_test("Pending", status="Unknown", message="within the 120s start-up grace period: pod demo-master-x "
                                                "container locust: ImagePullBackOff: back-off\npulling"),
     "demo: waiting for the master to run (test Pending: within the 120s start-up grace period: pod "
     "demo-master-x container locust: ImagePullBackOff: back-off pulling)"),
    (_test("Running", status="True", message="pods are running"),
     "demo: waiting for the master to run (test Running)"),
])
def test_waiting_line(test: dict[str, Any], line: str) -> None:
    assert ui.waiting_line(test) == line


@pytest.mark.parametrize(("phase", "line"), [
    ("Succeeded", "demo: the test has finished (Succeeded): its master and web UI are gone; its kept report: "
                  "locust-operator report demo -n team --file report.html"),
    ("Failed", "demo: the test has finished (Failed): its master and web UI are gone; its kept report: "
               "locust-operator report demo -n team --file report.html"),
    ("Running", None), ("Pending", None), (None, None),
])
def test_finished_line(phase: str | None, line: str | None) -> None:
    assert ui.finished_line(_test(phase), "team") == line


class Scripted:
    """A cluster that answers with one (test, pods) state per look, the last one for ever."""

    def __init__(self, *states: tuple[dict[str, Any] | None, list[dict[str, Any]]]) -> None:
        self.states = list(states)
        self.selectors: list[str] = []

    def _state(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        test, self._pods = self._state()
        if test is None:
            raise ApiError(404, "not found")
        return test

    async def list_labelled(self, kind: str, namespace: str, selector: str, limit: int,
                            cap: int) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        return self._pods

    async def websocket(self, path: str, protocols: tuple[str, ...], max_message: int = 0) -> Any:
        raise AssertionError("not used by the wait")


def _wait(cluster: Scripted, timeout: float = 5.0) -> tuple[str, list[str]]:
    said: list[str] = []
    _, pod = asyncio.run(ui.wait_for_master(cluster, "team", "demo", said.append, timeout, poll=0.001))
    return pod, said


def test_the_wait_says_each_new_state_once_then_gives_the_master() -> None:
    pending = (_test("Pending"), [])
    pulling = (_test("Pending", status="Unknown", message="pulling"), [_pod("demo-master-x", "Pending", [])])
    running = (_test("Running"), [_pod("demo-master-x")])
    cluster = Scripted(pending, pending, pulling, pulling, running)
    assert _wait(cluster) == ("demo-master-x", [
        "demo: waiting for the master to run (test Pending)",
        "demo: waiting for the master to run (test Pending: pulling)"])
    assert set(cluster.selectors) == {"performance-test-pod-name=demo-master"}


@pytest.mark.parametrize(("states", "message"), [
    ([(None, [])], "demo: no LocustTest demo in namespace team"),
    ([(_test("Pending"), []), (_test("Failed"), [])], "demo: the test has finished (Failed)"),
])
def test_the_wait_ends_with_one_line(states: list[Any], message: str) -> None:
    with pytest.raises(ui.UiError) as caught:
        _wait(Scripted(*states))
    assert str(caught.value).startswith(message)


def test_the_wait_is_bounded() -> None:
    with pytest.raises(TimeoutError):
        _wait(Scripted((_test("Pending"), [])), timeout=0.05)
    with pytest.raises(ui.UiError, match=r"demo: the master did not run within 0\.05s"):
        asyncio.run(ui.serve(Scripted((_test("Pending"), [])), "team", "demo", 0, lambda _: None,
                             lambda _: None, 0.05, poll=0.001))


@pytest.mark.parametrize(("argv", "expected"), [
    (["wait", "demo", "-n", "x"], ["wait", "demo", "-n", "x"]),
    (["wait", "demo", "--context", "ci", "-n", "x"], ["--context", "ci", "wait", "demo", "-n", "x"]),
    (["ui", "demo", "--kubeconfig=/k", "--context=c"], ["--kubeconfig=/k", "--context=c", "ui", "demo"]),
    (["--context", "c", "report", "demo"], ["--context", "c", "report", "demo"]),
    (["render", "--", "--context", "c"], ["render", "--", "--context", "c"]),  # after --: not a flag
    (["wait", "--context"], ["wait", "--context"]),  # no value: click says so
])
def test_kubectl_global_flags_go_first(argv: list[str], expected: list[str]) -> None:
    assert global_flags_first(argv) == expected


def _kubeconfig(path: Path) -> Path:
    contexts = [{"name": n, "context": {"cluster": n, "user": "u", "namespace": f"ns-{n}"}} for n in "ab"]
    clusters = [{"name": n, "cluster": {"server": f"https://127.0.0.1:{p}"}} for n, p in (("a", 1), ("b", 2))]
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "a",
                                    "contexts": contexts, "clusters": clusters,
                                    "users": [{"name": "u", "user": {"token": "t"}}]}))
    return path


def test_kubeconfig_and_context_choose_like_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _kubeconfig(tmp_path / "config")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "elsewhere"))
    chosen = login(str(config))
    assert (chosen.server, chosen.default_namespace) == ("https://127.0.0.1:1", "ns-a")
    other = login(str(config), "b")
    assert (other.server, other.default_namespace) == ("https://127.0.0.1:2", "ns-b")
    assert os.environ["KUBECONFIG"] == str(tmp_path / "elsewhere")  # restored
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert login(context="b").server == "https://127.0.0.1:2"  # a context of KUBECONFIG's files
    with pytest.raises(ClusterError, match=r"^--context c: no such context in the kubeconfig$"):
        login(str(config), "c")
    with pytest.raises(ClusterError, match=r"^--kubeconfig /nonexistent: no such file$"):
        login("/nonexistent")


def _run_main(argv: list[str], monkeypatch: pytest.MonkeyPatch, plugin: bool = False) -> int:
    from locust_operator.cli import main as cli_main

    monkeypatch.setattr("sys.argv", ["x", *argv])
    try:
        (cli_main.kubectl_plugin if plugin else cli_main.main)()
    except SystemExit as ended:
        return int(ended.code or 0)
    return 0


def test_kubectl_locust_is_the_same_command_line(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_main(["--help"], monkeypatch, plugin=True) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: kubectl locust [OPTIONS] COMMAND [ARGS]...")
    assert all(command in out for command in ("render", "wait", "report", "ui", "history"))


def test_ui_without_credentials_or_with_a_bad_context_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "config")))
    assert _run_main(["ui", "demo", "--context", "nosuch", "--no-browser"], monkeypatch, plugin=True) == 2
    assert capsys.readouterr().err == "ui: --context nosuch: no such context in the kubeconfig\n"
    assert _run_main(["ui", "demo", "--port", "70000"], monkeypatch) == 2  # click's own usage error
    assert "70000 is not in the range 0<=x<=65535" in capsys.readouterr().err
