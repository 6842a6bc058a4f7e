"""Azure Key Vault's secrets data plane, as azure-keyvault-secrets sees it, over seedable data.

    with KeyVaultStub() as vault:              # https://127.0.0.1:<port>; trust vault.ca_file
        vault.delete("db-password")           # seeded live, then soft-deleted
        client = SecretClient(vault.url, VaultCredential(), verify_challenge_resource=False)

What it does as Key Vault does:
- Challenge auth: a request without `Authorization: Bearer …` gets 401 with
  `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
  resource="https://vault.azure.net"` and body `AKV10000: Request is missing a Bearer or PoP token.`;
  the SDK then asks its credential for `https://vault.azure.net/.default` in that tenant and retries.
- Every request needs `api-version` (400 `BadParameter` otherwise).
- `GET /secrets/NAME/[VERSION]`, `GET /deletedsecrets/NAME`, `POST /deletedsecrets/NAME/recover`:
  404 `SecretNotFound` with Key Vault's texts. A recover answers 200 with the secret's bundle at
  once, but the secret stays unreadable for `recover_reads` GETs of it (Key Vault restores it a
  few seconds later); a second recover meanwhile is 409 `Conflict`/`ObjectIsBeingRecovered`.
- Replies scripted after authentication (`fault` with a `vault_error`, `throttle`), and RBAC
  denials per route (`deny`) in Key Vault's own 403 `Forbidden`/`ForbiddenByRbac` text naming the
  refused data action.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.stubs.arm import StubCredential
from tests.stubs.base import Recorded, Reply, StubServer

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
RESOURCE = "https://vault.azure.net"
SCOPE = f"{RESOURCE}/.default"
_SECRET = re.compile(r"/secrets/([^/]+)(?:/([^/]*))?\Z")
_DELETED = re.compile(r"/deletedsecrets/([^/]+)\Z")
_RECOVER = re.compile(r"/deletedsecrets/([^/]+)/recover\Z")


def vault_error(
    status: int, code: str, message: str, inner: str | None = None, headers: Mapping[str, str] | None = None
) -> Reply:
    """Key Vault's error body: {"error": {"code", "message"[, "innererror": {"code"}]}}."""
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return Reply(status, {"error": error}, dict(headers or {}))


@dataclass
class StoredSecret:
    """One secret's latest version, live or soft-deleted."""

    name: str
    value: str
    version: str = "4387e9f3d6e14c459867679a90fd0f79"
    created: int = 1_790_000_000
    deleted_on: int | None = None
    purge_on: int | None = None
    recovering_reads: int = 0  # GETs of it still answered 404 after a recover


@dataclass
class VaultCredential(StubCredential):
    """StubCredential that also records the tenant each token was asked for."""

    tenants: list[str | None] = field(default_factory=list)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.tenants.append(kwargs.get("tenant_id"))
        return super().get_token(*scopes, **kwargs)


