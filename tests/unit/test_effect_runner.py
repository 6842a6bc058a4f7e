"""EffectRunner on the fakes: which messages are poison, and how a failure comes back through the queue."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.bootstrap import Services
from shared.clock import iso
from shared.domain.effects import Effect, EffectKind
from shared.domain.incidents import Incident, TimelineEntry
from shared.errors import PoisonMessage, Rejected, Transient
from shared.outbox import effect_message
from shared.retries import Backoff, EffectRunner, RetryRule, parse_effect
from tests.factories import FakeClock, incident
from tests.fakes import FakeQueue, FakeStore

NOW = "2026-11-25T10:00:00.000Z"
PAGE = Effect(EffectKind.PAGE, "inc-1", "trigger", "sev2", NOW)
CARD = Effect(EffectKind.NOTIFY, "inc-1", "opened", "sev2", NOW)
ACT = Effect(EffectKind.ACT, "inc-1", "cosmosdb.failover", "sev1", NOW, target="/r/x", mode="suggest")


class Work:
    """A handler's work that records what it was given and fails as scripted."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[Effect, Incident]] = []

    def __call__(self, effect: Effect, incident: Incident) -> None:
        self.calls.append((effect, incident))
        if self.errors:
            raise self.errors.pop(0)


@pytest.fixture
def runner(store: FakeStore, queue: FakeQueue, app: Services, clock: FakeClock) -> EffectRunner:
    store.put(incident())
    return EffectRunner(store, queue, app.outbox, clock, Backoff(base=2, cap=300))


def effect_of(body: bytes) -> Effect:
    return Effect.from_dict(json.loads(body))


# ---------------------------------------------------------------------------- poison


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{oops",
        b"\xff\xfe",
        b"null",
        b"[]",
        b'"page"',
        b"{}",
        b'{"kind": "page"}',
        b'{"kind": "email", "incident_id": "inc-1", "event": "e", "severity": "sev2", "at": "t"}',
        b'{"kind": "page", "incident_id": "inc-1", "event": "e", "severity": "sev2", "at": "t",'
        b' "attempt": "x"}',
        b'{"kind": "page", "incident_id": "inc-1", "event": "e", "severity": "sev2", "at": "t",'
        b' "attempt": 1e999}',
        b"[" * 10_000 + b"]" * 10_000,
    ],
    ids=[
        "empty",
        "not-json",
        "not-utf8",
        "null",
        "list",
        "string",
        "no-fields",
        "kind-only",
        "kind-unknown",
        "attempt-not-a-number",
        "attempt-infinite",
        "deeply-nested",
    ],
)
def test_a_message_that_is_not_an_effect_is_poison(
    runner: EffectRunner, store: FakeStore, queue: FakeQueue, body: bytes
) -> None:
    work = Work()
    with pytest.raises(PoisonMessage, match="not an effect message"):
        runner.run(body, EffectKind.PAGE, RetryRule(), work)
    assert work.calls == [] and queue.sent == [] and queue.dead == [] and len(store.commits) == 1


@pytest.mark.parametrize(
    ("effect", "kind"), [(CARD, EffectKind.PAGE), (PAGE, EffectKind.NOTIFY), (PAGE, EffectKind.ACT)]
)
def test_an_effect_on_the_wrong_queue_is_poison(
    runner: EffectRunner, queue: FakeQueue, effect: Effect, kind: EffectKind
) -> None:
    work = Work()
    with pytest.raises(PoisonMessage, match=f"a {effect.kind} effect on the {kind.queue} queue"):
        runner.run(effect_message(effect).body, kind, RetryRule(), work)
    assert work.calls == [] and queue.sent == [] and queue.dead == []


def test_an_effect_for_an_unknown_incident_is_poison(runner: EffectRunner, queue: FakeQueue) -> None:
    work = Work()
    ghost = Effect(EffectKind.PAGE, "inc-ghost", "trigger", "sev2", NOW)
    with pytest.raises(PoisonMessage, match="page for unknown incident inc-ghost"):
        runner.run(effect_message(ghost).body, EffectKind.PAGE, RetryRule(), work)
    assert work.calls == [] and queue.sent == [] and queue.dead == []


def test_the_handlers_raise_poison_for_each_others_messages(app: Services, store: FakeStore) -> None:
    store.put(incident())
    with pytest.raises(PoisonMessage):
        app.pages.handle(effect_message(CARD).body)
    with pytest.raises(PoisonMessage):
        app.cards.handle(effect_message(ACT).body)


def test_parse_effect_reads_back_what_effect_message_wrote() -> None:
    held = Effect(EffectKind.NOTIFY, "inc-1", "pd:E1", "sev2", NOW, detail="x", attempt=3, held=2)
    assert parse_effect(effect_message(held).body, EffectKind.NOTIFY) == held


# ---------------------------------------------------------------------------- work and retries


def test_the_work_gets_the_effect_and_the_stored_incident(runner: EffectRunner, store: FakeStore) -> None:
    work = Work()
    runner.run(effect_message(PAGE).body, EffectKind.PAGE, RetryRule(), work)
    found = store.get("inc-1")
    assert found is not None and work.calls == [(PAGE, found.incident)]


