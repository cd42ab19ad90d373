"""What one test's loop knows of its run (the loop owns it; its actions read and set it)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from typing import Any

from locust_operator.controller.master_api import Answer
from locust_operator.rules.observation import Status


@dataclasses.dataclass
class Creation:
    """How creating the children went: an error (and Ready's reason for it), or created."""

    error: str | None = None
    reason: str = "ResourcesFailed"
    just_created: bool = False


@dataclasses.dataclass
class RunState:
    """What one test's loop has learnt so far: its last status, the live numbers,
    the final results, and what it did to the run (stopped it, aborted it)."""

    previous: Status
    url: str
    creation: Creation
    result: dict[str, Any] | None
    locust: dict[str, Any] | None = None
    # Why the master's answers were refused (status.locust.message); polls stop then.
    problem: str | None = None
    live_off: bool = False
    api_refused: bool = False  # the final results will come from the log
    poll: asyncio.Task[Answer] | None = None  # a live poll under way
    next_poll: datetime | None = None
    unanswered: int = 0  # polls in a row that got no answer
    log_read: bool = False
    # The master exited, its log did not have the final stats yet: the verdict waits
    # for them (or for its Job to finish).
    log_pending: bool = False
    aborted: bool = False
    stop_tried: bool = False  # the master was asked to stop (abort, deadline, a verdict)
    run_stopped: bool = False  # the final results were read after Locust said "stopped"
    deadline: int | None = None  # set once the test outlived its maxDurationSeconds
    drift_logged: int = 1
    write_failures: int = 0
