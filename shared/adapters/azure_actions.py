"""The Azure action kinds and the AKS cluster locator, wired to their ARM adapters from plain arguments.

    kinds = azure_kinds(settings.arm_url, azure_credential(settings.managed_identity_client_id))
    clusters = aks_locator(settings.arm_url, azure_credential(settings.managed_identity_client_id))

Nothing here imports an SDK: the clients are built on the first call that needs one.
"""

from __future__ import annotations

from typing import Any

from shared.actions.clusters import ClusterLocator
from shared.actions.cosmosdb import CosmosFailback, CosmosFailover
from shared.actions.kind import ActionKind
from shared.actions.redis import RedisFailover, SentinelFactory
from shared.adapters.aks import AksClusters
from shared.adapters.azure_clients import ARM_TIMEOUTS, ArmClients, ArmTimeouts
from shared.adapters.cosmosdb_arm import ArmCosmosAccounts
from shared.adapters.redis_arm import ArmAzureCaches, ArmManagedRedis, sentinel_set


def azure_kinds(
    arm_url: str,
    credential: Any,
    *,
    check_seconds: float = 15.0,
    sentinels: SentinelFactory = sentinel_set,
    timeouts: ArmTimeouts = ARM_TIMEOUTS,
) -> list[ActionKind]:
    """redis.failover (Azure Cache, Managed Redis, Sentinel), cosmosdb.failover and cosmosdb.failback."""
    clients = ArmClients(arm_url, credential, timeouts)
    accounts = ArmCosmosAccounts(clients)
    return [
        RedisFailover(ArmAzureCaches(clients), ArmManagedRedis(clients), sentinels, check_seconds),
        CosmosFailover(accounts, check_seconds),
        CosmosFailback(accounts, check_seconds),
    ]


def aks_locator(arm_url: str, credential: Any, timeouts: ArmTimeouts = ARM_TIMEOUTS) -> ClusterLocator:
    """AKS clusters by resource id: API server and CA from the user kubeconfig, an Entra ID token."""
    return AksClusters(ArmClients(arm_url, credential, timeouts), credential)
