"""The redis.failover ports on ARM (azure-mgmt-redis 14.x, azure-mgmt-redisenterprise) and on Sentinel."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from shared.actions.arm import ArmId, OperationHandle, OperationState
from shared.actions.kind import ActionFailed
from shared.actions.redis import AzureCache, CacheLink, CacheNode, ManagedDatabase, SentinelSet
from shared.adapters.azure_clients import NO_RETRIES, ArmClients, ArmPolls, FirstAnswer, arm_errors, wire_text


class ArmAzureCaches:
    """`AzureCaches` through ARM."""

    def __init__(self, clients: ArmClients) -> None:
        self.clients = clients
        self._polls = ArmPolls(clients)

    def cache(self, cache_id: str) -> AzureCache:
        arm_id = ArmId.parse(cache_id)
        with arm_errors(f"reading Azure Cache {arm_id.name}"):
            got = self._client(arm_id).redis.get(arm_id.resource_group, arm_id.name)
        nodes = tuple(
            CacheNode(int(node.shard_id or 0), index, bool(node.is_primary))
            for index, node in enumerate(got.instances or ())
        )
        sku = got.sku.name if got.sku else None
        return AzureCache(got.provisioning_state, wire_text(sku), got.shard_count, got.host_name, nodes)

    def reboot_primary(self, cache_id: str, shard: int | None) -> str:
        from azure.mgmt.redis.models import RebootType, RedisRebootParameters

        arm_id = ArmId.parse(cache_id)
        body = RedisRebootParameters(reboot_type=RebootType.PRIMARY_NODE, shard_id=shard)
        with arm_errors(f"rebooting the primary of Azure Cache {arm_id.name}", write=True):
            answer = self._client(arm_id).redis.force_reboot(
                arm_id.resource_group, arm_id.name, body, **NO_RETRIES
            )
        return str(answer.message or "")

    def links(self, cache_id: str) -> list[CacheLink]:
        arm_id = ArmId.parse(cache_id)
        with arm_errors(f"listing the linked servers of Azure Cache {arm_id.name}"):
            found = list(self._client(arm_id).linked_server.list(arm_id.resource_group, arm_id.name))
        return [
            CacheLink(
                str(link.name),
                str(link.linked_redis_cache_id),
                wire_text(link.server_role),
                link.provisioning_state,
            )
            for link in found
        ]

    def unlink(self, cache_id: str, link_name: str) -> OperationHandle:
        arm_id = ArmId.parse(cache_id)
        first = FirstAnswer()
        with arm_errors(f"deleting link {link_name} of Azure Cache {arm_id.name}", write=True):
            self._client(arm_id).linked_server.begin_delete(
                arm_id.resource_group, arm_id.name, link_name, polling=first, **NO_RETRIES
            )
        return first.handle()

    def poll(self, handle: OperationHandle) -> OperationState:
        return self._polls.poll(handle)

    def _client(self, arm_id: ArmId) -> Any:
        return self.clients.redis(arm_id.subscription)


class ArmManagedRedis:
    """`ManagedRedis` through ARM."""

    def __init__(self, clients: ArmClients) -> None:
        self.clients = clients
        self._polls = ArmPolls(clients)

    def database(self, database_id: str) -> ManagedDatabase:
        arm_id = _database(database_id)
        with arm_errors(f"reading Managed Redis database {arm_id}"):
            got = self._client(arm_id).databases.get(arm_id.resource_group, arm_id.name, arm_id.leaf)
        geo = got.geo_replication
        linked = tuple((str(d.id), wire_text(d.state)) for d in (geo.linked_databases if geo else None) or ())
        return ManagedDatabase(
            wire_text(got.provisioning_state),
            wire_text(got.resource_state),
            geo.group_nickname if geo else None,
            linked,
        )

    def force_unlink(self, database_id: str, unlink_ids: Sequence[str]) -> OperationHandle:
        from azure.mgmt.redisenterprise.models import ForceUnlinkParameters

        arm_id = _database(database_id)
        first = FirstAnswer()
        with arm_errors(f"force-unlinking from Managed Redis database {arm_id}", write=True):
            self._client(arm_id).databases.begin_force_unlink(
                arm_id.resource_group,
                arm_id.name,
                arm_id.leaf,
                ForceUnlinkParameters(ids=list(unlink_ids)),
                polling=first,
                **NO_RETRIES,
            )
        return first.handle()

    def poll(self, handle: OperationHandle) -> OperationState:
        return self._polls.poll(handle)

    def _client(self, arm_id: ArmId) -> Any:
        return self.clients.redis_enterprise(arm_id.subscription)


def sentinel_set(reach: Mapping[str, Any]) -> SentinelSet:
    """A SentinelRedis from a target's reach: `sentinels = ["host:port", …]`, `master = "name"`.

    Passwords never sit in the policy: `password_setting` / `sentinel_password_setting` name the
    app settings that hold them.
    """
    from shared.adapters.redis_sentinel import SentinelRedis

    addresses = []
    for text in reach.get("sentinels") or ():
        host, _, port = str(text).rpartition(":")
        if not host or not port.isdigit():
            raise ActionFailed(f"sentinel {text!r} is not host:port")
        addresses.append((host, int(port)))
    master = reach.get("master")
    if not master:
        raise ActionFailed("a Sentinel target needs `master` (the name the Sentinels monitor)")
    return SentinelRedis(
        addresses,
        str(master),
        password=_setting(reach.get("password_setting")),
        sentinel_password=_setting(reach.get("sentinel_password_setting")),
    )


def _setting(name: Any) -> str | None:
    return os.environ.get(str(name)) or None if name else None


def _database(database_id: str) -> ArmId:
    arm_id = ArmId.parse(database_id)
    if len(arm_id.names) == 1:  # a cluster id: its database is `default`
        return ArmId.parse(f"{arm_id.top()}/databases/default")
    return arm_id
