"""SqliteQueue against a real SQLite file: Service Bus semantics, threads and processes."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import sqlite3
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.sqlite_queue import SqliteQueue
from shared.errors import LockLost
from shared.ports import QueueMessage, Received
from tests.factories import FakeClock

T0 = 1_700_000_000.0
# (message_id, session_id, sequence_number, delivery_count, held_from_ns, held_to_ns)
Record = tuple[str, str | None, int, int, int, int]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.fromtimestamp(T0, UTC))


@pytest.fixture
def queue(tmp_path: Path, clock: FakeClock) -> SqliteQueue:
    return SqliteQueue(
        tmp_path / "queue.db",
        lock_duration=30.0,
        max_delivery_count=3,
        duplicate_window=600.0,
        clock=clock,
    )


def msg(message_id: str, session_id: str | None = None, *, queue: str = "act", **kw: Any) -> QueueMessage:
    return QueueMessage(
        queue=queue, body=message_id.encode(), message_id=message_id, session_id=session_id, **kw
    )


def receive(q: SqliteQueue, queue: str = "act") -> Received:
    received = q.receive(queue)
    assert received is not None
    return received


def drain_ids(q: SqliteQueue, queue: str = "act") -> list[str]:
    """Receive and complete until nothing is deliverable; the message ids in delivery order."""
    ids = []
    while (r := q.receive(queue)) is not None:
        ids.append(r.message_id)
        q.complete(r)
    return ids


def test_round_trip_keeps_the_message_and_sets_the_lock(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send(
        [
            QueueMessage(
                queue="act",
                body=b'{"action": "restart"}',
                message_id="m1",
                session_id="vm-1",
                application_properties={"incident": "inc-1", "attempt": 2},
                content_type="application/json",
            )
        ]
    )
    r = receive(queue)
    assert (r.queue, r.body, r.message_id, r.session_id) == ("act", b'{"action": "restart"}', "m1", "vm-1")
    assert dict(r.application_properties) == {"incident": "inc-1", "attempt": 2}
    assert r.content_type == "application/json"
    assert r.delivery_count == 1
    assert r.enqueued_at == datetime.fromtimestamp(T0, UTC)
    assert r.scheduled_at is None
    assert r.locked_until == datetime.fromtimestamp(T0 + 30.0, UTC)
    assert len(r.lock_token) == 32
    assert queue.receive("act") is None
    queue.complete(r)
    assert queue.active_count("act") == 0
    assert queue.receive("act") is None


def test_sequence_numbers_increase_and_delivery_is_in_order(queue: SqliteQueue) -> None:
    queue.send([msg("a"), msg("b")])
    queue.send([msg("c")])
    first, second, third = receive(queue), receive(queue), receive(queue)
    assert [first.message_id, second.message_id, third.message_id] == ["a", "b", "c"]
    assert first.sequence_number < second.sequence_number < third.sequence_number


def test_duplicate_within_the_window_is_dropped_even_after_complete(
    queue: SqliteQueue, clock: FakeClock
) -> None:
    queue.send([msg("m1"), msg("m1")])
    assert queue.active_count("act") == 1
    queue.complete(receive(queue))
    clock.advance(599)
    queue.send([msg("m1")])
    assert queue.active_count("act") == 0
    assert queue.receive("act") is None


def test_duplicate_outside_the_window_is_accepted(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send([msg("m1")])
    queue.complete(receive(queue))
    clock.advance(300)
    queue.send([msg("m1")])  # dropped: the window runs from the first send, not the last attempt
    clock.advance(301)
    queue.send([msg("m1")])
    assert receive(queue).message_id == "m1"


def test_an_expired_row_not_yet_pruned_does_not_drop_a_resend(tmp_path: Path, clock: FakeClock) -> None:
    """Pruning runs once a minute; a 10 s window still ends after 10 s, pruned or not."""
    queue = SqliteQueue(tmp_path / "short.db", duplicate_window=10.0, clock=clock)
    queue.send([msg("m1")])
    queue.complete(receive(queue))
    clock.advance(11)  # past the window, well before the next prune
    queue.send([msg("m1")])
    assert receive(queue).message_id == "m1"


def test_the_same_message_id_in_two_queues_is_not_a_duplicate(queue: SqliteQueue) -> None:
    queue.send([msg("m1", queue="act"), msg("m1", queue="page")])
    assert queue.active_count("act") == 1
    assert queue.active_count("page") == 1


def test_messages_of_one_queue_are_not_visible_in_another(queue: SqliteQueue) -> None:
    queue.send([msg("p1", queue="page"), msg("s1", "vm-1", queue="page")])
    assert queue.receive("act") is None
    assert queue.active_count("act") == 0
    assert queue.next_due("act") is None
    assert drain_ids(queue, "page") == ["p1", "s1"]


def test_a_scheduled_message_is_not_received_before_its_time(queue: SqliteQueue, clock: FakeClock) -> None:
    at = datetime.fromtimestamp(T0 + 120, UTC)
    queue.send([msg("later", scheduled_at=at), msg("now")])
    assert queue.active_count("act") == 2
    assert drain_ids(queue) == ["now"]
    assert queue.next_due("act") == T0 + 120
    clock.advance(119)
    assert queue.receive("act") is None
    clock.advance(1)
    r = receive(queue)
    assert (r.message_id, r.scheduled_at) == ("later", at)


def test_a_schedule_in_the_past_delivers_now(queue: SqliteQueue) -> None:
    queue.send([msg("m1", scheduled_at=datetime.fromtimestamp(T0 - 5, UTC))])
    assert receive(queue).message_id == "m1"


def test_a_naive_scheduled_at_is_refused(queue: SqliteQueue) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        queue.send([msg("m1", scheduled_at=datetime(2030, 1, 1))])
    assert queue.active_count("act") == 0


def test_an_expired_lock_makes_the_message_receivable_again(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send([msg("m1")])
    first = receive(queue)
    assert queue.next_due("act") == T0 + 30
    clock.advance(29.9)
    assert queue.receive("act") is None
    clock.advance(0.1)
    second = receive(queue)
    assert second.message_id == "m1"
    assert second.delivery_count == 2
    assert second.lock_token != first.lock_token
    assert second.sequence_number == first.sequence_number


def test_settling_with_a_stale_lock_token_raises_lock_lost(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send([msg("m1")])
    stale = receive(queue)
    clock.advance(31)
    current = receive(queue)
    for settle in (
        queue.complete,
        queue.abandon,
        queue.renew_lock,
        lambda r: queue.dead_letter(r, "Bad", "no"),
    ):
        with pytest.raises(LockLost):
            settle(stale)
    queue.complete(current)
    assert queue.active_count("act") == 0
    assert queue.dead_letters("act") == []


def test_settling_twice_raises_lock_lost(queue: SqliteQueue) -> None:
    queue.send([msg("m1")])
    r = receive(queue)
    queue.complete(r)
    with pytest.raises(LockLost):
        queue.complete(r)


def test_an_expired_lock_nobody_took_over_can_still_settle(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send([msg("m1")])
    r = receive(queue)
    clock.advance(60)
    queue.complete(r)
    assert queue.receive("act") is None


def test_renew_lock_keeps_the_message_locked(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send([msg("m1")])
    r = receive(queue)
    clock.advance(20)
    queue.renew_lock(r)
    assert queue.next_due("act") == T0 + 50
    clock.advance(20)
    assert queue.receive("act") is None
    queue.complete(r)


def test_abandon_makes_the_message_receivable_now(queue: SqliteQueue) -> None:
    queue.send([msg("m1"), msg("m2")])
    first = receive(queue)
    queue.abandon(first)
    again = receive(queue)
    assert (again.message_id, again.delivery_count) == ("m1", 2)
    with pytest.raises(LockLost):
        queue.abandon(first)


def test_max_delivery_count_dead_letters_instead_of_delivering(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send([msg("poison"), msg("fine")])
    for attempt in (1, 2, 3):
        r = receive(queue)
        assert (r.message_id, r.delivery_count) == ("poison", attempt)
        if attempt < 3:
            queue.abandon(r)
        else:
            clock.advance(31)  # the last delivery ends by lock expiry instead
    assert receive(queue).message_id == "fine"
    [dead] = queue.dead_letters("act")
    assert (dead.message_id, dead.reason, dead.delivery_count) == ("poison", "MaxDeliveryCountExceeded", 3)
    assert "3 times" in dead.description
    assert dead.body == b"poison"
    assert queue.active_count("act") == 1


def test_a_poisoned_session_head_is_dead_lettered_and_the_session_moves_on(queue: SqliteQueue) -> None:
    queue.send([msg("poison", "vm-1"), msg("next", "vm-1")])
    for _ in range(3):
        queue.abandon(receive(queue))
    assert receive(queue).message_id == "next"
    assert [d.reason for d in queue.dead_letters("act")] == ["MaxDeliveryCountExceeded"]


def test_a_session_emptied_and_used_again_delivers(queue: SqliteQueue) -> None:
    queue.send([msg("a1", "vm-1")])
    assert drain_ids(queue) == ["a1"]
    queue.send([msg("a2", "vm-1"), msg("a3", "vm-1")])
    assert drain_ids(queue) == ["a2", "a3"]


def test_old_duplicate_detection_rows_are_pruned(
    tmp_path: Path, queue: SqliteQueue, clock: FakeClock
) -> None:
    queue.send([msg("m1"), msg("m2")])
    clock.advance(601)
    queue.send([msg("m3")])
    with closing(sqlite3.connect(tmp_path / "queue.db")) as conn:
        kept = [r[0] for r in conn.execute("SELECT message_id FROM queue_dedup")]
    assert kept == ["m3"]


def test_dead_letter_keeps_reason_and_description_newest_first(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send([msg("m1", "vm-1"), msg("m2")])
    queue.dead_letter(receive(queue), "TargetNotFound", "vm-1 does not exist")
    clock.advance(5)
    queue.dead_letter(receive(queue), "PolicyRefused", "kill switch on")
    assert queue.active_count("act") == 0
    newest, oldest = queue.dead_letters("act")
    assert (newest.message_id, newest.reason, newest.description) == ("m2", "PolicyRefused", "kill switch on")
    assert (oldest.message_id, oldest.session_id, oldest.reason) == ("m1", "vm-1", "TargetNotFound")
    assert oldest.description == "vm-1 does not exist"
    assert oldest.delivery_count == 1
    assert oldest.dead_lettered_at == datetime.fromtimestamp(T0, UTC).isoformat()
    assert [d.message_id for d in queue.dead_letters("act", limit=1)] == ["m2"]
    assert queue.dead_letters("page") == []


def test_a_session_delivers_one_message_at_a_time_in_order(queue: SqliteQueue) -> None:
    queue.send([msg("a1", "vm-1"), msg("a2", "vm-1"), msg("plain"), msg("a3", "vm-1")])
    a1 = receive(queue)
    assert a1.message_id == "a1"
    assert receive(queue).message_id == "plain"
    assert queue.receive("act") is None
    queue.abandon(a1)
    a1 = receive(queue)
    assert (a1.message_id, a1.delivery_count) == ("a1", 2)
    queue.complete(a1)
    assert drain_ids(queue) == ["a2", "a3"]


def test_two_sessions_interleave_freely(queue: SqliteQueue) -> None:
    queue.send([msg("a1", "vm-1"), msg("b1", "vm-2"), msg("a2", "vm-1"), msg("b2", "vm-2")])
    a1, b1 = receive(queue), receive(queue)
    assert (a1.message_id, b1.message_id) == ("a1", "b1")
    assert queue.receive("act") is None
    queue.complete(b1)
    b2 = receive(queue)
    assert b2.message_id == "b2"
    queue.complete(a1)
    assert receive(queue).message_id == "a2"


def test_a_session_lock_that_expires_redelivers_the_same_head(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send([msg("a1", "vm-1"), msg("a2", "vm-1")])
    stale = receive(queue)
    assert queue.next_due("act") == T0 + 30
    clock.advance(30)
    again = receive(queue)
    assert (again.message_id, again.delivery_count) == ("a1", 2)
    with pytest.raises(LockLost):
        queue.complete(stale)
    queue.complete(again)
    assert drain_ids(queue) == ["a2"]


def test_a_scheduled_message_blocks_nothing_in_its_session_until_due(
    queue: SqliteQueue, clock: FakeClock
) -> None:
    check_at = datetime.fromtimestamp(T0 + 20, UTC)
    queue.send([msg("check", "vm-1", scheduled_at=check_at), msg("a1", "vm-1"), msg("a2", "vm-1")])
    a1 = receive(queue)
    assert a1.message_id == "a1"
    clock.advance(20)
    assert queue.receive("act") is None  # due now, but a1 still holds the session
    queue.complete(a1)
    assert drain_ids(queue) == ["check", "a2"]  # due, and sent before a2


def test_a_session_held_by_a_later_message_refuses_the_stale_holder(
    queue: SqliteQueue, clock: FakeClock
) -> None:
    queue.send([msg("check", "vm-1", scheduled_at=datetime.fromtimestamp(T0 + 10, UTC)), msg("a1", "vm-1")])
    a1 = receive(queue)
    clock.advance(31)  # a1's lock and the session's expire; check is due and first in line
    check = receive(queue)
    assert check.message_id == "check"
    for settle in (queue.complete, queue.renew_lock):
        with pytest.raises(LockLost):
            settle(a1)
    queue.complete(check)
    again = receive(queue)
    assert (again.message_id, again.delivery_count) == ("a1", 2)


def test_counts_and_next_due(queue: SqliteQueue, clock: FakeClock) -> None:
    assert queue.next_due("act") is None
    queue.send([msg("a1", "vm-1"), msg("a2", "vm-1"), msg("p1")])
    queue.send([msg("later", scheduled_at=datetime.fromtimestamp(T0 + 500, UTC))])
    assert queue.active_count("act") == 4
    assert queue.next_due("act") == T0
    a1, p1 = receive(queue), receive(queue)
    clock.advance(10)
    assert queue.next_due("act") == T0 + 30
    queue.complete(a1)
    assert queue.next_due("act") == T0  # a2 waits no longer
    queue.complete(p1)
    queue.complete(receive(queue))
    assert queue.next_due("act") == T0 + 500
    assert queue.active_count("act") == 1


def test_a_second_instance_on_the_same_file_sees_the_messages(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "queue.db"
    SqliteQueue(path, clock=clock).send([msg("m1"), msg("m2")])
    other = SqliteQueue(path, clock=clock)
    assert drain_ids(other) == ["m1", "m2"]


# --- concurrency -------------------------------------------------------------------------------

CONCURRENT_QUEUE = "storm"
SESSIONS = 10


def storm_messages(n: int) -> list[QueueMessage]:
    """Half the messages spread over a few sessions, half independent."""
    return [
        msg(f"m{i}", f"vm-{i // 2 % SESSIONS}" if i % 2 else None, queue=CONCURRENT_QUEUE) for i in range(n)
    ]


def consume(q: SqliteQueue, start: Any, pause: float) -> list[Record]:
    """Receive and complete until the queue is empty, recording when each message was held."""
    start.wait()
    records: list[Record] = []
    while True:
        r = q.receive(CONCURRENT_QUEUE)
        if r is None:
            if q.active_count(CONCURRENT_QUEUE) == 0:
                return records
            if pause:
                time.sleep(pause)
            continue
        # Taken after the lock was granted and before it is released, so these intervals lie
        # inside the lock intervals: if two of one session overlap, their locks overlapped.
        held_from = time.monotonic_ns()
        if pause:
            time.sleep(pause)  # hold the lock a moment, as a handler would, so locks overlap
        held_to = time.monotonic_ns()
        q.complete(r)
        records.append((r.message_id, r.session_id, r.sequence_number, r.delivery_count, held_from, held_to))


def consume_in_process(path: str, start: Any, out: str) -> None:
    """A spawned consumer: its own SqliteQueue on the shared file, records written as JSON."""
    records = consume(SqliteQueue(path), start, pause=0.0002)
    Path(out).write_text(json.dumps(records))


def assert_each_completed_once_and_sessions_exclusive(
    sent: Sequence[QueueMessage], per_consumer: Sequence[list[Record]]
) -> None:
    records = [r for consumer in per_consumer for r in consumer]
    completed = Counter(r[0] for r in records)
    assert sorted(completed) == sorted(m.message_id for m in sent)
    assert set(completed.values()) == {1}
    assert {r[3] for r in records} == {1}
    by_session: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r[1] is not None:
            by_session[r[1]].append(r)
    assert len(by_session) == SESSIONS
    for session, held in by_session.items():
        held.sort(key=lambda r: r[4])
        for before, after in itertools.pairwise(held):
            assert after[4] > before[5], f"session {session}: {before[0]} and {after[0]} held at once"
            assert after[2] > before[2], f"session {session}: {after[0]} delivered before {before[0]}"


def test_two_threads_complete_every_message_exactly_once(tmp_path: Path, clock: FakeClock) -> None:
    q = SqliteQueue(tmp_path / "queue.db", clock=clock)
    sent = storm_messages(2000)
    for i in range(0, len(sent), 100):
        q.send(sent[i : i + 100])
    start = threading.Barrier(2)
    results: list[list[Record]] = [[], []]

    def run(i: int) -> None:
        results[i] = consume(q, start, pause=0)
        q.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    # No share is required of each thread: SQLite's busy handler backs off in sleeps of up to
    # 100 ms, so without a pause one thread can drain all 2,000 before the other gets the lock.
    assert_each_completed_once_and_sessions_exclusive(sent, results)


def test_two_processes_complete_every_message_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    sent = storm_messages(2000)
    q = SqliteQueue(path)
    for i in range(0, len(sent), 100):
        q.send(sent[i : i + 100])
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    outs = [tmp_path / f"consumer{i}.json" for i in range(2)]
    processes = [ctx.Process(target=consume_in_process, args=(str(path), start, str(out))) for out in outs]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=90)
    for p in processes:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in processes] == [0, 0]
    results: list[list[Record]] = [
        [(m, s, seq, n, start_ns, end_ns) for m, s, seq, n, start_ns, end_ns in json.loads(out.read_text())]
        for out in outs
    ]
    assert all(results), "both processes should have taken a share"
    assert_each_completed_once_and_sessions_exclusive(sent, results)
    assert q.active_count(CONCURRENT_QUEUE) == 0


def test_a_sender_can_put_a_message_straight_among_the_dead_letters(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    queue.dead_letter_message(
        QueueMessage(queue="pages", body=b"{}", message_id="m-dead", session_id="s"), "Rejected", "a 400"
    )
    (dead,) = queue.dead_letters("pages")
    assert (dead.message_id, dead.reason, dead.description) == ("m-dead", "Rejected", "a 400")
    assert queue.receive("pages") is None and queue.active_count("pages") == 0


# ---------------------------------------------------------------------------- batches of a session


def test_a_batch_is_one_sessions_messages_in_order_under_one_lock(queue: SqliteQueue) -> None:
    queue.send([msg("a1", "A"), msg("b1", "B"), msg("a2", "A"), msg("a3", "A")])
    batch = queue.receive_batch("act", 10)
    assert [r.message_id for r in batch] == ["a1", "a2", "a3"]
    assert {r.lock_token for r in batch} == {batch[0].lock_token}
    assert [r.delivery_count for r in batch] == [1, 1, 1]
    other = queue.receive_batch("act", 10)  # session A is locked: the next receiver gets B
    assert [r.message_id for r in other] == ["b1"]
    assert queue.receive_batch("act", 10) == []
    queue.complete_batch(batch)
    queue.complete_batch(other)
    assert queue.receive_batch("act", 10) == [] and queue.active_count("act") == 0


def test_an_abandoned_batch_comes_again_with_its_deliveries_counted(queue: SqliteQueue) -> None:
    queue.send([msg("a1", "A"), msg("a2", "A")])
    queue.abandon_batch(queue.receive_batch("act", 10))
    again = queue.receive_batch("act", 10)
    assert [(r.message_id, r.delivery_count) for r in again] == [("a1", 2), ("a2", 2)]


def test_a_batch_is_limited_and_the_rest_of_its_session_waits_for_the_lock(queue: SqliteQueue) -> None:
    queue.send([msg(f"a{n}", "A") for n in range(5)])
    first = queue.receive_batch("act", 2)
    assert [r.message_id for r in first] == ["a0", "a1"]
    assert queue.receive_batch("act", 2) == []  # the session is still locked
    queue.complete_batch(first)
    assert [r.message_id for r in queue.receive_batch("act", 2)] == ["a2", "a3"]


def test_completing_a_batch_whose_lock_expired_is_refused(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.send([msg("a1", "A"), msg("a2", "A")])
    stale = queue.receive_batch("act", 10)
    clock.advance(seconds=31)
    taken = queue.receive_batch("act", 10)
    with pytest.raises(LockLost):
        queue.complete_batch(stale)
    queue.complete_batch(taken)
    assert queue.active_count("act") == 0
