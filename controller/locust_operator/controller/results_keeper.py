"""A run's final results: read from the master (its API, else its log) and kept.

`ResultsKeeper` is the part of the runtime that turns what a master reports
after its run into `status.result` (thresholds judged) and the `<name>-results`
ConfigMap. Everything it reads is the tenant's output, so every read is bounded
(`master_api`, the log tail) and a refusal is an outcome with a message, never
an error of the operator.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from locust_operator.api.contract import (
    MASTER,
    REPORT_HTML_KEY,
    SEPARATE_REPORT_ANNOTATION,
    child_names,
    report_name,
    results_name,
)
from locust_operator.build.results_configmap import results_configmap
from locust_operator.controller.baselines import against_series
from locust_operator.controller.kube_api import API_ERRORS, Api, ApiError
from locust_operator.controller.master_api import CSV, FAILURES, REPORT, Answer
from locust_operator.controller.metrics import ERRORS
from locust_operator.rules.baseline import baseline_set, kept_requests
from locust_operator.rules.bounded import mib
from locust_operator.rules.observe import Children, master_pod
from locust_operator.rules.results import (
    MASTER_API,
    MASTER_LOG,
    ResultsError,
    RunStats,
    configmap_data,
    parse_final_json,
    parse_requests_csv,
    report_texts,
    requests_csv,
    summary,
    unavailable,
)
from locust_operator.rules.thresholds import evaluate, thresholds_set

log = logging.getLogger("locust_operator")
Object = dict[str, Any]
# After "stopped", a worker sends the rest of its stats with its next periodic report
# (Locust's WORKER_REPORT_INTERVAL, 3 s), not at once: the CSV counts as final once
# STABLE_READS reads in a row, settle_seconds apart (4 s at 1 s), agree; at most MAX_READS.
STABLE_READS = 5
MAX_READS = 12
# What Locust logs when --expect-workers-max-wait ran out.
_GAVE_UP = "Gave up waiting for workers to connect"


class MasterSource(Protocol):
    """The master's REST API, read within bounds (master_api.MasterClient)."""

    async def stats(self, url: str) -> Answer: ...

    async def text(self, stats_url: str, endpoint: str) -> Answer: ...

    async def stop(self, url: str) -> bool: ...


@dataclasses.dataclass(frozen=True)
class FromApi:
    """The results read from the master's API: None to try again later; a problem
    when the master's answers were refused (then they come from its log)."""

    result: dict[str, Any] | None = None
    problem: str | None = None


