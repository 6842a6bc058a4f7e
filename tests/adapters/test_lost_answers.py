"""The one call that changes a target, its answer lost after the service acted: OutcomeUnknown.

Each write of each HTTP adapter, with its real client against its wire stub: the stub takes the
request and acts on it (the reboot queued, the operation started, the patch applied), then
answers 502, 504, 500 or 408 instead, or drops the connection without a word. The adapter must
say OutcomeUnknown (look before calling again), never a plain Transient that would send it again.
An answer that turns the call away (429, 503, 409: nothing done) and a connection refused before
anything was sent stay plain Transient, as do the reads, whose answers are safe to ask for again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared.actions.acr import plan_import
from shared.actions.kind import Target
from shared.actions.velero import restore_name
from shared.adapters.acr import ArmRegistries
from shared.adapters.azure_clients import ArmClients
from shared.adapters.cosmosdb_arm import ArmCosmosAccounts
from shared.adapters.keyvault import KeyVaultSecrets
from shared.adapters.kube import KubeClusters
from shared.adapters.redis_arm import ArmAzureCaches, ArmManagedRedis
from shared.errors import OutcomeUnknown, Transient
from tests.kube_access import TOKENS, StubLocator, aks_target
from tests.kube_objects import NAME, NAMESPACE, deployment, template
from tests.stubs.acr import container_registry, serve_acr
from tests.stubs.arm import ArmStub, StubCredential
from tests.stubs.arm_services import (
    azure_cache,
    cosmos_account,
    link_caches,
    managed_group,
    serve_azure_cache,
    serve_cosmos,
    serve_managed_redis,
)
from tests.stubs.keyvault import KeyVaultStub, VaultCredential
from tests.stubs.kube_api import KubeApiStub

SUB = "00000000-0000-0000-0000-00000000000a"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-shop/providers"
CACHE = f"{RG}/Microsoft.Cache/redis/cache-we"
REPLICA = f"{RG}/Microsoft.Cache/redis/cache-ne"
AMR_WE = f"{RG}/Microsoft.Cache/redisEnterprise/amr-we/databases/default"
AMR_NE = f"{RG}/Microsoft.Cache/redisEnterprise/amr-ne/databases/default"
ACCOUNT = f"{RG}/Microsoft.DocumentDB/databaseAccounts/cosmos-shop"
REGISTRY = f"{RG}/Microsoft.ContainerRegistry/registries/acrshopwe"
PEER = f"{RG}/Microsoft.ContainerRegistry/registries/acrshopne"
IMAGE = "shop/cart:1.4.2"
LOST = [502, 504, 500, 408, None]  # None: the connection dropped once the request was read
TURNED_AWAY = [(429, "TooManyRequests"), (503, "ServiceUnavailable"), (409, "Conflict")]


@dataclass(frozen=True)
class ArmWrite:
    """One adapter's write on ARM: the request it sends, what it sends, and how its effect shows."""

    name: str
    method: str
    path: str
    body: Any  # the JSON the call sends (None: no body)
    call: Callable[[ArmClients], Any]
    took_effect: Callable[[ArmStub, ArmClients], bool]


def _operation_started(arm: ArmStub, clients: ArmClients) -> bool:
    return len(arm.operations) == 1


def _rebooted(arm: ArmStub, clients: ArmClients) -> bool:
    caches = ArmAzureCaches(clients)
    caches.cache(CACHE)  # the stub swaps the roles one read after the reboot it queued
    return caches.cache(CACHE).primaries() == {"0": 1}


