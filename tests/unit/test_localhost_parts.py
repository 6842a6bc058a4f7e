"""The local host's small parts: route templates, NCRONTAB schedules, reading a request's body."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.localhost import asgi
from shared.localhost.asgi import FunctionsHttpHost
from shared.localhost.ncrontab import Schedule
from shared.localhost.routes import Route, compile_template


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


def test_a_body_that_never_arrives_is_answered_408_after_the_read_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that sends less than its Content-Length must not hold the request forever."""
    monkeypatch.setattr(asgi, "BODY_READ_TIMEOUT_SECONDS", 0.2)
    route = Route(
        compile_template("alerts"), "alerts", frozenset({"POST"}), "anonymous", "alerts", _never_called
    )
    host = FunctionsHttpHost([route], "key")
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"0123456789", "more_body": True}
        await asyncio.sleep(3600)  # the rest of the body never comes
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/alerts", "headers": [], "query_string": b""}
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(host(scope, receive, send), timeout=10))
    assert time.monotonic() - started < 5
    assert sent[0]["status"] == 408
    body = json.loads(sent[1]["body"])
    assert body["error"] == "request_timeout" and body["detail"]


def _never_called(request: Any) -> Any:
    raise AssertionError("the function must not run without its whole body")


def _call(host: FunctionsHttpHost, query: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """One GET through the ASGI host, in-process; the answer's status."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/ping", "headers": headers, "query_string": query}
    asyncio.run(host(scope, receive, send))
    return int(sent[0]["status"])


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        (b"code=wrong", [(b"x-functions-key", b"key")], 200),
        (b"code=key", [(b"x-functions-key", b"wrong")], 401),
        (b"code=key", [(b"x-functions-key", b"")], 401),
        (b"code=key", [], 200),
        (b"code=key&code=wrong", [], 200),  # the host reads the first ?code=
        (b"code=wrong&code=key", [], 401),
        (b"", [(b"X-Functions-Key", b"key")], 200),
    ],
)
def test_the_key_header_wins_over_code_as_in_the_functions_host(
    query: bytes, headers: list[tuple[bytes, bytes]], status: int
) -> None:
    def ping(request: Any) -> Any:
        import azure.functions as func

        return func.HttpResponse("ok")

    route = Route(compile_template("ping"), "ping", frozenset({"GET"}), "function", "ping", ping)
    assert _call(FunctionsHttpHost([route], "key"), query, headers) == status
