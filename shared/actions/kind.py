"""What every action is to the pipeline: a precondition, an execute step and a check, on a target.

The pipeline (guardrails → precondition → execute → verify → record) is the same for every action;
an `ActionKind` supplies only the steps that talk to a vendor, each behind a small port of its
family's module. Steps never wait on a long operation: `execute` starts it and returns a
continuation, and the pipeline calls `check` later (a scheduled message) until it is done.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.errors import Rejected


@dataclass(frozen=True)
class Target:
    """What one action acts on, and how to reach it."""

    # The resource the action acts on: an ARM id, or a name that `[targets."<name>"]` describes.
    # Actions on one resource never run at once (the queue's session is this resource).
    resource: str
    # What the rule's templates made of the signal: deployment = "shop/cart", region = "West Europe".
    params: Mapping[str, Any] = field(default_factory=dict)
    # How to reach the resource, from `[targets."<resource name>"]`: empty means through ARM;
    # `sentinels` and `master` for a self-hosted Redis, `kubeconfig` and `context` for a cluster.
    reach: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str, default: Any = None) -> Any:
        """One parameter, or the default when the rule did not give it."""
        return self.params.get(name, default)


@dataclass(frozen=True)
class Context:
    """What the steps may know about the incident and the action they act for."""

    incident_id: str
    incident_opened_at: datetime
    now: datetime
    # The action's id: execute may stamp it on what it changes, for a later precondition to find.
    action_id: str = ""
    # Set only when the precondition is asked again about a start whose outcome nobody knows (its
    # answer was lost, or its worker died): the `found` that start was given. The precondition then
    # looks for that start's own change and answers STARTED when it took effect or is under way.
    started: Mapping[str, Any] | None = None


class Verdict(enum.StrEnum):
    """What a precondition found."""

    PROCEED = "proceed"
    SKIP = "skip"  # not needed: the platform healed itself, the template already matches, …
    REFUSE = "refuse"  # not safe: paused, the secondary unhealthy, no backup, …
    # Only with `Context.started`: that start took effect or is under way; `found` is the
    # continuation its check needs. It is checked, never started again.
    STARTED = "started"


@dataclass(frozen=True)
class Precheck:
    """A precondition's finding, as a person reads it (it goes into the approval request too)."""

    verdict: Verdict
    detail: str
    # What execute will need, found while checking (the backup a restore picked, the old master).
    found: Mapping[str, Any] = field(default_factory=dict)


class Progress(enum.StrEnum):
    """Where a started operation stands."""

    PENDING = "pending"  # check again after `check_after` seconds
    DONE = "done"  # finished, and the action's own check passed (roles swapped, rollout complete)
    FAILED = "failed"


@dataclass(frozen=True)
class Step:
    """What execute or check found."""

    progress: Progress
    detail: str
    # What a later check needs (an LRO's polling URL, the old master, the revision rolled back to).
    continuation: Mapping[str, Any] = field(default_factory=dict)
    check_after: float = 15.0  # seconds; the pipeline keeps it within 10–30 s


@dataclass(frozen=True)
class Param:
    """One parameter a rule may give an action: a template string, or a literal of a type."""

    required: bool = False
    kind: type = str  # str is a template over the signal; int, bool, list are literals
    help: str = ""
    # Names the part of the target the action changes (a Deployment, a namespace, "ns/name"): the
    # guardrails that hold a target (one at a time, cooldown, circuit breaker) then hold only that
    # part, and what holds the whole target, or a part containing it, still holds it.
    narrows: bool = False


class ActionFailed(Rejected):
    """The vendor refused or the operation failed for good: the action is failed, not retried.

    Steps raise `shared.errors.Transient` (with retry_after) for a 429, a 5xx, a 409 "another
    operation is in progress" or an unreachable endpoint: the pipeline tries the step again later.
    Execute's call that may have been taken although its answer was lost raises
    `shared.errors.OutcomeUnknown`: the pipeline then asks the precondition before anything else.
    """


class ActionKind(Protocol):
    """One registered action: `redis.failover`, `kubernetes.rollback`, …"""

    name: str
    default_mode: str  # what a person's command gets when no rule says (approve for failovers)
    params: Mapping[str, Param]
    timeout_minutes: int  # after this a started operation that is not done is failed

    def describe(self, target: Target) -> str:
        """What it will do, for the approval request and the dry-run record."""
        ...

    def command(self, target: Target) -> str:
        """The exact command a person would run instead (`az …`, `kubectl …`), for suggest mode."""
        ...

    def precondition(self, target: Target, context: Context) -> Precheck:
        """Is it still needed, and is it safe? Reads only.

        With `context.started` it is asked about a start whose outcome is unknown, once an accepted
        call has had time to show: STARTED when that start's change (or the platform busy with it)
        shows; PROCEED only when what it reads would show that change and does not; REFUSE when it
        has nothing to look at (a second start on a maybe is never made).
        """
        ...

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        """Start it (the one call that changes the target); never waits for a long operation."""
        ...

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        """Is it done, and did it work (the check `kubectl rollout status` or the role swap is)?"""
        ...
