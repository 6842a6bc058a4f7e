"""`velero.restore`: restore one namespace from a Velero backup, chosen before anyone approves.

The target's resource is the cluster (as for the Kubernetes actions; the same `Cluster` port). The
backup is named (`backup`) or found for a schedule (`schedule`) the way Velero's restore
controller finds it: the newest by `status.startTimestamp` whose phase is Completed
(PartiallyFailed ones are passed over). The precondition picks it, so the approval request names
the very backup execute restores from. Execute creates a `velero.io/v1` Restore whose name is
stable per incident and namespace: a second create answers 409 AlreadyExists, which means the
restore was started already. The check follows `status.phase`.

default_mode is approve: a restore writes into the cluster from an older point in time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from shared.actions.kind import ActionFailed, Context, Param, Precheck, Progress, Step, Target, Verdict
from shared.actions.kubernetes import (
    JSON,
    AlreadyExists,
    Cluster,
    Clusters,
    NotFound,
    kubectl_scope,
    parse_rfc3339,
    refusal,
    shell,
)

GROUP, VERSION = "velero.io", "v1"
SCHEDULE_LABEL = "velero.io/schedule-name"
INCIDENT_ANNOTATION = "dr-responder/incident"
DONE_PHASES = frozenset({"Completed"})
FAILED_PHASES = frozenset({"PartiallyFailed", "Failed", "FailedValidation"})
CHECK_SECONDS = 30.0
_NOT_NAME = re.compile(r"[^a-z0-9-]+")


def restore_name(incident_id: str, namespace: str) -> str:
    """dr-<incident>-<namespace>, a DNS label (≤ 63: Velero puts it in a label too)."""
    name = _NOT_NAME.sub("-", f"dr-{incident_id}-{namespace}".lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def namespace_mapping(value: Any) -> dict[str, str]:
    """ "old:new[,old2:new2]" or a table → {old: new}; ActionFailed for anything else."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = []
        for item in str(value).split(","):
            old, sep, new = item.strip().partition(":")
            if not sep:
                raise ActionFailed(f'namespace_mapping must be "old:new[,old2:new2]", not {value!r}')
            pairs.append((old.strip(), new.strip()))
    if not all(old and new for old, new in pairs):
        raise ActionFailed(f"namespace_mapping has an empty namespace: {value!r}")
    return dict(pairs)


def newest_completed(backups: list[JSON]) -> JSON | None:
    """mostRecentCompletedBackup: newest by status.startTimestamp (none is oldest) that is Completed."""
    epoch = parse_rfc3339("0001-01-01T00:00:00Z")

    def started(backup: JSON) -> Any:
        return parse_rfc3339(_status(backup).get("startTimestamp")) or epoch

    ordered = sorted(backups, key=started, reverse=True)
    return next((b for b in ordered if _status(b).get("phase") == "Completed"), None)


