"""The effects queues on Azure Service Bus: the EffectQueue and QueueInspector ports.

The Functions host receives and settles (complete on return, redelivery on a raise, the DLQ at
MaxDeliveryCount); this adapter sends, and reads the queues for the operator:

- `send`: messages grouped by (queue, session) in arrival order, packed into
  `ServiceBusMessageBatch`es that respect the link's size; one cached sender per queue per process.
  A partitioned queue with duplicate detection refuses a batch of distinct message ids: keep the
  queues unpartitioned, or build this with `batch=False`.
- dead letters live in two places: each queue's own DLQ (the host's MaxDeliveryCountExceeded, a
  session queue's DLQ is not session-enabled, so one plain receiver peeks it) and our plain
  `deadletters` queue (a sender cannot write a DLQ). Both are peeked, never locked, for the reads.
- `counts`: `ServiceBusAdministrationClient.get_queue_runtime_properties`. Service Bus counts no
  locked messages apart: `in_flight` is 0 and locked ones count as ready.
- `resend_dead_letter`: peek for the id, receive (peek-lock) up to it, send one copy under the new id
  (`replay_of` names the original), complete what was copied and abandon the rest. Service Bus's
  Python SDK has no transactions: a crash between the send and the completes leaves the dead letter
  beside its copy, and a second replay would send a second copy.

azure.servicebus is imported lazily: it costs a cold start about 0.3 s.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.adapters import service_bus_messages as messages
from shared.adapters.service_bus_messages import DEAD_LETTERS_QUEUE
from shared.clock import Clock, utc_now
from shared.domain.effects import CHATOPS_QUEUE, PAGERDUTY_QUEUE, QUEUES
from shared.errors import ConfigurationError, LockLost, Rejected, Transient
from shared.intake.admission import INTAKE_QUEUE
from shared.ports import DeadLetter, QueueCounts, QueueMessage

ALL_QUEUES = (INTAKE_QUEUE, *QUEUES.values(), PAGERDUTY_QUEUE, CHATOPS_QUEUE)
PEEK_PAGE = 250  # messages per peek request
MAX_PEEKED = 5000  # messages one read looks at per queue: a DLQ deeper than this is a bigger problem
RECEIVE_WAIT_SECONDS = 5.0  # for the dead letter a peek just saw
SEND_TIMEOUT_SECONDS = 30.0  # with the SDK's own retries (3, exponential) inside it
# The counts serve a person's status view, who asks again: answer at once rather than after backoffs.
ADMIN_OPTIONS: dict[str, Any] = {"retry_total": 0}


class ServiceBusClientLike(Protocol):
    """The part of `azure.servicebus.ServiceBusClient` this adapter uses (tests hand in a recorder)."""

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> Any:
        """A `ServiceBusSender`."""

    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> Any:
        """A `ServiceBusReceiver` (with `sub_queue=` for a DLQ)."""


class AdministrationLike(Protocol):
    """The part of `ServiceBusAdministrationClient` this adapter uses."""

    def get_queue_runtime_properties(self, queue_name: str, **kwargs: Any) -> Any:
        """A `QueueRuntimeProperties`."""


class ServiceBusQueue:
    """Sends to Service Bus queues and reads their counts and dead letters."""

    def __init__(
        self,
        client: ServiceBusClientLike,
        admin: AdministrationLike,
        *,
        queues: Sequence[str] = ALL_QUEUES,
        dead_letters_queue: str = DEAD_LETTERS_QUEUE,
        clock: Clock = utc_now,
        batch: bool = True,
        send_timeout: float = SEND_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._send_timeout = send_timeout
        self._admin = admin
        self.queues = tuple(queues)  # where find_dead_letters looks
        self.dead_letters_queue = dead_letters_queue
        self._clock = clock
        self._batch = batch
        self._lock = threading.Lock()
        # A ServiceBusSender is not thread-safe and the Python worker runs functions in a thread
        # pool: each cached sender is used under its own lock.
        self._senders: dict[str, tuple[Any, threading.Lock]] = {}

    def within(self, seconds: float) -> ServiceBusQueue:
        """The same queues, senders and connection, giving up on a send (retries included) after
        `seconds`: for a caller that must answer sooner than the default time-out."""
        hurried = copy.copy(self)  # shares the cached senders and their locks, which is the point
        hurried._send_timeout = seconds
        return hurried

    # --- EffectQueue -------------------------------------------------------------------------

    def send(self, messages_: Sequence[QueueMessage]) -> None:
        """Send, in order per session; a message_id seen within the window is dropped by Service Bus."""
        if not messages_:
            return
        built = [(m.queue, m.session_id, messages.outgoing(m)) for m in messages_]  # ValueError before I/O
        for (queue, _session), group in _grouped(built).items():
            with service_bus_errors(f"sending to {queue}"):
                self._send(queue, group)

    def dead_letter_message(self, message: QueueMessage, reason: str, description: str) -> None:
        """To our `deadletters` queue, with the queue, ids, reason and time in its properties."""
        built = messages.to_dead_letters(message, reason, description, self._clock())
        with service_bus_errors(f"dead-lettering to {self.dead_letters_queue}"):
            self._send(self.dead_letters_queue, [built])

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Dead letters of one queue (its DLQ and ours), newest first."""
        return self.recent_dead_letters([queue], limit)

    # --- QueueInspector ----------------------------------------------------------------------

    def counts(self, queues: Sequence[str]) -> list[QueueCounts]:
        """Counts per queue; dead-lettered is its DLQ plus its messages in our `deadletters`."""
        ours = self._ours()
        found = []
        for queue in queues:
            with service_bus_errors(f"reading the counts of {queue}"):
                runtime = self._admin.get_queue_runtime_properties(queue)
            found.append(
                QueueCounts(
                    queue=queue,
                    ready=runtime.active_message_count or 0,
                    scheduled=runtime.scheduled_message_count or 0,
                    in_flight=0,  # Service Bus counts locked messages as active
                    dead_lettered=(runtime.dead_letter_message_count or 0)
                    + sum(1 for d in ours if d.queue == queue),
                )
            )
        return found

    def recent_dead_letters(self, queues: Sequence[str], limit: int) -> list[DeadLetter]:
        """Dead letters across these queues, newest first."""
        found = [d for q in queues for d in self._dlq(q)]
        found += [d for d in self._ours() if d.queue in queues]
        return _newest_first(found)[:limit]

    def find_dead_letters(self, message_id: str) -> list[DeadLetter]:
        """Every dead letter with this id in the known queues' DLQs and in ours, newest first."""
        found = [d for q in self.queues for d in self._dlq(q) if d.message_id == message_id]
        found += [d for d in self._ours() if d.message_id == message_id]
        return _newest_first(found)

    def resend_dead_letter(self, queue: str, message_id: str, new_message_id: str) -> bool:
        """Send one copy of the dead letter(s) of (queue, message_id) under the new id and complete them."""
        from azure.servicebus import ServiceBusSubQueue

        dlq_wanted = {r.sequence_number for r in self._peek(queue, dlq=True) if r.message_id == message_id}
        ours_wanted = {
            r.sequence_number
            for r in self._peek(self.dead_letters_queue, dlq=False)
            if (d := messages.from_dead_letters(r)) is not None
            and (d.queue, d.message_id) == (queue, message_id)
        }
        where = f"replaying {message_id} of {queue}"
        with service_bus_errors(where), _Taken() as taken:
            if dlq_wanted:
                receiver = self._client.get_queue_receiver(
                    queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=RECEIVE_WAIT_SECONDS
                )
                taken.receive(receiver, dlq_wanted)
            if ours_wanted:
                receiver = self._client.get_queue_receiver(
                    self.dead_letters_queue, max_wait_time=RECEIVE_WAIT_SECONDS
                )
                taken.receive(receiver, ours_wanted)
            newest = taken.newest()
            if newest is None:
                return False  # replayed meanwhile, or locked by a replay running now
            copy = messages.replay(queue, newest, new_message_id)
            self._send(queue, [messages.outgoing(copy)])
            taken.complete()
        return True

    def close(self) -> None:
        """Close the cached senders."""
        with self._lock:
            senders, self._senders = list(self._senders.values()), {}
        for sender, lock in senders:
            with lock:
                sender.close()

    # --- the SDK ----------------------------------------------------------------------------

    def _sender(self, queue: str) -> tuple[Any, threading.Lock]:
        with self._lock:
            if queue not in self._senders:
                self._senders[queue] = (self._client.get_queue_sender(queue), threading.Lock())
            return self._senders[queue]

    def _send(self, queue: str, group: list[Any]) -> None:
        sender, lock = self._sender(queue)
        with lock:
            self._send_with(sender, group)

    def _send_with(self, sender: Any, group: list[Any]) -> None:
        from azure.servicebus.exceptions import MessageSizeExceededError

        if not self._batch or len(group) == 1:
            for message in group:
                sender.send_messages(message, timeout=self._send_timeout)
            return
        batch = sender.create_message_batch()
        for message in group:
            try:
                batch.add_message(message)
            except MessageSizeExceededError:
                if not len(batch):
                    raise  # one message larger than the link takes: translated to Rejected
                sender.send_messages(batch, timeout=self._send_timeout)
                batch = sender.create_message_batch()
                batch.add_message(message)
        sender.send_messages(batch, timeout=self._send_timeout)

    def _peek(self, queue: str, *, dlq: bool) -> list[Any]:
        """Every message (up to MAX_PEEKED) of a queue or its DLQ, oldest first, locking none."""
        from azure.servicebus import ServiceBusSubQueue

        options = {"sub_queue": ServiceBusSubQueue.DEAD_LETTER} if dlq else {}
        peeked: list[Any] = []
        where = f"reading the {'DLQ of ' if dlq else ''}{queue}"
        with service_bus_errors(where), self._client.get_queue_receiver(queue, **options) as receiver:
            after = 0
            while len(peeked) < MAX_PEEKED:
                # Always name the sequence number: left out, a receiver goes on from its last peek.
                page = receiver.peek_messages(PEEK_PAGE, sequence_number=after + 1)
                if not page:
                    break
                peeked += page
                after = max(m.sequence_number or 0 for m in page)
        return peeked

    def _dlq(self, queue: str) -> list[DeadLetter]:
        return [messages.from_dlq(queue, m) for m in self._peek(queue, dlq=True)]

    def _ours(self) -> list[DeadLetter]:
        found = (messages.from_dead_letters(m) for m in self._peek(self.dead_letters_queue, dlq=False))
        return [d for d in found if d is not None]


