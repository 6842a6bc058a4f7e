"""Correlation, pure: what one assessed signal does to the open incident of its key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache

from shared.clock import seconds_between
from shared.domain.effects import Change, Effect, EffectKind
from shared.domain.incidents import OPEN, RESOLVED, Incident, TimelineEntry, incident_id
from shared.domain.signals import Signal
from shared.triage.assessment import Assessment
from shared.triage.policy import ActionPlan, Policy
from shared.triage.targets import base_label, filled_params, plan_label, resolve_target

# At most this many firing instances are tracked per incident. Past it, further instances are not
# tracked: the incident then resolves when the tracked ones have, as every incident did before
# instances were tracked, even if an untracked one still fires. 500 instances of one rule on one
# resource is a storm of dimension values, and the record must stay small (Table Storage).
MAX_INSTANCES = 500
# At most this many actions are planned per incident: a multi-dimension alert firing for hundreds of
# Deployments would be refused by the hourly caps anyway, and the record must stay small.
MAX_PLANNED = 50


def correlate(
    current: Incident | None, signal: Signal, assessment: Assessment, now: str, policy: Policy
) -> Change | None:
    """Open, update or resolve; None when a resolving signal finds nothing open."""
    if current is None:
        return None if assessment.resolves else _open(signal, assessment, now, policy)
    if assessment.resolves:
        return _resolve(current, signal, assessment, now, policy)
    return _repeat(current, signal, assessment, now, policy)


def instance_of(signal: Signal) -> str:
    """A digest of the alert instance a Fired or Resolved belongs to; "" for signals without one.

    Azure Monitor names an instance by its alertId; the non-common metric schema names only the rule
    there, and a multi-dimension metric or log alert fires one instance per dimension combination,
    so the dimensions are part of it. Activity-log alerts (health, administrative) and events fire
    and never resolve: they have no instance, and resolve as they always did.
    """
    if signal.source != "azure-monitor" or signal.state not in ("fired", "resolved"):
        return ""
    alert_id = signal.facts.get("alert_id")
    if not isinstance(alert_id, str) or not alert_id or signal.facts.get("signal_type") == "Activity Log":
        return ""
    dimensions = signal.facts.get("dimensions", ())
    return _instance_digest(alert_id, dimensions if isinstance(dimensions, tuple) else (dimensions,))


@lru_cache(maxsize=4096)  # intake asks several times per signal, and a storm repeats a few instances
def _instance_digest(alert_id: str, dimensions: tuple[str, ...]) -> str:
    parts = [alert_id, *sorted(dimensions)]
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def is_firing(incident: Incident, signal: Signal) -> bool:
    """The signal's instance is one the incident knows to be firing."""
    instance = instance_of(signal)
    return bool(instance) and instance in incident.firing_instances


def escalate_for_peers(incident: Incident, tenants: list[str], now: str, policy: Policy) -> Change | None:
    """Mark an incident as affecting all tenants, one level up; None if it already is, or is resolved."""
    if incident.all_tenants or not incident.is_open:
        return None
    raised = incident.severity.raised()
    reason = _cross_tenant_reason(tenants, policy, raised != incident.severity)
    updated = incident.evolve(
        severity=raised, all_tenants=True, reasons=(*incident.reasons, reason), updated_at=now
    )
    timeline = [TimelineEntry(now, "severity", reason)]
    if raised == incident.severity:  # sev1 has no level above: the card says "all tenants", no new page
        tell = Effect(EffectKind.NOTIFY, incident.id, "all-tenants", raised.label, now, detail=reason)
        return _with_effects(updated, timeline, [tell])
    return _with_effects(updated, timeline, _severity_effects(updated, now, policy, reason))


