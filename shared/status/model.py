"""The status model: frozen data built by one pure function from what the store and queues say.

Every face of "what is going on" (the CLI, GET /api/status, Slack's /dr status, a web page) renders
this model, so they never disagree about what counts as open, late or stuck.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.clock import iso, seconds_between
from shared.domain.actions import ActionRecord, Pause
from shared.domain.effects import CHATOPS_QUEUE, PAGERDUTY_QUEUE, QUEUES, Effect
from shared.intake.admission import INTAKE_QUEUE
from shared.ports import DeadLetter, IncidentHeadline, OpenOverview, OutboxBacklog, QueueCounts
from shared.triage.policy import Policy

# Every queue the responder reads, in the order a person scans them: pages first.
ALL_QUEUES = (INTAKE_QUEUE, *QUEUES.values(), PAGERDUTY_QUEUE, CHATOPS_QUEUE)


@dataclass(frozen=True)
class Budget:
    """Time used against a target from the policy; `running` is False once the clock has stopped."""

    target_minutes: int
    used_seconds: float
    running: bool = True

    @property
    def used_percent(self) -> int:
        """Share of the target used, rounded; past 100 when over."""
        return round(100 * self.used_seconds / (self.target_minutes * 60))

    @property
    def over(self) -> bool:
        """More time used than the target allows."""
        return self.used_seconds > self.target_minutes * 60

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "target_minutes": self.target_minutes,
            "used_percent": self.used_percent,
            "over": self.over,
            "running": self.running,
        }


@dataclass(frozen=True)
class OpenIncident:
    """One incident not yet resolved, with its age against the DR plan's targets."""

    id: str
    title: str
    severity: str
    status: str
    tenant: str
    component: str
    environment: str
    opened_at: str
    age_seconds: float
    signal_count: int
    all_tenants: bool
    response: Budget | None  # time to first response (stops at acknowledgement); None: no target
    rto: Budget | None  # the component's recovery time objective; None: unknown component

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "tenant": self.tenant,
            "component": self.component,
            "environment": self.environment,
            "opened_at": self.opened_at,
            "age_seconds": round(self.age_seconds),
            "signal_count": self.signal_count,
            "all_tenants": self.all_tenants,
            "response": self.response.to_dict() if self.response else None,
            "rto": self.rto.to_dict() if self.rto else None,
        }


@dataclass(frozen=True)
class IncidentGroup:
    """The open incidents of one component and tenant: all counted, the first few (most severe, then
    oldest) shown."""

    component: str
    tenant: str
    incidents: tuple[OpenIncident, ...]  # shown
    by_severity: Mapping[str, int]  # all of the group's, most severe first

    @property
    def count(self) -> int:
        """All of the group's open incidents, shown or not."""
        return sum(self.by_severity.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "component": self.component,
            "tenant": self.tenant,
            "count": self.count,
            "shown": len(self.incidents),
            "by_severity": dict(self.by_severity),
            "incidents": [i.to_dict() for i in self.incidents],
        }


@dataclass(frozen=True)
class DeadLetterView:
    """A dead letter as a person reads it: where, why, when, and which incident it was for."""

    queue: str
    message_id: str
    reason: str
    description: str
    dead_lettered_at: str
    delivery_count: int
    incident_id: str | None  # when the body names one of our incidents
    summary: str  # what the message was ("notify opened", "PagerDuty incident.acknowledged"), or ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "queue": self.queue,
            "message_id": self.message_id,
            "reason": self.reason,
            "description": self.description,
            "dead_lettered_at": self.dead_lettered_at,
            "delivery_count": self.delivery_count,
            "incident_id": self.incident_id,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Outboxes:
    """Incidents whose decided effects are not yet confirmed on the queue (the sweeper sends them)."""

    incidents: int
    oldest_updated_at: str | None
    oldest_age_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        age = self.oldest_age_seconds
        return {
            "incidents": self.incidents,
            "oldest_updated_at": self.oldest_updated_at,
            "oldest_age_seconds": None if age is None else round(age),
        }


@dataclass(frozen=True)
class Automation:
    """Whether first responses may run by themselves, and the actions running or waiting now."""

    setting_on: bool = True  # DR_AUTOMATION
    pauses: tuple[Pause, ...] = ()
    active: tuple[ActionRecord, ...] = ()  # running, approved or awaiting approval

    @property
    def paused(self) -> bool:
        """Nothing runs by itself anywhere."""
        return not self.setting_on or any(not p.tenant for p in self.pauses)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "paused": self.paused,
            "setting": "on" if self.setting_on else "off",
            "pauses": [
                {"tenant": p.tenant or "*", "by": p.by, "at": p.at, "reason": p.reason} for p in self.pauses
            ],
            "actions": [
                {
                    "id": r.id,
                    "incident_id": r.incident_id,
                    "action": r.action,
                    "target": r.target,
                    "state": r.state.value,
                    "mode": r.mode,
                    "since": r.updated_at,
                    "expires_at": r.expires_at or None,
                }
                for r in self.active
            ],
        }


