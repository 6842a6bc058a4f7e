"""What the ARM stub's resource providers do for the DR actions: Cosmos DB, Azure Cache, Managed Redis, AKS.

Each `serve_*` registers a provider's POST actions on an `ArmStub` (long ones as LROs whose effect
lands when the operation succeeds); each seeding helper stores a resource shaped as ARM returns it.
"""

from __future__ import annotations

import base64
import copy
import functools
from collections.abc import Sequence
from typing import Any

from tests.stubs.arm import JSON, ArmStub, arm_error
from tests.stubs.base import Recorded, Reply

COSMOS = "Microsoft.DocumentDB/databaseAccounts"


def _short(region: str) -> str:
    return "".join(region.split()).lower()


# --- Cosmos DB ------------------------------------------------------------------------------------


def cosmos_account(
    arm: ArmStub,
    account_id: str,
    regions: Sequence[str] = ("West Europe", "North Europe"),
    *,
    consistency: JSON | None = None,
    states: dict[str, str] | None = None,
) -> JSON:
    """An account whose regions, in order, are failover priorities 0, 1, …; [0] takes the writes."""
    name = account_id.rsplit("/", 1)[-1]
    states = states or {}

    def location(region: str, priority: int) -> JSON:
        return {
            "id": f"{name}-{_short(region)}",
            "locationName": region,
            "documentEndpoint": f"https://{name}-{_short(region)}.documents.azure.com:443/",
            "provisioningState": states.get(region, "Succeeded"),
            "failoverPriority": priority,
            "isZoneRedundant": False,
        }

    locations = [location(r, i) for i, r in enumerate(regions)]
    return arm.put(
        account_id,
        {
            "location": regions[0],
            "kind": "GlobalDocumentDB",
            "properties": {
                "provisioningState": "Succeeded",
                "documentEndpoint": f"https://{name}.documents.azure.com:443/",
                "databaseAccountOfferType": "Standard",
                "consistencyPolicy": consistency or {"defaultConsistencyLevel": "Session"},
                "enableAutomaticFailover": False,
                "enableMultipleWriteLocations": False,
                "writeLocations": [locations[0]],
                "readLocations": locations,
                "locations": locations,
                "failoverPolicies": [
                    {
                        "id": loc["id"],
                        "locationName": loc["locationName"],
                        "failoverPriority": loc["failoverPriority"],
                    }
                    for loc in locations
                ],
            },
        },
    )


def serve_cosmos(arm: ArmStub) -> None:
    """offlineRegion (202 LRO: the next region takes the writes) and failoverPriorityChange (202 LRO)."""
    base = r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.DocumentDB/databaseAccounts/[^/]+"

    def offline(request: Recorded, match: Any) -> Reply:
        account_id = request.path.rsplit("/", 1)[0]
        account = arm.get(account_id)
        region = (request.json or {}).get("region")
        if account is None:
            return arm_error(404, "ResourceNotFound", f"Database account {account_id} not found")
        names = [loc["locationName"] for loc in account["properties"]["readLocations"]]
        if region not in names:
            return arm_error(400, "BadRequest", f"Region {region!r} is not a region of the account.")

        def effect() -> None:
            arm.update(account_id, lambda a: _offline(a, str(region)))

        return arm.accepted(arm.start_operation(request, effect=effect))

    def priorities(request: Recorded, match: Any) -> Reply:
        account_id = request.path.rsplit("/", 1)[0]
        wanted = (request.json or {}).get("failoverPolicies") or []

        def effect() -> None:
            arm.update(account_id, lambda a: _reprioritise(a, wanted))

        return arm.accepted(arm.start_operation(request, effect=effect))

    arm.on("POST", base + "/offlineRegion", offline)
    arm.on("POST", base + "/failoverPriorityChange", priorities)


def _offline(account: JSON, region: str) -> None:
    props = account["properties"]
    for loc in props["readLocations"]:
        if loc["locationName"] == region:
            loc["provisioningState"] = "Offline"
    serving = sorted(
        (loc for loc in props["readLocations"] if loc["provisioningState"] == "Succeeded"),
        key=lambda loc: loc["failoverPriority"],
    )
    props["writeLocations"] = [copy.deepcopy(serving[0])] if serving else []