class KeyVaultStub(StubServer):
    """Point a SecretClient at `url` (verify_challenge_resource=False: 127.0.0.1 is no vault domain)."""

    def __init__(self, *, name: str = "kv-shop-prod", tenant: str = TENANT, recover_reads: int = 1) -> None:
        super().__init__(tls=True)
        self.name = name
        self.tenant = tenant
        self.recover_reads = recover_reads
        self._secrets: dict[str, StoredSecret] = {}
        self._faults: list[tuple[str, str, Reply]] = []
        self._denied: list[tuple[str, str, str]] = []

    def client_env(self) -> dict[str, str]:
        # requests (azure-core's transport) trusts REQUESTS_CA_BUNDLE, not SSL_CERT_FILE.
        env = super().client_env()
        return env | {"REQUESTS_CA_BUNDLE": env["SSL_CERT_FILE"]} if env else env

    # --- seeding ------------------------------------------------------------------------------

    def add(self, name: str, value: str = "s3cr3t") -> None:
        """A live secret."""
        with self._lock:
            self._secrets[name.lower()] = StoredSecret(name, value)

    def delete(self, name: str, *, deleted_on: int = 1_795_000_000, retention_days: int = 90) -> None:
        """Soft-delete a secret (seeding it first when absent), purge scheduled after the retention."""
        with self._lock:
            secret = self._secrets.setdefault(name.lower(), StoredSecret(name, "s3cr3t"))
            secret.deleted_on = deleted_on
            secret.purge_on = deleted_on + retention_days * 86_400

    def state(self, name: str) -> str:
        """`live`, `deleted`, `recovering` or `absent`."""
        with self._lock:
            secret = self._secrets.get(name.lower())
        if secret is None:
            return "absent"
        if secret.deleted_on is not None:
            return "deleted"
        return "recovering" if secret.recovering_reads else "live"

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._secrets.clear()
            self._faults.clear()
            self._denied.clear()

    # --- scripting ----------------------------------------------------------------------------

    def fault(self, method: str, path: str, reply: Reply, *, times: int = 1) -> None:
        """Answer the next `times` authenticated requests of method to path (fnmatch) with reply."""
        with self._lock:
            self._faults.extend([(method.upper(), path.lower(), reply)] * times)

    def throttle(self, method: str, path: str, *, retry_after: str = "1") -> None:
        """429 Throttled, as Key Vault limits a vault's requests."""
        said = "Request was not processed because too many requests were received."
        self.fault(method, path, vault_error(429, "Throttled", said, headers={"Retry-After": retry_after}))

    def deny(self, method: str, path: str, data_action: str) -> None:
        """Refuse method on path (fnmatch) as Azure RBAC does when no role grants data_action."""
        with self._lock:
            self._denied.append((method.upper(), path.lower(), data_action))

    # --- the protocol -------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        if not (request.header("Authorization") or "").startswith("Bearer "):
            authority = f"https://login.microsoftonline.com/{self.tenant}"
            challenge = f'Bearer authorization="{authority}", resource="{RESOURCE}"'
            return vault_error(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
                headers={"WWW-Authenticate": challenge},
            )
        if not request.query.get("api-version"):
            return vault_error(400, "BadParameter", "The api-version query parameter is required.")
        path = request.path.lower()
        for i, (method, pattern, reply) in enumerate(self._faults):
            if method == request.method and fnmatch.fnmatchcase(path, pattern):
                del self._faults[i]
                return reply
        for method, pattern, action in self._denied:
            if method == request.method and fnmatch.fnmatchcase(path, pattern):
                return self._forbidden(request.path, action)
        if request.method == "GET" and (m := _SECRET.match(request.path)):
            return self._get_secret(m[1])
        if request.method == "GET" and (m := _DELETED.match(request.path)):
            return self._get_deleted(m[1])
        if request.method == "POST" and (m := _RECOVER.match(request.path)):
            return self._recover(m[1])
        return vault_error(400, "BadParameter", f"The stub does not serve {request.method} {request.path}.")

    def _get_secret(self, name: str) -> Reply:
        secret = self._secrets.get(name.lower())
        if secret is None or secret.deleted_on is not None:
            return _secret_not_found(name)
        if secret.recovering_reads:
            secret.recovering_reads -= 1
            return _secret_not_found(name)
        return Reply(200, self._bundle(secret) | {"value": secret.value})

    def _get_deleted(self, name: str) -> Reply:
        secret = self._secrets.get(name.lower())
        if secret is None or secret.deleted_on is None:
            return vault_error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return Reply(
            200,
            self._bundle(secret)
            | {
                "recoveryId": f"{self.vault_url}/deletedsecrets/{secret.name}",
                "deletedDate": secret.deleted_on,
                "scheduledPurgeDate": secret.purge_on,
            },
        )

    def _recover(self, name: str) -> Reply:
        secret = self._secrets.get(name.lower())
        if secret is not None and secret.recovering_reads:
            return vault_error(
                409,
                "Conflict",
                f"Secret {secret.name} is currently being recovered and cannot be re-created; retry later.",
                "ObjectIsBeingRecovered",
            )
        if secret is None or secret.deleted_on is None:
            return vault_error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        secret.deleted_on = secret.purge_on = None
        secret.recovering_reads = self.recover_reads
        return Reply(200, self._bundle(secret))

    def _bundle(self, secret: StoredSecret) -> dict[str, Any]:
        return {
            "id": f"{self.vault_url}/secrets/{secret.name}/{secret.version}",
            "attributes": {
                "enabled": True,
                "created": secret.created,
                "updated": secret.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": {},
        }

    def _forbidden(self, path: str, action: str) -> Reply:
        message = (
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, "
            "please observe propagation time.\r\n"
            f"Caller: appid=00000000-0000-0000-0000-000000000001;oid=00000000-0000-0000-0000-000000000002;"
            f"iss=https://sts.windows.net/{self.tenant}/\r\n"
            f"Action: '{action}'\r\n"
            f"Resource: '/subscriptions/s/resourcegroups/rg/providers/microsoft.keyvault/vaults/"
            f"{self.name}{path.lower()}'\r\n"
            "Assignment: (not found)\r\nDenyAssignmentId: null\r\n"
            f"DecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: {self.name};location=westeurope\r\n"
        )
        return vault_error(403, "Forbidden", message, "ForbiddenByRbac")

    @property
    def vault_url(self) -> str:
        """How the vault names itself in ids (its public address, not the stub's)."""
        return f"https://{self.name}.vault.azure.net"

    def authorized(self) -> list[Recorded]:
        """The requests that carried a token (the challenge's bare first requests left out)."""
        return [r for r in self.requests if (r.header("Authorization") or "").startswith("Bearer ")]


def _secret_not_found(name: str) -> Reply:
    return vault_error(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {name} was not found in this key vault. If you recently deleted this "
        "secret you may be able to recover it using the correct recovery command. For help resolving "
        "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )
