"""Human-readable lines about a LocustTest's status, for `wait` (pure functions).

The status' numbers are decimal strings (status.locust, result.failRatio, ...)
or integers; each is shown as given when it does not parse, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from locust_operator.api.contract import TERMINAL

_ERROR_WIDTH = 100  # a failure's error message is cut to this many characters


def phase(test: Mapping[str, Any]) -> str:
    """The test's phase, "" before the operator wrote one."""
    return str((test.get("status") or {}).get("phase") or "")


def _number(value: Any, digits: int) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def _percent(ratio: Any) -> str:
    try:
        return f"{float(ratio) * 100:.2f}%"
    except (TypeError, ValueError):
        return f"{ratio} (ratio)"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def progress(status: Mapping[str, Any]) -> str:
    """What the test is doing, e.g. `3/3 workers connected, 40 users, 55.2 rps, 0.00% failed`."""
    parts = []
    if "expectedWorkers" in status or "connectedWorkers" in status:
        parts.append(f"{status.get('connectedWorkers', 0)}/{status.get('expectedWorkers', '?')} "
                     "workers connected")
        pods = status.get("workerPods") or {}
        if int(pods.get("processesPerPod", 1) or 1) > 1:
            parts[-1] += f" ({pods.get('ready', 0)}/{pods.get('expected', '?')} pods)"
    live = status.get("locust") or {}
    if "userCount" in live:
        parts.append(f"{live['userCount']} users")
    if "totalRps" in live:
        parts.append(f"{_number(live['totalRps'], 1)} rps")
    if "failPercent" in live:
        parts.append(f"{_number(live['failPercent'], 2)}% failed")
    elif "failRatio" in live:
        parts.append(f"{_percent(live['failRatio'])} failed")
    return ", ".join(parts)


def phase_line(name: str, test: Mapping[str, Any], clock: str) -> str:
    """One line per phase change, e.g. `12:00:01 demo: Running (3/3 workers connected, ...)`."""
    status = test.get("status") or {}
    current = phase(test)
    if not current:
        return f"{clock} {name}: no status yet (is the operator running?)"
    detail = "" if current in TERMINAL else progress(status)
    return f"{clock} {name}: {current}" + (f" ({detail})" if detail else "")


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for item in status.get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            return item
    return {}


def verdict_line(test: Mapping[str, Any]) -> str:
    """Why the test ended: the verdict (TestCompleted's reason) and TestCompleted's message."""
    status = test.get("status") or {}
    completed = _condition(status, "TestCompleted")
    reason = status.get("verdict") or completed.get("reason") or "no verdict recorded"
    message = completed.get("message")
    return f"verdict: {reason}" + (f": {message}" if message and message != reason else "")


def _one_line(text: Any) -> str:
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= _ERROR_WIDTH else flat[:_ERROR_WIDTH - 3] + "..."


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int):
        return str(seconds)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return (f"{hours}h{minute}m{second}s" if hours else
            f"{minute}m{second}s" if minute else f"{second}s")


def _fail_percent(result: Mapping[str, Any]) -> str | None:
    if "failRatio" in result:
        return _percent(result["failRatio"])
    requests, failures = result.get("requests"), result.get("failures")
    if isinstance(requests, int) and isinstance(failures, int) and requests:
        return f"{failures / requests * 100:.2f}%"
    return None


def _response_times(times: Mapping[str, Any]) -> str:
    parts = []
    for key in ("p50", "p95", "p99", "avg", "max"):
        if key in times:
            value = times[key]
            shown = _number(value, 1) if isinstance(value, str) else str(value)
            parts.append(f"{key} {shown} ms")
    return "  ".join(parts)


def _table(rows: list[list[str]], indent: str) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def result_lines(status: Mapping[str, Any]) -> list[str]:
    """The result table of a finished test (status.result), or one line saying why there is none."""
    result = status.get("result")
    if not isinstance(result, Mapping) or not result:
        return ["no results recorded"]
    rows: list[list[str]] = []
    if result.get("source") == "Unavailable":
        rows.append(["results", "unavailable"])
    if "requests" in result:
        rows.append(["requests", _count(result["requests"])])
    if "failures" in result:
        percent = _fail_percent(result)
        rows.append(["failures", _count(result["failures"]) + (f" ({percent})" if percent else "")])
    elif "failRatio" in result:
        rows.append(["fail %", _percent(result["failRatio"])])
    if "rps" in result:
        rows.append(["rps", _number(result["rps"], 1)])
    times = _response_times(result.get("responseTimeMs") or {})
    if times:
        rows.append(["response time", times])
    for key in ("users", "workers"):
        if key in result:
            rows.append([key, str(result[key])])
    if "durationSeconds" in result:
        rows.append(["duration", _duration(result["durationSeconds"])])
    thresholds = result.get("thresholds")
    if isinstance(thresholds, Mapping):
        breaches = [str(b) for b in thresholds.get("breaches") or []]
        if breaches:
            rows.append(["thresholds", f"{len(breaches)} breached"])
            rows += [["", breach] for breach in breaches]
        elif thresholds.get("passed") is True:
            rows.append(["thresholds", "passed"])
    if result.get("message"):
        rows.append(["note", _one_line(result["message"])])
    lines = _table(rows, "  ") if rows else []
    failures = [f for f in result.get("topFailures") or [] if isinstance(f, Mapping)]
    if failures:
        lines.append("  top failures:")
        lines += _table([["METHOD", "NAME", "FAILURES", "ERROR"]]
                        + [[str(f.get("method", "")), str(f.get("name", "")),
                            _count(f.get("failures", "")), _one_line(f.get("error", ""))]
                           for f in failures], "    ")
    return lines


def final_lines(name: str, namespace: str, test: Mapping[str, Any]) -> list[str]:
    """What `wait` prints after the terminal phase line: verdict, results, where the report is."""
    status = test.get("status") or {}
    lines = [verdict_line(test), *result_lines(status)]
    fetched = status.get("testFiles")
    if isinstance(fetched, Mapping) and fetched.get("commit"):
        # Which files ran, to run them again: spec.testFiles.git's ref and the commit fetched.
        ref = _one_line(fetched.get("ref") or "") or "the default branch"
        lines.append(f"test files: git {ref} at {_one_line(fetched['commit'])}")
        if fetched.get("message"):
            lines.append(f"  {_one_line(fetched['message'])}")
    report = (status.get("result") or {}).get("report") or {}
    if report.get("configMap"):
        lines.append(f"full results: locust-operator report {name} -n {namespace} -o html (or json, csv)")
    return lines
