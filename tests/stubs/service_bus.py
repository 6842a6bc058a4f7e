"""A Service Bus namespace in memory, shaped like `ServiceBusClient` at the seam the adapter takes.

No AMQP broker runs locally, so the adapter is handed this instead of a `ServiceBusClient`: it
records the real `ServiceBusMessage` and `ServiceBusMessageBatch` objects it is given, and hands
back real `ServiceBusReceivedMessage`s, built the way the SDK builds them from a peek or receive:
the AMQP payload bytes (with the broker's annotations: sequence number, enqueued time; the header's
delivery count; DeadLetterReason in a DLQ) decoded by `ServiceBusReceivedMessage.from_bytes`.

What it does as Service Bus does: a DLQ is its own entity with its own sequence numbers, reached
with `sub_queue=DEAD_LETTER` and never with a session; `session_id` with `sub_queue` is a
ValueError (as the SDK raises); peek does not lock, and without `sequence_number` goes on from
the receiver's last peek; a receive locks, so a second receiver does not get the message.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch, ServiceBusReceivedMessage

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def received(
    message: ServiceBusMessage,
    *,
    sequence_number: int,
    enqueued_at: datetime = NOW,
    delivery_count: int = 0,
    broker_properties: dict[str, Any] | None = None,
) -> ServiceBusReceivedMessage:
    """The message as a receiver gets it: encoded as the broker sends it, decoded by the SDK."""
    from azure.servicebus._pyamqp._encode import encode_payload
    from azure.servicebus._pyamqp.message import Header
    from azure.servicebus._pyamqp.types import TYPE, VALUE, AMQPTypes
    from azure.servicebus._transport._pyamqp_transport import PyamqpTransport

    amqp = PyamqpTransport.to_outgoing_amqp_message(message.raw_amqp_message)
    annotations: dict[Any, Any] = {
        **(amqp.message_annotations or {}),
        b"x-opt-sequence-number": {TYPE: AMQPTypes.long, VALUE: sequence_number},
        b"x-opt-enqueued-time": enqueued_at,
    }
    properties: dict[Any, Any] = {**(amqp.application_properties or {}), **(broker_properties or {})}
    amqp = amqp._replace(
        header=Header(delivery_count=delivery_count),
        message_annotations=annotations,
        application_properties=properties,
    )
    return ServiceBusReceivedMessage.from_bytes(bytes(encode_payload(bytearray(), amqp)))


class RecordedBatch(ServiceBusMessageBatch):
    """The SDK's batch (its size accounting included), remembering what was added."""

    def __init__(self, max_size_in_bytes: int) -> None:
        super().__init__(max_size_in_bytes)
        self.added: list[ServiceBusMessage] = []

    def add_message(self, message: Any) -> None:
        super().add_message(message)
        self.added.append(message)


@dataclass
class Entity:
    """A queue or a DLQ: messages by sequence number, some locked."""

    messages: dict[int, ServiceBusReceivedMessage] = field(default_factory=dict)
    locked: set[int] = field(default_factory=set)
    sequence: Any = field(default_factory=lambda: itertools.count(1))


class Sender:
    """`ServiceBusSender`: records each send (a message or a batch) unless told to fail first."""

    def __init__(self, namespace: Namespace, queue: str) -> None:
        self.namespace = namespace
        self.queue = queue
        self.sent: list[ServiceBusMessage | RecordedBatch] = []
        self.timeouts: list[float | None] = []  # each send's total time-out, as the SDK was given it
        self.closed = False

    def create_message_batch(self, max_size_in_bytes: int | None = None) -> RecordedBatch:
        return RecordedBatch(max_size_in_bytes or self.namespace.max_batch_bytes)

    def send_messages(self, message: Any, *, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)
        if self.namespace.failures:
            raise self.namespace.failures.pop(0)
        self.sent.append(message)
        for one in message.added if isinstance(message, RecordedBatch) else [message]:
            self.namespace.enqueue(self.queue, one)

    def close(self) -> None:
        self.closed = True


