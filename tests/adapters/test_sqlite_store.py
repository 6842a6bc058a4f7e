"""The SQLite incident store: conditional writes, one open incident per key, atomic commits."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from shared.adapters.sqlite_store import SqliteIncidentStore
from shared.domain.incidents import TimelineEntry
from shared.errors import Conflict, DuplicateSignal, PreconditionFailed
from shared.triage.assessment import assess
from shared.triage.correlation import correlate
from shared.triage.policy import load_policy
from tests.factories import signal

POLICY = load_policy()
NOW = "2026-11-25T10:00:00.000Z"


def _opened(s=None):  # type: ignore[no-untyped-def]
    s = s or signal(azure_severity="Sev1")
    outcome = correlate(None, s, assess(s, POLICY), NOW, POLICY)
    assert outcome is not None
    return s, outcome


def test_create_read_and_conditional_update(tmp_path: Path) -> None:
    store = SqliteIncidentStore(tmp_path / "s.db")
    s, outcome = _opened()
    etag = store.commit(outcome.incident, None, [s], outcome.timeline)
    found = store.open_incident(outcome.incident.correlation_key)
    assert found is not None and found.etag == etag and found.incident == outcome.incident
    store.commit(found.incident.evolve(signal_count=2), etag)
    with pytest.raises(PreconditionFailed):
        store.commit(found.incident.evolve(signal_count=3), etag)
    got = store.get(outcome.incident.id)
    assert got is not None and got.incident.signal_count == 2
    assert [e.kind for e in store.timeline(outcome.incident.id)] == ["opened"]
    assert [x.id for x in store.signals(outcome.incident.id, 10)] == [s.id]


def test_second_open_incident_for_a_key_conflicts(tmp_path: Path) -> None:
    store = SqliteIncidentStore(tmp_path / "s.db")
    s, outcome = _opened()
    store.commit(outcome.incident, None, [s])
    other = outcome.incident.evolve(id="inc-other")
    with pytest.raises(Conflict):
        store.commit(other, None, [signal(id="another")])
    # nothing of the losing commit was stored
    assert store.signals(None, 10) == [] and store.signals("inc-other", 10) == []
    assert store.get("inc-other") is None


def test_duplicate_signal_writes_nothing(tmp_path: Path) -> None:
    store = SqliteIncidentStore(tmp_path / "s.db")
    s, outcome = _opened()
    etag = store.commit(outcome.incident, None, [s])
    with pytest.raises(DuplicateSignal):
        store.commit(outcome.incident.evolve(signal_count=2), etag, [s], [TimelineEntry(NOW, "x", "y")])
    found = store.get(outcome.incident.id)
    assert found is not None and found.etag == etag and found.incident.signal_count == 1
    assert store.timeline(outcome.incident.id) == []


def test_resolved_incident_frees_the_key(tmp_path: Path) -> None:
    store = SqliteIncidentStore(tmp_path / "s.db")
    s, outcome = _opened()
    etag = store.commit(outcome.incident, None, [s])
    store.commit(outcome.incident.evolve(status="resolved"), etag)
    assert store.open_incident(outcome.incident.correlation_key) is None
    s2, again = _opened(signal(azure_severity="Sev1", id="second"))
    store.commit(again.incident.evolve(id="inc-2"), None, [s2])
    assert {i.id for i in store.list_incidents(None, None, 10)} == {"inc-2", outcome.incident.id}
    reopened = store.open_incident(outcome.incident.correlation_key)
    assert reopened is not None and reopened.incident.id == "inc-2", "the key opened a new incident"
    assert len(store.list_incidents("resolved", None, 10)) == 1
    assert len(store.list_incidents("open", "ikea", 10)) == 1
    assert store.list_incidents("open", "hm", 10) == []


def test_informational_signals_are_kept_once(tmp_path: Path) -> None:
    store = SqliteIncidentStore(tmp_path / "s.db")
    s = signal(kind="Contoso.Unknown", state="event", informational=True)
    assert store.record_informational(s)
    assert not store.record_informational(s)
    assert [x.id for x in store.signals(None, 10)] == [s.id]


def test_pending_effects_are_found_for_the_sweeper(tmp_path: Path) -> None:
    store = SqliteIncidentStore(tmp_path / "s.db")
    s, outcome = _opened()
    store.commit(outcome.staged(), None, [s])
    assert [v.incident.id for v in store.with_pending_effects("2027-01-01", 10)] == [outcome.incident.id]
    assert store.with_pending_effects("2000-01-01", 10) == []


def _race(
    path: str, index: int, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue
) -> None:  # type: ignore[name-defined]
    store = SqliteIncidentStore(path)
    s = signal(azure_severity="Sev1", id=f"racer-{index}")
    outcome = correlate(None, s, assess(s, POLICY), f"2026-11-25T10:00:0{index}.000Z", POLICY)
    assert outcome is not None
    barrier.wait()
    try:
        store.commit(outcome.incident, None, [s])
        results.put("won")
    except Conflict:
        results.put("lost")


def test_two_processes_never_open_two_incidents_for_one_key(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    SqliteIncidentStore(path)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(path, i, barrier, results)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert outcomes == ["lost", "lost", "lost", "won"]
    assert len(SqliteIncidentStore(path).list_incidents("open", None, 10)) == 1


def test_the_timeline_is_in_time_order_whatever_order_it_was_written_in(tmp_path: Path) -> None:
    """A worker that took its time writes a line dated before lines already written."""
    store = SqliteIncidentStore(tmp_path / "s.db")
    s, outcome = _opened()
    store.commit(outcome.incident, None, [s], outcome.timeline)
    incident_id = outcome.incident.id
    store.add_timeline(incident_id, [TimelineEntry("2026-11-25T10:05:00.000Z", "notify", "late")])
    store.add_timeline(incident_id, [TimelineEntry("2026-11-25T10:01:00.000Z", "page", "early")])
    store.add_timeline(incident_id, [TimelineEntry("2026-11-25T10:01:00.000Z", "page", "same time, after")])
    assert [e.text for e in store.timeline(incident_id)][1:] == ["early", "same time, after", "late"]
