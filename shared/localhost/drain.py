"""The inbox's drain: accepted alerts through the full path onto the intake queue, in batches."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence

from shared.bootstrap import Services
from shared.domain.signals import Signal
from shared.errors import BadInput, StoreBusy
from shared.intake.admission import INTAKE_QUEUE, REFUSED_AFTER_ACCEPTED
from shared.intake.azure_monitor import parse_alert
from shared.intake.json_body import decode_json
from shared.localhost.inbox import Inbox, Waiting
from shared.localhost.priority import run_in_background
from shared.ports import MAX_MESSAGE_BYTES, QueueMessage

log = logging.getLogger(__name__)

BATCH = 500  # bodies per queue send: one write transaction on the queue file
IDLE_POLL_SECONDS = 0.02  # how long a lone alert may wait in the inbox: well inside a batch
FORGET_SECONDS = 1.0  # while a storm drains, forget (a write on the inbox file) at most this often
RETRY_SECONDS = 0.5  # after the store or queue was busy
KEPT_BYTES = MAX_MESSAGE_BYTES // 2  # of a refused body in its dead letter, which is a queue message
TRANSIENT = (sqlite3.Error, StoreBusy)  # the store or queue busy: the same batch again, later


class InboxDrain(threading.Thread):
    """Admits what the inbox holds, oldest first; forgets it only once it is on the intake queue."""

    def __init__(
        self, inbox: Inbox, admit: Callable[[Sequence[Waiting]], None], stop: threading.Event
    ) -> None:
        super().__init__(name="inbox-drain", daemon=True)
        self.inbox = inbox
        self.admit = admit
        self.stop = stop

    def run(self) -> None:
        """Until stopped. After a crash the rows not yet forgotten are admitted again: the intake
        queue drops them as duplicates (the signal id is the message id, within its window)."""
        run_in_background()  # the alerts are answered and durable: the front goes first
        admitted = forgotten = 0
        forgot_at = time.monotonic()
        while not self.stop.is_set():
            try:
                waiting = self.inbox.waiting(admitted, BATCH)
                if waiting:
                    self.admit(waiting)
                    admitted = waiting[-1].id
                if admitted > forgotten and (not waiting or time.monotonic() - forgot_at >= FORGET_SECONDS):
                    self.inbox.forget(admitted)
                    forgotten, forgot_at = admitted, time.monotonic()
            except TRANSIENT as e:
                log.warning("inbox drain: %s; trying again in %.1f s", e, RETRY_SECONDS)
                self.stop.wait(RETRY_SECONDS)
                continue
            except Exception:  # a bug must not end the drain: the next alerts would wait for ever
                log.exception("inbox drain failed; trying again in %.1f s", RETRY_SECONDS)
                self.stop.wait(RETRY_SECONDS)
                continue
            if not waiting:
                self.stop.wait(IDLE_POLL_SECONDS)


def admit_alerts(services: Services) -> Callable[[Sequence[Waiting]], None]:
    """What `POST /api/alerts` does after its 202 here: parse, then one send for the whole batch."""

    def refused(item: Waiting, e: Exception) -> None:
        # The quick check is held to never accept what the full path refuses; if it ever did, the
        # alert is where a person looks (dr status), with the reason, not silently gone.
        why = str(e) if isinstance(e, BadInput) else f"{type(e).__name__}: {e}"
        kept = item.body[:KEPT_BYTES]
        cut = (
            f" (its body cut to {len(kept)} of {len(item.body)} bytes)" if len(kept) < len(item.body) else ""
        )
        services.queue.dead_letter_message(
            QueueMessage(queue=INTAKE_QUEUE, body=kept, message_id=f"inbox-{item.id}"),
            REFUSED_AFTER_ACCEPTED,
            f"answered 202 by dr serve's quick check, then refused by the full path{cut}: {why}",
        )

    def admit(waiting: Sequence[Waiting]) -> None:
        owner = services.owner()
        parsed: list[tuple[Waiting, Signal]] = []
        # Dead-lettered only once the rest is admitted: a batch tried again must not say it twice.
        refusals: list[tuple[Waiting, Exception]] = []
        for item in waiting:
            try:
                parsed.append((item, parse_alert(decode_json(item.body, "application/json"), owner)))
            except BadInput as e:
                refusals.append((item, e))
            except Exception as e:  # a bug: the full path would have answered this one alert 500
                log.exception("inbox row %d: the parser failed", item.id)
                refusals.append((item, e))
        try:
            services.admission.admit([signal for _, signal in parsed])
        except TRANSIENT:
            raise  # the whole batch again, later
        except Exception:  # one signal the queue will not take: send the rest, one at a time
            for item, signal in parsed:
                try:
                    services.admission.admit([signal])
                except TRANSIENT:
                    raise
                except Exception as e:
                    refusals.append((item, e))
        for item, error in refusals:
            refused(item, error)

    return admit
