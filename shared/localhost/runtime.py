"""Runs queue- and timer-triggered functions locally: the embedded queue and NCRONTAB timers."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest

from shared.actions.pipeline import ACTIONS_QUEUE
from shared.errors import LockLost, PoisonMessage, StoreBusy
from shared.intake.admission import INTAKE_QUEUE
from shared.localhost.ncrontab import Schedule
from shared.localhost.priority import run_in_background
from shared.ports import BatchReceiver, QueueReceiver, Received

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.05  # other processes may enqueue: look again this often when idle
# host.json's serviceBus.maxConcurrentSessions: in Azure one instance runs this many deliveries of a
# queue at once (sessions keep each incident's messages in order), so the local host does too; one
# pump would make 50 caches failing at once wait on each other's ARM calls.
PUMPS_PER_QUEUE = 8
# On Flex Consumption each Service Bus function scales on instances of its own, and target-based
# scaling asks for one instance per maxConcurrentSessions queued sessions; host.json has no
# per-function concurrency. This process stands for one instance of every function but the actions',
# which it gives two instances' worth: 50 failovers at once must not wait on eight at a time, and
# only that queue gets more pumps (more intake folders would compete with the HTTP intake).
INSTANCES_PER_QUEUE = {ACTIONS_QUEUE: 2}
# Folding a storm into incidents is bulk work that may trail by a second: its pumps run in the
# background (`shared.localhost.priority`), as do the drain and the timers. Every queue that acts or
# talks to people (actions, pages, cards, PagerDuty's acknowledgements, Slack's commands) keeps the
# CPU's full share: a failover or a page must not wait behind the storm.
BACKGROUND_QUEUES = frozenset({INTAKE_QUEUE})
# host.json's serviceBus.maxMessageBatchSize, for triggers with cardinality "many" (intake folding).
BATCH_SIZE = 100
# host.json's serviceBus.maxAutoLockRenewalDuration: the host renews a message's lock while its
# function runs, up to this long. Without it a call slower than the lock (a slow ARM POST inside an
# action's start) has its message delivered again, to another pump, while the first still runs.
MAX_LOCK_RENEWAL_SECONDS = 300.0
RENEWER_TICK_SECONDS = 0.25


@dataclass
class _Held:
    """A message whose function runs; times are monotonic seconds."""

    received: Received
    duration: float  # of its lock
    since: float
    renew_at: float


class LockRenewer(threading.Thread):
    """Renews the locks of messages whose function is still running, at half their lock duration."""

    def __init__(self, queue: QueueReceiver, stop: threading.Event) -> None:
        super().__init__(name="queue-lock-renewer", daemon=True)
        self.queue = queue
        self.stop = stop
        self._guard = threading.Lock()
        self._held: dict[str, _Held] = {}  # by lock token

    @contextmanager
    def holding(self, messages: Sequence[Received]) -> Iterator[None]:
        """Keep these messages' locks while the block runs."""
        now = time.monotonic()
        with self._guard:
            for received in messages:
                duration = max(1.0, (received.locked_until - datetime.now(UTC)).total_seconds())
                self._held[received.lock_token] = _Held(received, duration, now, now + duration / 2)
        try:
            yield
        finally:
            with self._guard:
                for received in messages:
                    self._held.pop(received.lock_token, None)

    def run(self) -> None:
        """Until stopped."""
        while not self.stop.wait(RENEWER_TICK_SECONDS):
            self.renew_due(time.monotonic())

    def renew_due(self, now: float) -> None:
        """Renew every held lock that is half gone (and not held past the renewal limit)."""
        with self._guard:
            due = [
                h
                for h in self._held.values()
                if h.renew_at <= now and now - h.since < MAX_LOCK_RENEWAL_SECONDS
            ]
        for held in due:
            received = held.received
            try:
                self.queue.renew_lock(received)
            except LockLost:
                log.warning("%s: lock on %s lost while its function ran", received.queue, received.message_id)
                with self._guard:
                    self._held.pop(received.lock_token, None)
                continue
            except Exception as e:  # a busy database: the next tick tries again, the lock has time left
                log.warning("%s: renewing the lock on %s failed: %s", received.queue, received.message_id, e)
                continue
            held.renew_at = now + held.duration / 2


