"""Running one effect message: find its incident, do the work, and retry or give up through the queue.

Shared by every effect handler (page sync, card sync, actions), so a failure is treated the same
way wherever it happens. Failures that may pass (429, 5xx, timeouts) come back as a new scheduled
message with backoff, never by sleeping in a function; a refusal (a 400) is written on the
incident, told to Slack and put among the dead letters with its reason.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from shared.clock import Clock, iso
from shared.domain.effects import Change, Effect, EffectKind
from shared.domain.incidents import Incident, TimelineEntry
from shared.errors import PoisonMessage, Rejected, Transient
from shared.outbox import Outbox, effect_message
from shared.ports import EffectQueue, IncidentRepository

log = logging.getLogger(__name__)

MAX_FAILURES = 20  # failures kept on an incident: a long outage must not grow it without bound


@dataclass(frozen=True)
class Backoff:
    """Delays between retries: doubling from `base` up to `cap`, with jitter; Retry-After wins."""

    base: float
    cap: float

    def delay(self, attempt: int, retry_after: float | None, held: bool = False) -> float:
        """Seconds to wait before the given attempt; never less than the service asked for."""
        if held and retry_after:
            # Spread out, so the messages a 429 held back do not all come back in the same instant.
            return retry_after * random.uniform(1.0, 1.25)
        backoff = min(self.cap, self.base * 2 ** min(attempt - 1, 30)) * random.uniform(0.8, 1.2)
        return max(backoff, retry_after or 0.0)


@dataclass(frozen=True)
class RetryRule:
    """How one kind of effect retries: give up after some tries (None: never), or say so every few."""

    give_up_after: int | None = None
    warn_every: int | None = None


Work = Callable[[Effect, Incident], None]


class EffectRunner:
    """Runs effect messages of one kind with the retry rule of that kind."""

    def __init__(
        self,
        store: IncidentRepository,
        queue: EffectQueue,
        outbox: Outbox,
        clock: Clock,
        backoff: Backoff,
    ) -> None:
        self.store = store
        self.queue = queue
        self.outbox = outbox
        self.clock = clock
        self.backoff = backoff

    def run(self, body: bytes, kind: EffectKind, rule: RetryRule, work: Work) -> None:
        """Carry out one message; raising makes the queue redeliver it, PoisonMessage dead-letters it."""
        effect = parse_effect(body, kind)
        found = self.store.get(effect.incident_id)
        if found is None:
            raise PoisonMessage(f"{effect.kind} for unknown incident {effect.incident_id}")
        try:
            work(effect, found.incident)
        except Transient as e:
            self._retry_later(effect, e, rule)
        except Rejected as e:
            self.give_up(effect, str(e), "Rejected")

    def _retry_later(self, effect: Effect, error: Transient, rule: RetryRule) -> None:
        # A service that asks us to slow down (429 Retry-After, our own pacing) is holding us back,
        # not failing: that does not count as a try. A wait of 0 would spin at once, forever: a try.
        held = error.held and bool(error.retry_after)
        retry = effect.held_back() if held else effect.retry()
        attempt = retry.attempt
        if rule.give_up_after is not None and attempt >= rule.give_up_after:
            self.give_up(effect, f"{error} (gave up after {attempt} tries)", "MaxAttemptsExceeded")
            return
        delay = self.backoff.delay(max(attempt, 1), error.retry_after, held)
        log.warning(
            "%s for %s failed (try %d): %s; again in %.1fs",
            effect.kind,
            effect.incident_id,
            attempt,
            error,
            delay,
        )
        # A new message (its id counts the attempt, so duplicate detection keeps it), due later.
        self.queue.send([effect_message(retry, self.clock() + timedelta(seconds=delay))])
        if rule.warn_every and not held and attempt % rule.warn_every == 0:
            self.record_failure(effect, f"still failing after {attempt} tries, retrying: {error}")

    def give_up(self, effect: Effect, reason: str, label: str) -> None:
        """Record the failure where people look, and dead-letter the message with its reason."""
        log.error("%s for %s failed for good: %s", effect.kind, effect.incident_id, reason)
        self.record_failure(effect, reason)
        self.queue.dead_letter_message(effect_message(effect), label, reason)

    def record_failure(self, effect: Effect, reason: str) -> None:
        """On the incident (`failures`, the timeline) and, unless Slack itself failed, in its thread."""
        now = iso(self.clock())
        text = f"{effect.kind} {effect.event}: {reason}"

        def failed(current: Incident) -> Change:
            updated = current.evolve(failures=(*current.failures, f"{now} {text}")[-MAX_FAILURES:])
            tell = []
            if effect.kind is not EffectKind.NOTIFY:  # a failed card is not announced: Slack failed
                warning = f":warning: {text}"
                severity = current.severity.label
                tell.append(Effect(EffectKind.NOTIFY, current.id, "failure", severity, now, detail=warning))
            return Change(updated, [TimelineEntry(now, "failed", text)], tell)

        self.outbox.update(effect.incident_id, failed)


def parse_effect(body: bytes, kind: EffectKind) -> Effect:
    """Decode a queue message body; PoisonMessage if it is not an effect of this kind."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        effect = Effect.from_dict(data)
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as e:
        raise PoisonMessage(f"not an effect message: {e}") from e
    if effect.kind is not kind:
        raise PoisonMessage(f"a {effect.kind} effect on the {kind.queue} queue")
    return effect
