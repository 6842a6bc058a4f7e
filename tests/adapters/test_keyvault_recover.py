"""keyvault.recover_secret with the real azure-keyvault-secrets client against the Key Vault stub (TLS)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.actions.keyvault import RecoverSecret, default_vault_url, vault_of
from shared.actions.kind import ActionFailed, Context, Progress, Target, Verdict
from shared.adapters.keyvault import keyvault_kinds, verifies_challenge
from shared.errors import OutcomeUnknown, Transient
from tests.stubs.keyvault import SCOPE, TENANT, KeyVaultStub, VaultCredential, vault_error

API_VERSION = "2026-04-01"  # azure-keyvault-secrets 4.12.0's default
VAULT_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg-shop"
    "/providers/Microsoft.KeyVault/vaults/kv-shop-prod"
)
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CONTEXT = Context("inc-1", NOW, NOW)
RECOVER_ACTION = "Microsoft.KeyVault/vaults/secrets/recover/action"


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyVaultStub]:
    from azure.keyvault.secrets._shared import http_challenge_cache

    # The SDK caches challenges per host:port for the whole process; each test starts unchallenged.
    http_challenge_cache.clear()
    with KeyVaultStub() as started:
        started.announce(monkeypatch)
        yield started
    http_challenge_cache.clear()


@pytest.fixture
def credential() -> VaultCredential:
    return VaultCredential()


@pytest.fixture
def kind(credential: VaultCredential) -> RecoverSecret:
    [built] = keyvault_kinds(credential)
    assert isinstance(built, RecoverSecret)
    return built


def target(vault: KeyVaultStub, secret: str = "db-password") -> Target:
    return Target(VAULT_ID, {"secret": secret}, {"vault_url": vault.url})


def sent(vault: KeyVaultStub) -> list[tuple[str, str]]:
    """Method and path of each authenticated request, in order."""
    return [(r.method, r.path) for r in vault.authorized()]


# --- precondition ----------------------------------------------------------------------------------


def test_a_deleted_secret_proceeds_showing_its_deleted_and_purge_dates(
    vault: KeyVaultStub, kind: RecoverSecret, credential: VaultCredential
) -> None:
    vault.delete("db-password", deleted_on=1_795_000_000, retention_days=90)

    check = kind.precondition(target(vault), CONTEXT)

    assert check.verdict is Verdict.PROCEED
    assert "deleted 2026-11-18 11:06 UTC" in check.detail
    assert "scheduled purge 2027-02-16 11:06 UTC" in check.detail
    assert "Recoverable+Purgeable" in check.detail
    assert check.found == {
        "deleted_on": "2026-11-18T11:06:40+00:00",
        "purge_on": "2027-02-16T11:06:40+00:00",
    }
    challenge, answered = vault.requests
    assert (challenge.method, challenge.path, challenge.header("Authorization")) == (
        "GET",
        "/deletedsecrets/db-password",
        None,
    )
    assert answered.header("Authorization") == "Bearer stub-token-1"
    assert answered.query["api-version"] == [API_VERSION]
    # The token was asked for the challenge's resource, in the challenge's tenant.
    assert credential.scopes == [(SCOPE,)]
    assert credential.tenants == [TENANT]


def test_a_secret_that_is_there_is_skipped(vault: KeyVaultStub, kind: RecoverSecret) -> None:
    vault.add("db-password")

    check = kind.precondition(target(vault), CONTEXT)

    assert check.verdict is Verdict.SKIP
    assert "already there" in check.detail
    assert sent(vault) == [("GET", "/deletedsecrets/db-password"), ("GET", "/secrets/db-password/")]


def test_a_secret_in_neither_list_is_refused_as_purged(vault: KeyVaultStub, kind: RecoverSecret) -> None:
    check = kind.precondition(target(vault, "gone"), CONTEXT)

    assert check.verdict is Verdict.REFUSE
    assert "not in Key Vault kv-shop-prod's deleted secrets (purged?)" in check.detail
    assert sent(vault) == [("GET", "/deletedsecrets/gone"), ("GET", "/secrets/gone/")]


# --- execute and check -----------------------------------------------------------------------------


def test_execute_sends_the_recover_post_once_and_does_not_wait(
    vault: KeyVaultStub, kind: RecoverSecret
) -> None:
    vault.delete("db-password")

    step = kind.execute(target(vault), CONTEXT, {})

    assert step.progress is Progress.PENDING
    assert step.continuation == {"vault_url": vault.url, "secret": "db-password"}
    assert step.check_after == 10.0
    [recover] = vault.authorized()
    assert (recover.method, recover.path) == ("POST", "/deletedsecrets/db-password/recover")
    assert recover.query["api-version"] == [API_VERSION]
    assert recover.body == b""
    assert vault.state("db-password") == "recovering"  # no GET of the secret was made


def test_check_is_pending_until_the_secret_reads_back_then_done(
    vault: KeyVaultStub, kind: RecoverSecret
) -> None:
    vault.recover_reads = 2
    vault.delete("db-password")
    tgt = target(vault)
    step = kind.execute(tgt, CONTEXT, {})

    first = kind.check(tgt, CONTEXT, step.continuation)
    second = kind.check(tgt, CONTEXT, first.continuation)
    third = kind.check(tgt, CONTEXT, second.continuation)

    assert [s.progress for s in (first, second, third)] == [Progress.PENDING, Progress.PENDING, Progress.DONE]
    assert first.continuation == step.continuation
    assert third.detail == "secret db-password is back in Key Vault kv-shop-prod"
    assert (
        sent(vault)
        == [("POST", "/deletedsecrets/db-password/recover")] + [("GET", "/secrets/db-password/")] * 3
    )


def test_a_409_on_recover_is_a_recovery_already_under_way(vault: KeyVaultStub, kind: RecoverSecret) -> None:
    vault.delete("db-password")
    tgt = target(vault)
    kind.execute(tgt, CONTEXT, {})

    again = kind.execute(tgt, CONTEXT, {})  # the stub answers 409 ObjectIsBeingRecovered

    assert again.progress is Progress.PENDING
    assert "already running" in again.detail
    assert kind.check(tgt, CONTEXT, again.continuation).progress is Progress.PENDING
    assert kind.check(tgt, CONTEXT, again.continuation).progress is Progress.DONE


# --- faults ----------------------------------------------------------------------------------------


def test_a_429_is_held_transient_after_one_request_with_its_retry_after(
    vault: KeyVaultStub, kind: RecoverSecret
) -> None:
    vault.delete("db-password")
    vault.throttle("GET", "/deletedsecrets/*", retry_after="1")

    with pytest.raises(Transient) as caught:
        kind.precondition(target(vault), CONTEXT)

    assert caught.value.held and caught.value.retry_after == 1.0
    assert "429 Throttled" in str(caught.value)
    assert sent(vault) == [("GET", "/deletedsecrets/db-password")]  # the SDK did not retry
    assert kind.precondition(target(vault), CONTEXT).verdict is Verdict.PROCEED


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_on_recover_is_transient_and_the_post_is_not_repeated(
    vault: KeyVaultStub, kind: RecoverSecret, status: int
) -> None:
    vault.delete("db-password")
    vault.fault("POST", "/deletedsecrets/*/recover", vault_error(status, "InternalServerError", "try later"))

    with pytest.raises(Transient) as caught:
        kind.execute(target(vault), CONTEXT, {})

    assert not caught.value.held
    assert f"{status} InternalServerError: try later" in str(caught.value)
    assert sent(vault) == [("POST", "/deletedsecrets/db-password/recover")]
    assert vault.state("db-password") == "deleted"


def test_a_403_from_rbac_fails_naming_the_refused_action_and_the_role(
    vault: KeyVaultStub, kind: RecoverSecret
) -> None:
    vault.delete("db-password")
    vault.deny("POST", "/deletedsecrets/*/recover", RECOVER_ACTION)

    with pytest.raises(ActionFailed) as caught:
        kind.execute(target(vault), CONTEXT, {})

    text = str(caught.value)
    assert "403 Forbidden/ForbiddenByRbac: Caller is not authorized" in text
    assert f"needs {RECOVER_ACTION}" in text
    assert "Key Vault Secrets Officer" in text and "'recover'" in text
    assert vault.state("db-password") == "deleted"


def test_a_403_from_access_policies_names_the_permission_the_call_needs(
    vault: KeyVaultStub, kind: RecoverSecret
) -> None:
    said = (
        "The user, group or application 'appid=…;oid=…' does not have secrets get permission on key "
        "vault 'kv-shop-prod;location=westeurope'."
    )
    vault.fault("GET", "/secrets/*", vault_error(403, "Forbidden", said, "AccessDenied"))

    with pytest.raises(ActionFailed) as caught:
        kind.precondition(target(vault), CONTEXT)

    text = str(caught.value)
    assert "reading secret db-password: Key Vault answered 403 Forbidden/AccessDenied" in text
    assert "needs Microsoft.KeyVault/vaults/secrets/getSecret/action" in text
    assert "secret permission 'get'" in text


def test_a_404_on_recover_fails_with_key_vaults_words(vault: KeyVaultStub, kind: RecoverSecret) -> None:
    # Purged between the precondition and execute: nothing is left to recover.
    with pytest.raises(ActionFailed, match="404 SecretNotFound: Deleted Secret not found: db-password"):
        kind.execute(target(vault), CONTEXT, {})


def test_an_unreachable_vault_is_transient(vault: KeyVaultStub, kind: RecoverSecret) -> None:
    vault.stop()

    with pytest.raises(Transient, match="Key Vault unreachable"):
        kind.precondition(target(vault), CONTEXT)


# --- the challenge's resource check ----------------------------------------------------------------


def test_the_sdk_refuses_a_challenge_whose_resource_is_not_the_vaults_domain(vault: KeyVaultStub) -> None:
    # Why a vault_url outside Key Vault's DNS turns the check off: with it on, 127.0.0.1 gets no token.
    from azure.keyvault.secrets import SecretClient

    credential = VaultCredential()
    client = SecretClient(vault.url, credential, retry_total=0)

    with pytest.raises(ValueError, match="does not match the requested domain"):
        client.get_secret("db-password")

    assert credential.scopes == []
    assert [r.header("Authorization") for r in vault.requests] == [None]


def test_the_check_stays_on_for_key_vault_domains_and_the_default_url() -> None:
    assert verifies_challenge("https://kv-shop-prod.vault.azure.net")
    assert verifies_challenge("https://kv-cn.vault.azure.cn/")
    assert verifies_challenge("https://kv-gov.vault.usgovcloudapi.net")
    assert not verifies_challenge("https://127.0.0.1:8443")
    assert not verifies_challenge("https://vault.azure.net.attacker.example")


# --- what a person reads ---------------------------------------------------------------------------


def test_command_describe_and_the_default_vault_url(kind: RecoverSecret) -> None:
    tgt = Target(VAULT_ID, {"secret": "db-password"})

    assert kind.command(tgt) == "az keyvault secret recover --vault-name kv-shop-prod --name db-password"
    assert kind.describe(tgt) == "Recover deleted secret db-password in Key Vault kv-shop-prod"
    assert vault_of(tgt).url == default_vault_url("kv-shop-prod") == "https://kv-shop-prod.vault.azure.net"
    assert vault_of(tgt).default_url
    assert (kind.name, kind.default_mode, kind.params["secret"].required) == (
        "keyvault.recover_secret",
        "approve",
        True,
    )


@pytest.mark.parametrize(
    ("resource", "secret", "problem"),
    [
        ("/subscriptions/s/resourceGroups/g/providers/Microsoft.Cache/redis/r1", "x", "not a Key Vault"),
        ("not a vault!", "x", "neither a Key Vault resource id nor a vault name"),
        (VAULT_ID, "", "not a Key Vault secret name"),
        (VAULT_ID, "has spaces", "not a Key Vault secret name"),
    ],
)
def test_a_bad_target_fails_before_any_request(
    vault: KeyVaultStub, kind: RecoverSecret, resource: str, secret: str, problem: str
) -> None:
    with pytest.raises(ActionFailed, match=problem):
        kind.precondition(Target(resource, {"secret": secret}, {"vault_url": vault.url}), CONTEXT)

    assert vault.requests == []


def test_a_bare_vault_name_is_a_target_too(vault: KeyVaultStub, kind: RecoverSecret) -> None:
    vault.delete("db-password")

    check = kind.precondition(
        Target("kv-shop-prod", {"secret": "db-password"}, {"vault_url": vault.url}), CONTEXT
    )

    assert check.verdict is Verdict.PROCEED


def test_a_recovery_whose_answer_was_lost_is_found_gone_from_the_deleted_secrets(
    vault: KeyVaultStub, kind: RecoverSecret
) -> None:
    vault.delete("db-password")
    found = kind.precondition(target(vault), CONTEXT).found
    lost = Context("inc-1", NOW, NOW, "act-1", found)
    assert kind.precondition(target(vault), lost).verdict is Verdict.PROCEED, "still deleted: not taken"
    vault.lose_answer_next("/deletedsecrets/db-password/recover", 502, method="POST")
    with pytest.raises(OutcomeUnknown):
        kind.execute(target(vault), CONTEXT, found)

    again = kind.precondition(target(vault), lost)

    assert (again.verdict, again.detail) == (
        Verdict.STARTED,
        "secret db-password is no longer among the deleted secrets",
    )
    first = kind.check(target(vault), CONTEXT, again.found)  # Key Vault restores it a moment later
    assert first.progress is Progress.PENDING
    assert kind.check(target(vault), CONTEXT, first.continuation).progress is Progress.DONE
    assert [path for method, path in sent(vault) if method == "POST"] == [
        "/deletedsecrets/db-password/recover"
    ]
