"""The ActionStore and AutomationSwitch contract, on SQLite and on Table Storage (a real Azurite) alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.adapters.azure_tables_actions import ACTION_ROWS, TableActionStore
from shared.adapters.azure_tables_store import NOTES, TableIncidentStore
from shared.adapters.sqlite_actions import SqliteActionStore
from shared.adapters.sqlite_store import SqliteIncidentStore
from shared.domain.actions import AUTOMATION, WAKE, ActionRecord, ActionState, Actor, Pause, Wake, action_id
from shared.domain.incidents import TimelineEntry
from shared.errors import PreconditionFailed, StartRefused
from shared.ports import ActionStore, ActiveActions, AutomationSwitch, IncidentRepository
from tests.factories import incident
from tests.servers.azurite import fresh_table

T0 = "2026-12-01T10:00:00.000Z"
T1 = "2026-12-01T10:01:00.000Z"
T2 = "2026-12-01T10:02:00.000Z"
RULE = Actor(AUTOMATION, "redis-unavailable")
CACHE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Cache/Redis/Cache-1"


@dataclass
class Stores:
    incidents: IncidentRepository
    actions: ActionStore
    switch: AutomationSwitch


@pytest.fixture(params=["sqlite", "azurite"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "sqlite":
        store = SqliteIncidentStore(tmp_path / "actions.sqlite3")
        sqlite_actions = SqliteActionStore(store.db)
        yield Stores(store, sqlite_actions, sqlite_actions)
    else:
        client = fresh_table(request.getfixturevalue("azurite"))
        table_actions = TableActionStore(client)
        yield Stores(TableIncidentStore(client), table_actions, table_actions)


def planned(
    incident_id: str = "inc-1", target: str = CACHE, at: str = T0, action: str = "redis.failover"
) -> ActionRecord:
    return ActionRecord(
        id=action_id(incident_id, action, target),
        incident_id=incident_id,
        action=action,
        target=target,
        mode="auto",
        state=ActionState.PLANNED,
        planned_by=RULE,
        planned_at=at,
        updated_at=at,
        params={"shard": 0},
    )


def test_a_created_action_is_read_back_at_version_one_with_its_line_in_the_timeline(stores: Stores) -> None:
    record = planned()
    line = TimelineEntry(T0, "action", "planned")
    assert stores.actions.create_action(record, [line]) is not None
    found = stores.actions.get_action(record.id)
    assert found is not None and (found.record, found.version) == (record, 1)
    assert stores.incidents.timeline("inc-1") == [line]
    assert stores.actions.get_action("act-nope") is None


def test_creating_an_existing_action_answers_none_and_writes_no_line(stores: Stores) -> None:
    record = planned()
    stores.actions.create_action(record, [TimelineEntry(T0, "action", "first")])
    assert (
        stores.actions.create_action(record.evolve(mode="approve"), [TimelineEntry(T0, "action", "x")])
        is None
    )
    found = stores.actions.get_action(record.id)
    assert found is not None and found.record.mode == "auto"
    assert [e.text for e in stores.incidents.timeline("inc-1")] == ["first"]


def test_a_save_is_conditional_on_the_version_read(stores: Stores) -> None:
    record = planned()
    stores.actions.create_action(record, [])
    running, line = record.moved(ActionState.RUNNING, RULE, T1)
    saved = stores.actions.save_action(running, 1, [line])
    assert saved.version == 2
    done, late = running.moved(ActionState.SUCCEEDED, RULE, T2)
    with pytest.raises(PreconditionFailed):
        stores.actions.save_action(done, 1, [late])  # a second writer that read version 1
    found = stores.actions.get_action(record.id)
    assert found is not None and found.record.state is ActionState.RUNNING and found.version == 2
    assert [e.text for e in stores.incidents.timeline("inc-1")] == [line.text], "the loser's line is not kept"
    with pytest.raises(PreconditionFailed):
        stores.actions.save_action(planned(incident_id="inc-ghost"), 1, [])


def test_actions_are_listed_newest_first_by_state_and_incident(stores: Stores) -> None:
    a = planned("inc-1", CACHE, T0)
    b = planned("inc-2", CACHE + "-b", T2)
    c = planned("inc-1", CACHE + "-c", T1)
    for record in (a, b, c):
        stores.actions.create_action(record, [])
    stores.actions.save_action(c.moved(ActionState.RUNNING, RULE, T2)[0], 1, [])
    assert [r.id for r in stores.actions.list_actions(None, None, 10)] == [b.id, c.id, a.id]
    assert [r.id for r in stores.actions.list_actions(None, None, 2)] == [b.id, c.id]
    assert [r.id for r in stores.actions.list_actions("planned", None, 10)] == [b.id, a.id]
    assert [r.id for r in stores.actions.list_actions(None, "inc-1", 10)] == [c.id, a.id]
    assert [r.id for r in stores.actions.list_actions("running", "inc-2", 10)] == []


def test_actions_in_several_states_are_read_at_once_newest_first(stores: Stores) -> None:
    a = planned("inc-1", CACHE, T0)
    b = planned("inc-2", CACHE + "-b", T2)
    c = planned("inc-3", CACHE + "-c", T1)
    for record in (a, b, c):
        stores.actions.create_action(record, [])
    stores.actions.save_action(c.moved(ActionState.RUNNING, RULE, T2)[0], 1, [])
    stores.actions.save_action(a.moved(ActionState.AWAITING_APPROVAL, RULE, T2)[0], 1, [])
    assert isinstance(stores.actions, ActiveActions)
    found = stores.actions.actions_in(["running", "awaiting approval"], 10)
    assert [(r.id, r.state) for r in found] == [
        (c.id, ActionState.RUNNING),
        (a.id, ActionState.AWAITING_APPROVAL),
    ]
    assert [r.id for r in stores.actions.actions_in(["running", "awaiting approval"], 1)] == [c.id]
    assert stores.actions.actions_in(["failed"], 10) == []


def _waking(record: ActionRecord, at: str, **more: object) -> ActionRecord:
    wake = Wake("check", 1, at).to_dict()
    return record.evolve(continuation=dict(record.continuation) | {WAKE: wake} | more)


def test_actions_due_are_those_whose_wake_or_pending_escalation_is_due_oldest_first(stores: Stores) -> None:
    """What the sweep reads: a wake due by the time asked (not one due later, nor none), and a final
    record only while its escalation is pending; each at the version a conditional write needs."""
    waiting = planned("inc-1", CACHE, T0)
    later = planned("inc-2", CACHE + "-b", T0)
    never = planned("inc-3", CACHE + "-c", T0)
    ended = planned("inc-4", CACHE + "-d", T0)
    pending = planned("inc-5", CACHE + "-e", T0)
    for record in (waiting, later, never, ended, pending):
        stores.actions.create_action(record, [])
    assert stores.actions.actions_due(T2, 10) == [], "nothing awaits a message yet"

    stores.actions.save_action(_waking(waiting.moved(ActionState.AWAITING_APPROVAL, RULE, T0)[0], T1), 1, [])
    stores.actions.save_action(_waking(later.moved(ActionState.RUNNING, RULE, T0)[0], T2), 1, [])
    stores.actions.save_action(never.moved(ActionState.RUNNING, RULE, T0)[0], 1, [])  # a claim: no wake
    stores.actions.save_action(_waking(ended.moved(ActionState.REFUSED, RULE, T0)[0], T0), 1, [])
    denied = _waking(pending.moved(ActionState.REFUSED, RULE, T0)[0], T0, escalation_pending="refused: x")
    stores.actions.save_action(denied, 1, [])

    found = stores.actions.actions_due(T1, 10)
    assert [(v.record.id, v.version, v.record.wake_at) for v in found] == [
        (pending.id, 2, T0),
        (waiting.id, 2, T1),
    ]
    assert [v.record.id for v in stores.actions.actions_due(T1, 1)] == [pending.id]
    assert [v.record.id for v in stores.actions.actions_due(T2, 10)] == [pending.id, waiting.id, later.id]
    assert stores.actions.actions_due("2026-12-01T09:59:59.999Z", 10) == []

    # A version read here is what a conditional write goes on from; the escalation cleared, it is done.
    cleared = denied.evolve(continuation={})
    stores.actions.save_action(cleared, found[0].version, [])
    assert [v.record.id for v in stores.actions.actions_due(T2, 10)] == [waiting.id, later.id]
    with pytest.raises(PreconditionFailed):
        stores.actions.save_action(found[1].record, found[1].version - 1, [])


def test_a_sqlite_file_from_before_the_wakes_gets_their_column(tmp_path: Path) -> None:
    store = SqliteIncidentStore(tmp_path / "old.sqlite3")
    conn = store.db.connection()
    conn.executescript(
        "CREATE TABLE actions (id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, resource TEXT NOT NULL,"
        " state TEXT NOT NULL, planned_at TEXT NOT NULL, started_at TEXT NOT NULL,"
        " version INTEGER NOT NULL, body TEXT NOT NULL);"
    )
    old = planned()
    conn.execute(
        "INSERT INTO actions VALUES (?,?,?,?,?,?,1,?)",
        (old.id, old.incident_id, old.target.lower(), "planned", T0, "", json.dumps(old.to_dict())),
    )
    actions = SqliteActionStore(store.db)
    SqliteActionStore(store.db)  # a second opening finds the column there
    assert actions.actions_due(T2, 10) == []
    actions.save_action(_waking(old, T1), 1, [])
    assert [v.record.id for v in actions.actions_due(T2, 10)] == [old.id]


def test_actions_on_a_resource_since_a_time_and_started_since_a_time(stores: Stores) -> None:
    early = planned("inc-1", CACHE, T0)
    late = planned("inc-2", CACHE.lower(), T2)
    other = planned("inc-3", CACHE + "-other", T1)
    for record in (early, late, other):
        stores.actions.create_action(record, [])
    assert [r.id for r in stores.actions.actions_on(CACHE.upper(), T0)] == [early.id, late.id], "any case"
    assert [r.id for r in stores.actions.actions_on(CACHE, T1)] == [late.id]
    assert stores.actions.started_since(T0) == []
    stores.actions.save_action(other.moved(ActionState.RUNNING, RULE, T1)[0], 1, [])
    assert [r.id for r in stores.actions.started_since(T0)] == [other.id]
    assert stores.actions.started_since(T2) == []


def at_most(cap: int) -> Callable[[Sequence[ActionRecord]], str | None]:
    """An admit that lets `cap` starts through, saying how many it saw when it refuses."""
    return lambda started: f"{len(started)} started" if len(started) >= cap else None


def test_a_capped_start_is_written_with_its_line_when_admitted(stores: Stores) -> None:
    record = planned()
    stores.actions.create_action(record, [])
    seen: list[list[str]] = []

    def admit(started: Sequence[ActionRecord]) -> str | None:
        seen.append([r.id for r in started])
        return None

    running, line = record.moved(ActionState.RUNNING, RULE, T1)
    saved = stores.actions.start_action(running, 1, [line], T0, admit)
    assert (saved.record, saved.version) == (running, 2)
    assert seen == [[]]
    assert [r.id for r in stores.actions.started_since(T0)] == [record.id]
    assert [e.text for e in stores.incidents.timeline("inc-1")] == [line.text]
    again = planned("inc-2", CACHE + "-2")
    stores.actions.create_action(again, [])
    stores.actions.start_action(again.moved(ActionState.RUNNING, RULE, T2)[0], 1, [], T0, admit)
    assert seen[-1] == [record.id], "the second start was shown the first"


def test_a_refused_start_writes_nothing_and_says_why(stores: Stores) -> None:
    first, second = planned("inc-1", CACHE), planned("inc-2", CACHE + "-2")
    for record in (first, second):
        stores.actions.create_action(record, [])
    stores.actions.start_action(first.moved(ActionState.RUNNING, RULE, T1)[0], 1, [], T0, at_most(1))
    running, line = second.moved(ActionState.RUNNING, RULE, T1)
    with pytest.raises(StartRefused, match="1 started"):
        stores.actions.start_action(running, 1, [line], T0, at_most(1))
    found = stores.actions.get_action(second.id)
    assert found is not None and (found.record, found.version) == (second, 1)
    assert stores.incidents.timeline("inc-2") == []


def test_a_capped_start_is_conditional_on_the_version_read(stores: Stores) -> None:
    record = planned()
    stores.actions.create_action(record, [])
    refused, _ = record.moved(ActionState.REFUSED, RULE, T1, "by another instance")
    stores.actions.save_action(refused, 1, [])
    with pytest.raises(PreconditionFailed):
        stores.actions.start_action(record.moved(ActionState.RUNNING, RULE, T1)[0], 1, [], T0, at_most(5))
    assert stores.actions.started_since(T0) == []


def test_starts_racing_from_many_threads_stay_within_the_cap(stores: Stores) -> None:
    records = [planned(f"inc-{n}", f"{CACHE}-{n}") for n in range(12)]
    for record in records:
        stores.actions.create_action(record, [])
    ready = threading.Barrier(len(records))
    outcomes: dict[str, str] = {}

    def start(record: ActionRecord) -> None:
        running, line = record.moved(ActionState.RUNNING, RULE, T1)
        ready.wait(10)
        try:
            stores.actions.start_action(running, 1, [line], T0, at_most(3))
            outcomes[record.id] = "started"
        except StartRefused:
            outcomes[record.id] = "refused"
        except Exception as e:  # reported below: a thread's exception would otherwise be lost
            outcomes[record.id] = repr(e)

    threads = [threading.Thread(target=start, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes.values()) == ["refused"] * 9 + ["started"] * 3, outcomes
    started = {r.id for r in stores.actions.started_since(T0)}
    assert started == {i for i, o in outcomes.items() if o == "started"}


def test_pauses_are_set_replaced_and_resumed(stores: Stores) -> None:
    assert stores.switch.pauses() == []
    stores.switch.pause(Pause("", "alice via cli", T0, "drill"))
    stores.switch.pause(Pause("ikea", "bob via slack", T1))
    stores.switch.pause(Pause("", "carol via api", T2, "again"))  # the newest reason wins
    assert stores.switch.pauses() == [
        Pause("", "carol via api", T2, "again"),
        Pause("ikea", "bob via slack", T1),
    ]
    assert stores.switch.resume("ikea")
    assert not stores.switch.resume("ikea")
    assert not stores.switch.resume("hm")
    assert stores.switch.pauses() == [Pause("", "carol via api", T2, "again")]


def test_action_lines_and_commit_lines_make_one_timeline_in_time_order(stores: Stores) -> None:
    stores.incidents.commit(
        incident(), None, timeline=[TimelineEntry(T0, "opened", "1"), TimelineEntry(T2, "x", "4")]
    )
    stores.actions.create_action(planned(), [TimelineEntry(T1, "action", "2")])
    stores.incidents.add_timeline("inc-1", [TimelineEntry(T1, "page", "3")])
    assert [e.text for e in stores.incidents.timeline("inc-1")] == ["1", "2", "3", "4"]


def test_on_table_storage_a_start_between_the_count_and_the_write_is_counted_again(azurite: str) -> None:
    # What one write transaction rules out on SQLite: another instance starts an action after this
    # one counted. The starts gate fails this transaction, and the count taken again sees it.
    store = TableActionStore(fresh_table(azurite))
    ours, theirs = planned("inc-1", CACHE), planned("inc-2", CACHE + "-2")
    for record in (ours, theirs):
        store.create_action(record, [])
    counts: list[int] = []

    def admit(started: Sequence[ActionRecord]) -> str | None:
        counts.append(len(started))
        if len(counts) == 1:
            other = TableActionStore(store.client)  # another instance, on the same table
            other.start_action(theirs.moved(ActionState.RUNNING, RULE, T1)[0], 1, [], T0, at_most(1))
        return at_most(1)(started)

    with pytest.raises(StartRefused, match="1 started"):
        store.start_action(ours.moved(ActionState.RUNNING, RULE, T1)[0], 1, [], T0, admit)
    assert counts == [0, 1], "counted, then (the gate having refused the write) counted again"
    assert [r.id for r in store.started_since(T0)] == [theirs.id]


def test_on_table_storage_a_pause_between_the_guardrails_and_the_write_is_read_again(azurite: str) -> None:
    store = TableActionStore(fresh_table(azurite))
    record = planned()
    store.create_action(record, [])
    seen: list[list[Pause]] = []

    def admit(started: Sequence[ActionRecord]) -> str | None:
        seen.append(store.pauses())
        if len(seen) == 1:  # another instance pauses automation after this start read the pauses
            TableActionStore(store.client).pause(Pause("", "alice", T1, "stop"))
        return "paused" if seen[-1] else None

    with pytest.raises(StartRefused, match="paused"):
        store.start_action(record.moved(ActionState.RUNNING, RULE, T1)[0], 1, [], T0, admit)
    assert [len(p) for p in seen] == [0, 1], "read, then (the gate having refused the write) read again"
    assert store.started_since(T0) == []


def test_on_table_storage_a_row_from_before_the_wakes_is_never_due(azurite: str) -> None:
    """A row written before `wake_at` was a property has none: the query passes it over."""
    from azure.data.tables import UpdateMode

    store = TableActionStore(fresh_table(azurite))
    old, new = planned("inc-1", CACHE), planned("inc-2", CACHE + "-2")
    for record in (old, new):
        store.create_action(_waking(record, T0), [])
    row = dict(store.client.get_entity(NOTES, ACTION_ROWS + old.id))
    del row["wake_at"]
    store.client.upsert_entity(row, mode=UpdateMode.REPLACE)
    assert "wake_at" not in store.client.get_entity(NOTES, ACTION_ROWS + old.id)
    assert [v.record.id for v in store.actions_due(T2, 10)] == [new.id]