class QueuePump(threading.Thread):
    """Delivers one queue's messages to its function: complete on success, abandon on error."""

    def __init__(
        self,
        queue: QueueReceiver,
        queue_name: str,
        handler: Callable[[Any], None],
        stop: threading.Event,
        renewer: LockRenewer | None = None,
        background: bool = False,
    ):
        super().__init__(name=f"queue-{queue_name}", daemon=True)
        self.queue = queue
        self.queue_name = queue_name
        self.handler = handler
        self.stop = stop
        self.renewer = renewer
        self.background = background  # yields the CPU to the front and the other pumps (`priority`)

    def run(self) -> None:
        """Until stopped."""
        if self.background:
            run_in_background()
        while not self.stop.is_set():
            try:
                received = self.queue.receive(self.queue_name)
            except Exception:
                log.exception("receiving from %s failed", self.queue_name)
                self.stop.wait(1.0)
                continue
            if received is None:
                self.stop.wait(IDLE_POLL_SECONDS)
                continue
            self.deliver(received)

    def deliver(self, received: Received) -> None:
        """Call the function with a Service Bus message, then settle it as the host would."""
        try:
            with self._locked([received]):
                self.handler(service_bus_message(received))
        except PoisonMessage as e:
            # Retrying cannot help: dead-letter now, with the reason, instead of after ten tries.
            log.error("%s: message %s dead-lettered: %s", self.queue_name, received.message_id, e)
            self._settle(self.queue.dead_letter, received, "PoisonMessage", str(e)[:1000])
            return
        except Exception as e:
            log.warning(
                "%s: message %s failed (delivery %d): %s",
                self.queue_name,
                received.message_id,
                received.delivery_count,
                e,
            )
            self._settle(self.queue.abandon, received)
            return
        self._settle(self.queue.complete, received)

    def _locked(self, messages: Sequence[Received]) -> AbstractContextManager[None]:
        return self.renewer.holding(messages) if self.renewer else nullcontext()

    def _settle(self, settle: Callable[..., None], received: Received, *args: str) -> None:
        """Settle; a lost lock or a busy database must not end the pump (the message comes back)."""
        try:
            settle(received, *args)
        except LockLost:
            log.warning(
                "%s: lock on %s lost before settling; it will be delivered again",
                self.queue_name,
                received.message_id,
            )
        except (StoreBusy, sqlite3.OperationalError) as e:
            log.warning(
                "%s: settling %s failed (%s); it will be delivered again",
                self.queue_name,
                received.message_id,
                e,
            )


class BatchPump(QueuePump):
    """Delivers a session's messages in batches to a function that takes a list ("many")."""

    def __init__(
        self,
        queue: BatchReceiver,
        queue_name: str,
        handler: Callable[[Any], None],
        stop: threading.Event,
        renewer: LockRenewer | None = None,
        background: bool = False,
    ):
        super().__init__(queue, queue_name, handler, stop, renewer, background)
        self.batches = queue

    def run(self) -> None:
        """Until stopped."""
        if self.background:
            run_in_background()
        while not self.stop.is_set():
            try:
                batch = self.batches.receive_batch(self.queue_name, BATCH_SIZE)
            except Exception:
                log.exception("receiving from %s failed", self.queue_name)
                self.stop.wait(1.0)
                continue
            if not batch:
                self.stop.wait(IDLE_POLL_SECONDS)
                continue
            self.deliver_batch(batch)

    def deliver_batch(self, batch: list[Received]) -> None:
        """Call the function with the batch; complete it all on success, abandon it all on error."""
        try:
            # The batch holds one lock, its session's, under the first message's token: renewing
            # that message renews it (one write, not one per message).
            with self._locked(batch[:1]):
                self.handler([service_bus_message(r) for r in batch])
        except Exception as e:
            log.warning(
                "%s: batch of %d from session %s failed (delivery %d): %s",
                self.queue_name,
                len(batch),
                batch[0].session_id,
                batch[0].delivery_count,
                e,
            )
            self._settle_batch(self.batches.abandon_batch, batch)
            return
        self._settle_batch(self.batches.complete_batch, batch)

    def _settle_batch(self, settle: Callable[[list[Received]], None], batch: list[Received]) -> None:
        try:
            settle(batch)
        except (LockLost, StoreBusy, sqlite3.OperationalError) as e:
            log.warning("%s: settling a batch failed (%s); it will be delivered again", self.queue_name, e)


