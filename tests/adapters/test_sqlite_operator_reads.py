"""The operator's reads on real SQLite: queue counts, dead letters, replay; open incidents and pages
on SQLite and on Table Storage (a real Azurite) alike."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.azure_tables_store import TableIncidentStore
from shared.adapters.sqlite_queue import SqliteQueue
from shared.adapters.sqlite_store import SqliteIncidentStore
from shared.domain.incidents import Incident
from shared.domain.severity import Severity
from shared.ports import (
    IncidentCursor,
    IncidentPages,
    QueueCounts,
    QueueInspector,
    QueueMessage,
    StatusQueries,
)
from shared.triage.assessment import assess
from shared.triage.correlation import correlate
from shared.triage.policy import load_policy
from tests.adapters.test_sqlite_queue import T0, receive
from tests.factories import FakeClock, signal
from tests.servers.azurite import fresh_table

POLICY = load_policy()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.fromtimestamp(T0, UTC))


@pytest.fixture
def queue(tmp_path: Path, clock: FakeClock) -> SqliteQueue:
    return SqliteQueue(tmp_path / "queue.db", lock_duration=30.0, max_delivery_count=3, clock=clock)


OperatorStore = SqliteIncidentStore | TableIncidentStore


@pytest.fixture(params=["sqlite", "azurite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> OperatorStore:
    if request.param == "sqlite":
        return SqliteIncidentStore(tmp_path / "incidents.db")
    return TableIncidentStore(fresh_table(request.getfixturevalue("azurite")))


def message(
    message_id: str, queue: str = "notifications", session: str | None = "inc-1", **kw: Any
) -> QueueMessage:
    return QueueMessage(
        queue=queue, body=f'{{"m": "{message_id}"}}'.encode(), message_id=message_id, session_id=session, **kw
    )


def test_the_adapters_answer_the_operator_ports(queue: SqliteQueue, store: OperatorStore) -> None:
    inspector: QueueInspector = queue
    assert inspector is queue
    assert isinstance(store, StatusQueries) and isinstance(store, IncidentPages)


def test_counts_tell_ready_scheduled_in_flight_and_dead_lettered_apart(
    queue: SqliteQueue, clock: FakeClock
) -> None:
    later = datetime.fromtimestamp(T0 + 60, UTC)
    queue.send(
        [
            message("ready-1", session=None),
            message("ready-2", session="inc-2"),
            message("ready-3", session="inc-2"),  # waits behind its session head: still ready
            message("later", scheduled_at=later, session=None),
            message("locked", queue="pages", session=None),
        ]
    )
    queue.receive("pages")
    queue.dead_letter_message(message("gave-up"), "MaxAttemptsExceeded", "Slack down")
    asked = ["pages", "notifications", "actions"]
    assert queue.counts(asked) == [
        QueueCounts("pages", ready=0, scheduled=0, in_flight=1, dead_lettered=0),
        QueueCounts("notifications", ready=3, scheduled=1, in_flight=0, dead_lettered=1),
        QueueCounts("actions", ready=0, scheduled=0, in_flight=0, dead_lettered=0),
    ]
    clock.advance(61)  # the scheduled one is due, and the lock on "locked" has expired
    assert queue.counts(asked)[:2] == [
        QueueCounts("pages", ready=1, scheduled=0, in_flight=0, dead_lettered=0),
        QueueCounts("notifications", ready=4, scheduled=0, in_flight=0, dead_lettered=1),
    ]


def test_dead_letters_across_queues_newest_first(queue: SqliteQueue, clock: FakeClock) -> None:
    queue.dead_letter_message(message("n-1"), "MaxAttemptsExceeded", "Slack down")
    clock.advance(1)
    queue.dead_letter_message(message("p-1", queue="pages"), "Rejected", "PagerDuty refused it (400)")
    clock.advance(1)
    queue.dead_letter_message(message("a-1", queue="actions"), "PoisonMessage", "not an effect")
    newest = queue.recent_dead_letters(["pages", "notifications"], 10)
    assert [(d.queue, d.message_id, d.reason) for d in newest] == [
        ("pages", "p-1", "Rejected"),
        ("notifications", "n-1", "MaxAttemptsExceeded"),
    ]
    assert [d.message_id for d in queue.recent_dead_letters(["pages", "notifications", "actions"], 2)] == [
        "a-1",
        "p-1",
    ]
    assert [d.message_id for d in queue.find_dead_letters("p-1")] == ["p-1"]
    assert queue.find_dead_letters("nothing") == []


def test_a_replay_sends_a_copy_under_a_new_id_once(queue: SqliteQueue) -> None:
    original = message("n-1", application_properties={"kind": "notify"})
    queue.send([original])  # the original id is in the duplicate-detection window
    queue.complete(receive(queue, "notifications"))
    queue.dead_letter_message(original, "MaxAttemptsExceeded", "Slack down")

    assert queue.resend_dead_letter("notifications", "n-1", "n-1.replay.1")
    assert queue.find_dead_letters("n-1") == []
    copy = receive(queue, "notifications")
    assert (copy.message_id, copy.body, copy.session_id) == ("n-1.replay.1", original.body, "inc-1")
    assert dict(copy.application_properties) == {"kind": "notify", "replay_of": "n-1"}
    assert not queue.resend_dead_letter("notifications", "n-1", "n-1.replay.2"), "never replayed twice"
    queue.complete(copy)
    assert queue.receive("notifications") is None


def test_a_replay_is_delivered_after_what_its_session_already_holds(queue: SqliteQueue) -> None:
    queue.dead_letter_message(message("old"), "MaxAttemptsExceeded", "Slack down")
    queue.send([message("queued")])
    queue.resend_dead_letter("notifications", "old", "old.replay")
    first = receive(queue, "notifications")
    assert first.message_id == "queued"
    assert queue.receive("notifications") is None, "one message per session at a time"
    queue.complete(first)
    assert receive(queue, "notifications").message_id == "old.replay"


def test_one_message_dead_lettered_twice_is_replayed_as_one(queue: SqliteQueue) -> None:
    queue.dead_letter_message(message("n-1"), "MaxAttemptsExceeded", "first outage")
    queue.dead_letter_message(message("n-1"), "MaxAttemptsExceeded", "second outage")
    assert queue.resend_dead_letter("notifications", "n-1", "n-1.replay")
    assert queue.counts(["notifications"]) == [QueueCounts("notifications", 1, 0, 0, 0)]


def test_a_replay_id_past_service_bus_limits_sends_nothing(queue: SqliteQueue) -> None:
    queue.dead_letter_message(message("n-1"), "MaxAttemptsExceeded", "Slack down")
    with pytest.raises(ValueError, match="message_id"):
        queue.resend_dead_letter("notifications", "n-1", "x" * 129)
    assert [d.message_id for d in queue.find_dead_letters("n-1")] == ["n-1"], "still dead-lettered"
    assert queue.receive("notifications") is None


def _incident(rule: str, tenant: str, opened_at: str, azure_severity: str = "Sev1") -> Incident:
    s = signal(rule=rule, tenant=tenant, azure_severity=azure_severity, occurred_at=opened_at)
    outcome = correlate(None, s, assess(s, POLICY), opened_at, POLICY)
    assert outcome is not None
    return outcome.staged()  # as intake stores it: with its effects in the outbox


def test_open_incidents_oldest_first_with_their_count_and_the_outbox_backlog(
    store: OperatorStore,
) -> None:
    a = _incident("a", "ikea", "2026-11-25T09:00:00.000Z")
    b = _incident("b", "hm", "2026-11-25T09:05:00.000Z")
    c = _incident("c", "ikea", "2026-11-25T09:10:00.000Z")
    etags = {i.id: store.commit(i, None) for i in (a, b, c)}
    store.commit(c.evolve(status="resolved", outbox=()), etags[c.id])
    store.commit(
        a.evolve(status="acknowledged", outbox=(), updated_at="2026-11-25T09:20:00.000Z"), etags[a.id]
    )
    assert [i.id for i in store.open_incidents(10)] == [a.id, b.id]
    assert [i.id for i in store.open_incidents(1)] == [a.id]
    assert store.open_incident_count() == 2
    # b still holds the effects it was opened with; a and c were cleared.
    backlog = store.outbox_backlog()
    assert (backlog.incidents, backlog.oldest_updated_at) == (1, b.updated_at)


def test_pages_follow_a_keyset_past_ties_and_filter_by_severity(store: OperatorStore) -> None:
    same_time = "2026-11-25T09:00:00.000Z"
    opened = [
        _incident(
            f"r{n}",
            "ikea",
            same_time if n < 3 else f"2026-11-25T09:0{n}:00.000Z",
            "Sev0" if n % 2 else "Sev2",  # sev1 and sev3
        )
        for n in range(6)
    ]
    for incident in opened:
        store.commit(incident, None)
    everything = store.incidents_page(None, None, None, None, 100)
    assert [i.id for i in everything] == [i.id for i in store.list_incidents(None, None, 100)]
    walked, after = [], None
    while True:
        page = store.incidents_page(None, None, None, after, 2)
        walked += [i.id for i in page]
        if len(page) < 2:
            break
        after = IncidentCursor(page[-1].opened_at, page[-1].id)
    assert walked == [i.id for i in everything], "every incident once, ties at one time included"
    sev1 = store.incidents_page(None, None, "sev1", None, 100)
    assert len(sev1) == 3 and {i.severity for i in sev1} == {Severity.SEV1}
    assert {i.id for i in sev1} | {i.id for i in store.incidents_page(None, None, "sev3", None, 100)} == {
        i.id for i in opened
    }
    assert store.incidents_page("resolved", None, None, None, 100) == []
    assert store.incidents_page(None, "hm", None, None, 100) == []
