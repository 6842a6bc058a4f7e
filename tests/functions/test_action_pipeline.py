"""The action pipeline end to end in-process: an alert in, the action planned, guarded, run, verified.

The registered functions are called as the host calls them, on the real SQLite store and embedded
queue, with the test's clock; the action is the pretend failover of `tests.action_kinds`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import bootstrap
from shared.bootstrap import Services
from shared.clock import iso
from shared.domain.actions import ActionState
from shared.errors import Transient
from shared.localhost.runtime import service_bus_message
from tests.action_kinds import PretendCache
from tests.factories import FakeClock
from tests.fakes import FakeChat, FakePager
from tests.functions.action_harness import (
    AUTO,
    CACHE,
    TRIGGERS,
    alert,
    only_action,
    open_incident,
    run_queues,
    services_for,
    timeline,
)
from tests.functions.harness import function, post


@pytest.fixture
def app(
    data_dir: Path, clock: FakeClock, world: PretendCache, pager: FakePager, chat: FakeChat
) -> Iterator[Services]:
    replacement = services_for(data_dir, clock, world, pager, chat, AUTO)
    bootstrap.reset(replacement)
    yield replacement
    bootstrap.reset()


def test_an_automatic_failover_runs_once_is_verified_and_settles(
    app: Services, world: PretendCache, clock: FakeClock
) -> None:
    incident_id = open_incident()
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert record.result == "recovered: no new signal for 5 min after the action"
    assert world.starts == 1 and world.primary == "node-1"
    assert [c[0] for c in world.calls] == ["precondition", "execute", "check", "check"]
    assert record.target == CACHE and record.attempts == 1 and record.rule == "test-redis-down"
    lines = [t for t in timeline(app, incident_id) if t.startswith("test.failover")]
    assert lines[0] == f"test.failover on {CACHE}: planned (auto) by automation (rule test-redis-down)"
    assert lines[1] == f"test.failover on {CACHE}: running by automation (rule test-redis-down): started"
    assert any("in progress: reboot of node-0 accepted" in line for line in lines)
    assert any("done and verified: primary moved node-0 → node-1" in line for line in lines)
    assert lines[-1].endswith(
        "succeeded by automation (rule test-redis-down): recovered: no new signal for 5 min after the action"
    )


def test_each_result_reaches_the_card_its_thread_and_pagerduty(
    app: Services, pager: FakePager, chat: FakeChat
) -> None:
    incident_id = open_incident()
    run_queues(app)
    found = app.store.get(incident_id)
    assert found is not None
    [state] = found.incident.action_states.values()
    assert state.startswith("test.failover on redis-amicis-ikea-prod: succeeded (auto) — recovered")
    card = chat.updates[-1]
    assert any("test.failover on redis-amicis-ikea-prod: succeeded" in str(b) for b in card.blocks)
    thread = [p.text for p in chat.posts if p.thread_ts]
    assert any("done and verified" in t for t in thread) and any(
        "succeeded by automation" in t for t in thread
    )
    summaries = [c[1] for c in pager.changes]
    assert any("done and verified" in s for s in summaries) and any("succeeded" in s for s in summaries)
    assert all(c[3]["incident"] == incident_id for c in pager.changes)


def test_a_resolution_while_the_action_ran_is_not_counted_as_its_success(
    app: Services, world: PretendCache
) -> None:
    # The alert resolves while the failover is being started, before it is done: it recovered
    # without the action, or the action is still to prove it helped.
    world.during_execute = lambda: post("alerts", alert(condition="Resolved"))
    incident_id = open_incident()
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED, record
    assert record.result == "recovered: no new signal for 5 min after the action"


def test_an_action_whose_incident_resolved_before_it_was_delivered_is_refused(
    app: Services, world: PretendCache, clock: FakeClock
) -> None:
    incident_id = open_incident()
    assert post("alerts", alert(condition="Resolved")).status_code == 202
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.REFUSED
    assert record.result == f"not started: the incident resolved at {iso(clock())} before it could start"
    assert world.starts == 0


def test_the_same_action_message_delivered_three_times_runs_once(app: Services, world: PretendCache) -> None:
    incident_id = open_incident()
    received = app.local_queue.receive("actions")
    assert received is not None
    for _ in range(3):
        function("run_action")(service_bus_message(received))
    app.local_queue.complete(received)
    run_queues(app)
    assert world.starts == 1
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED


def test_a_second_incident_on_the_same_cache_is_refused_by_the_cooldown(
    app: Services, world: PretendCache
) -> None:
    first = open_incident()
    run_queues(app)
    world.primary = "node-0"  # it failed back, and the alert comes again under another alert id
    post("alerts", alert(condition="Resolved"))
    second = open_incident(alert_id="2")
    assert second != first
    run_queues(app)
    assert world.starts == 1
    record = only_action(app, second)
    assert record.state is ActionState.REFUSED
    assert record.result.startswith(f"cooldown: test.failover ran on {CACHE} at ")


def test_a_429_from_the_start_call_is_retried_and_the_failover_starts_once(
    app: Services, world: PretendCache
) -> None:
    world.fail(
        "execute", Transient("429 Too Many Requests", 1, held=True), Transient("500 Internal Server Error")
    )
    incident_id = open_incident()
    run_queues(app)
    assert world.starts == 1
    assert [c[0] for c in world.calls][:4] == ["precondition", "execute", "execute", "execute"]
    assert only_action(app, incident_id).state is ActionState.SUCCEEDED


def test_a_precondition_that_finds_it_healed_skips(app: Services, world: PretendCache) -> None:
    world.primary = "node-2"
    incident_id = open_incident()
    run_queues(app)
    record = only_action(app, incident_id)
    assert (
        record.state is ActionState.SKIPPED and record.result == "not needed: the primary is node-2 already"
    )
    assert world.starts == 0


def test_an_unsafe_precondition_refuses_and_escalates(
    app: Services, world: PretendCache, pager: FakePager
) -> None:
    world.healthy_replica = False
    incident_id = open_incident()
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.REFUSED and record.result == "precondition: the replica is not healthy"
    assert any(t.startswith("Escalated: test.failover") for t in timeline(app, incident_id))
    assert world.starts == 0


def test_the_alert_firing_again_after_the_action_is_not_recovered(
    app: Services, world: PretendCache, clock: FakeClock, pager: FakePager
) -> None:
    world.polls_until_done = 0
    incident_id = open_incident()
    for queue, name in TRIGGERS.items():  # run the first steps only
        while (received := app.local_queue.receive(queue)) is not None:
            function(name)(service_bus_message(received))
            app.local_queue.complete(received)
    clock.advance(seconds=30)
    post("alerts", alert(fired=clock().isoformat().replace("+00:00", "Z"), alert_id="1"))
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.FAILED
    assert record.result.startswith("not recovered: the alert fired again at ")


def test_an_error_nobody_translated_fails_the_action_before_the_queue_gives_up_silently(
    app: Services, world: PretendCache, chat: FakeChat
) -> None:
    world.fail("check", *[RuntimeError("socket closed in the middle of a read")] * 5)
    incident_id = open_incident()
    for _ in range(10):  # deliver as the host does: an error abandons the message for redelivery
        for queue, name in TRIGGERS.items():
            while (received := app.local_queue.receive(queue)) is not None:
                try:
                    function(name)(service_bus_message(received))
                except RuntimeError:
                    app.local_queue.abandon(received)
                    continue
                app.local_queue.complete(received)
        assert isinstance(app.clock, FakeClock)
        app.clock.advance(seconds=31)  # past the queue's lock, so an abandoned message comes again
    record = only_action(app, incident_id)
    # DR_QUEUE_MAX_DELIVERY_COUNT is 3: the pipeline gives up on the 2nd error, while it can still say so.
    assert record.state is ActionState.FAILED
    assert record.result == "gave up after 2 errors: RuntimeError: socket closed in the middle of a read"
    [dead] = app.local_queue.dead_letters("actions")
    assert dead.reason == "ActionFailed" and "socket closed" in dead.description
    assert any("gave up after 2 errors" in t for t in timeline(app, incident_id))
    assert any("gave up after 2 errors" in p.text for p in chat.posts if p.thread_ts)
