"""The Kubernetes API server, as much of it as `kubectl rollout undo deployment/NAME` touches.

Legacy discovery (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/apps/v1`: kubectl ≥ 1.27 asks for
aggregated discovery first and falls back when answered plain `application/json`), GET a
Deployment, LIST ReplicaSets by `labelSelector`, and PATCH a Deployment with a JSON patch (the
patched object is the answer; `patches` records what was sent). Objects are seeded as a cluster
returns them (apiVersion, kind, uid, resourceVersion, ownerReferences); errors are `Status` bodies.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from tests.stubs.base import Recorded, Reply, StubServer

JSON = dict[str, Any]
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:00:00Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_DEPLOYMENT = re.compile(r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)\Z")
_REPLICA_SETS = re.compile(r"/apis/apps/v1/namespaces/([^/]+)/replicasets\Z")
_VELERO = re.compile(r"/apis/velero\.io/v1/namespaces/([^/]+)/(backups|restores)(?:/([^/]+))?\Z")
_VELERO_KINDS = {"backups": "Backup", "restores": "Restore"}


def status(code: int, reason: str, message: str) -> Reply:
    """A metav1.Status error, as the API server answers one."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return Reply(code, body)


@dataclass(frozen=True)
class Patch:
    """One PATCH as received."""

    namespace: str
    name: str
    content_type: str
    body: Any  # parsed JSON