def _open(signal: Signal, assessment: Assessment, now: str, policy: Policy) -> Change:
    severity, reasons = assessment.severity, assessment.reasons
    new_id = incident_id(assessment.correlation_key, now, signal.id)
    labels = {_planned(plan, signal): plan for plan in assessment.actions}
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
        opened_at=now,
        updated_at=now,
        last_signal_at=signal.occurred_at,
        reasons=reasons,
        planned_actions=tuple(labels),
        part_signals=dict.fromkeys(_parts(labels), signal.occurred_at),
        page_held=any(a.page == "on-failure" for a in assessment.actions),
        firing_instances=(instance,) if (instance := instance_of(signal)) else (),
    )
    effects = []
    if severity in policy.notify:
        effects.append(Effect(EffectKind.NOTIFY, new_id, "opened", severity.label, now))
    if severity in policy.paging and not incident.page_held:
        effects.append(Effect(EffectKind.PAGE, new_id, "trigger", severity.label, now))
    effects += _act_effects(new_id, signal, assessment.actions, severity.label, now)
    timeline = [TimelineEntry(now, "opened", f"Opened as {severity.label}: " + "; ".join(reasons))]
    return _with_effects(incident, timeline, effects)


def _repeat(current: Incident, signal: Signal, assessment: Assessment, now: str, policy: Policy) -> Change:
    count = current.signal_count + 1
    updated = current.evolve(
        signal_count=count,
        updated_at=now,
        last_signal_at=signal.occurred_at,
        firing_instances=_with_instance(current.firing_instances, instance_of(signal)),
    )
    timeline: list[TimelineEntry] = []
    effects: list[Effect] = []
    # An incident that affects all tenants keeps its extra level for whatever its signals say.
    severity = assessment.severity.raised() if current.all_tenants else assessment.severity
    raised = severity < current.severity
    if raised:
        updated = updated.evolve(severity=severity, reasons=_merged(current.reasons, assessment.reasons))
        text = f"Raised {current.severity.label} → {severity.label}: " + "; ".join(assessment.reasons)
        timeline.append(TimelineEntry(now, "severity", text))
        effects += _severity_effects(updated, now, policy, text)
    elif _is_milestone(count) and current.severity in policy.notify:
        # A storm refreshes the card at 10, 100, 1000… signals, not on every one of them.
        effects.append(Effect(EffectKind.NOTIFY, current.id, f"count-{count}", current.severity.label, now))
    # New actions: a raised severity's, or a planned action that this signal fills in for another
    # part (a second Deployment's errors in one cluster, under one alert rule, get their own rollback).
    labels = {_planned(plan, signal): plan for plan in assessment.actions}
    new = {
        label: plan
        for label, plan in labels.items()
        if label not in current.planned_actions and (raised or _planned_before(plan, current.planned_actions))
    }
    new = dict(list(new.items())[: max(0, MAX_PLANNED - len(current.planned_actions))])
    if new:
        updated = updated.evolve(planned_actions=(*current.planned_actions, *new))
        effects += _act_effects(
            current.id, signal, list(new.values()), min(severity, current.severity).label, now
        )
    if parts := [label for label in _parts(labels) if label in updated.planned_actions]:
        updated = updated.evolve(
            part_signals={**current.part_signals, **dict.fromkeys(parts, signal.occurred_at)}
        )
    return _with_effects(updated, timeline, effects)


