"""Faults in-process: a worker that dies mid-action is taken over once its lease runs out, and two
workers on one queue never run two failovers on one cache."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

from shared.bootstrap import Services
from shared.domain.actions import ActionState
from shared.errors import LockLost, OutcomeUnknown, Transient
from shared.localhost.runtime import service_bus_message
from tests.action_kinds import PretendCache
from tests.factories import FakeClock
from tests.fakes import FakePager
from tests.functions.action_harness import (
    CACHE,
    actions_of,
    alert,
    automation,
    deliver,
    only_action,
    open_incident,
    run_queues,
    timeline,
    triggers,
)
from tests.functions.harness import function, post

Acting = Callable[..., Services]
LOCK_SECONDS = 5  # DR_QUEUE_LOCK_SECONDS: the pipeline's lease is twice that
LEASE = 2 * LOCK_SECONDS
RULE = "automation (rule test-redis-down)"


class WorkerKilled(Exception):
    """What the worker's death looks like from inside it: not a ResponderError, nothing translates it."""


def crash_and_take_over(app: Services, clock: FakeClock, incident_id: str) -> list[Exception]:
    """Deliver until the worker dies; its message comes again at once (abandoned), and the takeover
    waits for the lease of the worker that died."""
    errors: list[Exception] = []
    deliver(app, "actions", errors)
    assert [type(e) for e in errors] == [WorkerKilled]
    record = only_action(app, incident_id)
    assert (record.state, record.continuation["phase"]) == (ActionState.RUNNING, "starting")
    assert not any("took over" in t for t in timeline(app, incident_id)), "not while its lease runs"
    clock.advance(seconds=LEASE - 1)
    deliver(app, "actions")
    assert not any("took over" in t for t in timeline(app, incident_id)), "not while its lease runs"
    clock.advance(seconds=2)
    run_queues(app)
    return errors


def test_a_worker_dying_after_the_change_took_effect_is_taken_over_and_never_starts_it_again(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting(env={"DR_QUEUE_LOCK_SECONDS": str(LOCK_SECONDS)})

    def dies_after_the_change() -> None:
        world.primary = "node-1"  # the reboot went through…
        raise WorkerKilled("SIGKILL")  # …and the worker died before recording it

    world.during_execute = dies_after_the_change
    incident_id = open_incident()
    crash_and_take_over(app, clock, incident_id)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert world.starts == 1 and record.attempts == 1
    assert [c[0] for c in world.calls] == ["precondition", "execute", "precondition"]
    assert (
        f"test.failover on {CACHE}: took over from a worker that stopped: its change took effect "
        f"(the primary is node-1 already) ({RULE})"
    ) in timeline(app, incident_id)


def test_a_worker_dying_before_the_change_took_effect_is_taken_over_and_starts_it_once(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting(env={"DR_QUEUE_LOCK_SECONDS": str(LOCK_SECONDS)})
    world.fail("execute", WorkerKilled("SIGKILL"))  # claimed, then died before the call went out
    incident_id = open_incident()
    crash_and_take_over(app, clock, incident_id)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert world.starts == 1 and world.primary == "node-1"
    assert record.attempts == 2, "the takeover is a second attempt"
    assert [c[0] for c in world.calls][:4] == ["precondition", "execute", "precondition", "execute"]
    assert (
        f"test.failover on {CACHE}: took over from a worker that stopped while starting it; still needed: "
        f"starting again ({RULE})"
    ) in timeline(app, incident_id)


class Workers:
    """Two threads that each run `run_action` on the shared embedded queue, round by round: in each
    round both receive concurrently until nothing is due; between rounds the test moves the clock."""

    def __init__(self, app: Services) -> None:
        self.app = app
        self.round = threading.Barrier(3)
        self.done = threading.Barrier(3)
        self.lock = threading.Lock()
        self.busy = 0
        self.stopping = False
        self.handled: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._work, name=f"worker-{n}") for n in (1, 2)]

    def __enter__(self) -> Workers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping = True
        self.round.wait()
        for thread in self.threads:
            thread.join()

    def run_round(self) -> None:
        """Let both workers drain what is due now."""
        self.round.wait()
        self.done.wait()

    def _work(self) -> None:
        queue = self.app.local_queue
        while True:
            self.round.wait()
            if self.stopping:
                return
            while True:
                with self.lock:  # one receive at a time, so "nothing due, nobody busy" is the truth
                    received = queue.receive("actions")
                    if received is None and self.busy == 0:
                        break
                    self.busy += received is not None
                if received is None:
                    continue  # the other worker holds the session: ask again when it is done
                try:
                    function("run_action")(service_bus_message(received))
                    queue.complete(received)
                    name = threading.current_thread().name
                    self.handled[name] = self.handled.get(name, 0) + 1
                except BaseException as e:
                    self.errors.append(e)
                    queue.abandon(received)
                finally:
                    with self.lock:
                        self.busy -= 1
            self.done.wait()


