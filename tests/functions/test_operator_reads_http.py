"""GET /api/status and the incident list's severity, cursor and unknown-parameter rules."""

from __future__ import annotations

from typing import Any

import pytest

from shared.bootstrap import Services
from shared.domain.effects import Effect, EffectKind
from shared.outbox import effect_message
from tests.alerts import body, metric_alert
from tests.factories import FakeClock, resource
from tests.functions.harness import assert_error, get, json_body, post


def _open(n: int, tenant: str = "ikea", severity: str = "Sev2") -> str:
    target = resource("cosmosdb", f"cosmos-amicis-{tenant}-dev", f"rg-amicis-{tenant}-dev")
    payload = metric_alert(rule=f"rule-{n}", target=target, severity=severity, alert_id=f"a-{n}")
    answer = post("alerts", body(payload))
    assert answer.status_code == 202, answer.get_body()
    (incident_id,) = json_body(answer)["incidents"]
    return str(incident_id)


def _page(params: dict[str, str]) -> dict[str, Any]:
    answer = get("list_incidents", "/api/incidents", params)
    assert answer.status_code == 200, answer.get_body()
    found: dict[str, Any] = json_body(answer)
    assert found["count"] == len(found["incidents"])
    return found


def test_status_shows_open_incidents_queues_dead_letters_and_automation(
    app: Services, clock: FakeClock
) -> None:
    sev1 = _open(1, severity="Sev0")
    _open(2, tenant="hm", severity="Sev2")
    clock.advance(minutes=12)
    effect = Effect(EffectKind.NOTIFY, sev1, "opened", "sev1", "2026-11-25T10:00:00.000Z")
    app.queue.dead_letter_message(
        effect_message(effect), "MaxAttemptsExceeded", "Slack down (gave up after 12 tries)"
    )

    answer = get("status", "/api/status", {"code": "the-function-key"})
    assert answer.status_code == 200
    status = json_body(answer)
    assert status["generated_at"] == "2026-11-25T10:12:00.000Z"
    incidents = status["incidents"]
    assert (incidents["open"], incidents["shown"], incidents["by_severity"]) == (2, 2, {"sev1": 1, "sev3": 1})
    first = incidents["groups"][0]
    assert (first["component"], first["tenant"], first["count"]) == ("cosmosdb", "ikea", 1)
    (incident,) = first["incidents"]
    assert incident["id"] == sev1 and incident["age_seconds"] == 720
    assert incident["response"] == {"target_minutes": 15, "used_percent": 80, "over": False, "running": True}
    assert incident["rto"] == {"target_minutes": 5, "used_percent": 240, "over": True, "running": True}
    assert set(status["queues"]) == {"intake", "pages", "notifications", "actions", "pagerduty", "chatops"}
    # What the two openings decided is still waiting: nobody runs the queues in this test.
    assert status["queues"]["notifications"]["ready"] == 2 and status["queues"]["pages"]["ready"] == 1
    assert status["queues"]["notifications"]["dead_lettered"] == 1
    (dead,) = status["dead_letters"]["newest"]
    assert (dead["incident_id"], dead["reason"], dead["summary"]) == (
        sev1,
        "MaxAttemptsExceeded",
        "notify opened",
    )
    assert status["outboxes"]["incidents"] == 0
    automation = status["automation"]
    assert (automation["paused"], automation["setting"], automation["pauses"]) == (False, "on", [])


def test_incidents_by_severity() -> None:
    sev1 = [_open(n, severity="Sev0") for n in range(2)]
    sev3 = [_open(n + 10) for n in range(3)]
    assert {i["id"] for i in _page({"severity": "sev1"})["incidents"]} == set(sev1)
    assert {i["id"] for i in _page({"severity": "SEV3"})["incidents"]} == set(sev3)
    assert _page({"severity": "sev2"})["incidents"] == []
    assert _page({"severity": "sev1", "tenant": "hm"})["incidents"] == []


@pytest.mark.parametrize("severity", ["sev5", "1", "critical", "sev 1"])
def test_an_unknown_severity_is_400(severity: str) -> None:
    assert_error(
        get("list_incidents", "/api/incidents", {"severity": severity}),
        400,
        "invalid_parameter",
        "severity must be one of sev1, sev2, sev3, sev4",
    )


