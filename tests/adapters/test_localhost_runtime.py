"""The local host's queue pump settles messages as the Functions host would, and survives lost locks."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from azure.functions import ServiceBusMessage

from shared import cli
from shared.adapters.sqlite_queue import SqliteQueue
from shared.errors import PoisonMessage
from shared.localhost import priority, runtime, server
from shared.localhost.asgi import FunctionsHttpHost
from shared.localhost.drain import InboxDrain
from shared.localhost.inbox import Inbox
from shared.localhost.runtime import BatchPump, LockRenewer, QueuePump
from shared.localhost.server import function_key
from shared.ports import QueueMessage
from tests.factories import FakeClock
from tests.functions.harness import registered


def _one(queue: SqliteQueue) -> None:
    queue.send([QueueMessage(queue="q", body=b"{}", message_id="m1", session_id="s1")])


def test_a_poison_message_is_dead_lettered_at_once_with_its_reason(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    _one(queue)

    def handler(message: object) -> None:
        raise PoisonMessage("not an effect message: bad")

    pump = QueuePump(queue, "q", handler, threading.Event())
    received = queue.receive("q")
    assert received is not None
    pump.deliver(received)
    (dead,) = queue.dead_letters("q")
    assert (dead.reason, dead.description, dead.delivery_count) == (
        "PoisonMessage",
        "not an effect message: bad",
        1,
    )


def test_a_failure_returns_the_message_for_another_delivery(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    _one(queue)

    def handler(message: object) -> None:
        raise ConnectionError("down")

    pump = QueuePump(queue, "q", handler, threading.Event())
    first = queue.receive("q")
    assert first is not None
    pump.deliver(first)
    again = queue.receive("q")
    assert again is not None and again.delivery_count == 2


def test_a_lock_lost_while_the_function_ran_does_not_end_the_pump(tmp_path: Path) -> None:
    clock = FakeClock()
    queue = SqliteQueue(tmp_path / "q.db", lock_duration=1.0, clock=clock)
    other = SqliteQueue(tmp_path / "q.db", lock_duration=1.0, clock=clock)
    _one(queue)

    def slow(message: object) -> None:
        clock.advance(5)  # the lock expires and another process takes the message
        taken = other.receive("q")
        assert taken is not None
        other.complete(taken)

    pump = QueuePump(queue, "q", slow, threading.Event())
    received = queue.receive("q")
    assert received is not None
    pump.deliver(received)  # completing with the stale lock: logged, not raised
    assert queue.active_count("q") == 0


def test_the_function_key_file_is_made_once_private_and_never_empty(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = function_key(data, None)
    assert len(key) >= 20 and function_key(data, None) == key
    assert (data / "function-key").stat().st_mode & 0o777 == 0o600
    assert function_key(data, "given") == "given"


def test_a_made_key_never_begins_with_a_dash_so_it_can_be_passed_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = iter(["-looks-like-an-option", "k3y-fine"])
    monkeypatch.setattr(server.secrets, "token_urlsafe", lambda n: next(drawn))
    assert function_key(tmp_path / "data", None) == "k3y-fine"
    # And one given with "=" is taken whatever it begins with (the benches pass theirs so).
    args = cli._parser().parse_args(["serve", "--function-key=-k3y"])
    assert args.function_key == "-k3y"


def test_the_local_host_refuses_to_run_without_a_key() -> None:
    with pytest.raises(ValueError, match="function key is required"):
        FunctionsHttpHost([], "")


def _drain(
    queue: SqliteQueue, renewer: LockRenewer, pumps: Sequence[QueuePump], stop: threading.Event
) -> None:
    """Run the renewer and the pumps until the queue is empty (10 s at most), then stop them."""
    renewer.start()
    for pump in pumps:
        pump.start()
    try:
        deadline = time.monotonic() + 10
        while queue.active_count("q") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for pump in pumps:
            pump.join(5)


def test_a_function_slower_than_the_lock_keeps_its_message_and_is_not_run_twice(tmp_path: Path) -> None:
    """As the Functions host renews locks (maxAutoLockRenewalDuration), so does the local one."""
    queue = SqliteQueue(tmp_path / "q.db", lock_duration=1.0)
    _one(queue)
    stop = threading.Event()
    renewer = LockRenewer(queue, stop)
    calls: list[str] = []

    def slow(message: ServiceBusMessage) -> None:
        calls.append(message.message_id or "")
        time.sleep(2.5)  # two and a half lock durations

    pumps = [QueuePump(queue, "q", slow, stop, renewer) for _ in range(2)]
    _drain(queue, renewer, pumps, stop)
    assert calls == ["m1"], "delivered again while its function still ran"
    assert queue.active_count("q") == 0 and queue.dead_letters("q") == []


def test_renewal_stops_at_the_hosts_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung function keeps its message only so long (the host's function time-out is the same)."""
    monkeypatch.setattr(runtime, "MAX_LOCK_RENEWAL_SECONDS", 1.5)
    queue = SqliteQueue(tmp_path / "q.db", lock_duration=1.0)
    _one(queue)
    stop = threading.Event()
    renewer = LockRenewer(queue, stop)
    renewer.start()
    received = queue.receive("q")
    assert received is not None
    try:
        with renewer.holding([received]):
            time.sleep(1.3)  # past the first lock's end: renewed at half of it
            assert queue.receive("q") is None
            time.sleep(1.7)  # past the limit and the last renewal's lock
            again = queue.receive("q")
    finally:
        stop.set()
    assert again is not None and again.delivery_count == 2


