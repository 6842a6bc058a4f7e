"""Replaying a dead letter on real SQLite: a new id, once, and a line on the incident's timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.adapters.sqlite_queue import SqliteQueue
from shared.adapters.sqlite_store import SqliteIncidentStore
from shared.domain.effects import Effect, EffectKind
from shared.outbox import effect_message
from shared.ports import QueueMessage
from shared.retries import parse_effect
from shared.status.replay import ReplayRefused, replay_dead_letter, replay_message_id
from shared.triage.assessment import assess
from shared.triage.correlation import correlate
from shared.triage.policy import load_policy
from tests.factories import signal

POLICY = load_policy()
NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)


@pytest.fixture
def queue(tmp_path: Path) -> SqliteQueue:
    return SqliteQueue(tmp_path / "queue.db")


@pytest.fixture
def store(tmp_path: Path) -> SqliteIncidentStore:
    return SqliteIncidentStore(tmp_path / "incidents.db")


def _opened(store: SqliteIncidentStore) -> str:
    s = signal(azure_severity="Sev0")
    outcome = correlate(None, s, assess(s, POLICY), "2026-11-25T10:00:00.000Z", POLICY)
    assert outcome is not None
    store.commit(outcome.incident, None, [s])
    return outcome.incident.id


def test_a_replayed_card_goes_back_on_its_queue_once_and_says_so_on_the_timeline(
    queue: SqliteQueue, store: SqliteIncidentStore
) -> None:
    incident_id = _opened(store)
    effect = Effect(EffectKind.NOTIFY, incident_id, "opened", "sev1", "2026-11-25T10:00:00.000Z", attempt=11)
    queue.dead_letter_message(
        effect_message(effect), "MaxAttemptsExceeded", "Slack down (gave up after 12 tries)"
    )

    done = replay_dead_letter(queue, store, effect.message_id, NOW)
    assert (done.queue, done.incident_id, done.summary) == ("notifications", incident_id, "notify opened")
    assert done.new_message_id != effect.message_id and done.new_message_id.startswith(effect.message_id)
    copy = queue.receive("notifications")
    assert copy is not None and copy.message_id == done.new_message_id
    assert parse_effect(copy.body, EffectKind.NOTIFY) == effect, "the same effect, byte for byte"
    (line,) = [e for e in store.timeline(incident_id) if e.kind == "replay"]
    assert line.at == "2026-11-25T10:30:00.000Z"
    assert line.text == (
        "Replayed dead-lettered notify opened (MaxAttemptsExceeded)"
        f" as message {done.new_message_id} by dr replay"
    )

    with pytest.raises(ReplayRefused, match="no dead letter with message id"):
        replay_dead_letter(queue, store, effect.message_id, NOW)
    assert len([e for e in store.timeline(incident_id) if e.kind == "replay"]) == 1


def test_an_id_dead_lettered_in_two_queues_needs_the_queue_named(
    queue: SqliteQueue, store: SqliteIncidentStore
) -> None:
    for name in ("pages", "notifications"):
        queue.dead_letter_message(QueueMessage(name, b"{}", "same-id"), "PoisonMessage", "not an effect")
    with pytest.raises(ReplayRefused, match="dead-lettered in notifications, pages: pass --queue"):
        replay_dead_letter(queue, store, "same-id", NOW)
    done = replay_dead_letter(queue, store, "same-id", NOW, queue="pages")
    assert (done.queue, done.incident_id, done.summary) == ("pages", None, "")
    assert [d.queue for d in queue.find_dead_letters("same-id")] == ["notifications"]
    with pytest.raises(ReplayRefused, match="in actions"):
        replay_dead_letter(queue, store, "same-id", NOW, queue="actions")


def test_an_effect_for_an_incident_we_do_not_have_writes_no_timeline(
    queue: SqliteQueue, store: SqliteIncidentStore
) -> None:
    effect = Effect(EffectKind.PAGE, "inc-20261125-0000000000", "trigger", "sev1", "2026-11-25T10:00:00.000Z")
    queue.dead_letter_message(effect_message(effect), "PoisonMessage", "page for unknown incident")
    assert replay_dead_letter(queue, store, effect.message_id, NOW).incident_id is None
    assert store.timeline(effect.incident_id) == []


def test_replay_ids_fit_service_bus_and_differ_each_time() -> None:
    long = "x" * 128
    ids = {replay_message_id(long) for _ in range(10)}
    assert len(ids) == 10 and all(len(i) <= 128 for i in ids)
