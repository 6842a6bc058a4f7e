"""The IncidentStore contract, run against the in-memory fake, the SQLite store and Table Storage alike.

Unit tests trust FakeStore to behave like the real store; these tests are what earns that trust.
Anything a unit test relies on (conditional writes, one open incident per key, orderings) is held
here to every adapter (Table Storage on a real Azurite), so the fake cannot drift from those that run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.azure_tables_store import TableIncidentStore
from shared.adapters.sqlite_store import SqliteIncidentStore
from shared.domain.incidents import OPEN, RESOLVED, PageState, PageStatus, TimelineEntry
from shared.domain.severity import Severity
from shared.errors import Conflict, DuplicateSignal, PreconditionFailed
from shared.ports import IncidentStore
from tests.factories import incident, signal
from tests.fakes import FakeStore
from tests.servers.azurite import fresh_table

T0 = "2026-11-25T10:00:00.000Z"
T1 = "2026-11-25T10:01:00.000Z"
T2 = "2026-11-25T10:02:00.000Z"
T3 = "2026-11-25T10:03:00.000Z"


@pytest.fixture(params=["fake", "sqlite", "azurite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IncidentStore]:
    if request.param == "fake":
        yield FakeStore()
    elif request.param == "sqlite":
        yield SqliteIncidentStore(tmp_path / "contract.sqlite3")
    else:
        yield TableIncidentStore(fresh_table(request.getfixturevalue("azurite")))


def other_key(n: int) -> dict[str, str]:
    """Fields of an incident on another resource (its own correlation key)."""
    return {"correlation_key": f"cosmos-availability|resource-{n}", "resource_id": f"/resource-{n}"}


# ---------------------------------------------------------------------------- commit and read


def test_a_created_incident_is_read_back_by_id_and_by_key_with_its_etag(store: IncidentStore) -> None:
    created = incident(
        pagerduty_state=PageState(PageStatus.TRIGGERED, Severity.SEV2),
        outbox=({"kind": "page", "incident_id": "inc-1"},),
        failures=("2026-11-25T10:00:00.000Z page trigger: refused",),
    )
    etag = store.commit(created, None)
    by_id, by_key = store.get("inc-1"), store.open_incident(created.correlation_key)
    assert by_id is not None and by_key is not None
    assert by_id.incident == created and by_id.etag == etag
    assert by_key.incident == created and by_key.etag == etag


def test_unknown_ids_and_keys_read_as_none(store: IncidentStore) -> None:
    assert store.get("inc-nope") is None
    assert store.open_incident("no|such|key") is None
    assert store.timeline("inc-nope") == []
    assert store.signals("inc-nope", 10) == []


def test_each_commit_answers_a_new_etag_and_the_old_one_goes_stale(store: IncidentStore) -> None:
    first = store.commit(incident(), None)
    second = store.commit(incident(signal_count=2), first)
    assert second != first
    with pytest.raises(PreconditionFailed):
        store.commit(incident(signal_count=3), first)
    found = store.get("inc-1")
    assert found is not None and found.etag == second and found.incident.signal_count == 2


def test_a_stale_commit_writes_neither_its_signal_nor_its_timeline(store: IncidentStore) -> None:
    first = store.commit(incident(), None)
    store.commit(incident(signal_count=2), first)
    late = signal(id="late")
    with pytest.raises(PreconditionFailed):
        store.commit(incident(signal_count=9), first, [late], [TimelineEntry(T1, "signal", "late")])
    assert store.timeline("inc-1") == []
    assert store.signals("inc-1", 10) == []
    assert store.record_informational(late), "the losing commit did not store its signal"


def test_a_commit_to_an_incident_that_was_never_created_is_a_precondition_failure(
    store: IncidentStore,
) -> None:
    with pytest.raises(PreconditionFailed):
        store.commit(incident(id="inc-ghost"), 'W/"1"')
    assert store.get("inc-ghost") is None


# ---------------------------------------------------------------------------- conflicts


def test_creating_an_existing_id_conflicts(store: IncidentStore) -> None:
    etag = store.commit(incident(), None)
    store.commit(incident(status=RESOLVED, resolved_at=T1), etag)  # its key is free again, its id is not
    with pytest.raises(Conflict):
        store.commit(incident(title="again"), None)
    found = store.get("inc-1")
    assert found is not None and found.incident.status == RESOLVED and found.incident.title != "again"


def test_a_second_open_incident_for_a_key_conflicts_and_writes_nothing(store: IncidentStore) -> None:
    store.commit(incident(), None, [signal(id="first")])
    rival = signal(id="rival")
    with pytest.raises(Conflict):
        store.commit(incident(id="inc-2"), None, [rival], [TimelineEntry(T0, "opened", "rival")])
    assert store.get("inc-2") is None
    assert store.timeline("inc-2") == [] and store.signals("inc-2", 10) == []
    assert store.record_informational(rival), "the losing create did not store its signal"
    found = store.open_incident(incident().correlation_key)
    assert found is not None and found.incident.id == "inc-1"


def test_a_resolved_incident_frees_its_key_for_a_new_one(store: IncidentStore) -> None:
    etag = store.commit(incident(), None)
    store.commit(incident(status=RESOLVED, resolved_at=T1), etag)
    assert store.open_incident(incident().correlation_key) is None
    store.commit(incident(id="inc-2", opened_at=T2), None)
    found = store.open_incident(incident().correlation_key)
    assert found is not None and found.incident.id == "inc-2"


def test_incidents_on_other_keys_do_not_conflict(store: IncidentStore) -> None:
    store.commit(incident(), None)
    store.commit(incident(id="inc-2", **other_key(2)), None)
    assert {i.id for i in store.list_incidents(None, None, 10)} == {"inc-1", "inc-2"}


# ---------------------------------------------------------------------------- signals


def test_a_repeated_signal_raises_duplicate_signal_and_writes_nothing(store: IncidentStore) -> None:
    s = signal(id="sig-1")
    etag = store.commit(incident(), None, [s], [TimelineEntry(T0, "opened", "Opened")])
    with pytest.raises(DuplicateSignal):
        store.commit(incident(signal_count=2), etag, [s], [TimelineEntry(T1, "signal", "again")])
    found = store.get("inc-1")
    assert found is not None and found.etag == etag and found.incident.signal_count == 1
    assert [e.text for e in store.timeline("inc-1")] == ["Opened"]
    assert [x.id for x in store.signals("inc-1", 10)] == ["sig-1"]


def test_a_signal_stored_for_one_incident_is_a_duplicate_for_any_other(store: IncidentStore) -> None:
    s = signal(id="sig-1")
    store.commit(incident(), None, [s])
    with pytest.raises(DuplicateSignal):
        store.commit(incident(id="inc-2", **other_key(2)), None, [s])
    assert store.get("inc-2") is None
    assert not store.record_informational(s)


def test_a_duplicate_signal_wins_over_a_stale_etag(store: IncidentStore) -> None:
    """A redelivered signal is reported as such even when the incident moved on since."""
    s = signal(id="sig-1")
    first = store.commit(incident(), None, [s])
    store.commit(incident(signal_count=2), first)
    with pytest.raises(DuplicateSignal):
        store.commit(incident(signal_count=3), first, [s])


def test_signals_are_listed_newest_first_per_incident_and_informational_apart(
    store: IncidentStore,
) -> None:
    etag = store.commit(incident(updated_at=T0), None, [signal(id="a")])
    etag = store.commit(incident(updated_at=T1), etag, [signal(id="b")])
    store.commit(incident(updated_at=T2), etag, [signal(id="c")])
    info = signal(id="info", kind="Contoso.Unknown", state="event", informational=True)
    assert store.record_informational(info)
    assert not store.record_informational(info)
    assert [s.id for s in store.signals("inc-1", 10)] == ["c", "b", "a"]
    assert [s.id for s in store.signals("inc-1", 2)] == ["c", "b"]
    assert store.signals(None, 10) == [info]


# ---------------------------------------------------------------------------- timeline


def test_the_timeline_is_in_time_order_from_commits_and_appends(store: IncidentStore) -> None:
    etag = store.commit(incident(), None, timeline=[TimelineEntry(T0, "opened", "1")])
    store.add_timeline("inc-1", [TimelineEntry(T1, "act", "2"), TimelineEntry(T1, "act", "3")])
    store.commit(incident(signal_count=2), etag, timeline=[TimelineEntry(T2, "signal", "4")])
    # In time order: a line written late takes its place by time; equal times keep write order.
    store.add_timeline("inc-1", [TimelineEntry(T0, "page", "5")])
    assert [(e.kind, e.text) for e in store.timeline("inc-1")] == [
        ("opened", "1"),
        ("page", "5"),
        ("act", "2"),
        ("act", "3"),
        ("signal", "4"),
    ]
    assert store.timeline("inc-1")[0] == TimelineEntry(T0, "opened", "1")


def test_timelines_are_kept_per_incident(store: IncidentStore) -> None:
    store.commit(incident(), None, timeline=[TimelineEntry(T0, "opened", "one")])
    store.commit(incident(id="inc-2", **other_key(2)), None, timeline=[TimelineEntry(T0, "opened", "two")])
    assert [e.text for e in store.timeline("inc-1")] == ["one"]
    assert [e.text for e in store.timeline("inc-2")] == ["two"]


# ---------------------------------------------------------------------------- external ids


def test_external_ids_are_linked_found_and_replaced(store: IncidentStore) -> None:
    assert store.find_external("pagerduty", "Q1") is None
    store.link_external("pagerduty", "Q1", "inc-1")
    store.link_external("pagerduty", "Q1", "inc-1")  # confirming a link is harmless
    assert store.find_external("pagerduty", "Q1") == "inc-1"
    store.link_external("pagerduty", "Q1", "inc-2")
    assert store.find_external("pagerduty", "Q1") == "inc-2"
    assert store.find_external("azure-monitor-resolved", "Q1") is None, "ids are per system"


# ---------------------------------------------------------------------------- queries


def test_incidents_are_listed_newest_first_filtered_and_limited(store: IncidentStore) -> None:
    store.commit(incident(id="inc-a", opened_at=T0, **other_key(1)), None)
    store.commit(incident(id="inc-b", opened_at=T2, tenant="hm", **other_key(2)), None)
    etag = store.commit(incident(id="inc-c", opened_at=T1, **other_key(3)), None)
    store.commit(incident(id="inc-c", opened_at=T1, status=RESOLVED, **other_key(3)), etag)
    assert [i.id for i in store.list_incidents(None, None, 10)] == ["inc-b", "inc-c", "inc-a"]
    assert [i.id for i in store.list_incidents(None, None, 2)] == ["inc-b", "inc-c"]
    assert [i.id for i in store.list_incidents("open", None, 10)] == ["inc-b", "inc-a"]
    assert [i.id for i in store.list_incidents("resolved", None, 10)] == ["inc-c"]
    assert [i.id for i in store.list_incidents(None, "ikea", 10)] == ["inc-c", "inc-a"]
    assert [i.id for i in store.list_incidents("open", "ikea", 10)] == ["inc-a"]
    assert store.list_incidents("open", "nobody", 10) == []


def test_incidents_opened_at_the_same_time_are_listed_by_id(store: IncidentStore) -> None:
    store.commit(incident(id="inc-b", **other_key(2)), None)
    store.commit(incident(id="inc-a", **other_key(1)), None)
    assert [i.id for i in store.list_incidents(None, None, 10)] == ["inc-a", "inc-b"]


def test_incidents_with_pending_effects_are_found_oldest_first(store: IncidentStore) -> None:
    pending = ({"kind": "page", "incident_id": "x", "event": "trigger"},)
    store.commit(incident(id="inc-late", updated_at=T2, outbox=pending, **other_key(1)), None)
    store.commit(incident(id="inc-early", updated_at=T1, outbox=pending, **other_key(2)), None)
    store.commit(incident(id="inc-none", updated_at=T0, **other_key(3)), None)
    etag = store.commit(incident(id="inc-cleared", updated_at=T0, outbox=pending, **other_key(4)), None)
    store.commit(incident(id="inc-cleared", updated_at=T0, **other_key(4)), etag)

    found = store.with_pending_effects(T3, 10)
    assert [v.incident.id for v in found] == ["inc-early", "inc-late"]
    assert [v.incident.id for v in store.with_pending_effects(T3, 1)] == ["inc-early"]
    assert [v.incident.id for v in store.with_pending_effects(T2, 10)] == ["inc-early"], "strictly older"
    assert store.with_pending_effects(T0, 10) == []
    # What the sweeper gets can be cleared with a conditional write.
    early = found[0]
    assert early.incident.outbox == pending
    store.commit(early.incident.evolve(outbox=()), early.etag)
    assert [v.incident.id for v in store.with_pending_effects(T3, 10)] == ["inc-late"]


def test_open_tenants_of_a_condition_since_a_time(store: IncidentStore) -> None:
    condition = incident().condition_key
    store.commit(incident(id="inc-hm", tenant="hm", opened_at=T2, **other_key(1)), None)
    store.commit(incident(id="inc-ikea", tenant="ikea", opened_at=T1, **other_key(2)), None)
    store.commit(incident(id="inc-old", tenant="zara", opened_at=T0, **other_key(3)), None)
    store.commit(incident(id="inc-notenant", tenant="", opened_at=T2, **other_key(4)), None)
    elsewhere = incident(id="inc-other", tenant="lidl", opened_at=T2, condition_key="other|redis|dev")
    store.commit(elsewhere.evolve(**other_key(5)), None)
    etag = store.commit(incident(id="inc-gone", tenant="coop", opened_at=T2, **other_key(6)), None)
    store.commit(incident(id="inc-gone", tenant="coop", opened_at=T2, status=RESOLVED, **other_key(6)), etag)

    assert store.open_tenants(condition, T1) == [("ikea", "inc-ikea"), ("hm", "inc-hm")]
    assert store.open_tenants(condition, T0) == [("zara", "inc-old"), ("ikea", "inc-ikea"), ("hm", "inc-hm")]
    assert store.open_tenants(condition, T3) == []
    assert store.open_tenants("no|such|condition", T0) == []


def test_ping_answers_when_the_store_is_reachable(store: IncidentStore) -> None:
    store.ping()


def test_reopening_a_resolved_incident_whose_key_has_another_open_one_conflicts(
    store: IncidentStore,
) -> None:
    """Nothing reopens an incident today; if something did, the store must still keep one open per key."""
    etag = store.commit(incident(), None)
    etag = store.commit(incident(status=RESOLVED, resolved_at=T1), etag)
    store.commit(incident(id="inc-2", opened_at=T2), None)
    with pytest.raises(Conflict):
        store.commit(incident(status=OPEN), etag)
    found = store.get("inc-1")
    assert found is not None and found.incident.status == RESOLVED and found.etag == etag


def test_one_commit_stores_several_signals_and_names_the_duplicates_of_a_later_one(
    store: IncidentStore,
) -> None:
    etag = store.commit(incident(signal_count=2), None, [signal(id="s1"), signal(id="s2")])
    assert {s.id for s in store.signals("inc-1", 10)} == {"s1", "s2"}
    with pytest.raises(DuplicateSignal) as raised:
        store.commit(incident(signal_count=4), etag, [signal(id="s3"), signal(id="s2"), signal(id="s1")])
    assert raised.value.signal_ids == {"s1", "s2"}
    found = store.get("inc-1")
    assert found is not None and found.etag == etag  # nothing of the refused batch was written
    assert {s.id for s in store.signals("inc-1", 10)} == {"s1", "s2"}


def test_external_ids_are_found_in_one_look_up_for_a_batch(store: IncidentStore) -> None:
    store.link_external("azure-monitor-resolved", "a", "inc-1")
    store.link_external("azure-monitor-resolved", "c", "-")
    store.link_external("pagerduty", "b", "inc-2")
    found = store.find_externals("azure-monitor-resolved", ["a", "b", "c", "a", "d"])
    assert found == {"a": "inc-1", "c": "-"}
    assert store.find_externals("azure-monitor-resolved", []) == {}