@dataclass(frozen=True)
class Status:
    """The operator's view at one moment."""

    generated_at: str
    policy: str
    open_incidents: int  # all of them, even past the shown ones
    groups: tuple[IncidentGroup, ...]  # every component and tenant with an open incident, worst first
    queues: tuple[QueueCounts, ...]
    dead_letters: tuple[DeadLetterView, ...]  # the newest few
    outboxes: Outboxes
    automation: Automation

    @property
    def shown_incidents(self) -> int:
        """How many open incidents the groups show (a few per group, a limit in all)."""
        return sum(len(g.incidents) for g in self.groups)

    @property
    def dead_lettered(self) -> int:
        """Dead letters across every queue."""
        return sum(q.dead_lettered for q in self.queues)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of GET /api/status and `dr status --json`."""
        return {
            "generated_at": self.generated_at,
            "policy": self.policy,
            "incidents": {
                "open": self.open_incidents,
                "shown": self.shown_incidents,
                "by_severity": _severity_order(
                    (label, n) for g in self.groups for label, n in g.by_severity.items()
                ),
                "groups": [g.to_dict() for g in self.groups],
            },
            "queues": {
                q.queue: {
                    "ready": q.ready,
                    "scheduled": q.scheduled,
                    "in_flight": q.in_flight,
                    "dead_lettered": q.dead_lettered,
                }
                for q in self.queues
            },
            "dead_letters": {
                "total": self.dead_lettered,
                "newest": [d.to_dict() for d in self.dead_letters],
            },
            "outboxes": self.outboxes.to_dict(),
            "automation": self.automation.to_dict(),
        }


def build_status(
    *,
    now: datetime,
    policy: Policy,
    open_incidents: OpenOverview,
    queues: Sequence[QueueCounts],
    dead_letters: Sequence[DeadLetter],
    outbox: OutboxBacklog,
    automation: Automation | None = None,
) -> Status:
    """The status at `now` from what was read; pure, so a test needs only a clock."""
    moment = iso(now)
    counted: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for c in open_incidents.counts:
        counted.setdefault((c.component, c.tenant), []).append((c.severity, c.count))
    shown: dict[tuple[str, str], list[OpenIncident]] = {}
    for headline in open_incidents.shown:  # already by rank
        shown.setdefault((headline.component, headline.tenant), []).append(
            open_incident(headline, policy, moment)
        )
    groups = [
        IncidentGroup(component, tenant, tuple(shown.get((component, tenant), ())), _severity_order(counts))
        for (component, tenant), counts in counted.items()
    ]
    # The worst first: a person reads from the top and may stop there.
    groups.sort(key=lambda g: (next(iter(g.by_severity), ""), g.component, g.tenant))
    oldest = outbox.oldest_updated_at
    return Status(
        generated_at=moment,
        policy=policy.source,
        open_incidents=open_incidents.total,
        groups=tuple(groups),
        queues=tuple(queues),
        dead_letters=tuple(describe_dead_letter(d) for d in dead_letters),
        outboxes=Outboxes(outbox.incidents, oldest, _seconds(oldest, moment) if oldest else None),
        automation=automation or Automation(),
    )


def open_incident(incident: IncidentHeadline, policy: Policy, now: str) -> OpenIncident:
    """One open incident with its response and RTO budgets as of `now`."""
    age = _seconds(incident.opened_at, now)
    target = policy.response_minutes.get(incident.severity)
    response = None
    if target:
        if incident.acknowledged_at:
            response = Budget(target, _seconds(incident.opened_at, incident.acknowledged_at), running=False)
        else:
            response = Budget(target, age)
    component = policy.component(incident.component)
    return OpenIncident(
        id=incident.id,
        title=incident.title,
        severity=incident.severity,
        status=incident.status,
        tenant=incident.tenant,
        component=incident.component,
        environment=incident.environment,
        opened_at=incident.opened_at,
        age_seconds=age,
        signal_count=incident.signal_count,
        all_tenants=incident.all_tenants,
        response=response,
        rto=Budget(component.rto_minutes, age) if component else None,
    )


def describe_dead_letter(dead: DeadLetter) -> DeadLetterView:
    """A dead letter with what its body says: the effect and incident, or the PagerDuty event."""
    incident_id, summary = _what_it_was(dead.queue, dead.body)
    return DeadLetterView(
        queue=dead.queue,
        message_id=dead.message_id,
        reason=dead.reason,
        description=dead.description,
        dead_lettered_at=dead.dead_lettered_at,
        delivery_count=dead.delivery_count,
        incident_id=incident_id,
        summary=summary,
    )


def _what_it_was(queue: str, body: bytes) -> tuple[str | None, str]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None, ""  # a poison message is dead-lettered because it does not parse
    if not isinstance(data, Mapping):
        return None, ""
    if queue == PAGERDUTY_QUEUE:
        event = data.get("event")
        if not isinstance(event, Mapping):
            return None, ""
        payload = event.get("data")
        key = payload.get("incident_key") if isinstance(payload, Mapping) else None
        return (key if isinstance(key, str) and key else None), f"PagerDuty {event.get('event_type', '?')}"
    try:
        effect = Effect.from_dict(data)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None, ""
    summary = f"{effect.kind} {effect.event}" + (f" on {effect.target}" if effect.target else "")
    return effect.incident_id or None, summary


def _severity_order(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts summed per severity label, most severe first."""
    summed: dict[str, int] = {}
    for label, n in counts:
        summed[label] = summed.get(label, 0) + n
    return {label: summed[label] for label in sorted(summed) if summed[label]}  # "sev1" < "sev2" as text


def _seconds(start: str, end: str) -> float:
    """Seconds from one ISO time to another, never negative (two hosts' clocks may disagree)."""
    return seconds_between(start, end) or 0.0
