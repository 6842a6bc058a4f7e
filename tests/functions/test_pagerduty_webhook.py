"""POST /api/pagerduty and the `pagerduty` queue trigger, with real requests and messages."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import bootstrap
from shared.bootstrap import Services
from shared.localhost.runtime import QueuePump, service_bus_message
from shared.settings import Settings
from tests.conftest import REFDATA, ROOT
from tests.factories import FakeClock
from tests.functions.harness import assert_error, dry_run, function, json_body, post
from tests.json_strategies import json_values, one_field_changed
from tests.stubs import PagerDutyRestStub

SECRET = "test-webhook-secret-0123456789"
PD = REFDATA / "pagerduty"


@pytest.fixture(autouse=True)
def app(data_dir: Path, clock: FakeClock) -> Iterator[Services]:
    """The app with a webhook secret (and PagerDuty's own vector secret) configured."""
    vectors = json.loads((PD / "webhook_v3_signature_test_vectors.json").read_text())["vectors"]
    secrets = ",".join([SECRET, vectors[0]["secret"]])
    env = {"DR_DATA_DIR": str(data_dir), "PAGERDUTY_WEBHOOK_SECRETS": secrets}
    replacement = Services(Settings.from_env(env), clock=clock)
    bootstrap.reset(replacement)
    yield replacement
    bootstrap.reset()


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _webhook(body: bytes, delivery: str = "delivery-1", signature: str | None = None) -> Any:
    headers = {"X-Webhook-Id": delivery, "X-PagerDuty-Signature": signature or _sign(body)}
    return post("pagerduty", body, headers=headers, function_name="pagerduty_webhook")


def _event(name: str, incident_key: str, event_id: str = "E1") -> bytes:
    """A captured delivery, retargeted at our incident."""
    envelope = json.loads((PD / f"webhook_v3_captured_{name}.json").read_text())
    envelope["event"]["id"] = event_id
    if "incident_key" in envelope["event"]["data"]:
        envelope["event"]["data"]["incident_key"] = incident_key
    return json.dumps(envelope).encode()


def _apply_all(app: Services) -> int:
    applied = 0
    while (received := app.local_queue.receive("pagerduty")) is not None:
        function("apply_pagerduty_event")(service_bus_message(received))
        app.local_queue.complete(received)
        applied += 1
    return applied


@pytest.fixture
def incident_id(app: Services) -> str:
    answer = post("alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
    (opened,) = json_body(answer)["incidents"]
    return str(opened)


def test_pagerdutys_own_signed_delivery_is_accepted(app: Services) -> None:
    vector = json.loads((PD / "webhook_v3_signature_test_vectors.json").read_text())["vectors"][0]["cases"][3]
    body = (PD / vector["body_file"]).read_bytes()
    answer = _webhook(body, signature=vector["X-PagerDuty-Signature"])
    assert answer.status_code == 202 and json_body(answer) == {
        "accepted": True,
        "event": "incident.acknowledged",
    }
    assert _apply_all(app) == 1
    (recorded,) = app.store.signals(None, 10)  # not one of our incidents: kept, not applied
    assert (recorded.source, recorded.kind) == ("pagerduty", "incident.acknowledged")


def test_acknowledged_in_pagerduty_acknowledges_ours_and_tells_slack(
    app: Services, incident_id: str, data_dir: Path
) -> None:
    body = _event("incident_acknowledged", incident_id)
    assert _webhook(body).status_code == 202
    assert _webhook(body).status_code == 202, "a redelivery is answered too…"
    assert _apply_all(app) == 1, "…and dropped by its X-Webhook-Id"
    found = app.store.get(incident_id)
    assert found is not None
    incident = found.incident
    assert (incident.status, incident.acknowledged_by) == ("acknowledged", "Ben")
    assert incident.time_to_acknowledge_seconds is not None
    assert app.store.timeline(incident_id)[-1].text == "Acknowledged by Ben in PagerDuty"
    while (received := app.local_queue.receive("notifications")) is not None:
        function("send_notification")(service_bus_message(received))
        app.local_queue.complete(received)
    replies = [r["payload"] for r in dry_run(data_dir, "slack") if r["payload"].get("thread_ts")]
    assert [r["text"] for r in replies] == ["Acknowledged by Ben in PagerDuty"]


def test_the_same_event_in_two_deliveries_counts_once(app: Services, incident_id: str) -> None:
    body = _event("incident_acknowledged", incident_id)
    _webhook(body, "delivery-1")
    _webhook(body, "delivery-2")  # PagerDuty sent it twice under different delivery ids
    assert _apply_all(app) == 2
    lines = [e.text for e in app.store.timeline(incident_id) if e.kind == "pagerduty"]
    assert lines == ["Acknowledged by Ben in PagerDuty"]


def test_resolved_in_pagerduty_resolves_ours_and_sends_nothing_back(
    app: Services, incident_id: str, data_dir: Path
) -> None:
    page = app.local_queue.receive("pages")
    assert page is not None
    function("send_page")(service_bus_message(page))
    app.local_queue.complete(page)
    _webhook(_event("incident_resolved", incident_id))
    _apply_all(app)
    found = app.store.get(incident_id)
    assert found is not None and found.incident.status == "resolved"
    assert found.incident.resolved_by == "Ben (PagerDuty)"
    assert found.incident.time_to_resolve_seconds is not None
    while (received := app.local_queue.receive("pages")) is not None:
        function("send_page")(service_bus_message(received))
        app.local_queue.complete(received)
    assert [r["operation"] for r in dry_run(data_dir, "pagerduty")] == ["trigger"], (
        "no resolve back to PagerDuty"
    )


@pytest.mark.parametrize(
    ("signature", "status", "error"),
    [(None, 401, "unauthorized"), ("v1=" + "0" * 64, 401, "unauthorized"), ("garbage", 401, "unauthorized")],
)
def test_unsigned_or_wrongly_signed_is_401_and_nothing_is_queued(
    app: Services, signature: str | None, status: int, error: str
) -> None:
    body = (PD / "webhook_v3_captured_incident_acknowledged.json").read_bytes()
    headers = {"X-Webhook-Id": "d"} | ({"X-PagerDuty-Signature": signature} if signature else {})
    answer = post("pagerduty", body, headers=headers, function_name="pagerduty_webhook")
    assert_error(answer, status, error)
    assert SECRET not in answer.get_body().decode()
    assert app.local_queue.active_count("pagerduty") == 0


def test_malformed_json_with_a_valid_signature_is_400_and_nothing_is_queued(
    app: Services, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"event": '
    assert_error(_webhook(body), 400, "malformed_json")
    assert app.local_queue.active_count("pagerduty") == 0
    # PagerDuty disables a subscription after three dropped deliveries: each refusal is in the log.
    assert any(
        "refused: malformed_json" in r.getMessage() for r in caplog.records if r.levelname == "WARNING"
    )


def test_a_gzip_delivery_with_a_valid_signature_is_415_naming_the_encoding(app: Services) -> None:
    body = gzip.compress((PD / "webhook_v3_captured_incident_acknowledged.json").read_bytes())
    headers = {"X-Webhook-Id": "d", "X-PagerDuty-Signature": _sign(body), "Content-Encoding": "gzip"}
    answer = post("pagerduty", body, headers=headers, function_name="pagerduty_webhook")
    assert_error(answer, 415, "unsupported_media_type", "content-encoding")
    assert app.local_queue.active_count("pagerduty") == 0


def test_pagey_ping_is_answered(app: Services) -> None:
    body = (PD / "webhook_v3_captured_pagey_ping.json").read_bytes()
    answer = _webhook(body)
    assert answer.status_code == 202 and json_body(answer)["event"] == "pagey.ping"
    _apply_all(app)
    assert app.store.list_incidents(None, None, 10) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=400) | json_values().map(lambda v: json.dumps(v).encode()), signed=st.booleans()
)
def test_fuzzed_deliveries_never_get_a_5xx_and_a_refusal_queues_nothing(
    app: Services, body: bytes, signed: bool
) -> None:
    before = app.local_queue.active_count("pagerduty")
    answer = _webhook(body, signature=None if signed else "v1=" + "1" * 64)
    assert answer.status_code < 500
    if answer.status_code >= 400:
        assert set(json_body(answer)) == {"error", "detail"}
        assert app.local_queue.active_count("pagerduty") == before


def _deliver_as_dr_serve_does(app: Services) -> int:
    """Deliver what the pagerduty queue holds through the local host's pump (settles as dr serve does)."""
    pump = QueuePump(app.local_queue, "pagerduty", function("apply_pagerduty_event"), threading.Event())
    delivered = 0
    while (received := app.local_queue.receive("pagerduty")) is not None:
        pump.deliver(received)
        delivered += 1
    return delivered


def test_a_malformed_field_in_an_accepted_event_is_written_down_and_poison_not_a_crash(
    app: Services, incident_id: str
) -> None:
    """`data.assignees: 5` crashed the worker ten times, then dead-lettered; the incident never knew."""
    envelope = json.loads(_event("incident_acknowledged", incident_id))
    envelope["event"]["event_type"] = "incident.reassigned"
    envelope["event"]["data"]["assignees"] = 5
    assert _webhook(json.dumps(envelope).encode()).status_code == 202
    assert _deliver_as_dr_serve_does(app) == 1, "settled on its first delivery"
    (dead,) = app.local_queue.dead_letters("pagerduty")
    assert dead.reason == "PoisonMessage" and "event.data.assignees must be an array" in dead.description
    lines = [e.text for e in app.store.timeline(incident_id) if e.kind == "pagerduty"]
    assert len(lines) == 1 and "incident.reassigned" in lines[0]
    assert "event.data.assignees must be an array" in lines[0]


@pytest.mark.parametrize(
    "occurred_at", ["yesterday", "", "2025-04-07", "99999-01-01T00:00:00Z", "2025-02-30T10:00:00Z"]
)
def test_an_event_whose_occurred_at_is_not_a_date_time_is_refused_at_the_door(
    app: Services, occurred_at: str
) -> None:
    answer = _webhook(_changed("incident_acknowledged", ("event", "occurred_at"), occurred_at))
    assert_error(answer, 422, "invalid_field", "event.occurred_at")
    assert app.local_queue.active_count("pagerduty") == 0


def _captured(name: str) -> dict[str, Any]:
    return dict(json.loads((PD / f"webhook_v3_captured_{name}.json").read_text()))


def _changed(name: str, path: tuple[str, ...], value: Any) -> bytes:
    envelope = _captured(name)
    parent = envelope
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return json.dumps(envelope).encode()


NEVER_SUCCEEDS = [
    pytest.param("incident_acknowledged", ("event", "data"), "a string", "event.data", id="data-string"),
    pytest.param("incident_acknowledged", ("event", "data"), [1, 2], "event.data", id="data-list"),
    pytest.param("incident_acknowledged", ("event", "id"), "E" * 129, "event.id", id="event-id-129"),
    pytest.param(
        "incident_acknowledged", ("event", "data", "id"), "Q" * 129, "event.data.id", id="data-id-129"
    ),
    pytest.param(
        "incident_acknowledged", ("event", "data", "id"), {"a": 1}, "event.data.id", id="data-id-object"
    ),
    pytest.param(
        "incident_annotated",
        ("event", "data", "incident", "id"),
        "Q" * 200,
        "event.data.incident.id",
        id="note",
    ),
]


@pytest.mark.parametrize(("name", "path", "value", "named"), NEVER_SUCCEEDS)
def test_a_signed_delivery_that_can_never_succeed_is_a_4xx_not_a_5xx(
    app: Services, name: str, path: tuple[str, ...], value: Any, named: str
) -> None:
    """PagerDuty retries a 5xx for good: a delivery no retry can fix must be refused with a 4xx."""
    answer = _webhook(_changed(name, path, value))
    assert 400 <= answer.status_code < 500, answer.get_body()
    assert set(json_body(answer)) == {"error", "detail"}
    assert named in json_body(answer)["detail"]
    assert app.local_queue.active_count("pagerduty") == 0


def _reassigned() -> dict[str, Any]:
    """No reassignment was captured: the acknowledged delivery retyped, cut to the fields it needs."""
    envelope = _captured("incident_acknowledged")
    event, data = envelope["event"], envelope["event"]["data"]
    keep = ("id", "type", "incident_key", "html_url", "assignees")
    event.update(event_type="incident.reassigned", data={k: data[k] for k in keep})
    return {"event": {k: event[k] for k in ("id", "event_type", "occurred_at", "agent", "data")}}


CAPTURED = [
    _captured(name)
    for name in ("incident_acknowledged", "incident_annotated", "incident_resolved", "incident_triggered")
] + [_reassigned()]
FUZZ_VALUES = json_values() | st.text(min_size=100, max_size=300)
EVENT_TYPES = (
    "incident.acknowledged",
    "incident.unacknowledged",
    "incident.resolved",
    "incident.reassigned",
    "incident.escalated",
    "incident.annotated",
    "incident.priority_updated",
    "incident.triggered",
)


@st.composite
def any_type_any_data_field(draw: st.DrawFn) -> dict[str, Any]:
    """A captured delivery of any event type whose data holds any JSON value in fields updates read."""
    envelope = _reassigned()
    event = envelope["event"]
    event["event_type"] = draw(st.sampled_from(EVENT_TYPES))
    fields = st.sampled_from(["assignees", "priority", "content", "number", "html_url", "incident", "type"])
    for name in draw(st.lists(fields, min_size=1, max_size=3, unique=True)):
        event["data"][name] = draw(json_values())
    if draw(st.booleans()):
        event["agent"] = draw(json_values())
    return envelope


FUZZ_RUNS: list[int] = []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(envelope=one_field_changed(CAPTURED, FUZZ_VALUES) | any_type_any_data_field())
def test_fuzzed_validly_signed_deliveries_never_get_a_5xx(
    app: Services, incident_id: str, envelope: Any
) -> None:
    """Captured deliveries with one field deleted or replaced anywhere, signed with the right secret.

    What is accepted is then applied as dr serve does: done or poison at once, never a crash.
    """
    FUZZ_RUNS.append(1)
    data = envelope.get("event", {}).get("data") if isinstance(envelope.get("event"), dict) else None
    if isinstance(data, dict) and "incident_key" in data:
        data["incident_key"] = incident_id  # one of ours, so the update is applied, not just recorded
    before = app.local_queue.active_count("pagerduty")
    answer = _webhook(json.dumps(envelope).encode(), delivery=f"fuzz-{len(FUZZ_RUNS)}")
    assert answer.status_code < 500, answer.get_body()
    if answer.status_code >= 400:
        assert set(json_body(answer)) == {"error", "detail"}
        assert app.local_queue.active_count("pagerduty") == before
    _deliver_as_dr_serve_does(app)
    assert app.local_queue.active_count("pagerduty") == 0, "a crash leaves the message for redelivery"
    assert {d.reason for d in app.local_queue.dead_letters("pagerduty")} <= {"PoisonMessage"}


def test_a_note_before_any_linking_event_is_placed_by_asking_pagerduty(
    data_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PagerDutyRestStub() as rest:
        monkeypatch.setenv("SSL_CERT_FILE", rest.ca_file or "")
        env = {
            "DR_DATA_DIR": str(data_dir),
            "PAGERDUTY_WEBHOOK_SECRETS": SECRET,
            "PAGERDUTY_API_TOKEN": rest.token,
            "PAGERDUTY_API_URL": rest.url,
            "PAGERDUTY_SERVICE_ID": "PSVC001",
        }
        app = Services(Settings.from_env(env), clock=clock)
        bootstrap.reset(app)
        answer = post("alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
        (incident_id,) = json_body(answer)["incidents"]
        rest.add_incident(incident_id, incident_id="Q2CKYRLH85UNN4")
        note = (PD / "webhook_v3_captured_incident_annotated.json").read_bytes()  # names Q2CKYRLH85UNN4 only
        assert _webhook(note).status_code == 202
        assert _apply_all(app) == 1
        lines = [e.text for e in app.store.timeline(incident_id) if e.kind == "pagerduty"]
        assert lines == ["Note from Ben: Resolution Note: I'm resolving it"]
        assert [r.path for r in rest.requests] == ["/incidents/Q2CKYRLH85UNN4"]
