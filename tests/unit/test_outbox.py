"""The outbox on the fakes: effects stored with the incident are sent, then cleared, and never lost."""

from __future__ import annotations

import pytest

from shared.domain.effects import Change, Effect, EffectKind
from shared.domain.incidents import Incident, TimelineEntry
from shared.errors import StoreContention
from shared.outbox import MAX_ATTEMPTS, Outbox, effect_message
from shared.ports import Versioned
from tests.factories import incident, signal
from tests.fakes import FakeQueue, FakeStore

NOW = "2026-11-25T10:00:05.000Z"
PAGE = Effect(EffectKind.PAGE, "inc-1", "trigger", "sev2", NOW)
CARD = Effect(EffectKind.NOTIFY, "inc-1", "opened", "sev2", NOW)
LATE = Effect(EffectKind.NOTIFY, "inc-1", "count-10", "sev2", NOW)


@pytest.fixture
def outbox(store: FakeStore, queue: FakeQueue) -> Outbox:
    return Outbox(store, queue)


def with_outbox(store: FakeStore, *effects: Effect) -> Versioned:
    store.put(incident(outbox=tuple(e.to_dict() for e in effects)))
    found = store.get("inc-1")
    assert found is not None
    return found


def stored(store: FakeStore) -> Incident:
    found = store.get("inc-1")
    assert found is not None
    return found.incident


# ---------------------------------------------------------------------------- flush


def test_flush_sends_the_outbox_then_clears_it(outbox: Outbox, store: FakeStore, queue: FakeQueue) -> None:
    outbox.flush(with_outbox(store, PAGE, CARD))
    assert queue.sent == [effect_message(PAGE), effect_message(CARD)]
    assert queue.send_calls == 1, "one batch"
    assert stored(store).outbox == ()
    assert store.with_pending_effects("2099-01-01", 10) == []