def _reprioritise(account: JSON, wanted: list[JSON]) -> None:
    props = account["properties"]
    by_name = {p["locationName"]: p["failoverPriority"] for p in wanted}
    for loc in props["readLocations"]:
        loc["failoverPriority"] = by_name.get(loc["locationName"], loc["failoverPriority"])
    props["readLocations"].sort(key=lambda loc: loc["failoverPriority"])
    props["failoverPolicies"] = [
        {"id": loc["id"], "locationName": loc["locationName"], "failoverPriority": loc["failoverPriority"]}
        for loc in props["readLocations"]
    ]
    props["writeLocations"] = [copy.deepcopy(props["readLocations"][0])]


# --- Azure Cache for Redis ----------------------------------------------------------------------


def azure_cache(
    arm: ArmStub,
    cache_id: str,
    *,
    sku: str = "Premium",
    shard_count: int | None = None,
    state: str = "Succeeded",
    location: str = "westeurope",
) -> JSON:
    """A cache with a primary and a replica per shard (instance 0 of each shard is primary)."""
    name = cache_id.rsplit("/", 1)[-1]
    shards = range(shard_count or 1)
    instances = [
        {
            "sslPort": 15000 + 2 * s + i,
            "shardId": s if shard_count else None,
            "isMaster": i == 0,
            "isPrimary": i == 0,
        }
        for s in shards
        for i in (0, 1)
    ]
    properties: JSON = {
        "provisioningState": state,
        "hostName": f"{name}.redis.cache.windows.net",
        "port": 6379,
        "sslPort": 6380,
        "sku": {"name": sku, "family": "C" if sku != "Premium" else "P", "capacity": 1},
        "redisVersion": "6.0",
        "instances": instances,
        "linkedServers": [],
    }
    if shard_count:
        properties["shardCount"] = shard_count
    return arm.put(cache_id, {"location": location, "properties": properties})


def link_caches(arm: ArmStub, primary_id: str, secondary_id: str) -> None:
    """Geo-replicate primary → secondary: a linked server on each side, named after the other cache."""
    for here, there, role in ((primary_id, secondary_id, "Secondary"), (secondary_id, primary_id, "Primary")):
        arm.put(
            f"{here}/linkedServers/{there.rsplit('/', 1)[-1]}",
            {
                "type": "Microsoft.Cache/Redis/linkedServers",
                "properties": {
                    "linkedRedisCacheId": there,
                    "linkedRedisCacheLocation": "northeurope",
                    "serverRole": role,
                    "provisioningState": "Succeeded",
                },
            },
        )


def serve_azure_cache(arm: ArmStub, *, swap_after_reads: int = 1) -> None:
    """forceReboot (200, the shard's primary moves `swap_after_reads` GETs later) and unlinking both sides."""
    base = r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Cache/redis/[^/]+"
    pending: list[JSON] = []

    def reboot(request: Recorded, match: Any) -> Reply:
        cache_id = request.path.rsplit("/", 1)[0]
        body = request.json or {}
        if arm.get(cache_id) is None:
            return arm_error(404, "ResourceNotFound", f"Cache {cache_id} not found")
        if body.get("rebootType") not in ("PrimaryNode", "SecondaryNode", "AllNodes"):
            return arm_error(
                400, "InvalidRequestBody", "rebootType must be PrimaryNode, SecondaryNode or AllNodes."
            )
        pending.append({"cache": cache_id, "shard": body.get("shardId"), "reads_left": swap_after_reads})
        return Reply(200, {"message": "Reboot operation successfully enqueued"})

    def read(request: Recorded, match: Any) -> Reply:
        for entry in list(pending):
            if entry["cache"].lower() != request.path.lower():
                continue
            if entry["reads_left"] > 0:
                entry["reads_left"] -= 1
                continue
            pending.remove(entry)
            arm.update(entry["cache"], functools.partial(_swap, shard=entry["shard"]))
        found = arm.get(request.path)
        return Reply(200, found) if found else arm_error(404, "ResourceNotFound", "Cache not found")

    def unlink(request: Recorded, match: Any) -> Reply:
        link = arm.get(request.path)
        if link is None:
            return Reply(204, b"")
        cache_id = request.path.split("/linkedServers/")[0]
        other = link["properties"]["linkedRedisCacheId"]

        def effect() -> None:
            arm.remove(request.path)
            arm.remove(f"{other}/linkedServers/{cache_id.rsplit('/', 1)[-1]}")

        return arm.accepted(arm.start_operation(request, effect=effect))

    arm.on("POST", base + "/forceReboot", reboot)
    arm.on("GET", base, read)
    arm.on("DELETE", base + "/linkedServers/[^/]+", unlink)


