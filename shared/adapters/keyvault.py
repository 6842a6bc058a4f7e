"""The Key Vault action's port on azure-keyvault-secrets (imported when a client is first built).

- One `SecretClient` per vault URL, built on first use and kept (its challenge-auth token too).
- No client retries (`retry_total=0`): every 429, 5xx and unreachable vault becomes `Transient`
  after one request, and the action pipeline decides when to try the step again. The recover
  call's answer lost after sending (a reset, a read timeout, 500/502/504/408) is `OutcomeUnknown`.
- Challenge auth: Key Vault answers a request without a token 401 with a `WWW-Authenticate`
  challenge naming the tenant and the resource (`https://vault.azure.net`); the SDK asks the
  credential for that scope and sends the request again. It also checks that the vault URL's host
  lies under the challenge's resource domain, so a spoofed vault cannot collect a vault token.
  That check stays on for every Key Vault DNS suffix; it is off only for a `vault_url` the
  operator configured elsewhere (a private endpoint's own name, a test stub on 127.0.0.1).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.actions.keyvault import DeletedSecret, RecoverSecret, Recovery
from shared.actions.kind import ActionFailed, ActionKind
from shared.adapters.azure_clients import ARM_TIMEOUTS, ArmTimeouts, wire_text
from shared.errors import MAYBE_TAKEN, OutcomeUnknown, Transient, retry_after_seconds

# Key Vault's DNS suffixes in Azure's clouds (public, China, US Government).
VAULT_DOMAINS = ("vault.azure.net", "vault.azure.cn", "vault.usgovcloudapi.net")
_RBAC_ACTION = re.compile(r"Action:\s*'([^']+)'")


@dataclass(frozen=True)
class Needs:
    """The permission one call needs, under Azure RBAC and under the vault's access policies."""

    data_action: str
    access_policy: str  # the secret permission an access policy grants


GET_SECRET = Needs("Microsoft.KeyVault/vaults/secrets/getSecret/action", "get")
# Deleted secrets are read as metadata (no value); access policies call it `get` too.
READ_DELETED = Needs("Microsoft.KeyVault/vaults/secrets/readMetadata/action", "get")
RECOVER = Needs("Microsoft.KeyVault/vaults/secrets/recover/action", "recover")


def verifies_challenge(vault_url: str) -> bool:
    """Whether the SDK should check the challenge's resource against this URL's host."""
    host = (urlsplit(vault_url).hostname or "").lower()
    return any(host.endswith(f".{domain}") for domain in VAULT_DOMAINS)