class Receiver:
    """`ServiceBusReceiver` on a queue or its DLQ."""

    def __init__(self, namespace: Namespace, entity: str) -> None:
        self.namespace = namespace
        self.entity = entity
        self._last_peeked = 0
        self.completed: list[ServiceBusReceivedMessage] = []
        self.abandoned: list[ServiceBusReceivedMessage] = []
        self.closed = False

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def peek_messages(self, max_message_count: int = 1, *, sequence_number: int = 0) -> list[Any]:
        if self.namespace.failures:
            raise self.namespace.failures.pop(0)
        start = sequence_number or self._last_peeked + 1
        found = self.namespace.entity(self.entity).messages
        page = [found[n] for n in sorted(found) if n >= start][:max_message_count]
        if page:
            self._last_peeked = page[-1].sequence_number or 0
        self.namespace.peeks.append((self.entity, start, max_message_count))
        return page

    def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[Any]:
        entity = self.namespace.entity(self.entity)
        with self.namespace.lock:
            free = [n for n in sorted(entity.messages) if n not in entity.locked][: max_message_count or 1]
            entity.locked.update(free)
        return [entity.messages[n] for n in free]

    def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        entity = self.namespace.entity(self.entity)
        with self.namespace.lock:
            entity.locked.discard(message.sequence_number or 0)
            del entity.messages[message.sequence_number or 0]
        self.completed.append(message)

    def abandon_message(self, message: ServiceBusReceivedMessage) -> None:
        with self.namespace.lock:
            self.namespace.entity(self.entity).locked.discard(message.sequence_number or 0)
        self.abandoned.append(message)

    def close(self) -> None:
        self.closed = True


class Namespace:
    """The client seam: `get_queue_sender`, `get_queue_receiver`; queues made on first use."""

    def __init__(self, max_batch_bytes: int = 256 * 1024) -> None:
        self.max_batch_bytes = max_batch_bytes
        self.lock = threading.RLock()
        self.entities: dict[str, Entity] = {}
        self.senders: dict[str, Sender] = {}
        self.sender_requests: list[str] = []
        self.receivers: list[Receiver] = []
        self.peeks: list[tuple[str, int, int]] = []
        self.failures: list[Exception] = []  # raised by the next sends and peeks, in order

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> Sender:
        self.sender_requests.append(queue_name)
        return self.senders.setdefault(queue_name, Sender(self, queue_name))

    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> Receiver:
        sub_queue = kwargs.get("sub_queue")
        if sub_queue and kwargs.get("session_id"):
            raise ValueError("session_id and sub_queue can not be specified simultaneously.")
        entity = f"{queue_name}/$DeadLetterQueue" if sub_queue else queue_name
        receiver = Receiver(self, entity)
        self.receivers.append(receiver)
        return receiver

    def entity(self, name: str) -> Entity:
        with self.lock:
            return self.entities.setdefault(name, Entity())

    def enqueue(
        self, queue: str, message: ServiceBusMessage, at: datetime = NOW
    ) -> ServiceBusReceivedMessage:
        """A sent message as the broker stores it."""
        entity = self.entity(queue)
        with self.lock:
            number = next(entity.sequence)
            entity.messages[number] = received(message, sequence_number=number, enqueued_at=at)
            return entity.messages[number]

    def dead_letter(
        self,
        queue: str,
        message: ServiceBusMessage,
        reason: str,
        description: str,
        *,
        at: datetime = NOW,
        delivery_count: int = 10,
    ) -> ServiceBusReceivedMessage:
        """A message the host gave up on, in the queue's DLQ with the broker's properties."""
        entity = self.entity(f"{queue}/$DeadLetterQueue")
        with self.lock:
            number = next(entity.sequence)
            entity.messages[number] = received(
                message,
                sequence_number=number,
                enqueued_at=at,
                delivery_count=delivery_count,
                broker_properties={"DeadLetterReason": reason, "DeadLetterErrorDescription": description},
            )
            return entity.messages[number]

    def stored(self, entity: str) -> list[ServiceBusReceivedMessage]:
        """What an entity holds now, by sequence number."""
        found = self.entity(entity).messages
        return [found[n] for n in sorted(found)]
