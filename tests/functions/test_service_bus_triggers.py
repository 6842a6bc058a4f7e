"""The queue-trigger functions as the Functions host runs them in Azure, on the Service Bus adapter.

The app's queue is `ServiceBusQueue` on the in-memory namespace of `tests.stubs.service_bus`; a
small host takes what was sent, hands each function a real `azure.functions.ServiceBusMessage`
(delivery count, ids, enqueued time, application properties, as the trigger binds them), completes
on return and redelivers on a raise, dead-lettering at MaxDeliveryCount into the queue's DLQ. The
Python settlement binding is a beta: the functions settle by returning or raising, nothing else.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.servicebus import ServiceBusMessage
from azure.servicebus import ServiceBusReceivedMessage

from shared import bootstrap
from shared.adapters import service_bus_messages as wire
from shared.adapters.service_bus import ServiceBusQueue
from shared.bootstrap import Services
from shared.domain.actions import ActionState
from shared.errors import PoisonMessage
from shared.intake.admission import INTAKE_QUEUE
from shared.ports import QueueMessage
from tests.action_kinds import PretendCache
from tests.conftest import ROOT
from tests.factories import FakeClock
from tests.functions.action_harness import AUTO, CACHE, TRIGGERS, alert, only_action, timeline
from tests.functions.harness import dry_run, function, json_body, post, registered
from tests.stubs.service_bus import Namespace

MAX_DELIVERY_COUNT = 3  # DR_QUEUE_MAX_DELIVERY_COUNT of the tests' app, and the queues' setting


class NoAdministration:
    """No counts are read here."""

    def get_queue_runtime_properties(self, queue_name: str, **kwargs: Any) -> Any:
        raise AssertionError("the triggers never read the counts")


def trigger_message(sent: ServiceBusReceivedMessage, delivery_count: int) -> func.ServiceBusMessage:
    """What the Service Bus trigger binds for a message the broker delivers."""
    properties = wire.properties(sent)
    return ServiceBusMessage(
        body=wire.body(sent),
        message_id=sent.message_id or "",
        session_id=sent.session_id,
        content_type=sent.content_type,
        delivery_count=delivery_count,
        sequence_number=sent.sequence_number,
        enqueued_time_utc=sent.enqueued_time_utc,
        scheduled_enqueue_time_utc=sent.scheduled_enqueue_time_utc,
        application_properties=properties,
        user_properties=properties,
    )


@dataclass
class Host:
    """The Functions host on a Service Bus namespace: complete on return, redeliver on a raise."""

    namespace: Namespace
    clock: FakeClock
    deliveries: Counter[tuple[str, int]] = field(default_factory=Counter)
    seen: list[tuple[str, func.ServiceBusMessage, BaseException | None]] = field(default_factory=list)

    def round(self, queue: str) -> int:
        """One delivery of every message due on the queue now, in order; how many there were."""
        entity = self.namespace.entity(queue)
        due = [
            m
            for m in self.namespace.stored(queue)
            if m.scheduled_enqueue_time_utc is None or m.scheduled_enqueue_time_utc <= self.clock()
        ]
        if queue == INTAKE_QUEUE:
            return self._fold(due)
        for sent in due:
            number = sent.sequence_number or 0
            self.deliveries[queue, number] += 1
            count = self.deliveries[queue, number]
            message = trigger_message(sent, count)
            try:
                function(TRIGGERS[queue])(message)
            except Exception as e:
                self.seen.append((queue, message, e))
                if count >= MAX_DELIVERY_COUNT:
                    del entity.messages[number]
                    self.namespace.dead_letter(
                        queue,
                        sent,
                        "MaxDeliveryCountExceeded",
                        f"Message could not be consumed after {count} delivery attempts.",
                        at=self.clock(),
                        delivery_count=count,
                    )
                continue
            self.seen.append((queue, message, None))
            del entity.messages[number]
        return len(due)

    def _fold(self, due: list[Any]) -> int:
        """The intake trigger takes a session's messages as one list (cardinality many)."""
        entity = self.namespace.entity(INTAKE_QUEUE)
        sessions: dict[str | None, list[Any]] = {}
        for sent in due:
            sessions.setdefault(sent.session_id, []).append(sent)
        for batch in sessions.values():
            messages = []
            for sent in batch:
                self.deliveries[INTAKE_QUEUE, sent.sequence_number or 0] += 1
                messages.append(
                    trigger_message(sent, self.deliveries[INTAKE_QUEUE, sent.sequence_number or 0])
                )
            function("fold_signals")(messages)  # a raise fails the test: intake has no poison here
            for sent in batch:
                del entity.messages[sent.sequence_number or 0]
        return len(due)

    def run(self, seconds: int = 120) -> None:
        """Rounds on every queue, a second apart, until nothing is left."""
        queues = (INTAKE_QUEUE, *TRIGGERS)
        for _ in range(seconds):
            for queue in queues:
                self.round(queue)
            if not any(self.namespace.stored(q) for q in queues):
                return
            self.clock.advance(seconds=1)


