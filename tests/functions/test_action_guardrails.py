"""Every guardrail refuses what it should, in-process through the registered functions, saying which and why.

The kill switch (DR_AUTOMATION, a global or per-tenant pause, resume), the hourly caps (all tenants,
per tenant, per region), one action at a time on a target, the circuit breaker, and targets that
resolve to nothing or to more than one resource.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.bootstrap import Services
from shared.clock import iso
from shared.domain.actions import AUTOMATION, ActionRecord, ActionState, Actor
from shared.errors import Transient
from tests.action_kinds import PretendCache
from tests.factories import FakeClock, resource
from tests.fakes import FakePager
from tests.functions.action_harness import (
    CACHE,
    OTHER_CACHE,
    actions_of,
    alert,
    automation,
    decide,
    deliver,
    now_iso,
    only_action,
    open_incident,
    run_queues,
    timeline,
    triggers,
)
from tests.functions.harness import json_body, post

Acting = Callable[..., Services]
ZARA_CACHE = resource("redis", "redis-amicis-zara-prod", "rg-amicis-zara-prod")
IKEA_DEV_CACHE = resource("redis", "redis-amicis-ikea-dev", "rg-amicis-ikea-dev")
RULE = "automation (rule test-redis-down)"


def ran(app: Services, incident_id: str) -> None:
    """The incident's action ran to a verified success."""
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record


def refused(app: Services, incident_id: str) -> str:
    """The incident's action was refused: why, as its record and timeline say it."""
    record = only_action(app, incident_id)
    assert record.state is ActionState.REFUSED, record
    line = f"test.failover on {record.target}: refused by {RULE}: {record.result}"
    assert line in timeline(app, incident_id)
    return record.result


def test_dr_automation_off_refuses_every_automatic_action(acting: Acting, world: PretendCache) -> None:
    app = acting(env={"DR_AUTOMATION": "off"})
    incident_id = open_incident()
    run_queues(app)
    assert refused(app, incident_id) == "kill switch: DR_AUTOMATION=off, so nothing runs by itself"
    assert world.calls == [] and world.starts == 0
    assert json_body(automation())["setting"] == "off (DR_AUTOMATION)"