class _Taken:
    """Dead letters received under a lock for a replay: completed once copied, abandoned otherwise."""

    def __init__(self) -> None:
        self.held: list[tuple[Any, Any]] = []  # (receiver, message) to complete
        self.passed: list[tuple[Any, Any]] = []  # received on the way to the wanted ones: abandon
        self.receivers: list[Any] = []
        self.completed = False

    def __enter__(self) -> _Taken:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            release = self.passed if self.completed else [*self.passed, *self.held]
            for receiver, message in release:
                try:
                    receiver.abandon_message(message)
                except Exception:
                    continue
        finally:
            for receiver in self.receivers:
                receiver.close()

    def receive(self, receiver: Any, wanted: set[int]) -> None:
        """Receive in order until every wanted sequence number has come, or nothing more does."""
        self.receivers.append(receiver)
        seen: set[int] = set()
        while not wanted <= seen:
            # No more than still wanted: any other one received is abandoned, which counts a delivery.
            got = receiver.receive_messages(max_message_count=min(len(wanted - seen), 100))
            if not got:
                return
            for message in got:
                seen.add(message.sequence_number)
                (self.held if message.sequence_number in wanted else self.passed).append((receiver, message))

    def newest(self) -> Any:
        """The most recently dead-lettered of those held (the one a replay copies)."""
        if not self.held:
            return None
        return max(self.held, key=lambda pair: pair[1].enqueued_time_utc or datetime.min.replace(tzinfo=UTC))[
            1
        ]

    def complete(self) -> None:
        """Take what was copied off the dead letters."""
        for receiver, message in self.held:
            receiver.complete_message(message)
        self.completed = True


