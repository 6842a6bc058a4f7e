"""The modes of a rule's action, in-process: suggest, dry-run, approve (API, PagerDuty acknowledgement,
expiry, deny), and page = "on-failure", through the registered functions on the real store and queue."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.bootstrap import Services
from shared.clock import iso
from shared.domain.actions import ActionState, Actor
from shared.errors import StoreBusy, Transient
from shared.outbox import Outbox
from tests.action_kinds import PretendCache
from tests.conftest import REFDATA
from tests.factories import FakeClock
from tests.fakes import FakeChat, FakePager
from tests.functions.action_harness import (
    CACHE,
    WEBHOOK_SECRET,
    alert,
    automation,
    decide,
    deliver,
    only_action,
    open_incident,
    run_queues,
    services_for,
    timeline,
    triggers,
    use,
)
from tests.functions.harness import assert_error, json_body, post

Acting = Callable[..., Services]
APPROVE = '{ action = "test.failover", mode = "approve", approval_minutes = 2, settle_minutes = 5 }'
ON_FAILURE = '{ action = "test.failover", mode = "auto", page = "on-failure", settle_minutes = 5 }'
COMMAND = "pretend failover --name redis-amicis-ikea-prod"
RULE = "automation (rule test-redis-down)"


def thread(chat: FakeChat) -> list[str]:
    """Every line posted in an incident's thread."""
    return [p.text for p in chat.posts if p.thread_ts]


def awaiting(acting: Acting, action: str = APPROVE) -> tuple[Services, str, str]:
    """The app, an incident and its action, waiting for a decision."""
    app = acting(action)
    incident_id = open_incident()
    run_queues(app, until=lambda: only_action(app, incident_id).state is not ActionState.PLANNED)
    record = only_action(app, incident_id)
    assert record.state is ActionState.AWAITING_APPROVAL, record
    return app, incident_id, record.id


def test_suggest_posts_the_exact_command_and_changes_nothing(
    acting: Acting, world: PretendCache, chat: FakeChat
) -> None:
    app = acting('{ action = "test.failover", mode = "suggest" }')
    incident_id = open_incident()
    run_queues(app)
    record = only_action(app, incident_id)
    assert (record.state, record.result) == (ActionState.SKIPPED, f"suggested: run `{COMMAND}`")
    line = f"test.failover on {CACHE}: skipped by {RULE}: suggested: run `{COMMAND}`"
    assert line in timeline(app, incident_id)
    assert line in thread(chat)
    assert world.calls == [] and world.primary == "node-0"


def test_dry_run_records_what_it_would_do_and_runs_only_the_precondition(
    acting: Acting, world: PretendCache
) -> None:
    app = acting('{ action = "test.failover", mode = "dry-run" }')
    incident_id = open_incident()
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SKIPPED
    assert record.result == (
        f"dry-run: would fail over {CACHE} away from node-0 (replica node-1 healthy); by hand: `{COMMAND}`"
    )
    assert world.calls == [("precondition", CACHE)] and world.starts == 0
    assert record.attempts == 0 and record.started_at == ""


def test_approve_waits_then_runs_once_when_the_api_approves(
    acting: Acting, world: PretendCache, chat: FakeChat
) -> None:
    app, incident_id, action_id = awaiting(acting)
    assert world.calls == [("precondition", CACHE)], "nothing changes before a person approves"
    record = only_action(app, incident_id)
    assert record.request.startswith(f"fail over {CACHE} away from node-0. Checked: replica node-1 healthy.")
    assert any(f"Approve: `dr approve {action_id}`" in t for t in thread(chat))
    answer = decide(action_id, "approve", {"by": "alice@example.com"})
    assert answer.status_code == 200, answer.get_body()
    decided = json_body(answer)
    assert (decided["state"], decided["approved_by"]) == (
        "approved",
        {"name": "alice@example.com", "via": "api"},
    )
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert record.approved_by is not None and record.approved_by.to_dict() == decided["approved_by"]
    assert world.starts == 1
    lines = timeline(app, incident_id)
    assert (
        f"test.failover on {CACHE}: approved by alice@example.com via api: "
        "approved by alice@example.com via api" in lines
    )
    assert f"test.failover on {CACHE}: running by alice@example.com via api: started" in lines


