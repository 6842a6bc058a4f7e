"""What Slack's /dr commands and buttons do, below the Slack edge (see /work/briefs/contract.md).

A person's action is the automatic path's: an action record planned by the person, guarded and
run by the action pipeline through the `actions` queue, once per request id. Acknowledge and
resolve change our incident (conditional commit and outbox, as PagerDuty's webhook does) and tell
PagerDuty by its REST API through the `pages` queue, retried until it takes it. Every operation
leaves its line (who, what, when, result) on the incident's timeline and/or the action record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from shared.actions import guardrails
from shared.actions.control import decide, set_paused
from shared.actions.kind import Target
from shared.actions.manual import (
    ACTIONS,
    Resolved,
    Unresolvable,
    manual_action_id,
    manual_incident,
    manual_mode,
    owner_of,
    resolve,
)
from shared.actions.pipeline import ActionPipeline
from shared.clock import Clock, iso
from shared.domain.actions import ActionRecord, ActionState, Actor
from shared.domain.incidents import ACKNOWLEDGED, OPEN, Incident, TimelineEntry
from shared.errors import BadInput, Conflict, Rejected
from shared.outbox import Outbox
from shared.paging.by_hand import acknowledged, resolved
from shared.ports import ActionStore, AutomationSwitch, IncidentStore, Versioned

log = logging.getLogger(__name__)

VERBS = ("failover", "rollback", "restart", "restore")
SYSTEMS = ("redis", "cosmos")
MAX_VALUE = 2000  # a Block Kit button's value
OPEN_SCAN = 1000  # open incidents looked at to resolve a target by name


class OperationRefused(Exception):
    """What a person asked cannot be done now; str(e) is the polite reason to show them."""


@dataclass(frozen=True)
class ActionRequest:
    """A person's /dr failover|rollback|restart|restore, before it is confirmed."""

    verb: str  # "failover" | "rollback" | "restart" | "restore"
    # failover: a name or ARM id; rollback|restart: "[<cluster>:]<ns>/<deploy>"; restore: "[<cluster>:]<ns>"
    target: str
    system: str = ""  # failover only: "redis" | "cosmos"
    revision: int | None = None  # rollback --to N
    backup: str | None = None  # restore --backup B

    def to_value(self) -> str:
        """Compact JSON, ≤ 2000 characters (a button's value)."""
        data = {k: v for k, v in asdict(self).items() if v not in (None, "")}
        text = json.dumps({"dr": 1, **data}, separators=(",", ":"), sort_keys=True)
        if len(text) > MAX_VALUE:
            raise OperationRefused(
                f"the target is too long for a button ({len(text)} > {MAX_VALUE} characters)"
            )
        return text

    @classmethod
    def from_value(cls, text: str) -> ActionRequest:
        """Inverse of `to_value`; OperationRefused when it is not one of ours."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError, TypeError):
            raise OperationRefused("that button does not carry a /dr request") from None
        if not isinstance(data, dict) or data.get("dr") != 1:
            raise OperationRefused("that button does not carry a /dr request")
        verb, target, system = data.get("verb"), data.get("target"), data.get("system", "")
        revision, backup = data.get("revision"), data.get("backup")
        if verb not in VERBS or not isinstance(target, str) or not target or not isinstance(system, str):
            raise OperationRefused("that button's /dr request is malformed")
        if (verb == "failover") != (system in SYSTEMS):
            raise OperationRefused("that button's /dr request is malformed")
        if revision is not None and (not isinstance(revision, int) or isinstance(revision, bool)):
            raise OperationRefused("that button's /dr request is malformed")
        if backup is not None and not isinstance(backup, str):
            raise OperationRefused("that button's /dr request is malformed")
        return cls(verb, target, system, revision, backup)

    @property
    def command(self) -> str:
        """As typed: "failover redis cache-1", "rollback shop/cart --to 3"."""
        words = [self.verb, self.system, self.target]
        if self.revision is not None:
            words.append(f"--to {self.revision}")
        if self.backup:
            words.append(f"--backup {self.backup}")
        return " ".join(w for w in words if w)


@dataclass(frozen=True)
class Preview:
    """Exactly what confirming would do, for the confirmation message."""

    request: ActionRequest
    summary: str  # one line a person reads first
    details: tuple[str, ...]  # action, resolved target, revision or backup, mode, guardrails, tenant
    refused: str = ""  # non-empty: why it cannot be done now (then no Confirm button)


@dataclass(frozen=True)
class _Planned:
    """A request resolved against the registry, the policy and what is open now."""

    resolved: Resolved
    record: ActionRecord  # as it would be stored (on a stand-in incident id until there is one)
    target: Target
    describe: str
    command: str


class Operations:
    """The /dr operations; each names its person and writes its audit line."""

    def __init__(
        self,
        pipeline: ActionPipeline,
        store: IncidentStore,
        actions: ActionStore,
        switch: AutomationSwitch,
        outbox: Outbox,
        clock: Clock,
        verbs: Mapping[tuple[str, str], str] = ACTIONS,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.actions = actions
        self.switch = switch
        self.outbox = outbox
        self.clock = clock
        self.verbs = verbs  # tests point a verb at their own action

    # ---- a person's actions ---------------------------------------------------------------

    def preview(self, request: ActionRequest) -> Preview:
        """What confirming would do now, and why it would be refused (then `refused` says so)."""
        planned = self._plan(request, Actor("(you)", "slack"), "preview")
        record, resolved_ = planned.record, planned.resolved
        details = [
            f"Action: {record.action} — {planned.describe}",
            f"Target: {record.target}",
            *(f"{name.replace('_', ' ').capitalize()}: {value}" for name, value in record.params.items()),
            f"By hand it is: `{planned.command}`",
            f"Mode: {record.mode} — {_MODES.get(record.mode, record.mode)}",
            "Guardrails (checked again when it runs): the kill switch, a cooldown of "
            f"{self._cooldown()} min per action and target, one action at a time per resource, the "
            "circuit breaker, and the action's own precondition",
            f"Incident: {resolved_.incident.id} ({resolved_.incident.title})"
            if resolved_.incident
            else "Incident: none is open on it, so one is opened for this request",
            f"Tenant: {record.tenant or 'unknown'}",
        ]
        refused = self._refusal(record)
        summary = f"{planned.describe} ({record.mode})"
        return Preview(request, summary, tuple(details), f"not now: {refused}" if refused else "")

    def confirm(self, request: ActionRequest, actor: Actor, request_id: str) -> ActionRecord:
        """The action record, planned by the person and woken on the `actions` queue, once per request_id."""
        found = self.actions.get_action(manual_action_id(request_id))
        if found is not None:  # Confirm pressed twice, or the request delivered again
            return self.pipeline.request_by_hand(found.record)
        planned = self._plan(request, actor, request_id)
        if refused := self._refusal(planned.record):
            incident = planned.resolved.incident
            if incident is not None:
                self._audit(incident.id, f"{actor} asked to {planned.describe}: refused: {refused}")
            raise OperationRefused(f"Not now: {refused}")
        incident = planned.resolved.incident or self._open_for(planned, actor, request_id)
        record = planned.record.evolve(incident_id=incident.id, tenant=incident.tenant.lower())
        return self.pipeline.request_by_hand(record)

    def approve(self, action_id: str, actor: Actor) -> ActionRecord:
        """Approve an action awaiting approval (then it runs, through the guardrails again)."""
        return self._decide(action_id, True, actor)

    def deny(self, action_id: str, actor: Actor) -> ActionRecord:
        """Deny an action awaiting approval."""
        return self._decide(action_id, False, actor)

    def incident_of(self, action_id: str) -> str | None:
        """The incident an action belongs to (None: no such action)."""
        found = self.actions.get_action(action_id)
        return found.record.incident_id if found else None

    # ---- incidents ------------------------------------------------------------------------

    def acknowledge(self, incident_id: str, actor: Actor) -> Incident:
        """Ours now, PagerDuty's through the `pages` queue (retried until it takes it)."""
        return self._change(incident_id, actor, "acknowledge", acknowledged)

    def resolve(self, incident_id: str, actor: Actor) -> Incident:
        """Ours now, PagerDuty's through the `pages` queue (retried until it takes it)."""
        return self._change(incident_id, actor, "resolve", resolved)

    # ---- the kill switch ------------------------------------------------------------------

    def pause(self, tenant: str, actor: Actor, reason: str) -> str:
        """Pause automation ("" tenant: everywhere); the line said."""
        line = set_paused(self.switch, True, tenant, actor, reason, self.clock)
        log.info("%s (%s)", line, reason or "no reason given")  # the pause itself keeps who, when, why
        return line

    def resume(self, tenant: str, actor: Actor) -> str:
        """Resume automation; the line said (also when it was not paused)."""
        line = set_paused(self.switch, False, tenant, actor, "", self.clock)
        log.info("%s", line)
        return line

    # ---- the parts ------------------------------------------------------------------------

    def _plan(self, request: ActionRequest, actor: Actor, request_id: str) -> _Planned:
        policy = self.pipeline.policy
        open_incidents = [
            *self.store.list_incidents(OPEN.value, None, OPEN_SCAN),
            *self.store.list_incidents(ACKNOWLEDGED.value, None, OPEN_SCAN),
        ]
        try:
            resolved_ = resolve(
                request.verb,
                request.system,
                request.target,
                request.revision,
                request.backup,
                open_incidents,
                policy,
                self.verbs,
            )
        except Unresolvable as e:
            raise OperationRefused(f"Cannot {request.command}: {e}") from None
        kind = self.pipeline.registry.get(resolved_.action)
        if kind is None:
            raise OperationRefused(f"Cannot {request.command}: {resolved_.action} is not set up here")
        now = iso(self.clock())
        incident = resolved_.incident
        reach = dict(policy.reach(resolved_.resource))
        target = Target(resolved_.resource, dict(resolved_.params), reach)
        record = ActionRecord(
            id=manual_action_id(request_id),
            incident_id=incident.id if incident else "",
            action=resolved_.action,
            target=resolved_.resource,
            mode=manual_mode(resolved_.action, incident, policy, kind.default_mode),
            state=ActionState.PLANNED,
            planned_by=actor,
            planned_at=now,
            updated_at=now,
            # No open incident yet: the tenant its incident will have, so a tenant's pause holds it too.
            tenant=(incident.tenant if incident else owner_of(resolved_.resource, policy).tenant).lower(),
            region=str(reach.get("region") or ""),
            params=dict(resolved_.params),
        )
        return _Planned(resolved_, record, target, kind.describe(target), kind.command(target))

    def _refusal(self, record: ActionRecord) -> str | None:
        """A pause stops a person's action too (say who paused it), then the pipeline's guardrails."""
        pauses = guardrails.History(self.switch.pauses(), (), (), automation_setting_on=True)
        if why := guardrails.kill_switch(record, pauses):
            return why + "; `/dr resume` lifts it"
        return self.pipeline.guardrail(record)

    def _open_for(self, planned: _Planned, actor: Actor, request_id: str) -> Incident:
        """The incident of a request no open incident is about (the one opened for it before, if any)."""
        now = iso(self.clock())
        change = manual_incident(
            planned.resolved, planned.describe, actor, request_id, now, self.pipeline.policy
        )
        staged = change.staged()
        try:
            etag = self.store.commit(staged, None, timeline=change.timeline)
        except Conflict:  # a request on the same resource opened it meanwhile
            existing = self.store.open_incident(change.incident.correlation_key)
            if existing is None:
                raise
            return existing.incident
        self.outbox.flush(Versioned(staged, etag))
        return staged

    def _decide(self, action_id: str, approve: bool, actor: Actor) -> ActionRecord:
        verb = "approve" if approve else "deny"
        try:
            return decide(self.pipeline, action_id, approve, actor)
        except BadInput as e:
            if e.status == 404:
                raise OperationRefused(f"There is no action {action_id}") from None
            record = self.actions.get_action(action_id)
            reason = _decided(record.record) if record else str(e)
            if record is not None:
                self._audit(
                    record.record.incident_id, f"{actor} tried to {verb} {action_id}: refused: {reason}"
                )
            raise OperationRefused(f"Cannot {verb} {action_id}: {reason}") from None

    def _change(self, incident_id: str, actor: Actor, verb: str, change: Any) -> Incident:
        now = iso(self.clock())
        if self.store.get(incident_id) is None:
            raise OperationRefused(f"There is no incident {incident_id}")
        try:
            updated = self.outbox.update(incident_id, lambda incident: change(incident, str(actor), now))
        except Rejected as e:
            self._audit(incident_id, f"{actor} tried to {verb} it: refused: {e}")
            raise OperationRefused(f"Cannot {verb} {incident_id}: {e}") from None
        if updated is None:
            raise OperationRefused(f"There is no incident {incident_id}")
        return updated

    def _audit(self, incident_id: str, line: str) -> None:
        """A refused request is on the timeline too (who asked what, when, and why it was refused)."""
        if incident_id:
            self.store.add_timeline(incident_id, [TimelineEntry(iso(self.clock()), "slack", line)])

    def _cooldown(self) -> int:
        return self.pipeline.policy.guardrails.cooldown_minutes


_MODES = {
    "auto": "runs as soon as it is confirmed",
    "approve": "needs approval: Approve / Deny in the incident's thread (the request expires)",
    "dry-run": "a dry-run: it records what it would do and changes nothing",
}


def _decided(record: ActionRecord) -> str:
    """Who decided the action and when, as a second press is told."""
    if record.state is ActionState.EXPIRED:
        return f"the request expired at {record.expires_at} before anyone decided"
    if record.approved_by is not None:
        return f"it was approved by {record.approved_by} (it is {record.state} since {record.updated_at})"
    if record.state is ActionState.DENIED:
        return f"it was {record.result} at {record.updated_at}"
    return f"it is {record.state}, not awaiting approval ({record.result or 'no decision asked'})"
