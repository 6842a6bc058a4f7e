"""Triage, pure: how severe a signal is and why, and which incident it belongs to."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from shared.domain.severity import AZURE_BASELINE, Severity
from shared.domain.signals import Signal
from shared.triage.policy import ActionPlan, Policy, Rule

EVENT_BASELINE = Severity.SEV4


@dataclass(frozen=True)
class Assessment:
    """What triage decided about one signal, with the reasons a person reads."""

    severity: Severity
    reasons: tuple[str, ...]
    rules: tuple[str, ...]  # ids of the rules that matched
    actions: tuple[ActionPlan, ...]
    informational: bool  # record only, no incident
    resolves: bool  # resolves the open incident of its key
    correlation_key: str
    condition_key: str  # the same failure elsewhere: rule(s) + alert rule with the tenant blanked + type


def assess(signal: Signal, policy: Policy) -> Assessment:
    """Classify a signal: Azure's severity as the baseline, then the policy's rules."""
    values = match_values(signal, policy)
    matched = policy.matching_rules(values)
    baseline, baseline_reason = _baseline(signal)
    severity_rules = [r for r in matched if r.severity is not None]
    reasons = [baseline_reason]
    severity = baseline
    if severity_rules:
        severity = min(_floored(r, baseline) for r in severity_rules)
        reasons += [_severity_reason(r, values, baseline, severity) for r in severity_rules]
    resolving = [r for r in matched if r.resolves]
    reasons += [f"{_explain(r, values)} (rule {r.id})" for r in resolving]
    noise = [r for r in matched if r.informational]
    informational = bool(signal.informational or noise) and not severity_rules and not resolving
    if informational:
        reasons += [f"{_explain(r, values)} (rule {r.id})" for r in noise]
        if signal.informational and not noise:
            reasons.append(f"Unknown event type {signal.kind}: recorded as informational")
    return Assessment(
        severity=severity,
        reasons=tuple(reasons),
        rules=tuple(r.id for r in matched),
        actions=tuple(a for r in severity_rules for a in r.actions),
        informational=informational,
        resolves=signal.state == "resolved" or bool(resolving),
        correlation_key=correlation_key(signal, policy),
        condition_key=_condition_key(signal, severity_rules),
    )


def match_values(signal: Signal, policy: Policy) -> dict[str, tuple[str, ...]]:
    """Everything a rule may match on, each as a tuple of values (rules compare without case)."""
    component = policy.component(signal.component)
    plain = {
        "kind": signal.kind,
        "rule": signal.rule,
        "state": signal.state,
        "source": signal.source,
        "schema": signal.schema,
        "azure_severity": signal.azure_severity,
        "tenant": signal.tenant,
        "environment": signal.environment,
        "component": signal.component,
        "tier": str(component.tier) if component else "",
        "resource_type": signal.resource.type,
        "resource_name": signal.resource.name,
        "resource_id": signal.resource_id,
    }
    values: dict[str, tuple[str, ...]] = {k: (v,) for k, v in plain.items() if v}
    for key, fact in signal.facts.items():
        items = fact if isinstance(fact, tuple) else (fact,)
        values[key] = tuple(str(v) for v in items if v != "")
    impacted = {s.lower() for s in values.get("impacted_services", ())}
    values["impacted_components"] = tuple(
        c.name for c in policy.components.values() if impacted & {s.lower() for s in c.service_names}
    )
    return values


def correlation_key(signal: Signal, policy: Policy) -> str:
    """The fields the policy names, joined; one incident per key while it is open."""
    fields = {"resource_type": signal.resource.type, "resource_id": signal.resource_id}
    parts = [str(fields.get(name, getattr(signal, name, ""))).lower() for name in policy.correlation_key]
    return "|".join(parts)


def _baseline(signal: Signal) -> tuple[Severity, str]:
    if signal.azure_severity:
        severity = AZURE_BASELINE[signal.azure_severity.lower()]
        return severity, f"Azure Monitor severity {signal.azure_severity} → {severity.label} (baseline)"
    return (
        EVENT_BASELINE,
        f"{signal.kind} event with no severity of its own → {EVENT_BASELINE.label} (baseline)",
    )


def _floored(rule: Rule, baseline: Severity) -> Severity:
    """The alert's own severity is a floor: a rule lowers it only when it says `lower = true`."""
    proposed = rule.severity or baseline
    return proposed if rule.lower else min(proposed, baseline)


def _severity_reason(
    rule: Rule, values: Mapping[str, tuple[str, ...]], baseline: Severity, decided: Severity
) -> str:
    proposed = rule.severity or baseline
    if proposed <= baseline:
        return f"{_explain(rule, values)} → {proposed.label} (rule {rule.id})"
    if not rule.lower:
        return (
            f"{_explain(rule, values)}: rule {rule.id} says {proposed.label}, kept {baseline.label}: "
            "the alert's own severity is a floor"
        )
    if proposed == decided:
        return f"{_explain(rule, values)} → lowered to {proposed.label} by rule {rule.id} (lower = true)"
    return f"{_explain(rule, values)} → {proposed.label} (rule {rule.id}, lower = true; outranked)"


def _condition_key(signal: Signal, rules: Sequence[Rule]) -> str:
    return condition_key(
        ",".join(sorted(r.id for r in rules)),
        signal.rule,
        signal.tenant,
        signal.resource.type,
        signal.environment,
    )


@lru_cache(maxsize=4096)  # a storm repeats a few conditions many times
def condition_key(rule_ids: str, rule: str, tenant: str, resource_type: str, environment: str) -> str:
    """The same failure on another tenant: rules, alert rule with the tenant blanked, type, environment.

    The tenant is blanked as a whole word ("cosmos-ikea-errors" → "cosmos-*-errors"), never inside
    another ("os" must not touch "cosmos"); the environment stays, so dev does not escalate prod.
    """
    rule_name = rule.lower()
    if tenant:
        rule_name = re.sub(rf"(?<![a-z0-9]){re.escape(tenant.lower())}(?![a-z0-9])", "*", rule_name)
    return hashlib.sha256("|".join([rule_ids, rule_name, resource_type, environment]).encode()).hexdigest()[
        :24
    ]


def _explain(rule: Rule, values: Mapping[str, tuple[str, ...]]) -> str:
    return rule.reason.format_map(_Placeholders(values))


class _Placeholders(dict[str, str]):
    """Placeholders in reasons: a missing value reads "?" instead of failing the signal."""

    def __init__(self, values: Mapping[str, tuple[str, ...]]) -> None:
        super().__init__({k: ", ".join(v) for k, v in values.items()})

    def __missing__(self, key: str) -> str:
        return "?"