@pytest.fixture
def namespace() -> Namespace:
    return Namespace()


def on_service_bus(app: Services, namespace: Namespace) -> Services:
    """The same app with the Service Bus queue in place of the embedded one, installed."""
    queue = ServiceBusQueue(namespace, NoAdministration(), clock=app.clock)
    given = {k: app.__dict__[k] for k in ("registry", "pager", "chat") if k in app.__dict__}
    rebuilt = Services(app.settings, app.clock, queue=queue, **given)
    bootstrap.reset(rebuilt)
    return rebuilt


# --- the registrations --------------------------------------------------------------------------


def test_every_queue_trigger_is_a_session_enabled_service_bus_trigger() -> None:
    bindings = {f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()] for f in registered()}
    triggers = {name: b for name, (b, *_) in bindings.items() if b["type"] == "serviceBusTrigger"}
    assert set(triggers) == {
        "send_page",
        "send_notification",
        "run_action",
        "apply_pagerduty_event",
        "fold_signals",
        "work_chatops",
    }
    assert (
        triggers["work_chatops"]["queueName"] == "chatops" and triggers["work_chatops"]["isSessionsEnabled"]
    )
    assert triggers["fold_signals"] == {
        "direction": "IN",
        "type": "serviceBusTrigger",
        "name": "messages",
        "connection": "ServiceBusConnection",
        "queueName": "intake",
        "isSessionsEnabled": True,
        "cardinality": "MANY",  # the library writes the enum's name; the host reads it either way
    }
    for name, queue in TRIGGERS.items():
        assert triggers[queue] == {
            "direction": "IN",
            "type": "serviceBusTrigger",
            "name": "msg",
            "connection": "ServiceBusConnection",
            "queueName": name,
            "isSessionsEnabled": True,
        }, queue
        assert len(bindings[queue]) == 1, "no output bindings: the functions send through the adapter"


# --- success completes, a raise redelivers ------------------------------------------------------


