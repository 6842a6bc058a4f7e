"""The /dr operations below the Slack edge, through the registered functions on the real store and queue:
a person's action through the pipeline's guardrails, approvals, acknowledge and resolve (ours, the
card, and PagerDuty's REST API on its stub), pause."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.actions import control
from shared.actions.manual import ACTIONS, manual_action_id
from shared.bootstrap import Services
from shared.chatops.operations import ActionRequest, OperationRefused, Operations
from shared.clock import parse_iso
from shared.domain.actions import ActionState, Actor
from shared.domain.incidents import ACKNOWLEDGED, RESOLVED
from shared.errors import BadInput, Transient
from tests.action_kinds import PretendCache
from tests.factories import FakeClock, resource
from tests.fakes import FakeChat
from tests.functions.action_harness import (
    CACHE,
    OTHER_CACHE,
    actions_of,
    open_incident,
    run_queues,
    timeline,
)
from tests.stubs import PagerDutyRestStub

Acting = Callable[..., Services]
SUGGEST = '{ action = "test.failover", mode = "suggest" }'  # the rule only suggests: a person acts
APPROVE = '{ action = "test.failover", mode = "approve", approval_minutes = 20 }'
ADA, BOB = Actor("U0ADA", "slack"), Actor("U0BOB", "slack")
FAILOVER = ActionRequest("failover", "redis-amicis-ikea-prod", "redis")
FROM = "dr-responder@example.com"


def operations(app: Services) -> Operations:
    """The app's operations with `failover redis` pointed at the pretend failover."""
    store = app.action_store
    verbs = {**ACTIONS, ("failover", "redis"): "test.failover"}
    return Operations(app.actions, app.store, store, store, app.outbox, app.clock, verbs)


def on_incident(acting: Acting, action: str = SUGGEST) -> tuple[Services, str, Operations]:
    """The app, an incident on the cache (its rule's action done with), and the operations."""
    app = acting(action)
    incident_id = open_incident()
    run_queues(app)
    return app, incident_id, operations(app)


def shown(ops: Operations, request: ActionRequest) -> ActionRequest:
    """The request as the confirmation's Confirm button carries it back: what the preview bound, sealed."""
    return ActionRequest.from_value(ops.preview(request).request.to_value())


def incident_of(app: Services, incident_id: str) -> Any:
    found = app.store.get(incident_id)
    assert found is not None
    return found.incident


def buttons(blocks: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"]) for b in blocks or [] if b["type"] == "actions" for e in b["elements"]
    ]


