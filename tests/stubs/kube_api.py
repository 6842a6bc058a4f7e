"""The Kubernetes API server, as much of it as the rollout and Velero actions touch.

Legacy discovery (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/apps/v1`, `/apis/velero.io/v1`:
kubectl ≥ 1.27 asks for aggregated discovery first and falls back when answered plain
`application/json`), GET a Deployment, LIST ReplicaSets by `labelSelector`, PATCH a Deployment
(JSON patch, strategic merge or merge patch; the patched object is the answer; `patches` records
what was sent), and Velero's `backups` (list by `labelSelector`, get) and `restores` (create, with
409 AlreadyExists when the name is taken; get). Objects are seeded as a cluster returns them
(apiVersion, kind, uid, resourceVersion, ownerReferences); a test moves a rollout or a restore on
with `set_status`. Errors are `Status` bodies, scripted ones too (`respond_next(path, 429, headers=
{"Retry-After": "1"})`). With `tokens`, every request needs `Authorization: Bearer <one of them>`
(else 401).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
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
_DEPLOYMENTS = re.compile(r"/apis/apps/v1/namespaces/([^/]+)/deployments\Z")
_VELERO = re.compile(r"/apis/velero.io/v1/namespaces/([^/]+)/(backups|restores)(?:/([^/]+))?\Z")
_VELERO_KINDS = {"backups": "Backup", "restores": "Restore"}
_STATUS_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    """A metav1.Status error body, as the API server writes one."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def status(code: int, reason: str, message: str, details: JSON | None = None) -> Reply:
    """A metav1.Status error, as the API server answers one."""
    return Reply(code, status_body(code, reason, message, details))


@dataclass(frozen=True)
class Patch:
    """One PATCH as received."""

    namespace: str
    name: str
    content_type: str
    body: Any  # parsed JSON
    query: dict[str, list[str]] = field(default_factory=dict)  # fieldManager=kubectl-rollout, …


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
    """Point kubectl or the Python client at `url` (`kubeconfig()` writes a file for it).

    Plain HTTP by default (kubectl's oracle runs need nothing more); `tls=True` serves the stub
    certificate (`ca_pem` is its PEM text). `tokens`: the bearer tokens it accepts (None: no auth).
    """

    def __init__(self, *, tls: bool = False, tokens: Iterable[str] | None = None) -> None:
        super().__init__(tls=tls)
        self._objects: dict[tuple[str, str, str], JSON] = {}  # (kind, namespace, name) → object
        self._versions = itertools.count(1000)
        self.patches: list[Patch] = []
        self.tokens = set(tokens) if tokens is not None else None

    # --- seeding ------------------------------------------------------------------------------

    def add(self, obj: JSON) -> JSON:
        """Store an object (Deployment, ReplicaSet, Backup, Restore); uid, resourceVersion… filled in."""
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

    def set_status(self, kind: str, namespace: str, name: str, **fields: Any) -> JSON:
        """Merge fields into an object's status (a controller's progress); a None value removes one."""
        with self._changed:
            obj = self._objects[(kind, namespace, name)]
            current = obj.setdefault("status", {})
            for key, value in fields.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = copy.deepcopy(value)
            obj["metadata"]["resourceVersion"] = str(next(self._versions))
            return copy.deepcopy(obj)

    def forget_requests(self) -> None:
        """Forget what was received (the objects stay): a test looks at one step's requests."""
        with self._lock:
            self._requests.clear()
            self.patches.clear()

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._objects.clear()
            self.patches.clear()

    @property
    def ca_pem(self) -> str:
        """The PEM text a client trusts (tls=True only)."""
        if self.ca_file is None:
            raise RuntimeError("the stub serves plain HTTP: no CA")
        with open(self.ca_file, encoding="ascii") as f:
            return f.read()

    def default_body(self, status: int) -> Any:
        """A scripted error is a Status, as the API server's are."""
        return status_body(status, _STATUS_REASONS.get(status, "Unknown"), f"scripted {status}")

    def kubeconfig(
        self, namespace: str = "default", *, token: str | None = None, context: str = "stub"
    ) -> str:
        """A kubeconfig naming only this stub (with a bearer token when given; the CA when TLS)."""
        cluster: JSON = {"server": self.url}
        if self.tls:
            cluster["certificate-authority"] = self.ca_file
        user: JSON = {"token": token} if token is not None else {}
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "stub", "cluster": cluster}],
                "users": [{"name": "stub", "user": user}],
                "contexts": [
                    {"name": context, "context": {"cluster": "stub", "user": "stub", "namespace": namespace}}
                ],
                "current-context": context,
                "preferences": {},
            }
        )

    # --- serving ------------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        authorization = request.header("authorization") or ""
        token = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else None
        if self.tokens is not None and token not in self.tokens:
            return status(401, "Unauthorized", "Unauthorized")
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
        if (match := _DEPLOYMENTS.match(path)) and request.method == "GET":
            if request.query.get("watch", [""])[0] in ("true", "1"):
                # `kubectl rollout status` watches after its list: an empty stream that ends at once
                # (it has what it needs from the list when it runs with --watch=false).
                return Reply(200, b"")
            return self._list("Deployment", "apps/v1", match.group(1), request)
        if (match := _REPLICA_SETS.match(path)) and request.method == "GET":
            return self._list("ReplicaSet", "apps/v1", match.group(1), request)
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
            groups = []
            for group in ("apps", "velero.io"):
                version = {"groupVersion": f"{group}/v1", "version": "v1"}
                groups.append({"name": group, "versions": [version], "preferredVersion": version})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if path == "/apis/apps/v1":
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": "apps/v1",
                "resources": _resource("deployments", "Deployment", ["deploy"], ("scale", "status"))
                + _resource("replicasets", "ReplicaSet", ["rs"], ("scale", "status")),
            }
        if path == "/apis/velero.io/v1":
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": "velero.io/v1",
                "resources": _resource("backups", "Backup", [])
                + _resource("restores", "Restore", [])
                + _resource("schedules", "Schedule", []),
            }
        return None

    def _get(self, kind: str, plural: str, namespace: str, name: str, group: str = "apps") -> Reply:
        found = self._objects.get((kind, namespace, name))
        if found is None:
            details = {"name": name, "group": group, "kind": plural}
            return status(404, "NotFound", f'{plural}.{group} "{name}" not found', details)
        return Reply(200, copy.deepcopy(found))

    def _list(self, kind: str, api_version: str, namespace: str, request: Recorded) -> Reply:
        try:
            requirements = parse_selector(request.query.get("labelSelector", [""])[0])
            by_name = _field_selector_name(request.query.get("fieldSelector", [""])[0])
        except ValueError as e:
            return status(400, "BadRequest", f"unable to parse requirement: {e}")
        items = [
            copy.deepcopy(obj)
            for (stored_kind, ns, name), obj in self._objects.items()
            if stored_kind == kind
            and ns == namespace
            and by_name in (None, name)
            and matches(requirements, obj["metadata"].get("labels") or {})
        ]
        body = {
            "kind": f"{kind}List",
            "apiVersion": api_version,
            "metadata": {"resourceVersion": str(next(self._versions))},
            "items": items,
        }
        return Reply(200, body)

    def _velero(self, request: Recorded, namespace: str, plural: str, name: str | None) -> Reply:
        kind = _VELERO_KINDS[plural]
        if request.method == "GET" and name is None:
            return self._list(kind, "velero.io/v1", namespace, request)
        if request.method == "GET" and name is not None:
            return self._get(kind, plural, namespace, name, "velero.io")
        if request.method == "POST" and name is None and plural == "restores":
            return self._create(kind, plural, namespace, request.json)
        return status(405, "MethodNotAllowed", f"the stub does not {request.method} {request.path}")

    def _create(self, kind: str, plural: str, namespace: str, body: Any) -> Reply:
        if not isinstance(body, dict) or body.get("kind") != kind:
            return status(400, "BadRequest", f"the body is not a {kind}")
        body = copy.deepcopy(body)  # the recorded request stays as it was sent
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            return status(422, "Invalid", f"{kind}.velero.io is invalid: metadata.name: Required value")
        if meta.setdefault("namespace", namespace) != namespace:
            return status(400, "BadRequest", "the namespace of the provided object does not match")
        if (kind, namespace, name) in self._objects:
            details = {"name": name, "group": "velero.io", "kind": plural}
            return status(409, "AlreadyExists", f'{plural}.velero.io "{name}" already exists', details)
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(next(self._versions))
        meta["generation"] = 1
        meta["creationTimestamp"] = "2026-11-25T10:05:00Z"
        self._objects[(kind, namespace, name)] = body
        return Reply(201, copy.deepcopy(body))

    def _patch(self, request: Recorded, namespace: str, name: str) -> Reply:
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        self.patches.append(Patch(namespace, name, content_type, request.json, request.query))
        found = self._objects.get(("Deployment", namespace, name))
        if found is None:
            return status(404, "NotFound", f'deployments.apps "{name}" not found')
        apply = _PATCHERS.get(content_type)
        if apply is None:
            return status(415, "UnsupportedMediaType", f"the server does not take {content_type!r} patches")
        try:
            patched = apply(found, request.json)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            return status(422, "Invalid", f"the patch does not apply: {e}")
        meta = patched["metadata"]
        meta["resourceVersion"] = str(next(self._versions))
        if patched.get("spec") != found.get("spec"):
            meta["generation"] = int(meta.get("generation", 1)) + 1
        self._objects[("Deployment", namespace, name)] = patched
        return Reply(200, copy.deepcopy(patched))


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


def _field_selector_name(selector: str) -> str | None:
    """`metadata.name=NAME` (the only field selector kubectl sends here) → NAME; "" → None."""
    if not selector:
        return None
    key, _, value = selector.partition("=")
    if key != "metadata.name" or not value:
        raise ValueError(f"the stub takes only a metadata.name field selector, not {selector!r}")
    return value


def apply_merge_patch(obj: JSON, patch: Any) -> JSON:
    """RFC 7386 merge, which is a strategic merge too as long as no list is patched (the restart's)."""
    if not isinstance(patch, dict):
        raise ValueError("a merge patch is an object")
    return _merge(copy.deepcopy(obj), patch)


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            raise ValueError(f"strategic merge directive {key} not supported by the stub")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


_PATCHERS = {
    "application/json-patch+json": apply_json_patch,
    "application/strategic-merge-patch+json": apply_merge_patch,
    "application/merge-patch+json": apply_merge_patch,
}

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