def test_flush_of_an_empty_outbox_sends_and_writes_nothing(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    versioned = with_outbox(store)
    commits = len(store.commits)
    outbox.flush(versioned)
    assert queue.send_calls == 0 and queue.sent == []
    assert len(store.commits) == commits


def test_with_the_queue_down_the_outbox_is_left_for_the_sweeper(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    versioned = with_outbox(store, PAGE, CARD)
    queue.down = True

    outbox.flush(versioned)  # does not raise: the effects are safe on the incident

    assert queue.sent == [] and queue.send_calls == 1
    after = store.get("inc-1")
    assert after is not None and after.etag == versioned.etag, "nothing written"
    (pending,) = store.with_pending_effects("2099-01-01", 10)
    assert [Effect.from_dict(e) for e in pending.incident.outbox] == [PAGE, CARD]

    queue.down = False  # the sweeper's turn
    outbox.flush(pending)
    assert queue.sent == [effect_message(PAGE), effect_message(CARD)]
    assert stored(store).outbox == ()


def test_clearing_that_loses_a_race_rereads_and_removes_only_what_was_sent(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    versioned = with_outbox(store, PAGE, CARD)
    # Between our send and our clear, another writer adds an effect (and a signal) to the incident.
    store.lose_races(1, rival=lambda i: i.evolve(signal_count=2, outbox=(*i.outbox, LATE.to_dict())))

    outbox.flush(versioned)

    assert queue.sent == [effect_message(PAGE), effect_message(CARD)]
    assert store.races_lost == 1
    after = stored(store)
    assert [Effect.from_dict(e) for e in after.outbox] == [LATE], "the rival's effect is left to send"
    assert after.signal_count == 2, "the rival's write is kept"


def test_clearing_that_keeps_losing_gives_up_and_leaves_the_outbox_for_the_sweeper(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    versioned = with_outbox(store, PAGE)
    store.lose_races(MAX_ATTEMPTS)

    outbox.flush(versioned)  # no exception: the queue drops the sweeper's resend as a duplicate

    assert store.races_lost == MAX_ATTEMPTS
    assert queue.sent == [effect_message(PAGE)]
    assert [Effect.from_dict(e) for e in stored(store).outbox] == [PAGE]
    (pending,) = store.with_pending_effects("2099-01-01", 10)
    outbox.flush(pending)
    assert queue.sent == [effect_message(PAGE)] and queue.dropped == [effect_message(PAGE)]
    assert stored(store).outbox == ()


# ---------------------------------------------------------------------------- update


def test_update_applies_the_change_sends_its_effects_and_clears_them(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    store.put(incident())

    def acknowledge(current: Incident) -> Change:
        updated = current.evolve(acknowledged_by="Ben")
        return Change(updated, [TimelineEntry(NOW, "pagerduty", "Acknowledged by Ben")], [CARD])

    result = outbox.update("inc-1", acknowledge)

    assert result is not None and result.acknowledged_by == "Ben"
    assert [Effect.from_dict(e) for e in result.outbox] == [CARD], "returned as committed, outbox and all"
    assert queue.sent == [effect_message(CARD)]
    after = stored(store)
    assert after.acknowledged_by == "Ben" and after.outbox == ()
    assert store.timeline("inc-1") == [TimelineEntry(NOW, "pagerduty", "Acknowledged by Ben")]
    # The effect was stored with the change before it was sent.
    assert [Effect.from_dict(e) for e in store.commits[1].outbox] == [CARD]


def test_update_with_the_queue_down_keeps_the_change_and_its_effects(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    store.put(incident())
    queue.down = True
    result = outbox.update("inc-1", lambda current: Change(current.evolve(signal_count=2), (), [PAGE]))
    assert result is not None and queue.sent == []
    after = stored(store)
    assert after.signal_count == 2 and [Effect.from_dict(e) for e in after.outbox] == [PAGE]


def test_update_rereads_and_retries_the_change_after_a_lost_race(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    store.put(incident())
    store.lose_races(3, rival=lambda i: i.evolve(signal_count=i.signal_count + 1))
    seen: list[int] = []

    def mark(current: Incident) -> Change:
        seen.append(current.signal_count)
        return Change(current.evolve(title="marked"), (), [PAGE])

    result = outbox.update("inc-1", mark)

    assert seen == [1, 2, 3, 4], "each try starts from what the rival wrote"
    assert result is not None and result.signal_count == 4 and result.title == "marked"
    after = stored(store)
    assert (after.signal_count, after.title, after.outbox) == (4, "marked", ())
    assert queue.sent == [effect_message(PAGE)], "the effects of the winning try only, once"


def test_update_wins_on_its_last_attempt(outbox: Outbox, store: FakeStore, queue: FakeQueue) -> None:
    store.put(incident())
    store.lose_races(MAX_ATTEMPTS - 1)
    result = outbox.update("inc-1", lambda current: Change(current.evolve(title="last"), (), [PAGE]))
    assert result is not None and stored(store).title == "last"
    assert queue.sent == [effect_message(PAGE)]


def test_update_that_keeps_losing_raises_store_contention_and_sends_nothing(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    store.put(incident())
    store.lose_races(MAX_ATTEMPTS)
    tries = 0

    def change(current: Incident) -> Change:
        nonlocal tries
        tries += 1
        return Change(current.evolve(title="never"), [TimelineEntry(NOW, "x", "never")], [PAGE])

    with pytest.raises(StoreContention, match="inc-1"):
        outbox.update("inc-1", change)

    assert tries == MAX_ATTEMPTS
    assert queue.sent == [] and queue.send_calls == 0
    assert stored(store).title != "never" and store.timeline("inc-1") == []


def test_update_with_a_signal_seen_before_returns_none_and_writes_nothing(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    store.put(incident())
    event = signal(id="pd:E1", source="pagerduty", informational=True)

    def count(current: Incident) -> Change:
        return Change(
            current.evolve(signal_count=current.signal_count + 1), [TimelineEntry(NOW, "x", "y")], [CARD]
        )

    assert outbox.update("inc-1", count, signal=event) is not None
    commits, timeline = len(store.commits), store.timeline("inc-1")
    queue.take("notifications")

    assert outbox.update("inc-1", count, signal=event) is None  # a redelivery

    assert len(store.commits) == commits and store.timeline("inc-1") == timeline
    assert stored(store).signal_count == 2
    assert queue.take("notifications") == [] and queue.send_calls == 1
    assert [s.id for s in store.signals("inc-1", 10)] == ["pd:E1"]


def test_update_of_an_unknown_incident_returns_none_without_asking_the_change(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    asked: list[Incident] = []

    def change(current: Incident) -> Change:
        asked.append(current)
        return Change(current)

    assert outbox.update("inc-nope", change) is None
    assert asked == [] and store.commits == [] and queue.sent == []


def test_a_change_that_declines_writes_and_sends_nothing(
    outbox: Outbox, store: FakeStore, queue: FakeQueue
) -> None:
    store.put(incident())
    assert outbox.update("inc-1", lambda current: None) is None
    assert len(store.commits) == 1 and queue.sent == [] and queue.send_calls == 0
