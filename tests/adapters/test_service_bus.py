"""The Service Bus queue at the SDK boundary: the exact ServiceBusMessages it builds, its dead letters
from real ServiceBusReceivedMessages, counts from the real administration client, and errors as ours."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus import exceptions as sb
from azure.servicebus.management import ServiceBusAdministrationClient

from shared.actions.pipeline import _step_message
from shared.adapters.service_bus import ADMIN_OPTIONS, ServiceBusQueue, service_bus_errors, service_bus_queue
from shared.domain.actions import ActionStep, session_of
from shared.domain.effects import Effect, EffectKind
from shared.errors import ConfigurationError, LockLost, Rejected, Transient
from shared.outbox import effect_message
from shared.paging.webhook import WebhookEvent, to_message
from shared.ports import DeadLetter, QueueCounts, QueueMessage
from tests.factories import FakeClock
from tests.stubs.arm import StubCredential
from tests.stubs.service_bus import NOW, Namespace, RecordedBatch, received
from tests.stubs.service_bus_admin import MessageCounts, ServiceBusAdminStub

COSMOS = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-amicis-ikea-dev"
    "/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-amicis-ikea-dev"
)
AT = "2026-11-25T10:00:00.000Z"


@pytest.fixture
def namespace() -> Namespace:
    return Namespace()


@pytest.fixture
def admin() -> Iterator[ServiceBusAdminStub]:
    with ServiceBusAdminStub() as stub:
        yield stub


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def queue(namespace: Namespace, admin: ServiceBusAdminStub, clock: FakeClock) -> ServiceBusQueue:
    client = ServiceBusAdministrationClient(
        admin.namespace, StubCredential(), connection_verify=admin.ca_file, **ADMIN_OPTIONS
    )
    return ServiceBusQueue(namespace, client, clock=clock)


def _only(namespace: Namespace, queue: str) -> ServiceBusMessage:
    """The one message sent to a queue (alone or in a batch)."""
    sent = [
        m for s in namespace.senders[queue].sent for m in (s.added if isinstance(s, RecordedBatch) else [s])
    ]
    (message,) = sent
    return message


def _fields(m: ServiceBusMessage) -> dict[str, Any]:
    return {
        "message_id": m.message_id,
        "session_id": m.session_id,
        "scheduled_enqueue_time_utc": m.scheduled_enqueue_time_utc,
        "application_properties": m.application_properties,
        "content_type": m.content_type,
        "body": b"".join(m.body),
    }


def _effect(kind: EffectKind, event: str, **more: Any) -> Effect:
    return Effect(kind=kind, incident_id="inc-20261125-0001", event=event, severity="sev1", at=AT, **more)


# --- what is sent, field by field --------------------------------------------------------------------


def test_a_page_is_one_message_on_pages_in_the_incident_session(
    queue: ServiceBusQueue, namespace: Namespace
) -> None:
    effect = _effect(EffectKind.PAGE, "trigger")
    queue.send([effect_message(effect)])
    assert _fields(_only(namespace, "pages")) == {
        "message_id": effect.message_id,
        "session_id": "inc-20261125-0001",
        "scheduled_enqueue_time_utc": None,
        "application_properties": {"kind": "page", "incident_id": "inc-20261125-0001", "attempt": 0},
        "content_type": "application/json",
        "body": json.dumps(effect.to_dict(), separators=(",", ":")).encode(),
    }


def test_a_notification_retry_is_scheduled_in_utc(queue: ServiceBusQueue, namespace: Namespace) -> None:
    effect = _effect(EffectKind.NOTIFY, "opened").retry()
    due = datetime(2026, 11, 25, 12, 0, 30, tzinfo=ZoneInfo("Europe/Oslo"))  # 11:00:30 UTC
    queue.send([effect_message(effect, due)])
    sent = _only(namespace, "notifications")
    assert _fields(sent) == {
        "message_id": effect.message_id,
        "session_id": "inc-20261125-0001",
        "scheduled_enqueue_time_utc": datetime(2026, 11, 25, 11, 0, 30, tzinfo=UTC),
        "application_properties": {"kind": "notify", "incident_id": "inc-20261125-0001", "attempt": 1},
        "content_type": "application/json",
        "body": json.dumps(effect.to_dict(), separators=(",", ":")).encode(),
    }
    assert sent.scheduled_enqueue_time_utc is not None
    assert sent.scheduled_enqueue_time_utc.utcoffset() == timedelta(0)


def test_an_act_message_is_in_the_resource_session(queue: ServiceBusQueue, namespace: Namespace) -> None:
    effect = _effect(
        EffectKind.ACT, "cosmosdb.failover", target=COSMOS, mode="approve", rule="cosmosdb-unavailable"
    )
    queue.send([effect_message(effect)])
    assert _fields(_only(namespace, "actions")) == {
        "message_id": effect.message_id,
        "session_id": session_of(COSMOS),
        "scheduled_enqueue_time_utc": None,
        "application_properties": {"kind": "act", "incident_id": "inc-20261125-0001", "attempt": 0},
        "content_type": "application/json",
        "body": json.dumps(effect.to_dict(), separators=(",", ":")).encode(),
    }


def test_an_action_check_is_scheduled_for_later(queue: ServiceBusQueue, namespace: Namespace) -> None:
    step = ActionStep("act-1234", "check", COSMOS, seq=3)
    due = NOW + timedelta(seconds=15)
    queue.send([_step_message(step, due)])
    assert _fields(_only(namespace, "actions")) == {
        "message_id": step.message_id,
        "session_id": session_of(COSMOS),
        "scheduled_enqueue_time_utc": due,
        "application_properties": {"kind": "act", "action_id": "act-1234", "step": "check"},
        "content_type": "application/json",
        "body": json.dumps(step.to_dict(), separators=(",", ":")).encode(),
    }


def test_a_pagerduty_delivery_goes_as_it_came(queue: ServiceBusQueue, namespace: Namespace) -> None:
    body = b'{"event":{"id":"01DEN8YQ4A3MAFTT5U6QWTN9XZ","event_type":"incident.acknowledged"}}'
    event = WebhookEvent(
        "01DEN8YQ4A3MAFTT5U6QWTN9XZ", "incident.acknowledged", AT, {"data": {"id": "Q2NQJ6ZD9R0V5H"}}
    )
    queue.send([to_message(event, "X-Webhook-Id-1", body)])
    assert _fields(_only(namespace, "pagerduty")) == {
        "message_id": "X-Webhook-Id-1",
        "session_id": "Q2NQJ6ZD9R0V5H",
        "scheduled_enqueue_time_utc": None,
        "application_properties": {"event_type": "incident.acknowledged"},
        "content_type": "application/json",
        "body": body,
    }


# --- batching and senders ---------------------------------------------------------------------------


def test_one_send_is_one_batch_per_queue_and_session_in_order(
    queue: ServiceBusQueue, namespace: Namespace
) -> None:
    first = [QueueMessage("pages", b"{}", f"p{i}", "inc-1") for i in range(3)]
    other = [QueueMessage("pages", b"{}", "q0", "inc-2")]
    notify = [QueueMessage("notifications", b"{}", "n0", "inc-1")]
    queue.send([first[0], other[0], first[1], notify[0], first[2]])
    batch, single = namespace.senders["pages"].sent
    assert isinstance(batch, RecordedBatch) and [m.message_id for m in batch.added] == ["p0", "p1", "p2"]
    assert isinstance(single, ServiceBusMessage) and single.message_id == "q0"
    assert [m.message_id for m in namespace.senders["notifications"].sent] == ["n0"]  # type: ignore[union-attr]


def test_a_batch_full_to_the_link_size_is_sent_and_another_begun(
    namespace: Namespace, queue: ServiceBusQueue
) -> None:
    namespace.max_batch_bytes = 2_000
    queue.send([QueueMessage("pages", b"x" * 700, f"p{i}", "inc-1") for i in range(5)])
    sent = namespace.senders["pages"].sent
    assert all(isinstance(b, RecordedBatch) for b in sent) and len(sent) == 3
    assert [m.message_id for b in sent for m in b.added] == ["p0", "p1", "p2", "p3", "p4"]  # type: ignore[union-attr]
    assert all(b.size_in_bytes <= 2_000 for b in sent)  # type: ignore[union-attr]


def test_each_queue_gets_one_sender_for_the_process(queue: ServiceBusQueue, namespace: Namespace) -> None:
    for i in range(4):
        queue.send([QueueMessage("pages", b"{}", f"p{i}", "s"), QueueMessage("actions", b"{}", f"a{i}", "s")])
    assert sorted(namespace.sender_requests) == ["actions", "pages"]
    queue.close()
    assert all(s.closed for s in namespace.senders.values())


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (QueueMessage("pages", b"{}", "x" * 129), "message_id must be 1 to 128"),
        (QueueMessage("pages", b"{}", ""), "message_id must be 1 to 128"),
        (QueueMessage("pages", b"{}", "m", "s" * 129), "session_id must be 1 to 128"),
        (QueueMessage("pages", b"x" * (256 * 1024 + 1), "m"), "the limit is 262144"),
        (QueueMessage("pages", b"{}", "m", scheduled_at=datetime(2026, 11, 25, 10)), "timezone-aware"),
        (QueueMessage("pages", b"{}", "m", application_properties={"nested": {"a": 1}}), "AMQP simple type"),
    ],
)
def test_a_message_service_bus_would_refuse_fails_before_anything_is_sent(
    queue: ServiceBusQueue, namespace: Namespace, message: QueueMessage, problem: str
) -> None:
    good = QueueMessage("pages", b"{}", "fine")
    with pytest.raises(ValueError, match=problem):
        queue.send([good, message])
    assert namespace.senders == {}, "the good one is not sent either: the caller retries the whole send"


# --- dead letters -----------------------------------------------------------------------------------


def test_a_message_given_up_on_goes_to_our_deadletters_queue(
    queue: ServiceBusQueue, namespace: Namespace
) -> None:
    effect = _effect(EffectKind.PAGE, "trigger")
    queue.dead_letter_message(effect_message(effect), "Rejected", "PagerDuty said 400: invalid routing key")
    assert _fields(_only(namespace, "deadletters")) == {
        "message_id": effect.message_id,
        "session_id": None,  # a plain queue
        "scheduled_enqueue_time_utc": None,
        "application_properties": {
            "kind": "page",
            "incident_id": "inc-20261125-0001",
            "attempt": 0,
            "dl_queue": "pages",
            "dl_message_id": effect.message_id,
            "dl_session_id": "inc-20261125-0001",
            "dl_reason": "Rejected",
            "dl_description": "PagerDuty said 400: invalid routing key",
            "dl_at": "2026-11-25T10:00:00+00:00",
        },
        "content_type": "application/json",
        "body": json.dumps(effect.to_dict(), separators=(",", ":")).encode(),
    }
    (dead,) = queue.dead_letters("pages")
    assert dead == DeadLetter(
        queue="pages",
        message_id=effect.message_id,
        session_id="inc-20261125-0001",
        body=json.dumps(effect.to_dict(), separators=(",", ":")).encode(),
        reason="Rejected",
        description="PagerDuty said 400: invalid routing key",
        delivery_count=0,
        dead_lettered_at="2026-11-25T10:00:00+00:00",
    )


def _sent(queue: str, message_id: str, session: str | None = "inc-1", **props: Any) -> ServiceBusMessage:
    return ServiceBusMessage(
        b'{"kind":"page"}',
        message_id=message_id,
        session_id=session,
        content_type="application/json",
        application_properties=cast(Any, {"kind": "page", **props}),
    )


def test_dead_letters_come_from_the_dlq_and_ours_newest_first(
    queue: ServiceBusQueue, namespace: Namespace, clock: FakeClock
) -> None:
    namespace.dead_letter(
        "pages",
        _sent("pages", "old"),
        "MaxDeliveryCountExceeded",
        "delivered 10 times",
        at=NOW - timedelta(hours=1),
    )
    namespace.dead_letter("actions", _sent("actions", "act"), "MaxDeliveryCountExceeded", "", at=NOW)
    clock.now = NOW + timedelta(minutes=5)
    queue.dead_letter_message(QueueMessage("pages", b"{}", "ours", "inc-2"), "PoisonMessage", "not JSON")
    newest = queue.recent_dead_letters(["pages", "actions"], 10)
    assert [(d.queue, d.message_id, d.reason, d.delivery_count) for d in newest] == [
        ("pages", "ours", "PoisonMessage", 0),
        ("actions", "act", "MaxDeliveryCountExceeded", 10),
        ("pages", "old", "MaxDeliveryCountExceeded", 10),
    ]
    old = newest[-1]
    assert (old.session_id, old.body, old.description, old.dead_lettered_at) == (
        "inc-1",
        b'{"kind":"page"}',
        "delivered 10 times",
        "2026-11-25T09:00:00+00:00",
    )
    assert [d.message_id for d in queue.recent_dead_letters(["pages"], 1)] == ["ours"]
    assert [d.message_id for d in queue.dead_letters("actions")] == ["act"]


def test_the_dlq_is_peeked_without_a_session_and_from_the_first_sequence_number(
    queue: ServiceBusQueue, namespace: Namespace
) -> None:
    for i in range(300):
        namespace.dead_letter("pages", _sent("pages", f"m{i}"), "MaxDeliveryCountExceeded", "")
    assert len(queue.dead_letters("pages", 1000)) == 300
    assert len(queue.dead_letters("pages", 1000)) == 300, "a second read starts from the beginning again"
    dlq_peeks = [p for p in namespace.peeks if p[0] == "pages/$DeadLetterQueue"]
    assert dlq_peeks[:3] == [("pages/$DeadLetterQueue", 1, 250), ("pages/$DeadLetterQueue", 251, 250),
                             ("pages/$DeadLetterQueue", 301, 250)]  # fmt: skip


def test_find_dead_letters_looks_in_every_queue(queue: ServiceBusQueue, namespace: Namespace) -> None:
    namespace.dead_letter("pages", _sent("pages", "same"), "MaxDeliveryCountExceeded", "")
    namespace.dead_letter("pagerduty", _sent("pagerduty", "same"), "MaxDeliveryCountExceeded", "")
    queue.dead_letter_message(QueueMessage("notifications", b"{}", "same"), "PoisonMessage", "bad")
    namespace.dead_letter("pages", _sent("pages", "other"), "MaxDeliveryCountExceeded", "")
    found = queue.find_dead_letters("same")
    assert sorted(d.queue for d in found) == ["notifications", "pagerduty", "pages"]
    assert queue.find_dead_letters("nothing") == []


def test_a_message_in_deadletters_without_our_properties_is_not_taken_for_ours(
    queue: ServiceBusQueue, namespace: Namespace
) -> None:
    namespace.enqueue("deadletters", ServiceBusMessage(b"{}", message_id="stray"))
    assert queue.recent_dead_letters(["pages"], 10) == []


# --- replay -----------------------------------------------------------------------------------------


def test_a_dlq_dead_letter_is_sent_once_again_under_the_new_id(
    queue: ServiceBusQueue, namespace: Namespace
) -> None:
    namespace.dead_letter("pages", _sent("pages", "before"), "MaxDeliveryCountExceeded", "")
    namespace.dead_letter("pages", _sent("pages", "dead", attempt=2), "MaxDeliveryCountExceeded", "gave up")
    namespace.dead_letter("pages", _sent("pages", "after"), "MaxDeliveryCountExceeded", "")
    assert queue.resend_dead_letter("pages", "dead", "dead.replay.1")
    assert _fields(_only(namespace, "pages")) == {
        "message_id": "dead.replay.1",
        "session_id": "inc-1",
        "scheduled_enqueue_time_utc": None,
        "application_properties": {"kind": "page", "attempt": 2, "replay_of": "dead"},
        "content_type": "application/json",
        "body": b'{"kind":"page"}',
    }
    assert [m.message_id for m in namespace.stored("pages/$DeadLetterQueue")] == ["before", "after"]
    (receiver,) = [r for r in namespace.receivers if r.completed]
    assert [m.message_id for m in receiver.abandoned] == ["before"], "passed on the way, and let go"
    assert not namespace.entity("pages/$DeadLetterQueue").locked
    assert not queue.resend_dead_letter("pages", "dead", "dead.replay.2"), "a second replay finds nothing"


def test_one_of_ours_is_sent_again_to_its_queue_in_its_session(
    queue: ServiceBusQueue, namespace: Namespace
) -> None:
    queue.dead_letter_message(
        QueueMessage("actions", b'{"step":"run"}', "a1", "resource-x", None, {"kind": "act"}),
        "Rejected",
        "no",
    )
    assert queue.resend_dead_letter("actions", "a1", "a1.replay.1")
    assert _fields(_only(namespace, "actions")) == {
        "message_id": "a1.replay.1",
        "session_id": "resource-x",
        "scheduled_enqueue_time_utc": None,
        "application_properties": {"kind": "act", "replay_of": "a1"},
        "content_type": "application/json",
        "body": b'{"step":"run"}',
    }
    assert namespace.stored("deadletters") == []


def test_nothing_to_replay_sends_nothing(queue: ServiceBusQueue, namespace: Namespace) -> None:
    queue.dead_letter_message(QueueMessage("pages", b"{}", "a1"), "Rejected", "no")
    assert not queue.resend_dead_letter("actions", "a1", "new")  # the id, but of another queue
    assert "actions" not in namespace.senders


def test_a_failed_copy_lets_the_dead_letter_go_for_the_next_try(
    queue: ServiceBusQueue, namespace: Namespace
) -> None:
    namespace.dead_letter("pages", _sent("pages", "dead"), "MaxDeliveryCountExceeded", "")
    queue._peek("pages", dlq=True)  # the peeks succeed; the send fails
    namespace.failures = []
    original = namespace.get_queue_sender("pages").send_messages

    def failing(message: Any, *, timeout: float | None = None) -> None:
        raise sb.ServiceBusServerBusyError(message="busy")

    namespace.get_queue_sender("pages").send_messages = failing  # type: ignore[method-assign]
    with pytest.raises(Transient):
        queue.resend_dead_letter("pages", "dead", "new")
    assert [m.message_id for m in namespace.stored("pages/$DeadLetterQueue")] == ["dead"]
    assert not namespace.entity("pages/$DeadLetterQueue").locked, "abandoned, not left locked"
    namespace.get_queue_sender("pages").send_messages = original  # type: ignore[method-assign]
    assert queue.resend_dead_letter("pages", "dead", "new")


# --- counts, from the real administration client ------------------------------------------------


def test_counts_come_from_the_runtime_properties(
    queue: ServiceBusQueue, admin: ServiceBusAdminStub, namespace: Namespace
) -> None:
    admin.queues["pages"] = MessageCounts(active=3, scheduled=4, dead_lettered=2)
    admin.queues["actions"] = MessageCounts()
    queue.dead_letter_message(QueueMessage("pages", b"{}", "ours"), "PoisonMessage", "bad")
    assert queue.counts(["pages", "actions"]) == [
        QueueCounts("pages", ready=3, scheduled=4, in_flight=0, dead_lettered=3),
        QueueCounts("actions", ready=0, scheduled=0, in_flight=0, dead_lettered=0),
    ]
    asked = [(r.path, r.query.get("enrich")) for r in admin.requests]
    assert asked == [("/pages", ["false"]), ("/actions", ["false"])]
    assert all((r.header("Authorization") or "").startswith("Bearer stub-token") for r in admin.requests)


def test_counts_of_a_queue_that_does_not_exist_say_so(queue: ServiceBusQueue) -> None:
    with pytest.raises(ConfigurationError, match="counts of intake: no such queue"):
        queue.counts(["intake"])


def test_counts_when_the_namespace_is_busy_are_transient(
    queue: ServiceBusQueue, admin: ServiceBusAdminStub
) -> None:
    admin.queues["pages"] = MessageCounts()
    admin.fail_next("*", times=10, status=503, body="<Error><Code>503</Code><Detail>busy</Detail></Error>")
    with pytest.raises(Transient, match="answered 503"):
        queue.counts(["pages"])


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "ours"),
    [
        (sb.ServiceBusConnectionError(message="reset"), Transient),
        (sb.ServiceBusServerBusyError(message="busy"), Transient),
        (sb.OperationTimeoutError(message="timed out"), Transient),
        (sb.ServiceBusCommunicationError(message="dns"), Transient),
        (sb.ServiceBusQuotaExceededError(message="full"), Transient),
        (sb.MessagingEntityDisabledError(message="disabled"), Transient),
        (sb.ServiceBusAuthenticationError(message="bad token"), Rejected),
        (sb.ServiceBusAuthorizationError(message="no role"), Rejected),
        (sb.MessageSizeExceededError(message="too big"), Rejected),
        (sb.MessagingEntityNotFoundError(message="no queue"), ConfigurationError),
        (sb.MessageLockLostError(message="lock"), LockLost),
        (sb.SessionLockLostError(message="session lock"), LockLost),
        (sb.ServiceBusError("something else"), Rejected),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.__name__,
)
def test_sdk_errors_become_ours_from_the_original(
    queue: ServiceBusQueue, namespace: Namespace, error: Exception, ours: type[Exception]
) -> None:
    namespace.failures = [error]
    with pytest.raises(ours) as raised:
        queue.send([QueueMessage("pages", b"{}", "m")])
    assert raised.value.__cause__ is error
    assert "sending to pages" in str(raised.value)


def test_a_failed_send_keeps_the_sender_for_the_retry(queue: ServiceBusQueue, namespace: Namespace) -> None:
    namespace.failures = [sb.ServiceBusConnectionError(message="reset")]
    with pytest.raises(Transient):
        queue.send([QueueMessage("pages", b"{}", "m")])
    queue.send([QueueMessage("pages", b"{}", "m")])
    assert namespace.sender_requests == ["pages"]
    assert _only(namespace, "pages").message_id == "m"


def test_an_unreachable_admin_endpoint_is_transient() -> None:
    from azure.core.exceptions import ServiceRequestError

    with pytest.raises(Transient, match="unreachable"), service_bus_errors("reading the counts of pages"):
        raise ServiceRequestError("connection refused")


# --- construction -----------------------------------------------------------------------------------


def test_a_namespace_is_reached_with_the_identity_from_the_factory() -> None:
    made: list[StubCredential] = []

    def factory() -> StubCredential:
        made.append(StubCredential())
        return made[-1]

    built = service_bus_queue("sb-dr.servicebus.windows.net", "Endpoint=sb://other/;SharedAccessKeyName=k;"
                              "SharedAccessKey=secret", factory)  # fmt: skip
    client, admin = cast(Any, built._client), cast(Any, built._admin)
    assert (type(client).__name__, client.fully_qualified_namespace) == (
        "ServiceBusClient",
        "sb-dr.servicebus.windows.net",
    )
    assert admin.fully_qualified_namespace == "sb-dr.servicebus.windows.net"
    assert len(made) == 1, "one credential, shared by the client and the admin client"
    assert built.queues == ("intake", "pages", "notifications", "actions", "pagerduty", "chatops")


def test_a_connection_string_is_the_other_way() -> None:
    built = service_bus_queue(
        None,
        "Endpoint=sb://sb-dr.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0",
        _never,
    )
    assert cast(Any, built._client).fully_qualified_namespace == "sb-dr.servicebus.windows.net"


def test_a_bad_connection_string_is_named_but_never_shown() -> None:
    with pytest.raises(ConfigurationError) as raised:
        service_bus_queue(None, "SharedAccessKey=hunter2;nonsense", _never)
    assert "ServiceBusConnection" in str(raised.value) and "hunter2" not in str(raised.value)
    assert raised.value.__cause__ is None


def test_neither_setting_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ServiceBusConnection__fullyQualifiedNamespace"):
        service_bus_queue(None, None, _never)


def _never() -> Any:
    raise AssertionError("no credential is needed for a connection string")


def test_received_messages_are_the_sdks_own() -> None:
    """The stub's received messages are what from_bytes makes of the broker's AMQP payload."""
    from azure.servicebus import ServiceBusReceivedMessage

    got = received(_sent("pages", "m1"), sequence_number=7, delivery_count=3)
    assert isinstance(got, ServiceBusReceivedMessage)
    assert (
        got.message_id,
        got.session_id,
        got.sequence_number,
        got.delivery_count,
        got.enqueued_time_utc,
    ) == (
        "m1",
        "inc-1",
        7,
        3,
        NOW,
    )
    assert got.application_properties == {b"kind": b"page"}, "received keys and text come back as bytes"
    assert ServiceBusSubQueue.DEAD_LETTER.value == "deadletter"
