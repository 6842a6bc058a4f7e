"""Our queue messages as azure-servicebus messages, and Service Bus's dead letters as ours: no I/O.

- `outgoing(message)`: a `ServiceBusMessage` with the body, `message_id` (duplicate detection),
  `session_id`, `content_type`, the application properties and, for a later delivery,
  `scheduled_enqueue_time_utc` in UTC. The limits are Service Bus's and the local queue's, checked
  before anything is sent, so a message the local queue takes is one Service Bus takes.
- `to_dead_letters(message, …)`: a Service Bus sender cannot write a DLQ, so a message its sender
  gives up on goes to a plain queue of ours (`deadletters`, no sessions) with properties naming
  where it was going and why it gave up.
- `from_dlq(queue, received)` / `from_dead_letters(received)`: either kind, read back as a
  `DeadLetter`. Received application properties come back with bytes keys and bytes string values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.ports import MAX_MESSAGE_BYTES, DeadLetter, QueueMessage

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage

DEAD_LETTERS_QUEUE = "deadletters"
MAX_ID_LENGTH = 128  # Service Bus: message and session ids
MAX_DESCRIPTION = 4096  # Service Bus keeps this much of a DeadLetterErrorDescription

# Our properties on a message in `deadletters`; stripped again when it is sent once more.
ORIGINAL_QUEUE = "dl_queue"
ORIGINAL_MESSAGE_ID = "dl_message_id"
ORIGINAL_SESSION_ID = "dl_session_id"
REASON = "dl_reason"
DESCRIPTION = "dl_description"
DEAD_LETTERED_AT = "dl_at"
OURS = (ORIGINAL_QUEUE, ORIGINAL_MESSAGE_ID, ORIGINAL_SESSION_ID, REASON, DESCRIPTION, DEAD_LETTERED_AT)
# What the broker adds to a message it moves to a DLQ.
BROKERS = ("DeadLetterReason", "DeadLetterErrorDescription")
REPLAY_OF = "replay_of"

# AMQP simple types a property value may have (the SDK's PrimitiveTypes less uuid, which we never send).
_PROPERTY_TYPES = (str, int, float, bool, bytes, datetime, type(None))


def check(message: QueueMessage) -> None:
    """ValueError for a message Service Bus would refuse, before anything is sent."""
    if not 0 < len(message.message_id) <= MAX_ID_LENGTH:
        raise ValueError(f"message_id must be 1 to {MAX_ID_LENGTH} characters, got {len(message.message_id)}")
    session = message.session_id
    if session is not None and not 0 < len(session) <= MAX_ID_LENGTH:
        raise ValueError(f"session_id must be 1 to {MAX_ID_LENGTH} characters, got {len(session)}")
    if len(message.body) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message body is {len(message.body)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    if message.scheduled_at is not None and message.scheduled_at.tzinfo is None:
        raise ValueError(f"scheduled_at of message {message.message_id} must be timezone-aware")
    for key, value in message.application_properties.items():
        if not isinstance(value, _PROPERTY_TYPES):
            raise ValueError(
                f"application property {key!r} is a {type(value).__name__}, not an AMQP simple type"
            )


def outgoing(message: QueueMessage) -> ServiceBusMessage:
    """The Service Bus message that carries ours."""
    from azure.servicebus import ServiceBusMessage

    check(message)
    scheduled = message.scheduled_at.astimezone(UTC) if message.scheduled_at is not None else None
    return ServiceBusMessage(
        bytes(message.body),
        message_id=message.message_id,
        session_id=message.session_id,
        content_type=message.content_type,
        application_properties=_properties(message.application_properties),
        scheduled_enqueue_time_utc=scheduled,
    )


def to_dead_letters(message: QueueMessage, reason: str, description: str, at: datetime) -> ServiceBusMessage:
    """The message for our `deadletters` queue: the original, with where it was going and why it stopped."""
    from azure.servicebus import ServiceBusMessage

    check(message)
    properties: dict[str, Any] = {
        **message.application_properties,
        ORIGINAL_QUEUE: message.queue,
        ORIGINAL_MESSAGE_ID: message.message_id,
        ORIGINAL_SESSION_ID: message.session_id,
        REASON: reason,
        DESCRIPTION: description[:MAX_DESCRIPTION],
        DEAD_LETTERED_AT: at.astimezone(UTC).isoformat(),
    }
    # No session: `deadletters` is a plain queue that only people (and /dr status) read.
    return ServiceBusMessage(
        bytes(message.body),
        message_id=message.message_id,
        content_type=message.content_type,
        application_properties=_properties(properties),
    )


def properties(received: ServiceBusReceivedMessage) -> dict[str, Any]:
    """A received message's application properties with str keys, and str values where text was sent."""
    return {
        _text(k): _text(v) if isinstance(v, bytes) else v
        for k, v in (received.application_properties or {}).items()
    }


def body(received: ServiceBusReceivedMessage) -> bytes:
    """The data body: the SDK gives a generator of its sections."""
    data = received.body
    return data if isinstance(data, bytes) else b"".join(data)


def from_dlq(queue: str, received: ServiceBusReceivedMessage) -> DeadLetter:
    """A message in a queue's own DLQ, as a person reads it.

    Service Bus records no time of dead-lettering: the message's enqueued time is the nearest it
    offers (and it orders messages the way they arrived).
    """
    enqueued = received.enqueued_time_utc
    return DeadLetter(
        queue=queue,
        message_id=received.message_id or "",
        session_id=received.session_id,
        body=body(received),
        reason=received.dead_letter_reason or "",
        description=received.dead_letter_error_description or "",
        delivery_count=received.delivery_count or 0,
        dead_lettered_at=enqueued.astimezone(UTC).isoformat() if enqueued else "",
    )


def from_dead_letters(received: ServiceBusReceivedMessage) -> DeadLetter | None:
    """A message of our `deadletters` queue, None if it lacks our properties (not put there by us)."""
    found = properties(received)
    if not isinstance(found.get(ORIGINAL_QUEUE), str) or not isinstance(found.get(ORIGINAL_MESSAGE_ID), str):
        return None
    session = found.get(ORIGINAL_SESSION_ID)
    return DeadLetter(
        queue=found[ORIGINAL_QUEUE],
        message_id=found[ORIGINAL_MESSAGE_ID],
        session_id=session if isinstance(session, str) else None,
        body=body(received),
        reason=str(found.get(REASON) or ""),
        description=str(found.get(DESCRIPTION) or ""),
        delivery_count=0,  # its sender gave up before any delivery
        dead_lettered_at=str(found.get(DEAD_LETTERED_AT) or ""),
    )


def replay(queue: str, received: ServiceBusReceivedMessage, new_message_id: str) -> QueueMessage:
    """A copy of a dead letter (either kind) to send again under a new id, saying what it replays."""
    found = properties(received)
    ours = from_dead_letters(received)
    original_id = ours.message_id if ours else (received.message_id or "")
    session = ours.session_id if ours else received.session_id
    kept: Mapping[str, Any] = {k: v for k, v in found.items() if k not in OURS and k not in BROKERS}
    return QueueMessage(
        queue=queue,
        body=body(received),
        message_id=new_message_id,
        session_id=session,
        application_properties={**kept, REPLAY_OF: original_id},
        content_type=received.content_type or "application/json",
    )


def _properties(given: Mapping[str, Any]) -> Any:
    # check() held the values to AMQP simple types; the SDK's annotation leaves out None and datetime.
    return dict(given) or None


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
