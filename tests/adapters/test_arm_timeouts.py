"""Every ARM call is bounded, well within the action's lease: the real azure-mgmt clients and
azure-core transport against the ARM stub, one of whose answers never comes in time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.actions.keyvault import RecoverSecret
from shared.actions.redis import RedisFailover
from shared.adapters.azure_clients import ARM_TIMEOUTS, ArmClients, ArmTimeouts, LazyCredential, arm_timeouts
from shared.adapters.keyvault import KeyVaultSecrets
from shared.adapters.redis_arm import ArmAzureCaches
from shared.bootstrap import Services
from shared.errors import OutcomeUnknown
from shared.settings import Settings
from tests.stubs.arm import ArmStub, StubCredential
from tests.stubs.arm_services import azure_cache, serve_azure_cache

SUB = "00000000-0000-0000-0000-00000000000a"
CACHE = f"/subscriptions/{SUB}/resourceGroups/rg-shop/providers/Microsoft.Cache/redis/cache-we"


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmStub]:
    with ArmStub() as started:
        started.announce(monkeypatch)
        serve_azure_cache(started)
        azure_cache(started, CACHE)
        yield started


def _connection(client: Any) -> tuple[float, float]:
    """What azure-core's RequestsTransport will send with every request: (connect, read) seconds."""
    config = client._pipeline._transport.connection_config
    return config.timeout, config.read_timeout


def test_the_sdk_clients_and_the_polling_pipeline_carry_the_timeouts(arm: ArmStub) -> None:
    clients = ArmClients(arm.url, StubCredential())
    assert _connection(clients.redis(SUB)._client) == (10.0, 30.0), "not azure-core's 300 s each"
    assert _connection(clients.pipeline()) == (10.0, 30.0)
    short = ArmClients(arm.url, StubCredential(), ArmTimeouts(1.5, 2.5))
    assert _connection(short.cosmos(SUB)._client) == (1.5, 2.5)


def test_an_answer_that_does_not_come_is_outcome_unknown_after_the_read_timeout(arm: ArmStub) -> None:
    caches = ArmAzureCaches(ArmClients(arm.url, StubCredential(), ArmTimeouts(1.0, 0.5)))
    released = arm.hold_next(f"{CACHE}/forceReboot")  # ARM takes the reboot; its answer never comes
    began = time.monotonic()
    try:
        # The reboot was taken: not a "later" that may be sent again at once.
        with pytest.raises(OutcomeUnknown, match=r"ARM's answer was lost .*Read timed out"):
            caches.reboot_primary(CACHE, None)
    finally:
        released.set()
    assert time.monotonic() - began < 5, "bounded by the read timeout, not azure-core's 300 s"


@pytest.mark.parametrize("lock", [30.0, 2.0])
def test_one_calls_worst_case_ends_well_within_the_actions_lease(tmp_path: Path, lock: float) -> None:
    app = Services(Settings.from_env({"DR_DATA_DIR": str(tmp_path), "DR_QUEUE_LOCK_SECONDS": str(lock)}))
    lease = app.actions.settings.lease_seconds
    timeouts = arm_timeouts(lease)
    assert timeouts.connect_seconds + timeouts.read_seconds <= lease * 2 / 3
    assert arm_timeouts(60.0) == ARM_TIMEOUTS
    kind = app.registry.get("redis.failover")
    assert isinstance(kind, RedisFailover)
    caches = kind._in_region.caches
    assert isinstance(caches, ArmAzureCaches) and caches.clients.timeouts == timeouts  # what the app uses


@pytest.mark.parametrize("lock", [30.0, 2.0])
def test_key_vault_calls_and_token_requests_carry_the_same_bounds(tmp_path: Path, lock: float) -> None:
    app = Services(Settings.from_env({"DR_DATA_DIR": str(tmp_path), "DR_QUEUE_LOCK_SECONDS": str(lock)}))
    timeouts = arm_timeouts(app.actions.settings.lease_seconds)
    kind = app.registry.get("keyvault.recover_secret")
    assert isinstance(kind, RecoverSecret) and isinstance(kind.vaults, KeyVaultSecrets)
    client = kind.vaults.client("https://kv-shop.vault.azure.net")
    config = client._client._client._pipeline._transport.connection_config  # the generated client's
    assert (config.timeout, config.read_timeout) == (timeouts.connect_seconds, timeouts.read_seconds)
    credential = kind.vaults.credential
    assert isinstance(credential, LazyCredential) and credential.timeouts == timeouts