def test_approving_twice_is_a_conflict_and_runs_once(acting: Acting, world: PretendCache) -> None:
    app, incident_id, action_id = awaiting(acting)
    assert decide(action_id, "approve", {"by": "alice"}).status_code == 200
    assert_error(
        decide(action_id, "approve", {"by": "bob"}), 409, "conflict", "is approved, cannot be approved"
    )
    run_queues(app)
    assert_error(decide(action_id, "approve", {"by": "bob"}), 409, "conflict", "is succeeded")
    assert_error(decide(action_id, "deny", {"by": "bob"}), 409, "conflict", "cannot be denied")
    record = only_action(app, incident_id)
    assert record.approved_by is not None and record.approved_by.name == "alice"
    assert world.starts == 1


def test_deny_never_runs(acting: Acting, world: PretendCache) -> None:
    app, incident_id, action_id = awaiting(acting)
    answer = decide(action_id, "deny", {"by": "bob"})
    assert answer.status_code == 200 and json_body(answer)["state"] == "denied"
    run_queues(app)
    record = only_action(app, incident_id)
    assert (record.state, record.result) == (ActionState.DENIED, "denied by bob via api")
    assert world.calls == [("precondition", CACHE)] and world.starts == 0
    lines = timeline(app, incident_id)
    assert f"test.failover on {CACHE}: denied by bob via api: denied by bob via api" in lines
    assert f"Escalated: test.failover on {CACHE} was denied by bob via api" in lines


