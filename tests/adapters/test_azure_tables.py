"""What only Table Storage has to prove (on a real Azurite): racing writers lose nothing, a crash
between two partitions is tolerated and repaired, one commit of a full batch is one transaction."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from shared.adapters.azure_tables_client import (
    MAX_TRANSACTION_OPS,
    TableCounter,
    body_properties,
    escape_key,
    read_body,
)
from shared.adapters.azure_tables_store import STATUS, TableIncidentStore
from shared.domain.effects import Change
from shared.domain.incidents import RESOLVED, Incident, TimelineEntry
from shared.domain.signals import Signal
from shared.errors import DuplicateSignal
from shared.outbox import Outbox
from shared.ports import MAX_SIGNALS_PER_COMMIT
from tests.factories import incident, signal
from tests.fakes import FakeQueue
from tests.servers.azurite import fresh_table

T0 = "2026-11-25T10:00:00.000Z"
FUTURE = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def counter() -> TableCounter:
    return TableCounter()


@pytest.fixture
def store(azurite: str, counter: TableCounter) -> TableIncidentStore:
    return TableIncidentStore(fresh_table(azurite, counter), counter)


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch it as a failed write)."""


def test_racing_writers_each_get_their_change_in(store: TableIncidentStore, counter: TableCounter) -> None:
    """Eight threads, each with its own store instance (as eight Function instances), add one line each."""
    store.commit(incident(), None)
    writers = [TableIncidentStore(store.client, counter) for _ in range(8)]
    start = threading.Barrier(len(writers))
    errors: list[BaseException] = []

    def add(n: int) -> None:
        def change(current: Incident) -> Change:
            failure = f"writer {n} was here"
            return Change(
                current.evolve(failures=(*current.failures, failure)), [TimelineEntry(T0, "x", failure)]
            )

        try:
            start.wait()
            Outbox(writers[n], FakeQueue()).update("inc-1", change)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(len(writers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    found = store.get("inc-1")
    assert found is not None
    assert sorted(found.incident.failures) == sorted(f"writer {n} was here" for n in range(8)), (
        "no update lost"
    )
    assert sorted(e.text for e in store.timeline("inc-1")) == sorted(found.incident.failures)
    assert counter.preconditions_failed >= 1, "they did race"
    assert [i.id for i in store.open_incidents(10)] == ["inc-1"]
    status = store.open_incidents(10)[0]
    assert sorted(status.failures) == sorted(found.incident.failures), "the status copy is the last version"


def test_a_create_that_crashed_before_its_commit_is_invisible_and_repaired(
    store: TableIncidentStore,
) -> None:
    class CrashingStore(TableIncidentStore):
        def _operations(self, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
            raise Crash  # after the status intent, the id row and the list row were written

    crashing = CrashingStore(store.client)
    with pytest.raises(Crash):
        crashing.commit(incident(outbox=({"kind": "page"},)), None, [signal(id="s1")])
    assert store.get("inc-1") is None
    assert store.list_incidents(None, None, 10) == []
    assert store.open_incidents(10) == [] and store.open_incident_count() == 0
    assert store.open_overview(3, 10).total == 0, "an intent of an incident never written is no incident"
    assert store.outbox_backlog().incidents == 0
    assert store.with_pending_effects("2030-01-01", 10) == []
    assert store.open_tenants(incident().condition_key, T0) == []
    assert store.record_informational(signal(id="s1")), "the crashed commit's claim is taken over"

    assert store.repair(settled_before=FUTURE) == 1
    assert (
        _rows(store, STATUS) == []
        and _rows(store, "incident-list") == []
        and _rows(store, "incident-ids") == []
    )
    assert store.repair(settled_before=FUTURE) == 0
    store.commit(incident(), None)  # the key and the id are free
    assert [i.id for i in store.list_incidents("open", None, 10)] == ["inc-1"]


def test_a_commit_that_crashed_before_its_confirmation_is_read_as_stored_and_repaired(
    store: TableIncidentStore,
) -> None:
    class CrashingStore(TableIncidentStore):
        def _confirm(self, *args: Any, **kwargs: Any) -> None:
            raise Crash  # the incident is committed; its status row still says "unconfirmed"

    etag = store.commit(incident(), None)
    with pytest.raises(Crash):
        CrashingStore(store.client).commit(incident(status=RESOLVED, outbox=({"kind": "page"},)), etag)
    assert store.open_incidents(10) == [] and store.open_incident_count() == 0, "verified: it is resolved"
    assert store.open_overview(3, 10).total == 0
    assert [v.incident.id for v in store.with_pending_effects("2030-01-01", 10)] == ["inc-1"]
    # The list row is written after the commit and before the confirmation: it is right already.
    assert [i.id for i in store.list_incidents("open", None, 10)] == []

    assert store.repair(settled_before=FUTURE) == 1
    (row,) = _rows(store, STATUS)
    assert row["confirmed"] and row["status"] == "resolved" and row["has_outbox"]
    assert [i.id for i in store.list_incidents("resolved", None, 10)] == ["inc-1"]
    assert store.outbox_backlog().incidents == 1


def test_repair_leaves_a_commit_in_flight_alone(store: TableIncidentStore) -> None:
    class CrashingStore(TableIncidentStore):
        def _operations(self, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
            raise Crash

    with pytest.raises(Crash):
        CrashingStore(store.client).commit(incident(), None)
    assert store.repair() == 0, "younger than a minute: it may still be committing"


def test_a_full_batch_of_signals_with_their_lines_is_one_transaction(
    store: TableIncidentStore, counter: TableCounter
) -> None:
    batch = _signals(MAX_SIGNALS_PER_COMMIT)
    lines = [
        TimelineEntry(T0, "signal", f"signal {n}: " + "x" * 500) for n in range(3 * MAX_SIGNALS_PER_COMMIT)
    ]
    operations = store._operations(incident(), None, False, "pk", batch, lines)
    assert len(operations) <= MAX_TRANSACTION_OPS
    assert len(operations) == MAX_SIGNALS_PER_COMMIT + 3, "signals, incident, open row, one timeline entity"

    before = counter.requests
    store.commit(incident(signal_count=len(batch)), None, batch, lines)
    # status intent, id row, list row, signal claims, the transaction, the confirmation
    assert counter.requests - before == 6
    assert len(store.signals("inc-1", 100)) == MAX_SIGNALS_PER_COMMIT
    assert [e.text for e in store.timeline("inc-1")] == [e.text for e in lines]


def test_a_second_batch_is_a_transaction_too_and_a_redelivered_one_names_its_duplicates(
    store: TableIncidentStore, counter: TableCounter
) -> None:
    first, second = _signals(MAX_SIGNALS_PER_COMMIT), _signals(MAX_SIGNALS_PER_COMMIT, start=100)
    etag = store.commit(incident(), None, first)
    before = counter.requests
    etag = store.commit(incident(signal_count=80), etag, second, [TimelineEntry(T0, "signal", "40 more")])
    assert counter.requests - before == 4, "claims, status intent, the transaction, the confirmation"
    with pytest.raises(DuplicateSignal) as raised:
        store.commit(incident(signal_count=90), etag, [*_signals(5, start=500), *first[:3]])
    assert raised.value.signal_ids == {s.id for s in first[:3]}


def test_large_bodies_and_awkward_keys_round_trip(store: TableIncidentStore) -> None:
    awkward = "rule/with\\every#bad?char|and\x01control%25"
    big = incident(correlation_key=awkward, reasons=tuple("r" * 1000 + str(n) for n in range(100)))
    store.commit(big, None, [signal(id=awkward)], [TimelineEntry(T0, "opened", "y" * 70_000)])
    found = store.open_incident(awkward)
    assert found is not None and found.incident == big
    assert store.get("inc-1") == found
    assert store.signals("inc-1", 1)[0].id == awkward
    assert store.timeline("inc-1")[0].text == "y" * 70_000
    store.link_external("pager/duty", "Q#1?", "inc-1")
    assert store.find_external("pager/duty", "Q#1?") == "inc-1"


def test_keys_and_bodies_are_encoded_for_table_storage() -> None:
    assert escape_key("a/b\\c#d?e|f%g\x00h\x7fi") == "a%2Fb%5Cc%23d%3Fe%7Cf%25g%00h%7Fi"
    assert escape_key("plain-key.1") == "plain-key.1"
    long = escape_key("k" * 2000)
    assert len(long) <= 400 and long != escape_key("k" * 1999)
    props = body_properties({"text": "z" * 100_000})
    assert len(props) == 4 and all(len(v) <= 32_000 for v in props.values())
    assert read_body(props) == {"text": "z" * 100_000}


def test_the_counter_sees_requests_and_lost_races(store: TableIncidentStore, counter: TableCounter) -> None:
    etag = store.commit(incident(), None)
    store.commit(incident(signal_count=2), etag)
    with pytest.raises(Exception, match="changed"):
        store.commit(incident(signal_count=3), etag)
    with pytest.raises(Exception, match="exists"):
        store.commit(incident(), None)
    assert counter.preconditions_failed == 1 and counter.conflicts == 1
    assert counter.requests > 10


def _signals(count: int, start: int = 0) -> Sequence[Signal]:
    return [signal(id=f"sig-{n}") for n in range(start, start + count)]


def test_a_status_row_without_the_headline_is_read_through_to_its_incident(store: TableIncidentStore) -> None:
    store.commit(incident(title="Cosmos DB unavailable"), None)
    (row,) = _rows(store, STATUS)
    del row["headline"]  # as the release before headlines wrote it
    store.client.upsert_entity(row, mode=UpdateMode.REPLACE)

    (shown,) = store.open_overview(3, 10).shown
    assert (shown.id, shown.title, shown.component) == ("inc-1", "Cosmos DB unavailable", "cosmosdb")


def _rows(store: TableIncidentStore, partition: str) -> list[Any]:
    return list(store.client.query_entities("PartitionKey eq @pk", parameters={"pk": partition}))
