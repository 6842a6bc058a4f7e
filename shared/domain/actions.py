"""A first-response action as a record of its own, and the only transitions its state may take.

    planned ──► awaiting approval ──► approved ──► running ──► succeeded | failed
       │              │                              (skipped: the check said it was not needed)
       │              ├──► denied | expired
       └──► running (auto) ; any state before running ──► refused (a guardrail said no)

Every transition names its actor (the automation and its rule, or a person and through what), so an
audit tells them apart, and yields the timeline line that goes with it. Stores write a transition
as one conditional write; a redelivered message that finds its action running or finished
verifies or reports instead of running it again.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.domain.incidents import TimelineEntry
from shared.errors import Rejected


class ActionState(enum.StrEnum):
    """Where an action stands."""

    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting approval"
    APPROVED = "approved"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    REFUSED = "refused"
    EXPIRED = "expired"
    DENIED = "denied"

    @property
    def final(self) -> bool:
        """Nothing more happens to the action."""
        return not _NEXT[self]


_NEXT: dict[ActionState, frozenset[ActionState]] = {
    ActionState.PLANNED: frozenset(
        {ActionState.AWAITING_APPROVAL, ActionState.RUNNING, ActionState.SKIPPED, ActionState.REFUSED}
    ),
    ActionState.AWAITING_APPROVAL: frozenset(
        {ActionState.APPROVED, ActionState.DENIED, ActionState.EXPIRED, ActionState.REFUSED}
    ),
    ActionState.APPROVED: frozenset({ActionState.RUNNING, ActionState.SKIPPED, ActionState.REFUSED}),
    ActionState.RUNNING: frozenset({ActionState.SUCCEEDED, ActionState.FAILED}),
    ActionState.SUCCEEDED: frozenset(),
    ActionState.FAILED: frozenset(),
    ActionState.SKIPPED: frozenset(),
    ActionState.REFUSED: frozenset(),
    ActionState.EXPIRED: frozenset(),
    ActionState.DENIED: frozenset(),
}


class InvalidTransition(Rejected):
    """The action cannot go from its state to the one asked (approving a denied one, running twice)."""


@dataclass(frozen=True)
class Actor:
    """Who moved an action: the automation (and which rule), or a person (and through what)."""

    name: str  # "automation" or the person
    via: str  # the rule id for the automation; "api", "cli", "pagerduty", "slack" for a person

    def __str__(self) -> str:
        return f"{self.name} (rule {self.via})" if self.name == AUTOMATION else f"{self.name} via {self.via}"


AUTOMATION = "automation"


@dataclass(frozen=True)
class ActionRecord:
    """One action on one target for one incident, with its history's outcome."""

    id: str
    incident_id: str
    action: str  # the registry's name: "redis.failover", "kubernetes.rollback", …
    target: str
    mode: str  # auto / approve / suggest / dry-run
    state: ActionState
    planned_by: Actor
    planned_at: str
    updated_at: str
    approved_by: Actor | None = None
    attempts: int = 0  # executions started: more than one means a takeover after a crash
    # What a long operation needs to be checked on later (an LRO's polling URL, an old master).
    continuation: Mapping[str, Any] = field(default_factory=dict)
    result: str = ""  # what happened, as a person reads it

    def moved(
        self, to: ActionState, actor: Actor, now: str, detail: str = ""
    ) -> tuple[ActionRecord, TimelineEntry]:
        """The record after a transition, and its timeline line; InvalidTransition when not allowed."""
        if to not in _NEXT[self.state]:
            raise InvalidTransition(
                f"action {self.id} ({self.action} on {self.target}) is {self.state}, cannot be {to}"
            )
        changes: dict[str, Any] = {"state": to, "updated_at": now}
        if to is ActionState.APPROVED:
            changes["approved_by"] = actor
        if to is ActionState.RUNNING:
            changes["attempts"] = self.attempts + 1
        if detail:
            changes["result"] = detail
        line = f"{self.action} on {self.target}: {to} by {actor}" + (f": {detail}" if detail else "")
        return replace(self, **changes), TimelineEntry(now, "action", line)


def action_id(incident_id: str, action: str, target: str) -> str:
    """Stable over redeliveries: the same action on the same target for one incident is one record."""
    digest = hashlib.sha256(f"{incident_id}\n{action}\n{target.lower()}".encode()).hexdigest()[:16]
    return f"act-{digest}"
