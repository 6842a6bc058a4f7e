"""The Cosmos DB actions' port on azure-mgmt-cosmosdb 10.x (TypeSpec models: nested fields read flat)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.actions.arm import ArmId, OperationHandle, OperationState
from shared.actions.cosmosdb import CosmosAccount, CosmosRegion
from shared.adapters.azure_clients import NO_RETRIES, ArmClients, ArmPolls, FirstAnswer, arm_errors, wire_text


class ArmCosmosAccounts:
    """`CosmosAccounts` through ARM."""

    def __init__(self, clients: ArmClients) -> None:
        self.clients = clients
        self._polls = ArmPolls(clients)

    def account(self, account_id: str) -> CosmosAccount:
        arm_id = ArmId.parse(account_id)
        with arm_errors(f"reading Cosmos DB account {arm_id.name}"):
            got = self._client(arm_id).database_accounts.get(arm_id.resource_group, arm_id.name)
        policy = got.consistency_policy
        return CosmosAccount(
            write_regions=tuple(str(w.location_name) for w in got.write_locations or ()),
            regions=tuple(
                CosmosRegion(str(r.location_name), r.failover_priority, r.provisioning_state)
                for r in got.read_locations or ()
            ),
            priorities=tuple(
                sorted(
                    (
                        (str(p.location_name), int(p.failover_priority or 0))
                        for p in got.failover_policies or ()
                    ),
                    key=lambda p: p[1],
                )
            ),
            consistency=wire_text(policy.default_consistency_level) or None if policy else None,
            max_staleness_prefix=policy.max_staleness_prefix if policy else None,
            max_interval_seconds=policy.max_interval_in_seconds if policy else None,
            automatic_failover=got.enable_automatic_failover,
            provisioning_state=wire_text(got.provisioning_state) or None,
        )

    def offline_region(self, account_id: str, region: str) -> OperationHandle:
        from azure.mgmt.cosmosdb.models import RegionForOnlineOffline

        arm_id = ArmId.parse(account_id)
        first = FirstAnswer()
        with arm_errors(f"offline {region} of Cosmos DB account {arm_id.name}", write=True):
            self._client(arm_id).database_accounts.begin_offline_region(
                arm_id.resource_group,
                arm_id.name,
                RegionForOnlineOffline(region=region),
                polling=first,
                **NO_RETRIES,
            )
        return first.handle()

    def change_priorities(self, account_id: str, priorities: Sequence[tuple[str, int]]) -> OperationHandle:
        from azure.mgmt.cosmosdb.models import FailoverPolicies, FailoverPolicy

        arm_id = ArmId.parse(account_id)
        body = FailoverPolicies(
            failover_policies=[
                FailoverPolicy(location_name=name, failover_priority=p) for name, p in priorities
            ]
        )
        first = FirstAnswer()
        with arm_errors(f"changing the failover priorities of Cosmos DB account {arm_id.name}", write=True):
            self._client(arm_id).database_accounts.begin_failover_priority_change(
                arm_id.resource_group, arm_id.name, body, polling=first, **NO_RETRIES
            )
        return first.handle()

    def poll(self, handle: OperationHandle) -> OperationState:
        return self._polls.poll(handle)

    def _client(self, arm_id: ArmId) -> Any:
        return self.clients.cosmos(arm_id.subscription)
