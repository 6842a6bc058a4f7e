"""Wakes lost between a record's write and its send: the sweep (`sweep_actions`) sends them again.

Each write of an action that is followed by its next message (the run after an approval, the
expiry of a request, the next check) records that message in the same write. Here the message is
lost as a worker's death or a Service Bus outage loses it, at the pipeline's queue: the record is
written, the send raises (or nothing is sent), and the queue's redeliveries, if any, find nothing
more to send. The sweep, past its margin, sends it again under the same id; the action then goes
on exactly once. The registered functions are called as the host calls them, on the real SQLite
store and embedded queue, with the test's clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from shared.adapters.azure_actions import azure_kinds
from shared.bootstrap import Services
from shared.domain.actions import ActionState, ActionStep
from shared.errors import StoreBusy, Transient
from shared.localhost.ncrontab import Schedule
from shared.localhost.runtime import service_bus_message
from shared.outbox import Outbox
from shared.ports import DeadLetter, EffectQueue, QueueMessage
from tests.action_kinds import PretendCache
from tests.factories import FakeClock
from tests.fakes import FakeChat, FakePager
from tests.functions.action_harness import (
    CACHE,
    TRIGGERS,
    actions_of,
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
from tests.functions.harness import function, json_body, raw_message, registered
from tests.stubs.arm import ArmStub, StubCredential
from tests.stubs.arm_services import azure_cache, serve_azure_cache

Acting = Callable[..., Services]
GRACE = 120  # PipelineSettings.wake_grace_seconds
APPROVE = '{ action = "test.failover", mode = "approve", approval_minutes = 30, settle_minutes = 5 }'
EXPIRING = '{ action = "test.failover", mode = "approve", approval_minutes = 2, settle_minutes = 5 }'
# The page held until the action fails: what reaches the pager is the action's own escalation.
ON_FAILURE = '{ action = "test.failover", mode = "auto", page = "on-failure", settle_minutes = 5 }'
RULE = "automation (rule test-redis-down)"


class WorkerKilled(Exception):
    """The worker's death, as seen from inside it: the write is done, the send never happens."""


class LosingQueue:
    """The pipeline's queue, losing the next `times` sends of one step (of one sequence, if given):
    each raises `error`, or, with none, is dropped silently (the sender died in between)."""

    def __init__(
        self,
        queue: EffectQueue,
        step: str,
        *,
        seq: int | None = None,
        error: Exception | None = None,
        times: int = 1,
    ) -> None:
        self.queue, self.step, self.seq, self.error, self.times = queue, step, seq, error, times
        self.lost: list[dict[str, Any]] = []

    def send(self, messages: Sequence[QueueMessage]) -> None:
        kept = []
        for message in messages:
            body = json.loads(message.body)
            if self.times and body.get("step") == self.step and self.seq in (None, body.get("seq")):
                self.times -= 1
                self.lost.append(body)
                if self.error is not None:
                    raise self.error
                continue
            kept.append(message)
        if kept:
            self.queue.send(kept)

    def dead_letter_message(self, message: QueueMessage, reason: str, description: str) -> None:
        self.queue.dead_letter_message(message, reason, description)

    def dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        return self.queue.dead_letters(queue, limit)


def lose(app: Services, step: str, **how: Any) -> LosingQueue:
    """Make the action pipeline's queue lose the next send of `step`."""
    losing = LosingQueue(app.actions.queue, step, **how)
    app.actions.queue = losing
    return losing


def _sweep_schedule() -> Schedule:
    [sweep] = [fn for fn in registered() if fn.get_function_name() == "sweep_actions"]
    return Schedule(sweep.get_trigger().schedule)


def sweep() -> None:
    """The timer fires (as the host calls it)."""
    function("sweep_actions")(TimerRequest(past_due=False))


