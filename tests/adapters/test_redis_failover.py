"""redis.failover on Azure Cache and Azure Managed Redis: the real azure-mgmt clients against the ARM stub."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.actions.kind import ActionFailed, Context, Progress, Target, Verdict
from shared.actions.redis import MANAGED_API_VERSION, RedisFailover
from shared.adapters.azure_actions import azure_kinds
from shared.errors import OutcomeUnknown, Transient
from tests.stubs.arm import ArmStub, StubCredential
from tests.stubs.arm_services import (
    azure_cache,
    link_caches,
    managed_group,
    serve_azure_cache,
    serve_managed_redis,
)

SUB = "00000000-0000-0000-0000-00000000000a"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-shop/providers/Microsoft.Cache"
CACHE = f"{GROUP}/redis/cache-we"
REPLICA = f"{GROUP}/redis/cache-ne"
AMR_WE = f"{GROUP}/redisEnterprise/amr-we/databases/default"
AMR_NE = f"{GROUP}/redisEnterprise/amr-ne/databases/default"
REDIS_API = "2024-11-01"  # azure-mgmt-redis 14.5.0's
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CONTEXT = Context("inc-1", NOW, NOW)


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmStub]:
    with ArmStub() as started:
        started.announce(monkeypatch)
        serve_azure_cache(started)
        serve_managed_redis(started)
        yield started


@pytest.fixture
def kind(arm: ArmStub) -> RedisFailover:
    [redis] = [k for k in azure_kinds(arm.url, StubCredential()) if k.name == "redis.failover"]
    assert isinstance(redis, RedisFailover)
    return redis


def run_to_done(kind: Any, target: Target, step: Any) -> Any:
    for _ in range(20):
        if step.progress is not Progress.PENDING:
            return step
        step = kind.check(target, CONTEXT, step.continuation)
    raise AssertionError(f"still pending: {step.detail}")


# --- in-region: reboot the primary ----------------------------------------------------------------


def test_in_region_reboots_the_primary_and_waits_for_the_roles_to_swap(
    arm: ArmStub, kind: RedisFailover
) -> None:
    azure_cache(arm, CACHE)
    target = Target(CACHE)

    found = kind.precondition(target, CONTEXT)
    assert found.verdict is Verdict.PROCEED
    assert found.found == {"primaries": {"0": 0}, "clustered": False}
    started = kind.execute(target, CONTEXT, found.found)
    first = kind.check(target, CONTEXT, started.continuation)
    assert first.progress is Progress.PENDING  # ARM still shows instance 0 primary
    done = run_to_done(kind, target, first)

    assert done.progress is Progress.DONE
    assert "shard 0: instance 0 → 1" in done.detail
    [post] = arm.requests_to(f"{CACHE}/forceReboot", "POST")
    assert post.json == {"rebootType": "PrimaryNode"}
    assert post.query == {"api-version": [REDIS_API]}


def test_a_clustered_cache_is_rebooted_shard_by_shard(arm: ArmStub, kind: RedisFailover) -> None:
    azure_cache(arm, CACHE, shard_count=2)
    target = Target(CACHE)

    found = kind.precondition(target, CONTEXT)
    done = run_to_done(kind, target, kind.execute(target, CONTEXT, found.found))

    assert done.progress is Progress.DONE
    bodies = [r.json for r in arm.requests_to(f"{CACHE}/forceReboot", "POST")]
    assert bodies == [
        {"rebootType": "PrimaryNode", "shardId": 0},
        {"rebootType": "PrimaryNode", "shardId": 1},
    ]


def test_429_then_500_then_success_reboots_once(arm: ArmStub, kind: RedisFailover) -> None:
    azure_cache(arm, CACHE)
    target = Target(CACHE)
    found = kind.precondition(target, CONTEXT).found
    arm.throttle("POST", f"{CACHE}/forceReboot", retry_after="3")
    arm.fault("POST", f"{CACHE}/forceReboot", 500, "InternalServerError", "Try again.")

    with pytest.raises(Transient) as throttled:
        kind.execute(target, CONTEXT, found)
    assert throttled.value.held
    with pytest.raises(Transient):
        kind.execute(target, CONTEXT, found)
    kind.execute(target, CONTEXT, found)

    assert len(arm.requests_to(f"{CACHE}/forceReboot", "POST")) == 3  # one each: no SDK retries
    done = run_to_done(kind, target, kind.check(target, CONTEXT, {"primaries": {"0": 0}}))
    assert done.progress is Progress.DONE


def test_a_retried_execute_does_not_reboot_a_shard_whose_primary_already_moved(
    arm: ArmStub, kind: RedisFailover
) -> None:
    azure_cache(arm, CACHE)
    target = Target(CACHE)
    found = kind.precondition(target, CONTEXT).found
    run_to_done(kind, target, kind.execute(target, CONTEXT, found))

    again = kind.execute(target, CONTEXT, found)

    assert again.detail == "primaries already moved"
    assert len(arm.requests_to(f"{CACHE}/forceReboot", "POST")) == 1


def test_basic_and_busy_caches_are_refused(arm: ArmStub, kind: RedisFailover) -> None:
    azure_cache(arm, CACHE, sku="Basic")
    assert kind.precondition(Target(CACHE), CONTEXT).verdict is Verdict.REFUSE
    azure_cache(arm, CACHE, state="Scaling")

    busy = kind.precondition(Target(CACHE), CONTEXT)

    assert (busy.verdict, busy.detail) == (
        Verdict.REFUSE,
        "the cache is Scaling: a reboot now would race the platform",
    )


def test_a_conflict_is_transient_and_a_refusal_names_arms_error(arm: ArmStub, kind: RedisFailover) -> None:
    azure_cache(arm, CACHE)
    target = Target(CACHE)
    found = kind.precondition(target, CONTEXT).found
    arm.fault(
        "POST", f"{CACHE}/forceReboot", 409, "Conflict", "The cache is busy processing a previous update."
    )
    arm.fault("POST", f"{CACHE}/forceReboot", 403, "AuthorizationFailed", "The client has no permission.")

    with pytest.raises(Transient, match="409 Conflict"):
        kind.execute(target, CONTEXT, found)
    with pytest.raises(ActionFailed, match=r"403 AuthorizationFailed: The client has no permission\."):
        kind.execute(target, CONTEXT, found)


# --- geo: unlink the linked server ----------------------------------------------------------------


def test_geo_unlinks_and_is_done_when_the_link_is_gone(arm: ArmStub, kind: RedisFailover) -> None:
    azure_cache(arm, CACHE)
    azure_cache(arm, REPLICA, location="northeurope")
    link_caches(arm, CACHE, REPLICA)
    arm.polls = 2
    target = Target(CACHE, {"geo": True})

    found = kind.precondition(target, CONTEXT)
    assert found.verdict is Verdict.PROCEED
    assert found.found == {
        "link": "cache-ne",
        "writable": "cache-ne",
        "host_name": "cache-ne.redis.cache.windows.net",
    }
    started = kind.execute(target, CONTEXT, found.found)
    assert "status_url" in started.continuation["operation"]
    done = run_to_done(kind, target, started)

    assert done.progress is Progress.DONE
    assert "cache-ne (cache-ne.redis.cache.windows.net) is writable" in done.detail
    [delete] = arm.requests_to(f"{CACHE}/linkedServers/cache-ne", "DELETE")
    assert delete.query == {"api-version": [REDIS_API]}
    assert arm.get(f"{CACHE}/linkedServers/cache-ne") is None
    assert arm.get(f"{REPLICA}/linkedServers/cache-we") is None


def test_geo_from_the_secondary_side_makes_the_target_writable(arm: ArmStub, kind: RedisFailover) -> None:
    azure_cache(arm, CACHE)
    azure_cache(arm, REPLICA, location="northeurope")
    link_caches(arm, CACHE, REPLICA)

    found = kind.precondition(Target(REPLICA, {"geo": True}), CONTEXT)

    assert found.found["writable"] == "cache-ne"


def test_geo_refuses_an_unhealthy_secondary_and_skips_without_a_link(
    arm: ArmStub, kind: RedisFailover
) -> None:
    azure_cache(arm, CACHE)
    target = Target(CACHE, {"geo": True})
    assert kind.precondition(target, CONTEXT).verdict is Verdict.SKIP
    azure_cache(arm, REPLICA, state="Failed")
    link_caches(arm, CACHE, REPLICA)

    refused = kind.precondition(target, CONTEXT)

    assert (refused.verdict, refused.detail) == (
        Verdict.REFUSE,
        "the secondary cache-ne is Failed, not Succeeded",
    )


# --- Azure Managed Redis: force-unlink ------------------------------------------------------------


def test_managed_redis_force_unlinks_the_failed_database_on_a_healthy_member(
    arm: ArmStub, kind: RedisFailover
) -> None:
    managed_group(arm, [AMR_WE, AMR_NE])
    target = Target(AMR_WE)

    found = kind.precondition(target, CONTEXT)
    assert found.verdict is Verdict.PROCEED
    assert found.found == {"database": AMR_WE, "peer": AMR_NE}
    done = run_to_done(kind, target, kind.execute(target, CONTEXT, found.found))

    assert done.progress is Progress.DONE
    [post] = arm.requests_to(f"{AMR_NE}/forceUnlink", "POST")
    assert post.json == {"ids": [AMR_WE]}
    assert post.query == {"api-version": [MANAGED_API_VERSION]}


def test_managed_redis_with_the_failed_database_gone_from_the_group_is_skipped(
    arm: ArmStub, kind: RedisFailover
) -> None:
    managed_group(arm, [AMR_NE])

    found = kind.precondition(Target(AMR_WE, {"unlink_from": AMR_NE}), CONTEXT)

    assert found.verdict is Verdict.SKIP


def test_managed_redis_fails_with_arms_error_when_the_operation_fails(
    arm: ArmStub, kind: RedisFailover
) -> None:
    managed_group(arm, [AMR_WE, AMR_NE])

    def failing(request: Any, match: Any) -> Any:
        return arm.accepted(
            arm.start_operation(request, error=("UnlinkFailed", "The group is being updated."))
        )

    arm.on("POST", r".*/databases/[^/]+/forceUnlink", failing)
    target = Target(AMR_WE)

    done = run_to_done(kind, target, kind.execute(target, CONTEXT, kind.precondition(target, CONTEXT).found))

    assert done.progress is Progress.FAILED
    assert "UnlinkFailed: The group is being updated." in done.detail


# --- what a person would run ----------------------------------------------------------------------


def test_the_commands_a_person_would_run(kind: RedisFailover) -> None:
    assert kind.command(Target(CACHE)) == (
        "az redis force-reboot --name cache-we --resource-group rg-shop --reboot-type PrimaryNode"
    )
    assert kind.command(Target(CACHE, {"geo": True, "linked_server": "cache-ne"})) == (
        "az redis server-link delete --name cache-we --resource-group rg-shop --linked-server-name cache-ne"
    )
    assert kind.command(Target(AMR_WE, {"unlink_from": AMR_NE})) == (
        f"az rest --method post --url 'https://management.azure.com{AMR_NE}/forceUnlink"
        f'?api-version={MANAGED_API_VERSION}\' --body \'{{"ids": ["{AMR_WE}"]}}\''
    )
    sentinel = Target("redis-shop", reach={"sentinels": ["10.0.0.5:26379"], "master": "shop"})
    assert kind.command(sentinel) == "redis-cli -h 10.0.0.5 -p 26379 SENTINEL FAILOVER shop"


def test_the_managed_redis_api_version_is_the_sdks() -> None:
    from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient

    assert RedisEnterpriseManagementClient(StubCredential(), SUB)._config.api_version == MANAGED_API_VERSION


def test_a_resource_redis_failover_cannot_act_on_is_refused_by_name(kind: RedisFailover) -> None:
    with pytest.raises(ActionFailed, match=r"cannot act on a microsoft\.documentdb/databaseaccounts"):
        kind.describe(
            Target(f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.DocumentDB/databaseAccounts/x")
        )


# --- after a start whose answer was lost: the precondition looks for that start -------------------


def after(found: Any) -> Context:
    """The context of a takeover's precondition: it asks about the start that was given `found`."""
    return Context("inc-1", NOW, NOW, "act-1", found)


