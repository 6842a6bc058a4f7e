"""The managed-identity stub through the real azure-identity code path, and its token reaching ARM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.adapters import azure_clients
from shared.adapters.azure_clients import ActionsCredential, ArmClients, ArmTimeouts, LazyCredential
from shared.adapters.redis_arm import ArmAzureCaches
from shared.errors import OutcomeUnknown, Transient
from tests.stubs.arm import ArmStub
from tests.stubs.arm_services import azure_cache, serve_azure_cache
from tests.stubs.managed_identity import API_VERSION, ManagedIdentityStub

SUB = "00000000-0000-0000-0000-00000000000a"
CACHE = f"/subscriptions/{SUB}/resourceGroups/rg-shop/providers/Microsoft.Cache/redis/cache-we"


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[ManagedIdentityStub]:
    """The stub, announced to this process as App Service announces its endpoint."""
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(azure_clients, "_credentials", {})  # the process-wide cache: a fresh one
    with ManagedIdentityStub() as stub:
        stub.announce(monkeypatch)
        yield stub


def test_the_default_credential_asks_the_endpoint_as_app_service_expects(
    identity: ManagedIdentityStub,
) -> None:
    token = LazyCredential().get_token("https://management.azure.com/.default")

    [issued] = identity.issued
    assert token.token == issued.token == "mi-token-1"
    assert issued.resource == "https://management.azure.com" and issued.client_id is None
    [asked] = identity.requests
    assert (asked.method, asked.path) == ("GET", "/msi/token")
    assert asked.query == {"api-version": [API_VERSION], "resource": ["https://management.azure.com"]}
    assert asked.header("X-IDENTITY-HEADER") == identity.secret


def test_a_user_assigned_identity_sends_its_client_id_and_the_token_is_cached(
    identity: ManagedIdentityStub,
) -> None:
    credential = LazyCredential("11111111-2222-3333-4444-555555555555")
    first = credential.get_token("https://management.azure.com/.default")
    again = credential.get_token("https://management.azure.com/.default")

    assert first.token == again.token
    [asked] = identity.requests  # the second came from azure-identity's cache
    assert asked.query["client_id"] == ["11111111-2222-3333-4444-555555555555"]
    assert identity.issued[0].client_id == "11111111-2222-3333-4444-555555555555"


def test_a_wrong_identity_header_is_refused_and_no_token_issued(
    identity: ManagedIdentityStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises(ClientAuthenticationError):
        LazyCredential("11111111-2222-3333-4444-555555555555").get_token(
            "https://management.azure.com/.default"
        )
    assert identity.issued == []
    [asked] = identity.requests
    assert asked.header("X-IDENTITY-HEADER") == "not-the-secret"


def test_arm_receives_the_identitys_token_as_bearer(
    identity: ManagedIdentityStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ArmStub() as arm:
        arm.announce(monkeypatch)
        azure_cache(arm, CACHE)
        cache = ArmClients(arm.url, LazyCredential()).redis(SUB).redis.get("rg-shop", "cache-we")

        assert cache.host_name == "cache-we.redis.cache.windows.net"
        [issued] = identity.issued
        assert issued.resource == arm.url  # the scope `{DR_ARM_URL}/.default`, as a resource
        [read] = arm.requests_to(CACHE, "GET")
        assert read.query["api-version"] == ["2024-11-01"]
        assert arm.bearer_tokens() == [issued.token]


@pytest.mark.parametrize("client_id", [None, "11111111-2222-3333-4444-555555555555"])
def test_a_token_answer_that_never_comes_is_given_up_after_the_read_timeout(
    identity: ManagedIdentityStub, client_id: str | None
) -> None:
    held = identity.hold_next("/msi/token")  # the endpoint takes the request and never answers it
    try:
        credential = LazyCredential(client_id, ArmTimeouts(1.0, 1.0))
        token = credential.get_token("https://management.azure.com/.default")
    finally:
        held.set()
    # The first request was cut off by the read timeout and asked again, not waited on for minutes.
    assert len(identity.requests) == 2
    assert token.token == identity.issued[-1].token


@pytest.mark.parametrize("client_id", [None, "11111111-2222-3333-4444-555555555555"])
def test_the_actions_token_that_never_comes_is_one_bounded_try_and_transient_never_a_lost_answer(
    identity: ManagedIdentityStub, monkeypatch: pytest.MonkeyPatch, client_id: str | None
) -> None:
    with ArmStub() as arm:
        arm.announce(monkeypatch)
        serve_azure_cache(arm)
        azure_cache(arm, CACHE)
        caches = ArmAzureCaches(ArmClients(arm.url, ActionsCredential(client_id, ArmTimeouts(1.0, 1.0))))
        held = identity.hold_next("/msi/token")
        try:
            # The reboot's token never comes: nothing reached ARM, so the start may simply be tried
            # again later (a lost answer would wait and look first; "no identity" would fail it).
            with pytest.raises(Transient, match="no token for the actions' identity") as raised:
                caches.reboot_primary(CACHE, None)
        finally:
            held.set()
        assert not isinstance(raised.value, OutcomeUnknown)
        assert len(identity.requests) == 1  # one try: azure-identity's retries would multiply the bound
        assert arm.requests_to(f"{CACHE}/forceReboot") == []
