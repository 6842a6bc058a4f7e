"""`kubernetes.rollback` and `kubernetes.restart`: `kubectl rollout undo` / `restart`, then `rollout status`.

The target's resource is the cluster (an AKS resource id, or a `[targets]` name whose reach gives
`kubeconfig` and `context`); the `deployment` parameter names the Deployment as "namespace/name".
Both kinds talk to the cluster through the small `Cluster` port (plain JSON in and out, as the API
server writes it); shared.adapters.kube implements it with the kubernetes client.

default_mode is auto for both: a rollback is refused unless the current revision was rolled out
shortly before the incident opened (and undoing it is itself a rollout that can be undone), and a
restart only replaces pods with identical ones.

Both patches also set the Deployment's own annotation `dr-responder/action-id` to the action's id
(its metadata, not the pod template: the pods and the ReplicaSet kubectl's rollback reuses stay
what kubectl's would be). A patch is applied whole or not at all, so after a start whose outcome
is unknown the precondition knows by that annotation whether this action's patch was applied.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.actions.kind import ActionFailed, Context, Param, Precheck, Progress, Step, Target, Verdict
from shared.actions.rollout import (
    RollbackRefused,
    controlled_replica_sets,
    plan_rollback,
    revision_of,
)

JSON = dict[str, Any]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTART_FIELD_MANAGER = "kubectl-rollout"  # what `kubectl rollout restart` sends as fieldManager
ACTION_ANNOTATION = "dr-responder/action-id"  # on the Deployment: which action patched it last
TIMED_OUT = "ProgressDeadlineExceeded"  # deploymentutil.TimedOutReason
CHECK_SECONDS = 10.0


class NotFound(ActionFailed):
    """The API server answered 404: the object is not there."""


class AlreadyExists(ActionFailed):
    """A create found the name taken (409 AlreadyExists)."""


class Cluster(Protocol):
    """The calls the Kubernetes actions make on one cluster; objects are the API server's JSON."""

    def deployment(self, namespace: str, name: str) -> JSON:
        """GET apps/v1 deployments/NAME."""
        ...

    def replica_sets(self, namespace: str, label_selector: str) -> list[JSON]:
        """LIST apps/v1 replicasets with a labelSelector."""
        ...

    def patch_deployment(
        self, namespace: str, name: str, patch: list[JSON] | JSON, field_manager: str | None = None
    ) -> JSON:
        """PATCH a Deployment: a list is a JSON patch, a dict a strategic merge patch; the patched object."""
        ...

    def custom_objects(
        self, group: str, version: str, namespace: str, plural: str, label_selector: str
    ) -> list[JSON]:
        """LIST a custom resource (`velero.io/v1 backups`) with a labelSelector."""
        ...

    def custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> JSON:
        """GET one custom object."""
        ...

    def create_custom_object(self, group: str, version: str, namespace: str, plural: str, body: JSON) -> JSON:
        """POST a custom object; AlreadyExists when its name is taken."""
        ...


class Clusters(Protocol):
    """Reaches the cluster a target names."""

    def cluster(self, target: Target) -> Cluster:
        """The cluster of `target.resource` (AKS through ARM, or the kubeconfig context of its reach)."""
        ...


# --- what both kinds share ------------------------------------------------------------------------


def object_ref(value: Any, what: str = "deployment") -> tuple[str, str]:
    """ "namespace/name" → (namespace, name); ActionFailed for anything else."""
    parts = str(value or "").strip().split("/")
    if len(parts) != 2 or not all(parts):
        raise ActionFailed(f'{what} must be "namespace/name", not {value!r}')
    return parts[0], parts[1]


