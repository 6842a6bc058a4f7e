"""Time as the responder writes it: ISO 8601 UTC with milliseconds, so strings sort by time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """2026-11-25T20:01:02.345Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seconds_between(start: str, end: str) -> float | None:
    """Seconds from one ISO time to another (at least 0); None if either does not parse."""
    try:
        delta = datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(
            start.replace("Z", "+00:00")
        )
    except ValueError:
        return None
    return max(0.0, round(delta.total_seconds(), 3))


def minutes_before(moment: datetime, minutes: int) -> str:
    """The ISO time `minutes` before `moment`."""
    return iso(moment - timedelta(minutes=minutes))