def start_and_lose_its_answer(
    arm: ArmStub, kind: RedisFailover, target: Target, method: str, path: str, lost: int | None
) -> Any:
    """The precondition's `found`, once execute's write was taken and its answer lost."""
    found = kind.precondition(target, CONTEXT).found
    arm.lose_answer_next(path, lost, method=method)
    with pytest.raises(OutcomeUnknown):
        kind.execute(target, CONTEXT, found)
    return found


def start_that_never_reached_arm(
    arm: ArmStub, kind: RedisFailover, target: Target, method: str, path: str
) -> Any:
    """The precondition's `found`, once execute's write met a gateway's 502 (never made, but a maybe)."""
    found = kind.precondition(target, CONTEXT).found
    arm.fault(method, path, 502, "BadGateway")
    with pytest.raises(OutcomeUnknown):
        kind.execute(target, CONTEXT, found)
    return found


def geo_linked(arm: ArmStub) -> Target:
    """cache-we geo-replicated to cache-ne; the target that unlinks them."""
    azure_cache(arm, CACHE)
    azure_cache(arm, REPLICA, location="northeurope")
    link_caches(arm, CACHE, REPLICA)
    return Target(CACHE, {"geo": True})


def link_state(arm: ArmStub, state: str) -> None:
    """Set cache-we's link to cache-ne to a provisioning state."""
    arm.update(
        f"{CACHE}/linkedServers/cache-ne", lambda link: link["properties"].update(provisioningState=state)
    )


