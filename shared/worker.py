"""The effect worker: carries out one page, notification or action message from the queues."""

from __future__ import annotations

import json
import logging

from shared.clock import Clock, iso
from shared.effects import Effect
from shared.incidents import TimelineEntry
from shared.ports import Chat, IncidentStore, Pager

log = logging.getLogger(__name__)


class PoisonMessage(Exception):
    """A message that can never succeed; the queue dead-letters it after its retries."""


class EffectWorker:
    """Turns an effect message into a call on the pager or chat, and writes the result down."""

    def __init__(self, store: IncidentStore, pager: Pager, chat: Chat, clock: Clock) -> None:
        self.store = store
        self.pager = pager
        self.chat = chat
        self.clock = clock

    def handle(self, body: bytes) -> None:
        """Carry out one effect; raising makes the queue redeliver it."""
        effect = parse_effect(body)
        found = self.store.get(effect.incident_id)
        if found is None:
            raise PoisonMessage(f"{effect.kind} for unknown incident {effect.incident_id}")
        incident = found.incident
        if effect.kind == "page":
            line = self.pager.trigger(incident) if effect.event == "trigger" else self.pager.resolve(incident)
        elif effect.kind == "notify":
            line = self.chat.post(incident, effect.event)
        else:
            # Carrying actions out is the actions feature's job; until then they are suggestions.
            target = effect.target or "the resource"
            line = f"Suggested first response: {effect.event} on {target} ({effect.mode})"
        self.store.add_timeline(incident.id, [TimelineEntry(iso(self.clock()), effect.kind, line)])


def parse_effect(body: bytes) -> Effect:
    """Decode a queue message body; PoisonMessage if it is not an effect."""
    try:
        effect = Effect.from_dict(json.loads(body))
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise PoisonMessage(f"not an effect message: {e}") from e
    if effect.kind not in ("page", "notify", "act"):
        raise PoisonMessage(f"unknown effect kind {effect.kind!r}")
    return effect
