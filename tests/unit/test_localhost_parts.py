"""The local host's small parts: route templates and NCRONTAB schedules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.localhost.ncrontab import Schedule
from shared.localhost.routes import compile_template


def test_route_templates() -> None:
    one = compile_template("incidents/{id}")
    assert one.fullmatch("incidents/inc-1") and one.fullmatch("incidents/inc-1")["id"] == "inc-1"  # type: ignore[index]
    assert not one.fullmatch("incidents/a/b")
    rest = compile_template("files/{*path}")
    assert rest.fullmatch("files/a/b/c")["path"] == "a/b/c"  # type: ignore[index]
    typed = compile_template("items/{n:int}")
    assert typed.fullmatch("items/7")


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/30 * * * * *", "2026-11-25T10:00:00", "2026-11-25T10:00:30"),
        ("*/30 * * * * *", "2026-11-25T10:00:45", "2026-11-25T10:01:00"),
        ("0 */5 * * * *", "2026-11-25T10:01:00", "2026-11-25T10:05:00"),
        ("0 0 3 * * *", "2026-11-25T10:00:00", "2026-11-26T03:00:00"),
        ("0 0 9 * * 1-5", "2026-11-27T10:00:00", "2026-11-30T09:00:00"),  # Friday → Monday
        ("15 10,40 * * * *", "2026-11-25T10:10:15", "2026-11-25T10:40:15"),
    ],
)
def test_ncrontab_next_firing(schedule: str, after: str, expected: str) -> None:
    moment = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert Schedule(schedule).next_after(moment) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize("bad", ["* * * * *", "61 * * * * *", "*/0 * * * * *", "a * * * * *"])
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        Schedule(bad)