def test_a_global_pause_through_the_api_refuses_and_says_who_and_why(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting()
    paused_at = iso(clock())
    answer = automation({"paused": True, "by": "alice", "reason": "maintenance window"})
    assert answer.status_code == 200, answer.get_body()
    assert json_body(answer) == {
        "result": "automation paused for all tenants by alice via api",
        "setting": "on",
        "paused": True,
        "pauses": [{"tenant": "*", "by": "alice via api", "at": paused_at, "reason": "maintenance window"}],
    }
    first, second = open_incident(), open_incident(OTHER_CACHE, alert_id="2")
    run_queues(app)
    for incident_id in (first, second):
        assert refused(app, incident_id) == (
            f"kill switch: automation is paused for all tenants (by alice via api at {paused_at}: "
            "maintenance window)"
        )
    assert world.starts == 0 and world.calls == []


def test_a_tenant_pause_refuses_that_tenant_and_lets_another_run(acting: Acting, world: PretendCache) -> None:
    app = acting()
    answer = automation({"paused": True, "tenant": "IKEA", "by": "alice"})
    assert json_body(answer)["result"] == "automation paused for tenant ikea by alice via api"
    assert json_body(answer)["paused"] is False, "one tenant paused is not automation paused"
    ikea = open_incident(CACHE)
    run_queues(app)
    assert refused(app, ikea).startswith(
        "kill switch: automation is paused for tenant ikea (by alice via api"
    )
    hm = open_incident(OTHER_CACHE, alert_id="2")
    run_queues(app)
    ran(app, hm)
    assert world.calls[0] == ("precondition", OTHER_CACHE) and world.starts == 1
    assert CACHE not in {resource_ for _, resource_ in world.calls}


def test_resume_lets_automation_run_again(acting: Acting, world: PretendCache) -> None:
    app = acting()
    automation({"paused": True, "by": "alice"})
    automation({"paused": True, "tenant": "ikea", "by": "alice"})
    answer = automation({"paused": False, "by": "bob"})
    assert json_body(answer)["result"] == "automation resumed for all tenants by bob via api"
    assert json_body(answer)["pauses"][0]["tenant"] == "ikea", "resuming all leaves the tenant's pause"
    answer = automation({"paused": False, "tenant": "ikea", "by": "bob"})
    assert json_body(answer)["result"] == "automation resumed for tenant ikea by bob via api"
    again = automation({"paused": False, "tenant": "ikea", "by": "bob"})
    assert json_body(again)["result"] == "automation was not paused for tenant ikea"
    assert json_body(automation()) == {"setting": "on", "paused": False, "pauses": []}
    incident_id = open_incident()
    run_queues(app)
    ran(app, incident_id)
    assert world.starts == 1


def test_the_hourly_cap_for_all_tenants(acting: Acting, world: PretendCache, clock: FakeClock) -> None:
    app = acting(limits={"max_per_hour": 1})
    first = open_incident(CACHE)
    run_queues(app)
    ran(app, first)
    second = open_incident(OTHER_CACHE, alert_id="2")
    run_queues(app)
    assert refused(app, second) == "rate cap: 1 automatic actions in the last hour (max_per_hour = 1)"
    assert world.starts == 1
    clock.advance(minutes=61)  # the first started more than an hour ago: the cap has room again
    world.primary = "node-0"
    third = open_incident(ZARA_CACHE, alert_id="3")
    run_queues(app)
    ran(app, third)
    assert world.starts == 2


def test_the_hourly_cap_counts_a_start_made_elsewhere_during_the_precondition(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting(limits={"max_per_hour": 1})
    elsewhere = ActionRecord(
        id="act-elsewhere",
        incident_id="inc-elsewhere",
        action="test.failover",
        target=OTHER_CACHE,
        mode="auto",
        state=ActionState.PLANNED,
        planned_by=Actor(AUTOMATION, "test-redis-down"),
        planned_at=iso(clock()),
        updated_at=iso(clock()),
    )

    def another_instance_starts_one() -> None:
        world.during_precondition = None
        app.action_store.create_action(elsewhere, [])
        running, line = elsewhere.moved(ActionState.RUNNING, elsewhere.planned_by, iso(clock()))
        app.action_store.save_action(running, 1, [line])

    # The cap had room when this action was planned; by its start, another instance took it.
    world.during_precondition = another_instance_starts_one
    incident_id = open_incident(CACHE)
    run_queues(app)
    assert refused(app, incident_id) == "rate cap: 1 automatic actions in the last hour (max_per_hour = 1)"
    assert world.calls == [("precondition", CACHE)] and world.starts == 0


def test_a_pause_set_during_the_precondition_stops_the_start(acting: Acting, world: PretendCache) -> None:
    app = acting()

    def someone_pauses() -> None:
        world.during_precondition = None
        assert automation({"paused": True, "by": "alice", "reason": "stop"}).status_code == 200

    world.during_precondition = someone_pauses
    incident_id = open_incident(CACHE)
    run_queues(app)
    assert refused(app, incident_id).startswith("kill switch: automation is paused for all tenants (by alice")
    assert world.calls == [("precondition", CACHE)] and world.starts == 0


def test_an_action_on_one_part_of_a_target_holds_only_that_part(acting: Acting, world: PretendCache) -> None:
    # As two Deployments of one AKS cluster: rolling back one must not wait out the other's cooldown.
    app = acting('{ action = "test.failover", mode = "auto", settle_minutes = 5, part = "{part}" }')

    def on_part(part: str, n: int) -> str:
        dimensions = [{"name": "part", "value": part}]
        return open_incident(CACHE, alert_id=str(n), dimensions=dimensions, rule=f"redis-down-{n}")

    first = on_part("shop/cart", 1)
    run_queues(app)
    ran(app, first)
    world.primary = "node-0"
    other_part = on_part("shop/checkout", 2)
    run_queues(app)
    ran(app, other_part)
    world.primary = "node-0"
    same_part = on_part("shop/cart", 3)
    run_queues(app)
    assert refused(app, same_part).startswith(f"cooldown: test.failover ran on {CACHE} (part shop/cart) at ")
    assert world.starts == 2


def test_a_second_part_firing_under_the_same_alert_rule_gets_its_own_action(
    acting: Acting, world: PretendCache
) -> None:
    # One multi-dimensional alert rule on one cluster, two Deployments failing: one incident (the
    # rule and the resource are its key), and each Deployment rolled back.
    app = acting('{ action = "test.failover", mode = "auto", settle_minutes = 5, part = "{part}" }')

    def firing(part: str, n: int) -> str:
        return open_incident(CACHE, alert_id=str(n), dimensions=[{"name": "part", "value": part}])

    incident_id = firing("shop/cart", 1)
    run_queues(app)
    world.primary = "node-0"
    assert firing("shop/checkout", 2) == incident_id
    run_queues(app)
    assert firing("shop/cart", 3) == incident_id  # that part has its action already
    run_queues(app)
    records = actions_of(app, incident_id)
    assert sorted((r.params["part"], r.state) for r in records) == [
        ("shop/cart", ActionState.SUCCEEDED),
        ("shop/checkout", ActionState.SUCCEEDED),
    ]
    assert world.starts == 2
    found = app.store.get(incident_id)
    assert found is not None and found.incident.planned_actions == (
        "test.failover (auto) part=shop/cart",
        "test.failover (auto) part=shop/checkout",
    )


def test_settling_one_part_is_undone_by_its_own_alert_not_another_parts(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting('{ action = "test.failover", mode = "auto", settle_minutes = 5, part = "{part}" }')

    def firing(part: str, n: int) -> str:
        at = clock().isoformat().replace("+00:00", "Z")
        dimensions = [{"name": "part", "value": part}]
        return open_incident(CACHE, alert_id=str(n), dimensions=dimensions, fired=at)

    def settling(part: str) -> Callable[[], bool]:
        def is_settling() -> bool:
            records = [r for r in actions_of(app, incident_id) if r.params["part"] == part]
            return bool(records) and records[0].continuation.get("phase") == "settling"

        return is_settling

    incident_id = firing("shop/cart", 1)
    run_queues(app, until=settling("shop/cart"))
    world.primary = "node-0"
    clock.advance(seconds=30)
    assert firing("shop/checkout", 2) == incident_id  # another part fires while cart settles
    run_queues(app, until=settling("shop/checkout"))
    clock.advance(seconds=30)
    firing("shop/checkout", 3)  # and fires again while its own action settles
    run_queues(app)
    results = {r.params["part"]: (r.state, r.result) for r in actions_of(app, incident_id)}
    assert results["shop/cart"] == (
        ActionState.SUCCEEDED,
        "recovered: no new signal for 5 min after the action",
    )
    assert results["shop/checkout"][0] is ActionState.FAILED
    assert results["shop/checkout"][1].startswith("not recovered: the alert fired again at ")


def test_the_hourly_cap_per_tenant(acting: Acting, world: PretendCache) -> None:
    app = acting(limits={"max_per_hour_per_tenant": 1})
    first = open_incident(CACHE)
    run_queues(app)
    ran(app, first)
    same_tenant = open_incident(IKEA_DEV_CACHE, alert_id="2")
    run_queues(app)
    assert refused(app, same_tenant) == (
        "rate cap: 1 automatic actions on tenant ikea in the last hour (max_per_hour_per_tenant = 1)"
    )
    world.primary = "node-0"
    other_tenant = open_incident(OTHER_CACHE, alert_id="3")
    run_queues(app)
    ran(app, other_tenant)
    assert world.starts == 2


def test_the_hourly_cap_per_region(acting: Acting, world: PretendCache) -> None:
    regions = "".join(
        f'\n[targets."{name}"]\nregion = "{region}"\n'
        for name, region in (
            ("redis-amicis-ikea-prod", "westeurope"),
            ("redis-amicis-hm-prod", "West Europe"),  # its display name: the same region
            ("redis-amicis-zara-prod", "northeurope"),
        )
    )
    app = acting(extra=regions, limits={"max_per_hour_per_region": 1})
    first = open_incident(CACHE)
    run_queues(app)
    ran(app, first)
    assert only_action(app, first).region == "westeurope"
    same_region = open_incident(OTHER_CACHE, alert_id="2")
    run_queues(app)
    assert refused(app, same_region) == (
        "rate cap: 1 automatic actions in region West Europe in the last hour (max_per_hour_per_region = 1)"
    )
    world.primary = "node-0"
    other_region = open_incident(ZARA_CACHE, alert_id="3")
    run_queues(app)
    ran(app, other_region)
    assert world.starts == 2


TWO_ON_ONE_TARGET = (
    '{ action = "test.failover", mode = "approve", zone = "a" }, '
    '{ action = "test.failover", mode = "auto", zone = "b" }'
)


def test_an_action_awaiting_approval_holds_its_target(acting: Acting, world: PretendCache) -> None:
    app = acting(TWO_ON_ONE_TARGET)
    incident_id = open_incident()
    run_queues(app, seconds=5)
    waiting, second = sorted(actions_of(app, incident_id), key=lambda r: r.mode != "approve")
    assert waiting.state is ActionState.AWAITING_APPROVAL
    assert second.state is ActionState.REFUSED
    assert second.result == f"one at a time: test.failover ({waiting.id}) is awaiting approval on {CACHE}"
    assert world.starts == 0


def test_an_approved_action_holds_its_target_until_it_has_run(acting: Acting, world: PretendCache) -> None:
    app = acting(TWO_ON_ONE_TARGET)
    incident_id = open_incident()
    received = app.local_queue.receive("actions")  # the approve-mode action's message only
    assert received is not None
    from shared.localhost.runtime import service_bus_message
    from tests.functions.harness import function

    function("run_action")(service_bus_message(received))
    app.local_queue.complete(received)
    [waiting] = actions_of(app, incident_id)
    assert waiting.state is ActionState.AWAITING_APPROVAL
    assert decide(waiting.id, "approve", {"by": "alice"}).status_code == 200
    deliver(app, "actions")  # the automatic action's message comes before the approved one's run
    records = {r.mode: r for r in actions_of(app, incident_id)}
    assert records["auto"].state is ActionState.REFUSED
    assert records["auto"].result == f"one at a time: test.failover ({waiting.id}) is approved on {CACHE}"
    run_queues(app)
    assert {r.mode: r.state for r in actions_of(app, incident_id)} == {
        "approve": ActionState.SUCCEEDED,
        "auto": ActionState.REFUSED,
    }
    assert world.starts == 1


def test_the_circuit_breaker_trips_after_n_unrecovered_tries_and_pages_the_owner(
    acting: Acting, world: PretendCache, clock: FakeClock, pager: FakePager
) -> None:
    # Success reported each time, but the alert fires again after each action: a failover loop.
    app = acting(
        '{ action = "test.failover", mode = "auto", settle_minutes = 5, cooldown_minutes = 0, '
        'page = "on-failure" }',
        limits={"breaker_attempts": 2, "breaker_window_minutes": 60},
    )
    incidents = []
    for attempt in (1, 2):
        world.primary = "node-0"  # it went back: the cache is down again
        incident_id = open_incident(alert_id=str(attempt))
        incidents.append(incident_id)

        def settling(incident_id: str = incident_id) -> bool:
            records = actions_of(app, incident_id)
            return bool(records) and records[0].continuation.get("phase") == "settling"

        run_queues(app, until=settling)
        clock.advance(seconds=5)
        assert post("alerts", alert(fired=now_iso(clock), alert_id=str(attempt))).status_code == 202
        run_queues(app)
        record = only_action(app, incident_id)
        assert record.state is ActionState.FAILED, record
        assert record.result.startswith("not recovered: the alert fired again at ")
        assert post("alerts", alert(condition="Resolved", alert_id=str(attempt))).status_code == 202
        clock.advance(minutes=1)
    assert world.starts == 2
    world.primary = "node-0"
    third = open_incident(alert_id="3")
    run_queues(app)
    why = refused(app, third)
    first_ids = [only_action(app, i).id for i in incidents]
    assert why == (
        f"circuit breaker: test.failover ran 2 times on {CACHE} within 60 min ({', '.join(first_ids)}); "
        "automation stops for this target and its owner is paged"
    )
    assert world.starts == 2 and world.calls.count(("precondition", CACHE)) == 2, "no third try"
    assert f"Escalated: test.failover on {CACHE} refused: {why}" in timeline(app, third)
    assert third in triggers(pager), "the page held for on-failure goes out when the breaker trips"


def test_a_target_template_that_resolves_to_nothing_is_refused_naming_it(
    acting: Acting, world: PretendCache
) -> None:
    app = acting('{ action = "test.failover", mode = "auto", resource = "{resource_id}/shards/{Shard}" }')
    incident_id = open_incident()
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.target == ""
    assert refused(app, incident_id) == (
        "no target: resource = '{resource_id}/shards/{Shard}': the signal has no {Shard}, "
        "so there is no target"
    )
    assert world.calls == []


def test_a_target_template_that_resolves_to_two_values_is_refused_naming_it(
    acting: Acting, world: PretendCache
) -> None:
    app = acting('{ action = "test.failover", mode = "auto", resource = "{resource_id}/shards/{ApiName}" }')
    dimensions = [{"name": "ApiName", "value": "GetBlob"}, {"name": "ApiName", "value": "PutBlob"}]
    incident_id = open_incident(dimensions=dimensions)
    run_queues(app)
    assert refused(app, incident_id) == (
        "no target: resource = '{resource_id}/shards/{ApiName}': {ApiName} is more than one resource "
        "(GetBlob, PutBlob)"
    )
    assert world.calls == []


def test_a_target_template_with_one_value_names_the_resource(acting: Acting, world: PretendCache) -> None:
    app = acting('{ action = "test.failover", mode = "auto", resource = "{resource_id}/shards/{ApiName}" }')
    incident_id = open_incident(dimensions=[{"name": "ApiName", "value": "GetBlob"}])
    run_queues(app)
    ran(app, incident_id)
    assert world.calls[0] == ("precondition", f"{CACHE}/shards/GetBlob")


def test_with_dr_automation_off_dry_run_and_suggest_still_record(acting: Acting, world: PretendCache) -> None:
    app = acting(
        '{ action = "test.failover", mode = "dry-run", zone = "a" }, '
        '{ action = "test.failover", mode = "suggest", zone = "b" }',
        env={"DR_AUTOMATION": "off"},
    )
    incident_id = open_incident()
    run_queues(app)
    results = sorted(r.result for r in actions_of(app, incident_id))
    assert results[0].startswith(f"dry-run: would fail over {CACHE} away from node-0")
    assert results[1] == "suggested: run `pretend failover --name redis-amicis-ikea-prod`"
    assert world.starts == 0


def test_a_pause_stops_automation_not_a_person_approving(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting('{ action = "test.failover", mode = "approve" }')
    automation({"paused": True, "by": "alice"})
    incident_id = open_incident()
    run_queues(app, until=lambda: only_action(app, incident_id).state is not ActionState.PLANNED)
    record = only_action(app, incident_id)
    assert record.state is ActionState.AWAITING_APPROVAL, "the request is still made"
    clock.advance(seconds=1)
    assert decide(record.id, "approve", {"by": "bob"}).status_code == 200  # after the pause, knowing it
    run_queues(app)
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED
    assert world.starts == 1


def test_a_pause_after_a_person_approved_stops_the_start(acting: Acting, world: PretendCache) -> None:
    app = acting('{ action = "test.failover", mode = "approve" }')
    incident_id = open_incident()
    run_queues(app, until=lambda: only_action(app, incident_id).state is not ActionState.PLANNED)
    assert decide(only_action(app, incident_id).id, "approve", {"by": "bob"}).status_code == 200
    assert automation({"paused": True, "by": "alice", "reason": "stop"}).status_code == 200
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.REFUSED, record
    assert record.result.startswith("kill switch: automation is paused for all tenants (by alice via api")
    assert world.starts == 0


def test_an_approved_start_the_vendor_did_not_take_is_not_sent_again_once_paused(
    acting: Acting, world: PretendCache
) -> None:
    app = acting('{ action = "test.failover", mode = "approve" }')
    incident_id = open_incident()
    run_queues(app, until=lambda: only_action(app, incident_id).state is not ActionState.PLANNED)
    assert decide(only_action(app, incident_id).id, "approve", {"by": "bob"}).status_code == 200

    def answered_503_and_paused() -> None:
        world.during_execute = None
        assert automation({"paused": True, "by": "alice", "reason": "stop everything"}).status_code == 200
        raise Transient("rebooting the primary: ARM answered 503 ServiceUnavailable: -")

    world.during_execute = answered_503_and_paused
    run_queues(app)
    record = only_action(app, incident_id)
    assert [c[0] for c in world.calls].count("execute") == 1, "nothing starts again once paused"
    assert record.state is ActionState.FAILED, record
    assert record.result.startswith("stopped before starting it again: kill switch: automation is paused")
