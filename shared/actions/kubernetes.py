"""Kubernetes actions: roll a Deployment back, restart it, restore a namespace with Velero.

Pure: the objects are plain JSON as the API server returns them, read and written through the
`KubeApi` port (the kubernetes client in `shared.adapters.kube`). The rollback is the plan of
`shared.actions.rollout` (proven against the real kubectl); done means what `kubectl rollout
status` says, checked in its order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from shared.actions.kind import (
    ActionFailed,
    Context,
    Param,
    Precheck,
    Progress,
    Step,
    Target,
    Verdict,
)
from shared.actions.rollout import RollbackPlan, RollbackRefused, controlled_replica_sets, plan_rollback
from shared.clock import iso, parse_iso

JSON = dict[str, Any]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
VELERO = ("velero.io", "v1")
SCHEDULE_LABEL = "velero.io/schedule-name"


class KubeApi(Protocol):
    """What the Kubernetes actions read and write in one cluster (plain JSON in, plain JSON out)."""

    def deployment(self, namespace: str, name: str) -> JSON:
        """GET the Deployment."""
        ...

    def replica_sets(self, namespace: str, selector: str) -> list[JSON]:
        """LIST ReplicaSets by label selector."""
        ...

    def patch_deployment(self, namespace: str, name: str, body: Any) -> JSON:
        """PATCH: a list is a JSON patch, a dict a strategic merge patch; the patched object back."""
        ...

    def custom_objects(self, namespace: str, plural: str, selector: str = "") -> list[JSON]:
        """LIST velero.io/v1 objects (backups)."""
        ...

    def custom_object(self, namespace: str, plural: str, name: str) -> JSON:
        """GET one velero.io/v1 object (a restore)."""
        ...

    def create_custom_object(self, namespace: str, plural: str, body: JSON) -> JSON | None:
        """CREATE a velero.io/v1 object; None when one of that name exists (a retry)."""
        ...


Clusters = Callable[[Target], KubeApi]  # the API of the cluster a target names


def split_deployment(target: Target) -> tuple[str, str]:
    """The `namespace/name` parameter; ActionFailed when it is not one."""
    namespace, _, name = str(target.param("deployment", "")).partition("/")
    if not namespace or not name or "/" in name:
        raise ActionFailed(f"deployment must be namespace/name, got {target.param('deployment')!r}")
    return namespace, name


def _context_flag(target: Target) -> str:
    context = target.reach.get("context")
    return f" --context {context}" if context else ""


def rollout_status(deployment: JSON, generation: int) -> Step:
    """`kubectl rollout status`, in its order: observed generation, deadline, updated, old, available."""
    meta, spec, status = (
        deployment.get("metadata", {}),
        deployment.get("spec", {}),
        deployment.get("status", {}),
    )
    name = meta.get("name", "?")
    observed = int(status.get("observedGeneration", 0))
    if max(int(meta.get("generation", 0)), generation) > observed:
        return Step(Progress.PENDING, "Waiting for deployment spec update to be observed...")
    for condition in status.get("conditions", []) or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return Step(Progress.FAILED, f'deployment "{name}" exceeded its progress deadline')
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    replicas = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < desired:
        return Step(
            Progress.PENDING, f"{waiting}{updated} out of {desired} new replicas have been updated..."
        )
    if replicas > updated:
        return Step(
            Progress.PENDING, f"{waiting}{replicas - updated} old replicas are pending termination..."
        )
    if available < updated:
        return Step(Progress.PENDING, f"{waiting}{available} of {updated} updated replicas are available...")
    return Step(Progress.DONE, f'deployment "{name}" successfully rolled out')


def selector_text(deployment: JSON) -> str:
    """The Deployment's label selector as a query (matchLabels and matchExpressions)."""
    selector = deployment.get("spec", {}).get("selector", {}) or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(sorted(expression.get("values") or []))
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
                operator, f"!{key}"
            )
        )
    return ",".join(parts)


class _DeploymentAction:
    """What rollback and restart share: the Deployment, its rollout status, the command's flags."""

    default_mode = "auto"
    timeout_minutes = 15

    def __init__(self, clusters: Clusters, check_seconds: float = 15.0) -> None:
        self.clusters = clusters
        self.check_seconds = check_seconds

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        """As `kubectl rollout status` does."""
        namespace, name = split_deployment(target)
        found = self.clusters(target).deployment(namespace, name)
        step = rollout_status(found, int(continuation.get("generation", 0)))
        return Step(step.progress, step.detail, {}, self.check_seconds)

    def _started(self, patched: JSON, what: str) -> Step:
        generation = int(patched.get("metadata", {}).get("generation", 0))
        return Step(Progress.PENDING, what, {"generation": generation}, self.check_seconds)


