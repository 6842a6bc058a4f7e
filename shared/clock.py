"""Time as the responder writes it: ISO 8601 UTC with milliseconds, so strings sort by time."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]

# A date and a time, optionally seconds, a fraction and a zone: what the senders write. A date alone
# is not a moment, and datetime.fromisoformat would take one (and any character between the parts).
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """2026-11-25T20:01:02.345Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime | None:
    """An ISO 8601 date-time in UTC (one without a zone is taken as UTC); None if it is not one."""
    raw = text.strip()
    if not _DATE_TIME.fullmatch(raw):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("z", "Z").replace("t", "T"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # a day or hour out of range; a zone past year 9999
        return None


def utc_iso(value: str) -> str:
    """An ISO 8601 date-time in UTC with a "Z" (one format, so stored times sort as strings); text that
    is not one is returned as it is, stripped."""
    parsed = parse_iso(value)
    return iso(parsed) if parsed is not None else value.strip()


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
