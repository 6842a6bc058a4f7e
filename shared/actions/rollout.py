"""What `kubectl rollout undo deployment/NAME [--to-revision=N]` would do, decided in pure code.

A port of kubectl's DeploymentRollbacker.Rollback (pkg/polymorphichelpers/rollback.go) and the
helpers it calls in pkg/util/deployment: given the Deployment and the ReplicaSets of its namespace
as the API server returns them (plain JSON), plan the JSON patch kubectl would send, or say why
kubectl would refuse (an error) or skip (a plan with nothing to send). No I/O: the adapter reads
the objects and sends the patch (`application/json-patch+json`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import Rejected

POD_TEMPLATE_HASH = "pod-template-hash"  # appsv1.DefaultDeploymentUniqueLabelKey
REVISION = "deployment.kubernetes.io/revision"

# Kept from the Deployment, never taken from the ReplicaSet (rollback.go: annotationsToSkip).
ANNOTATIONS_KEPT = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)

_INT64 = re.compile(r"[+-]?[0-9]+\Z")  # what Go's strconv.ParseInt(v, 10, 64) accepts
_INT64_RANGE = range(-(2**63), 2**63)

JSON = dict[str, Any]


class RollbackRefused(Rejected):
    """`kubectl rollout undo` would refuse this Deployment; the message is kubectl's."""


class RevisionNotFound(RollbackRefused):
    """The asked-for revision is not among the ReplicaSets the Deployment controls."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"unable to find specified revision {revision} in history")
        self.revision = revision


class NoRolloutHistory(RollbackRefused):
    """The Deployment controls fewer than two revisions: there is nothing to go back to."""

    def __init__(self, name: str) -> None:
        super().__init__(f'no rollout history found for deployment "{name}"')
        self.name = name


class DeploymentPaused(RollbackRefused):
    """A paused Deployment is not rolled back (kubectl asks to resume it first)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            "you cannot rollback a paused deployment; "
            "resume it first with 'kubectl rollout resume' and try again"
        )
        self.name = name


@dataclass(frozen=True)
class RollbackPlan:
    """The rollback of one Deployment to one ReplicaSet's revision.

    `patch` is the JSON patch kubectl sends, empty when `skipped` says why nothing needs sending
    (the Deployment's template already is that revision's).
    """

    namespace: str
    deployment: str
    revision: int
    replica_set: str
    patch: tuple[Mapping[str, Any], ...] = ()
    skipped: str | None = None

    def body(self) -> list[JSON]:
        """The patch as a JSON-ready list (a copy: the plan stays as it was)."""
        return [copy.deepcopy(dict(op)) for op in self.patch]


def plan_rollback(
    deployment: Mapping[str, Any],
    replica_sets: Iterable[Mapping[str, Any]],
    to_revision: int | None = None,
) -> RollbackPlan:
    """Plan `kubectl rollout undo` (to `to_revision`, or to the revision before the newest)."""
    wanted = to_revision or 0  # kubectl's flag defaults to 0: "the previous revision"
    if wanted < 0:
        raise RevisionNotFound(wanted)
    meta = _mapping(deployment.get("metadata"))
    spec = _mapping(deployment.get("spec"))
    name = str(meta.get("name", ""))
    target = _target(deployment, controlled_replica_sets(deployment, replica_sets), wanted)
    target_meta = _mapping(target.get("metadata"))
    plan = RollbackPlan(
        namespace=str(meta.get("namespace", "")),
        deployment=name,
        revision=revision_of(target) or 0,
        replica_set=str(target_meta.get("name", "")),
    )
    if spec.get("paused") is True:
        raise DeploymentPaused(name)
    template = _mapping(_mapping(target.get("spec")).get("template"))
    if equal_ignore_hash(template, _mapping(spec.get("template"))):
        # kubectl names the revision it was asked for (0 when none was): we name the one found.
        reason = f"current template already matches revision {plan.revision}"
        return RollbackPlan(plan.namespace, name, plan.revision, plan.replica_set, skipped=reason)
    restored = _without_hash(template)
    annotations = {k: v for k, v in _mapping(meta.get("annotations")).items() if k in ANNOTATIONS_KEPT} | {
        k: v for k, v in _mapping(target_meta.get("annotations")).items() if k not in ANNOTATIONS_KEPT
    }
    patch = (
        {"op": "replace", "path": "/spec/template", "value": restored},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    )
    return RollbackPlan(plan.namespace, name, plan.revision, plan.replica_set, patch=patch)