def test_two_workers_two_incidents_on_one_cache_make_one_failover_the_second_refused_by_the_cooldown(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting('{ action = "test.failover", mode = "auto", settle_minutes = 1 }')
    first = open_incident(rule="redis-down")
    second = open_incident(rule="redis-down-replica", alert_id="2")
    assert first != second
    app.actions  # noqa: B018  # built before the threads share it
    with Workers(app) as workers:
        for _ in range(300):
            workers.run_round()
            for queue in ("pages", "notifications"):
                deliver(app, queue)
            if all(app.local_queue.next_due(q) is None for q in ("actions", "pages", "notifications")):
                break
            clock.advance(seconds=1)
    assert workers.errors == []
    assert sum(workers.handled.values()) > 2
    assert world.starts == 1
    assert only_action(app, first).state is ActionState.SUCCEEDED
    refused = only_action(app, second)
    assert refused.state is ActionState.REFUSED
    assert refused.result.startswith(f"cooldown: test.failover ran on {CACHE} at 2026-11-25T10:00:00.000Z (")


# --- starting again: a retry after the vendor said "later", and a takeover ----------------------


def _start_failed(app: Services, incident_id: str) -> Callable[[], bool]:
    def check() -> bool:
        records = actions_of(app, incident_id)
        return bool(records) and bool(records[0].continuation.get("start_failed"))

    return check


@pytest.fixture(params=["sqlite", "tables"])
def stores(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings for the action store: SQLite, or Table Storage on a real Azurite (its starts gate)."""
    if request.param == "sqlite":
        return {}
    azurite: str = request.getfixturevalue("azurite")
    return {"DR_TABLES_CONNECTION_STRING": azurite, "DR_TABLES_TABLE": f"t{uuid.uuid4().hex[:16]}"}


def test_a_pause_set_between_a_refused_start_and_its_retry_stops_the_retry(
    acting: Acting, world: PretendCache, stores: dict[str, str]
) -> None:
    app = acting(env=stores)
    world.fail("execute", Transient("503 Service Unavailable", 5))  # the vendor did not take the call
    incident_id = open_incident()
    run_queues(app, until=_start_failed(app, incident_id))
    assert automation({"paused": True, "by": "alice", "reason": "stop everything"}).status_code == 200
    run_queues(app)
    record = only_action(app, incident_id)
    assert world.starts == 0 and record.state is ActionState.FAILED
    assert record.result.startswith("stopped before starting it again: kill switch: automation is paused")


def test_a_takeover_after_a_crash_does_not_start_again_once_paused(
    acting: Acting, world: PretendCache, clock: FakeClock, stores: dict[str, str]
) -> None:
    app = acting(env={"DR_QUEUE_LOCK_SECONDS": str(LOCK_SECONDS), **stores})
    world.fail("execute", WorkerKilled("SIGKILL"))  # claimed, died before the call went out
    incident_id = open_incident()
    errors: list[Exception] = []
    deliver(app, "actions", errors)
    assert [type(e) for e in errors] == [WorkerKilled]
    assert automation({"paused": True, "by": "alice", "reason": "stop everything"}).status_code == 200
    clock.advance(seconds=LEASE + 1)
    run_queues(app)
    record = only_action(app, incident_id)
    assert world.starts == 0 and record.state is ActionState.FAILED
    assert "kill switch" in record.result


def test_a_worker_dying_inside_a_retried_start_is_taken_over_after_its_lease_and_precondition(
    acting: Acting, world: PretendCache
) -> None:
    app = acting(env={"DR_QUEUE_LOCK_SECONDS": str(LOCK_SECONDS)})
    world.fail("execute", Transient("503 Service Unavailable", 1))

    def dies_after_the_change() -> None:
        world.during_execute = None
        world.primary = "node-1"  # the failover went through ...
        raise WorkerKilled("SIGKILL")  # ... and the worker died before recording it

    world.during_execute = dies_after_the_change
    incident_id = open_incident()
    run_queues(app, errors=[])
    steps = [c[0] for c in world.calls]
    assert world.starts == 1, steps
    # The retry claimed the action again, so its death was a takeover: the lease, then the precondition.
    assert steps[:4] == ["precondition", "execute", "execute", "precondition"], steps
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED


def test_a_redelivery_while_a_retried_start_runs_waits_for_its_lease(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting(env={"DR_QUEUE_LOCK_SECONDS": str(LOCK_SECONDS)})
    world.fail("execute", Transient("503 Service Unavailable", 1))
    incident_id = open_incident()
    run_queues(app, until=_start_failed(app, incident_id))

    def slow_call() -> None:
        # The retried start is slow: its lock runs out and another worker gets the message meanwhile.
        world.during_execute = None
        clock.advance(seconds=LOCK_SECONDS + 1)
        deliver(app, "actions", [])

    world.during_execute = slow_call
    try:
        run_queues(app, errors=[])
    except LockLost:  # the first worker's settle finds its lock gone
        run_queues(app, errors=[])
    assert world.starts == 1 and only_action(app, incident_id).state is ActionState.SUCCEEDED


@pytest.mark.parametrize("after_the_call", [False, True])
def test_an_untranslated_error_from_the_start_is_counted_and_gives_up(
    acting: Acting, world: PretendCache, after_the_call: bool
) -> None:
    app = acting(env={"DR_QUEUE_LOCK_SECONDS": str(LOCK_SECONDS)})
    if after_the_call:
        world.takes = False  # the failover was accepted but is not visible yet ...

        def unreadable_answer() -> None:
            raise RuntimeError("socket closed in the middle of the answer")  # ... after the call went out

        world.during_execute = unreadable_answer
    else:
        world.fail("execute", *[RuntimeError("socket closed before the answer")] * 100)
    incident_id = open_incident()
    run_queues(app, seconds=300, errors=[])
    record = only_action(app, incident_id)
    # max_errors is one short of the queue's delivery count (DR_QUEUE_MAX_DELIVERY_COUNT=3 here).
    assert record.state is ActionState.FAILED, (record.state, record.continuation)
    assert record.result.startswith("gave up after 2 errors: RuntimeError: socket closed")
    assert sum(1 for c in world.calls if c[0] == "execute") == 2
    assert [d.reason for d in app.local_queue.dead_letters("actions")] == ["ActionFailed"]


def _timed(app: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, step: str) -> list[float]:
    """Seconds since now at which the pretend failover's `step` ("precondition", "execute") is called."""
    kind = app.registry.get("test.failover")
    start, seen = clock(), []
    original = getattr(kind, step)

    def timed(*args: Any) -> Any:
        seen.append((clock() - start).total_seconds())
        return original(*args)

    monkeypatch.setattr(kind, step, timed)
    return seen


def test_a_vendor_answering_503_is_retried_with_doubling_backoff_until_the_actions_time_out(
    acting: Acting, world: PretendCache, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = acting(env={"DR_RETRY_BASE_SECONDS": "2", "DR_RETRY_MAX_SECONDS": "120"})
    tries = _timed(app, clock, monkeypatch, "precondition")
    world.fail("precondition", *[Transient("ARM answered 503 ServiceUnavailable: -") for _ in range(100)])
    incident_id = open_incident()
    run_queues(app, seconds=3600)
    gaps = [b - a for a, b in pairwise(tries)]
    assert 1 <= gaps[0] <= 4 and gaps[4] >= 20, f"doubling from 2 s (jittered): {gaps}"
    assert max(gaps) <= 120 * 1.2 + 1, "never past DR_RETRY_MAX_SECONDS (jittered)"
    record = only_action(app, incident_id)
    assert record.state is ActionState.REFUSED, record
    assert record.result.startswith('gave up: the vendor kept answering "later" since 2026-11-25T10:00:00')
    assert tries[-1] >= 10 * 60, "bounded by the action's time-out (10 min), not by a count of tries"
    assert len(tries) < 20 and world.starts == 0


def test_a_429s_retry_after_is_honoured_and_a_retry_after_of_zero_is_backoff_not_a_spin(
    acting: Acting, world: PretendCache, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = acting(env={"DR_RETRY_BASE_SECONDS": "2", "DR_RETRY_MAX_SECONDS": "60"})
    checks = _timed(app, clock, monkeypatch, "precondition")
    starts = _timed(app, clock, monkeypatch, "execute")
    world.fail("precondition", Transient("ARM answered 429 TooManyRequests: -", 30, held=True))
    world.fail("execute", *[Transient("ARM answered 503 ServiceUnavailable: -", 0) for _ in range(3)])
    incident_id = open_incident()
    run_queues(app, seconds=900)
    assert checks[1] - checks[0] >= 30, "the 429's Retry-After"
    gaps = [b - a for a, b in pairwise(starts)]
    assert len(starts) == 4 and all(gap >= 1 for gap in gaps) and gaps[2] > gaps[0], gaps
    assert world.starts == 1 and only_action(app, incident_id).state is ActionState.SUCCEEDED


# --- a start whose answer was lost: never sent again blind ------------------------------------------

LOST = OutcomeUnknown("ARM answered 502 BadGateway: - (it may have been taken)")
LOST_LINE = (
    f"test.failover on {CACHE}: the answer to the start was lost (ARM answered 502 BadGateway: - (it may "
    f"have been taken)); looking again in 120 s before doing anything ({RULE})"
)


def test_a_start_whose_answer_was_lost_waits_then_finds_it_took_effect_and_never_starts_again(
    acting: Acting, world: PretendCache, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = acting()
    asked = _timed(app, clock, monkeypatch, "precondition")

    def taken_and_lost() -> None:
        world.during_execute = None
        world.primary = "node-1"  # the failover went through ...
        raise LOST  # ... and its answer did not come back

    world.during_execute = taken_and_lost
    incident_id = open_incident()
    run_queues(app)

    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert world.starts == 1
    assert [c[0] for c in world.calls] == ["precondition", "execute", "precondition"]
    assert asked[1] - asked[0] >= 120, f"looked again only after lost_answer_seconds: {asked}"
    lines = timeline(app, incident_id)
    assert LOST_LINE in lines
    assert (
        f"test.failover on {CACHE}: looked again after the start's answer was lost: its change took "
        f"effect (the primary is node-1 already) ({RULE})"
    ) in lines


def test_a_start_whose_answer_was_lost_and_that_shows_no_sign_is_started_once_more_after_the_wait(
    acting: Acting, world: PretendCache
) -> None:
    app = acting()
    world.fail("execute", LOST)  # a gateway's 502: the change was not made
    incident_id = open_incident()
    run_queues(app)

    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert world.starts == 1 and record.attempts == 2  # the 502 made no change: one start, two tries
    assert [c[0] for c in world.calls][:4] == ["precondition", "execute", "precondition", "execute"]
    assert (
        f"test.failover on {CACHE}: looked again after the start's answer was lost: no sign that it took "
        f"effect (replica node-1 healthy); starting again ({RULE})"
    ) in timeline(app, incident_id)


def test_a_start_whose_answer_was_lost_is_failed_when_the_precondition_now_refuses(
    acting: Acting, world: PretendCache
) -> None:
    app = acting()

    def lost_and_unhealthy() -> None:
        world.during_execute = None
        world.healthy_replica = False
        raise LOST

    world.during_execute = lost_and_unhealthy
    world.takes = False
    incident_id = open_incident()
    run_queues(app)

    record = only_action(app, incident_id)
    assert record.state is ActionState.FAILED
    assert record.result == (
        "looked again after the start's answer was lost; precondition: the replica is not healthy"
    )
    assert world.starts == 1


def test_answers_lost_without_end_give_up_at_the_actions_time_out_and_say_it_may_have_taken_effect(
    acting: Acting, world: PretendCache, pager: FakePager
) -> None:
    app = acting()
    world.fail("execute", *[LOST] * 100)
    incident_id = open_incident()
    run_queues(app, seconds=3600)

    record = only_action(app, incident_id)
    assert record.state is ActionState.FAILED, record
    assert record.result.startswith("gave up starting it: answers lost or refused since 2026-11-25T10:00:00")
    assert f"the last one lost, so it may have taken effect: look at {CACHE}" in record.result
    executes = sum(1 for c in world.calls if c[0] == "execute")
    assert 4 <= executes <= 7, f"one try per lost_answer_seconds within the 10 min time-out: {executes}"
    assert triggers(pager), "a person is paged"


def test_a_delivery_during_the_wait_after_a_lost_answer_does_not_look_early(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting()
    world.fail("execute", LOST)
    incident_id = open_incident()
    deliver(app, "actions")  # planned and started: the answer lost
    clock.advance(seconds=70)  # past the lease (60 s), short of lost_answer_seconds (120 s)

    app.actions.advance(only_action(app, incident_id).id)  # a stray redelivery meanwhile

    assert [c[0] for c in world.calls] == ["precondition", "execute"]
    run_queues(app)
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED and world.starts == 1


def test_a_worker_dying_inside_a_start_waits_as_long_as_a_lost_answer_before_anyone_looks(
    acting: Acting, world: PretendCache, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record cannot say whether the call went out (the write that would say "lost" may be the
    one that failed): a redelivery past the lease but short of lost_answer_seconds does not look."""
    app = acting()
    asked = _timed(app, clock, monkeypatch, "precondition")
    world.fail("execute", WorkerKilled("SIGKILL"))
    incident_id = open_incident()
    deliver(app, "actions", [])  # planned, claimed, and the worker died inside execute
    clock.advance(seconds=70)  # past the lease (60 s), short of lost_answer_seconds (120 s)

    app.actions.advance(only_action(app, incident_id).id)  # its message, delivered again

    assert [c[0] for c in world.calls] == ["precondition", "execute"]
    run_queues(app)
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED and world.starts == 1
    assert asked[1] - asked[0] >= 120, f"looked again only after lost_answer_seconds: {asked}"


def test_a_start_whose_answer_was_lost_is_not_sent_again_once_its_incident_resolved(
    acting: Acting, world: PretendCache, clock: FakeClock
) -> None:
    app = acting()
    world.fail("execute", LOST)  # taken or not, nobody knows; the precondition will see no sign
    incident_id = open_incident()
    deliver(app, "actions")
    answer = post("alerts", alert(condition="Resolved"))  # the alert clears during the wait
    assert answer.status_code == 202, answer.get_body()
    run_queues(app)

    record = only_action(app, incident_id)
    assert [c[0] for c in world.calls].count("execute") == 1, world.calls
    assert record.state is ActionState.SUCCEEDED, record
    assert any("resolved at" in t and "not started again" in t for t in timeline(app, incident_id))
