"""When things happened in a namespace, as a watcher sees them (tests and benchmarks)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch

from locust_operator.api.contract import COMPONENT_LABEL, GROUP, MASTER, PLURAL, TEST_NAME_LABEL, VERSION

TERMINAL = ("Succeeded", "Failed")


@dataclass
class Timeline:
    """First-seen times (time.monotonic) of what happens to tests in one namespace."""

    namespace: str
    children: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    master_ready: dict[str, float] = field(default_factory=dict)
    jobs_done: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    phases: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    phase_sequence: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _watches: list[watch.Watch] = field(default_factory=list)
    _stopped: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, api: client.ApiClient) -> Timeline:
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        streams = [
            (batch.list_namespaced_job, (self.namespace,), self._job),
            (core.list_namespaced_service, (self.namespace,), self._service),
            (core.list_namespaced_pod, (self.namespace,), self._pod),
            (custom.list_namespaced_custom_object, (GROUP, VERSION, self.namespace, PLURAL), self._test),
        ]
        for fn, args, handler in streams:
            w = watch.Watch()
            self._watches.append(w)
            threading.Thread(target=self._run, args=(w, fn, args, handler), daemon=True).start()
        return self

    def _run(self, w: watch.Watch, fn: Any, args: tuple[Any, ...], handler: Any) -> None:
        # A watch also ends without an error (server timeout, a consumer deemed too
        # slow): watch again (from a fresh list) until stop().
        while not self._stopped:
            try:
                # Plain JSON, no client models: the benchmark must not eat the CPU it measures.
                for event in w.stream(fn, *args, timeout_seconds=3600, _request_timeout=3700,
                                      deserialize=False):
                    obj = event["object"]
                    with self._lock:
                        handler(event["type"], obj, time.monotonic())
            except Exception:  # an API server restart: watch again
                time.sleep(0.5)

    def stop(self) -> None:
        self._stopped = True
        for w in self._watches:
            w.stop()

    @staticmethod
    def _owner_test(obj: dict[str, Any]) -> str:
        return (obj["metadata"].get("labels") or {}).get(TEST_NAME_LABEL, "")

    def _job(self, kind: str, obj: dict[str, Any], now: float) -> None:
        test, name = self._owner_test(obj), obj["metadata"]["name"]
        if kind != "DELETED":
            self.children[test].setdefault(name, now)
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
                self.jobs_done[test].setdefault(name, now)

    def _service(self, kind: str, obj: dict[str, Any], now: float) -> None:
        if kind != "DELETED":
            self.children[self._owner_test(obj)].setdefault("service", now)

    def _pod(self, kind: str, obj: dict[str, Any], now: float) -> None:
        labels = obj["metadata"].get("labels") or {}
        if labels.get(COMPONENT_LABEL) != MASTER:
            return
        status = obj.get("status") or {}
        ready = status.get("phase") == "Running" and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready:
            self.master_ready.setdefault(labels.get(TEST_NAME_LABEL, ""), now)

    def _test(self, kind: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        phase = (obj.get("status") or {}).get("phase")
        if phase:
            self.phases[name].setdefault(phase, now)
            sequence = self.phase_sequence[name]
            if not sequence or sequence[-1] != phase:
                sequence.append(phase)

    # --- questions --------------------------------------------------------------------

    def with_children(self, names: list[str]) -> dict[str, float]:
        """When each test had its Service and both Jobs (the last of the three)."""
        with self._lock:
            return {n: max(self.children[n].values()) for n in names if len(self.children[n]) >= 3}

    def in_phase(self, names: list[str], phases: tuple[str, ...]) -> dict[str, float]:
        with self._lock:
            return {n: min(t for p, t in self.phases[n].items() if p in phases)
                    for n in names if any(p in phases for p in self.phases[n])}

    def master_finished(self, names: list[str]) -> dict[str, float]:
        """When each test's master Job finished (what ends the test)."""
        with self._lock:
            return {n: t for n in names for job, t in self.jobs_done[n].items()
                    if job.endswith(f"-{MASTER}")}

    def finished_jobs(self, names: list[str]) -> dict[str, float]:
        """When both Jobs of each test were finished (the later of the two)."""
        with self._lock:
            return {n: max(self.jobs_done[n].values()) for n in names if len(self.jobs_done[n]) >= 2}


def apiserver_writes(metrics: str) -> dict[str, float]:
    """POST/PATCH/PUT requests the API server counted, by resource[/subresource], all clients.

    `metrics` is the text of the API server's /metrics. DELETEs are left out: the
    namespace controller removes earlier tests meanwhile.
    """
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.index("}")].split(","))
        if labels.get("verb", "").strip('"') in ("POST", "PATCH", "PUT"):
            key = labels.get("resource", "").strip('"')
            sub = labels.get("subresource", '""').strip('"')
            key = f"{key}/{sub}" if sub else key
            counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts
