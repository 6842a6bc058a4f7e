"""Azure Resource Manager, as the azure-mgmt-* clients see it: resources by id, LROs, faults, a record.

    with ArmStub() as arm:                      # https://127.0.0.1:<port>; trust arm.ca_file
        arm.put(REDIS_ID, {"location": "westeurope", "properties": {...}})
        client = RedisManagementClient(StubCredential(), SUB, base_url=arm.url,
                                       credential_scopes=[arm.scope], polling_interval=0)
        ...
        [sent] = arm.requests_to(f"{REDIS_ID}/forceReboot", "POST")

What it does as ARM does:
- Every request needs `Authorization: Bearer …` (401 `AuthenticationFailed` otherwise) and an
  `api-version` query (400 `MissingApiVersionParameter`); ids match case-insensitively.
- Generic resources: GET an id (404 `ResourceNotFound`), GET a collection (`{"value": [...]}`),
  PUT (201 new, 200 replaced), PATCH (merged), DELETE (202 LRO when `lro_delete`, else 200; 204
  when absent). A POST action answers from a handler a test or a service module registers (`on`).
- Long-running operations (`start_operation` + `accepted`): 202/201 with `Azure-AsyncOperation`
  and/or `Location` and `Retry-After` (`retry_after`, "1" by default; "0" or None with the client's
  `polling_interval=0` is the fast mode). The status URL answers `{"status": "InProgress"}`
  `polls` times, then `Succeeded` (the operation's effect applied once) or `Failed` with its ARM
  error; the Location URL answers 202 while in progress, then 200 with the result (204 without one)
  or the error's status and body.
- Faults per route (`fault`, `throttle`): a queue of replies taken before the route's behaviour,
  e.g. 429 with Retry-After, 500, 409 Conflict, each with the ARM error body
  `{"error": {"code": …, "message": …}}`. `lose_answer_next`: the route acts, then its answer is
  a 502/504/… or a dropped connection instead (a gateway that lost it).
- `requests` records every request, the Authorization header's value replaced by its scheme.

`StubCredential` is the token stand-in: any object with `get_token()` returning an `AccessToken`
is a credential to azure-core; it records the scopes asked for.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.stubs.base import Recorded, Reply, StubServer

JSON = dict[str, Any]
Handler = Callable[[Recorded, "re.Match[str]"], Reply]
OPERATIONS = "/providers/Stub.Operations"  # where the stub's operation status URLs live
_OPERATION = re.compile(OPERATIONS + r"/(operationStatuses|operationResults)/([^/]+)\Z", re.IGNORECASE)


def arm_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """ARM's error body: {"error": {"code", "message"}}."""
    return Reply(status, {"error": {"code": code, "message": message}}, dict(headers or {}))


def resource_type(resource_id: str) -> str:
    """`Microsoft.Cache/redis/linkedServers` for a linked server's id."""
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return ""
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = parts[at + 1 :]
    return "/".join([rest[0], *rest[1::2]]) if rest else ""


@dataclass
class Operation:
    """One long-running operation: InProgress for `polls` status reads, then its outcome."""

    id: str
    polls: int
    result: Any = None  # the final body the Location URL answers (None: 204)
    effect: Callable[[], Any] | None = None  # applied once, when the operation succeeds
    error: JSON | None = None  # set: the operation fails with this ARM error
    error_status: int = 400  # what the Location URL answers when it failed
    api_version: str = ""
    reads: int = 0  # status and location reads so far
    finished: bool = False

    @property
    def status(self) -> str:
        """InProgress, Succeeded or Failed, as the status URL says it now."""
        if not self.finished:
            return "InProgress"
        return "Failed" if self.error is not None else "Succeeded"

    def read(self) -> str:
        """One status read: counts down, and applies the effect when it reaches the end."""
        self.reads += 1
        if not self.finished and self.reads > self.polls:
            self.finished = True
            if self.error is None and self.effect is not None:
                self.effect()
        return self.status


