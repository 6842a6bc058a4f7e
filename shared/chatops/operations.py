"""What Slack's /dr commands and buttons do, below the Slack edge (see /work/briefs/contract.md).

A person's action is the automatic path's: an action record planned by the person, guarded and
run by the action pipeline through the `actions` queue, once per request id. Acknowledge and
resolve change our incident (conditional commit and outbox, as PagerDuty's webhook does) and tell
PagerDuty by its REST API through the `pages` queue, retried until it takes it. Every operation
leaves its line (who, what, when, result) on the incident's timeline and/or the action record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
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
CONFIRM_MINUTES = 15  # a confirmation older than this is refused: what it showed may no longer hold
CANCELLED = "cancelled"  # the continuation key of a cancelled request's tombstone
_SEAL = re.compile(r"(?:[0-9a-f]{32})?")  # what _seal writes (or nothing: unsealed, refused later)
# What a person must read before they confirm, beside what the action's own description says.
WARNINGS = {
    ("failover", "cosmos"): "Warning: a forced failover may lose writes not yet replicated to the other "
    "regions (the account's consistency level and replication lag decide how many)",
}


class OperationRefused(Exception):
    """What a person asked cannot be done now; str(e) is the polite reason to show them."""


@dataclass(frozen=True)
class Binding:
    """What a preview showed, sealed by the responder: Confirm does exactly this, or nothing."""

    action: str
    resource: str  # the resolved ARM id (the cluster, for a rollback, restart or restore)
    params: Mapping[str, Any]  # deployment, namespace, revision, backup, …
    mode: str
    incident: str  # "" when none was open (one is opened on confirm)
    tenant: str
    at: int  # when it was shown (epoch seconds)
    seal: str = ""  # HMAC over the request and all of the above, by the responder's key

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Any) -> Binding:
        """Inverse of `to_dict`; OperationRefused when it is not one of ours."""
        if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
            raise OperationRefused("that button's /dr request is malformed")
        texts = ("action", "resource", "mode", "incident", "tenant", "seal")
        if not all(isinstance(data.get(k), str) for k in texts) or not _SEAL.fullmatch(data["seal"]):
            raise OperationRefused("that button's /dr request is malformed")
        at = data.get("at")
        if not isinstance(at, int) or isinstance(at, bool):
            raise OperationRefused("that button's /dr request is malformed")
        return cls(
            data["action"],
            data["resource"],
            dict(data["params"]),
            data["mode"],
            data["incident"],
            data["tenant"],
            at,
            data["seal"],
        )

    def differs(self, other: Binding) -> list[str]:
        """What changed from this preview to `other` (the same request resolved now), as a person reads it."""
        said = {
            "action": (self.action, other.action),
            "target": (self.resource, other.resource),
            "parameters": (
                json.dumps(dict(self.params), sort_keys=True),
                json.dumps(dict(other.params), sort_keys=True),
            ),
            "mode": (self.mode, other.mode),
            "incident": (self.incident or "none open", other.incident or "none open"),
            "tenant": (self.tenant or "unknown", other.tenant or "unknown"),
        }
        return [f"{name}: {was} → {now}" for name, (was, now) in said.items() if was.lower() != now.lower()]


@dataclass(frozen=True)
class ActionRequest:
    """A person's /dr failover|rollback|restart|restore, before it is confirmed."""

    verb: str  # "failover" | "rollback" | "restart" | "restore"
    # failover: a name or ARM id; rollback|restart: "[<cluster>:]<ns>/<deploy>"; restore: "[<cluster>:]<ns>"
    target: str
    system: str = ""  # failover only: "redis" | "cosmos"
    revision: int | None = None  # rollback --to N
    backup: str | None = None  # restore --backup B
    # What the preview showed, sealed (its buttons carry it back); not part of what was asked.
    bound: Binding | None = field(default=None, compare=False)

    def to_value(self) -> str:
        """Compact JSON, ≤ 2000 characters (a button's value)."""
        data: dict[str, Any] = {k: v for k, v in self.typed().items() if v not in (None, "")}
        if self.bound is not None:
            data["bound"] = self.bound.to_dict()
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
        bound = Binding.from_dict(data["bound"]) if "bound" in data else None
        return cls(verb, target, system, revision, backup, bound)

    def typed(self) -> dict[str, Any]:
        """What the person typed (without what the preview bound)."""
        return {
            "verb": self.verb,
            "target": self.target,
            "system": self.system,
            "revision": self.revision,
            "backup": self.backup,
        }

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
        seal_key: str = "",
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.actions = actions
        self.switch = switch
        self.outbox = outbox
        self.clock = clock
        self.verbs = verbs  # tests point a verb at their own action
        # Seals what a confirmation showed. Without a key of its own (the Slack signing secret) each
        # process makes one: a confirmation shown by another is then refused, never believed.
        secret = seal_key.encode() if seal_key else secrets.token_bytes(32)
        self._key = hmac.new(secret, b"dr-confirmation-v1", hashlib.sha256).digest()

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
            *([warning] if (warning := WARNINGS.get((request.verb, request.system))) else []),
        ]
        refused = self._refusal(record)
        summary = f"{planned.describe} ({record.mode})"
        bound = replace(request, bound=self._sealed(request, self._binding(planned)))
        return Preview(bound, summary, tuple(details), f"not now: {refused}" if refused else "")

    def confirm(self, request: ActionRequest, actor: Actor, request_id: str) -> ActionRecord:
        """The action the confirmation showed, planned by the person and woken on the `actions` queue,
        once per request_id; refused when it was cancelled, is stale, or would now do something else."""
        found = self.actions.get_action(manual_action_id(request_id))
        if found is not None:  # Confirm pressed twice, or the request delivered again, or cancelled
            return self._confirmed(self.pipeline.request_by_hand(found.record))
        shown = self._verified(request)
        planned = self._plan(request, actor, request_id)
        incident = planned.resolved.incident
        if changed := shown.differs(self._binding(planned)):
            self._audit(
                incident.id if incident else shown.incident,
                f"{actor} confirmed {request.command}: refused: the target changed ({'; '.join(changed)})",
            )
            raise OperationRefused(
                f"The target changed since you were asked ({'; '.join(changed)}): run the command again"
            )
        if refused := self._refusal(planned.record):
            if incident is not None:
                self._audit(incident.id, f"{actor} asked to {planned.describe}: refused: {refused}")
            raise OperationRefused(f"Not now: {refused}")
        incident = incident or self._open_for(planned, actor, request_id)
        record = planned.record.evolve(incident_id=incident.id, tenant=incident.tenant.lower())
        if refused := self._refusal(record):  # the incident's tenant may be paused (its owner now known)
            self._audit(incident.id, f"{actor} asked to {planned.describe}: refused: {refused}")
            raise OperationRefused(f"Not now: {refused}")
        return self._confirmed(self.pipeline.request_by_hand(record))

    def cancel(self, request: ActionRequest, actor: Actor, request_id: str) -> str:
        """Cancel the confirmation (one conditional write on its request id, so no later Confirm runs);
        the line said. OperationRefused "too late" when it was confirmed first."""
        action_id = manual_action_id(request_id)
        now = iso(self.clock())
        bound = self._trusted(request)
        line = f"cancelled by {actor} at {now}: nothing was done"
        tombstone = ActionRecord(
            id=action_id,
            incident_id=bound.incident if bound else "",
            action=bound.action if bound else f"(/dr {request.verb})",
            target=bound.resource if bound else request.target,
            mode=bound.mode if bound else "",
            state=ActionState.SKIPPED,
            planned_by=actor,
            planned_at=now,
            updated_at=now,
            tenant=bound.tenant if bound else "",
            params=dict(bound.params) if bound else {},
            continuation={CANCELLED: True},
            result=line,
        )
        where = f"{tombstone.action} on {tombstone.target}: "
        timeline = [TimelineEntry(now, "action", where + line)] if tombstone.incident_id else []
        if self.actions.create_action(tombstone, timeline) is not None:
            return f"Cancelled by {actor} at {now}: nothing was done"
        found = self.actions.get_action(action_id)
        if found is None:  # cannot be: create_action found it
            raise OperationRefused("That confirmation changed while it was cancelled: look at /dr status")
        record = found.record
        if record.continuation.get(CANCELLED):
            return f"Already {record.result}"
        self._audit(
            record.incident_id,
            f"{actor} pressed Cancel on {record.id} at {now}: too late, it is {record.state}",
        )
        after = (
            f"`/dr deny {record.id}` stops it"
            if record.state is ActionState.AWAITING_APPROVAL
            else "wait for it"
            if not record.state.final
            else "it is over"
        )
        raise OperationRefused(
            f"Too late: {record.id} was confirmed by {record.planned_by} and is {record.state}; {after}"
        )

    def approve(self, action_id: str, actor: Actor) -> ActionRecord:
        """Approve an action awaiting approval (then it runs, guarded again); never by who asked for it."""
        found = self.actions.get_action(action_id)
        if found is not None and found.record.state is ActionState.AWAITING_APPROVAL:
            record = found.record
            if record.planned_by.is_person(str(actor)):  # four eyes: the one who asked does not approve
                why = "you asked for it; someone else on the allowlist or on call must approve it"
                self._audit(record.incident_id, f"{actor} tried to approve {action_id}: refused: {why}")
                raise OperationRefused(f"Cannot approve {action_id}: {why}")
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
        return self.acknowledge_approving(incident_id, actor)[0]

    def acknowledge_approving(
        self, incident_id: str, actor: Actor
    ) -> tuple[Incident, tuple[ActionRecord, ...]]:
        """Acknowledge, and approve (as this person) what waits on it under `approve_on_ack = true`."""
        incident = self._change(incident_id, actor, "acknowledge", acknowledged)
        if not any(plan.approve_on_ack for plan in self.pipeline.policy.actions()):
            return incident, ()
        return incident, tuple(self.pipeline.approve_on_ack(incident_id, actor.name, actor.via))

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
        paused = self.switch.pauses()
        pauses = guardrails.History(paused, (), (), automation_setting_on=True)
        if why := guardrails.kill_switch(record, pauses):
            return why + "; `/dr resume` lifts it"
        if not record.tenant and paused:
            # Whose it is is not known (no open incident names it, and its name does not follow the
            # naming convention): it may be a paused tenant's, so it waits like one.
            tenants = ", ".join(sorted(p.tenant or "every tenant" for p in paused))
            return (
                f"automation is paused ({tenants}) and the tenant of {record.target} is not known;"
                " `/dr resume` lifts it"
            )
        return self.pipeline.guardrail(record)

    def _binding(self, planned: _Planned) -> Binding:
        """What a preview of `planned` binds (unsealed), to compare with what the confirmation showed."""
        record, incident = planned.record, planned.resolved.incident
        at = int(self.clock().timestamp())
        return Binding(
            record.action,
            record.target,
            dict(record.params),
            record.mode,
            incident.id if incident else "",
            record.tenant,
            at,
        )

    def _sealed(self, request: ActionRequest, binding: Binding) -> Binding:
        return replace(binding, seal=self._seal(request, binding))

    def _seal(self, request: ActionRequest, binding: Binding) -> str:
        unsealed = {**replace(binding, seal="").to_dict(), "request": request.typed()}
        text = json.dumps(unsealed, separators=(",", ":"), sort_keys=True).encode()
        return hmac.new(self._key, text, hashlib.sha256).hexdigest()[:32]

    def _trusted(self, request: ActionRequest) -> Binding | None:
        """What the confirmation showed, when the responder sealed it (else None: believe nothing)."""
        bound = request.bound
        if bound is None or not hmac.compare_digest(bound.seal.encode(), self._seal(request, bound).encode()):
            return None
        return bound

    def _verified(self, request: ActionRequest) -> Binding:
        """What the confirmation showed: sealed by us, and no older than CONFIRM_MINUTES."""
        bound = self._trusted(request)
        if bound is None:
            raise OperationRefused(
                "That confirmation was not made by this responder (or it is from an older version): "
                f"run `/dr {request.command}` again"
            )
        shown = datetime.fromtimestamp(bound.at, UTC)
        if self.clock() - shown > timedelta(minutes=CONFIRM_MINUTES):
            raise OperationRefused(
                f"That confirmation was shown at {iso(shown)}, more than {CONFIRM_MINUTES} minutes ago: "
                f"run `/dr {request.command}` again"
            )
        return bound

    def _confirmed(self, record: ActionRecord) -> ActionRecord:
        """The confirmed record; OperationRefused when the request was cancelled first."""
        if record.continuation.get(CANCELLED):
            raise OperationRefused(f"Not done: it was {record.result}")
        return record

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
    "approve": "needs approval: Approve / Deny in the incident's thread (the request expires); "
    "someone other than you, on the allowlist or on call, must approve it",
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
