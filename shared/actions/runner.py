"""The action runner's seat: until the actions land, an `act` effect is written down as a suggestion."""

from __future__ import annotations

from shared.clock import Clock, iso
from shared.domain.effects import Effect, EffectKind
from shared.domain.incidents import Incident, TimelineEntry
from shared.ports import IncidentRepository
from shared.retries import EffectRunner, RetryRule

ACTION_RETRIES = RetryRule()


class ActionRunner:
    """Handles the `actions` queue."""

    def __init__(self, runner: EffectRunner, store: IncidentRepository, clock: Clock) -> None:
        self.runner = runner
        self.store = store
        self.clock = clock

    def handle(self, body: bytes) -> None:
        """Carry out one action message; raising makes the queue redeliver it."""
        self.runner.run(body, EffectKind.ACT, ACTION_RETRIES, self._suggest)

    def _suggest(self, effect: Effect, incident: Incident) -> None:
        target = effect.target or "the resource"
        line = f"Suggested first response: {effect.event} on {target} ({effect.mode})"
        self.store.add_timeline(incident.id, [TimelineEntry(iso(self.clock()), "act", line)])