@dataclass
class StubCredential:
    """A TokenCredential stand-in: tokens `stub-token-1`, `-2`, …, valid `lifetime` seconds."""

    lifetime: float = 3600.0
    clock: Callable[[], float] = time.time
    scopes: list[tuple[str, ...]] = field(default_factory=list)  # what each get_token asked for
    _count: Any = field(default_factory=lambda: itertools.count(1), repr=False)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """A new token for the scopes (azure-core caches it until it is close to expiry)."""
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(f"stub-token-{next(self._count)}", int(self.clock() + self.lifetime))


class ArmStub(StubServer):
    """Point a management client at `url` with `credential_scopes=[scope]`; trust `ca_file`."""

    def __init__(
        self, *, tls: bool = True, polls: int = 1, retry_after: str | None = "1", keep_alive: bool = False
    ) -> None:
        super().__init__(tls=tls, keep_alive=keep_alive)
        self.polls = polls  # InProgress answers of a new operation before its outcome
        self.retry_after = retry_after  # the Retry-After of 202s (None: no header)
        self.lro_delete = True  # DELETE of a resource is a 202 LRO (as for linked servers)
        self._resources: dict[str, JSON] = {}
        self._operations: dict[str, Operation] = {}
        self._handlers: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[tuple[str, str, Reply]] = []
        self._ids = itertools.count(1)

    @property
    def scope(self) -> str:
        """The credential scope a client pointed here asks for (`{url}/.default`, as for ARM)."""
        return f"{self.url}/.default"

    def client_env(self) -> dict[str, str]:
        # requests (azure-core's transport) trusts REQUESTS_CA_BUNDLE, not SSL_CERT_FILE.
        env = super().client_env()
        return env | {"REQUESTS_CA_BUNDLE": env["SSL_CERT_FILE"]} if env else env

    # --- seeding and reading the model ------------------------------------------------------------

    def put(self, resource_id: str, body: Mapping[str, Any]) -> JSON:
        """Store a resource as ARM holds it (id, name and type filled in); returns a copy."""
        resource = copy.deepcopy(dict(body))
        resource.setdefault("id", resource_id)
        resource.setdefault("name", resource_id.rstrip("/").rsplit("/", 1)[-1])
        resource.setdefault("type", resource_type(resource_id))
        with self._lock:
            self._resources[_key(resource_id)] = resource
        return copy.deepcopy(resource)

    def get(self, resource_id: str) -> JSON | None:
        """The resource now (a copy), or None."""
        with self._lock:
            found = self._resources.get(_key(resource_id))
            return copy.deepcopy(found) if found is not None else None

    def update(self, resource_id: str, change: Callable[[JSON], None]) -> None:
        """Change a stored resource in place (from an operation's effect or a test)."""
        with self._lock:
            change(self._resources[_key(resource_id)])

    def remove(self, resource_id: str) -> None:
        """Forget a resource and everything under it."""
        key = _key(resource_id)
        with self._lock:
            for k in [k for k in self._resources if k == key or k.startswith(key + "/")]:
                del self._resources[k]

    def children(self, collection_path: str) -> list[JSON]:
        """The resources directly under a collection path (`…/redis/r1/linkedServers`)."""
        prefix = _key(collection_path) + "/"
        with self._lock:
            return [
                copy.deepcopy(r)
                for k, r in self._resources.items()
                if k.startswith(prefix) and "/" not in k[len(prefix) :]
            ]

    @property
    def operations(self) -> list[Operation]:
        """Every operation started, oldest first."""
        with self._lock:
            return list(self._operations.values())

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._resources.clear()
            self._operations.clear()
            self._faults.clear()

    # --- what was received --------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """Every request, oldest first, the Authorization value cut to its scheme (`Bearer ***`)."""
        return [_redacted(r) for r in super().requests]

    def bearer_tokens(self) -> list[str]:
        """The bearer tokens the requests carried, in order (to prove a refresh)."""
        return [
            (r.header("Authorization") or "").removeprefix("Bearer ")
            for r in super().requests
            if (r.header("Authorization") or "").startswith("Bearer ")
        ]

    def api_versions(self, path: str, method: str | None = None) -> list[str]:
        """The api-version of each request to path (fnmatch pattern)."""
        return [(r.query.get("api-version") or [""])[0] for r in self.requests_to(path, method)]

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        """The requests whose path matches (fnmatch, case-insensitive as ARM ids are)."""
        pattern = path.lower()
        return [
            r
            for r in self.requests
            if fnmatch.fnmatchcase(r.path.lower(), pattern) and (method is None or r.method == method.upper())
        ]

    # --- scripting ----------------------------------------------------------------------------

    def on(self, method: str, path_regex: str, handler: Handler) -> None:
        """Answer `method` on paths matching the regex (case-insensitive, whole path) with handler."""
        with self._lock:
            self._handlers.insert(0, (method.upper(), re.compile(path_regex + r"\Z", re.IGNORECASE), handler))

    def fault(
        self,
        method: str,
        path: str,
        status: int,
        code: str,
        message: str = "",
        *,
        retry_after: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests of method to path (fnmatch) with an ARM error."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        reply = arm_error(status, code, message or f"scripted {status} {code}", headers)
        with self._lock:
            self._faults.extend([(method.upper(), path.lower(), reply)] * times)

    def throttle(self, method: str, path: str, *, retry_after: str = "1", times: int = 1) -> None:
        """429 TooManyRequests with Retry-After, as ARM throttles."""
        self.fault(
            method,
            path,
            429,
            "TooManyRequests",
            "The request was throttled.",
            retry_after=retry_after,
            times=times,
        )

    def hold_next(self, path: str) -> threading.Event:
        """As the base's, the path matched case-insensitively (fnmatch) as ARM ids are."""
        return super().hold_next(path.lower())

    def _held(self, path: str) -> threading.Event | None:
        return super()._held(path.lower())

    def lose_answer_next(
        self, path: str, status: int | None = None, *, method: str | None = None, times: int = 1
    ) -> None:
        """As the base's, the path matched case-insensitively (fnmatch) as ARM ids are."""
        super().lose_answer_next(path.lower(), status, method=method, times=times)

    def _lost(self, path: str, method: str) -> Reply | None:
        return super()._lost(path.lower(), method)

    def default_body(self, status: int) -> Any:
        return arm_error(status, "Scripted", f"scripted {status}").body

    # --- long-running operations --------------------------------------------------------------

    def start_operation(
        self,
        request: Recorded,
        *,
        result: Any = None,
        effect: Callable[[], Any] | None = None,
        error: tuple[str, str] | None = None,
        error_status: int = 400,
        polls: int | None = None,
    ) -> Operation:
        """A new operation (called from a handler, the lock held)."""
        operation = Operation(
            id=f"op-{next(self._ids):04d}",
            polls=self.polls if polls is None else polls,
            result=result,
            effect=effect,
            error={"code": error[0], "message": error[1]} if error else None,
            error_status=error_status,
            api_version=(request.query.get("api-version") or [""])[0],
        )
        self._operations[operation.id] = operation
        return operation

    def accepted(
        self,
        operation: Operation,
        *,
        status: int = 202,
        body: Any = None,
        async_operation: bool = True,
        location: bool = True,
    ) -> Reply:
        """The first answer of an LRO: status with Azure-AsyncOperation and/or Location."""
        query = f"?api-version={operation.api_version}"
        headers: dict[str, str] = {}
        if async_operation:
            headers["Azure-AsyncOperation"] = (
                f"{self.url}{OPERATIONS}/operationStatuses/{operation.id}{query}"
            )
        if location:
            headers["Location"] = f"{self.url}{OPERATIONS}/operationResults/{operation.id}{query}"
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        return Reply(status, b"" if body is None else body, headers)

    # --- the protocol -------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        if not (request.header("Authorization") or "").startswith("Bearer "):
            return arm_error(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        if not request.query.get("api-version"):
            return arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required.",
            )
        if m := _OPERATION.match(request.path):
            return self._operation(m[1].lower(), m[2], request)
        for i, (method, pattern, reply) in enumerate(self._faults):
            if method == request.method and fnmatch.fnmatchcase(request.path.lower(), pattern):
                del self._faults[i]
                return reply
        for method, regex, handler in self._handlers:
            if method == request.method and (match := regex.match(request.path)):
                return handler(request, match)
        return self._generic(request)

    def _operation(self, which: str, operation_id: str, request: Recorded) -> Reply:
        if request.method != "GET" or operation_id not in self._operations:
            return arm_error(404, "OperationNotFound", f"The operation {operation_id} was not found.")
        operation = self._operations[operation_id]
        status = operation.read()
        if which == "operationstatuses":
            body: JSON = {"id": operation.id, "name": operation.id, "status": status}
            if operation.error is not None:
                body["error"] = operation.error
            headers = {"Retry-After": self.retry_after} if self.retry_after and status == "InProgress" else {}
            return Reply(200, body, headers)
        if status == "InProgress":
            return self.accepted(operation, async_operation=False)
        if operation.error is not None:
            return Reply(operation.error_status, {"error": operation.error})
        return Reply(204, b"") if operation.result is None else Reply(200, copy.deepcopy(operation.result))

    def _generic(self, request: Recorded) -> Reply:
        key = _key(request.path)
        is_collection = _is_collection(request.path)
        if request.method == "GET" and is_collection:
            return Reply(200, {"value": self.children(request.path)})
        if request.method == "GET":
            found = self._resources.get(key)
            return Reply(200, copy.deepcopy(found)) if found else _not_found(request.path)
        if request.method == "PUT" and not is_collection:
            existed = key in self._resources
            self.put(request.path, request.json if isinstance(request.json, dict) else {})
            return Reply(200 if existed else 201, self.get(request.path))
        if request.method == "PATCH" and not is_collection:
            if key not in self._resources:
                return _not_found(request.path)
            _merge(self._resources[key], request.json if isinstance(request.json, dict) else {})
            return Reply(200, self.get(request.path))
        if request.method == "DELETE" and not is_collection:
            if key not in self._resources:
                return Reply(204, b"")
            if not self.lro_delete:
                self.remove(request.path)
                return Reply(200, b"")
            path = request.path
            return self.accepted(self.start_operation(request, effect=lambda: self.remove(path)))
        if request.method == "POST":
            parent = request.path.rstrip("/").rsplit("/", 1)[0]
            if _key(parent) not in self._resources:
                return _not_found(parent)
            return arm_error(
                400, "InvalidResourceOperation", f"The stub has no handler for POST {request.path}."
            )
        return arm_error(405, "MethodNotAllowed", f"{request.method} {request.path} is not supported.")


def _key(path: str) -> str:
    return path.rstrip("/").lower()


def _is_collection(path: str) -> bool:
    """After `providers/<namespace>` an id alternates type/name: an odd count ends on a type."""
    parts = path.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return len(parts) % 2 == 1  # /subscriptions/s/resourceGroups
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    return len(parts[at + 2 :]) % 2 == 1


def _not_found(path: str) -> Reply:
    kind = resource_type(path) or "resource"
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return arm_error(404, "ResourceNotFound", f"The Resource '{kind}/{name}' was not found.")


def _merge(into: JSON, change: Mapping[str, Any]) -> None:
    for name, value in change.items():
        if isinstance(value, Mapping) and isinstance(into.get(name), dict):
            _merge(into[name], value)
        else:
            into[name] = copy.deepcopy(value)


def _redacted(request: Recorded) -> Recorded:
    value = request.headers.get("authorization")
    if value is None:
        return request
    scheme = value.split(" ", 1)[0]
    return dataclasses.replace(request, headers=request.headers | {"authorization": f"{scheme} ***"})
