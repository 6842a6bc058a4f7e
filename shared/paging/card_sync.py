"""Card sync: makes the incident's Slack card show the incident as it is now, and adds thread lines.

A card is posted once and then edited; each effect with a `detail` adds a line in its thread.
A card may go stale after about 30 minutes of Slack trouble: then it is given up on and
dead-lettered with the reason, where `dr dead-letters` finds it and `dr replay` sends it again.
"""

from __future__ import annotations

from typing import Any

from shared.clock import Clock, iso
from shared.domain.actions import ActionState
from shared.domain.effects import Change, Effect, EffectKind
from shared.domain.incidents import Incident, TimelineEntry
from shared.errors import Rejected
from shared.outbox import Outbox
from shared.paging.approval import approval_request
from shared.paging.card import card, escape
from shared.paging.links import incident_links
from shared.paging.routing import RoutingTable
from shared.ports import ActionStore, Chat
from shared.retries import EffectRunner, RetryRule
from shared.triage.policy import Policy

CARD_RETRIES = RetryRule(give_up_after=12)
APPROVAL = "approval"  # the notify event of an action that asks a person to approve it


class CardSync:
    """Handles the `notifications` queue."""

    def __init__(
        self,
        runner: EffectRunner,
        outbox: Outbox,
        chat: Chat,
        channels: RoutingTable,
        policy: Policy,
        clock: Clock,
        runbook_base: str = "",
        actions: ActionStore | None = None,
    ) -> None:
        self.actions = actions  # approval requests are posted with Approve / Deny from the record
        self.runner = runner
        self.outbox = outbox
        self.chat = chat
        self.channels = channels
        self.policy = policy
        self.clock = clock
        self.runbook_base = runbook_base

    def handle(self, body: bytes) -> None:
        """Carry out one notification message; raising makes the queue redeliver it."""
        self.runner.run(body, EffectKind.NOTIFY, CARD_RETRIES, self._sync)

    def _sync(self, effect: Effect, incident: Incident) -> None:
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
        approval = self._awaiting(effect.target, effect.detail) if effect.event == APPROVAL else None
        if approval is not None:
            self.chat.post(channel, approval[0], approval[1], thread_ts=ts)
        elif effect.detail:
            self.chat.post(channel, escape(effect.detail), None, thread_ts=ts)

    def _awaiting(self, action_id: str, line: str) -> tuple[str, list[dict[str, Any]]] | None:
        """The approval request of an action still awaiting a decision (else the plain line is posted)."""
        found = self.actions.get_action(action_id) if self.actions is not None else None
        if found is None or found.record.state is not ActionState.AWAITING_APPROVAL:
            return None
        return approval_request(found.record, line)

    def _channel(self, incident: Incident) -> str:
        route = self.channels.route(incident.tenant, incident.severity.label)
        channel = self.channels.target(route) if route else None
        if not channel:
            raise Rejected("no Slack channel fits this incident (set SLACK_CHANNEL)")
        return channel
