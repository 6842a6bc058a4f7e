"""Sending a dead-lettered message again (`dr replay`), once, and saying so on its incident."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from shared.clock import iso
from shared.domain.incidents import TimelineEntry
from shared.errors import Rejected
from shared.intake.admission import REFUSED_AFTER_ACCEPTED
from shared.ports import IncidentStore, QueueInspector
from shared.status.model import describe_dead_letter


class ReplayRefused(Rejected):
    """The dead letter cannot be replayed as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Replayed:
    """What a replay sent."""

    queue: str
    message_id: str
    new_message_id: str
    reason: str  # why it had been dead-lettered
    summary: str
    incident_id: str | None  # the incident whose timeline says so, when the body names one we have

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def replay_dead_letter(
    queues: QueueInspector,
    store: IncidentStore,
    message_id: str,
    now: datetime,
    queue: str | None = None,
    by: str = "dr replay",
) -> Replayed:
    """Send the dead letter again under a new message id and take it off the dead letters.

    A new id, because duplicate detection would drop a resend of the original within its window;
    taken off in the same step, so a second replay finds nothing instead of sending it twice.
    """
    found = [d for d in queues.find_dead_letters(message_id) if queue is None or d.queue == queue]
    where = f" in {queue}" if queue else ""
    if not found:
        raise ReplayRefused(f"no dead letter with message id {message_id!r}{where} (see dr dead-letters)")
    in_queues = sorted({d.queue for d in found})
    if len(in_queues) > 1:
        raise ReplayRefused(
            f"message id {message_id!r} is dead-lettered in {', '.join(in_queues)}: pass --queue"
        )
    view = describe_dead_letter(found[0])
    if view.reason == REFUSED_AFTER_ACCEPTED:
        # Replayed, its raw body would reach the folder as a message that is no signal: poison.
        raise ReplayRefused(
            f"{message_id!r} holds an alert's raw body, which the full parser refused after dr serve had"
            f" answered it 202 ({view.description[:300]}); replayed, it would be refused again as no"
            " signal. Fix what that says, then POST the body to /api/alerts again (it is the dead"
            " letter's body: the queue_messages row of DATA_DIR/queue.sqlite3); it stays here meanwhile"
        )
    new_id = replay_message_id(message_id)
    if not queues.resend_dead_letter(view.queue, message_id, new_id):
        raise ReplayRefused(
            f"{message_id!r} is no longer among the dead letters of {view.queue}: replayed meanwhile"
        )
    incident_id = view.incident_id if view.incident_id and store.get(view.incident_id) else None
    if incident_id:
        what = view.summary or f"{view.queue} message"
        line = f"Replayed dead-lettered {what} ({view.reason}) as message {new_id} by {by}"
        store.add_timeline(incident_id, [TimelineEntry(iso(now), "replay", line)])
    return Replayed(view.queue, message_id, new_id, view.reason, view.summary, incident_id)


def replay_message_id(original: str) -> str:
    """A fresh id that still shows what it copies; within Service Bus's 128 characters."""
    return f"{original[:100]}.replay.{uuid.uuid4().hex[:12]}"
