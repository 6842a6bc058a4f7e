"""cosmosdb.failover and cosmosdb.failback with the real azure-mgmt-cosmosdb client against the ARM stub."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.actions.cosmosdb import API_VERSION, CosmosFailback, CosmosFailover
from shared.actions.kind import ActionFailed, Context, Progress, Target, Verdict
from shared.adapters.azure_clients import ArmClients
from shared.adapters.cosmosdb_arm import ArmCosmosAccounts
from shared.errors import OutcomeUnknown, Transient
from tests.stubs.arm import ArmStub, StubCredential
from tests.stubs.arm_services import cosmos_account, serve_cosmos

SUB = "00000000-0000-0000-0000-00000000000a"
ACCOUNT = (
    f"/subscriptions/{SUB}/resourceGroups/rg-shop/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-shop"
)
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CONTEXT = Context("inc-1", NOW, NOW)


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmStub]:
    with ArmStub() as started:
        started.announce(monkeypatch)
        serve_cosmos(started)
        cosmos_account(
            started,
            ACCOUNT,
            ("West Europe", "North Europe", "Sweden Central"),
            consistency={
                "defaultConsistencyLevel": "BoundedStaleness",
                "maxStalenessPrefix": 100000,
                "maxIntervalInSeconds": 300,
            },
        )
        yield started


@pytest.fixture
def accounts(arm: ArmStub) -> ArmCosmosAccounts:
    return ArmCosmosAccounts(ArmClients(arm.url, StubCredential()))


def target(**params: Any) -> Target:
    return Target(ACCOUNT, params)


def run_to_done(kind: Any, tgt: Target, step: Any) -> Any:
    while step.progress is Progress.PENDING:
        step = kind.check(tgt, CONTEXT, step.continuation)
    return step


def test_failover_offlines_the_failed_region_and_checks_the_write_region_moved(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    kind = CosmosFailover(accounts)
    tgt = target(region="westeurope")

    found = kind.precondition(tgt, CONTEXT)
    assert found.verdict is Verdict.PROCEED
    assert "North Europe (failover priority 1) takes the writes" in found.detail
    assert "at most 100000 writes or 300 s behind" in found.detail
    started = kind.execute(tgt, CONTEXT, found.found)
    assert started.progress is Progress.PENDING
    assert set(started.continuation["operation"]) == {"status_url", "location_url"}

    done = run_to_done(kind, tgt, started)

    assert (done.progress, done.detail) == (Progress.DONE, "writes moved from West Europe to North Europe")
    [post] = arm.requests_to(f"{ACCOUNT}/offlineRegion", "POST")
    assert post.json == {"region": "West Europe"}
    assert post.query == {"api-version": [API_VERSION]}
    assert arm.api_versions(ACCOUNT, "GET") == [API_VERSION] * 3  # precondition, execute's guard, check
    [operation] = arm.operations
    assert operation.status == "Succeeded"


def test_a_failover_that_already_happened_is_skipped_and_says_where_the_writes_went(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    cosmos_account(arm, ACCOUNT, ("North Europe", "West Europe"))

    found = CosmosFailover(accounts).precondition(target(region="West Europe"), CONTEXT)

    assert found.verdict is Verdict.SKIP
    assert found.detail.startswith("Cosmos DB already failed over to North Europe")
    assert found.found == {"write_region": "North Europe"}
    assert not arm.requests_to("*/offlineRegion")


def test_no_healthy_region_to_take_the_writes_is_refused(arm: ArmStub, accounts: ArmCosmosAccounts) -> None:
    cosmos_account(arm, ACCOUNT, ("West Europe", "North Europe"), states={"North Europe": "Offline"})

    found = CosmosFailover(accounts).precondition(target(), CONTEXT)

    assert found.verdict is Verdict.REFUSE
    assert "no healthy region to take the writes from West Europe" in found.detail
    assert "North Europe (Offline)" in found.detail


def test_429_then_500_then_accepted_starts_exactly_one_operation(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    kind = CosmosFailover(accounts)
    tgt = target(region="West Europe")
    found = kind.precondition(tgt, CONTEXT).found
    arm.throttle("POST", f"{ACCOUNT}/offlineRegion", retry_after="7")
    arm.fault("POST", f"{ACCOUNT}/offlineRegion", 500, "InternalServerError", "Something went wrong.")

    with pytest.raises(Transient) as throttled:
        kind.execute(tgt, CONTEXT, found)
    assert (throttled.value.held, throttled.value.retry_after) == (True, 7.0)
    assert len(arm.requests_to(f"{ACCOUNT}/offlineRegion")) == 1  # the SDK did not retry by itself
    with pytest.raises(Transient) as failed:
        kind.execute(tgt, CONTEXT, found)  # the pipeline tries the step again
    assert not failed.value.held
    assert "500 InternalServerError: Something went wrong." in str(failed.value)
    started = kind.execute(tgt, CONTEXT, found)

    assert started.progress is Progress.PENDING
    assert len(arm.requests_to(f"{ACCOUNT}/offlineRegion", "POST")) == 3
    assert len(arm.operations) == 1


def test_execute_after_a_lost_answer_does_not_offline_twice(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    kind = CosmosFailover(accounts)
    tgt = target(region="West Europe")
    found = kind.precondition(tgt, CONTEXT).found
    run_to_done(kind, tgt, kind.execute(tgt, CONTEXT, found))

    again = kind.execute(tgt, CONTEXT, found)

    assert (again.progress, again.detail) == (
        Progress.DONE,
        "writes already moved from West Europe to North Europe",
    )
    assert len(arm.requests_to(f"{ACCOUNT}/offlineRegion", "POST")) == 1


def test_a_conflict_is_transient_and_a_bad_request_fails_with_arms_code_and_message(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    kind = CosmosFailover(accounts)
    tgt = target(region="West Europe")
    found = kind.precondition(tgt, CONTEXT).found
    arm.fault("POST", f"{ACCOUNT}/offlineRegion", 409, "Conflict", "Another operation is in progress.")
    arm.fault("POST", f"{ACCOUNT}/offlineRegion", 400, "BadRequest", "Offline region is not allowed.")

    with pytest.raises(Transient):
        kind.execute(tgt, CONTEXT, found)
    with pytest.raises(ActionFailed) as refused:
        kind.execute(tgt, CONTEXT, found)

    assert "400 BadRequest: Offline region is not allowed." in str(refused.value)


def test_an_operation_that_fails_is_a_failed_step_with_arms_error(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    def failing(request: Any, match: Any) -> Any:
        return arm.accepted(
            arm.start_operation(
                request, error=("RegionOfflineFailed", "The region could not be taken offline.")
            )
        )

    arm.on("POST", r".*/databaseAccounts/[^/]+/offlineRegion", failing)
    kind = CosmosFailover(accounts)
    tgt = target(region="West Europe")
    step = kind.execute(tgt, CONTEXT, kind.precondition(tgt, CONTEXT).found)

    done = run_to_done(kind, tgt, step)

    assert done.progress is Progress.FAILED
    assert "RegionOfflineFailed: The region could not be taken offline." in done.detail


def test_failback_sends_every_region_once_with_one_at_priority_zero(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    cosmos_account(arm, ACCOUNT, ("North Europe", "West Europe", "Sweden Central"))
    kind = CosmosFailback(accounts)
    tgt = target(region="westeurope")

    found = kind.precondition(tgt, CONTEXT)
    assert found.verdict is Verdict.PROCEED
    done = run_to_done(kind, tgt, kind.execute(tgt, CONTEXT, found.found))

    assert (done.progress, done.detail) == (Progress.DONE, "writes back in West Europe")
    [post] = arm.requests_to(f"{ACCOUNT}/failoverPriorityChange", "POST")
    assert post.json == {
        "failoverPolicies": [
            {"locationName": "West Europe", "failoverPriority": 0},
            {"locationName": "North Europe", "failoverPriority": 1},
            {"locationName": "Sweden Central", "failoverPriority": 2},
        ]
    }


def test_failback_refuses_an_unhealthy_region_and_skips_when_already_there(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    kind = CosmosFailback(accounts)
    assert kind.precondition(target(region="West Europe"), CONTEXT).verdict is Verdict.SKIP
    cosmos_account(arm, ACCOUNT, ("North Europe", "West Europe"), states={"West Europe": "Offline"})

    refused = kind.precondition(target(region="West Europe"), CONTEXT)

    assert refused.verdict is Verdict.REFUSE
    assert "West Europe is Offline" in refused.detail


def test_failback_refuses_a_first_answer_of_200_as_the_sdk_does(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    from tests.stubs.base import Reply

    cosmos_account(arm, ACCOUNT, ("North Europe", "West Europe"))
    arm.on("POST", r".*/failoverPriorityChange", lambda request, match: Reply(200, {}))
    kind = CosmosFailback(accounts)
    tgt = target(region="West Europe")

    with pytest.raises(ActionFailed, match="ARM answered 200"):
        kind.execute(tgt, CONTEXT, kind.precondition(tgt, CONTEXT).found)


def test_the_commands_a_person_would_run() -> None:
    assert CosmosFailover(None).command(target(region="West Europe")) == (  # type: ignore[arg-type]
        f"az rest --method post --url 'https://management.azure.com{ACCOUNT}/offlineRegion"
        f'?api-version={API_VERSION}\' --body \'{{"region": "West Europe"}}\''
    )
    assert CosmosFailback(None).command(target(region="West Europe")) == (  # type: ignore[arg-type]
        "az cosmosdb failover-priority-change --name cosmos-shop --resource-group rg-shop "
        "--failover-policies westeurope=0 <each other region>=<1, 2, …>"
    )


def test_the_api_version_is_the_sdks() -> None:
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    assert CosmosDBManagementClient(StubCredential(), SUB)._config.api_version == API_VERSION


# --- after a start whose answer was lost: the precondition looks for that start -------------------


def after(found: Any) -> Context:
    """The context of a takeover's precondition: it asks about the start that was given `found`."""
    return Context("inc-1", NOW, NOW, "act-1", found)