def controlled_replica_sets(
    deployment: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The ReplicaSets kubectl considers, in kubectl's order.

    Those of the Deployment's namespace that its selector matches and whose controller reference
    is the Deployment (by uid), sorted by creation time then name, with the "new" one (the oldest
    whose template equals the Deployment's) moved last, as deploymentutil.GetAllReplicaSets does.
    """
    meta = _mapping(deployment.get("metadata"))
    uid = meta.get("uid")
    namespace = meta.get("namespace")
    selector = _mapping(deployment.get("spec")).get("selector")
    owned = [
        rs
        for rs in replica_sets
        if _mapping(rs.get("metadata")).get("namespace", namespace) == namespace
        and selector_matches(selector, _mapping(_mapping(rs.get("metadata")).get("labels")))
        and uid is not None
        and _controller_uid(rs) == uid
    ]
    owned.sort(key=_creation_order)
    template = _mapping(_mapping(deployment.get("spec")).get("template"))
    new = next(
        (
            rs
            for rs in owned
            if equal_ignore_hash(_mapping(_mapping(rs.get("spec")).get("template")), template)
        ),
        None,
    )
    return [rs for rs in owned if rs is not new] + ([new] if new is not None else [])


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """metav1.LabelSelectorAsSelector(selector).Matches(labels): a missing selector matches nothing."""
    if not isinstance(selector, Mapping):
        return False
    for key, value in _mapping(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key = expression.get("key")
        values = expression.get("values") or ()
        operator = expression.get("operator")
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            return False  # kubectl fails on an unknown operator; the API server never stores one
        if not ok:
            return False
    return True


def equal_ignore_hash(template1: Mapping[str, Any], template2: Mapping[str, Any]) -> bool:
    """Whether two pod templates are equal apart from the `pod-template-hash` label.

    kubectl compares the decoded Go structs with apiequality.Semantic.DeepEqual, where a nil and
    an empty list or map are equal. In JSON a null and a missing field are the same nil; an empty
    list is dropped too, and an empty map where the field is a map (labels, annotations,
    nodeSelector). `{}` elsewhere may be a pointer to an empty struct, which differs from nil, so it
    is kept: where this errs it errs towards "differs", which only sends a patch that changes nothing.
    """
    return _semantic(_without_hash(template1)) == _semantic(_without_hash(template2))


def _target(
    deployment: Mapping[str, Any], owned: Sequence[Mapping[str, Any]], wanted: int
) -> Mapping[str, Any]:
    """deploymentRevision: the ReplicaSet of revision `wanted`, or the second newest when 0."""
    latest: tuple[int, Mapping[str, Any] | None] = (-1, None)
    previous: tuple[int, Mapping[str, Any] | None] = (-1, None)
    for rs in owned:
        revision = revision_of(rs)
        if revision is None:  # an annotation ParseInt refuses: kubectl passes over the ReplicaSet
            continue
        if wanted == 0:
            if latest[0] < revision:
                previous, latest = latest, (revision, rs)
            elif previous[0] < revision:
                previous = (revision, rs)
        elif revision == wanted:
            return rs
    if wanted > 0:
        raise RevisionNotFound(wanted)
    if previous[1] is None:
        raise NoRolloutHistory(str(_mapping(deployment.get("metadata")).get("name", "")))
    return previous[1]


def revision_of(rs: Mapping[str, Any]) -> int | None:
    """deploymentutil.Revision: a missing annotation is revision 0; one ParseInt refuses is None."""
    value = _mapping(_mapping(rs.get("metadata")).get("annotations")).get(REVISION)
    if value is None:
        return 0
    if not isinstance(value, str) or not _INT64.match(value):
        return None
    number = int(value)
    return number if number in _INT64_RANGE else None


def _controller_uid(rs: Mapping[str, Any]) -> Any:
    """metav1.GetControllerOf: the first owner reference marked controller."""
    for ref in _mapping(rs.get("metadata")).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref.get("uid")
    return None


def _creation_order(rs: Mapping[str, Any]) -> tuple[str, str]:
    # RFC 3339 in UTC with whole seconds, as the API server writes it, sorts as text; a missing one
    # is Go's zero time, the earliest.
    meta = _mapping(rs.get("metadata"))
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name", "")))


def _without_hash(template: Mapping[str, Any]) -> JSON:
    """A deep copy of the template without the `pod-template-hash` label (and no labels left empty)."""
    copied: JSON = copy.deepcopy(dict(template))
    meta = copied.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("labels"), dict):
        meta["labels"].pop(POD_TEMPLATE_HASH, None)
        if not meta["labels"]:
            del meta["labels"]  # Go's `labels,omitempty` drops the map the delete emptied
    return copied


_MAP_FIELDS = frozenset({"labels", "annotations", "nodeSelector"})


def _semantic(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            item = _semantic(item)
            if item is None or item == [] or (item == {} and key in _MAP_FIELDS):
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [_semantic(item) for item in value]
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