class TimerThread(threading.Thread):
    """Calls a timer-triggered function on its NCRONTAB schedule."""

    def __init__(self, name: str, schedule: Schedule, handler: Callable[[Any], None], stop: threading.Event):
        super().__init__(name=f"timer-{name}", daemon=True)
        self.schedule = schedule
        self.handler = handler
        self.stop = stop

    def run(self) -> None:
        """Until stopped."""
        run_in_background()  # the sweeps: what they send again may wait a second more under a storm
        while not self.stop.is_set():
            now = datetime.now(UTC)
            due = self.schedule.next_after(now)
            if self.stop.wait((due - now).total_seconds()):
                return
            try:
                self.handler(TimerRequest(past_due=False))
            except Exception:
                log.exception("timer %s failed", self.name)


def pumps_for(queue_name: str) -> int:
    """How many deliveries of a queue run at once: maxConcurrentSessions per instance it stands for."""
    return PUMPS_PER_QUEUE * INSTANCES_PER_QUEUE.get(queue_name, 1)


def start_triggers(functions: Iterable[Any], queue: QueueReceiver, stop: threading.Event) -> list[str]:
    """Start a pump per queue trigger and a thread per timer; returns what was started, for the banner."""
    started = []
    renewer = LockRenewer(queue, stop)
    renewer.start()
    for function in functions:
        trigger = function.get_trigger()
        name = function.get_function_name()
        if trigger.type == "serviceBusTrigger":
            handler, queue_name = function.get_user_function(), trigger.queue_name
            pumps: list[QueuePump]
            count = pumps_for(queue_name)
            background = queue_name in BACKGROUND_QUEUES
            if str(getattr(trigger, "cardinality", "") or "").lower().endswith("many"):
                if not isinstance(queue, BatchReceiver):
                    raise TypeError(f"{name} takes batches; {type(queue).__name__} cannot receive them")
                pumps = [
                    BatchPump(queue, queue_name, handler, stop, renewer, background) for _ in range(count)
                ]
                each = f"batches of up to {BATCH_SIZE}, "
            else:
                pumps = [
                    QueuePump(queue, queue_name, handler, stop, renewer, background) for _ in range(count)
                ]
                each = ""
            for pump in pumps:
                pump.start()
            priority = ", in the background" if background else ""
            started.append(f"{name}: queue {queue_name} ({each}{count} at once{priority})")
        elif trigger.type == "timerTrigger":
            TimerThread(name, Schedule(trigger.schedule), function.get_user_function(), stop).start()
            started.append(f"{name}: timer {trigger.schedule}, in the background")
    return started


def service_bus_message(received: Received) -> ServiceBusMessage:
    """What the Service Bus trigger hands a function for a message taken off the local queue."""
    return ServiceBusMessage(
        body=received.body,
        message_id=received.message_id,
        session_id=received.session_id,
        content_type=received.content_type,
        delivery_count=received.delivery_count,
        sequence_number=received.sequence_number,
        lock_token=received.lock_token,
        enqueued_time_utc=received.enqueued_at,
        application_properties=dict(received.application_properties),
        user_properties=dict(received.application_properties),
    )