ARM_WRITES = [
    ArmWrite(
        "redis force-reboot",
        "POST",
        f"{CACHE}/forceReboot",
        {"rebootType": "PrimaryNode"},
        lambda clients: ArmAzureCaches(clients).reboot_primary(CACHE, None),
        _rebooted,
    ),
    ArmWrite(
        "redis unlink",
        "DELETE",
        f"{CACHE}/linkedServers/cache-ne",
        None,
        lambda clients: ArmAzureCaches(clients).unlink(CACHE, "cache-ne"),
        _operation_started,
    ),
    ArmWrite(
        "managed redis force-unlink",
        "POST",
        f"{AMR_NE}/forceUnlink",
        {"ids": [AMR_WE]},
        lambda clients: ArmManagedRedis(clients).force_unlink(AMR_NE, [AMR_WE]),
        _operation_started,
    ),
    ArmWrite(
        "cosmos offline region",
        "POST",
        f"{ACCOUNT}/offlineRegion",
        {"region": "West Europe"},
        lambda clients: ArmCosmosAccounts(clients).offline_region(ACCOUNT, "West Europe"),
        _operation_started,
    ),
    ArmWrite(
        "cosmos failover priorities",
        "POST",
        f"{ACCOUNT}/failoverPriorityChange",
        {
            "failoverPolicies": [
                {"locationName": "North Europe", "failoverPriority": 0},
                {"locationName": "West Europe", "failoverPriority": 1},
            ]
        },
        lambda clients: ArmCosmosAccounts(clients).change_priorities(
            ACCOUNT, [("North Europe", 0), ("West Europe", 1)]
        ),
        _operation_started,
    ),
    ArmWrite(
        "acr import",
        "POST",
        f"{REGISTRY}/importImage",
        {
            "source": {"resourceId": PEER, "sourceImage": IMAGE},
            "targetTags": [IMAGE],
            "mode": "NoForce",
        },
        lambda clients: ArmRegistries(clients).import_image(
            REGISTRY, plan_import(Target(REGISTRY, {"image": IMAGE, "source_registry": PEER}))[1]
        ),
        _operation_started,
    ),
]


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmStub]:
    with ArmStub() as started:
        started.announce(monkeypatch)
        serve_azure_cache(started)
        serve_managed_redis(started)
        serve_cosmos(started)
        serve_acr(started).push(PEER, IMAGE)
        azure_cache(started, CACHE)
        azure_cache(started, REPLICA, location="northeurope")
        link_caches(started, CACHE, REPLICA)
        managed_group(started, [AMR_WE, AMR_NE])
        cosmos_account(started, ACCOUNT)
        container_registry(started, REGISTRY, "westeurope")
        container_registry(started, PEER, "northeurope")
        yield started


@pytest.fixture
def clients(arm: ArmStub) -> ArmClients:
    return ArmClients(arm.url, StubCredential())


def _sent(arm: ArmStub, write: ArmWrite) -> list[Any]:
    return [r.json for r in arm.requests_to(write.path, write.method)]


@pytest.mark.parametrize("lost", LOST, ids=lambda s: f"answered-{s}" if s else "dropped")
@pytest.mark.parametrize("write", ARM_WRITES, ids=lambda w: w.name)
def test_an_arm_write_taken_and_its_answer_lost_is_outcome_unknown(
    arm: ArmStub, clients: ArmClients, write: ArmWrite, lost: int | None
) -> None:
    arm.lose_answer_next(write.path, lost, method=write.method)

    with pytest.raises(OutcomeUnknown) as caught:
        write.call(clients)

    said = str(caught.value)
    assert (f"ARM answered {lost} " in said) if lost else ("ARM's answer was lost" in said), said
    assert _sent(arm, write) == [write.body], "sent once, as it should be: no SDK retry"
    assert write.took_effect(arm, clients), "the stub acted on it: the change may well be made"


@pytest.mark.parametrize(("status", "code"), TURNED_AWAY, ids=[str(s) for s, _ in TURNED_AWAY])
@pytest.mark.parametrize("write", ARM_WRITES, ids=lambda w: w.name)
def test_an_arm_write_turned_away_is_a_plain_transient(
    arm: ArmStub, clients: ArmClients, write: ArmWrite, status: int, code: str
) -> None:
    arm.fault(write.method, write.path, status, code, retry_after="7")

    with pytest.raises(Transient) as caught:
        write.call(clients)

    assert not isinstance(caught.value, OutcomeUnknown), caught.value
    assert f"ARM answered {status} {code}" in str(caught.value)
    assert caught.value.retry_after == 7.0 and caught.value.held is (status == 429)
    assert _sent(arm, write) == [write.body]
    assert not write.took_effect(arm, clients)


