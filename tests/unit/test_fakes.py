"""The fakes' own switches: a lost race, a queue that is down, scripted PagerDuty and Slack answers."""

from __future__ import annotations

import pytest

from shared.errors import PreconditionFailed, Rejected, Transient
from shared.ports import PageEvent, QueueMessage
from tests.factories import incident
from tests.fakes import FakeChat, FakeDirectory, FakePager, FakeQueue, FakeStore


def test_a_lost_race_stores_the_rivals_write_and_fails_the_callers() -> None:
    store = FakeStore()
    etag = store.put(incident())
    store.lose_races(1, rival=lambda current: current.evolve(signal_count=7))
    with pytest.raises(PreconditionFailed):
        store.commit(incident(signal_count=2), etag)
    found = store.get("inc-1")
    assert found is not None and found.incident.signal_count == 7 and found.etag != etag
    assert store.races_lost == 1
    # The next commit, on the fresh ETag, wins.
    store.commit(found.incident.evolve(signal_count=8), found.etag)
    assert [i.signal_count for i in store.commits] == [1, 7, 8]


def test_a_lost_race_is_spent_only_on_updates() -> None:
    store = FakeStore()
    store.lose_races(1)
    etag = store.put(incident())  # a create: no race to lose
    assert store.races_lost == 0
    with pytest.raises(PreconditionFailed):
        store.commit(incident(signal_count=2), etag)
    assert store.races_lost == 1


def test_the_store_keeps_its_own_copy() -> None:
    store = FakeStore()
    outbox = {"kind": "page"}
    store.put(incident(outbox=(outbox,)))
    outbox["kind"] = "changed after the write"
    found = store.get("inc-1")
    assert found is not None and found.incident.outbox == ({"kind": "page"},)


def _message(message_id: str, queue: str = "pages") -> QueueMessage:
    return QueueMessage(queue=queue, body=b"{}", message_id=message_id)


def test_the_queue_drops_a_message_id_it_has_seen_on_that_queue() -> None:
    queue = FakeQueue()
    queue.send([_message("a"), _message("b")])
    queue.send([_message("a"), _message("a", queue="notifications")])
    assert [(m.queue, m.message_id) for m in queue.sent] == [
        ("pages", "a"),
        ("pages", "b"),
        ("notifications", "a"),
    ]
    assert [m.message_id for m in queue.dropped] == ["a"]


def test_a_queue_that_is_down_raises_and_takes_nothing() -> None:
    queue = FakeQueue()
    queue.down = True
    with pytest.raises(ConnectionError):
        queue.send([_message("a")])
    assert queue.sent == [] and queue.send_calls == 1
    queue.down = False
    queue.send([_message("a")])
    assert [m.message_id for m in queue.sent] == ["a"], "a failed send did not mark the id as seen"


def test_dead_letters_are_listed_newest_first_per_queue() -> None:
    queue = FakeQueue()
    queue.dead_letter_message(_message("a"), "Rejected", "first")
    queue.dead_letter_message(_message("b", queue="notifications"), "Rejected", "elsewhere")
    queue.dead_letter_message(_message("c"), "MaxAttemptsExceeded", "second")
    assert [(d.message_id, d.reason, d.description) for d in queue.dead_letters("pages", 10)] == [
        ("c", "MaxAttemptsExceeded", "second"),
        ("a", "Rejected", "first"),
    ]


def test_the_pager_raises_scripted_errors_in_order_then_takes_events() -> None:
    pager = FakePager()
    pager.fail_next(1, Transient("500"))
    pager.fail_next(1, Transient("429", retry_after=30, held=True))
    event = PageEvent("trigger", "inc-1")
    raised = []
    for _ in range(2):
        with pytest.raises(Transient) as caught:
            pager.send(event, "r")
        raised.append(caught.value.retry_after)
    assert raised == [None, 30]
    assert pager.send(event, "r") == "PagerDuty (fake): trigger inc-1 via r"
    assert pager.sent == [(event, "r")] and len(pager.failed) == 2


def test_a_pager_without_a_route_rejects() -> None:
    with pytest.raises(Rejected):
        FakePager(route=None).route_for(incident())


def test_the_chat_answers_channel_ids_and_increasing_ts_and_scripted_errors() -> None:
    chat = FakeChat(channel_ids={"#incidents": "C0INCIDENTS"})
    assert chat.post("#incidents", "card", []) == ("C0INCIDENTS", "1700000000.000001")
    assert chat.post("C0INCIDENTS", "line", None, thread_ts="1700000000.000001")[1] == "1700000000.000002"
    chat.fail_next(1, Rejected("channel_not_found"))
    with pytest.raises(Rejected):
        chat.update("C0INCIDENTS", "1700000000.000001", "card", [])
    chat.update("C0INCIDENTS", "1700000000.000001", "card v2", [])
    assert [p.text for p in chat.cards()] == ["card"]
    assert [p.text for p in chat.replies("1700000000.000001")] == ["line"]
    assert [u.text for u in chat.updates] == ["card v2"]
    assert [op for op, _ in chat.failed] == ["chat.update"]


def test_the_directory_answers_what_it_holds_and_records_what_it_was_asked() -> None:
    directory = FakeDirectory({"Q1": "inc-1"})
    directory.fail_next(1, Transient("503"))
    with pytest.raises(Transient):
        directory.incident_key("Q1")
    assert directory.incident_key("Q1") == "inc-1"
    assert directory.incident_key("Q2") is None
    assert directory.asked == ["Q1", "Q1", "Q2"]


def test_take_hands_out_each_accepted_message_once_and_sent_keeps_them_all() -> None:
    queue = FakeQueue()
    queue.send([_message("a"), _message("b", queue="notifications")])
    assert [m.message_id for m in queue.take("pages")] == ["a"]
    queue.send([_message("c"), _message("a")])
    assert [m.message_id for m in queue.take("pages")] == ["c"]
    assert queue.take("pages") == []
    assert [m.message_id for m in queue.messages("pages")] == ["a", "c"]
    assert [m.message_id for m in queue.take("notifications")] == ["b"]