def run_with_sweeps(
    app: Services,
    seconds: float,
    until: Callable[[], bool] | None = None,
    errors: list[Exception] | None = None,
) -> None:
    """Deliver whatever comes due and fire the sweep on its NCRONTAB schedule, a second at a time."""
    clock = app.clock
    assert isinstance(clock, FakeClock)
    schedule = _sweep_schedule()
    for _ in range(int(seconds)):
        if schedule.matches(clock.now.replace(microsecond=0)):
            sweep()
        for queue in TRIGGERS:
            deliver(app, queue, errors)
        if until is not None and until():
            return
        clock.advance(seconds=1)


def records(app: Services) -> list[tuple[str, int, str]]:
    """Every action record's id, version and state: what a sweep must leave alone."""
    found = []
    for record in app.action_store.list_actions(None, None, 100):
        versioned = app.action_store.get_action(record.id)
        assert versioned is not None
        found.append((record.id, versioned.version, versioned.record.state.value))
    return found


def sent_again(app: Services, incident_id: str) -> list[str]:
    return [t for t in timeline(app, incident_id) if "has not come: sent by the sweep" in t]


def awaiting(acting: Acting, action: str = APPROVE) -> tuple[Services, str, str]:
    """A sev3 incident (it pages only when the action escalates) and its request, awaiting approval."""
    app = acting(action, severity="sev3")
    incident_id = open_incident()
    run_queues(app, until=lambda: only_action(app, incident_id).state is not ActionState.PLANNED)
    record = only_action(app, incident_id)
    assert record.state is ActionState.AWAITING_APPROVAL, record
    return app, incident_id, record.id


# ---- an approval's run -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [Transient("actions: Service Bus unavailable (ServiceBusConnectionError)"), None],
    ids=["send-failed", "sender-died"],
)
def test_an_approval_whose_run_was_lost_runs_once_after_the_sweep(
    acting: Acting, world: PretendCache, clock: FakeClock, error: Exception | None
) -> None:
    app, incident_id, action_id = awaiting(acting)
    losing = lose(app, "run", error=error)

    answer = decide(action_id, "approve", {"by": "alice"})
    assert answer.status_code == 200, answer.get_body()  # the approval stands: its run is the sweep's
    assert json_body(answer)["state"] == "approved"
    assert [m["step"] for m in losing.lost] == ["run"]
    run_queues(app, seconds=GRACE)
    assert only_action(app, incident_id).state is ActionState.APPROVED, "nothing else wakes it"
    assert world.starts == 0

    run_with_sweeps(app, seconds=1200, until=lambda: only_action(app, incident_id).state.final)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert world.starts == 1 and world.primary == "node-1"
    assert [c[0] for c in world.calls].count("execute") == 1
    [line] = sent_again(app, incident_id)
    assert line.startswith(f"test.failover on {CACHE}: its run message (seq 0), due at 2026-11-25T10:00:")
    assert line.endswith(f", has not come: sent by the sweep (it is approved) ({RULE})")


