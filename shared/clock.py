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


def minutes_before(moment: datetime, minutes: int) -> str:
    """The ISO time `minutes` before `moment`."""
    return iso(moment - timedelta(minutes=minutes))