def _grouped(built: Iterable[tuple[str, str | None, Any]]) -> dict[tuple[str, str | None], list[Any]]:
    groups: dict[tuple[str, str | None], list[Any]] = {}
    for queue, session, message in built:
        groups.setdefault((queue, session), []).append(message)
    return groups


def _newest_first(found: list[DeadLetter]) -> list[DeadLetter]:
    return sorted(found, key=lambda d: d.dead_lettered_at, reverse=True)


# --- errors ---------------------------------------------------------------------------------------


@contextmanager
def service_bus_errors(where: str) -> Iterator[None]:
    """azure-servicebus's (and the admin client's azure-core) errors as ours, each `from` the original."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.servicebus import exceptions as sb

    try:
        yield
    except (
        sb.ServiceBusAuthenticationError,
        sb.ServiceBusAuthorizationError,
        ClientAuthenticationError,
    ) as e:
        # The SDK calls these retryable; a missing role or a wrong key is not fixed by waiting.
        raise Rejected(
            f"{where}: Service Bus refused our identity ({type(e).__name__}: {e}); it needs the"
            " Azure Service Bus Data Sender and Data Receiver roles on the namespace"
        ) from e
    except (sb.MessageLockLostError, sb.SessionLockLostError) as e:
        raise LockLost(f"{where}: {type(e).__name__}: {e}") from e
    except (sb.MessagingEntityNotFoundError, ResourceNotFoundError) as e:
        raise ConfigurationError(f"{where}: no such queue in the namespace ({type(e).__name__}: {e})") from e
    except sb.MessageSizeExceededError as e:
        raise Rejected(f"{where}: a message larger than the queue takes ({e})") from e
    except (
        sb.ServiceBusConnectionError,
        sb.ServiceBusServerBusyError,
        sb.OperationTimeoutError,
        sb.ServiceBusCommunicationError,
        sb.ServiceBusQuotaExceededError,  # the queue is full: it drains as the host receives
    ) as e:
        raise Transient(f"{where}: Service Bus unavailable ({type(e).__name__}: {e})") from e
    except sb.ServiceBusError as e:
        if e._retryable:  # the SDK's own judgement, for the errors not named above
            raise Transient(f"{where}: {type(e).__name__}: {e}") from e
        raise Rejected(f"{where}: {type(e).__name__}: {e}") from e
    except (ServiceRequestError, ServiceResponseError) as e:
        raise Transient(f"{where}: Service Bus unreachable ({type(e).__name__}: {e.message})") from e
    except HttpResponseError as e:
        status = e.status_code or 0
        if status == 429 or status >= 500 or status == 408:
            raise Transient(f"{where}: Service Bus answered {status}: {e.message}", held=status == 429) from e
        raise Rejected(f"{where}: Service Bus answered {status}: {e.message}") from e


# --- construction ---------------------------------------------------------------------------------


def service_bus_queue(
    namespace: str | None,
    connection_string: str | None,
    credential_factory: Callable[[], Any],
    *,
    clock: Clock = utc_now,
    **client_options: Any,
) -> ServiceBusQueue:
    """The queue on a namespace (`x.servicebus.windows.net`, with the identity the factory builds) or a
    connection string; the namespace wins when both are set, so a leftover key is never preferred."""
    from azure.servicebus import ServiceBusClient
    from azure.servicebus.management import ServiceBusAdministrationClient

    if namespace:
        credential = credential_factory()
        client = ServiceBusClient(namespace, credential, **client_options)
        admin = ServiceBusAdministrationClient(namespace, credential, **ADMIN_OPTIONS)
    elif connection_string:
        try:
            client = ServiceBusClient.from_connection_string(connection_string, **client_options)
            admin = ServiceBusAdministrationClient.from_connection_string(connection_string, **ADMIN_OPTIONS)
        except ValueError:  # never show the string, nor the SDK's words on it: it holds a key
            raise ConfigurationError("ServiceBusConnection is not a valid connection string") from None
    else:
        raise ConfigurationError(
            "Service Bus needs ServiceBusConnection__fullyQualifiedNamespace or ServiceBusConnection"
        )
    return ServiceBusQueue(client, admin, clock=clock)