def test_the_effects_of_an_alert_go_through_service_bus_and_complete(
    app: Services, namespace: Namespace, data_dir: Path, clock: FakeClock
) -> None:
    sb_app = on_service_bus(app, namespace)
    answer = post("alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
    assert json_body(answer)["accepted"] == 1 and len(namespace.stored(INTAKE_QUEUE)) == 1
    assert Host(namespace, clock).round(INTAKE_QUEUE) == 1  # folded: the incident and its effects
    (incident,) = sb_app.store.list_incidents(None, None, 10)
    incident_id = incident.id
    assert {q: len(namespace.stored(q)) for q in TRIGGERS} == {
        "actions": 1,
        "pages": 1,
        "notifications": 1,
        "pagerduty": 0,
    }
    host = Host(namespace, clock)
    # The page, then the card and the page's note on it (the action is the action tests' business).
    assert (host.round("pages"), host.round("notifications")) == (1, 2)
    assert [(q, m.delivery_count, e) for q, m, e in host.seen] == [
        ("pages", 1, None),
        ("notifications", 1, None),
        ("notifications", 1, None),
    ]
    assert namespace.stored("pages") == namespace.stored("notifications") == [], "completed"
    (page,) = [m for q, m, _ in host.seen if q == "pages"]
    assert (page.session_id, page.application_properties["incident_id"]) == (incident_id, incident_id)
    assert [r["operation"] for r in dry_run(data_dir, "pagerduty")] == ["trigger"]
    assert dry_run(data_dir, "slack")[0]["operation"] == "chat.postMessage"
    assert sb_app.queue.dead_letters("pages", 10) == []


def test_a_failing_message_raises_each_delivery_and_the_host_dead_letters_it(
    app: Services, namespace: Namespace, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sb_app = on_service_bus(app, namespace)
    sb_app.queue.send([QueueMessage("pages", b"{oops", "bad-1", "inc-x")])
    host = Host(namespace, clock)
    with caplog.at_level(logging.WARNING, logger="responders.effects"):
        for _ in range(MAX_DELIVERY_COUNT):
            assert host.round("pages") == 1
    assert [(m.delivery_count, type(e)) for _, m, e in host.seen] == [(n, PoisonMessage) for n in (1, 2, 3)]
    assert namespace.stored("pages") == []
    (dead,) = sb_app.queue.dead_letters("pages", 10)
    assert (dead.message_id, dead.session_id, dead.reason, dead.delivery_count, dead.body) == (
        "bad-1",
        "inc-x",
        "MaxDeliveryCountExceeded",
        3,
        b"{oops",
    )
    # The function read the delivery from the message the trigger bound: its ids and its count.
    logged = [r.getMessage() for r in caplog.records if r.name == "responders.effects"]
    assert [line.split(": PoisonMessage")[0] for line in logged] == [
        f"pages: message bad-1 (session inc-x) failed on delivery {n}" for n in (1, 2, 3)
    ]


# --- the action pipeline speaks before the host gives up ----------------------------------------


def test_an_action_fails_on_the_delivery_before_max_delivery_count_so_the_incident_hears_why(
    acting: Any, namespace: Namespace, world: PretendCache, clock: FakeClock
) -> None:
    sb_app = on_service_bus(acting(AUTO), namespace)
    world.fail("check", *[RuntimeError("socket closed in the middle of a read")] * 5)
    post("alerts", alert(CACHE))
    host = Host(namespace, clock)
    host.round(INTAKE_QUEUE)
    (incident,) = sb_app.store.list_incidents(None, None, 10)
    incident_id = incident.id
    host.run()
    record = only_action(sb_app, incident_id)
    assert record.state is ActionState.FAILED
    assert record.result == "gave up after 2 errors: RuntimeError: socket closed in the middle of a read"
    failing = [(m.delivery_count, type(e).__name__ if e else None) for q, m, e in host.seen if q == "actions"]
    # The check raised on its first delivery (the host redelivers) and gave up on its second (completed):
    # max_errors is MaxDeliveryCount - 1, so the host's own dead letter, which nobody hears of, never comes.
    assert failing[-2:] == [(1, "RuntimeError"), (2, None)]
    assert namespace.stored("actions/$DeadLetterQueue") == []
    (dead,) = sb_app.queue.dead_letters("actions", 10)
    assert dead.reason == "ActionFailed" and "socket closed" in dead.description
    assert dead.delivery_count == 0, "our own dead letter, in the deadletters queue"
    assert [wire.properties(m)["dl_queue"] for m in namespace.stored("deadletters")] == ["actions"]
    assert any("gave up after 2 errors" in t for t in timeline(sb_app, incident_id))