@pytest.mark.parametrize("write", ARM_WRITES, ids=lambda w: w.name)
def test_an_arm_write_whose_connection_is_refused_is_a_plain_transient(
    arm: ArmStub, clients: ArmClients, write: ArmWrite
) -> None:
    arm.stop()  # nothing listens: the request is never sent

    with pytest.raises(Transient, match="ARM unreachable") as caught:
        write.call(clients)

    assert not isinstance(caught.value, OutcomeUnknown), caught.value


@pytest.mark.parametrize("lost", [502, None], ids=["answered-502", "dropped"])
def test_a_read_whose_answer_is_lost_stays_a_plain_transient(
    arm: ArmStub, clients: ArmClients, lost: int | None
) -> None:
    arm.lose_answer_next(CACHE, lost, method="GET")

    with pytest.raises(Transient) as caught:
        ArmAzureCaches(clients).cache(CACHE)

    assert not isinstance(caught.value, OutcomeUnknown), caught.value


# --- Key Vault: the recover POST ----------------------------------------------------------------

RECOVER = "/deletedsecrets/db-password/recover"


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyVaultStub]:
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()  # the SDK caches challenges per host:port for the whole process
    with KeyVaultStub() as started:
        started.announce(monkeypatch)
        started.delete("db-password")
        yield started
    http_challenge_cache.clear()


def _recovers(vault: KeyVaultStub) -> list[str]:
    return [r.path for r in vault.authorized() if r.method == "POST"]


@pytest.mark.parametrize("lost", LOST, ids=lambda s: f"answered-{s}" if s else "dropped")
def test_a_recovery_taken_and_its_answer_lost_is_outcome_unknown(
    vault: KeyVaultStub, lost: int | None
) -> None:
    secrets = KeyVaultSecrets(VaultCredential())
    secrets.secret_exists(vault.url, "db-password")  # the challenge and its token, before the write
    vault.lose_answer_next(RECOVER, lost, method="POST")

    with pytest.raises(OutcomeUnknown) as caught:
        secrets.recover(vault.url, "db-password")

    said = str(caught.value)
    assert (f"Key Vault answered {lost} " in said) if lost else ("Key Vault's answer was lost" in said), said
    assert _recovers(vault) == [RECOVER]
    assert secrets.deleted_secret(vault.url, "db-password") is None, "the stub recovered it"


@pytest.mark.parametrize(("status", "code"), [(429, "Throttled"), (503, "ServiceUnavailable")])
def test_a_recovery_turned_away_is_a_plain_transient(vault: KeyVaultStub, status: int, code: str) -> None:
    from tests.stubs.keyvault import vault_error

    secrets = KeyVaultSecrets(VaultCredential())
    secrets.secret_exists(vault.url, "db-password")
    vault.fault("POST", RECOVER, vault_error(status, code, "Try again later.", headers={"Retry-After": "3"}))

    with pytest.raises(Transient) as caught:
        secrets.recover(vault.url, "db-password")

    assert not isinstance(caught.value, OutcomeUnknown), caught.value
    assert _recovers(vault) == [RECOVER]
    assert secrets.deleted_secret(vault.url, "db-password") is not None, "nothing was recovered"


def test_a_recovery_whose_connection_is_refused_is_a_plain_transient(vault: KeyVaultStub) -> None:
    secrets = KeyVaultSecrets(VaultCredential())
    secrets.secret_exists(vault.url, "db-password")
    vault.stop()

    with pytest.raises(Transient, match="Key Vault unreachable") as caught:
        secrets.recover(vault.url, "db-password")

    assert not isinstance(caught.value, OutcomeUnknown), caught.value


# --- Kubernetes: the rollback's PATCH and Velero's create ---------------------------------------

DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"
RESTORES = "/apis/velero.io/v1/namespaces/velero/restores"
PATCH = [{"op": "replace", "path": "/spec/template", "value": template("shop/web:2")}]
RESTORE = {
    "apiVersion": "velero.io/v1",
    "kind": "Restore",
    "metadata": {"name": restore_name("inc-1", "shop"), "namespace": "velero"},
    "spec": {"backupName": "daily-1", "includedNamespaces": ["shop"]},
}


@dataclass(frozen=True)
class KubeWrite:
    """One write of the Cluster port: its request, and how its effect shows on the stub."""

    name: str
    method: str
    path: str
    body: Any
    call: Callable[[Any], Any]
    took_effect: Callable[[KubeApiStub], bool]


