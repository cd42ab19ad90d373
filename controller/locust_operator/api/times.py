"""The one time format of the Kubernetes API (RFC 3339, whole seconds, UTC) both ways."""

from __future__ import annotations

from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def timestamp(moment: datetime) -> str:
    """`moment` as the API writes times: `2026-12-01T21:24:00Z`."""
    return moment.astimezone(UTC).strftime(_FORMAT)


def parse_timestamp(value: str) -> datetime:
    """A time as the API writes it, back to an aware datetime (ValueError when not one)."""
    return datetime.strptime(value, _FORMAT).replace(tzinfo=UTC)