def test_an_approved_azure_cache_reboot_whose_run_was_lost_reaches_arm_once(
    data_dir: Path, clock: FakeClock, pager: FakePager, chat: FakeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on the real redis.failover and the ARM stub: one forceReboot, after the sweep."""
    with ArmStub() as arm:
        arm.announce(monkeypatch)
        serve_azure_cache(arm)
        azure_cache(arm, CACHE)
        kinds = azure_kinds(arm.url, StubCredential(), check_seconds=1)
        action = '{ action = "redis.failover", mode = "approve", settle_minutes = 5 }'
        app = use(services_for(data_dir, clock, PretendCache(), pager, chat, action, kinds=kinds))
        incident_id = open_incident()
        run_queues(app, until=lambda: only_action(app, incident_id).state is not ActionState.PLANNED)
        lose(app, "run")  # the sender died after writing the approval
        assert decide(only_action(app, incident_id).id, "approve", {"by": "alice"}).status_code == 200
        run_queues(app, seconds=GRACE)
        assert arm.requests_to(f"{CACHE}/forceReboot", "POST") == []

        run_with_sweeps(app, seconds=1200, until=lambda: only_action(app, incident_id).state.final)
        record = only_action(app, incident_id)
        assert record.state is ActionState.SUCCEEDED, (record.state, record.result)
        assert len(arm.requests_to(f"{CACHE}/forceReboot", "POST")) == 1


def test_a_run_that_is_only_late_is_sent_again_under_its_id_and_dropped_as_a_duplicate(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    """The queue was backed up past the margin: the run the approval sent is still there. The sweep
    sends it again with the same message id, which the queue drops; it runs once."""
    app, incident_id, action_id = awaiting(acting)
    assert decide(action_id, "approve", {"by": "alice"}).status_code == 200
    queued = app.local_queue.active_count("actions")
    clock.advance(seconds=GRACE + 10)
    sweep()
    assert app.local_queue.active_count("actions") == queued, "dropped as the duplicate it is"
    assert len(sent_again(app, incident_id)) == 1
    run_with_sweeps(app, seconds=1200, until=lambda: only_action(app, incident_id).state.final)
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED
    assert world.starts == 1


# ---- an operating action's check ---------------------------------------------------------------


@pytest.mark.parametrize("finishes", [True, False], ids=["then-done", "never-done"])
def test_an_operating_action_whose_check_was_lost_is_checked_again_and_times_out_if_never_done(
    acting: Acting, world: PretendCache, pager: FakePager, clock: FakeClock, finishes: bool
) -> None:
    """Service Bus refuses the next check's send on every delivery of the check before it, until
    the queue dead-letters that one: nothing is left on the queue to check the action."""
    app = acting(ON_FAILURE)
    world.polls_until_done = 5 if finishes else 10_000
    world.check_after = 1  # a check a second, so that time passes while it is pending
    # Service Bus refuses every check's send through the three deliveries (DR_QUEUE_MAX_DELIVERY_COUNT)
    # of the message that sends it: each delivery checks, writes, and fails to send the next check.
    lose(app, "check", error=Transient("actions: Service Bus unavailable"), times=3)
    incident_id = open_incident()
    errors: list[Exception] = []
    run_queues(app, seconds=300, errors=errors)
    assert [type(e) for e in errors] == [Transient] * 3, "the check's deliveries, then its dead letter"
    record = only_action(app, incident_id)
    assert (record.state, record.continuation["phase"]) == (ActionState.RUNNING, "operating")
    assert app.local_queue.active_count("actions") == 0, "nothing is left to wake it"
    checks = [c[0] for c in world.calls].count("check")

    app.actions.queue = app.queue  # Service Bus is back
    run_with_sweeps(app, seconds=1800, until=lambda: only_action(app, incident_id).state.final)
    record = only_action(app, incident_id)
    assert [c[0] for c in world.calls].count("check") > checks, "checked again"
    assert world.starts == 1
    assert len(sent_again(app, incident_id)) == 1
    if finishes:
        assert record.state is ActionState.SUCCEEDED, record
        assert triggers(pager) == []
    else:
        assert (record.state, record.result) == (ActionState.FAILED, "timed out: not done after 10 min")
        assert triggers(pager) == [incident_id]
        assert f"Escalated: test.failover on {CACHE}: timed out: not done after 10 min" in timeline(
            app, incident_id
        )


# ---- a claim whose worker died, and whose message is gone too ---------------------------------


def test_a_start_whose_worker_died_and_whose_message_was_dead_lettered_is_taken_over_once(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    """The worker dies inside execute, before the call went out; each delivery again finds the claim
    within its lease and dies sending its look for later, until the queue dead-letters the message.
    The claim's own wake (the takeover look after the lease) is what the sweep sends."""
    app = acting(env={"DR_QUEUE_LOCK_SECONDS": "5"})  # a lease of 10 s
    world.fail("execute", WorkerKilled("SIGKILL"))
    losing = lose(app, "check", error=WorkerKilled("SIGKILL"), times=2)
    incident_id = open_incident()
    errors: list[Exception] = []
    run_queues(app, seconds=60, errors=errors)
    assert [type(e) for e in errors] == [WorkerKilled] * 3 and len(losing.lost) == 2
    record = only_action(app, incident_id)
    assert (record.state, record.continuation["phase"]) == (ActionState.RUNNING, "starting")
    assert app.local_queue.active_count("actions") == 0, "nothing is left to take it over"

    run_with_sweeps(app, seconds=600, until=lambda: only_action(app, incident_id).state.final)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert world.starts == 1 and record.attempts == 2, "started once, by the takeover"
    assert len(sent_again(app, incident_id)) == 1
    assert any(
        "took over from a worker that stopped while starting it" in t for t in timeline(app, incident_id)
    )


# ---- a request's expiry --------------------------------------------------------------------------


def test_a_request_whose_expiry_wake_was_lost_expires_and_pages(
    acting: Acting, world: PretendCache, pager: FakePager, clock: FakeClock
) -> None:
    """The worker dies after writing "awaiting approval", before sending its expiry; the queue
    delivers its message again, and that delivery finds the request waiting: nothing to send."""
    app = acting(EXPIRING, severity="sev3")  # no page until the action escalates
    losing = lose(app, "expire", error=WorkerKilled("SIGKILL"))
    incident_id = open_incident()
    errors: list[Exception] = []
    run_queues(app, seconds=1, errors=errors)
    assert [type(e) for e in errors] == [WorkerKilled] and [m["step"] for m in losing.lost] == ["expire"]
    record = only_action(app, incident_id)
    assert record.state is ActionState.AWAITING_APPROVAL and record.expires_at == "2026-11-25T10:02:00.000Z"
    run_queues(app, seconds=600)
    assert only_action(app, incident_id).state is ActionState.AWAITING_APPROVAL, "it never expires"
    assert triggers(pager) == []

    run_with_sweeps(app, seconds=600, until=lambda: only_action(app, incident_id).state.final)
    record = only_action(app, incident_id)
    assert record.state is ActionState.EXPIRED, record
    run_queues(app)  # the page
    assert triggers(pager) == [incident_id], "the escalation pages"
    assert f"Escalated: test.failover on {CACHE}: approval expired (raised to sev2)" in timeline(
        app, incident_id
    )
    assert world.starts == 0


# ---- a denial's page -------------------------------------------------------------------------------


class _OutboxBusyOnce(Outbox):
    """The incident's store locked once, for the escalation's update."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__(outbox.store, outbox.queue)
        self.failed = False

    def update(self, incident_id: str, change: Any, signal: Any = None) -> Any:
        if not self.failed and change.__name__ == "escalated":
            self.failed = True
            raise StoreBusy("incidents.sqlite3 stayed locked by another process for over 10 s")
        return super().update(incident_id, change, signal)


def test_a_denial_whose_escalation_failed_is_paged_once_by_the_sweep(
    acting: Acting, world: PretendCache, pager: FakePager, clock: FakeClock
) -> None:
    app, incident_id, action_id = awaiting(acting)
    outbox = _OutboxBusyOnce(app.actions.outbox)
    app.actions.outbox = outbox

    answer = decide(action_id, "deny", {"by": "bob"})
    assert answer.status_code == 200, answer.get_body()  # the denial stands; its page is pending
    assert outbox.failed and json_body(answer)["state"] == "denied"
    assert "escalation_pending" in only_action(app, incident_id).continuation
    assert triggers(pager) == []
    run_with_sweeps(app, seconds=GRACE - 5)
    assert triggers(pager) == [], "not before the margin"

    run_with_sweeps(app, seconds=3600)  # past the request's own expiry wake, too
    assert triggers(pager) == [incident_id], "paged once"
    escalated = [t for t in timeline(app, incident_id) if t.startswith("Escalated")]
    assert escalated == [f"Escalated: test.failover on {CACHE} was denied by bob via api (raised to sev2)"]
    record = only_action(app, incident_id)
    assert record.state is ActionState.DENIED
    assert "escalation_pending" not in record.continuation and record.wake_at == ""
    assert world.starts == 0


def test_a_lapsed_approval_whose_escalation_failed_is_paged_on_the_next_delivery(
    acting: Acting, world: PretendCache, pager: FakePager, clock: FakeClock
) -> None:
    """The approved start cannot go ahead within approval_minutes and lapses; paging for it fails
    once. The delivery that failed comes again and finds the page pending (it was lost before)."""
    app, incident_id, action_id = awaiting(acting, EXPIRING)
    outbox = _OutboxBusyOnce(app.actions.outbox)
    app.actions.outbox = outbox
    assert decide(action_id, "approve", {"by": "alice"}).status_code == 200
    world.fail("precondition", *[Transient("429 Too Many Requests", 60) for _ in range(3)])
    errors: list[Exception] = []
    run_with_sweeps(app, seconds=600, errors=errors)
    assert outbox.failed and [type(e) for e in errors] == [StoreBusy]
    record = only_action(app, incident_id)
    assert record.state is ActionState.REFUSED and record.result.startswith("lapsed: approved by alice")
    assert triggers(pager) == [incident_id]
    assert len([t for t in timeline(app, incident_id) if t.startswith("Escalated")]) == 1
    assert world.starts == 0


# ---- nothing lost ----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [APPROVE, ON_FAILURE], ids=["approved", "auto"])
def test_a_sweep_when_nothing_was_lost_sends_nothing_and_changes_no_record(
    acting: Acting, world: PretendCache, clock: FakeClock, policy: str
) -> None:
    app = acting(policy)
    incident_id = open_incident()
    schedule = _sweep_schedule()
    swept = 0

    def quiet_sweep() -> None:
        nonlocal swept
        before, queued = records(app), app.local_queue.active_count("actions")
        sweep()
        swept += 1
        assert (records(app), app.local_queue.active_count("actions")) == (before, queued)

    for _ in range(1800):
        found = actions_of(app, incident_id)
        state = found[0].state if found else None
        if state is ActionState.AWAITING_APPROVAL and clock.now.second == 30:
            assert decide(found[0].id, "approve", {"by": "alice"}).status_code == 200
        if schedule.matches(clock.now.replace(microsecond=0)):
            quiet_sweep()
        if state is not None and state.final:
            break
        for queue in TRIGGERS:
            deliver(app, queue)
        clock.advance(seconds=1)
    clock.advance(hours=2)
    quiet_sweep()
    assert swept > 10
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED
    assert world.starts == 1
    assert sent_again(app, incident_id) == []


# ---- an extra delivery, at each state --------------------------------------------------------------


def _extra(app: Services, incident_id: str, step: str) -> None:
    """One more delivery of `step` for the action (a resend that came after the queue forgot the id)."""
    record = only_action(app, incident_id)
    message = ActionStep(record.id, step, record.target, 987_654)
    function("run_action")(raw_message(json.dumps(message.to_dict()).encode(), message.message_id))


def _deliver_one(app: Services) -> bool:
    """Deliver the next message due on the actions queue, if any (one at a time: each state shows)."""
    received = app.local_queue.receive("actions")
    if received is None:
        for queue in TRIGGERS:
            deliver(app, queue)
        return False
    function("run_action")(service_bus_message(received))
    app.local_queue.complete(received)
    return True


@pytest.mark.parametrize("step", ["run", "check", "expire"])
def test_an_extra_delivery_at_any_state_only_reads_the_record_again(
    acting: Acting, world: PretendCache, clock: FakeClock, step: str
) -> None:
    app, incident_id, action_id = awaiting(acting)
    world.polls_until_done = 3
    _extra(app, incident_id, step)  # before the expiry: still waiting
    assert only_action(app, incident_id).state is ActionState.AWAITING_APPROVAL
    assert world.starts == 0
    assert decide(action_id, "approve", {"by": "alice"}).status_code == 200
    seen = set()
    for _ in range(5000):
        record = only_action(app, incident_id)
        phase = (record.state.value, str(record.continuation.get("phase", "")))
        if phase not in seen:  # once in each state and phase: approved, operating, settling, final
            seen.add(phase)
            _extra(app, incident_id, step)
        if record.state.final:
            break
        if not _deliver_one(app):
            clock.advance(seconds=1)
    assert {("approved", ""), ("running", "operating"), ("running", "settling")} <= seen, seen
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED
    assert world.starts == 1 and [c[0] for c in world.calls].count("execute") == 1