KUBE_WRITES = [
    KubeWrite(
        "patch deployment",
        "PATCH",
        DEPLOYMENT_PATH,
        PATCH,
        lambda cluster: cluster.patch_deployment(NAMESPACE, NAME, PATCH),
        lambda stub: _image(stub) == "shop/web:2",
    ),
    KubeWrite(
        "create restore",
        "POST",
        RESTORES,
        RESTORE,
        lambda cluster: cluster.create_custom_object("velero.io", "v1", "velero", "restores", RESTORE),
        lambda stub: stub.get("Restore", "velero", RESTORE["metadata"]["name"]) is not None,  # type: ignore[index]
    ),
]


def _image(stub: KubeApiStub) -> str:
    found = stub.get("Deployment", NAMESPACE, NAME)
    assert found is not None
    return str(found["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.fixture
def kube() -> Iterator[KubeApiStub]:
    with KubeApiStub(tls=True, tokens=TOKENS) as server:
        server.add(deployment(template("shop/web:3"), revision=3))
        yield server


def _cluster(kube: KubeApiStub) -> Any:
    return KubeClusters(StubLocator(kube)).cluster(aks_target())


@pytest.mark.parametrize("lost", LOST, ids=lambda s: f"answered-{s}" if s else "dropped")
@pytest.mark.parametrize("write", KUBE_WRITES, ids=lambda w: w.name)
def test_a_kube_write_applied_and_its_answer_lost_is_outcome_unknown(
    kube: KubeApiStub, write: KubeWrite, lost: int | None
) -> None:
    kube.lose_answer_next(write.path, lost, method=write.method)

    with pytest.raises(OutcomeUnknown) as caught:
        write.call(_cluster(kube))

    said = str(caught.value)
    assert (f": {lost} " in said) if lost else ("the answer was lost" in said), said
    assert [r.json for r in kube.requests_to(write.path, write.method)] == [write.body], "sent once"
    assert write.took_effect(kube)


def test_a_kube_write_timed_out_after_sending_is_outcome_unknown(kube: KubeApiStub) -> None:
    import shared.adapters.kube as adapter

    released = kube.hold_next(DEPLOYMENT_PATH)  # applied at once; the answer waits
    try:
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(adapter, "_RAW", adapter._RAW | {"_request_timeout": (5.0, 0.5)})
            with pytest.raises(OutcomeUnknown, match=r"the answer was lost .*ReadTimeoutError"):
                _cluster(kube).patch_deployment(NAMESPACE, NAME, PATCH)
    finally:
        released.set()
    assert _image(kube) == "shop/web:2"


@pytest.mark.parametrize("status", [429, 503, 409])
@pytest.mark.parametrize("write", KUBE_WRITES, ids=lambda w: w.name)
def test_a_kube_write_turned_away_is_a_plain_transient(
    kube: KubeApiStub, write: KubeWrite, status: int
) -> None:
    kube.respond_next(write.path, status, headers={"Retry-After": "2"})

    with pytest.raises(Transient) as caught:
        write.call(_cluster(kube))

    assert not isinstance(caught.value, OutcomeUnknown), caught.value
    assert caught.value.retry_after == 2.0
    assert len(kube.requests_to(write.path, write.method)) == 1
    assert not write.took_effect(kube)


@pytest.mark.parametrize("write", KUBE_WRITES, ids=lambda w: w.name)
def test_a_kube_write_whose_connection_is_refused_is_a_plain_transient(
    kube: KubeApiStub, write: KubeWrite
) -> None:
    cluster = _cluster(kube)
    kube.stop()

    with pytest.raises(Transient, match="unreachable") as caught:
        write.call(cluster)

    assert not isinstance(caught.value, OutcomeUnknown), caught.value


@pytest.mark.parametrize("lost", [502, None], ids=["answered-502", "dropped"])
def test_a_kube_read_whose_answer_is_lost_stays_a_plain_transient(
    kube: KubeApiStub, lost: int | None
) -> None:
    kube.lose_answer_next(DEPLOYMENT_PATH, lost, method="GET")

    with pytest.raises(Transient) as caught:
        _cluster(kube).deployment(NAMESPACE, NAME)

    assert not isinstance(caught.value, OutcomeUnknown), caught.value