def test_an_approval_request_expires_after_approval_minutes_and_says_so(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app, incident_id, action_id = awaiting(acting)
    expires_at = only_action(app, incident_id).expires_at
    assert expires_at == "2026-11-25T10:02:00.000Z"
    run_queues(app, seconds=300)
    record = only_action(app, incident_id)
    assert record.state is ActionState.EXPIRED
    lines = timeline(app, incident_id)
    assert (
        f"test.failover on {CACHE}: expired by {RULE}: no decision within the approval time "
        f"(it expired at {expires_at})"
    ) in lines
    assert f"Escalated: test.failover on {CACHE}: approval expired" in lines
    assert_error(decide(action_id, "approve", {"by": "alice"}), 409, "conflict", "is expired")
    assert world.starts == 0


def test_a_decision_after_the_expiry_but_before_its_message_is_refused(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app, incident_id, action_id = awaiting(acting)
    clock.advance(minutes=2)  # due, but the expiry message has not been delivered yet
    assert_error(decide(action_id, "approve", {"by": "alice"}), 409, "conflict", "expired at")
    assert only_action(app, incident_id).state is ActionState.EXPIRED
    run_queues(app)
    assert world.starts == 0
    lines = timeline(app, incident_id)
    assert f"Escalated: test.failover on {CACHE}: approval expired" in lines, "as when its message finds it"


def test_an_approved_action_that_cannot_start_within_approval_minutes_lapses_and_pages(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app, incident_id, action_id = awaiting(acting)
    approved_at = clock.now
    assert decide(action_id, "approve", {"by": "alice"}).status_code == 200
    # The vendor keeps answering "later" for longer than the approval time (2 min): what alice
    # approved was checked three minutes ago, so it must not run on her word now.
    world.fail("precondition", *[Transient("429 Too Many Requests", 60) for _ in range(3)])
    run_queues(app, seconds=600)
    record = only_action(app, incident_id)
    assert record.state is ActionState.REFUSED, record
    start_by = "2026-11-25T10:02:00.000Z"
    assert clock.now >= approved_at + timedelta(minutes=2)
    assert record.result == (
        f"lapsed: approved by alice via api, but it could not start by {start_by}"
        " (last answer: 429 Too Many Requests); ask for it again if it is still needed"
    )
    assert world.starts == 0
    assert f"Escalated: test.failover on {CACHE}: {record.result}" in timeline(app, incident_id)


def test_an_approved_action_that_starts_within_approval_minutes_runs_after_a_later(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, action_id = awaiting(acting)
    assert decide(action_id, "approve", {"by": "alice"}).status_code == 200
    world.fail("precondition", Transient("429 Too Many Requests", 30))
    run_queues(app)
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED
    assert world.starts == 1


def test_approving_after_the_incident_resolved_expires_the_request_and_runs_nothing(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app, incident_id, action_id = awaiting(
        acting, '{ action = "test.failover", mode = "approve", approval_minutes = 30 }'
    )
    clock.advance(minutes=5)
    resolved_at = iso(clock())
    assert post("alerts", alert(condition="Resolved")).status_code == 202
    run_queues(app, seconds=5)
    clock.advance(minutes=10)
    why = f"the incident resolved at {resolved_at} before it was decided"
    assert_error(decide(action_id, "approve", {"by": "bob"}), 409, "conflict", why)
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.EXPIRED and record.result == why
    assert f"test.failover on {CACHE}: expired by {RULE}: {why}" in timeline(app, incident_id)
    assert world.starts == 0


def test_an_approved_action_whose_incident_resolved_before_it_started_is_refused(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app, incident_id, action_id = awaiting(acting)
    assert decide(action_id, "approve", {"by": "alice"}).status_code == 200
    resolved_at = iso(clock())
    assert post("alerts", alert(condition="Resolved")).status_code == 202  # before the run is delivered
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.REFUSED, record
    assert record.result == f"not started: the incident resolved at {resolved_at} before it could start"
    assert world.starts == 0


def _acknowledged(incident_id: str) -> bytes:
    envelope = json.loads(
        (REFDATA / "pagerduty" / "webhook_v3_captured_incident_acknowledged.json").read_text()
    )
    envelope["event"]["data"]["incident_key"] = incident_id
    return json.dumps(envelope).encode()


def _signed_post(body: bytes) -> int:
    signature = "v1=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Webhook-Id": "delivery-1", "X-PagerDuty-Signature": signature}
    return post("pagerduty", body, headers=headers, function_name="pagerduty_webhook").status_code


def test_approve_on_ack_the_pagerduty_acknowledgement_approves_it(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, _ = awaiting(
        acting, '{ action = "test.failover", mode = "approve", approve_on_ack = true }'
    )
    assert only_action(app, incident_id).request.endswith("Acknowledging the PagerDuty incident approves it.")
    assert _signed_post(_acknowledged(incident_id)) == 202
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert record.approved_by is not None and record.approved_by.to_dict() == {
        "name": "Ben",
        "via": "pagerduty",
    }
    assert (
        f"test.failover on {CACHE}: approved by Ben via pagerduty: approved by Ben via pagerduty"
        in timeline(app, incident_id)
    )
    assert world.starts == 1
    assert _signed_post(_acknowledged(incident_id)) == 202  # a redelivery: approving twice is not repeated
    run_queues(app)
    assert world.starts == 1


def test_while_paused_an_acknowledgement_approves_nothing_and_a_person_still_can(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, action_id = awaiting(
        acting, '{ action = "test.failover", mode = "approve", approve_on_ack = true }'
    )
    assert automation({"paused": True, "by": "alice", "reason": "DR drill"}).status_code == 200
    assert _signed_post(_acknowledged(incident_id)) == 202  # acknowledged to stop the ringing
    run_queues(app, seconds=30)
    assert only_action(app, incident_id).state is ActionState.AWAITING_APPROVAL
    assert world.starts == 0
    assert any(
        "not approved by Ben's acknowledgement: kill switch: automation is paused for all tenants" in t
        for t in timeline(app, incident_id)
    )
    assert decide(action_id, "approve", {"by": "bob"}).status_code == 200  # a decision, knowing it is paused
    run_queues(app)
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED
    assert world.starts == 1


def test_a_pause_after_an_acknowledgement_approved_it_stops_its_start(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, _ = awaiting(
        acting, '{ action = "test.failover", mode = "approve", approve_on_ack = true }'
    )
    assert _signed_post(_acknowledged(incident_id)) == 202
    deliver(app, "pagerduty")  # the acknowledgement approves it; its start is not delivered yet
    assert only_action(app, incident_id).state is ActionState.APPROVED
    assert automation({"paused": True, "by": "alice", "reason": "DR drill"}).status_code == 200
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.REFUSED, record
    assert record.result.startswith("kill switch: automation is paused for all tenants (by alice via api")
    assert world.starts == 0


def test_without_approve_on_ack_the_acknowledgement_approves_nothing(
    acting: Acting, world: PretendCache
) -> None:
    app, incident_id, _ = awaiting(acting)
    assert _signed_post(_acknowledged(incident_id)) == 202
    run_queues(app, seconds=30)
    assert only_action(app, incident_id).state is ActionState.AWAITING_APPROVAL
    assert world.starts == 0


def test_an_unknown_action_is_404(acting: Acting) -> None:
    acting(APPROVE)
    assert_error(decide("act-0000000000000000", "approve", {"by": "alice"}), 404, "not_found", "act-0000")
    assert_error(decide("act-0000000000000000", "deny", {"by": "alice"}), 404, "not_found")


@pytest.mark.parametrize(
    ("raw", "status", "error", "detail"),
    [
        (b"not json", 400, "malformed_json", ""),
        (b"", 400, "empty_body", ""),
        (b"[]", 422, "invalid_body", "JSON object"),
        (b"{}", 422, "invalid_field", "by must name"),
        (b'{"by": 7}', 422, "invalid_field", "by must name"),
        (b'{"by": "   "}', 422, "invalid_field", "by must name"),
        (b'{"by": ["alice"]}', 422, "invalid_field", "by must name"),
        (json.dumps({"by": "a" * 201}).encode(), 422, "invalid_field", "longer than 200"),
        (json.dumps({"by": "alice", "note": "x" * 20_000}).encode(), 413, "body_too_large", ""),
    ],
)
def test_a_bad_decision_body_is_a_json_4xx_and_changes_nothing(
    acting: Acting, world: PretendCache, raw: bytes, status: int, error: str, detail: str
) -> None:
    app, incident_id, action_id = awaiting(acting)
    before = app.action_store.get_action(action_id)
    lines = timeline(app, incident_id)
    for verb in ("approve", "deny"):
        assert_error(decide(action_id, verb, raw=raw), status, error, detail)
    assert app.action_store.get_action(action_id) == before
    assert timeline(app, incident_id) == lines
    assert app.local_queue.next_due("actions") is not None, "only the expiry is queued"
    run_queues(app, seconds=30)
    assert world.starts == 0


def test_on_failure_a_success_pages_nobody_and_the_card_shows_it(
    acting: Acting, world: PretendCache, pager: FakePager, chat: FakeChat
) -> None:
    app = acting(ON_FAILURE)
    incident_id = open_incident()
    run_queues(app)
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED
    assert world.starts == 1
    assert triggers(pager) == [], "a blip the responder fixed wakes nobody"
    assert any("succeeded" in summary for _, summary, _, _ in pager.changes), "PagerDuty still hears of it"
    card = chat.updates[-1]
    assert any("test.failover on redis-amicis-ikea-prod: succeeded (auto)" in str(b) for b in card.blocks)


def test_on_failure_a_refused_precondition_pages(
    acting: Acting, world: PretendCache, pager: FakePager
) -> None:
    world.healthy_replica = False
    app = acting(ON_FAILURE)
    incident_id = open_incident()
    run_queues(app)
    record = only_action(app, incident_id)
    assert (record.state, record.result) == (ActionState.REFUSED, "precondition: the replica is not healthy")
    assert triggers(pager) == [incident_id]
    assert world.starts == 0


def test_on_failure_a_failed_check_pages(acting: Acting, world: PretendCache, pager: FakePager) -> None:
    world.takes = False  # the reboot is accepted, but the primary does not move
    app = acting(ON_FAILURE)
    incident_id = open_incident()
    run_queues(app)
    record = only_action(app, incident_id)
    assert (record.state, record.result) == (ActionState.FAILED, "the primary did not move")
    assert triggers(pager) == [incident_id]
    assert any(
        t.startswith(f"Escalated: test.failover on {CACHE}: the primary did not move")
        for t in timeline(app, incident_id)
    )


class RacingClock(FakeClock):
    """A clock that, read once while armed, lets something else happen first (another approver)."""

    armed: Callable[[], object] | None = None

    def __call__(self) -> datetime:
        meanwhile, self.armed = self.armed, None
        if meanwhile is not None:
            meanwhile()
        return super().__call__()


def test_two_people_approving_at_once_get_one_200_and_one_409_never_a_500(
    data_dir: Path, world: PretendCache, pager: FakePager, chat: FakeChat
) -> None:
    clock = RacingClock()
    app = use(services_for(data_dir, clock, world, pager, chat, APPROVE))
    try:
        incident_id = open_incident()
        run_queues(app, until=lambda: only_action(app, incident_id).state is not ActionState.PLANNED)
        action_id = only_action(app, incident_id).id
        # Bob approves in Slack after alice's request read the record and before it wrote.
        clock.armed = lambda: app.actions.decide(action_id, True, Actor("bob", "slack"))
        assert_error(decide(action_id, "approve", {"by": "alice"}), 409, "conflict", "is approved")
        record = only_action(app, incident_id)
        assert record.state is ActionState.APPROVED and record.approved_by == Actor("bob", "slack")
        run_queues(app)
        assert only_action(app, incident_id).state is ActionState.SUCCEEDED
        assert world.starts == 1
    finally:
        bootstrap.reset()


class _OutboxBusyOnce(Outbox):
    """The incident's store locked once, when armed: the next update (of the change named `only`,
    if given) fails with StoreBusy."""

    def __init__(self, outbox: Outbox, only: str = "") -> None:
        super().__init__(outbox.store, outbox.queue)
        self.armed = self.failed = False
        self.only = only

    def update(self, incident_id: str, change: Any, signal: Any = None) -> Any:
        if self.armed and not self.failed and (not self.only or change.__name__ == self.only):
            self.failed = True
            raise StoreBusy("incidents.sqlite3 stayed locked by another process for over 10 s")
        return super().update(incident_id, change, signal)


def test_an_approval_the_card_cannot_be_told_of_still_runs(
    acting: Callable[..., Services], world: PretendCache
) -> None:
    """Telling the card of the approval fails once: the approval stands and its run is still sent."""
    app = acting('{ action = "test.failover", mode = "approve", approval_minutes = 30, settle_minutes = 5 }')
    outbox = _OutboxBusyOnce(app.actions.outbox)
    app.actions.outbox = outbox
    incident_id = open_incident()
    run_queues(app, until=lambda: only_action(app, incident_id).state is not ActionState.PLANNED)
    outbox.armed = True

    assert decide(only_action(app, incident_id).id, "approve", {"by": "alice"}).status_code == 200
    run_queues(app, seconds=600, until=lambda: world.starts > 0)
    assert outbox.failed
    assert world.starts == 1


def test_an_escalation_the_store_could_not_take_is_paged_on_the_next_delivery(
    acting: Callable[..., Services], world: PretendCache, pager: FakePager
) -> None:
    """The action fails its check; the page it held is sent although the first escalation failed."""
    app = acting(ON_FAILURE)
    world.takes = False  # the reboot is taken, the primary never moves: the check fails
    outbox = _OutboxBusyOnce(app.actions.outbox, only="escalated")
    outbox.armed = True
    app.actions.outbox = outbox
    incident_id = open_incident()
    errors: list[Exception] = []
    run_queues(app, seconds=1800, errors=errors)  # the failed delivery is delivered again

    assert outbox.failed and [type(e).__name__ for e in errors] == ["StoreBusy"]
    assert only_action(app, incident_id).state is ActionState.FAILED
    assert triggers(pager)
    assert [line for line in timeline(app, incident_id) if line.startswith("Escalated")]
    assert "escalation_pending" not in only_action(app, incident_id).continuation