def _swap(cache: JSON, shard: int | None) -> None:
    for instance in cache["properties"]["instances"]:
        if shard is None or instance.get("shardId") == shard:
            instance["isPrimary"] = instance["isMaster"] = not instance["isPrimary"]


# --- Azure Managed Redis -------------------------------------------------------------------------


def managed_group(arm: ArmStub, database_ids: Sequence[str], group: str = "shop") -> None:
    """Databases in one active geo-replication group, each listing every member as Linked."""
    members = [{"id": d, "state": "Linked"} for d in database_ids]
    for database_id in database_ids:
        arm.put(
            database_id,
            {
                "type": "Microsoft.Cache/redisEnterprise/databases",
                "properties": {
                    "provisioningState": "Succeeded",
                    "resourceState": "Running",
                    "clientProtocol": "Encrypted",
                    "port": 10000,
                    "clusteringPolicy": "OSSCluster",
                    "geoReplication": {"groupNickname": group, "linkedDatabases": copy.deepcopy(members)},
                },
            },
        )


def serve_managed_redis(arm: ArmStub) -> None:
    """forceUnlink (202 LRO: the ids leave the group of every remaining member)."""
    base = r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Cache/redisEnterprise/[^/]+"
    base += "/databases/[^/]+"

    def force_unlink(request: Recorded, match: Any) -> Reply:
        database_id = request.path.rsplit("/", 1)[0]
        ids = [str(i).lower() for i in (request.json or {}).get("ids") or []]
        if not ids:
            return arm_error(400, "InvalidRequestBody", "ids is required.")
        found = arm.get(database_id)
        if found is None:
            return arm_error(404, "ResourceNotFound", "Database not found")

        def effect() -> None:
            for member in found["properties"]["geoReplication"]["linkedDatabases"]:
                if member["id"].lower() not in ids and arm.get(member["id"]) is not None:
                    arm.update(member["id"], lambda d: _drop_members(d, ids))

        return arm.accepted(arm.start_operation(request, effect=effect))

    arm.on("POST", base + "/forceUnlink", force_unlink)


def _drop_members(database: JSON, ids: list[str]) -> None:
    geo = database["properties"]["geoReplication"]
    geo["linkedDatabases"] = [m for m in geo["linkedDatabases"] if m["id"].lower() not in ids]


def kubeconfig(server: str, ca_pem: str, cluster: str = "aks-shop") -> str:
    """The kubeconfig `listClusterUserCredential` returns for an Entra ID cluster (exec: kubelogin)."""
    ca = base64.b64encode(ca_pem.encode()).decode()
    return f"""apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: {cluster}
contexts:
- context:
    cluster: {cluster}
    user: clusterUser_rg_{cluster}
  name: {cluster}
current-context: {cluster}
kind: Config
preferences: {{}}
users:
- name: clusterUser_rg_{cluster}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - get-token
      - --login
      - azurecli
      - --server-id
      - 6dae42f8-4368-4678-94ff-3960e28e3630
      command: kubelogin
      env: null
      installHint: kubelogin is not installed
      interactiveMode: IfAvailable
      provideClusterInfo: false
"""
