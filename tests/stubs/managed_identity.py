"""The App Service / Functions managed-identity endpoint, so a child process gets tokens offline.

    with ManagedIdentityStub() as identity:     # http://127.0.0.1:<port>/msi/token, as App Service
        env = identity.client_env()             # IDENTITY_ENDPOINT and IDENTITY_HEADER
        ...                                     # azure-identity (through MSAL) asks it for tokens
        [asked] = identity.issued

The protocol (App Service's "REST endpoint reference", as msal.managed_identity sends it):
`GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=…|&mi_res_id=…|
&object_id=…]` with the header `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; the answer is JSON
`{access_token, expires_on (epoch seconds, a string), resource, token_type, client_id}`. A wrong or
missing header is 401, a missing resource or another api-version 400, each as App Service answers
errors: `{"statusCode": …, "message": …}`. Plain http on 127.0.0.1 is what App Service serves too.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.stubs.base import Recorded, Reply, StubServer

API_VERSION = "2019-08-01"
SYSTEM_ASSIGNED = "system-assigned-client-id"


@dataclass(frozen=True)
class Issued:
    """One token handed out: for which resource and identity (client_id None: system-assigned)."""

    token: str
    resource: str
    client_id: str | None
    expires_on: int


@dataclass
class _Tokens:
    lifetime: float
    clock: Callable[[], float]
    issued: list[Issued] = field(default_factory=list)
    count: Any = field(default_factory=lambda: itertools.count(1))


class ManagedIdentityStub(StubServer):
    """Point azure-identity at it with `client_env()`; `issued` lists the tokens it gave out."""

    def __init__(self, *, lifetime: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        super().__init__(tls=False)
        self.secret = secrets.token_urlsafe(16)  # IDENTITY_HEADER: the platform's per-process secret
        self._tokens = _Tokens(lifetime, clock)

    @property
    def url(self) -> str:
        return f"{self.base_url}/msi/token"

    def client_env(self) -> dict[str, str]:
        """What App Service sets for the app's process."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.secret}

    @property
    def issued(self) -> list[Issued]:
        """Every token handed out, oldest first."""
        with self._lock:
            return list(self._tokens.issued)

    def tokens(self) -> list[str]:
        """The access tokens handed out, oldest first."""
        return [i.token for i in self.issued]

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._tokens.issued.clear()

    def default_body(self, status: int) -> Any:
        return {"statusCode": status, "message": f"scripted {status}"}

    def answer(self, request: Recorded) -> Reply:
        if request.method != "GET" or request.path != "/msi/token":
            return _error(404, f"no such endpoint: {request.method} {request.path}")
        if request.header("X-IDENTITY-HEADER") != self.secret:
            return _error(401, "The X-IDENTITY-HEADER header is missing or wrong.")
        query = {k: v[0] for k, v in request.query.items()}
        if query.get("api-version") != API_VERSION:
            return _error(400, f"api-version must be {API_VERSION}, got {query.get('api-version')!r}")
        resource = query.get("resource")
        if not resource:
            return _error(400, "The resource parameter is required.")
        client_id = query.get("client_id")
        tokens = self._tokens
        issued = Issued(
            f"mi-token-{next(tokens.count)}", resource, client_id, int(tokens.clock() + tokens.lifetime)
        )
        tokens.issued.append(issued)
        return Reply(
            200,
            {
                "access_token": issued.token,
                "expires_on": str(issued.expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": client_id or SYSTEM_ASSIGNED,
            },
        )


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"statusCode": status, "message": message})