def _merged(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    """The new baseline replaces the old one (reasons[0]); every other reason is kept, once."""
    rest = [r for r in (*old[1:], *new[1:])]
    return (new[0], *dict.fromkeys(rest))


def _planned_before(plan: ActionPlan, planned: Sequence[str]) -> bool:
    """The incident has this action, in this mode, planned already (for whichever part)."""
    base = base_label(plan)
    return any(label == base or label.startswith(base + " ") for label in planned)


def _planned(action: ActionPlan, signal: Signal) -> str:
    """The plan's label for this signal (see `plan_label`)."""
    if not filled_params(action):
        return base_label(action)
    resolved = resolve_target(action, signal)
    if resolved.problem:  # planned once, and refused with the reason, rather than once per signal
        return base_label(action)
    return plan_label(action, resolved.params)


def _parts(labels: Mapping[str, ActionPlan]) -> list[str]:
    """The labels that name a part: parameters filled in after the action and mode."""
    return [label for label, plan in labels.items() if label != base_label(plan)]


def _act_effects(
    incident_id_: str, signal: Signal, actions: Sequence[ActionPlan], severity: str, now: str
) -> list[Effect]:
    effects = []
    for plan in actions:
        target = resolve_target(plan, signal)
        params = (
            json.dumps(dict(target.params), sort_keys=True, separators=(",", ":")) if target.params else ""
        )
        effects.append(
            Effect(
                EffectKind.ACT,
                incident_id_,
                plan.action,
                severity,
                now,
                target=target.resource,
                mode=plan.mode,
                detail=target.problem,  # why there is no target: the worker records it refused
                rule=plan.rule,
                params=params,
            )
        )
    return effects


def _with_instance(firing: tuple[str, ...], instance: str) -> tuple[str, ...]:
    if not instance or instance in firing or len(firing) >= MAX_INSTANCES:
        return firing
    return (*firing, instance)


def _resolve(current: Incident, signal: Signal, assessment: Assessment, now: str, policy: Policy) -> Change:
    instance = instance_of(signal)
    still_firing = tuple(i for i in current.firing_instances if i != instance)
    if instance and still_firing:
        # Another instance of the alert still fires: this one's Resolved does not end the incident.
        before = len(current.firing_instances)
        updated = current.evolve(
            firing_instances=still_firing,
            signal_count=current.signal_count + 1,
            updated_at=now,
            last_signal_at=signal.occurred_at,
        )
        what = f"1 of {before} instances" if len(still_firing) < before else "An untracked instance"
        text = f"{what} resolved ({len(still_firing)} still firing): {signal.source}: {signal.title}"
        # The card's thread says so too, or the channel would wonder why the incident stays open.
        still = f"instance-resolved:{instance}"  # one per instance: the queue must not drop it as a repeat
        tell = Effect(EffectKind.NOTIFY, current.id, still, current.severity.label, now, detail=text)
        effects = [tell] if current.severity in policy.notify else []
        return _with_effects(updated, [TimelineEntry(now, "signal", text)], effects)
    updated = current.evolve(
        firing_instances=(),
        status=RESOLVED,
        resolved_at=now,
        time_to_resolve_seconds=seconds_between(current.opened_at, now),
        resolved_by=f"{signal.source}: {signal.rule}",
        signal_count=current.signal_count + 1,
        updated_at=now,
        last_signal_at=signal.occurred_at,
    )
    text = f"Resolved by {signal.source}: {signal.title}"
    effects = [Effect(EffectKind.NOTIFY, current.id, "resolved", current.severity.label, now, detail=text)]
    if current.paged:
        effects.append(Effect(EffectKind.PAGE, current.id, "resolve", current.severity.label, now))
    return _with_effects(updated, [TimelineEntry(now, "resolved", text)], effects)


def _severity_effects(updated: Incident, now: str, policy: Policy, why: str) -> list[Effect]:
    """A raised severity: a line in the card's thread saying why, and a page if it now pages."""
    effects = []
    if updated.severity in policy.notify:
        tell = Effect(EffectKind.NOTIFY, updated.id, "severity", updated.severity.label, now, detail=why)
        effects.append(tell)
    if updated.severity in policy.paging and not updated.page_held:
        effects.append(Effect(EffectKind.PAGE, updated.id, "trigger", updated.severity.label, now))
    return effects


def _with_effects(incident: Incident, timeline: list[TimelineEntry], effects: list[Effect]) -> Change:
    if any(e.kind is EffectKind.PAGE and e.event == "trigger" for e in effects):
        incident = incident.evolve(paged=True)  # so that resolving it resolves the page too
    return Change(incident, tuple(timeline), tuple(effects))


def _cross_tenant_reason(tenants: list[str], policy: Policy, raised: bool = True) -> str:
    effect = "raised one level, affecting all tenants" if raised else "affecting all tenants (already sev1)"
    where = f"{len(tenants)} tenants ({', '.join(tenants)}) within {policy.window_minutes} min"
    return f"Same condition on {where} → {effect}"


def _is_milestone(count: int) -> bool:
    return count >= 10 and str(count).strip("0") == "1"