def test_a_reboot_whose_answer_was_lost_is_found_by_its_swap_and_never_sent_again(
    arm: ArmStub, kind: RedisFailover
) -> None:
    serve_azure_cache(arm, swap_after_reads=0)  # ARM shows the roles swapped at the next read
    azure_cache(arm, CACHE)
    target = Target(CACHE)
    found = start_and_lose_its_answer(arm, kind, target, "POST", f"{CACHE}/forceReboot", 502)

    again = kind.precondition(target, after(found))

    assert (again.verdict, again.detail) == (
        Verdict.STARTED,
        "the primary moved already (shard 0: instance 0 → 1)",
    )
    assert again.found == {"primaries": {"0": 0}}
    done = run_to_done(kind, target, kind.check(target, CONTEXT, again.found))
    assert done.progress is Progress.DONE
    assert len(arm.requests_to(f"{CACHE}/forceReboot", "POST")) == 1


def test_a_cache_the_platform_is_busy_with_after_a_lost_reboot_is_watched_not_rebooted(
    arm: ArmStub, kind: RedisFailover
) -> None:
    azure_cache(arm, CACHE)
    target = Target(CACHE)
    found = start_and_lose_its_answer(arm, kind, target, "POST", f"{CACHE}/forceReboot", None)
    arm.update(CACHE, lambda cache: cache["properties"].update(provisioningState="Updating"))

    again = kind.precondition(target, after(found))

    assert again.verdict is Verdict.STARTED
    assert again.detail == "the cache is Updating: the reboot may be under way; not rebooted again"
    # Asked with no start to look for, the same cache is refused: a reboot would race the platform.
    assert kind.precondition(target, CONTEXT).verdict is Verdict.REFUSE
    assert kind.check(target, CONTEXT, again.found).progress is Progress.PENDING


