"""Correlation, pure: what one assessed signal does to the open incident of its key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.effects import Effect
from shared.incidents import OPEN, RESOLVED, Incident, TimelineEntry, incident_id
from shared.outbox import stage
from shared.policy import Policy
from shared.signals import Signal
from shared.triage import Assessment


@dataclass(frozen=True)
class Outcome:
    """The incident after the signal, the history to add, and the effects to send."""

    incident: Incident
    timeline: tuple[TimelineEntry, ...]
    effects: tuple[Effect, ...]
    escalate_peers: tuple[str, ...] = ()  # other tenants' incidents of the same condition


def correlate(
    current: Incident | None,
    signal: Signal,
    assessment: Assessment,
    now: str,
    peers: Mapping[str, str],
    policy: Policy,
) -> Outcome | None:
    """Open, update or resolve; None when a resolving signal finds nothing open."""
    if current is None:
        return None if assessment.resolves else _open(signal, assessment, now, peers, policy)
    if assessment.resolves:
        return _resolve(current, signal, assessment, now, policy)
    return _repeat(current, signal, assessment, now, policy)


def escalate_for_peers(incident: Incident, tenants: list[str], now: str, policy: Policy) -> Outcome | None:
    """Mark an incident as affecting all tenants and raise it one level; None if it already is."""
    if incident.all_tenants or not incident.is_open:
        return None
    reason = _cross_tenant_reason(tenants, policy)
    raised = incident.severity.raised()
    updated = incident.evolve(
        severity=raised, all_tenants=True, reasons=(*incident.reasons, reason), updated_at=now
    )
    timeline = [TimelineEntry(now, "severity", reason)]
    return _with_effects(updated, timeline, _severity_effects(updated, now, policy))


def _open(
    signal: Signal, assessment: Assessment, now: str, peers: Mapping[str, str], policy: Policy
) -> Outcome:
    severity, reasons = assessment.severity, list(assessment.reasons)
    tenants = sorted({*peers, signal.tenant}) if signal.tenant else []
    all_tenants = len(tenants) >= policy.cross_tenant_threshold
    if all_tenants:
        severity = severity.raised()
        reasons.append(_cross_tenant_reason(tenants, policy))
    opened_at = signal.occurred_at if signal.occurred_at < now else now
    new_id = incident_id(assessment.correlation_key, now)
    incident = Incident(
        id=new_id,
        correlation_key=assessment.correlation_key,
        condition_key=assessment.condition_key,
        title=signal.title,
        severity=severity,
        status=OPEN,
        tenant=signal.tenant,
        environment=signal.environment,
        component=signal.component,
        resource_id=signal.resource_id,
        rule=signal.rule,
        kind=signal.kind,
        signal_count=1,
        opened_at=opened_at,
        updated_at=now,
        last_signal_at=signal.occurred_at,
        reasons=tuple(reasons),
        all_tenants=all_tenants,
        planned_actions=tuple(f"{a.action} ({a.mode})" for a in assessment.actions),
    )
    effects = [Effect("notify", new_id, "opened", severity.label, now)] if severity in policy.notify else []
    if severity in policy.paging:
        effects.append(Effect("page", new_id, "trigger", severity.label, now))
    effects += [
        Effect("act", new_id, a.action, severity.label, now, target=signal.resource_id, mode=a.mode)
        for a in assessment.actions
    ]
    timeline = [TimelineEntry(now, "opened", f"Opened as {severity.label}: " + "; ".join(reasons))]
    outcome = _with_effects(incident, timeline, effects)
    escalate = tuple(sorted(set(peers.values()))) if all_tenants else ()
    return Outcome(outcome.incident, outcome.timeline, outcome.effects, escalate)


def _repeat(current: Incident, signal: Signal, assessment: Assessment, now: str, policy: Policy) -> Outcome:
    count = current.signal_count + 1
    updated = current.evolve(signal_count=count, updated_at=now, last_signal_at=signal.occurred_at)
    timeline: list[TimelineEntry] = []
    effects: list[Effect] = []
    if assessment.severity < current.severity:
        updated = updated.evolve(
            severity=assessment.severity, reasons=(*current.reasons, *assessment.reasons[1:])
        )
        timeline.append(
            TimelineEntry(now, "severity", f"Raised {current.severity.label} → {assessment.severity.label}")
        )
        effects += _severity_effects(updated, now, policy)
    elif _is_milestone(count) and current.severity in policy.notify:
        # A storm refreshes the card at 10, 100, 1000… signals, not on every one of them.
        effects.append(Effect("notify", current.id, f"count-{count}", current.severity.label, now))
    return _with_effects(updated, timeline, effects)


def _resolve(current: Incident, signal: Signal, assessment: Assessment, now: str, policy: Policy) -> Outcome:
    updated = current.evolve(
        status=RESOLVED,
        resolved_at=now,
        resolved_by=f"{signal.source}: {signal.rule}",
        signal_count=current.signal_count + 1,
        updated_at=now,
        last_signal_at=signal.occurred_at,
    )
    text = f"Resolved by {signal.source} ({signal.kind}, {signal.state})"
    effects = [Effect("notify", current.id, "resolved", current.severity.label, now)]
    if current.paged:
        effects.append(Effect("page", current.id, "resolve", current.severity.label, now))
    return _with_effects(updated, [TimelineEntry(now, "resolved", text)], effects)


def _severity_effects(updated: Incident, now: str, policy: Policy) -> list[Effect]:
    effects = []
    if updated.severity in policy.notify:
        effects.append(Effect("notify", updated.id, "severity", updated.severity.label, now))
    if updated.severity in policy.paging:
        effects.append(Effect("page", updated.id, "trigger", updated.severity.label, now))
    return effects


def _with_effects(incident: Incident, timeline: list[TimelineEntry], effects: list[Effect]) -> Outcome:
    return Outcome(stage(incident, effects), tuple(timeline), tuple(effects))


def _cross_tenant_reason(tenants: list[str], policy: Policy) -> str:
    return (
        f"Same condition on {len(tenants)} tenants ({', '.join(tenants)}) within "
        f"{policy.window_minutes} min → raised one level, affecting all tenants"
    )


def _is_milestone(count: int) -> bool:
    return count >= 10 and str(count).strip("0") == "1"