class ResultsKeeper:
    def __init__(self, api: Api, master: MasterSource, log_limit_bytes: int,
                 settle_seconds: float = 1.0) -> None:
        self.api = api
        self.master = master
        self.log_limit_bytes = log_limit_bytes
        self.settle_seconds = settle_seconds

    async def from_api(self, test: Object, url: str, previous: Mapping[str, Any],
                       locust: dict[str, Any] | None) -> FromApi:
        """The run's results from the master's REST API.

        The master reports "stopped" before the workers' last stats reach it, so
        the CSV is read until it stays the same over more than a worker's report
        interval.
        """
        csv_text: str | None = None
        same = 0
        for _ in range(MAX_READS):
            await asyncio.sleep(self.settle_seconds)
            latest = await self.master.text(url, CSV)
            if latest.problem:
                return FromApi(problem=f"{latest.problem}; results will come from its log")
            if latest.value is None:
                return FromApi()
            same = same + 1 if latest.value == csv_text else 1
            csv_text = latest.value
            if same >= STABLE_READS:
                break
        if csv_text is None or same < STABLE_READS:
            return FromApi()  # still changing: read again at the next poll
        failures = await self.master.text(url, FAILURES)
        html = await self.master.text(url, REPORT)
        try:
            stats = parse_requests_csv(csv_text, failures.value or "")
        except ResultsError as exc:
            return FromApi(problem=f"the master's results CSV was refused: {exc}; "
                           "results will come from its log")
        result = await self.keep(test, stats, MASTER_API, previous, locust, csv_text,
                                 failures.value, html.value)
        skipped = [a.problem for a in (failures, html) if a.problem]
        if skipped:
            result["message"] = "; ".join(skipped) + "; not kept"
        return FromApi(result=result)

    async def from_log(self, test: Object, kids: Children, previous: Mapping[str, Any],
                       final: bool = True) -> dict[str, Any] | None:
        """The run's results from the master's final output in its log (`--json`).

        Not `final` (the master's container has exited, its Job has not finished yet),
        a log without its final stats, or not readable yet, is None: try again later,
        as the container runtime may still be writing the end of the log.
        """
        metadata = test["metadata"]
        pod = master_pod(test, kids)
        if pod is None:
            return unavailable("the master's results were not read while it ran, and its pod is gone")
        container = child_names(metadata["name"])[MASTER]
        try:
            text = await self.api.pod_log(metadata["namespace"], pod.name, container,
                                          self.log_limit_bytes)
        except API_ERRORS as exc:
            # A log the kubelet no longer has (or never had) is an outcome, not an operator error.
            if not final:
                return None
            if not (isinstance(exc, ApiError) and exc.status < 500):
                ERRORS.labels("results").inc()
            return unavailable(f"cannot read the master's log ({pod.name}): {exc}")
        try:
            stats = parse_final_json(text)
        except ResultsError as exc:
            if _GAVE_UP in text:
                return {**unavailable(f"Locust: {_GAVE_UP.lower()}"), "workers": 0}
            if not final:
                return None
            return unavailable(f"{pod.name}: {exc} (the last {mib(self.log_limit_bytes)} of its log read)")
        log.info("%s/%s: results read from the master's log", metadata["namespace"], metadata["name"])
        return await self.keep(test, stats, MASTER_LOG, previous, None, requests_csv(stats), None, None)

    async def keep(self, test: Object, stats: RunStats, source: str, previous: Mapping[str, Any],
                   locust: dict[str, Any] | None, csv_text: str, failures: str | None,
                   html: str | None) -> dict[str, Any]:
        """status.result for the run, with its thresholds judged and its report kept."""
        metadata = test["metadata"]
        seen = {**(previous.get("locust") or {}), **{k: v for k, v in (locust or {}).items()
                                                       if k in ("userCount", "workerCount")}}
        result = summary(stats, source, _peak(seen, "userCount", "maxUserCount"),
                         _peak(seen, "workerCount", "maxWorkerCount"))
        thresholds = test["spec"].get("thresholds")
        kept = kept_requests(test["spec"], stats)
        if kept:
            result["perRequest"] = kept
        if thresholds_set(thresholds):
            breaches = evaluate(thresholds, stats)
            result["thresholds"] = {"passed": not breaches, "breaches": breaches[:100]}
        if baseline_set(test["spec"]):
            result["baseline"] = await against_series(self.api, test, result)
        separate = html is not None and (metadata.get("annotations") or {}).get(
            SEPARATE_REPORT_ANNOTATION) == "true"
        packed = configmap_data(report_texts(result, stats, csv_text, failures, None if separate else html))
        report: dict[str, Any] = {"configMap": results_name(metadata["name"]), "keys": packed.keys}
        if packed.truncated:
            report["truncated"] = packed.truncated
        written, _ = await self._write(results_configmap(metadata, packed.data, packed.binary_data), result)
        if not written:
            return result
        result["report"] = report
        if separate and html is not None:
            alone = configmap_data({REPORT_HTML_KEY: html})
            apart = results_configmap(metadata, alone.data, alone.binary_data, report=True)
            _, uid = await self._write(apart, result)
            if uid:
                report["reportConfigMap"] = {"name": report_name(metadata["name"]), "uid": uid}
        return result

    async def _write(self, configmap: Object, result: dict[str, Any]) -> tuple[bool, str | None]:
        """Create a ConfigMap of the results: (kept, its uid when this call created it).

        A failure is said in result["message"]; an existing one is left as it was.
        """
        name = configmap["metadata"]["name"]
        try:
            created = await self.api.create(configmap)
        except ApiError as exc:
            if exc.status != 409:
                ERRORS.labels("results").inc()
                result["message"] = f"the results ConfigMap {name} was not written: {exc.message}"
                return False, None
            # The operator may not read ConfigMaps (they can hold test data), so it cannot
            # tell an earlier write of its own from someone else's: `report` checks the owner.
            result["message"] = f"ConfigMap {name} already existed and was left as it was"
            return True, None
        except API_ERRORS as exc:
            ERRORS.labels("results").inc()
            result["message"] = f"the results ConfigMap {name} was not written: {exc}"
            return False, None
        uid = (created.get("metadata") or {}).get("uid")
        return True, uid if isinstance(uid, str) else None


def _peak(seen: dict[str, Any], current: str, peak: str) -> int | None:
    values = [v for v in (seen.get(current), seen.get(peak)) if isinstance(v, int)]
    return max(values) if values else None