def test_a_reboot_that_shows_nothing_after_its_lost_answer_proceeds_as_before(
    arm: ArmStub, kind: RedisFailover
) -> None:
    azure_cache(arm, CACHE)
    target = Target(CACHE)
    found = kind.precondition(target, CONTEXT).found
    arm.fault("POST", f"{CACHE}/forceReboot", 502, "BadGateway")  # a gateway's 502, the reboot not made

    with pytest.raises(OutcomeUnknown):
        kind.execute(target, CONTEXT, found)
    again = kind.precondition(target, after(found))

    assert again.verdict is Verdict.PROCEED  # the roles read as they were: execute reboots once more


def test_an_unlink_whose_answer_was_lost_is_found_by_its_link_gone(arm: ArmStub, kind: RedisFailover) -> None:
    target = geo_linked(arm)
    arm.polls = 0
    found = start_and_lose_its_answer(arm, kind, target, "DELETE", f"{CACHE}/linkedServers/cache-ne", 504)
    link_state(arm, "Deleting")

    deleting = kind.precondition(target, after(found))
    [operation] = arm.operations
    operation.read()  # the unlink ARM took goes through
    gone = kind.precondition(target, after(found))

    assert (deleting.verdict, deleting.detail) == (
        Verdict.STARTED,
        "link cache-ne is Deleting: the unlink may be under way; not sent again",
    )
    assert (gone.verdict, gone.detail) == (Verdict.STARTED, "link cache-ne is gone")
    assert gone.found == found
    assert kind.check(target, CONTEXT, gone.found).progress is Progress.DONE
    assert len(arm.requests_to(f"{CACHE}/linkedServers/cache-ne", "DELETE")) == 1


