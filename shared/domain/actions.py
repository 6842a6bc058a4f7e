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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
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

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"name": self.name, "via": self.via}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actor:
        """Inverse of `to_dict`."""
        return cls(str(data["name"]), str(data["via"]))

    def is_person(self, who: str) -> bool:
        """`who` (a name, or an actor as text: "ada (U0ADA) via slack") is this person, by any door."""
        return self.name != AUTOMATION and _person_key(self.name) == _person_key(who)


AUTOMATION = "automation"
_USER_ID = re.compile(r"\(([A-Z0-9]{2,})\)")  # Slack names a person "ada (U0ADA)": the id is who it is


def _person_key(who: str) -> str:
    # The last id, the one the desk appends: a name that holds one of its own ("bob (U0EVE)") must
    # not pass for someone else, nor make its bearer a stranger to their own request.
    if found := _USER_ID.findall(who.strip().rsplit(" via ", 1)[0]):
        return str(found[-1]).lower()
    return who.strip().rsplit(" via ", 1)[0].lower()


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
    rule: str = ""  # the rule that asked for it ("" when a person did)
    tenant: str = ""
    region: str = ""  # for the per-region cap; "" when the target does not say
    params: Mapping[str, Any] = field(default_factory=dict)
    approved_by: Actor | None = None
    attempts: int = 0  # executions started: more than one means a takeover (a crash, a lost answer)
    # What a long operation needs to be checked on later (an LRO's polling URL, an old master),
    # and where the pipeline is with it: {"phase": "starting" | "operating" | "settling", …}.
    continuation: Mapping[str, Any] = field(default_factory=dict)
    request: str = ""  # the approval request: what it will do, what the check found, when it expires
    expires_at: str = ""  # an approval request lapses then
    started_at: str = ""  # the first execute
    result: str = ""  # what happened, as a person reads it

    @property
    def wake(self) -> Wake | None:
        """The message the last write that meant one sent to go on from it (None: none is awaited)."""
        return Wake.from_value(self.continuation.get(WAKE))

    @property
    def wake_at(self) -> str:
        """When a message must have come for this record by, "" when none must: the wake's time
        while it is not final; a final one's while its escalation is pending (then it must still
        page). What a sweep looks for, past a margin, to send again what was lost."""
        wake = self.wake
        if self.state.final:
            if ESCALATION_PENDING not in self.continuation:
                return ""
            return wake.at if wake else self.updated_at
        return wake.at if wake else ""

    @property
    def automatic(self) -> bool:
        """Started by a rule without a person (what the rate caps and the kill switch count)."""
        return self.mode == "auto" and self.planned_by.name == AUTOMATION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the public one, and the stored one)."""
        data = {name: getattr(self, name) for name in _FIELDS}
        data["state"] = self.state.value
        data["planned_by"] = self.planned_by.to_dict()
        data["approved_by"] = self.approved_by.to_dict() if self.approved_by else None
        data["params"] = dict(self.params)
        data["continuation"] = dict(self.continuation)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionRecord:
        """Inverse of `to_dict`; unknown fields (a newer release's) are ignored."""
        fields_ = {k: v for k, v in data.items() if k in _FIELDS}
        fields_["state"] = ActionState(fields_["state"])
        fields_["planned_by"] = Actor.from_dict(fields_["planned_by"])
        approved = fields_.get("approved_by")
        fields_["approved_by"] = Actor.from_dict(approved) if approved else None
        return cls(**fields_)

    def evolve(self, **changes: Any) -> ActionRecord:
        """A copy with changes that are not a transition (the continuation of a running action)."""
        return replace(self, **changes)

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
            changes["started_at"] = self.started_at or now
        if detail:
            changes["result"] = detail
        line = f"{self.action} on {self.target}: {to} by {actor}" + (f": {detail}" if detail else "")
        return replace(self, **changes), TimelineEntry(now, "action", line)


_FIELDS = tuple(f.name for f in fields(ActionRecord))


def action_id(incident_id: str, action: str, target: str, params: str = "") -> str:
    """Stable over redeliveries: the same action on the same target for one incident is one record."""
    text = f"{incident_id}\n{action}\n{target.lower()}" + (f"\n{params}" if params else "")
    return "act-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def session_of(resource: str) -> str:
    """The queue session of a resource: actions on one resource never run at once."""
    # Service Bus session ids are at most 128 characters; ARM ids are often longer.
    return "resource-" + hashlib.sha256(resource.lower().encode()).hexdigest()[:32]


STEPS = ("run", "check", "expire")


@dataclass(frozen=True)
class ActionStep:
    """A message of the pipeline to itself: run an approved action, check a running one, expire one."""

    action_id: str
    step: str  # "run" | "check" | "expire"
    resource: str
    seq: int = 0  # one more per check, so the queue's duplicate detection keeps each

    @property
    def message_id(self) -> str:
        """Stable for one step, so a resend is dropped."""
        return hashlib.sha256(f"{self.action_id}|{self.step}|{self.seq}".encode()).hexdigest()[:32]

    @property
    def session_id(self) -> str:
        """The resource's session, like the action's first message."""
        return session_of(self.resource)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"action_id": self.action_id, "step": self.step, "resource": self.resource, "seq": self.seq}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionStep:
        """Inverse of `to_dict`; KeyError/TypeError/ValueError when malformed."""
        step = str(data["step"])
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}")
        return cls(str(data["action_id"]), step, str(data["resource"]), int(data.get("seq", 0)))


ESCALATION_PENDING = "escalation_pending"  # on a final record: why it must still page
WAKE = "wake"  # in the continuation: the message sent to go on from this write (a `Wake`)


@dataclass(frozen=True)
class Wake:
    """The message a write of the record was followed by, written in that same write: which step,
    its sequence (so its message id, see `ActionStep`) and when it was due. A record whose wake is
    long past due, and which has not changed since, lost it (the sender died, or its send failed)."""

    step: str  # "run" | "check" | "expire"
    seq: int
    at: str  # ISO time it is due (when it was sent again, if `resent`)
    resent: int = 0  # times a sweep sent it again

    def message(self, record: ActionRecord) -> ActionStep:
        """The step that wakes the record: the same message id each time it is sent."""
        return ActionStep(record.id, self.step, record.target, self.seq)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the continuation keeps it."""
        data: dict[str, Any] = {"step": self.step, "seq": self.seq, "at": self.at}
        return data | ({"resent": self.resent} if self.resent else {})

    @classmethod
    def from_value(cls, value: Any) -> Wake | None:
        """The wake a continuation holds; None when there is none, or not one this release reads."""
        if not isinstance(value, Mapping):
            return None
        step, seq, at, resent = value.get("step"), value.get("seq"), value.get("at"), value.get("resent", 0)
        if step not in STEPS or not isinstance(at, str) or not at:
            return None
        if not isinstance(seq, int) or not isinstance(resent, int):
            return None
        return cls(str(step), seq, at, resent)


@dataclass(frozen=True)
class Pause:
    """The kill switch of one scope: every tenant ("") or one tenant."""

    tenant: str  # "" = all of automation
    by: str  # who paused it, and through what ("alice via cli")
    at: str
    reason: str = ""

    @property
    def scope(self) -> str:
        """As a person reads it."""
        return f"tenant {self.tenant}" if self.tenant else "all tenants"
