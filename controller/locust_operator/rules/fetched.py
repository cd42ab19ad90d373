"""status.testFiles: the commit a test's files were fetched at (spec.testFiles.git), pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def fetched_files_status(previous: Mapping[str, Any], git_ref: str | None,
                      commits: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
    """The commit the master ran (else the first pod's), the ref asked for, and a message
    when pods ran different commits (a branch moved between their fetches).

    Once recorded it stays: pods gone after the run take their statuses with them.
    `commits` are (pod, commit), the master's first (rules/observe.py).
    """
    if git_ref is None:
        return None
    before = dict(previous.get("testFiles") or {})
    if not commits:
        return before or None
    first = commits[0][1]
    recorded: dict[str, Any] = {"commit": before.get("commit", first), "ref": git_ref}
    others = sorted({f"{pod} ran {commit[:12]}" for pod, commit in commits if commit != recorded["commit"]})
    message = before.get("message")
    if others:
        message = f"not all pods ran commit {recorded['commit'][:12]}: " + ", ".join(others[:5]) + (
            f" and {len(others) - 5} more" if len(others) > 5 else "")
    if message:
        recorded["message"] = message[:1024]
    return recorded