def test_a_force_unlink_whose_answer_was_lost_is_found_on_the_peer(arm: ArmStub, kind: RedisFailover) -> None:
    managed_group(arm, [AMR_WE, AMR_NE])
    arm.polls = 0
    target = Target(AMR_WE)
    found = start_and_lose_its_answer(arm, kind, target, "POST", f"{AMR_NE}/forceUnlink", 502)
    [operation] = arm.operations
    operation.read()

    again = kind.precondition(target, after(found))

    assert (again.verdict, again.detail) == (
        Verdict.STARTED,
        f"{AMR_NE} no longer lists {AMR_WE} in its group",
    )
    assert kind.check(target, CONTEXT, again.found).progress is Progress.DONE
    assert len(arm.requests_to(f"{AMR_NE}/forceUnlink", "POST")) == 1


# --- after a lost answer, only a state that means an operation runs is read as the start under way --


def test_a_failed_cache_after_a_lost_reboot_is_refused_with_the_reason_a_fresh_look_gives(
    arm: ArmStub, kind: RedisFailover
) -> None:
    azure_cache(arm, CACHE)
    target = Target(CACHE)
    found = start_that_never_reached_arm(arm, kind, target, "POST", f"{CACHE}/forceReboot")
    arm.update(CACHE, lambda cache: cache["properties"].update(provisioningState="Failed"))

    again = kind.precondition(target, after(found))

    assert (again.verdict, again.detail) == (
        Verdict.REFUSE,
        "the cache is Failed: a reboot now would race the platform",
    )
    assert again == kind.precondition(target, CONTEXT)


@pytest.mark.parametrize("state", ["Disabled", "Deleting", "Creating", "Provisioning", "Unprovisioning"])
def test_a_cache_in_a_state_no_reboot_puts_it_in_after_a_lost_reboot_is_refused_even_if_swapped(
    arm: ArmStub, kind: RedisFailover, state: str
) -> None:
    serve_azure_cache(arm, swap_after_reads=0)
    azure_cache(arm, CACHE)
    target = Target(CACHE)
    found = start_and_lose_its_answer(arm, kind, target, "POST", f"{CACHE}/forceReboot", 502)
    arm.update(CACHE, lambda cache: cache["properties"].update(provisioningState=state))

    again = kind.precondition(target, after(found))

    # The primary moved, but a cache in that state would not reach Succeeded for the check: paged now.
    assert (again.verdict, again.detail) == (
        Verdict.REFUSE,
        f"the cache is {state}: a reboot now would race the platform",
    )


