"""The transactional outbox: effects are stored with the incident, then sent, then cleared."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from shared.domain.effects import Change, Effect
from shared.domain.incidents import Incident
from shared.domain.signals import Signal
from shared.errors import DuplicateSignal, PreconditionFailed, StoreContention
from shared.ports import EffectQueue, IncidentRepository, QueueMessage, Versioned

log = logging.getLogger(__name__)

# Conditional writes that lose a race re-read and try again; this many losses in a row means
# something is wrong (a hot key under heavy contention would still settle well within it).
MAX_ATTEMPTS = 50


def effect_message(effect: Effect, scheduled_at: datetime | None = None) -> QueueMessage:
    """The queue message that carries an effect (delivered at scheduled_at, if given)."""
    return QueueMessage(
        queue=effect.queue,
        body=json.dumps(effect.to_dict(), separators=(",", ":")).encode(),
        message_id=effect.message_id,
        session_id=effect.session_id,
        scheduled_at=scheduled_at,
        application_properties={
            "kind": effect.kind.value,
            "incident_id": effect.incident_id,
            "attempt": effect.attempt,
        },
    )


class Outbox:
    """Sends what incidents' outboxes hold, and applies changes to incidents with conditional writes."""

    def __init__(self, store: IncidentRepository, queue: EffectQueue) -> None:
        self.store = store
        self.queue = queue

    def flush(self, versioned: Versioned) -> None:
        """Send the incident's outbox, then clear what was sent; a failure leaves it for the sweeper."""
        pending = versioned.incident.outbox
        if not pending:
            return
        try:
            self.queue.send([effect_message(Effect.from_dict(e)) for e in pending])
        except Exception:
            log.exception("effects of %s not sent; the sweeper will retry", versioned.incident.id)
            return
        sent = {Effect.from_dict(e).message_id for e in pending}
        for _ in range(MAX_ATTEMPTS):
            incident = versioned.incident
            remaining = tuple(e for e in incident.outbox if Effect.from_dict(e).message_id not in sent)
            try:
                self.store.commit(incident.evolve(outbox=remaining), versioned.etag)
                return
            except PreconditionFailed:
                fresh = self.store.get(incident.id)
                if fresh is None:
                    return
                versioned = fresh
        # Not cleared: the sweeper resends, and the queue drops the duplicates by message id.

    def update(
        self,
        incident_id: str,
        change: Callable[[Incident], Change | None],
        signal: Signal | None = None,
    ) -> Incident | None:
        """Apply a pure change to the stored incident until the conditional write wins, then send its effects.

        Returns the updated incident; None if the incident is unknown, the change declined (returned
        None), or the signal was applied before (a redelivery).
        """
        for _ in range(MAX_ATTEMPTS):
            current = self.store.get(incident_id)
            if current is None:
                return None
            result = change(current.incident)
            if result is None:
                return None
            updated = result.staged()
            try:
                etag = self.store.commit(updated, current.etag, [signal] if signal else [], result.timeline)
            except DuplicateSignal:
                return None
            except PreconditionFailed:
                continue
            self.flush(Versioned(updated, etag))
            return updated
        raise StoreContention(f"incident {incident_id} kept changing under us")
