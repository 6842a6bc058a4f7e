"""Intake end to end in-process on the real SQLite store and queue: storm, duplicates, outbox."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from shared.adapters.sqlite_queue import SqliteQueue
from shared.adapters.sqlite_store import SqliteIncidentStore
from shared.domain.effects import Effect
from shared.domain.signals import Signal
from shared.intake.pipeline import Intake
from shared.ports import QueueMessage
from shared.triage.policy import load_policy
from tests.factories import FakeClock, resource, signal
from tests.fakes import FakeStore

POLICY = load_policy()


class BrokenQueue:
    """A queue that is down: every send fails."""

    def __init__(self) -> None:
        self.attempts = 0

    def send(self, messages: list[QueueMessage]) -> None:
        self.attempts += 1
        raise ConnectionError("queue unreachable")

    def dead_letters(self, queue: str, limit: int) -> list:  # type: ignore[type-arg]
        return []


@pytest.fixture
def store(tmp_path: Path) -> SqliteIncidentStore:
    return SqliteIncidentStore(tmp_path / "incidents.sqlite3")


@pytest.fixture
def queue(tmp_path: Path) -> SqliteQueue:
    return SqliteQueue(tmp_path / "queue.sqlite3")


def drain(queue: SqliteQueue, name: str) -> list[Effect]:
    """Receive and complete everything on a queue."""
    effects = []
    while (received := queue.receive(name)) is not None:
        effects.append(Effect.from_dict(json.loads(received.body)))
        queue.complete(received)
    return effects


def test_storm_of_10000_over_100_keys_opens_exactly_100(
    store: SqliteIncidentStore, queue: SqliteQueue
) -> None:
    intake = Intake(store, queue, POLICY, FakeClock())
    signals = [signal(rule=f"rule-{n % 100}", azure_severity="Sev1", id=f"alert-{n}") for n in range(10_000)]
    report = intake.accept(signals)
    assert (report.opened, report.updated, report.duplicates) == (100, 9_900, 0)
    incidents = store.list_incidents("open", None, 1000)
    assert len(incidents) == 100
    assert {i.signal_count for i in incidents} == {100}
    pages = drain(queue, "pages")
    assert len(pages) == 100 and {p.event for p in pages} == {"trigger"}
    notes = drain(queue, "notifications")
    # opened, then the storm refreshes the card once at 10 and once at 100 signals
    assert sorted({n.event for n in notes}) == ["count-10", "count-100", "opened"]
    assert len(notes) == 300
    assert store.with_pending_effects("9999", 1000) == []


def test_redelivered_alert_is_counted_once(store: SqliteIncidentStore, queue: SqliteQueue) -> None:
    intake = Intake(store, queue, POLICY, FakeClock())
    s = signal(azure_severity="Sev1")
    first = intake.accept([s])
    again = intake.accept([s])
    assert (first.opened, again.duplicates, again.opened, again.updated) == (1, 1, 0, 0)
    assert store.list_incidents(None, None, 10)[0].signal_count == 1
    assert len(drain(queue, "pages")) == 1


def test_resolved_resolves_and_a_new_fire_opens_a_new_incident(
    store: SqliteIncidentStore, queue: SqliteQueue
) -> None:
    clock = FakeClock()
    intake = Intake(store, queue, POLICY, clock)
    intake.accept([signal(azure_severity="Sev1", id="f1")])
    clock.advance(minutes=5)
    report = intake.accept([signal(azure_severity="Sev1", state="resolved", id="r1")])
    assert report.resolved == 1
    pages = drain(queue, "pages")
    assert [p.event for p in pages] == ["trigger", "resolve"]
    resolved = store.list_incidents("resolved", None, 10)
    assert len(resolved) == 1 and resolved[0].resolved_at == "2026-11-25T10:05:00.000Z"
    assert resolved[0].time_to_resolve_seconds == 300.0
    clock.advance(minutes=5)
    assert (
        intake.accept([signal(azure_severity="Sev1", id="f2", occurred_at="2026-11-25T10:10:00.000Z")]).opened
        == 1
    )
    # a Resolved that finds nothing open is kept as informational, not dropped
    assert intake.accept([signal(rule="never-fired", state="resolved", id="r2")]).informational == 1


def test_effects_survive_a_queue_outage_and_the_sweeper_sends_them(
    store: SqliteIncidentStore, queue: SqliteQueue
) -> None:
    broken = BrokenQueue()
    clock = FakeClock()
    report = Intake(store, broken, POLICY, clock).accept([signal(azure_severity="Sev1")])
    assert report.opened == 1 and broken.attempts == 1
    pending = store.with_pending_effects("9999", 10)
    assert len(pending) == 1 and len(pending[0].incident.outbox) == 2
    healthy = Intake(store, queue, POLICY, clock)
    healthy.flush(pending[0])
    assert [e.event for e in drain(queue, "pages")] == ["trigger"]
    assert [e.event for e in drain(queue, "notifications")] == ["opened"]
    assert store.with_pending_effects("9999", 10) == []


def test_a_retry_after_a_crash_sends_what_was_left(store: SqliteIncidentStore, queue: SqliteQueue) -> None:
    clock = FakeClock()
    s = signal(azure_severity="Sev1")
    Intake(store, BrokenQueue(), POLICY, clock).accept([s])
    # Azure Monitor retries the same alert: it is a duplicate, yet the stranded effects go out
    report = Intake(store, queue, POLICY, clock).accept([s])
    assert report.duplicates == 1
    assert [e.event for e in drain(queue, "pages")] == ["trigger"]


def test_same_condition_on_two_tenants_escalates_both(store: SqliteIncidentStore, queue: SqliteQueue) -> None:
    clock = FakeClock()
    intake = Intake(store, queue, POLICY, clock)
    ikea = signal(
        rule="cosmos-ikea-errors",
        tenant="ikea",
        azure_severity="Sev1",
        id="a",
        occurred_at="2026-11-25T09:59:00.000Z",
    )
    hm = signal(
        rule="cosmos-hm-errors",
        tenant="hm",
        azure_severity="Sev1",
        id="b",
        resource_id=resource("cosmosdb", "cosmos-amicis-hm-dev", "rg-amicis-hm-dev"),
        occurred_at="2026-11-25T09:59:30.000Z",
    )
    intake.accept([ikea])
    intake.accept([hm])
    incidents = {i.tenant: i for i in store.list_incidents("open", None, 10)}
    assert {t: (i.severity.label, i.all_tenants) for t, i in incidents.items()} == {
        "ikea": ("sev1", True),
        "hm": ("sev1", True),
    }
    assert any("2 tenants (hm, ikea)" in r for r in incidents["ikea"].reasons)
    pages = drain(queue, "pages")
    # each opened at sev2 and was raised: the page worker sends whatever is current when it runs
    assert sorted((p.incident_id == incidents["ikea"].id, p.severity) for p in pages) == [
        (False, "sev1"),
        (False, "sev2"),
        (True, "sev1"),
        (True, "sev2"),
    ]


def test_two_tenants_opening_at_the_same_moment_both_escalate(tmp_path: Path) -> None:
    """Two processes' worth of intakes on one file, racing: the later commit always sees the other."""
    path = tmp_path / "incidents.sqlite3"
    for round_ in range(10):
        barrier = threading.Barrier(2)

        def open_for(tenant: str, round_: int = round_, barrier: threading.Barrier = barrier) -> None:
            intake = Intake(
                SqliteIncidentStore(path), SqliteQueue(tmp_path / "q.sqlite3"), POLICY, FakeClock()
            )
            s = signal(
                rule=f"cosmos-{tenant}-errors-{round_}",
                tenant=tenant,
                azure_severity="Sev1",
                id=f"{tenant}-{round_}",
                resource_id=resource("cosmosdb", f"cosmos-amicis-{tenant}-dev", f"rg-amicis-{tenant}-dev"),
            )
            barrier.wait()
            intake.accept([s])

        threads = [threading.Thread(target=open_for, args=(t,)) for t in ("ikea", "hm")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        opened = [
            i
            for i in SqliteIncidentStore(path).list_incidents("open", None, 100)
            if i.rule.endswith(f"-{round_}")
        ]
        assert [(i.all_tenants, i.severity.label) for i in opened] == [(True, "sev1"), (True, "sev1")], round_


def test_a_fired_retried_after_its_own_resolved_opens_nothing(
    store: SqliteIncidentStore, queue: SqliteQueue
) -> None:
    """Azure Monitor retries a Fired we failed to take after its Resolved got through: stale."""
    intake = Intake(store, queue, POLICY, FakeClock())
    resolved = signal(azure_severity="Sev1", state="resolved", id="r", facts={"alert_id": "instance-1"})
    fired = signal(azure_severity="Sev1", id="f", facts={"alert_id": "instance-1"})
    assert intake.accept([resolved]).informational == 1
    report = intake.accept([fired])
    assert (report.opened, report.informational) == (0, 1)
    assert store.list_incidents(None, None, 10) == []
    # a new firing is a new alert instance, and opens an incident as usual
    again = signal(azure_severity="Sev1", id="f2", facts={"alert_id": "instance-2"})
    assert intake.accept([again]).opened == 1


def test_a_stale_fired_of_a_resolved_instance_does_not_keep_the_incident_open(
    store: SqliteIncidentStore, queue: SqliteQueue
) -> None:
    """A, B fire; A resolves; Azure retries A's Fired: stale, so B's Resolved still resolves."""
    intake = Intake(store, queue, POLICY, FakeClock())

    def alert(instance: str, state: str, id: str) -> Signal:
        facts = {"alert_id": instance, "signal_type": "Metric"}
        return signal(azure_severity="Sev1", state=state, id=id, facts=facts)

    assert intake.accept([alert("a", "fired", "a1"), alert("b", "fired", "b1")]).opened == 1
    assert intake.accept([alert("a", "resolved", "a2")]).updated == 1
    assert intake.accept([alert("a", "fired", "a3")]).informational == 1
    report = intake.accept([alert("b", "resolved", "b2")])
    assert report.resolved == 1
    assert store.list_incidents("open", None, 10) == []


def test_a_batch_of_one_key_is_folded_into_its_incident_40_signals_a_write(tmp_path: Path) -> None:
    store, queue = FakeStore(), SqliteQueue(tmp_path / "queue.sqlite3")
    intake = Intake(store, queue, POLICY, FakeClock())
    report = intake.accept([signal(azure_severity="Sev1", id=f"alert-{n}") for n in range(100)])
    assert (report.opened, report.updated, report.duplicates) == (1, 99, 0)
    (incident,) = store.list_incidents(None, None, 10)
    assert incident.signal_count == 100 and len(store.signals(incident.id, 1000)) == 100
    # three writes of 40, 40 and 20 signals (and the ones that clear a sent outbox)
    assert sorted({c.signal_count for c in store.commits}) == [40, 80, 100]


def test_a_resolve_inside_a_batch_ends_its_incident_and_the_next_fired_opens_another(tmp_path: Path) -> None:
    store, queue = FakeStore(), SqliteQueue(tmp_path / "queue.sqlite3")
    intake = Intake(store, queue, POLICY, FakeClock())
    fired = signal(azure_severity="Sev1", id="f1")
    resolved = signal(azure_severity="Sev1", id="r1", state="resolved")
    again = signal(azure_severity="Sev1", id="f2", occurred_at="2026-11-25T10:05:00.000Z")
    report = intake.accept([fired, resolved, again])
    assert (report.opened, report.resolved, report.updated) == (2, 1, 0)
    assert len(store.list_incidents("resolved", None, 10)) == 1
    assert len(store.list_incidents("open", None, 10)) == 1
