"""Key Vault secret recovery: `keyvault.recover_secret` undeletes a soft-deleted secret.

A deleted secret stays recoverable until its scheduled purge date. The recover call only starts
the recovery (Key Vault answers at once and restores the secret a few seconds later; the SDK's
poller just reads the secret until it is found), so `execute` sends it and `check` reads the secret.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.actions.arm import ArmId
from shared.actions.kind import ActionFailed, Context, Param, Precheck, Progress, Step, Target, Verdict

VAULT_TYPE = "microsoft.keyvault/vaults"
# 3–24 letters, digits and hyphens, starting with a letter, not ending with a hyphen.
_VAULT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]\Z")
_SECRET_NAME = re.compile(r"[A-Za-z0-9-]{1,127}\Z")


@dataclass(frozen=True)
class DeletedSecret:
    """A soft-deleted secret, as `get_deleted_secret` shows it."""

    name: str
    deleted_on: datetime | None
    purge_on: datetime | None  # after this Key Vault purges it and nothing can bring it back
    recovery_level: str | None = None  # "Recoverable+Purgeable", "Recoverable", …


class Recovery(enum.StrEnum):
    """What Key Vault said to the recover call."""

    STARTED = "started"
    ALREADY_RUNNING = "already running"  # 409: a recovery of this secret is under way


class SecretVaults(Protocol):
    """The few Key Vault data-plane calls the action makes (azure-keyvault-secrets in the adapter)."""

    def deleted_secret(self, vault_url: str, name: str) -> DeletedSecret | None:
        """`get_deleted_secret(name)`; None when the vault's deleted secrets have no such name."""
        ...

    def secret_exists(self, vault_url: str, name: str) -> bool:
        """Whether `get_secret(name)` finds it (its latest version)."""
        ...

    def recover(self, vault_url: str, name: str) -> Recovery:
        """Send the recover request once; never waits for the secret to come back."""
        ...


@dataclass(frozen=True)
class Vault:
    """Which vault a target names, and where its data plane answers."""

    name: str
    url: str
    default_url: bool  # https://NAME.vault.azure.net, not a `vault_url` the target's reach gave


def vault_of(target: Target) -> Vault:
    """The vault of `target.resource` (its ARM id, or a bare vault name); `reach["vault_url"]` wins."""
    resource = target.resource.strip()
    if resource.lower().startswith("/subscriptions/"):
        arm_id = ArmId.parse(resource)
        if arm_id.type != VAULT_TYPE:
            raise ActionFailed(f"{resource!r} is a {arm_id.type}, not a Key Vault ({VAULT_TYPE})")
        name = arm_id.name
    elif _VAULT_NAME.match(resource):
        name = resource
    else:
        raise ActionFailed(f"{resource!r} is neither a Key Vault resource id nor a vault name")
    url = str(target.reach.get("vault_url") or "").rstrip("/")
    return Vault(name, url or default_vault_url(name), not url)


def default_vault_url(name: str) -> str:
    """Azure's public cloud address of a vault."""
    return f"https://{name.lower()}.vault.azure.net"


def secret_of(target: Target) -> str:
    """The `secret` param: the name of the deleted secret (Key Vault's naming rule checked)."""
    name = str(target.param("secret") or "").strip()
    if not _SECRET_NAME.match(name):
        raise ActionFailed(f"secret {name!r} is not a Key Vault secret name (1–127 letters, digits, -)")
    return name


class RecoverSecret:
    """Undelete a soft-deleted Key Vault secret (its latest version, as it was)."""

    name = "keyvault.recover_secret"
    default_mode = "approve"
    timeout_minutes = 15  # recovery takes seconds; a quarter hour means it is stuck
    params: Mapping[str, Param] = {
        "secret": Param(required=True, help="the name of the deleted secret (template)"),
    }

    def __init__(self, vaults: SecretVaults, check_seconds: float = 10.0) -> None:
        self.vaults = vaults
        self.check_seconds = check_seconds

    def describe(self, target: Target) -> str:
        return f"Recover deleted secret {secret_of(target)} in Key Vault {vault_of(target).name}"

    def command(self, target: Target) -> str:
        return f"az keyvault secret recover --vault-name {vault_of(target).name} --name {secret_of(target)}"

    def precondition(self, target: Target, context: Context) -> Precheck:
        vault, secret = vault_of(target), secret_of(target)
        deleted = self.vaults.deleted_secret(vault.url, secret)
        if context.started is not None and deleted is None:
            # A recovery whose answer was lost: the deleted secret is gone, so it was taken (the
            # secret is back, or readable in a few seconds). A deleted one still there was not:
            # recovering it then is the first recovery (a second while one runs answers 409).
            keep = {"vault_url": vault.url, "secret": secret}
            return Precheck(Verdict.STARTED, f"secret {secret} is no longer among the deleted secrets", keep)
        if deleted is not None:
            detail = (
                f"secret {secret} in Key Vault {vault.name} was deleted {_when(deleted.deleted_on)}; "
                f"recoverable until its scheduled purge {_when(deleted.purge_on)}"
            )
            if deleted.recovery_level:
                detail += f" (recovery level {deleted.recovery_level})"
            found = {"deleted_on": _iso(deleted.deleted_on), "purge_on": _iso(deleted.purge_on)}
            return Precheck(Verdict.PROCEED, detail, found)
        if self.vaults.secret_exists(vault.url, secret):
            return Precheck(Verdict.SKIP, f"secret {secret} is already there in Key Vault {vault.name}")
        return Precheck(
            Verdict.REFUSE,
            f"secret {secret} is not in Key Vault {vault.name}'s deleted secrets (purged?), "
            "nor among its secrets",
        )

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        vault, secret = vault_of(target), secret_of(target)
        said = self.vaults.recover(vault.url, secret)
        return Step(
            Progress.PENDING,
            f"recovery of secret {secret} in Key Vault {vault.name}: {said}",
            {"vault_url": vault.url, "secret": secret},
            self.check_seconds,
        )

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        vault = vault_of(target)
        url, secret = str(continuation.get("vault_url") or vault.url), secret_of(target)
        if self.vaults.secret_exists(url, secret):
            return Step(Progress.DONE, f"secret {secret} is back in Key Vault {vault.name}")
        return Step(
            Progress.PENDING,
            f"secret {secret} is not readable in Key Vault {vault.name} yet",
            {"vault_url": url, "secret": secret},
            self.check_seconds,
        )


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "(date not given)"
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
