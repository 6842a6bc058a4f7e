"""Cosmos DB regional failover: `cosmosdb.failover` (forced, offline the failed write region) and
`cosmosdb.failback` (planned, the failover priorities changed back).

During an outage the planned path (`failoverPriorityChange`) needs the failed region to take part,
so the failover is the forced one, `offlineRegion`: it may lose writes not yet replicated, and the
precondition says how many (the account's consistency). Failing back later is planned: every
region named once, one at priority 0, and only when both regions are healthy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.actions.arm import ArmId, ArmOperations, OperationHandle, region_key, same_region, watch
from shared.actions.kind import Context, Param, Precheck, Progress, Step, Target, Verdict

API_VERSION = "2026-03-15"  # azure-mgmt-cosmosdb 10.0.0's; `az rest` in suggest mode sends the same
HEALTHY = "Succeeded"  # a region's provisioningState while it serves
# The account's provisioningState values that read, after a start whose answer was lost, as "that
# start may be under way" (STARTED: watched, not sent again). azure-mgmt-cosmosdb 10.0.0 types it a
# plain string; the service documents Creating, Succeeded, Updating, Deleting, Failed and
# DeletionFailed. Only Updating is an operation on a live account (an offlineRegion or a
# failoverPriorityChange shows it); Failed or DeletionFailed is no sign of our start, nor is an
# account being created or deleted: those are refused at once, so a person is paged now rather than
# the action polling until its time-out.
ACCOUNT_UNDER_WAY = frozenset(("updating",))


@dataclass(frozen=True)
class CosmosRegion:
    """One region of an account, as `read_locations` lists it."""

    name: str  # "West Europe"
    failover_priority: int | None
    provisioning_state: str | None


@dataclass(frozen=True)
class CosmosAccount:
    """What the failover reads of `database_accounts.get()`."""

    write_regions: tuple[str, ...]  # write_locations, in order: [0] takes the writes
    regions: tuple[CosmosRegion, ...]  # read_locations (every region of the account)
    priorities: tuple[tuple[str, int], ...]  # failover_policies, by priority
    consistency: str | None = None
    max_staleness_prefix: int | None = None
    max_interval_seconds: int | None = None
    automatic_failover: bool | None = None
    provisioning_state: str | None = None  # the account's: Updating while ARM changes it

    @property
    def write_region(self) -> str:
        """The region taking the writes now."""
        return self.write_regions[0] if self.write_regions else ""

    def region(self, name: str) -> CosmosRegion | None:
        """A region by either spelling (`West Europe`, `westeurope`)."""
        return next((r for r in self.regions if same_region(r.name, name)), None)

    def lag(self) -> str:
        """How far behind a read region may be, from the consistency level."""
        level = self.consistency or "unknown"
        if level == "BoundedStaleness":
            return (
                f"consistency BoundedStaleness: at most {self.max_staleness_prefix} writes or "
                f"{self.max_interval_seconds} s behind; writes within that window may be lost"
            )
        if level == "Strong":
            return "consistency Strong: replicated synchronously, nothing should be lost"
        return f"consistency {level}: replicated asynchronously, recent writes may be lost"


class CosmosAccounts(ArmOperations, Protocol):
    """The few calls the Cosmos DB actions make (azure-mgmt-cosmosdb in the adapter)."""

    def account(self, account_id: str) -> CosmosAccount:
        """`database_accounts.get()`, read."""
        ...

    def offline_region(self, account_id: str, region: str) -> OperationHandle:
        """Start `begin_offline_region(RegionForOnlineOffline(region=…))` (forced)."""
        ...

    def change_priorities(self, account_id: str, priorities: Sequence[tuple[str, int]]) -> OperationHandle:
        """Start `begin_failover_priority_change` (planned)."""
        ...


class CosmosFailover:
    """Offline the failed write region so the next region by failover priority takes the writes."""

    name = "cosmosdb.failover"
    default_mode = "approve"  # forced: may lose unreplicated writes
    timeout_minutes = 60
    params: Mapping[str, Param] = {
        "region": Param(help="the failed write region (template); default: the account's write region now"),
    }

    def __init__(self, accounts: CosmosAccounts, check_seconds: float = 15.0) -> None:
        self.accounts = accounts
        self.check_seconds = check_seconds

    def describe(self, target: Target) -> str:
        failed = target.param("region") or "its write region"
        return f"Fail Cosmos DB account {ArmId.parse(target.resource).name} over: offline {failed} (forced)"

    def command(self, target: Target) -> str:
        body = json.dumps({"region": target.param("region") or "<failed write region>"})
        url = f"https://management.azure.com{ArmId.parse(target.resource)}/offlineRegion?api-version={API_VERSION}"
        return f"az rest --method post --url '{url}' --body '{body}'"

    def precondition(self, target: Target, context: Context) -> Precheck:
        account = self.accounts.account(target.resource)
        if context.started is not None:
            region = str(context.started.get("failed_region", ""))
            moved = not same_region(account.write_region, region)
            return _after_start(account, region, "offline", moved=moved)
        asked = target.param("region")
        if asked and not same_region(account.write_region, asked):
            return Precheck(
                Verdict.SKIP,
                f"Cosmos DB already failed over to {account.write_region} (writes left {asked}): not needed",
                {"write_region": account.write_region},
            )
        failed = account.region(asked or account.write_region)
        failed_name = failed.name if failed else (asked or account.write_region)
        successor = _successor(account, failed_name)
        if successor is None:
            said = ", ".join(f"{r.name} ({r.provisioning_state})" for r in account.regions) or "none"
            return Precheck(
                Verdict.REFUSE, f"no healthy region to take the writes from {failed_name}: {said}"
            )
        detail = (
            f"offline {failed_name} (forced): {successor.name} (failover priority "
            f"{successor.failover_priority}) takes the writes; {account.lag()}"
        )
        return Precheck(
            Verdict.PROCEED, detail, {"failed_region": failed_name, "next_region": successor.name}
        )

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        failed = str(found["failed_region"])
        account = self.accounts.account(target.resource)
        if not same_region(account.write_region, failed):
            # A try before this one may have gone through although its answer was lost: never twice.
            return Step(Progress.DONE, f"writes already moved from {failed} to {account.write_region}")
        handle = self.accounts.offline_region(target.resource, failed)
        keep = {"failed_region": failed}
        return Step(
            Progress.PENDING,
            f"offline {failed}: started",
            {**keep, "operation": dict(handle)},
            self.check_seconds,
        )

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        failed = str(continuation["failed_region"])
        keep = {"failed_region": failed}
        step = watch(self.accounts, continuation, f"offline {failed}", keep, self.check_seconds)
        if step is not None:
            return step
        account = self.accounts.account(target.resource)
        if same_region(account.write_region, failed):
            return Step(
                Progress.PENDING,
                f"offline {failed} done; write_locations[0] is still {failed}",
                keep,
                self.check_seconds,
            )
        return Step(Progress.DONE, f"writes moved from {failed} to {account.write_region}")


class CosmosFailback:
    """Give the writes back to a region (planned failover priority change; needs both regions healthy)."""

    name = "cosmosdb.failback"
    default_mode = "approve"
    timeout_minutes = 60
    params: Mapping[str, Param] = {
        "region": Param(required=True, help="the region to take the writes again (template)"),
    }

    def __init__(self, accounts: CosmosAccounts, check_seconds: float = 15.0) -> None:
        self.accounts = accounts
        self.check_seconds = check_seconds

    def describe(self, target: Target) -> str:
        name = ArmId.parse(target.resource).name
        return f"Fail Cosmos DB account {name} back to {target.param('region')} (planned)"

    def command(self, target: Target) -> str:
        arm_id = ArmId.parse(target.resource)
        region = region_key(str(target.param("region") or "<region>"))
        return (
            f"az cosmosdb failover-priority-change --name {arm_id.name} "
            f"--resource-group {arm_id.resource_group} --failover-policies {region}=0 "
            "<each other region>=<1, 2, …>"
        )

    def precondition(self, target: Target, context: Context) -> Precheck:
        account = self.accounts.account(target.resource)
        if context.started is not None:
            region = str(context.started.get("region", ""))
            moved = same_region(account.write_region, region)
            return _after_start(account, region, "failback", moved=moved)
        wanted = account.region(str(target.param("region")))
        if wanted is None:
            names = ", ".join(r.name for r in account.regions)
            return Precheck(
                Verdict.REFUSE, f"{target.param('region')} is not a region of the account ({names})"
            )
        if same_region(account.write_region, wanted.name):
            return Precheck(Verdict.SKIP, f"Cosmos DB already writes to {wanted.name}")
        current = account.region(account.write_region)
        unhealthy = [r for r in (wanted, current) if r is None or r.provisioning_state != HEALTHY]
        if unhealthy:
            said = ", ".join(f"{r.name} is {r.provisioning_state}" for r in unhealthy if r is not None)
            return Precheck(
                Verdict.REFUSE, f"a planned failback needs both regions healthy: {said or 'unknown'}"
            )
        priorities = _priorities_with_first(account, wanted.name)
        detail = f"writes move from {account.write_region} to {wanted.name}; priorities " + ", ".join(
            f"{name}={p}" for name, p in priorities
        )
        return Precheck(
            Verdict.PROCEED, detail, {"region": wanted.name, "priorities": [list(p) for p in priorities]}
        )

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        region = str(found["region"])
        account = self.accounts.account(target.resource)
        if same_region(account.write_region, region):
            return Step(Progress.DONE, f"Cosmos DB already writes to {region}")
        priorities = [(str(name), int(p)) for name, p in found["priorities"]]
        handle = self.accounts.change_priorities(target.resource, priorities)
        return Step(
            Progress.PENDING,
            f"failback to {region}: started",
            {"region": region, "operation": dict(handle)},
            self.check_seconds,
        )

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        region = str(continuation["region"])
        step = watch(
            self.accounts, continuation, f"failback to {region}", {"region": region}, self.check_seconds
        )
        if step is not None:
            return step
        account = self.accounts.account(target.resource)
        if not same_region(account.write_region, region):
            return Step(
                Progress.PENDING,
                f"failback done; writes still in {account.write_region}",
                {"region": region},
                self.check_seconds,
            )
        return Step(Progress.DONE, f"writes back in {account.write_region}")


def _after_start(account: CosmosAccount, region: str, what: str, *, moved: bool) -> Precheck:
    """After a start whose outcome is unknown: STARTED when its change shows (`moved`) or the account
    is busy with an operation (`ACCOUNT_UNDER_WAY`); else (a Failed account too) REFUSE. A forced
    failover takes minutes, so writes still in place do not say the call was never taken, and a
    second call on a maybe is never made."""
    keep = {"failed_region" if what == "offline" else "region": region}
    if moved:
        return Precheck(Verdict.STARTED, f"the writes are in {account.write_region} now", keep)
    if (account.provisioning_state or "").lower() in ACCOUNT_UNDER_WAY:
        why = f"the account is {account.provisioning_state}: the {what} of {region} may be under way"
        return Precheck(Verdict.STARTED, why, keep)
    return Precheck(
        Verdict.REFUSE,
        f"the answer to the {what} of {region} was lost (or its worker stopped) and the account shows "
        f"no sign of it (writes in {account.write_region}, account {account.provisioning_state}): it "
        "may still be on its way; look at the account's activity log and `az cosmosdb show` before "
        "doing it by hand",
    )


def _successor(account: CosmosAccount, failed: str) -> CosmosRegion | None:
    """The healthy region with the lowest failover priority other than the failed one."""
    candidates = [
        r
        for r in account.regions
        if not same_region(r.name, failed)
        and r.provisioning_state == HEALTHY
        and r.failover_priority is not None
    ]
    return min(candidates, key=lambda r: r.failover_priority or 0, default=None)


def _priorities_with_first(account: CosmosAccount, first: str) -> list[tuple[str, int]]:
    """Every region exactly once, `first` at 0, the others in their present order after it."""
    ordered = [name for name, _ in sorted(account.priorities, key=lambda p: p[1])]
    rest = [name for name in ordered if not same_region(name, first)]
    return [(name, i) for i, name in enumerate([first, *rest])]