class KubernetesRollback(_DeploymentAction):
    """`kubernetes.rollback`: exactly what `kubectl rollout undo` does, to a recent rollout only."""

    name = "kubernetes.rollback"
    params: Mapping[str, Param] = {
        "deployment": Param(required=True, help='"namespace/name" (template)'),
        "to_revision": Param(kind=int, help="the revision to go back to (default: the one before)"),
        "rolled_out_within_minutes": Param(
            kind=int, help="only if the current ReplicaSet was created this long before the incident (60)"
        ),
    }

    def describe(self, target: Target) -> str:
        namespace, name = split_deployment(target)
        to = target.param("to_revision")
        revision = f"revision {to}" if to else "its previous revision"
        return f"roll Deployment {namespace}/{name} back to {revision}"

    def command(self, target: Target) -> str:
        namespace, name = split_deployment(target)
        to = target.param("to_revision")
        revision = f" --to-revision={to}" if to else ""
        return f"kubectl rollout undo deployment/{name} -n {namespace}{revision}{_context_flag(target)}"

    def _plan(self, target: Target) -> tuple[JSON, list[JSON], RollbackPlan]:
        """The Deployment, its namespace's ReplicaSets, and kubectl's plan for them (RollbackRefused)."""
        namespace, name = split_deployment(target)
        api = self.clusters(target)
        deployment = api.deployment(namespace, name)
        replica_sets = api.replica_sets(namespace, selector_text(deployment))
        return (
            deployment,
            replica_sets,
            plan_rollback(deployment, replica_sets, int(target.param("to_revision", 0) or 0)),
        )

    def precondition(self, target: Target, context: Context) -> Precheck:
        namespace, name = split_deployment(target)
        try:
            deployment, replica_sets, plan = self._plan(target)
        except RollbackRefused as e:
            return Precheck(Verdict.REFUSE, str(e))
        if not plan.patch:
            return Precheck(
                Verdict.SKIP, f"the template of {namespace}/{name} already matches revision {plan.revision}"
            )
        window = int(target.param("rolled_out_within_minutes", 60) or 60)
        # The current ReplicaSet: kubectl's "new" one, which controlled_replica_sets puts last.
        newest = controlled_replica_sets(deployment, replica_sets)[-1]
        created = parse_iso(str(newest.get("metadata", {}).get("creationTimestamp", "")))
        since = context.incident_opened_at - timedelta(minutes=window)
        if created is None or created < since:
            when = iso(created) if created else "an unknown time"
            return Precheck(
                Verdict.REFUSE,
                f"not a recent rollout: the current ReplicaSet of {namespace}/{name} was created at {when}, "
                f"more than {window} min before the incident opened",
            )
        return Precheck(
            Verdict.PROCEED,
            f"{namespace}/{name} was rolled out at {iso(created)}; going back to revision {plan.revision}",
            {"revision": plan.revision},
        )

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        namespace, name = split_deployment(target)
        try:
            _, _, plan = self._plan(target)
        except RollbackRefused as e:
            raise ActionFailed(str(e)) from e
        if not plan.patch:  # a retry after the patch went through: the template already matches
            return Step(
                Progress.PENDING,
                f"already at revision {plan.revision}",
                {"generation": 0},
                self.check_seconds,
            )
        patched = self.clusters(target).patch_deployment(namespace, name, plan.body())
        return self._started(patched, f"rolled back to revision {plan.revision}")


class KubernetesRestart(_DeploymentAction):
    """`kubernetes.restart`: what `kubectl rollout restart` does (a restartedAt template annotation)."""

    name = "kubernetes.restart"
    params: Mapping[str, Param] = {"deployment": Param(required=True, help='"namespace/name" (template)')}

    def describe(self, target: Target) -> str:
        namespace, name = split_deployment(target)
        return f"restart the pods of Deployment {namespace}/{name} (a rolling restart)"

    def command(self, target: Target) -> str:
        namespace, name = split_deployment(target)
        return f"kubectl rollout restart deployment/{name} -n {namespace}{_context_flag(target)}"

    def precondition(self, target: Target, context: Context) -> Precheck:
        namespace, name = split_deployment(target)
        deployment = self.clusters(target).deployment(namespace, name)
        if deployment.get("spec", {}).get("paused"):
            return Precheck(Verdict.REFUSE, f"deployments/{name} is paused: resume it before restarting")
        return Precheck(Verdict.PROCEED, f"{namespace}/{name} is not paused")

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        namespace, name = split_deployment(target)
        # The same as kubectl's: one strategic merge patch of the template's annotations.
        stamp = context.now.astimezone().isoformat(timespec="seconds")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        patched = self.clusters(target).patch_deployment(namespace, name, body)
        return self._started(patched, f"restart requested at {stamp}")


