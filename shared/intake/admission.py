"""Admission: an accepted signal is made durable on the intake queue before the caller's 2xx.

The webhook does one append and answers; `Intake` folds the queue's signals into incidents in
batches, one session (correlation key) at a time, so a storm across many Function instances is a
storm of appends, not of conflicting writes on a hundred incidents.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from shared.domain.signals import Signal
from shared.errors import BadInput, PoisonMessage
from shared.ports import MAX_MESSAGE_BYTES, EffectQueue, QueueMessage
from shared.triage.assessment import correlation_key
from shared.triage.policy import Policy

INTAKE_QUEUE = "intake"
# The dead letter of a body answered 202 by `dr serve`'s quick check that the full parser then
# refused: it holds the alert's raw body, not a signal, so it is posted again, not replayed.
REFUSED_AFTER_ACCEPTED = "RefusedAfterAccepted"
MAX_ID_LENGTH = 128  # Service Bus message and session ids


@dataclass(frozen=True)
class Admitted:
    """What a request handed over: the caller's 202 says this, not yet what became of it."""

    signals: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"accepted": len(self.signals), "signals": list(self.signals)}


class Admission:
    """Appends signals to the intake queue, each in its correlation key's session."""

    def __init__(self, queue: EffectQueue, policy: Policy) -> None:
        self.queue = queue
        self.policy = policy

    def admit(self, signals: Sequence[Signal]) -> Admitted:
        """One send for the request's signals; on return they are durable (Service Bus, or SQLite).

        BadInput (413) before anything is sent if a signal would not fit in a queue message."""
        # Only the session is decided here; triage proper runs once, where the signal is folded.
        messages = [intake_message(s, correlation_key(s, self.policy)) for s in signals]
        for message in messages:
            if len(message.body) > MAX_MESSAGE_BYTES:
                raise BadInput(
                    "signal_too_large",
                    f"signal {message.message_id[:40]} is {len(message.body)} bytes once normalized; a queue"
                    f" message holds at most {MAX_MESSAGE_BYTES}: shorten its description or rule name",
                    413,
                )
        self.queue.send(messages)
        return Admitted(tuple(s.id for s in signals))


def intake_message(signal: Signal, correlation_key: str) -> QueueMessage:
    """The signal as an intake message: a resend of the same signal is dropped by duplicate detection."""
    body = json.dumps(signal.to_dict(), separators=(",", ":")).encode()
    return QueueMessage(
        queue=INTAKE_QUEUE,
        body=body,
        message_id=_bounded(signal.id),
        # An informational signal has no incident to serialise on; its own id keeps it out of the way.
        session_id=_bounded(correlation_key or f"signal|{signal.id}"),
        application_properties={"kind": "signal", "source": signal.source},
    )


def signal_of(body: bytes) -> Signal:
    """The signal an intake message carries; PoisonMessage if it is not one."""
    try:
        return Signal.from_dict(json.loads(body))
    except (ValueError, TypeError, KeyError) as e:
        raise PoisonMessage(f"intake message is not a signal: {e}") from e


def _bounded(value: str) -> str:
    """Service Bus allows 128 characters: a longer id is named by its digest, still unique."""
    if len(value) <= MAX_ID_LENGTH:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