def label_selector(selector: Any) -> str:
    """metav1.LabelSelectorAsSelector(selector).String(): what kubectl lists ReplicaSets with."""
    if not isinstance(selector, Mapping):
        raise ActionFailed("the Deployment has no selector")
    requirements: list[tuple[str, str]] = [
        (str(k), f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or ():
        key, operator = str(expression.get("key")), expression.get("operator")
        values = ",".join(sorted(str(v) for v in expression.get("values") or ()))
        rendered = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(str(operator))
        if rendered is None:
            raise ActionFailed(f"the Deployment's selector has an unknown operator {operator!r}")
        requirements.append((key, rendered))
    return ",".join(text for _, text in sorted(requirements, key=lambda r: r[0]))


def rollout_status(deployment: Mapping[str, Any], generation: int = 0) -> Step:
    """`kubectl rollout status` once (DeploymentStatusViewer.Status), in kubectl's order and words.

    `generation` is the one our patch produced: the controller must have observed at least that.
    """
    meta, spec, status = (_mapping(deployment.get(k)) for k in ("metadata", "spec", "status"))
    name = meta.get("name", "")
    continuation = {"generation": max(int(meta.get("generation") or 0), generation)}

    def pending(message: str) -> Step:
        return Step(Progress.PENDING, message, continuation, CHECK_SECONDS)

    if continuation["generation"] > int(status.get("observedGeneration") or 0):
        return pending("Waiting for deployment spec update to be observed...")
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Progressing":
            if condition.get("reason") == TIMED_OUT:
                return Step(Progress.FAILED, f'deployment "{name}" exceeded its progress deadline')
            break
    desired = spec.get("replicas")
    replicas, updated, available = (
        int(status.get(k) or 0) for k in ("replicas", "updatedReplicas", "availableReplicas")
    )
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if desired is not None and updated < int(desired):
        return pending(f"{waiting}{updated} out of {desired} new replicas have been updated...")
    if replicas > updated:
        return pending(f"{waiting}{replicas - updated} old replicas are pending termination...")
    if available < updated:
        return pending(f"{waiting}{available} of {updated} updated replicas are available...")
    return Step(Progress.DONE, f'deployment "{name}" successfully rolled out', continuation)


def kubectl_scope(target: Target, context_flag: str = "--context") -> list[str]:
    """The flags that make kubectl (velero: `--kubecontext`) reach the target's cluster."""
    context = target.reach.get("context") or aks_cluster_name(target.resource) or target.resource
    flags = [context_flag, str(context)]
    if target.reach.get("kubeconfig"):
        flags += ["--kubeconfig", str(target.reach["kubeconfig"])]
    return flags


def aks_cluster_name(resource: str) -> str | None:
    """The cluster name of an AKS resource id (the context `az aks get-credentials` writes), else None."""
    parts = resource.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if len(parts) == 8 and lowered[4:7] == ["providers", "microsoft.containerservice", "managedclusters"]:
        return parts[7]
    return None


def shell(words: Sequence[str]) -> str:
    """A command line a person can paste."""
    return " ".join(shlex.quote(w) for w in words)


def rfc3339(moment: datetime) -> str:
    """Go's time.Format(time.RFC3339) of the moment in UTC: 2026-11-25T10:04:05Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: Any) -> datetime | None:
    """An API server timestamp (RFC 3339, whole seconds, usually Z) as an aware datetime."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def refusal(error: ActionFailed) -> Precheck:
    """A precondition that could not read what it needs refuses, saying why."""
    return Precheck(Verdict.REFUSE, str(error))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _generation(deployment: Mapping[str, Any]) -> int:
    return int(_mapping(deployment.get("metadata")).get("generation") or 0)


def patched_by(deployment: Mapping[str, Any], context: Context) -> bool:
    """Whether this action's own patch is on the Deployment (its id in ACTION_ANNOTATION)."""
    annotations = _mapping(_mapping(deployment.get("metadata")).get("annotations"))
    return bool(context.action_id) and annotations.get(ACTION_ANNOTATION) == context.action_id


def started_here(
    deployment: Mapping[str, Any], context: Context, what: str, keep: Sequence[str] = ()
) -> Precheck | None:
    """After a start whose outcome is unknown: STARTED when its patch is on the Deployment, else None.

    The check then follows the rollout from the generation the Deployment has now; `keep` names
    what of the start's `found` the check carries too.
    """
    if context.started is None or not patched_by(deployment, context):
        return None
    meta = _mapping(deployment.get("metadata"))
    where = f"deployment {meta.get('namespace')}/{meta.get('name')}"
    kept = {k: context.started[k] for k in keep if k in context.started}
    return Precheck(
        Verdict.STARTED,
        f"{where} carries this action's {ACTION_ANNOTATION}: {what} was applied",
        {"generation": _generation(deployment), **kept},
    )


def _stamped(patch: Sequence[Mapping[str, Any]], action_id: str) -> list[JSON]:
    """kubectl's rollback patch, its `/metadata/annotations` value carrying the action id too."""
    out = [dict(op) for op in patch]
    if action_id:
        for op in out:
            if op.get("path") == "/metadata/annotations":
                op["value"] = {**_mapping(op.get("value")), ACTION_ANNOTATION: action_id}
    return out


def _check_rollout(clusters: Clusters, target: Target, continuation: Mapping[str, Any]) -> Step:
    namespace, name = object_ref(target.param("deployment"))
    found = clusters.cluster(target).deployment(namespace, name)
    step = rollout_status(found, int(continuation.get("generation") or 0))
    return Step(step.progress, step.detail, {**continuation, **step.continuation}, step.check_after)


DEPLOYMENT = Param(
    required=True, help='the Deployment, "namespace/name" (a template over the signal)', narrows=True
)


# --- kubernetes.rollback --------------------------------------------------------------------------


class KubernetesRollback:
    """`kubectl rollout undo deployment/NAME [--to-revision=N]`, refused unless the rollout is recent."""

    name = "kubernetes.rollback"
    default_mode = "auto"
    timeout_minutes = 15
    params: Mapping[str, Param] = {
        "deployment": DEPLOYMENT,
        "to_revision": Param(kind=int, help="the revision to go back to (default: the one before)"),
        "rolled_out_within_minutes": Param(
            kind=int,
            help="refuse unless the current revision was rolled out this long before the incident "
            "opened (default 60; 0 turns the check off)",
        ),
    }
    default_window_minutes = 60

    def __init__(self, clusters: Clusters) -> None:
        self.clusters = clusters

    def describe(self, target: Target) -> str:
        """What it will do."""
        revision = target.param("to_revision")
        to = f"revision {revision}" if revision else "the previous revision"
        return f"Roll deployment {target.param('deployment')} back to {to} on {target.resource}"

    def command(self, target: Target) -> str:
        """`kubectl rollout undo …`."""
        namespace, name = object_ref(target.param("deployment"))
        words = ["kubectl", "rollout", "undo", f"deployment/{name}", "-n", namespace]
        if target.param("to_revision"):
            words.append(f"--to-revision={int(target.param('to_revision'))}")
        return shell(words + kubectl_scope(target))

    def precondition(self, target: Target, context: Context) -> Precheck:
        """Plan the undo as kubectl would; refuse a paused Deployment or a rollout that is not recent."""
        try:
            namespace, name = object_ref(target.param("deployment"))
            cluster = self.clusters.cluster(target)
            deployment = cluster.deployment(namespace, name)
            # Before planning: once the controller has made the old ReplicaSet the newest revision,
            # a plan would go "back" to the revision this action rolled away from.
            if (started := started_here(deployment, context, "its rollback", ("revision",))) is not None:
                return started
            selector = label_selector(_mapping(deployment.get("spec")).get("selector"))
            replica_sets = cluster.replica_sets(namespace, selector)
        except ActionFailed as e:
            return refusal(e)
        try:
            to_revision = target.param("to_revision")
            plan = plan_rollback(deployment, replica_sets, None if to_revision is None else int(to_revision))
        except RollbackRefused as e:
            return Precheck(Verdict.REFUSE, str(e))
        where = f"deployment {namespace}/{name}"
        if plan.skipped is not None:
            return Precheck(Verdict.SKIP, f"{where}: skipped rollback ({plan.skipped})")
        stale = self._not_recent(deployment, replica_sets, target, context)
        if stale is not None:
            return Precheck(Verdict.REFUSE, f"{where}: {stale}")
        found = {
            "patch": plan.body(),
            "revision": plan.revision,
            "replica_set": plan.replica_set,
            "generation": _generation(deployment),
        }
        detail = f"{where}: roll back to revision {plan.revision} (replica set {plan.replica_set})"
        return Precheck(Verdict.PROCEED, detail, found)

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        """Send the planned JSON patch, unless the Deployment's spec changed since it was planned."""
        namespace, name = object_ref(target.param("deployment"))
        cluster = self.clusters.cluster(target)
        # An approval may take minutes; someone may have rolled out meanwhile, and the approved
        # patch would then undo their rollout, not the one the precondition saw.
        now = _generation(cluster.deployment(namespace, name))
        if now != found["generation"]:
            raise ActionFailed(
                f"deployment {namespace}/{name} changed since the precondition "
                f"(generation {found['generation']} → {now}): not rolled back"
            )
        patched = cluster.patch_deployment(namespace, name, _stamped(found["patch"], context.action_id))
        continuation = {"generation": _generation(patched), "revision": found["revision"]}
        detail = (
            f"deployment.apps/{name} rolled back to revision {found['revision']} "
            f"(replica set {found['replica_set']})"
        )
        return Step(Progress.PENDING, detail, continuation, CHECK_SECONDS)

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        """`kubectl rollout status`."""
        return _check_rollout(self.clusters, target, continuation)

    def _not_recent(
        self,
        deployment: Mapping[str, Any],
        replica_sets: Sequence[Mapping[str, Any]],
        target: Target,
        context: Context,
    ) -> str | None:
        """Why the current revision does not look like the incident's cause, or None."""
        window = int(target.param("rolled_out_within_minutes", self.default_window_minutes))
        if window <= 0:
            return None
        owned = [
            rs for rs in controlled_replica_sets(deployment, replica_sets) if revision_of(rs) is not None
        ]
        if not owned:
            return "not a recent rollout: it controls no ReplicaSet with a revision"
        newest = max(owned, key=lambda rs: revision_of(rs) or 0)
        meta = _mapping(newest.get("metadata"))
        created = parse_rfc3339(meta.get("creationTimestamp"))
        opened = context.incident_opened_at
        label = f"replica set {meta.get('name')} (revision {revision_of(newest)})"
        if created is None:
            return f"not a recent rollout: {label} has no creation time"
        if created > opened:
            return (
                f"{label} was created at {rfc3339(created)}, after the incident opened at "
                f"{rfc3339(opened)}: perhaps a fix already; not rolled back"
            )
        if created < opened - timedelta(minutes=window):
            return (
                f"not a recent rollout: {label} was created at {rfc3339(created)}, more than {window} "
                f"minutes before the incident opened at {rfc3339(opened)}"
            )
        return None


# --- kubernetes.restart ---------------------------------------------------------------------------


class KubernetesRestart:
    """`kubectl rollout restart deployment/NAME`: new pods from the same template."""

    name = "kubernetes.restart"
    default_mode = "auto"
    timeout_minutes = 15
    params: Mapping[str, Param] = {"deployment": DEPLOYMENT}

    def __init__(self, clusters: Clusters) -> None:
        self.clusters = clusters

    def describe(self, target: Target) -> str:
        """What it will do."""
        return f"Restart the pods of deployment {target.param('deployment')} on {target.resource}"

    def command(self, target: Target) -> str:
        """`kubectl rollout restart …`."""
        namespace, name = object_ref(target.param("deployment"))
        return shell(
            ["kubectl", "rollout", "restart", f"deployment/{name}", "-n", namespace, *kubectl_scope(target)]
        )

    def precondition(self, target: Target, context: Context) -> Precheck:
        """The Deployment is there and not paused (kubectl refuses a paused one)."""
        try:
            namespace, name = object_ref(target.param("deployment"))
            deployment = self.clusters.cluster(target).deployment(namespace, name)
        except ActionFailed as e:
            return refusal(e)
        if (started := started_here(deployment, context, "its restart")) is not None:
            return started
        if _mapping(deployment.get("spec")).get("paused") is True:
            return Precheck(
                Verdict.REFUSE,
                f"deployment {namespace}/{name}: can't restart paused deployment (run rollout resume first)",
            )
        return Precheck(Verdict.PROCEED, f"deployment {namespace}/{name}: restart its pods")

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        """The strategic merge patch kubectl sends (the pod template's restartedAt), and the action id."""
        namespace, name = object_ref(target.param("deployment"))
        at = rfc3339(context.now)
        patch: JSON = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
        if context.action_id:
            patch["metadata"] = {"annotations": {ACTION_ANNOTATION: context.action_id}}
        patched = self.clusters.cluster(target).patch_deployment(
            namespace, name, patch, field_manager=RESTART_FIELD_MANAGER
        )
        continuation = {"generation": _generation(patched), "restarted_at": at}
        return Step(
            Progress.PENDING, f"deployment.apps/{name} restarted at {at}", continuation, CHECK_SECONDS
        )

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        """`kubectl rollout status`."""
        return _check_rollout(self.clusters, target, continuation)