@pytest.mark.parametrize(
    "state", ["Scaling", "RecoveringScaleFailure", "Linking", "unlinking", "ConfiguringAAD"]
)
def test_a_cache_busy_with_an_operation_after_a_lost_reboot_is_watched(
    arm: ArmStub, kind: RedisFailover, state: str
) -> None:
    azure_cache(arm, CACHE)
    target = Target(CACHE)
    found = start_and_lose_its_answer(arm, kind, target, "POST", f"{CACHE}/forceReboot", None)
    arm.update(CACHE, lambda cache: cache["properties"].update(provisioningState=state))

    again = kind.precondition(target, after(found))

    assert (again.verdict, again.detail) == (
        Verdict.STARTED,
        f"the cache is {state}: the reboot may be under way; not rebooted again",
    )


def test_a_failed_link_after_a_lost_unlink_is_not_taken_for_the_unlink_under_way(
    arm: ArmStub, kind: RedisFailover
) -> None:
    target = geo_linked(arm)
    found = start_that_never_reached_arm(arm, kind, target, "DELETE", f"{CACHE}/linkedServers/cache-ne")
    link_state(arm, "Failed")

    again = kind.precondition(target, after(found))

    # Deleting a link twice does no harm: the precondition answers as it would with no start to look for.
    assert again == kind.precondition(target, CONTEXT)
    assert again.verdict is Verdict.PROCEED


def test_an_unlinking_link_after_a_lost_unlink_is_watched(arm: ArmStub, kind: RedisFailover) -> None:
    target = geo_linked(arm)
    found = start_and_lose_its_answer(arm, kind, target, "DELETE", f"{CACHE}/linkedServers/cache-ne", 504)
    link_state(arm, "Unlinking")

    again = kind.precondition(target, after(found))

    assert (again.verdict, again.detail) == (
        Verdict.STARTED,
        "link cache-ne is Unlinking: the unlink may be under way; not sent again",
    )


@pytest.mark.parametrize("state", ["Failed", "Canceled", "Deleting"])
def test_a_managed_peer_failed_after_a_lost_force_unlink_is_refused(
    arm: ArmStub, kind: RedisFailover, state: str
) -> None:
    managed_group(arm, [AMR_WE, AMR_NE])
    target = Target(AMR_WE)
    found = start_that_never_reached_arm(arm, kind, target, "POST", f"{AMR_NE}/forceUnlink")
    arm.update(AMR_NE, lambda d: d["properties"].update(provisioningState=state))

    again = kind.precondition(target, after(found))

    assert (again.verdict, again.detail) == (
        Verdict.REFUSE,
        f"no healthy database left in group shop: {AMR_WE} (Linked), {AMR_NE} (Linked)",
    )
    assert len(arm.requests_to(f"{AMR_NE}/forceUnlink", "POST")) == 1


def test_a_managed_peer_updating_or_listing_the_database_unlinking_is_watched(
    arm: ArmStub, kind: RedisFailover
) -> None:
    managed_group(arm, [AMR_WE, AMR_NE])
    target = Target(AMR_WE)
    found = start_and_lose_its_answer(arm, kind, target, "POST", f"{AMR_NE}/forceUnlink", None)
    arm.update(AMR_NE, lambda d: d["properties"].update(provisioningState="Updating"))
    updating = kind.precondition(target, after(found))

    def unlinking(database: Any) -> None:
        database["properties"]["provisioningState"] = "Succeeded"
        for member in database["properties"]["geoReplication"]["linkedDatabases"]:
            if member["id"] == AMR_WE:
                member["state"] = "Unlinking"

    arm.update(AMR_NE, unlinking)
    member = kind.precondition(target, after(found))

    assert (updating.verdict, updating.detail) == (
        Verdict.STARTED,
        f"{AMR_NE} is Updating: the force-unlink may be under way; not sent again",
    )
    assert (member.verdict, member.detail) == (
        Verdict.STARTED,
        f"{AMR_NE} lists {AMR_WE} as Unlinking: the force-unlink is under way; not sent again",
    )
    assert len(arm.requests_to(f"{AMR_NE}/forceUnlink", "POST")) == 1