def test_preview_says_what_will_happen_on_the_open_incident_and_changes_nothing(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, ops = on_incident(acting)

    preview = ops.preview(FAILOVER)

    assert preview.refused == ""
    assert preview.summary == f"fail over {CACHE} away from node-0 (auto)"
    assert f"Action: test.failover — fail over {CACHE} away from node-0" in preview.details
    assert f"Target: {CACHE}" in preview.details
    assert "By hand it is: `pretend failover --name redis-amicis-ikea-prod`" in preview.details
    assert "Mode: auto — runs as soon as it is confirmed" in preview.details
    assert any(d.startswith(f"Incident: {incident_id} (") for d in preview.details)
    assert "Tenant: ikea" in preview.details
    assert any("a cooldown of 30 min" in d and "one action at a time" in d for d in preview.details)
    assert world.starts == 0 and len(actions_of(app, incident_id)) == 1  # the rule's suggestion only


def test_confirm_plans_the_persons_action_and_the_pipeline_runs_it_once_however_often_confirmed(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, ops = on_incident(acting)

    first = ops.confirm(shown(ops, FAILOVER), ADA, "req-1")
    again = ops.confirm(
        shown(ops, FAILOVER), ADA, "req-1"
    )  # Confirm pressed twice, or the request redelivered
    run_queues(app)
    third = ops.confirm(shown(ops, FAILOVER), ADA, "req-1")

    assert first.id == again.id == third.id and first.incident_id == incident_id
    assert (first.planned_by, first.mode, first.rule) == (ADA, "auto", "")
    [record] = [r for r in actions_of(app, incident_id) if r.id == first.id]
    assert record.state is ActionState.SUCCEEDED, record
    assert world.starts == 1
    lines = timeline(app, incident_id)
    assert f"test.failover on {CACHE}: planned (auto) by U0ADA via slack" in lines
    assert f"test.failover on {CACHE}: running by automation (rule ?): started" in lines


def test_paused_is_refused_in_the_preview_and_on_confirm_saying_who_paused_it(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, ops = on_incident(acting)
    assert ops.pause("", BOB, "DR drill") == "automation paused for all tenants by U0BOB via slack"

    preview = ops.preview(FAILOVER)
    with pytest.raises(OperationRefused, match=r"paused for all tenants .by U0BOB via slack.*DR drill"):
        ops.confirm(shown(ops, FAILOVER), ADA, "req-1")

    assert preview.refused.startswith("not now: kill switch: automation is paused for all tenants")
    assert "`/dr resume` lifts it" in preview.refused
    assert world.starts == 0 and len(actions_of(app, incident_id)) == 1
    assert any(line.startswith("U0ADA via slack asked to fail over") for line in timeline(app, incident_id))
    assert ops.resume("", BOB) == "automation resumed for all tenants by U0BOB via slack"
    assert ops.resume("", BOB) == "automation was not paused for all tenants"
    assert ops.preview(FAILOVER).refused == ""


def test_a_second_failover_within_the_cooldown_says_until_when(acting: Acting, world: PretendCache) -> None:
    app, _, ops = on_incident(acting)
    ops.confirm(shown(ops, FAILOVER), ADA, "req-1")
    run_queues(app)

    preview = ops.preview(FAILOVER)
    with pytest.raises(OperationRefused, match=r"cooldown: test.failover ran on .* not again before"):
        ops.confirm(shown(ops, FAILOVER), BOB, "req-2")

    assert "cooldown" in preview.refused and "(30 min)" in preview.refused
    assert world.starts == 1


def test_an_action_running_on_the_target_refuses_another(acting: Acting, world: PretendCache) -> None:
    app, incident_id, ops = on_incident(acting)
    world.polls_until_done = 10_000  # the failover keeps running
    first = ops.confirm(shown(ops, FAILOVER), ADA, "req-1")
    run_queues(app, seconds=5)
    assert app.action_store.get_action(first.id).record.state is ActionState.RUNNING  # type: ignore[union-attr]

    refused = ops.preview(FAILOVER).refused

    assert f"({first.id}, running)" in refused
    with pytest.raises(OperationRefused, match=r"running"):
        ops.confirm(shown(ops, FAILOVER), BOB, "req-2")
    assert world.starts == 1 and len(actions_of(app, incident_id)) == 2


def test_approve_mode_waits_with_buttons_and_a_second_press_says_who_decided_when(
    acting: Acting, world: PretendCache, chat: FakeChat
) -> None:
    app, incident_id, ops = on_incident(acting, APPROVE)
    [automatic] = actions_of(app, incident_id)
    ops.deny(automatic.id, BOB)  # the rule's own request, out of the way
    run_queues(app)

    record = ops.confirm(shown(ops, FAILOVER), ADA, "req-1")
    run_queues(app)

    waiting = app.action_store.get_action(record.id)
    assert waiting is not None and waiting.record.state is ActionState.AWAITING_APPROVAL
    preview = ops.preview(FAILOVER)
    assert any(d.startswith("Mode: approve — needs approval: Approve / Deny") for d in preview.details)
    assert f"one at a time: test.failover ({record.id}) is awaiting approval" in preview.refused
    [asked] = [p for p in chat.posts if p.thread_ts and ("dr_approve", record.id) in buttons(p.blocks)]
    assert buttons(asked.blocks) == [("dr_approve", record.id), ("dr_deny", record.id)]
    assert waiting.record.expires_at in str(asked.blocks)
    assert world.starts == 0

    approved = ops.approve(record.id, BOB)
    with pytest.raises(
        OperationRefused, match=rf"approved by U0BOB via slack .it is approved since {approved.updated_at}"
    ):
        ops.approve(record.id, ADA)
    run_queues(app)
    with pytest.raises(OperationRefused, match=r"Cannot deny .*approved by U0BOB via slack .it is succeeded"):
        ops.deny(record.id, ADA)

    assert world.starts == 1
    assert f"test.failover on {CACHE}: approved by U0BOB via slack: approved by U0BOB via slack" in timeline(
        app, incident_id
    )
    assert any("U0ADA via slack tried to deny" in line for line in timeline(app, incident_id))


def test_deny_twice_says_by_whom_and_when_and_an_unknown_action_is_refused(acting: Acting) -> None:
    app, incident_id, ops = on_incident(acting, APPROVE)
    [record] = actions_of(app, incident_id)

    denied = ops.deny(record.id, BOB)
    with pytest.raises(OperationRefused, match=rf"it was denied by U0BOB via slack at {denied.updated_at}"):
        ops.deny(record.id, ADA)
    with pytest.raises(OperationRefused, match=r"There is no action act-nope"):
        ops.approve("act-nope", ADA)


def test_an_action_on_a_resource_no_incident_is_about_opens_one_for_the_request(
    acting: Acting, world: PretendCache, chat: FakeChat
) -> None:
    app = acting(SUGGEST)
    ops = operations(app)
    request = ActionRequest("failover", OTHER_CACHE, "redis")
    assert (
        ops.preview(request).details[-2] == "Incident: none is open on it, so one is opened for this request"
    )

    record = ops.confirm(shown(ops, request), ADA, "req-9")
    second = ops.confirm(
        shown(ops, ActionRequest("failover", "redis-amicis-hm-prod", "redis")), BOB, "req-10"
    )
    run_queues(app)

    incident = incident_of(app, record.incident_id)
    assert (incident.rule, incident.resource_id, incident.tenant) == ("manual", OTHER_CACHE, "hm")
    assert incident.reasons == (f"U0ADA via slack asked to fail over {OTHER_CACHE} away from node-0",)
    assert second.incident_id == record.incident_id, "a second request on the resource joins its incident"
    assert [c.blocks and buttons(c.blocks) for c in chat.cards()] == [
        [("dr_ack", incident.id), ("dr_resolve", incident.id)]
    ]
    assert app.action_store.get_action(record.id).record.state is ActionState.SUCCEEDED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (ActionRequest("failover", "no-such-cache", "redis"), "no open incident is on a Redis cache named"),
        (ActionRequest("failover", CACHE, "cosmos"), "is not a Cosmos DB account ARM id"),
        (ActionRequest("failover", CACHE, "memcached"), "there is no failover memcached"),
        (ActionRequest("rollback", "shop"), '"<namespace>/<deployment>"'),
        (ActionRequest("restart", "shop/cart"), "no open incident is on an AKS cluster"),
    ],
)
def test_what_cannot_be_resolved_is_refused_politely(
    acting: Acting, request_: ActionRequest, reason: str
) -> None:
    app = acting(SUGGEST)
    with pytest.raises(OperationRefused, match=rf"Cannot {request_.command}: .*{reason}"):
        operations(app).preview(request_)


def test_the_apps_operations_use_the_registrys_own_names(acting: Acting) -> None:
    app = acting(SUGGEST)
    open_incident()
    with pytest.raises(OperationRefused, match=r"redis.failover is not set up here"):
        app.operations.preview(FAILOVER)


# ---- acknowledge and resolve: ours, the card, and PagerDuty's REST API ---------------------------


@pytest.fixture
def rest(monkeypatch: pytest.MonkeyPatch) -> Iterator[PagerDutyRestStub]:
    with PagerDutyRestStub() as stub:
        monkeypatch.setenv("SSL_CERT_FILE", stub.ca_file or "")
        yield stub


def paged_with_rest(acting: Acting, rest: PagerDutyRestStub) -> tuple[Services, str]:
    """The app with PagerDuty's REST API on its stub, and an incident PagerDuty opened as Q1PDINCIDENT."""
    env = {
        "PAGERDUTY_API_TOKEN": rest.token,
        "PAGERDUTY_API_URL": rest.url,
        "PAGERDUTY_SERVICE_ID": "PSVC001",
        "PAGERDUTY_FROM_EMAIL": FROM,
    }
    app = acting(SUGGEST, env=env)
    incident_id = open_incident()
    run_queues(app)
    rest.add_incident(incident_id, incident_id="Q1PDINCIDENT")
    return app, incident_id


def test_acknowledge_then_resolve_change_ours_the_card_and_pagerdutys_incident(
    acting: Acting, rest: PagerDutyRestStub, chat: FakeChat
) -> None:
    app, incident_id = paged_with_rest(acting, rest)
    ops = app.operations

    acked = ops.acknowledge(incident_id, ADA)
    run_queues(app)

    assert (acked.status, acked.acknowledged_by) == (ACKNOWLEDGED, "U0ADA via slack")
    [put] = rest.requests_to("/incidents/Q1PDINCIDENT", "PUT")
    assert put.json == {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    assert put.header("From") == FROM
    assert buttons(chat.updates[-1].blocks) == [("dr_resolve", incident_id)]
    with pytest.raises(OperationRefused, match=r"acknowledged by U0ADA via slack at .* already"):
        ops.acknowledge(incident_id, BOB)

    done = ops.resolve(incident_id, BOB)
    run_queues(app)

    assert (done.status, done.resolved_by) == (RESOLVED, "U0BOB via slack")
    assert rest.status_changes() == [
        ("Q1PDINCIDENT", "acknowledged", FROM),
        ("Q1PDINCIDENT", "resolved", FROM),
    ]
    assert buttons(chat.updates[-1].blocks) == []
    lines = timeline(app, incident_id)
    assert "Acknowledged by U0ADA via slack" in lines and "Resolved by U0BOB via slack" in lines
    assert "PagerDuty incident Q1PDINCIDENT resolved for U0BOB via slack (REST API)" in lines
    assert any(line.startswith("U0BOB via slack tried to acknowledge it: refused") for line in lines)
    assert incident_of(app, incident_id).pagerduty_state.status.value == "resolved"
    with pytest.raises(OperationRefused, match=r"There is no incident inc-nope"):
        ops.resolve("inc-nope", ADA)


def test_pagerduty_down_is_retried_said_on_the_incident_and_reaches_it_once_up(
    acting: Acting, rest: PagerDutyRestStub, chat: FakeChat
) -> None:
    app, incident_id = paged_with_rest(acting, rest)
    rest.set_down(status=503)

    app.operations.acknowledge(incident_id, ADA)
    run_queues(app, seconds=8)

    assert incident_of(app, incident_id).status == ACKNOWLEDGED, "ours is acknowledged at once"
    warned = [line for line in timeline(app, incident_id) if "still failing after 5 tries, retrying" in line]
    assert warned and "PagerDuty answered 503" in warned[0]
    assert any("still failing" in p.text for p in chat.posts if p.thread_ts)
    rest.set_down(False)
    run_queues(app)
    assert rest.status_changes() == [("Q1PDINCIDENT", "acknowledged", FROM)]
    assert app.local_queue.dead_letters("pages", 10) == []


# ---- what a confirmation binds: Confirm does what it showed, or nothing ------------------------


def test_confirm_refuses_when_the_name_now_means_another_cache_than_the_preview_showed(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app, incident_id, ops = on_incident(acting)
    confirmation = shown(
        ops, FAILOVER
    )  # by name: the open incident says it is the cache in rg-amicis-ikea-prod
    assert confirmation.bound is not None and confirmation.bound.resource == CACHE
    ops.resolve(incident_id, BOB)
    same_name = resource("redis", "redis-amicis-ikea-prod", "rg-other-ikea-prod")
    other_incident = open_incident(same_name, alert_id="2")
    run_queues(app)

    with pytest.raises(
        OperationRefused, match=r"The target changed since you were asked .*target: .*rg-other"
    ):
        ops.confirm(confirmation, ADA, "req-1")

    assert world.starts == 0
    assert all(r.planned_by != ADA for r in actions_of(app, other_incident))
    assert app.action_store.get_action(manual_action_id("req-1")) is None


def test_a_confirmation_older_than_fifteen_minutes_is_refused(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    _, _, ops = on_incident(acting)
    confirmation = shown(ops, FAILOVER)
    clock.advance(minutes=15, seconds=1)

    with pytest.raises(
        OperationRefused, match=r"shown at 2026-11-25T10:00:00.000Z, more than 15 minutes ago"
    ):
        ops.confirm(confirmation, ADA, "req-1")
    assert world.starts == 0
    assert ops.confirm(shown(ops, FAILOVER), ADA, "req-2").state is ActionState.PLANNED  # asked again


def test_a_crafted_value_never_reaches_a_resource_the_preview_did_not_name(
    acting: Acting, world: PretendCache
) -> None:
    app, _, ops = on_incident(acting)
    value = json.loads(ops.preview(FAILOVER).request.to_value())
    assert len(ops.preview(ActionRequest("failover", CACHE, "redis")).request.to_value()) <= 2000
    crafted = {**value, "target": OTHER_CACHE, "bound": {**value["bound"], "resource": OTHER_CACHE}}
    unbound = {k: v for k, v in value.items() if k != "bound"}
    sealed_elsewhere = operations(app).preview(FAILOVER).request  # another responder's key

    for request in (
        ActionRequest.from_value(json.dumps(crafted)),
        ActionRequest.from_value(json.dumps(unbound)),
        sealed_elsewhere,
    ):
        with pytest.raises(OperationRefused, match=r"not made by this responder.*run `/dr failover redis"):
            ops.confirm(request, ADA, f"req-{id(request)}")
    with pytest.raises(OperationRefused, match=r"malformed"):
        ActionRequest.from_value(json.dumps({**value, "bound": {**value["bound"], "at": "soon"}}))
    # A seal that is not ours in shape is refused, never a TypeError from comparing it: that made the
    # press a dead letter with no answer to the person.
    for seal in ("é" * 32, "A" * 32, "0" * 31):
        with pytest.raises(OperationRefused, match=r"malformed"):
            ActionRequest.from_value(json.dumps({**value, "bound": {**value["bound"], "seal": seal}}))
    assert world.starts == 0 and app.action_store.actions_on(OTHER_CACHE, "") == []


# ---- Cancel and Confirm on one request id -----------------------------------------------------


def test_cancel_first_refuses_a_later_confirm_and_says_who_cancelled_when(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, ops = on_incident(acting)
    confirmation = shown(ops, FAILOVER)

    said = ops.cancel(confirmation, BOB, "req-1")
    again = ops.cancel(confirmation, BOB, "req-1")
    with pytest.raises(
        OperationRefused, match=r"Not done: it was cancelled by U0BOB via slack at 2026-11-25T10:00"
    ):
        ops.confirm(confirmation, ADA, "req-1")
    run_queues(app)

    assert said == "Cancelled by U0BOB via slack at 2026-11-25T10:00:00.000Z: nothing was done"
    assert again.startswith("Already cancelled by U0BOB via slack")
    tombstone = app.action_store.get_action(manual_action_id("req-1"))
    assert tombstone is not None and tombstone.record.state is ActionState.SKIPPED
    assert (tombstone.record.planned_by, tombstone.record.target) == (BOB, CACHE)
    cancelled = "cancelled by U0BOB via slack at 2026-11-25T10:00:00.000Z: nothing was done"
    assert f"test.failover on {CACHE}: {cancelled}" in timeline(app, incident_id)
    assert world.starts == 0


def test_cancel_after_confirm_is_too_late_and_says_what_to_do(acting: Acting, world: PretendCache) -> None:
    app, incident_id, ops = on_incident(acting, APPROVE)
    [automatic] = actions_of(app, incident_id)
    ops.deny(automatic.id, BOB)
    confirmation = shown(ops, FAILOVER)
    record = ops.confirm(confirmation, ADA, "req-1")
    run_queues(app)

    with pytest.raises(
        OperationRefused,
        match=rf"Too late: {record.id} was confirmed by U0ADA via slack and is awaiting approval; "
        rf"`/dr deny {record.id}` stops it",
    ):
        ops.cancel(confirmation, BOB, "req-1")

    assert app.action_store.get_action(record.id).record.state is ActionState.AWAITING_APPROVAL  # type: ignore[union-attr]
    assert any(
        line.startswith(f"U0BOB via slack pressed Cancel on {record.id} at") and "too late" in line
        for line in timeline(app, incident_id)
    )


# ---- the kill switch: a person's action, its tenant found from the resource ---------------------


def test_a_tenant_pause_stops_a_persons_action_on_a_resource_no_incident_is_about(
    acting: Acting, world: PretendCache
) -> None:
    app = acting(SUGGEST)
    ops = operations(app)
    ops.pause("hm", BOB, "hm migration")
    request = ActionRequest("failover", OTHER_CACHE, "redis")

    preview = ops.preview(request)
    with pytest.raises(OperationRefused, match=r"paused for tenant hm .by U0BOB via slack.*hm migration"):
        ops.confirm(shown(ops, request), ADA, "req-1")

    assert "Tenant: hm" in preview.details
    assert "kill switch: automation is paused for tenant hm" in preview.refused
    assert world.starts == 0 and app.action_store.actions_on(OTHER_CACHE, "") == []


def test_while_any_tenant_is_paused_an_action_on_a_resource_of_unknown_tenant_waits_too(
    acting: Acting, world: PretendCache
) -> None:
    app = acting(SUGGEST)
    ops = operations(app)
    unnamed = resource("redis", "sessions-cache", "rg-shared")  # not <kind>-amicis-<tenant>-<env>
    request = ActionRequest("failover", unnamed, "redis")
    assert not ops.preview(request).refused  # nothing paused: nothing in the way
    ops.pause("hm", BOB, "hm migration")

    preview = ops.preview(request)
    with pytest.raises(
        OperationRefused, match=r"automation is paused \(hm\) and the tenant of .* is not known"
    ):
        ops.confirm(shown(ops, request), ADA, "req-unknown")

    assert "is not known" in preview.refused
    assert world.starts == 0 and app.action_store.actions_on(unnamed, "") == []


def test_a_pause_between_confirm_and_run_stops_the_persons_action_on_the_timeline_in_their_name(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, ops = on_incident(acting)
    record = ops.confirm(shown(ops, FAILOVER), ADA, "req-1")
    ops.pause("ikea", BOB, "storm")
    run_queues(app)

    refused = app.action_store.get_action(record.id)
    assert refused is not None and refused.record.state is ActionState.REFUSED
    assert world.starts == 0
    assert (
        f"test.failover on {CACHE}: refused by U0ADA via slack: kill switch: automation is paused for "
        "tenant ikea (by U0BOB via slack at 2026-11-25T10:00:00.000Z: storm)"
    ) in timeline(app, incident_id)


def test_a_persons_action_that_cannot_start_within_approval_minutes_lapses_and_pages(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, ops = on_incident(acting)
    world.fail("precondition", *[Transient("503 Service Unavailable", 600) for _ in range(4)])
    record = ops.confirm(shown(ops, FAILOVER), ADA, "req-1")
    run_queues(app, seconds=3600)  # 30 min by default, and the vendor says "later" for 40

    lapsed = app.action_store.get_action(record.id)
    assert lapsed is not None and lapsed.record.state is ActionState.REFUSED
    result = (
        "lapsed: asked for by U0ADA via slack, but it could not start by 2026-11-25T10:30:00.000Z (last"
        " answer: 503 Service Unavailable); ask for it again if it is still needed"
    )
    assert lapsed.record.result == result
    assert world.starts == 0
    assert f"Escalated: test.failover on {CACHE}: {result}" in timeline(app, incident_id)


# ---- four eyes, and what acknowledging approves ------------------------------------------------


def test_who_asked_for_an_approve_mode_action_may_not_approve_it_and_is_told_so_up_front(
    acting: Acting, world: PretendCache, chat: FakeChat
) -> None:
    app, incident_id, ops = on_incident(acting, APPROVE)
    [automatic] = actions_of(app, incident_id)
    ops.deny(automatic.id, BOB)
    ada = Actor("ada (U0ADA)", "slack")
    preview = ops.preview(FAILOVER)
    record = ops.confirm(shown(ops, FAILOVER), ada, "req-1")
    run_queues(app)

    with pytest.raises(OperationRefused, match=r"you asked for it; someone else on the allowlist or on call"):
        ops.approve(record.id, Actor("ada.l (U0ADA)", "slack"))  # her display name changed meanwhile

    assert any(
        "someone other than you, on the allowlist or on call, must approve it" in d for d in preview.details
    )
    assert any(
        line.startswith("ada.l (U0ADA) via slack tried to approve") for line in timeline(app, incident_id)
    )
    # The same person by the API's or the CLI's door is refused too (their names are self-declared).
    for door in ("api", "cli"):
        with pytest.raises(BadInput, match=r"someone else must approve it") as refused:
            control.decide(app.actions, record.id, True, Actor("ada (U0ADA)", door))
        assert refused.value.status == 409
    waiting = app.action_store.get_action(record.id)
    assert waiting is not None and waiting.record.state is ActionState.AWAITING_APPROVAL
    expires = parse_iso(waiting.record.expires_at)
    assert expires is not None
    [asked] = [p for p in chat.posts if p.thread_ts and ("dr_approve", record.id) in buttons(p.blocks)]
    slack_date = (
        f"<!date^{int(expires.timestamp())}^{{date_short_pretty}} {{time}}|{waiting.record.expires_at}>"
    )
    assert slack_date in json.dumps(asked.blocks)
    assert ops.approve(record.id, BOB).approved_by == BOB
    run_queues(app)
    assert world.starts == 1


def test_acknowledging_approves_what_waits_on_it_in_the_slack_users_name(
    acting: Acting, world: PretendCache, chat: FakeChat
) -> None:
    app, incident_id, ops = on_incident(acting, APPROVE.replace(" }", ", approve_on_ack = true }"))
    [waiting] = actions_of(app, incident_id)
    assert waiting.state is ActionState.AWAITING_APPROVAL

    incident, approved = ops.acknowledge_approving(incident_id, BOB)
    run_queues(app)

    assert incident.acknowledged_by == "U0BOB via slack"
    assert [(r.id, r.approved_by) for r in approved] == [(waiting.id, BOB)]
    assert f"test.failover on {CACHE}: approved by U0BOB via slack: approved by U0BOB via slack" in timeline(
        app, incident_id
    )
    assert world.starts == 1


def test_a_cosmos_forced_failover_says_it_may_lose_writes(acting: Acting) -> None:
    app = acting(SUGGEST)
    store = app.action_store
    verbs = {**ACTIONS, ("failover", "cosmos"): "test.failover"}
    ops = Operations(app.actions, app.store, store, store, app.outbox, app.clock, verbs)
    account = resource("cosmosdb", "cosmos-amicis-ikea-prod", "rg-amicis-ikea-prod")

    details = ops.preview(ActionRequest("failover", account, "cosmos")).details

    assert any(d.startswith("Warning: a forced failover may lose writes not yet replicated") for d in details)
    assert "Tenant: ikea" in details
