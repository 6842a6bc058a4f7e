"""A person's action (Slack's /dr failover|rollback|restart|restore): its target, mode and incident.

Resolved from what the person typed and what is open: a cache or Cosmos account by its ARM id, or
by its name when an open incident or a `[targets]` table names it; a cluster likewise, or the only
cluster with an open AKS incident. The action belongs to the open incident on its resource (the
one the person is working on, whose timeline and card then show it), else to an incident opened
for the request (key "manual|<resource>", so a second request on the resource joins it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.domain.actions import Actor
from shared.domain.effects import Change, Effect, EffectKind
from shared.domain.incidents import OPEN, Incident, TimelineEntry, incident_id
from shared.domain.resources import Ownership, ownership, parse_resource_id
from shared.domain.severity import Severity
from shared.errors import Rejected
from shared.triage.policy import Policy

# verb (and system, for a failover) → the registry's action
ACTIONS: Mapping[tuple[str, str], str] = {
    ("failover", "redis"): "redis.failover",
    ("failover", "cosmos"): "cosmosdb.failover",
    ("rollback", ""): "kubernetes.rollback",
    ("restart", ""): "kubernetes.restart",
    ("restore", ""): "velero.restore",
}
REDIS, COSMOS = "microsoft.cache/redis", "microsoft.documentdb/databaseaccounts"
AKS = "microsoft.containerservice/managedclusters"
WHAT = {REDIS: "Redis cache", COSMOS: "Cosmos DB account", AKS: "AKS cluster"}
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
MANUAL_SEVERITY = Severity.SEV3  # notified, not paged: the person is there (a failed action escalates)


class Unresolvable(Rejected):
    """What the person named cannot be acted on as it is (unknown, ambiguous, malformed)."""


@dataclass(frozen=True)
class Resolved:
    """A request made concrete: the registry's action, its resource and parameters, its incident."""

    action: str
    resource: str
    params: Mapping[str, Any] = field(default_factory=dict)
    incident: Incident | None = None  # None: an incident is opened for it on confirm


def resolve(
    verb: str,
    system: str,
    target: str,
    revision: int | None,
    backup: str | None,
    open_incidents: Sequence[Incident],
    policy: Policy,
    actions: Mapping[tuple[str, str], str] = ACTIONS,
) -> Resolved:
    """The action a request names, on what; Unresolvable saying why (and what to give instead)."""
    action = actions.get((verb, system if verb == "failover" else ""))
    if action is None:
        raise Unresolvable(f"there is no {verb} {system}".strip() + f" (known: {_known(actions)})")
    target = target.strip()
    if verb == "failover":
        kind = REDIS if system == "redis" else COSMOS
        resource = _resource(target, kind, open_incidents, policy)
        return Resolved(action, resource, {}, _incident_on(resource, open_incidents))
    cluster, _, rest = target.rpartition(":")  # ARM ids hold no ":"; no cluster given: ("", "", target)
    if verb in ("rollback", "restart"):
        namespace, sep, name = rest.partition("/")
        if not sep or not _K8S_NAME.match(namespace) or not _K8S_NAME.match(name):
            raise Unresolvable(
                f'{verb} takes "<namespace>/<deployment>" (or "<cluster>:<namespace>/<deployment>")'
            )
        params: dict[str, Any] = {"deployment": f"{namespace}/{name}"}
        if verb == "rollback":
            # A person chose this rollback: the automation's "only a recent rollout" check is off.
            params["rolled_out_within_minutes"] = 0
            if revision is not None:
                params["to_revision"] = revision
    else:
        if not _K8S_NAME.match(rest):
            raise Unresolvable('restore takes "<namespace>" (or "<cluster>:<namespace>") and --backup B')
        params = {"namespace": rest}
        if backup:
            params["backup"] = backup
        elif schedule := _policy_schedule(policy, action):
            params["schedule"] = schedule
        else:
            raise Unresolvable(
                "restore needs --backup B: the policy names no Velero schedule to take the newest of"
            )
    resource = _cluster(cluster, open_incidents, policy)
    return Resolved(action, resource, params, _incident_on(resource, open_incidents))


def manual_action_id(request_id: str) -> str:
    """One action per request: Confirm pressed twice, or a redelivered request, finds the first."""
    return "act-" + hashlib.sha256(f"manual\n{request_id}".encode()).hexdigest()[:16]