def _part(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _part(obj, "status")


def _name(obj: Mapping[str, Any]) -> str:
    return str(_part(obj, "metadata").get("name", ""))


def _covers(backup: JSON, namespace: str) -> str | None:
    """Why the backup does not hold the namespace, or None when it does."""
    spec = _part(backup, "spec")
    included = list(spec.get("includedNamespaces") or [])
    if included and "*" not in included and namespace not in included:
        return f"backup {_name(backup)} does not include namespace {namespace} (it has {', '.join(included)})"
    if namespace in (spec.get("excludedNamespaces") or []):
        return f"backup {_name(backup)} excludes namespace {namespace}"
    return None


class VeleroRestore:
    """`velero restore create --from-backup B --include-namespaces NS`."""

    name = "velero.restore"
    default_mode = "approve"
    timeout_minutes = 180
    params: Mapping[str, Param] = {
        "namespace": Param(
            required=True, help="the namespace to restore (a template over the signal)", narrows=True
        ),
        "backup": Param(help="the backup to restore from (give this or schedule)"),
        "schedule": Param(help="restore the newest Completed backup of this schedule (or give backup)"),
        "namespace_mapping": Param(help='restore into other namespaces: "old:new[,old2:new2]" or a table'),
        "velero_namespace": Param(help="the namespace Velero runs in (default velero)"),
    }

    def __init__(self, clusters: Clusters) -> None:
        self.clusters = clusters

    def describe(self, target: Target) -> str:
        """What it will do."""
        source = (
            f"backup {target.param('backup')}"
            if target.param("backup")
            else f"the newest Completed backup of schedule {target.param('schedule')}"
        )
        return f"Restore namespace {target.param('namespace')} on {target.resource} from {source} (Velero)"

    def command(self, target: Target) -> str:
        """`velero restore create …`."""
        words = ["velero", "restore", "create"]
        if target.param("backup"):
            words += ["--from-backup", str(target.param("backup"))]
        else:
            words += ["--from-schedule", str(target.param("schedule"))]
        words += ["--include-namespaces", str(target.param("namespace"))]
        mapping = namespace_mapping(target.param("namespace_mapping"))
        if mapping:
            words += ["--namespace-mappings", ",".join(f"{k}:{v}" for k, v in mapping.items())]
        words += ["-n", self._velero_namespace(target), *kubectl_scope(target, "--kubecontext")]
        return shell(words)

    def precondition(self, target: Target, context: Context) -> Precheck:
        """Find the backup (named, or the schedule's newest Completed) and see it holds the namespace."""
        namespace = str(target.param("namespace") or "")
        backup_name, schedule = target.param("backup"), target.param("schedule")
        if not namespace:
            return Precheck(Verdict.REFUSE, "velero.restore needs the namespace to restore")
        if bool(backup_name) == bool(schedule):
            return Precheck(Verdict.REFUSE, "velero.restore needs exactly one of backup and schedule")
        velero = self._velero_namespace(target)
        try:
            namespace_mapping(target.param("namespace_mapping"))
            cluster = self.clusters.cluster(target)
            if context.started is not None and (started := self._started(cluster, target, context)):
                return started
            if backup_name:
                backup = cluster.custom_object(GROUP, VERSION, velero, "backups", str(backup_name))
                phase = _status(backup).get("phase")
                if phase != "Completed":
                    return Precheck(
                        Verdict.REFUSE, f"backup {backup_name} is {phase or 'not finished'}, not Completed"
                    )
            else:
                selector = f"{SCHEDULE_LABEL}={schedule}"
                backups = cluster.custom_objects(GROUP, VERSION, velero, "backups", selector)
                found = newest_completed(backups)
                if found is None:
                    return Precheck(
                        Verdict.REFUSE,
                        f"no Completed backup of schedule {schedule} in namespace {velero} "
                        f"({len(backups)} backups, none Completed)",
                    )
                backup = found
        except ActionFailed as e:
            return refusal(e)
        not_there = _covers(backup, namespace)
        if not_there is not None:
            return Precheck(Verdict.REFUSE, not_there)
        name, started = _name(backup), _status(backup).get("startTimestamp")
        of = f" of schedule {schedule}" if schedule else ""
        detail = (
            f"restore namespace {namespace} from backup {name}{of}, started {started or 'at an unknown time'}"
        )
        return Precheck(Verdict.PROCEED, detail, {"backup": name, "started": started})

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        """Create the Restore; one already there under its name is this action's, started before."""
        namespace = str(target.param("namespace"))
        velero = self._velero_namespace(target)
        backup = str(found.get("backup") or target.param("backup") or "")
        if not backup:
            raise ActionFailed("velero.restore has no backup to restore from (the precondition found none)")
        name = restore_name(context.incident_id, namespace)
        spec: JSON = {"backupName": backup, "includedNamespaces": [namespace]}
        mapping = namespace_mapping(target.param("namespace_mapping"))
        if mapping:
            spec["namespaceMapping"] = mapping
        body: JSON = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Restore",
            "metadata": {
                "name": name,
                "namespace": velero,
                "annotations": {INCIDENT_ANNOTATION: context.incident_id},
            },
            "spec": spec,
        }
        cluster = self.clusters.cluster(target)
        continuation = {"restore": name, "backup": backup}
        try:
            cluster.create_custom_object(GROUP, VERSION, velero, "restores", body)
        except AlreadyExists:
            existing = cluster.custom_object(GROUP, VERSION, velero, "restores", name)
            theirs = _part(existing, "spec").get("backupName")
            if theirs != backup:
                raise ActionFailed(
                    f"restore {velero}/{name} exists already, from backup {theirs}, not {backup}"
                ) from None
            return Step(Progress.PENDING, f"restore {name} was created already", continuation, CHECK_SECONDS)
        detail = f"restore {name} created: namespace {namespace} from backup {backup}"
        return Step(Progress.PENDING, detail, continuation, CHECK_SECONDS)

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        """Follow the Restore's phase: Completed is done, PartiallyFailed/Failed/FailedValidation failed."""
        name = str(continuation["restore"])
        velero = self._velero_namespace(target)
        restore = self.clusters.cluster(target).custom_object(GROUP, VERSION, velero, "restores", name)
        status = _status(restore)
        phase = str(status.get("phase") or "New")
        counts = f"{int(status.get('errors') or 0)} errors, {int(status.get('warnings') or 0)} warnings"
        if phase in DONE_PHASES:
            return Step(Progress.DONE, f"restore {name} Completed ({counts})", continuation)
        if phase in FAILED_PHASES:
            why = "; ".join(
                str(s) for s in [status.get("failureReason"), *(status.get("validationErrors") or [])] if s
            )
            detail = f"restore {name} {phase} ({counts})" + (f": {why}" if why else "")
            return Step(
                Progress.FAILED, f"{detail}; see velero restore describe {name} --details", continuation
            )
        progress = _part(status, "progress")
        items = (
            f", {progress.get('itemsRestored', 0)} of {progress.get('totalItems', '?')} items restored"
            if progress
            else ""
        )
        return Step(Progress.PENDING, f"restore {name} {phase}{items}", continuation, CHECK_SECONDS)

    def _started(self, cluster: Cluster, target: Target, context: Context) -> Precheck | None:
        """A create whose answer was lost shows as the Restore of its name, from its backup."""
        assert context.started is not None
        name = restore_name(context.incident_id, str(target.param("namespace")))
        backup = str(context.started.get("backup") or target.param("backup") or "")
        try:
            existing = cluster.custom_object(GROUP, VERSION, self._velero_namespace(target), "restores", name)
        except NotFound:
            return None
        if _part(existing, "spec").get("backupName") != backup:
            return None  # someone else's: execute refuses it, naming its backup
        said = f"restore {name} from backup {backup} exists"
        return Precheck(Verdict.STARTED, said, {"restore": name, "backup": backup})

    def _velero_namespace(self, target: Target) -> str:
        return str(target.param("velero_namespace") or "velero")