def test_a_slow_batch_keeps_its_session_and_is_not_folded_twice(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db", lock_duration=1.0)
    queue.send([QueueMessage(queue="q", body=b"{}", message_id=f"m{n}", session_id="s1") for n in range(3)])
    stop = threading.Event()
    renewer = LockRenewer(queue, stop)
    batches: list[list[str]] = []

    def slow(messages: list[ServiceBusMessage]) -> None:
        batches.append([m.message_id or "" for m in messages])
        time.sleep(2.5)

    pumps = [BatchPump(queue, "q", slow, stop, renewer) for _ in range(2)]
    _drain(queue, renewer, pumps, stop)
    assert batches == [["m0", "m1", "m2"]]
    assert queue.active_count("q") == 0


def _niceness(thread_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, thread_id)


def test_a_thread_that_runs_in_the_background_lowers_its_own_priority_and_no_one_elses() -> None:
    mine = _niceness(threading.get_native_id())
    seen: list[int] = []

    def background() -> None:
        priority.run_in_background()
        seen.append(_niceness(threading.get_native_id()))

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen == [min(priority.MAX_NICENESS, mine + priority.BACKGROUND_NICENESS)]
    assert _niceness(threading.get_native_id()) == mine


def test_in_a_storm_only_the_folding_the_drain_and_the_timers_yield_the_cpu(tmp_path: Path) -> None:
    mine = _niceness(threading.get_native_id())
    low = min(priority.MAX_NICENESS, mine + priority.BACKGROUND_NICENESS)
    inbox = Inbox(tmp_path)
    stop = threading.Event()
    before = set(threading.enumerate())
    lines = runtime.start_triggers(registered(), SqliteQueue(tmp_path / "q.db"), stop)
    InboxDrain(inbox, lambda waiting: None, stop).start()
    started = [t for t in threading.enumerate() if t not in before]
    try:
        bulk = ("queue-intake", "inbox-drain")
        expected = {t.name: low if t.name in bulk or t.name.startswith("timer-") else mine for t in started}
        deadline = time.monotonic() + 10  # each thread lowers its priority as it starts
        found: dict[str, int] = {}
        while time.monotonic() < deadline:
            found = {t.name: _niceness(t.native_id or 0) for t in started}
            if found == expected:
                break
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in started:
            thread.join(5)
    assert found == expected
    assert {"queue-actions", "queue-pages", "queue-intake", "queue-notifications", "inbox-drain"} <= set(
        found
    )
    assert any("queue pages (" in line and "background" not in line for line in lines)
    assert any("queue intake (" in line and line.endswith(", in the background)") for line in lines)
    assert "sweep_actions: timer 15,45 * * * * *, in the background" in lines