def manual_incident(
    resolved: Resolved, summary: str, actor: Actor, request_id: str, now: str, policy: Policy
) -> Change:
    """The incident opened for a person's action on a resource no open incident is about."""
    key = f"manual|{resolved.resource.lower()}"
    parsed = parse_resource_id(resolved.resource)
    owner = owner_of(resolved.resource, policy)
    reason = f"{actor} asked to {summary}"
    incident = Incident(
        id=incident_id(key, now, request_id),
        correlation_key=key,
        condition_key=key,
        title=f"{resolved.action} on {parsed.name or resolved.resource}, asked by {actor}",
        severity=MANUAL_SEVERITY,
        status=OPEN,
        tenant=owner.tenant,
        environment=owner.environment,
        component=owner.component,
        resource_id=resolved.resource,
        rule="manual",
        kind="manual request",
        signal_count=0,
        opened_at=now,
        updated_at=now,
        last_signal_at=now,
        reasons=(reason,),
    )
    effects = []
    if MANUAL_SEVERITY in policy.notify:
        effects.append(Effect(EffectKind.NOTIFY, incident.id, "opened", MANUAL_SEVERITY.label, now))
    line = f"Opened for {actor}'s request: {reason}"
    return Change(incident, [TimelineEntry(now, "opened", line)], effects)


def owner_of(resource: str, policy: Policy) -> Ownership:
    """Whose the resource is by the policy's naming convention (its tenant, environment, component)."""
    return ownership(parse_resource_id(resource), {}, policy.naming, dict(policy.component_by_type))


def manual_mode(action: str, incident: Incident | None, policy: Policy, default_mode: str) -> str:
    """The mode the policy gives the action (the incident's rule's first), else the action's default.

    "suggest" would only print the command for a person to run: the person confirming is that
    person, so it runs (auto). "approve" still needs an approval, "dry-run" still only records.
    """
    plans = [p for p in policy.actions() if p.action == action]
    own = [p for p in plans if incident is not None and p.rule == incident.rule]
    mode = (own or plans)[0].mode if (own or plans) else default_mode
    return "auto" if mode == "suggest" else mode


def _resource(target: str, kind: str, open_incidents: Sequence[Incident], policy: Policy) -> str:
    what = WHAT[kind]
    if target.startswith("/"):
        parsed = parse_resource_id(target)
        if parsed.type != kind:
            raise Unresolvable(f"{target} is not a {what} ARM id (it is a {parsed.type or 'malformed id'})")
        return parsed.raw
    if not target:
        raise Unresolvable(f"name the {what} (its name or ARM id)")
    named = [
        i.resource_id
        for i in open_incidents
        if (p := parse_resource_id(i.resource_id)).type == kind and p.name.lower() == target.lower()
    ]
    if len(set(r.lower() for r in named)) == 1:
        return named[0]
    if len(set(r.lower() for r in named)) > 1:
        raise Unresolvable(
            f"more than one {what} is named {target}: give its ARM id ({', '.join(sorted(set(named)))})"
        )
    if policy.reach(target):
        return target  # a resource outside ARM that `[targets."<name>"]` says how to reach
    raise Unresolvable(
        f'no open incident is on a {what} named {target} and the policy has no [targets."{target}"]: '
        "give its ARM id"
    )


def _cluster(cluster: str, open_incidents: Sequence[Incident], policy: Policy) -> str:
    if cluster:
        return _resource(cluster, AKS, open_incidents, policy)
    clusters = sorted({i.resource_id for i in open_incidents if parse_resource_id(i.resource_id).type == AKS})
    if len(clusters) == 1:
        return clusters[0]
    names = ", ".join(parse_resource_id(c).name for c in clusters)
    why = f"open AKS incidents are on {names}" if clusters else "no open incident is on an AKS cluster"
    raise Unresolvable(f'name the cluster as "<cluster>:<namespace>/…" ({why})')


def _incident_on(resource: str, open_incidents: Sequence[Incident]) -> Incident | None:
    on = [i for i in open_incidents if i.resource_id.lower() == resource.lower()]
    return max(on, key=lambda i: i.opened_at) if on else None


def _policy_schedule(policy: Policy, action: str) -> str:
    for plan in policy.actions():
        schedule = plan.params.get("schedule") if plan.action == action else None
        if isinstance(schedule, str) and schedule and "{" not in schedule:
            return schedule
    return ""


def _known(actions: Mapping[tuple[str, str], str]) -> str:
    return ", ".join(sorted(f"{verb} {system}".strip() for verb, system in actions))
