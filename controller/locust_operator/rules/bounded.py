"""Bounds on what a tenant controls, checked before it is parsed (pure functions).

Whatever listens on a test's master port is the test author's code, and so are
its pod logs and the events in its namespace. The operator is shared by every
team, so each byte it takes from there is bounded in size before it reaches
memory, and in depth before a parser recurses into it; a value is
type- and range-checked before it reaches the status.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

# Nesting of a Locust /stats/requests answer is 4 levels; 32 is plenty and far from
# the interpreter's recursion limit.
MAX_JSON_DEPTH = 32
# Strings taken from a tenant into the status or a message (pod messages, names).
MAX_TEXT = 1024
# The largest count or number accepted from a master (requests, users, rps, ms).
MAX_NUMBER = 10**15
# A JSON string, so the brackets inside strings are not counted.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class Refused(ValueError):
    """A tenant's answer was refused; the message says why, in a few words."""


def mib(size: int) -> str:
    """A byte count for a message: `1 MiB`, `512 KiB` or `100 bytes`."""
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def json_depth(data: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (0 for a scalar).

    Linear and non-recursive, so it can run on input `json.loads` must not see:
    strings are cut out first, then only the brackets are counted.
    """
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(1 if b in b"[{" else -1 for b in brackets)))


def loads(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from a tenant: refused when nested deeper than `max_depth`, or not JSON."""
    if json_depth(data) > max_depth:
        raise Refused(f"is nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: belt and braces
        raise Refused("is not JSON") from exc


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """A tenant's string, at most `limit` characters (cut with an ellipsis)."""
    string = value if isinstance(value, str) else str(value)
    return string if len(string) <= limit else string[: limit - 1] + "…"


def count(value: Any, limit: int = MAX_NUMBER) -> int | None:
    """A non-negative integer up to `limit`, or None (bools, floats and strings are not)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        return None
    return value


def number(value: Any, limit: float = MAX_NUMBER) -> float | None:
    """A finite non-negative number up to `limit`, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and not 0 <= value <= limit:
        return None
    value = float(value)
    return value if math.isfinite(value) and 0 <= value <= limit else None
