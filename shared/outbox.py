"""The transactional outbox: effects are stored with the incident, then sent, then cleared."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.domain.effects import Effect
from shared.domain.incidents import Incident, TimelineEntry
from shared.domain.signals import Signal
from shared.errors import PreconditionFailed
from shared.ports import DuplicateSignal, EffectQueue, IncidentStore, Versioned

log = logging.getLogger(__name__)

# Conditional writes that lose a race re-read and try again; this many losses in a row means
# something is wrong (a hot key under heavy contention would still settle well within it).
MAX_ATTEMPTS = 50


class StoreContention(Exception):
    """A conditional write kept losing; the caller should answer 503 so the sender retries."""


@dataclass(frozen=True)
class Change:
    """What an update does to an incident: its new state, the history to add, the effects to send."""

    incident: Incident
    timeline: Sequence[TimelineEntry] = ()
    effects: Sequence[Effect] = ()


def stage(incident: Incident, effects: Sequence[Effect]) -> Incident:
    """The incident with new effects in its outbox, so they are stored with it before they are sent."""
    if not effects:
        return incident
    paged = incident.paged or any(e.kind == "page" and e.event == "trigger" for e in effects)
    return incident.evolve(outbox=(*incident.outbox, *(e.to_dict() for e in effects)), paged=paged)


class Outbox:
    """Sends what incidents' outboxes hold, and applies changes to incidents with conditional writes."""

    def __init__(self, store: IncidentStore, queue: EffectQueue) -> None:
        self.store = store
        self.queue = queue

    def flush(self, versioned: Versioned) -> None:
        """Send the incident's outbox, then clear what was sent; a failure leaves it for the sweeper."""
        pending = versioned.incident.outbox
        if not pending:
            return
        try:
            self.queue.send([Effect.from_dict(e).to_message() for e in pending])
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
            updated = stage(result.incident, result.effects)
            try:
                etag = self.store.commit(updated, current.etag, signal, result.timeline)
            except DuplicateSignal:
                return None
            except PreconditionFailed:
                continue
            self.flush(Versioned(updated, etag))
            return updated
        raise StoreContention(f"incident {incident_id} kept changing under us")
