"""PagerDutyEvents with the real `pagerduty` client against a local Events API v2 stub (over HTTPS)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from shared.adapters.pagerduty_client import events_client, translated_errors
from shared.adapters.pagerduty_events import EVENTS_PER_MINUTE, PagerDutyEvents
from shared.domain.incidents import OPEN, Incident
from shared.domain.severity import Severity
from shared.errors import Rejected, Transient
from shared.paging.page import resolve_event, trigger_event
from shared.paging.routing import RoutingTable, target_fingerprint
from tests.factories import resource
from tests.stubs import PagerDutyEventsStub
from tests.stubs.pagerduty_events import UNRECOGNIZED, invalid_event

DEFAULT_KEY = "e93facc04764012d7bfb002500d5d1a6"  # 32 characters, like PagerDuty's integration keys
IKEA_KEY = "1ce4a0000000000000000000000ikea0"
SEV1_KEY = "5e710000000000000000000000000001"
IKEA_SEV1_KEY = "1ce45e71000000000000000000000011"
ALL_KEYS = (DEFAULT_KEY, IKEA_KEY, SEV1_KEY, IKEA_SEV1_KEY)
RUNBOOKS = {"cosmosdb": "cosmosdb.md#regional-failover"}
LINKS = [
    {"href": "https://portal.azure.com/#resource/x", "text": "cosmos-amicis-ikea-dev in the Azure portal"},
    {"href": "https://runbooks.example/cosmosdb.md#regional-failover", "text": "DR runbook"},
]


def send_trigger(pager: PagerDutyEvents, incident: Incident, route: str, links: list[dict[str, str]]) -> str:
    """Send the trigger event the page handler builds for the incident."""
    return pager.send(trigger_event(incident, links, RUNBOOKS.get(incident.component, "")), route)


def send_resolve(pager: PagerDutyEvents, incident: Incident, route: str) -> str:
    """Send the resolve event the page handler builds for the incident."""
    return pager.send(resolve_event(incident), route)


def make_incident(**changes: Any) -> Incident:
    made = Incident(
        id="inc-20261125-0a1b2c3d4e",
        correlation_key="ikea|cosmosdb|cosmos-availability",
        condition_key="cosmosdb|cosmos-availability",
        title="cosmos-availability on cosmos-amicis-ikea-dev",
        severity=Severity.SEV2,
        status=OPEN,
        tenant="ikea",
        environment="dev",
        component="cosmosdb",
        resource_id=resource("cosmosdb", "cosmos-amicis-ikea-dev"),
        rule="cosmos-availability",
        kind="Platform",
        signal_count=3,
        opened_at="2026-11-25T10:00:00.000Z",
        updated_at="2026-11-25T10:01:00.000Z",
        last_signal_at="2026-11-25T10:01:00.000Z",
        reasons=("Azure Sev1 → sev2 baseline", "availability below 99%"),
    )
    return made.evolve(**changes)


def routing(default: str | None = DEFAULT_KEY, spec: str | None = None) -> RoutingTable:
    return RoutingTable.parse(default, spec, "PAGERDUTY_ROUTING_KEYS")


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[PagerDutyEventsStub]:
    with PagerDutyEventsStub() as started:
        assert started.ca_file
        monkeypatch.setenv("SSL_CERT_FILE", started.ca_file)  # the client takes only https://
        yield started


@pytest.fixture
def pager(stub: PagerDutyEventsStub) -> PagerDutyEvents:
    return PagerDutyEvents(routing(), stub.url)


def test_trigger_sends_exactly_the_documented_event(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    incident = make_incident(planned_actions=("cosmos-failover on cosmos-amicis-ikea-dev",))

    line = send_trigger(pager, incident, "default", LINKS)

    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/v2/enqueue")
    assert request.header("Content-Type") == "application/json"
    assert request.json == {
        "routing_key": DEFAULT_KEY,
        "event_action": "trigger",
        "dedup_key": incident.id,
        "payload": {
            "summary": "[SEV2] cosmos-availability on cosmos-amicis-ikea-dev",
            "source": incident.resource_id,
            "severity": "error",
            "component": "cosmosdb",
            "group": "ikea",
            "class": "Platform",
            "custom_details": {
                "incident": incident.id,
                "reasons": ["Azure Sev1 → sev2 baseline", "availability below 99%"],
                "signal_count": 3,
                "environment": "dev",
                "opened_at": "2026-11-25T10:00:00.000Z",
                "planned_actions": ["cosmos-failover on cosmos-amicis-ikea-dev"],
                "runbook": "cosmosdb.md#regional-failover",
            },
        },
        "links": LINKS,
    }
    alert = stub.alert(incident.id)
    assert alert is not None and (alert.status, alert.severity, alert.routing_key) == (
        "triggered",
        "error",
        DEFAULT_KEY,
    )
    assert incident.id in line and "error" in line and DEFAULT_KEY not in line


def test_trigger_without_links_sends_no_links_key(stub: PagerDutyEventsStub, pager: PagerDutyEvents) -> None:
    send_trigger(pager, make_incident(), "default", [])

    assert "links" not in stub.requests[0].json


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.SEV1, "critical"),
        (Severity.SEV2, "error"),
        (Severity.SEV3, "warning"),
        (Severity.SEV4, "info"),
    ],
)
def test_severity_maps_to_pagerdutys_four_levels(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents, severity: Severity, expected: str
) -> None:
    send_trigger(pager, make_incident(severity=severity), "default", [])

    assert stub.events[0]["payload"]["severity"] == expected
    assert stub.events[0]["payload"]["summary"].startswith(f"[{severity.label.upper()}]")


def test_summary_is_cut_to_1024_characters_and_accepted(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    send_trigger(pager, make_incident(title="x" * 5000, all_tenants=True), "default", [])

    summary = stub.events[0]["payload"]["summary"]
    assert len(summary) == 1024 and summary.startswith("[SEV2] [ALL TENANTS] xxx")
    assert stub.incident_count() == 1


def test_a_raised_severity_retriggers_the_same_alert(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    incident = make_incident(severity=Severity.SEV3)

    send_trigger(pager, incident, "default", [])
    send_trigger(pager, incident.evolve(severity=Severity.SEV1), "default", [])

    assert [e["dedup_key"] for e in stub.events] == [incident.id, incident.id]
    assert stub.incident_count() == 1
    alert = stub.alert(incident.id)
    assert alert is not None and (alert.severity, alert.triggers, alert.status) == (
        "critical",
        2,
        "triggered",
    )


def test_resolve_goes_through_the_routing_key_of_the_trigger(stub: PagerDutyEventsStub) -> None:
    pager = PagerDutyEvents(routing(spec=f"ikea/sev1={IKEA_SEV1_KEY}"), stub.url)
    incident = make_incident(severity=Severity.SEV1)
    route = pager.route_for(incident)
    send_trigger(pager, incident, route, [])

    # Later the incident calmed down to sev2, whose own route would be the default key.
    line = send_resolve(pager, incident.evolve(severity=Severity.SEV2), route)

    resolve = stub.events[-1]
    assert resolve == {"routing_key": IKEA_SEV1_KEY, "event_action": "resolve", "dedup_key": incident.id}
    alert = stub.alert(incident.id)
    assert alert is not None and alert.status == "resolved" and alert.actions == ["trigger", "resolve"]
    assert stub.dropped == []
    assert incident.id in line


def test_the_stub_drops_a_resolve_sent_through_another_routing_key(stub: PagerDutyEventsStub) -> None:
    pager = PagerDutyEvents(routing(spec=f"ikea/sev1={IKEA_SEV1_KEY}"), stub.url)
    incident = make_incident(severity=Severity.SEV1)
    send_trigger(pager, incident, "ikea/sev1", [])

    send_resolve(pager, incident, "default")  # what a resolve through the current route would do: wrong

    alert = stub.alert(incident.id)
    assert alert is not None and alert.status == "triggered"
    assert [e["routing_key"] for e in stub.dropped] == [DEFAULT_KEY]


@pytest.mark.parametrize(
    ("tenant", "severity", "selector", "key"),
    [
        ("ikea", Severity.SEV1, "ikea/sev1", IKEA_SEV1_KEY),
        ("ikea", Severity.SEV2, "ikea", IKEA_KEY),
        ("hm", Severity.SEV1, "*/sev1", SEV1_KEY),
        ("hm", Severity.SEV2, "default", DEFAULT_KEY),
    ],
)
def test_the_most_specific_routing_key_wins(
    stub: PagerDutyEventsStub, tenant: str, severity: Severity, selector: str, key: str
) -> None:
    spec = f"ikea/sev1={IKEA_SEV1_KEY}, ikea={IKEA_KEY}, */sev1={SEV1_KEY}"
    pager = PagerDutyEvents(routing(spec=spec), stub.url)
    incident = make_incident(tenant=tenant, severity=severity)

    route = pager.route_for(incident)
    send_trigger(pager, incident, route, [])

    assert route == f"{selector}#{target_fingerprint(key)}", "the selector and a fingerprint, never the key"
    assert stub.events[0]["routing_key"] == key


def test_no_routing_key_configured_is_rejected_before_any_request(stub: PagerDutyEventsStub) -> None:
    pager = PagerDutyEvents(routing(default=None), stub.url)

    with pytest.raises(Rejected, match="PAGERDUTY_ROUTING_KEY"):
        pager.route_for(make_incident())
    with pytest.raises(Rejected, match="no longer configured"):
        send_trigger(pager, make_incident(), "default", [])
    assert stub.requests == []


def test_a_429_with_retry_after_is_transient_after_one_request(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    stub.respond_next("/v2/enqueue", 429, headers={"Retry-After": "2"})

    with pytest.raises(Transient) as caught:
        send_trigger(pager, make_incident(), "default", [])

    assert caught.value.retry_after == 2.0 and caught.value.held, "rate limited: held back, not failed"
    assert len(stub.requests) == 1
    assert stub.incident_count() == 0


def test_a_429_without_retry_after_is_transient_with_no_hint(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    stub.respond_next("/v2/enqueue", 429)

    with pytest.raises(Transient) as caught:
        send_trigger(pager, make_incident(), "default", [])

    assert caught.value.retry_after is None
    assert len(stub.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_transient_after_one_request(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents, status: int
) -> None:
    stub.fail_next("/v2/enqueue", 1, status=status)

    with pytest.raises(Transient, match=str(status)) as caught:
        send_trigger(pager, make_incident(), "default", [])

    assert len(stub.requests) == 1
    assert not caught.value.held, "a server error is a failed try"


def test_a_503_with_retry_after_is_a_failure_that_says_when(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    stub.respond_next("/v2/enqueue", 503, headers={"Retry-After": "20"})

    with pytest.raises(Transient, match="503") as caught:
        send_trigger(pager, make_incident(), "default", [])

    assert (caught.value.retry_after, caught.value.held) == (20.0, False)


def test_failures_then_success_open_exactly_one_alert(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    stub.fail_next("/v2/enqueue", 3, status=500)
    incident = make_incident()

    for _ in range(3):
        with pytest.raises(Transient):
            send_trigger(pager, incident, "default", [])
    send_trigger(pager, incident, "default", [])

    assert len(stub.requests) == 4
    assert stub.incident_count() == 1 and stub.triggered_keys() == {incident.id}


def test_a_400_is_rejected_with_pagerdutys_own_words(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    stub.respond_next("/v2/enqueue", 400, body=invalid_event("'payload.summary' is missing or blank"))

    with pytest.raises(Rejected) as caught:
        send_trigger(pager, make_incident(), "default", [])

    assert "400" in str(caught.value)
    assert "Event object is invalid" in str(caught.value)
    assert "'payload.summary' is missing or blank" in str(caught.value)
    assert len(stub.requests) == 1


def test_the_openapi_error_example_is_rejected_with_its_text(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    stub.respond_next("/v2/enqueue", 400, body=UNRECOGNIZED)

    with pytest.raises(Rejected, match="Event object format is unrecognized; JSON parse error"):
        send_resolve(pager, make_incident(), "default")


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"payload": {"source": "s", "severity": "info"}}, "'payload.summary' is missing or blank"),
        ({"payload": {"summary": "s", "source": "s", "severity": "fatal"}}, "'payload.severity' is invalid"),
        ({"payload": {"summary": "s" * 1025, "source": "s", "severity": "info"}}, "longer than 1024"),
        (
            {"payload": {"summary": "s", "source": "s", "severity": "info"}, "dedup_key": "k" * 256},
            "'dedup_key' is longer than 255",
        ),
    ],
)
def test_the_stub_refuses_what_pagerduty_refuses(
    stub: PagerDutyEventsStub, event: dict[str, Any], error: str
) -> None:
    client = events_client(DEFAULT_KEY, stub.url)
    dedup_key = event.pop("dedup_key", None)

    with pytest.raises(Rejected, match=error), translated_errors("test"):
        client.send_event("trigger", dedup_key=dedup_key, **event)

    assert stub.events == [] and stub.incident_count() == 0


def test_the_stub_generates_a_dedup_key_when_none_is_sent(stub: PagerDutyEventsStub) -> None:
    client = events_client(DEFAULT_KEY, stub.url)

    key = client.send_event("trigger", payload={"summary": "s", "source": "s", "severity": "info"})

    assert len(key) == 32 and stub.triggered_keys() == {key}


def test_a_refused_connection_is_transient(stub: PagerDutyEventsStub, pager: PagerDutyEvents) -> None:
    stub.stop()

    with pytest.raises(Transient, match="unreachable"):
        send_trigger(pager, make_incident(), "default", [])


@pytest.mark.parametrize("close", [False, True], ids=["503", "connection-closed"])
def test_pagerduty_down_is_transient(stub: PagerDutyEventsStub, pager: PagerDutyEvents, close: bool) -> None:
    stub.set_down(close=close)

    with pytest.raises(Transient):
        send_trigger(pager, make_incident(), "default", [])

    assert len(stub.requests) == 1 and stub.incident_count() == 0


def test_a_change_event_goes_to_the_change_endpoint(
    stub: PagerDutyEventsStub, pager: PagerDutyEvents
) -> None:
    line = pager.change_event(
        "default",
        "Failover " + "y" * 2000,
        "dr-responder",
        {"action": "cosmos-failover", "incident": "inc-1"},
    )

    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/v2/change/enqueue")
    assert request.json == {
        "routing_key": DEFAULT_KEY,
        "payload": {
            "summary": ("Failover " + "y" * 2000)[:1024],
            "source": "dr-responder",
            "custom_details": {"action": "cosmos-failover", "incident": "inc-1"},
        },
    }
    assert len(stub.change_events) == 1 and stub.events == [] and stub.incident_count() == 0
    assert line.startswith("PagerDuty: change event 'Failover ")


def test_a_burst_beyond_120_events_on_one_route_waits_in_the_queue(stub: PagerDutyEventsStub) -> None:
    pager = PagerDutyEvents(routing(spec=f"ikea={IKEA_KEY}"), stub.url)

    for n in range(EVENTS_PER_MINUTE):
        send_trigger(pager, make_incident(id=f"inc-burst-{n}", tenant="hm"), "default", [])
    with pytest.raises(Transient) as caught:
        send_trigger(pager, make_incident(id="inc-burst-last", tenant="hm"), "default", [])
    # Another routing key has its own budget.
    send_trigger(pager, make_incident(id="inc-other-route"), "ikea", [])

    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 60
    assert len(stub.requests) == EVENTS_PER_MINUTE + 1  # the held-back event never left
    assert stub.incident_count() == EVENTS_PER_MINUTE + 1 and stub.alert("inc-burst-last") is None


def test_the_routing_key_is_never_in_an_error_or_a_log(
    stub: PagerDutyEventsStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pager = PagerDutyEvents(
        routing(spec=f"ikea={IKEA_KEY}, */sev1={SEV1_KEY}, ikea/sev1={IKEA_SEV1_KEY}"), stub.url
    )
    stub.respond_next("*", 429, headers={"Retry-After": "1"})
    stub.respond_next("*", 500)
    stub.respond_next("*", 400, body=invalid_event("'routing_key' is invalid"))
    messages = []
    for _ in range(3):
        with pytest.raises((Transient, Rejected)) as caught:
            send_trigger(pager, make_incident(), "ikea", [])
        messages.append(str(caught.value))
    messages.append(send_trigger(pager, make_incident(), "ikea", []))
    messages.append(send_resolve(pager, make_incident(), "ikea"))
    stub.stop()
    with pytest.raises(Transient) as refused:
        pager.change_event("ikea", "x", "y", {})
    messages.append(str(refused.value))

    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    for key in ALL_KEYS:
        assert not any(key in m for m in messages + logged), key
    assert IKEA_KEY not in repr(pager.routing)


def test_a_base_url_that_is_not_https_is_rejected_with_the_setting_named() -> None:
    """The pagerduty client refuses http:// with its own UrlError, which is no pagerduty.Error."""
    pager = PagerDutyEvents(routing(), "http://127.0.0.1:9/")
    with pytest.raises(Rejected, match="PAGERDUTY_EVENTS_URL"):
        send_trigger(pager, make_incident(), "default", [])


def test_a_resolve_follows_the_triggering_key_after_the_settings_change(stub: PagerDutyEventsStub) -> None:
    before = PagerDutyEvents(routing(spec=f"ikea={IKEA_KEY}"), stub.url)
    incident = make_incident()
    route = before.route_for(incident)
    send_trigger(before, incident, route, [])
    # The ikea selector now points at another service; the old key is still configured as the default.
    after = PagerDutyEvents(routing(default=IKEA_KEY, spec=f"ikea={SEV1_KEY}"), stub.url)
    send_resolve(after, incident, route)
    assert stub.events[-1]["routing_key"] == IKEA_KEY
    alert = stub.alert(incident.id)
    assert alert is not None and alert.status == "resolved"


def test_a_resolve_whose_key_is_gone_is_rejected_loudly(stub: PagerDutyEventsStub) -> None:
    before = PagerDutyEvents(routing(spec=f"ikea={IKEA_KEY}"), stub.url)
    incident = make_incident()
    route = before.route_for(incident)
    after = PagerDutyEvents(routing(), stub.url)
    with pytest.raises(Rejected, match="no longer configured; resolve it in PagerDuty by hand") as caught:
        send_resolve(after, incident, route)
    assert IKEA_KEY not in str(caught.value)