def test_a_cursor_walks_every_incident_once_and_no_cursor_ends_it(clock: FakeClock) -> None:
    opened = []
    for n in range(7):
        opened.append(_open(n))
        if n % 3 == 0:
            clock.advance(seconds=1)  # some share an opening time: the id breaks the tie
    walked: list[str] = []
    page = _page({"limit": "3"})
    while True:
        walked += [i["id"] for i in page["incidents"]]
        if "next_cursor" not in page:
            break
        page = _page({"limit": "3", "cursor": page["next_cursor"]})
    assert sorted(walked) == sorted(opened) and len(walked) == 7
    assert walked == [i["id"] for i in _page({})["incidents"]], "the same order as one big page"


def test_past_a_thousand_the_cursor_brings_the_rest() -> None:
    opened = {_open(n) for n in range(1003)}
    first = _page({"limit": "1000"})
    assert first["count"] == 1000 and "next_cursor" in first
    rest = _page({"limit": "1000", "cursor": first["next_cursor"]})
    assert rest["count"] == 3 and "next_cursor" not in rest
    assert {i["id"] for i in first["incidents"] + rest["incidents"]} == opened


# The last: base64 of ["\ud800","x"], a lone surrogate that JSON carries and the store cannot.
@pytest.mark.parametrize("cursor", ["nonsense", "W10", "eyJhIjoxfQ", "WzEsMl0", "%%%", "WyJcdWQ4MDAiLCJ4Il0"])
def test_a_cursor_this_api_did_not_make_is_400(cursor: str) -> None:
    assert_error(
        get("list_incidents", "/api/incidents", {"cursor": cursor}),
        400,
        "invalid_parameter",
        "cursor is not one this API returned",
    )


@pytest.mark.parametrize(
    ("name", "url", "route_params", "params", "unknown"),
    [
        ("list_incidents", "/api/incidents", {}, {"stauts": "open", "code": "k"}, "'stauts'"),
        ("list_incidents", "/api/incidents", {}, {"offset": "5", "page": "2"}, "'offset', 'page'"),
        ("get_incident", "/api/incidents/inc-1", {"id": "inc-1"}, {"limit": "5"}, "'limit'"),
        ("informational_signals", "/api/signals", {}, {"tenant": "ikea"}, "'tenant'"),
        ("status", "/api/status", {}, {"verbose": "1"}, "'verbose'"),
    ],
)
def test_unknown_query_parameters_are_named_in_a_400(
    name: str, url: str, route_params: dict[str, str], params: dict[str, str], unknown: str
) -> None:
    answer = get(name, url, params, route_params)
    error = assert_error(answer, 400, "invalid_parameter", f"unknown query parameter(s): {unknown}")
    assert "'code'" not in error["detail"], "the function key is allowed everywhere"


@pytest.mark.parametrize(
    ("name", "query", "repeated"),
    [
        ("list_incidents", "severity=sev1&severity=sev4", "'severity'"),
        ("list_incidents", "status=open&tenant=ikea&status=resolved", "'status'"),
        ("list_incidents", "tenant=ikea&tenant=hm&limit=1&limit=2", "'limit', 'tenant'"),
        ("informational_signals", "limit=1&limit=1", "'limit'"),
    ],
)
def test_a_repeated_query_parameter_is_named_in_a_400_not_read_as_its_last(
    name: str, query: str, repeated: str
) -> None:
    """The hosts keep one value of a repeated parameter in `params`; the URL keeps them all."""
    _open(1, severity="Sev0")
    route = "incidents" if name == "list_incidents" else "signals"
    params = dict(pair.split("=") for pair in query.split("&"))  # the last of each, as dr serve gives
    answer = get(name, f"http://localhost:7071/api/{route}?{query}&code=k", params | {"code": "k"})
    assert_error(answer, 400, "invalid_parameter", f"repeated query parameter(s): {repeated}")


def test_a_repeated_function_key_is_the_hosts_business() -> None:
    answer = get("list_incidents", "http://localhost:7071/api/incidents?code=a&code=b", {"code": "b"})
    assert answer.status_code == 200, answer.get_body()


@pytest.mark.parametrize(
    ("name", "url", "route_params"),
    [
        ("list_incidents", "/api/incidents", {}),
        ("informational_signals", "/api/signals", {}),
        ("status", "/api/status", {}),
    ],
)
def test_the_function_key_parameter_is_always_allowed(
    name: str, url: str, route_params: dict[str, str]
) -> None:
    assert get(name, url, {"code": "the-function-key"}, route_params).status_code == 200