def _resource(name: str, kind: str, short: list[str], subresources: tuple[str, ...] = ()) -> list[JSON]:
    verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    out: list[JSON] = [
        {
            "name": name,
            "singularName": kind.lower(),
            "namespaced": True,
            "kind": kind,
            "verbs": verbs,
            "shortNames": short,
            "storageVersionHash": "stub",
        }
    ]
    for sub in subresources:
        out.append(
            {
                "name": f"{name}/{sub}",
                "singularName": "",
                "namespaced": True,
                "kind": kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return out


class KubeApiStub(StubServer):
    """Point kubectl at `url` (plain HTTP; `kubeconfig()` writes a file for it)."""

    def __init__(self) -> None:
        super().__init__(tls=False)
        self._objects: dict[tuple[str, str, str], JSON] = {}  # (kind, namespace, name) → object
        self._versions = itertools.count(1000)
        self.patches: list[Patch] = []

    # --- seeding ------------------------------------------------------------------------------

    def add(self, obj: JSON) -> JSON:
        """Store a Deployment or ReplicaSet; uid, resourceVersion and timestamps are filled in if missing."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("resourceVersion", str(next(self._versions)))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", "2026-11-20T10:00:00Z")
        with self._lock:
            self._objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str, name: str) -> JSON | None:
        """The stored object (a copy), e.g. the Deployment after a PATCH."""
        with self._lock:
            found = self._objects.get((kind, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._objects.clear()
            self.patches.clear()

    def set_status(self, namespace: str, name: str, **status_fields: Any) -> None:
        """What the Deployment controller would write: observedGeneration, replicas, conditions…"""
        with self._lock:
            found = self._objects[("Deployment", namespace, name)]
            found.setdefault("status", {}).update(status_fields)

    def set_object_status(self, kind: str, namespace: str, name: str, status_body: JSON) -> None:
        """What a controller (Velero's) would write as an object's status."""
        with self._lock:
            self._objects[(kind, namespace, name)]["status"] = copy.deepcopy(status_body)

    def kubeconfig(self, namespace: str = "default") -> str:
        """A kubeconfig naming only this stub (no credentials: the stub asks for none)."""
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
                "users": [{"name": "stub", "user": {}}],
                "contexts": [
                    {"name": "stub", "context": {"cluster": "stub", "user": "stub", "namespace": namespace}}
                ],
                "current-context": "stub",
                "preferences": {},
            }
        )

    # --- serving ------------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        path = request.path.rstrip("/") or "/"
        if request.method == "GET":
            discovery = self._discovery(path)
            if discovery is not None:
                return Reply(200, discovery)
        if match := _DEPLOYMENT.match(path):
            namespace, name = match.groups()
            if request.method == "GET":
                return self._get("Deployment", "deployments", namespace, name)
            if request.method == "PATCH":
                return self._patch(request, namespace, name)
        if (match := _REPLICA_SETS.match(path)) and request.method == "GET":
            return self._list_replica_sets(match.group(1), request.query.get("labelSelector", [""])[0])
        if match := _VELERO.match(path):
            return self._velero(request, *match.groups())
        return status(404, "NotFound", "the server could not find the requested resource")

    def _discovery(self, path: str) -> JSON | None:
        if path == "/version":
            return dict(SERVER_VERSION)
        if path == "/api":
            host = self.base_url.split("://", 1)[1]
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            }
        if path == "/api/v1":
            return {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": _resource("pods", "Pod", ["po"]) + _resource("namespaces", "Namespace", ["ns"]),
            }
        if path == "/apis":
            version = {"groupVersion": "apps/v1", "version": "v1"}
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [{"name": "apps", "versions": [version], "preferredVersion": version}],
            }
        if path == "/apis/apps/v1":
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": "apps/v1",
                "resources": _resource("deployments", "Deployment", ["deploy"], ("scale", "status"))
                + _resource("replicasets", "ReplicaSet", ["rs"], ("scale", "status")),
            }
        return None

    def _velero(self, request: Recorded, namespace: str, plural: str, name: str | None) -> Reply:
        kind = _VELERO_KINDS[plural]
        if request.method == "GET" and name is None:
            requirements = parse_selector(request.query.get("labelSelector", [""])[0])
            items = [
                copy.deepcopy(obj)
                for (k, ns, _), obj in self._objects.items()
                if k == kind
                and ns == namespace
                and matches(requirements, obj["metadata"].get("labels") or {})
            ]
            return Reply(200, _velero_list(kind, items))
        if request.method == "GET" and name is not None:
            found = self._objects.get((kind, namespace, name))
            if found is None:
                return status(404, "NotFound", f'{plural}.velero.io "{name}" not found')
            return Reply(200, copy.deepcopy(found))
        if request.method == "POST" and name is None and plural == "restores":
            body = request.json if isinstance(request.json, dict) else {}
            new_name = body.get("metadata", {}).get("name", "")
            if (kind, namespace, new_name) in self._objects:
                return status(409, "AlreadyExists", f'restores.velero.io "{new_name}" already exists')
            created = copy.deepcopy(body)
            created["metadata"].update({"namespace": namespace, "uid": str(uuid.uuid4()), "generation": 1})
            created["metadata"]["resourceVersion"] = str(next(self._versions))
            created["status"] = {"phase": "New"}
            self._objects[(kind, namespace, new_name)] = created
            return Reply(201, copy.deepcopy(created))
        return status(405, "MethodNotAllowed", f"{request.method} {plural} is not served by the stub")

    def _get(self, kind: str, plural: str, namespace: str, name: str) -> Reply:
        found = self._objects.get((kind, namespace, name))
        if found is None:
            return status(404, "NotFound", f'{plural}.apps "{name}" not found')
        return Reply(200, copy.deepcopy(found))

    def _list_replica_sets(self, namespace: str, selector: str) -> Reply:
        try:
            requirements = parse_selector(selector)
        except ValueError as e:
            return status(400, "BadRequest", f"unable to parse requirement: {e}")
        items = [
            copy.deepcopy(obj)
            for (kind, ns, _), obj in self._objects.items()
            if kind == "ReplicaSet"
            and ns == namespace
            and matches(requirements, obj["metadata"].get("labels") or {})
        ]
        body = {
            "kind": "ReplicaSetList",
            "apiVersion": "apps/v1",
            "metadata": {"resourceVersion": str(next(self._versions))},
            "items": items,
        }
        return Reply(200, body)

    def _patch(self, request: Recorded, namespace: str, name: str) -> Reply:
        content_type = request.header("content-type") or ""
        self.patches.append(Patch(namespace, name, content_type, request.json))
        found = self._objects.get(("Deployment", namespace, name))
        if found is None:
            return status(404, "NotFound", f'deployments.apps "{name}" not found')
        media = content_type.split(";")[0].strip()
        if media not in ("application/json-patch+json", "application/strategic-merge-patch+json"):
            return status(415, "UnsupportedMediaType", f"the stub takes no {content_type!r} patches")
        try:
            if media == "application/json-patch+json":
                patched = apply_json_patch(found, request.json)
            else:
                patched = merge_patch(found, request.json)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            return status(422, "Invalid", f"the patch does not apply: {e}")
        meta = patched["metadata"]
        meta["resourceVersion"] = str(next(self._versions))
        if patched.get("spec") != found.get("spec"):
            meta["generation"] = int(meta.get("generation", 1)) + 1
        self._objects[("Deployment", namespace, name)] = patched
        return Reply(200, copy.deepcopy(patched))


def merge_patch(obj: JSON, patch: Any) -> JSON:
    """A strategic merge patch of maps only (what `kubectl rollout restart` sends)."""
    if not isinstance(patch, dict):
        raise ValueError("a merge patch is an object")
    out = copy.deepcopy(obj)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_json_patch(obj: JSON, ops: Any) -> JSON:
    """RFC 6902 add / replace / remove (all kubectl sends here)."""
    if not isinstance(ops, list):
        raise ValueError("a JSON patch is a list of operations")
    out = copy.deepcopy(obj)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = out
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if op["op"] == "replace" and isinstance(parent, dict) and last not in parent:
                raise KeyError(f"replace of a missing {op['path']}")
            parent[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[last]
        else:
            raise ValueError(f"operation {op['op']!r} not supported by the stub")
    return out


_REQUIREMENT = re.compile(
    r"\s*(!?)([A-Za-z0-9./_-]+)\s*(?:(==|=|!=|\s+in\s+|\s+notin\s+)\s*(\([^)]*\)|[^,]*))?\s*"
)


def parse_selector(selector: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """A labelSelector query (`a=b,c in (d,e),!f`) as (key, operator, values) requirements."""
    out: list[tuple[str, str, tuple[str, ...]]] = []
    rest = selector.strip()
    while rest:
        match = _REQUIREMENT.match(rest)
        if not match or match.end() == 0:
            raise ValueError(rest)
        bang, key, operator, value = match.groups()
        if bang:
            out.append((key, "!", ()))
        elif operator is None:
            out.append((key, "exists", ()))
        else:
            operator = operator.strip()
            values = (
                tuple(v.strip() for v in value.strip("()").split(","))
                if value.startswith("(")
                else (value.strip(),)
            )
            out.append((key, {"==": "=", "=": "="}.get(operator, operator), values))
        rest = rest[match.end() :]
        if rest and not rest.startswith(","):
            raise ValueError(rest)
        rest = rest[1:]
    return out


def matches(requirements: list[tuple[str, str, tuple[str, ...]]], labels: dict[str, str]) -> bool:
    """Whether labels satisfy every requirement."""
    for key, operator, values in requirements:
        present = key in labels
        ok = {
            "!": not present,
            "exists": present,
            "=": present and labels.get(key) in values,
            "in": present and labels.get(key) in values,
            "!=": not present or labels.get(key) not in values,
            "notin": not present or labels.get(key) not in values,
        }[operator]
        if not ok:
            return False
    return True


def _velero_list(kind: str, items: list[JSON]) -> JSON:
    return {"apiVersion": "velero.io/v1", "kind": f"{kind}List", "metadata": {}, "items": items}
