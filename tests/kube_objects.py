"""Deployments and ReplicaSets as the API server returns them (defaulted), for the rollback tests.

Only fields kubectl 1.20 (Debian's kubernetes-client) knows: a field newer than the client would
be dropped by its Go structs and the oracle would disagree with the API server, not with us.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

NAMESPACE = "shop"
NAME = "web"
UID = "6f1d8c7e-2b1a-4c59-9a0e-4c3b1f7d2e10"
SELECTOR = {"app": "web"}

JSON = dict[str, Any]


def template(image: str, *, env: str | None = None, annotations: dict[str, str] | None = None) -> JSON:
    """A pod template as stored in a Deployment (defaulted by the API server)."""
    container: JSON = {
        "name": "web",
        "image": image,
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    if env is not None:
        container["env"] = [{"name": "MODE", "value": env}]
    meta: JSON = {"creationTimestamp": None, "labels": {"app": "web", "tier": "frontend"}}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "metadata": meta,
        "spec": {
            "containers": [container],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
        },
    }


def deployment(
    current: JSON,
    *,
    revision: int,
    annotations: dict[str, str] | None = None,
    paused: bool = False,
    uid: str = UID,
) -> JSON:
    """The Deployment `web` in `shop` running `current`, at `revision`."""
    spec: JSON = {
        "replicas": 3,
        "selector": {"matchLabels": dict(SELECTOR)},
        "template": copy.deepcopy(current),
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    if paused:
        spec["paused"] = True
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": uid,
            "resourceVersion": "4711",
            "generation": revision,
            "creationTimestamp": "2026-11-20T09:00:00Z",
            "labels": {"app": "web"},
            "annotations": {"deployment.kubernetes.io/revision": str(revision), **(annotations or {})},
        },
        "spec": spec,
        "status": {"observedGeneration": revision, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3},
    }


def replica_set(
    pod_template: JSON,
    *,
    revision: int | str | None,
    name: str | None = None,
    owner_uid: str | None = UID,
    annotations: dict[str, str] | None = None,
    created: str | None = None,
    labels: dict[str, str] | None = None,
) -> JSON:
    """A ReplicaSet the Deployment controller made for `pod_template` (hash label and all)."""
    # The controller hashes the template; any stable digest of it will do here.
    pod_hash = hashlib.sha256(json.dumps(pod_template, sort_keys=True).encode()).hexdigest()[:10]
    rs_name = name or f"{NAME}-{pod_hash}"
    tmpl = copy.deepcopy(pod_template)
    tmpl["metadata"]["labels"] = {**tmpl["metadata"].get("labels", {}), "pod-template-hash": pod_hash}
    rs_labels = (
        labels if labels is not None else {**SELECTOR, "tier": "frontend", "pod-template-hash": pod_hash}
    )
    rs_annotations = {
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
        **({"deployment.kubernetes.io/revision": str(revision)} if revision is not None else {}),
        **(annotations or {}),
    }
    meta: JSON = {
        "name": rs_name,
        "namespace": NAMESPACE,
        "uid": f"rs-{rs_name}",
        "resourceVersion": "4000",
        "generation": 1,
        "creationTimestamp": created or f"2026-11-2{min(int(str(revision or 0)), 9)}T10:00:00Z",
        "labels": rs_labels,
        "annotations": rs_annotations,
    }
    if owner_uid is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": NAME,
                "uid": owner_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {**SELECTOR, "pod-template-hash": pod_hash}},
            "template": tmpl,
        },
        "status": {"replicas": 0, "observedGeneration": 1},
    }