def test_a_transient_failure_is_a_new_message_one_try_on_due_after_backoff(
    runner: EffectRunner, queue: FakeQueue, clock: FakeClock
) -> None:
    work = Work(Transient("busy"))
    runner.run(effect_message(PAGE.retry().retry()).body, EffectKind.PAGE, RetryRule(), work)
    (retry,) = queue.sent
    assert effect_of(retry.body) == PAGE.retry().retry().retry()
    assert retry.message_id == effect_message(PAGE.retry().retry().retry()).message_id
    assert retry.scheduled_at is not None  # 2 s × 2² for the third try, ±20 %
    assert clock() + timedelta(seconds=6.4) <= retry.scheduled_at <= clock() + timedelta(seconds=9.6)


def test_the_backoff_is_capped(runner: EffectRunner, queue: FakeQueue, clock: FakeClock) -> None:
    many = Effect(EffectKind.PAGE, "inc-1", "trigger", "sev2", NOW, attempt=40)
    runner.run(effect_message(many).body, EffectKind.PAGE, RetryRule(), Work(Transient("busy")))
    (retry,) = queue.sent
    assert retry.scheduled_at is not None
    assert clock() + timedelta(seconds=240) <= retry.scheduled_at <= clock() + timedelta(seconds=360)


def test_giving_up_counts_failed_tries_only(runner: EffectRunner, store: FakeStore, queue: FakeQueue) -> None:
    rule = RetryRule(give_up_after=3)
    slow_down = Transient("slow down", retry_after=1, held=True)
    errors = [Transient("busy"), slow_down, Transient("busy"), Transient("busy")]
    work = Work(*errors)
    message = effect_message(CARD)
    for _ in errors[:-1]:
        runner.run(message.body, EffectKind.NOTIFY, rule, work)
        message = queue.take("notifications")[-1]
    assert (effect_of(message.body).attempt, effect_of(message.body).held) == (2, 1)
    assert queue.dead == []

    runner.run(message.body, EffectKind.NOTIFY, rule, work)  # the third failed try

    (dead,) = queue.dead
    assert (dead.reason, dead.description) == ("MaxAttemptsExceeded", "busy (gave up after 3 tries)")
    assert dead.message_id == message.message_id
    assert queue.take("notifications") == []
    found = store.get("inc-1")
    assert found is not None and found.incident.failures == (
        f"{NOW} notify opened: busy (gave up after 3 tries)",
    )


def test_a_refusal_is_recorded_told_and_dead_lettered(
    runner: EffectRunner, store: FakeStore, queue: FakeQueue, clock: FakeClock
) -> None:
    clock.advance(minutes=1)
    runner.run(effect_message(PAGE).body, EffectKind.PAGE, RetryRule(), Work(Rejected("bad request")))
    now = iso(clock())
    found = store.get("inc-1")
    assert found is not None
    assert found.incident.failures == (f"{now} page trigger: bad request",)
    assert store.timeline("inc-1") == [TimelineEntry(now, "failed", "page trigger: bad request")]
    assert queue.effects("notifications") == [
        Effect(
            EffectKind.NOTIFY, "inc-1", "failure", "sev2", now, detail=":warning: page trigger: bad request"
        )
    ]
    (dead,) = queue.dead
    assert (dead.queue, dead.message_id, dead.reason, dead.description, effect_of(dead.body)) == (
        "pages",
        effect_message(PAGE).message_id,
        "Rejected",
        "bad request",
        PAGE,
    )
    assert queue.take("pages") == []


def test_failures_kept_on_an_incident_are_bounded(runner: EffectRunner, store: FakeStore) -> None:
    for n in range(25):
        failing = Effect(EffectKind.PAGE, "inc-1", f"trigger-{n}", "sev2", NOW)
        runner.run(effect_message(failing).body, EffectKind.PAGE, RetryRule(), Work(Rejected(f"no {n}")))
    found = store.get("inc-1")
    assert found is not None and len(found.incident.failures) == 20
    assert found.incident.failures[0].endswith("no 5") and found.incident.failures[-1].endswith("no 24")


def test_an_error_that_is_neither_transient_nor_rejected_is_raised_for_the_queue_to_redeliver(
    runner: EffectRunner, queue: FakeQueue
) -> None:
    with pytest.raises(KeyError):
        runner.run(effect_message(PAGE).body, EffectKind.PAGE, RetryRule(), Work(KeyError("bug")))
    assert queue.sent == [] and queue.dead == []


def test_a_5xx_that_says_when_to_come_back_is_a_failed_try_that_waits_as_asked(
    runner: EffectRunner, queue: FakeQueue, clock: FakeClock
) -> None:
    work = Work(Transient("Slack chat.postMessage: 503", retry_after=40.0))
    runner.run(effect_message(CARD).body, EffectKind.NOTIFY, RetryRule(give_up_after=12), work)
    (retry,) = queue.take("notifications")
    assert json.loads(retry.body)["attempt"] == 1 and json.loads(retry.body)["held"] == 0
    assert retry.scheduled_at is not None and retry.scheduled_at >= clock() + timedelta(seconds=40)


def test_a_service_answering_retry_after_zero_every_time_is_still_given_up_on(
    runner: EffectRunner, queue: FakeQueue
) -> None:
    rule = RetryRule(give_up_after=12)
    work = Work(*[Transient("Slack chat.postMessage: 503", retry_after=0.0)] * 30)
    message = effect_message(CARD)
    for _ in range(30):
        runner.run(message.body, EffectKind.NOTIFY, rule, work)
        sent = queue.take("notifications")
        if not sent:
            break
        (message,) = sent
    assert [d.reason for d in queue.dead] == ["MaxAttemptsExceeded"]
