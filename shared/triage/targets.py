"""What an action acts on: the rule's templates filled in from the signal, pure.

A placeholder names a signal field (`{resource_id}`, `{resource_group}`, `{tenant}`, …), a fact, an
alert dimension or a custom property (`{namespace}`, `{controller}`). A placeholder that nothing in
the signal fills, or that two different values fill, leaves the target unresolved: the action is
refused with that reason rather than guessed at.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.domain.signals import Signal
from shared.triage.policy import ActionPlan


@dataclass(frozen=True)
class ResolvedTarget:
    """The resource and parameters an action acts on; `problem` says why there is none."""

    resource: str
    params: Mapping[str, Any] = field(default_factory=dict)
    problem: str = ""


def resolve_target(plan: ActionPlan, signal: Signal) -> ResolvedTarget:
    """Fill in the plan's templates from the signal."""
    values = template_values(signal)
    try:
        resource = _fill(plan.resource, values, "resource")
        params = {
            key: _fill(value, values, key) if isinstance(value, str) else value
            for key, value in plan.params.items()
        }
    except _Unresolved as e:
        return ResolvedTarget("", {}, str(e))
    return ResolvedTarget(resource, params)


def plan_label(plan: ActionPlan, params: Mapping[str, Any]) -> str:
    """How a planned action is listed, and told from another plan of it: its action, its mode, and
    the parameters filled in from the signal ("kubernetes.rollback (auto) deployment=shop/cart")."""
    filled = filled_params(plan)
    base = base_label(plan)
    return base + " " + ", ".join(f"{k}={params.get(k, '')}" for k in filled) if filled else base


def base_label(plan: ActionPlan) -> str:
    """The label without the filled-in parameters: which action, in which mode."""
    return f"{plan.action} ({plan.mode})"


def filled_params(plan: ActionPlan) -> list[str]:
    """The names of the plan's parameters that the signal fills in (templates), sorted."""
    return sorted(k for k, v in plan.params.items() if isinstance(v, str) and "{" in v)


def template_values(signal: Signal) -> dict[str, set[str]]:
    """Every value a template may name, each as the set of values the signal gives it."""
    values: dict[str, set[str]] = {}

    def add(name: str, value: str) -> None:
        if value:
            values.setdefault(name, set()).add(value)

    resource = signal.resource
    for name, value in (
        ("resource_id", signal.resource_id),
        ("resource_name", resource.name),
        ("resource_group", resource.resource_group),
        ("subscription", resource.subscription),
        ("resource_type", resource.type),
        ("tenant", signal.tenant),
        ("environment", signal.environment),
        ("component", signal.component),
        ("rule", signal.rule),
        ("kind", signal.kind),
    ):
        add(name, value)
    for key, fact in signal.facts.items():
        if key in ("dimensions", "properties"):
            for pair in fact if isinstance(fact, tuple) else (fact,):
                name, sep, value = pair.partition("=")
                if sep:
                    add(name, value)
        elif isinstance(fact, str):
            add(key, fact)
        elif len(set(fact)) == 1:
            add(key, fact[0])
        else:
            values.setdefault(key, set()).update(fact)
    return values


class _Unresolved(Exception):
    pass


def _fill(template: str, values: Mapping[str, set[str]], where: str) -> str:
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is None:
            continue
        found = values.get(name, set())
        if not found:
            raise _Unresolved(f"{where} = {template!r}: the signal has no {{{name}}}, so there is no target")
        if len(found) > 1:
            many = ", ".join(sorted(found)[:5])
            raise _Unresolved(f"{where} = {template!r}: {{{name}}} is more than one resource ({many})")
        parts.append(next(iter(found)))
    return "".join(parts)