class KeyVaultSecrets:
    """`SecretVaults` through azure-keyvault-secrets."""

    def __init__(self, credential: Any, **client_options: Any) -> None:
        self.credential = credential
        self.client_options = client_options  # e.g. connection_verify, for a vault behind a private CA
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def deleted_secret(self, vault_url: str, name: str) -> DeletedSecret | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            with vault_errors(f"reading deleted secret {name}", READ_DELETED, ResourceNotFoundError):
                got = self.client(vault_url).get_deleted_secret(name)
        except ResourceNotFoundError:
            return None
        return DeletedSecret(
            name=str(got.name or name),
            deleted_on=got.deleted_date,
            purge_on=got.scheduled_purge_date,
            recovery_level=wire_text(got.properties.recovery_level) or None,
        )

    def secret_exists(self, vault_url: str, name: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            with vault_errors(f"reading secret {name}", GET_SECRET, ResourceNotFoundError):
                self.client(vault_url).get_secret(name)
        except ResourceNotFoundError:
            return False
        return True

    def recover(self, vault_url: str, name: str) -> Recovery:
        from azure.core.exceptions import ResourceExistsError

        try:
            with vault_errors(f"recovering deleted secret {name}", RECOVER, ResourceExistsError, write=True):
                # The poller it returns waits only when asked (`wait()`): this is the POST alone.
                self.client(vault_url).begin_recover_deleted_secret(name)
        except ResourceExistsError:  # 409: this secret is being recovered already
            return Recovery.ALREADY_RUNNING
        return Recovery.STARTED

    def client(self, vault_url: str) -> Any:
        """The vault's client, built on first use."""
        key = vault_url.rstrip("/").lower()
        with self._lock:
            if key not in self._clients:
                from azure.keyvault.secrets import SecretClient

                self._clients[key] = SecretClient(
                    vault_url,
                    self.credential,
                    verify_challenge_resource=verifies_challenge(vault_url),
                    retry_total=0,
                    **self.client_options,
                )
            return self._clients[key]


@contextmanager
def vault_errors(where: str, needs: Needs, *passing: type[Exception], write: bool = False) -> Iterator[None]:
    """azure-core's errors as ours, each `from` the original; `passing` ones reach the caller as they are.

    `write`: the call changes the vault, so an answer lost after sending is `OutcomeUnknown`.
    """
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    try:
        yield
    except passing:
        raise
    except HttpResponseError as e:
        answer: Any = e.response
        if answer is None:  # the credential's own error: no token, the vault was not asked
            raise Transient(f"{where}: no token for Key Vault ({type(e).__name__}: {e.message})") from e
        status = int(answer.status_code)
        raise vault_failure(where, needs, status, _body(answer), answer.headers, write=write) from e
    except ServiceResponseError as e:  # sent, then reset or timed out: the vault may have taken it
        said = f"{where}: Key Vault's answer was lost ({type(e).__name__}: {e.message})"
        raise (OutcomeUnknown(said) if write else Transient(said)) from e
    except ServiceRequestError as e:  # refused, DNS, connect timeout: never sent
        raise Transient(f"{where}: Key Vault unreachable ({type(e).__name__}: {e.message})") from e


def vault_failure(
    where: str, needs: Needs, status: int, body: Any, headers: Any, *, write: bool = False
) -> Exception:
    """The error for one Key Vault answer that is not a success: Transient (OutcomeUnknown), ActionFailed."""
    code, message = _code_and_message(body)
    said = f"{where}: Key Vault answered {status} {code}: {message}"
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if status == 429:
        return Transient(said, retry_after, held=True)
    if write and status in MAYBE_TAKEN:
        return OutcomeUnknown(f"{said} (it may have been taken)", retry_after)
    if status >= 500 or status == 408:
        return Transient(said, retry_after)
    if status == 403:
        # RBAC names the data action it refused; access policies only say "does not have … permission".
        action = m[1] if (m := _RBAC_ACTION.search(message)) else needs.data_action
        return ActionFailed(
            f"{said} — the responder's identity needs {action} on the vault: assign it the "
            f"Key Vault Secrets Officer role (or, on a vault using access policies, grant the "
            f"secret permission '{needs.access_policy}')"
        )
    return ActionFailed(said)


def _body(answer: Any) -> Any:
    try:
        return json.loads(answer.text())
    except (ValueError, TypeError, AttributeError):
        return None


def _code_and_message(body: Any) -> tuple[str, str]:
    inner = body.get("error") if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return "-", "no Key Vault error body"
    code = str(inner.get("code") or "-")
    nested = inner.get("innererror")
    if isinstance(nested, dict) and nested.get("code"):
        code = f"{code}/{nested['code']}"  # Forbidden/ForbiddenByRbac, Conflict/ObjectIsBeingRecovered
    message = " ".join(str(inner.get("message") or "-").split())  # RBAC's text comes in \r\n lines
    return code, message


def keyvault_kinds(
    credential: Any, check_seconds: float = 10.0, timeouts: ArmTimeouts = ARM_TIMEOUTS
) -> list[ActionKind]:
    """`keyvault.recover_secret`, on the data plane of whichever vault a target names, each call
    bounded as an ARM call is (a vault slow in a regional outage must not outlast the lease)."""
    return [RecoverSecret(KeyVaultSecrets(credential, **timeouts.keywords()), check_seconds)]
