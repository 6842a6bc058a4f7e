"""The effect worker: carries out one page, notification or action message from the queues.

Pages and cards are synchronised, not replayed: whatever the message says, the worker makes
PagerDuty and Slack show the incident as it is now. So effects that arrive late, twice or out of
order (a retry overtaken by a resolve) still leave the right state, and a storm of updates to one
incident costs one call. Failures that may pass (429, 5xx, timeouts) are retried through the
queue with backoff; a refusal (a 400) is written on the incident and told to Slack.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from shared.clock import Clock, iso
from shared.domain.effects import Effect
from shared.domain.incidents import RESOLVED, Incident, TimelineEntry
from shared.errors import Rejected, Transient
from shared.outbox import Change, Outbox
from shared.paging.card import card, escape
from shared.paging.links import incident_links
from shared.paging.routing import RoutingTable
from shared.ports import Chat, EffectQueue, IncidentStore, Pager
from shared.triage.policy import Policy

log = logging.getLogger(__name__)

NOTIFY_ATTEMPTS = 12  # a card may go stale after ~30 min of Slack trouble; a page never gives up
PAGE_WARN_EVERY = 5  # a page still failing after this many tries is written down and told to Slack
MAX_FAILURES = 20


class PoisonMessage(Exception):
    """A message that can never succeed; the queue dead-letters it after its retries."""


@dataclass(frozen=True)
class Backoff:
    """Delays between retries: doubling from `base` up to `cap`, with jitter; Retry-After wins."""

    base: float
    cap: float

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before the given attempt; never less than the service asked for."""
        if retry_after is not None:
            # Spread out, so the messages a 429 held back do not all come back in the same instant.
            return retry_after * random.uniform(1.0, 1.25)
        return min(self.cap, self.base * 2 ** min(attempt - 1, 30)) * random.uniform(0.8, 1.2)


class EffectWorker:
    """Turns an effect message into PagerDuty and Slack calls, and writes the outcome on the incident."""

    def __init__(
        self,
        store: IncidentStore,
        queue: EffectQueue,
        pager: Pager,
        chat: Chat,
        channels: RoutingTable,
        policy: Policy,
        clock: Clock,
        backoff: Backoff,
        runbook_base: str = "",
    ) -> None:
        self.store = store
        self.queue = queue
        self.outbox = Outbox(store, queue)
        self.pager = pager
        self.chat = chat
        self.channels = channels
        self.policy = policy
        self.clock = clock
        self.backoff = backoff
        self.runbook_base = runbook_base

    def handle(self, body: bytes) -> None:
        """Carry out one effect; raising makes the queue redeliver it."""
        effect = parse_effect(body)
        found = self.store.get(effect.incident_id)
        if found is None:
            raise PoisonMessage(f"{effect.kind} for unknown incident {effect.incident_id}")
        try:
            if effect.kind == "page":
                self._page(found.incident)
            elif effect.kind == "notify":
                self._notify(found.incident, effect)
            else:
                # Carrying actions out is the actions feature's job; until then they are suggestions.
                target = effect.target or "the resource"
                self._note(
                    found.incident.id,
                    "act",
                    f"Suggested first response: {effect.event} on {target} ({effect.mode})",
                )
        except Transient as e:
            self._retry_later(effect, e)
        except Rejected as e:
            self._give_up(effect, str(e), "Rejected")

    def _page(self, incident: Incident) -> None:
        desired = desired_page_state(incident, self.policy)
        if desired == incident.pagerduty_state:
            return  # PagerDuty already shows this: coalesced
        if desired == "resolved":
            route = incident.pagerduty_route
            line = self.pager.resolve(incident, route)
        else:
            route = incident.pagerduty_route or self.pager.route_for(incident)
            # Written before the call: if PagerDuty takes the trigger but its answer is lost, the
            # incident still knows a page may be out, and a later resolve goes to it.
            self._mark_page(incident.id, "triggering:" + desired.removeprefix("triggered:"), route)
            line = self.pager.trigger(
                incident, route, incident_links(incident, self.policy, self.runbook_base)
            )
        now = iso(self.clock())

        def paged(current: Incident) -> Change:
            updated = current.evolve(pagerduty_state=desired, pagerduty_route=route, updated_at=now)
            effects = [Effect("notify", current.id, f"paged-{desired}", current.severity.label, now)]
            if desired_page_state(updated, self.policy) != desired:
                # The incident moved on while we called (resolved in PagerDuty, raised again): go again.
                effects.append(
                    Effect("page", current.id, "converge", current.severity.label, now, detail=now)
                )
            return Change(updated, [TimelineEntry(now, "page", line)], effects)

        self.outbox.update(incident.id, paged)

    def _mark_page(self, incident_id: str, state: str, route: str) -> None:
        def mark(current: Incident) -> Change:
            return Change(current.evolve(pagerduty_state=state, pagerduty_route=route))

        self.outbox.update(incident_id, mark)

    def _notify(self, incident: Incident, effect: Effect) -> None:
        channel = incident.slack_channel or self._channel(incident)
        text, blocks = card(incident, incident_links(incident, self.policy, self.runbook_base))
        if incident.slack_ts:
            self.chat.update(channel, incident.slack_ts, text, blocks)
            ts = incident.slack_ts
        else:
            channel, ts = self.chat.post(channel, text, blocks)
            now = iso(self.clock())

            def posted(current: Incident) -> Change:
                line = f"Slack: card posted in {channel}"
                return Change(
                    current.evolve(slack_channel=channel, slack_ts=ts), [TimelineEntry(now, "notify", line)]
                )

            self.outbox.update(incident.id, posted)
        if effect.detail:
            self.chat.post(channel, escape(effect.detail), None, thread_ts=ts)

    def _channel(self, incident: Incident) -> str:
        route = self.channels.route(incident.tenant, incident.severity.label)
        channel = self.channels.target(route) if route else None
        if not channel:
            raise Rejected("no Slack channel fits this incident (set SLACK_CHANNEL)")
        return channel

    def _retry_later(self, effect: Effect, error: Transient) -> None:
        # A service that says when to come back (429 Retry-After, our own pacing) is holding us
        # back, not failing: that does not count as a try.
        held = error.retry_after is not None
        retry = effect.held_back() if held else effect.retry()
        attempt = retry.attempt
        if effect.kind == "notify" and attempt >= NOTIFY_ATTEMPTS:
            self._give_up(effect, f"{error} (gave up after {attempt} tries)", "MaxAttemptsExceeded")
            return
        delay = self.backoff.delay(max(attempt, 1), error.retry_after)
        log.warning(
            "%s for %s failed (try %d): %s; again in %.1fs",
            effect.kind,
            effect.incident_id,
            attempt,
            error,
            delay,
        )
        # A new message (its id counts the attempt, so duplicate detection keeps it), due later.
        self.queue.send([retry.to_message(self.clock() + timedelta(seconds=delay))])
        if effect.kind == "page" and not held and attempt % PAGE_WARN_EVERY == 0:
            self._record_failure(effect, f"page still failing after {attempt} tries, retrying: {error}")

    def _give_up(self, effect: Effect, reason: str, label: str) -> None:
        log.error("%s for %s failed for good: %s", effect.kind, effect.incident_id, reason)
        self._record_failure(effect, reason)
        # Also among the dead letters, where a person looking at what failed finds it with its reason.
        self.queue.dead_letter_message(effect.to_message(), label, reason)

    def _record_failure(self, effect: Effect, reason: str) -> None:
        now = iso(self.clock())
        text = f"{effect.kind} {effect.event}: {reason}"

        def failed(current: Incident) -> Change:
            # A failed card is not announced on Slack again: it is Slack that failed.
            tell = (
                []
                if effect.kind == "notify"
                else [
                    Effect(
                        "notify",
                        current.id,
                        "failure",
                        current.severity.label,
                        now,
                        detail=f":warning: {text}",
                    )
                ]
            )
            # The latest few: a long outage must not grow the incident without bound.
            updated = current.evolve(failures=(*current.failures, f"{now} {text}")[-MAX_FAILURES:])
            return Change(updated, [TimelineEntry(now, "failed", text)], tell)

        self.outbox.update(effect.incident_id, failed)

    def _note(self, incident_id: str, kind: str, text: str) -> None:
        self.store.add_timeline(incident_id, [TimelineEntry(iso(self.clock()), kind, text)])


def desired_page_state(incident: Incident, policy: Policy) -> str:
    """What PagerDuty should show for the incident now: "triggered:sevN", "resolved", or unchanged."""
    if incident.status == RESOLVED:
        # Anything but "never paged" may have reached PagerDuty ("triggering:" included): resolve it.
        return "resolved" if incident.pagerduty_state not in ("", "resolved") else incident.pagerduty_state
    if incident.severity in policy.paging:
        return f"triggered:{incident.severity.label}"
    return incident.pagerduty_state


def parse_effect(body: bytes) -> Effect:
    """Decode a queue message body; PoisonMessage if it is not an effect."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        effect = Effect.from_dict(data)
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise PoisonMessage(f"not an effect message: {e}") from e
    if effect.kind not in ("page", "notify", "act"):
        raise PoisonMessage(f"unknown effect kind {effect.kind!r}")
    return effect
