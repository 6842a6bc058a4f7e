"""Effects: the side effects triage decides on (page, notify, act), and the change that carries them."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from shared.domain.actions import session_of
from shared.domain.incidents import Incident, TimelineEntry


class EffectKind(enum.StrEnum):
    """What an effect does; each kind has its queue and its handler."""

    PAGE = "page"
    NOTIFY = "notify"
    ACT = "act"

    @property
    def queue(self) -> str:
        """The queue this kind travels on."""
        return QUEUES[self]


# One queue per kind, so a Slack outage never holds up a page, nor a stuck action a notification.
QUEUES = {EffectKind.PAGE: "pages", EffectKind.NOTIFY: "notifications", EffectKind.ACT: "actions"}
# PagerDuty webhook deliveries wait on their own queue, answered at once and applied in order.
PAGERDUTY_QUEUE = "pagerduty"
# Slack commands and button presses that the 3-second answer could not wait for.
CHATOPS_QUEUE = "chatops"


@dataclass(frozen=True)
class Effect:
    """One side effect for one incident; the same effect decided twice has the same message id."""

    kind: EffectKind
    incident_id: str
    # page: "trigger", "resolve", "converge"; act: the action; notify: what happened ("opened",
    # "severity", "resolved", "count-100", "paged-…", "pd:<event id>", "failure", "all-tenants")
    event: str
    severity: str
    at: str
    target: str = ""  # act: the resource acted on
    mode: str = ""  # act: auto / approve / suggest / dry-run
    detail: str = ""  # notify: the line for the card's thread (who acknowledged, PagerDuty's error, …)
    rule: str = ""  # act: the rule that asked for it
    params: str = ""  # act: the action's parameters as canonical JSON (templates filled in)
    attempt: int = 0  # failed tries so far; a retry is a new message, scheduled for later
    held: int = 0  # times a service asked us to come back later (429, pacing): not failures

    @property
    def queue(self) -> str:
        """The queue this kind of effect travels on."""
        return self.kind.queue

    @property
    def message_id(self) -> str:
        """Stable over retries, so the queue's duplicate detection drops a resend."""
        if self.kind is EffectKind.ACT:
            # (incident, action, target): a severity change or a second rule asking the same is one action.
            parts = [self.kind, self.incident_id, self.event, self.target.lower(), self.params]
        else:
            parts = [self.kind, self.incident_id, self.event, self.severity, self.target]
        if self.detail and self.kind is not EffectKind.ACT:
            parts.append(self.detail)
        if self.attempt or self.held:
            parts.append(f"attempt {self.attempt} held {self.held}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    @property
    def session_id(self) -> str:
        """Actions serialize per target resource; pages and notifications per incident, in order."""
        if self.kind is EffectKind.ACT and self.target:
            return session_of(self.target)
        return self.incident_id

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Effect:
        """Inverse of `to_dict`; KeyError/TypeError/ValueError on a malformed message."""
        special = ("kind", "attempt", "held")
        fields = {k: str(data[k]) for k in cls.__dataclass_fields__ if k in data and k not in special}
        return cls(
            kind=EffectKind(data["kind"]),
            **fields,
            attempt=int(data.get("attempt", 0)),
            held=int(data.get("held", 0)),
        )

    def retry(self) -> Effect:
        """The same effect after one more failed try."""
        return replace(self, attempt=self.attempt + 1)

    def held_back(self) -> Effect:
        """The same effect after a service asked us to wait (not a failure)."""
        return replace(self, held=self.held + 1)


@dataclass(frozen=True)
class Change:
    """What a decision does to an incident: its new state, the history to add, the effects to send."""

    incident: Incident
    timeline: Sequence[TimelineEntry] = ()
    effects: Sequence[Effect] = ()

    def staged(self) -> Incident:
        """The incident with the effects in its outbox, so they are stored with it before they are sent."""
        if not self.effects:
            return self.incident
        return self.incident.evolve(outbox=(*self.incident.outbox, *(e.to_dict() for e in self.effects)))