class VeleroRestore:
    """`velero.restore`: a velero.io/v1 Restore of a namespace from a named backup or a schedule's newest."""

    name = "velero.restore"
    default_mode = "approve"
    timeout_minutes = 240  # the DR plan's RTO for AKS
    params: Mapping[str, Param] = {
        "namespace": Param(required=True, help="the namespace to restore (template)"),
        "backup": Param(help="a backup by name"),
        "schedule": Param(help="or the newest Completed backup of this schedule"),
        "namespace_mapping": Param(help='restore into another namespace: "old:new"'),
        "velero_namespace": Param(help="where Velero runs (velero)"),
    }

    def __init__(self, clusters: Clusters, check_seconds: float = 15.0) -> None:
        self.clusters = clusters
        self.check_seconds = check_seconds

    def describe(self, target: Target) -> str:
        source = (
            target.param("backup") or f"the newest Completed backup of schedule {target.param('schedule')}"
        )
        return f"restore namespace {target.param('namespace')} from {source} with Velero"

    def command(self, target: Target) -> str:
        source = (
            f"--from-backup {target.param('backup')}"
            if target.param("backup")
            else f"--from-schedule {target.param('schedule')}"
        )
        mapping = (
            f" --namespace-mappings {target.param('namespace_mapping')}"
            if target.param("namespace_mapping")
            else ""
        )
        return f"velero restore create {source} --include-namespaces {target.param('namespace')}{mapping}"

    def precondition(self, target: Target, context: Context) -> Precheck:
        backup, schedule = target.param("backup"), target.param("schedule")
        if bool(backup) == bool(schedule):
            return Precheck(Verdict.REFUSE, "name exactly one of backup and schedule")
        api = self.clusters(target)
        home = str(target.param("velero_namespace") or "velero")
        if backup:
            found = [
                b for b in api.custom_objects(home, "backups") if b.get("metadata", {}).get("name") == backup
            ]
        else:
            found = api.custom_objects(home, "backups", f"{SCHEDULE_LABEL}={schedule}")
        completed = [b for b in found if b.get("status", {}).get("phase") == "Completed"]
        if not completed:
            what = f"backup {backup}" if backup else f"a Completed backup of schedule {schedule}"
            return Precheck(
                Verdict.REFUSE, f"no {what} in namespace {home} (PartiallyFailed ones are skipped)"
            )
        newest = max(completed, key=lambda b: str(b.get("status", {}).get("startTimestamp", "")))
        chosen = newest["metadata"]["name"]
        started = newest.get("status", {}).get("startTimestamp", "?")
        return Precheck(
            Verdict.PROCEED, f"restores from backup {chosen} (started {started})", {"backup": chosen}
        )

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        home = str(target.param("velero_namespace") or "velero")
        backup = str(found.get("backup") or target.param("backup"))
        namespace = str(target.param("namespace"))
        # Named by incident and namespace: a retried create finds its own restore, never starts a second.
        digest = hashlib.sha256(f"{context.incident_id}\n{namespace}".encode()).hexdigest()[:10]
        name = f"dr-{namespace[:40]}-{digest}"
        spec: JSON = {"backupName": backup, "includedNamespaces": [namespace]}
        if mapping := target.param("namespace_mapping"):
            old, _, new = str(mapping).partition(":")
            spec["namespaceMapping"] = {old: new}
        body = {
            "apiVersion": "/".join(VELERO),
            "kind": "Restore",
            "metadata": {"name": name, "namespace": home},
            "spec": spec,
        }
        created = self.clusters(target).create_custom_object(home, "restores", body)
        what = f"restore {name} from backup {backup} created" if created else f"restore {name} exists already"
        return Step(Progress.PENDING, what, {"restore": name, "velero_namespace": home}, self.check_seconds)

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        home, name = str(continuation.get("velero_namespace", "velero")), str(continuation.get("restore", ""))
        status = self.clusters(target).custom_object(home, "restores", name).get("status", {}) or {}
        phase = status.get("phase", "New")
        counts = f"{status.get('errors', 0)} errors, {status.get('warnings', 0)} warnings"
        if phase == "Completed":
            return Step(Progress.DONE, f"restore {name} Completed ({counts})")
        if phase in ("PartiallyFailed", "Failed", "FailedValidation"):
            why = "; ".join(status.get("validationErrors") or []) or counts
            return Step(Progress.FAILED, f"restore {name} {phase}: {why}")
        return Step(Progress.PENDING, f"restore {name} {phase}", {}, self.check_seconds)
