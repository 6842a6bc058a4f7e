"""sweep_outbox with a real TimerRequest; eventgrid_trigger with a real EventGridEvent."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import azure.functions as func
import pytest
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum
from azure.functions.timer import TimerRequest

from shared.bootstrap import Services
from shared.domain.effects import Effect
from shared.intake.azure_monitor import parse_alert
from shared.intake.pipeline import Intake
from shared.ports import DeadLetter, QueueMessage
from tests.alerts import body, metric_alert
from tests.factories import FakeClock
from tests.functions.harness import (
    DELIVERY_FILES,
    EMPTY,
    INCIDENT_EVENTS,
    all_signals,
    event_payload,
    fold,
    function,
    json_body,
    post,
    snapshot,
)


class DownQueue:
    """Service Bus unreachable: every send fails, so effects stay in the incident's outbox."""

    def send(self, messages: Sequence[QueueMessage]) -> None:
        raise ConnectionError("service bus unreachable")

    def dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        return []


def _stranded(app: Services, clock: FakeClock, rule: str = "cosmos-errors") -> str:
    """An incident whose page and card were stored but never reached the queue."""
    signal = parse_alert(metric_alert(rule=rule, alert_id=rule, severity="Sev0"), app.owner())
    report = Intake(app.store, DownQueue(), app.policy, clock).accept([signal])
    (incident_id,) = report.incidents
    return incident_id


def _sweep() -> None:
    function("sweep_outbox")(TimerRequest(past_due=False))


def _outbox(app: Services, incident_id: str) -> list[str]:
    found = app.store.get(incident_id)
    assert found is not None
    return sorted(Effect.from_dict(e).kind for e in found.incident.outbox)


def _drain(app: Services, queue: str) -> list[dict[str, Any]]:
    bodies = []
    while (received := app.local_queue.receive(queue)) is not None:
        bodies.append(json.loads(received.body))
        app.local_queue.complete(received)
    return bodies


def test_sweep_sends_an_outbox_older_than_30_seconds(app: Services, clock: FakeClock) -> None:
    incident_id = _stranded(app, clock)
    assert _outbox(app, incident_id) == ["notify", "page"]
    assert snapshot(app).queued == (0, 0, 0)

    clock.advance(seconds=31)
    _sweep()

    assert _outbox(app, incident_id) == []
    assert app.store.with_pending_effects("9999", 10) == []
    assert [(m["kind"], m["event"], m["incident_id"]) for m in _drain(app, "pages")] == [
        ("page", "trigger", incident_id)
    ]
    assert [(m["kind"], m["event"]) for m in _drain(app, "notifications")] == [("notify", "opened")]


def test_sweep_leaves_an_outbox_that_is_not_yet_30_seconds_old(app: Services, clock: FakeClock) -> None:
    """A request may still be sending it: the sweeper waits, so the common case sends once."""
    incident_id = _stranded(app, clock)
    clock.advance(seconds=30)
    _sweep()
    assert _outbox(app, incident_id) == ["notify", "page"]
    assert snapshot(app).queued == (0, 0, 0)


def test_sweep_twice_or_past_due_queues_each_effect_once(app: Services, clock: FakeClock) -> None:
    ids = [_stranded(app, clock, rule) for rule in ("rule-1", "rule-2", "rule-3")]
    clock.advance(minutes=5)
    _sweep()
    function("sweep_outbox")(TimerRequest(past_due=True))
    assert all(_outbox(app, i) == [] for i in ids)
    assert snapshot(app).queued == (3, 3, 0)


def test_sweep_with_nothing_stranded_does_nothing(app: Services, clock: FakeClock) -> None:
    assert post("alerts", body(metric_alert(severity="Sev0"))).status_code == 202
    before = snapshot(app)
    clock.advance(minutes=5)
    _sweep()
    assert snapshot(app) == before


# --- the Event Grid trigger -----------------------------------------------------------------


def _trigger_event(event: dict[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """What the Functions host hands the trigger: its own converter's output, for either schema."""
    datum = Datum(value=json.dumps(event), type="json")
    converted = EventGridEventInConverter.decode(datum, trigger_metadata=None)
    assert isinstance(converted, func.EventGridEvent | func.CloudEvent)
    return converted


def _only_event(name: str) -> dict[str, Any]:
    payload = event_payload(name)
    (event,) = payload if isinstance(payload, list) else [payload]
    return dict(event)


@pytest.mark.parametrize("name", DELIVERY_FILES)
def test_trigger_stores_the_signal_the_policy_calls_for(app: Services, name: str) -> None:
    event = _only_event(name)
    function("eventgrid_trigger")(_trigger_event(event))
    fold()
    stored = snapshot(app)
    if name in INCIDENT_EVENTS:
        assert (stored.incidents, stored.informational, stored.signals) == (1, 0, 1)
        (incident,) = app.store.list_incidents(None, None, 10)
        assert incident.rule == event.get("eventType", event.get("type"))
        assert incident.outbox == ()
        assert stored.queued[1] == 1, "the card is queued"
    else:
        assert (stored.incidents, stored.informational, stored.signals) == (0, 1, 1)
        assert stored.queued == (0, 0, 0)
    (signal,) = all_signals(app)
    assert signal.source == "event-grid"
    # the 2018 Container Registry docs use short types ("ImagePushed"): stored under the full name
    assert signal.kind.endswith(event.get("eventType", event.get("type", "")))


@pytest.mark.parametrize("name", DELIVERY_FILES)
def test_trigger_and_webhook_store_the_same_signal(app: Services, name: str) -> None:
    """The same event through the trigger and then the webhook is one signal: the webhook sees a duplicate."""
    function("eventgrid_trigger")(_trigger_event(_only_event(name)))
    fold()
    before = snapshot(app)
    answer = post("eventgrid", body(event_payload(name)))
    assert answer.status_code == 202
    report = json_body(answer)
    assert (report["duplicates"], report["opened"], report["informational"]) == (1, 0, 0)
    assert snapshot(app) == before


def test_trigger_without_an_event_time_is_still_stored(app: Services) -> None:
    """The host parses eventTime; a missing one must not turn every retry into a 422."""
    event = _trigger_event(_only_event("eg_redis_PatchingCompleted.json"))
    event = func.EventGridEvent(
        id=event.id,
        data=event.get_json(),
        topic=event.topic,
        subject=event.subject,
        event_type=event.event_type,
        event_time=None,
        data_version=event.data_version,
    )
    function("eventgrid_trigger")(event)
    fold()
    (signal,) = app.store.signals(None, 10)
    # stamped with the wall clock (responders/events.py calls utc_now(), not services().clock)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", signal.occurred_at)


def test_trigger_logs_and_drops_an_event_that_can_never_be_read(caplog: pytest.LogCaptureFixture) -> None:
    """Raising would make Event Grid retry it for a day; it is refused once, loudly."""
    event = func.EventGridEvent(
        id="",
        data={},
        topic="/subscriptions/x",
        subject="",
        event_type="Microsoft.Cache.PatchingCompleted",
        event_time=None,
        data_version="1",
    )
    function("eventgrid_trigger")(event)
    fold()
    assert snapshot() == EMPTY
    assert any(r.levelname == "ERROR" and "missing_field" in r.getMessage() for r in caplog.records)
