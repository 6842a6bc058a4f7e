"""A hand-written Operations for the Slack edge's tests: records every call, keeps the contract's promises.

The same request_id confirmed twice is one action; an action decided or an incident acknowledged
once is refused the second time, saying by whom and when. `journal` (a file) also records the
calls, for the e2e tests that read what a `dr serve` process did.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.chatops.operations import ActionRequest, OperationRefused, Preview
from shared.clock import iso
from shared.domain.actions import ActionRecord, ActionState, Actor
from shared.domain.incidents import ACKNOWLEDGED, RESOLVED, Incident
from tests.factories import incident as make_incident

REFUSED_TARGET = "locked-cache"  # previews of this target are refused


@dataclass
class FakeOperations:
    """Implements the contract's Operations in memory."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    journal: Path | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    lookup: Callable[[str], Incident | None] | None = None  # incidents of a real store, when not added
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    actions: dict[str, ActionRecord] = field(default_factory=dict)
    _by_request: dict[str, str] = field(default_factory=dict)
    _cancelled: dict[str, str] = field(default_factory=dict)  # request id → "cancelled by X at T"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.journal is not None:
            with self.journal.open("a", encoding="utf-8") as f:
                f.write(json.dumps([str(c) for c in call]) + "\n")

    def add_incident(self, incident_id: str) -> Incident:
        """An open incident the operations know."""
        self.incidents[incident_id] = make_incident(incident_id)
        return self.incidents[incident_id]

    def add_waiting_action(self, action_id: str, incident_id: str = "inc-1") -> ActionRecord:
        """An action awaiting approval."""
        now = iso(self.clock())
        record = ActionRecord(
            id=action_id,
            incident_id=incident_id,
            action="redis.failover",
            target="cache-a",
            mode="approve",
            state=ActionState.AWAITING_APPROVAL,
            planned_by=Actor("automation", "rule-1"),
            planned_at=now,
            updated_at=now,
        )
        self.actions[action_id] = record
        return record

    def preview(self, request: ActionRequest) -> Preview:
        self._record("preview", request.to_value())
        details = (f"action: {request.verb}", f"target: {request.target}", "mode: approve; cooldown 30 min")
        refused = "an action is already running on it" if request.target == REFUSED_TARGET else ""
        return Preview(request, f"{request.verb} {request.target}", details, refused)

    def confirm(self, request: ActionRequest, actor: Actor, request_id: str) -> ActionRecord:
        with self._lock:
            self._record("confirm", request.to_value(), str(actor), request_id)
            if request_id in self._cancelled:
                raise OperationRefused(f"Not done: it was {self._cancelled[request_id]}")
            known = self._by_request.get(request_id)
            if known is not None:
                return self.actions[known]
            now = iso(self.clock())
            record = ActionRecord(
                id=f"act-{len(self.actions) + 1}",
                incident_id="",
                action=f"{request.system or 'kubernetes'}.{request.verb}",
                target=request.target,
                mode="auto",
                state=ActionState.PLANNED,
                planned_by=actor,
                planned_at=now,
                updated_at=now,
            )
            self.actions[record.id] = record
            self._by_request[request_id] = record.id
            return record

    def cancel(self, request: ActionRequest, actor: Actor, request_id: str) -> str:
        with self._lock:
            self._record("cancel", request.to_value(), str(actor), request_id)
            known = self._by_request.get(request_id)
            if known is not None:
                record = self.actions[known]
                raise OperationRefused(f"Too late: {record.id} is {record.state}; wait for it")
            self._cancelled.setdefault(request_id, f"cancelled by {actor} at {iso(self.clock())}")
            return self._cancelled[request_id]

    def approve(self, action_id: str, actor: Actor) -> ActionRecord:
        return self._decide("approve", action_id, actor, ActionState.APPROVED)

    def deny(self, action_id: str, actor: Actor) -> ActionRecord:
        return self._decide("deny", action_id, actor, ActionState.DENIED)

    def _decide(self, verb: str, action_id: str, actor: Actor, state: ActionState) -> ActionRecord:
        with self._lock:
            self._record(verb, action_id, str(actor))
            record = self.actions.get(action_id)
            if record is None:
                raise OperationRefused(f"There is no action {action_id}.")
            if record.state != ActionState.AWAITING_APPROVAL:
                raise OperationRefused(
                    f"{action_id} was already {record.state.value} by {record.approved_by}"
                    f" at {record.updated_at}."
                )
            decided = replace(record, state=state, approved_by=actor, updated_at=iso(self.clock()))
            self.actions[action_id] = decided
            return decided

    def incident_of(self, action_id: str) -> str | None:
        found = self.actions.get(action_id)
        return found.incident_id if found else None

    def acknowledge(self, incident_id: str, actor: Actor) -> Incident:
        return self._change("acknowledge", incident_id, actor, ACKNOWLEDGED)

    def acknowledge_approving(
        self, incident_id: str, actor: Actor
    ) -> tuple[Incident, tuple[ActionRecord, ...]]:
        """Acknowledge, and approve what waits on it (here: every waiting action of the incident)."""
        incident = self.acknowledge(incident_id, actor)
        waiting = [
            a
            for a in self.actions.values()
            if a.incident_id == incident_id and a.state is ActionState.AWAITING_APPROVAL
        ]
        return incident, tuple(self.approve(a.id, actor) for a in waiting)

    def resolve(self, incident_id: str, actor: Actor) -> Incident:
        return self._change("resolve", incident_id, actor, RESOLVED)

    def _change(self, verb: str, incident_id: str, actor: Actor, status: Any) -> Incident:
        with self._lock:
            self._record(verb, incident_id, str(actor))
            found = self.incidents.get(incident_id) or (self.lookup(incident_id) if self.lookup else None)
            if found is None:
                raise OperationRefused(f"There is no incident {incident_id}.")
            if found.status == status or found.status == RESOLVED:
                raise OperationRefused(
                    f"{incident_id} was already {found.status.value}"
                    f" by {found.acknowledged_by or found.resolved_by}."
                )
            now = iso(self.clock())
            changed = (
                found.evolve(status=status, acknowledged_by=str(actor), acknowledged_at=now)
                if status == ACKNOWLEDGED
                else found.evolve(status=status, resolved_by=str(actor), resolved_at=now)
            )
            self.incidents[incident_id] = changed
            return changed

    def pause(self, tenant: str, actor: Actor, reason: str) -> str:
        self._record("pause", tenant, str(actor), reason)
        return f"Automation paused for {'tenant ' + tenant if tenant else 'all tenants'} by {actor}"

    def resume(self, tenant: str, actor: Actor) -> str:
        self._record("resume", tenant, str(actor))
        return f"Automation resumed for {'tenant ' + tenant if tenant else 'all tenants'} by {actor}"