def start_and_lose_its_answer(
    arm: ArmStub, kind: Any, tgt: Target, action: str, lost: int | None, *, reached: bool = True
) -> Any:
    """The precondition's `found`, once execute's POST to `action` was taken and its answer lost
    (not `reached`: a gateway answered `lost` itself, the POST never made)."""
    found = kind.precondition(tgt, CONTEXT).found
    if reached:
        arm.lose_answer_next(f"{ACCOUNT}/{action}", lost, method="POST")
    else:
        arm.fault("POST", f"{ACCOUNT}/{action}", lost or 502, "BadGateway")
    with pytest.raises(OutcomeUnknown):
        kind.execute(tgt, CONTEXT, found)
    return found


def lost_failback(arm: ArmStub, accounts: ArmCosmosAccounts, lost: int | None) -> tuple[Any, Target, Any]:
    """A failback to West Europe (writes in North Europe) whose answer was lost: kind, target, found."""
    cosmos_account(arm, ACCOUNT, ("North Europe", "West Europe"))
    kind = CosmosFailback(accounts)
    tgt = target(region="West Europe")
    return kind, tgt, start_and_lose_its_answer(arm, kind, tgt, "failoverPriorityChange", lost)


def test_an_offline_whose_answer_was_lost_is_watched_while_the_account_is_busy_then_done(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    kind = CosmosFailover(accounts)
    tgt = target()
    found = start_and_lose_its_answer(arm, kind, tgt, "offlineRegion", 504)
    arm.update(ACCOUNT, lambda a: a["properties"].update(provisioningState="Updating"))

    busy = kind.precondition(tgt, after(found))
    arm.update(ACCOUNT, lambda a: a["properties"].update(provisioningState="Succeeded"))
    [operation] = arm.operations
    while operation.status == "InProgress":
        operation.read()  # the forced failover ARM took goes through
    moved = kind.precondition(tgt, after(found))

    assert (busy.verdict, busy.detail) == (
        Verdict.STARTED,
        "the account is Updating: the offline of West Europe may be under way",
    )
    assert (moved.verdict, moved.detail) == (Verdict.STARTED, "the writes are in North Europe now")
    assert moved.found == {"failed_region": "West Europe"}
    done = run_to_done(kind, tgt, kind.check(tgt, CONTEXT, moved.found))
    assert (done.progress, done.detail) == (Progress.DONE, "writes moved from West Europe to North Europe")
    assert len(arm.requests_to(f"{ACCOUNT}/offlineRegion", "POST")) == 1


def test_an_offline_whose_answer_was_lost_and_shows_no_sign_is_refused_not_sent_again(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    kind = CosmosFailover(accounts)
    tgt = target()
    found = start_and_lose_its_answer(arm, kind, tgt, "offlineRegion", None)

    again = kind.precondition(tgt, after(found))

    assert again.verdict is Verdict.REFUSE
    assert again.detail.startswith(
        "the answer to the offline of West Europe was lost (or its worker stopped) and the account shows "
        "no sign of it (writes in West Europe, account Succeeded): it may still be on its way"
    )


def test_a_failback_whose_answer_was_lost_is_found_by_the_write_region(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    kind, tgt, found = lost_failback(arm, accounts, 502)
    [operation] = arm.operations
    while operation.status == "InProgress":
        operation.read()

    again = kind.precondition(tgt, after(found))

    assert (again.verdict, again.found) == (Verdict.STARTED, {"region": "West Europe"})
    assert run_to_done(kind, tgt, kind.check(tgt, CONTEXT, again.found)).progress is Progress.DONE
    assert len(arm.requests_to(f"{ACCOUNT}/failoverPriorityChange", "POST")) == 1


@pytest.mark.parametrize("state", ["Failed", "DeletionFailed", "Deleting", "Creating"])
def test_an_account_in_a_state_no_failover_puts_it_in_after_a_lost_offline_is_refused_at_once(
    arm: ArmStub, accounts: ArmCosmosAccounts, state: str
) -> None:
    kind = CosmosFailover(accounts)
    tgt = target()
    found = start_and_lose_its_answer(arm, kind, tgt, "offlineRegion", 502, reached=False)
    arm.update(ACCOUNT, lambda a: a["properties"].update(provisioningState=state))

    again = kind.precondition(tgt, after(found))

    assert again.verdict is Verdict.REFUSE
    assert f"(writes in West Europe, account {state})" in again.detail
    assert arm.operations == []


def test_a_failed_account_after_a_lost_failback_is_refused_and_an_updating_one_watched(
    arm: ArmStub, accounts: ArmCosmosAccounts
) -> None:
    kind, tgt, found = lost_failback(arm, accounts, None)
    arm.update(ACCOUNT, lambda a: a["properties"].update(provisioningState="Failed"))
    failed = kind.precondition(tgt, after(found))
    arm.update(ACCOUNT, lambda a: a["properties"].update(provisioningState="updating"))
    updating = kind.precondition(tgt, after(found))

    assert failed.verdict is Verdict.REFUSE
    assert "the answer to the failback of West Europe was lost" in failed.detail
    assert (updating.verdict, updating.detail) == (
        Verdict.STARTED,
        "the account is updating: the failback of West Europe may be under way",
    )
