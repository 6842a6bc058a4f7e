"""What the ARM stub's resource providers do for the DR actions: Cosmos DB, Azure Cache, Managed Redis, AKS.

Each `serve_*` registers a provider's POST actions on an `ArmStub` (long ones as LROs whose effect
lands when the operation succeeds); each seeding helper stores a resource shaped as ARM returns it.
"""

from __future__ import annotations

import base64
import copy
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
