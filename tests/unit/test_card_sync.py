"""CardSync on the fakes: one card per incident, edited after, thread lines, and giving up on Slack."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.bootstrap import Services
from shared.clock import iso
from shared.domain.effects import Effect, EffectKind
from shared.domain.incidents import Incident, TimelineEntry
from shared.errors import Rejected, Transient
from shared.outbox import effect_message
from shared.paging.card import card
from shared.paging.links import incident_links
from shared.ports import QueueMessage
from shared.settings import Settings
from tests.factories import FakeClock, signal
from tests.fakes import FakeChat, FakePager, FakeQueue, FakeStore, Post, Update
from tests.unit.conftest import CHANNEL, CHANNEL_ID, RUNBOOKS

TITLE = "cosmos-availability on cosmos-amicis-ikea-dev"


def open_incident(app: Services, azure_severity: str = "Sev1") -> str:
    (incident_id,) = app.intake.accept([signal(azure_severity=azure_severity)]).incidents
    return incident_id


def stored(store: FakeStore, incident_id: str) -> Incident:
    found = store.get(incident_id)
    assert found is not None
    return found.incident


def effect_of(message: QueueMessage) -> Effect:
    return Effect.from_dict(json.loads(message.body))


def expected_card(app: Services, incident: Incident) -> tuple[str, list[dict[str, Any]]]:
    return card(incident, incident_links(incident, app.policy, RUNBOOKS))


def test_the_first_card_is_posted_and_its_channel_and_ts_kept_on_the_incident(
    app: Services, store: FakeStore, queue: FakeQueue, chat: FakeChat, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    (opened,) = queue.take("notifications")
    assert effect_of(opened).event == "opened"
    before = stored(store, incident_id)
    clock.advance(seconds=2)

    app.cards.handle(opened.body)

    text, blocks = expected_card(app, before)
    assert text == f"[SEV2] {TITLE} (Open)"
    assert any(link["text"] == "DR runbook" for link in incident_links(before, app.policy, RUNBOOKS))
    assert chat.posts == [Post(CHANNEL, text, blocks, None, "1700000000.000001", CHANNEL_ID)]
    assert chat.updates == []
    incident = stored(store, incident_id)
    # The channel id Slack answered, not the name it was asked with: updates need the id.
    assert (incident.slack_channel, incident.slack_ts) == (CHANNEL_ID, "1700000000.000001")
    assert store.timeline(incident_id)[-1] == TimelineEntry(
        "2026-11-25T10:00:02.000Z", "notify", f"Slack: card posted in {CHANNEL_ID}"
    )
    assert queue.dead == [] and queue.take("notifications") == []


def test_later_notifications_update_the_card_and_never_post_a_second_one(
    app: Services, store: FakeStore, queue: FakeQueue, chat: FakeChat
) -> None:
    incident_id = open_incident(app)
    (opened,) = queue.take("notifications")
    app.cards.handle(opened.body)
    (page,) = queue.take("pages")
    app.pages.handle(page.body)
    (paged,) = queue.take("notifications")
    assert effect_of(paged).event == "paged-triggered:sev2"

    app.cards.handle(paged.body)
    app.cards.handle(opened.body)  # a redelivered "opened" edits the card too

    now = stored(store, incident_id)
    text, blocks = expected_card(app, now)
    assert [p.thread_ts for p in chat.posts] == [None], "one card, no thread lines: no detail"
    assert chat.updates == [Update(CHANNEL_ID, "1700000000.000001", text, blocks)] * 2
    assert {"type": "mrkdwn", "text": "*PagerDuty*\ntriggered (error)"} in blocks[1]["fields"]


def test_an_effect_with_detail_adds_an_escaped_line_in_the_cards_thread(
    app: Services, store: FakeStore, queue: FakeQueue, chat: FakeChat, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    (opened,) = queue.take("notifications")
    app.cards.handle(opened.body)
    note = Effect(
        EffectKind.NOTIFY,
        incident_id,
        "pd:E1",
        "sev2",
        iso(clock()),
        detail="Note from Ben: <failover> & wait",
    )

    app.cards.handle(effect_message(note).body)

    text, blocks = expected_card(app, stored(store, incident_id))
    assert chat.updates == [Update(CHANNEL_ID, "1700000000.000001", text, blocks)]
    (card_post, line) = chat.posts
    assert line == Post(
        CHANNEL_ID,
        "Note from Ben: &lt;failover&gt; &amp; wait",
        None,
        card_post.ts,
        "1700000000.000002",
        CHANNEL_ID,
    )


def test_a_raised_severity_says_why_in_the_thread(
    app: Services, store: FakeStore, queue: FakeQueue, chat: FakeChat
) -> None:
    incident_id = open_incident(app)
    (opened,) = queue.take("notifications")
    app.cards.handle(opened.body)
    app.intake.accept([signal(azure_severity="Sev0", id="raised")])
    (raised,) = queue.take("notifications")

    app.cards.handle(raised.body)

    (update,) = chat.updates
    assert update.text == f"[SEV1] {TITLE} (Open)"
    assert [p.text for p in chat.replies("1700000000.000001")] == [
        "Raised sev2 → sev1: Azure Monitor severity Sev0 → sev1 (baseline)"
    ]
    assert stored(store, incident_id).slack_ts == "1700000000.000001"


def test_a_first_effect_with_detail_posts_the_card_then_its_line(
    app: Services, store: FakeStore, queue: FakeQueue, chat: FakeChat, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    queue.take("notifications")  # "opened" is still on its way
    failure = Effect(EffectKind.NOTIFY, incident_id, "failure", "sev2", iso(clock()), detail=":warning: x")

    app.cards.handle(effect_message(failure).body)

    card_post, line = chat.posts
    assert (card_post.thread_ts, line.thread_ts, line.text) == (None, card_post.ts, ":warning: x")
    assert chat.updates == []
    assert stored(store, incident_id).slack_ts == card_post.ts


def test_no_channel_for_the_incident_is_refused_and_dead_lettered_without_a_slack_line(
    tmp_path: Path, clock: FakeClock, store: FakeStore, queue: FakeQueue, pager: FakePager, chat: FakeChat
) -> None:
    settings = Settings(data_dir=tmp_path, slack_bot_token="xoxb-fake")  # Slack for real, no channel
    app = Services(settings, clock=clock, store=store, queue=queue, pager=pager, chat=chat)
    incident_id = open_incident(app)
    (opened,) = queue.take("notifications")

    app.cards.handle(opened.body)

    reason = "no Slack channel fits this incident (set SLACK_CHANNEL)"
    (dead,) = queue.dead
    assert (dead.queue, dead.message_id, dead.reason, dead.description) == (
        "notifications",
        opened.message_id,
        "Rejected",
        reason,
    )
    assert chat.posts == chat.updates == [] and chat.failed == []
    assert stored(store, incident_id).failures == (f"{iso(clock())} notify opened: {reason}",)
    assert store.timeline(incident_id)[-1] == TimelineEntry(
        iso(clock()), "failed", f"notify opened: {reason}"
    )
    assert queue.take("notifications") == [], "a failed card is not announced on Slack"


def test_twelve_transient_failures_give_the_card_up_without_telling_slack(
    app: Services, store: FakeStore, queue: FakeQueue, chat: FakeChat, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    chat.fail_next(12, Transient("Slack answered 503"))
    (message,) = queue.take("notifications")
    first = message
    for tries in range(1, 12):
        app.cards.handle(message.body)
        (message,) = queue.take("notifications")
        assert effect_of(message).attempt == tries
        assert message.scheduled_at is not None and message.scheduled_at > clock()
        assert queue.dead == []

    app.cards.handle(message.body)  # the 12th failure

    assert len(chat.failed) == 12 and chat.posts == [] and chat.updates == []
    (dead,) = queue.dead
    reason = "Slack answered 503 (gave up after 12 tries)"
    assert (dead.queue, dead.reason, dead.description) == ("notifications", "MaxAttemptsExceeded", reason)
    assert dead.message_id == message.message_id != first.message_id
    assert effect_of(QueueMessage("notifications", dead.body, dead.message_id)).attempt == 11
    assert stored(store, incident_id).failures == (f"{iso(clock())} notify opened: {reason}",)
    assert queue.take("notifications") == [], "no retry, and Slack's own failure is not posted to Slack"
    assert [effect_of(m).event for m in queue.take("pages")] == ["trigger"], "the page is not held up"


def test_slack_holding_back_does_not_count_towards_giving_up(
    app: Services, queue: FakeQueue, chat: FakeChat, clock: FakeClock
) -> None:
    open_incident(app)
    chat.fail_next(15, Transient("Slack answered 429", retry_after=2, held=True))
    (message,) = queue.take("notifications")
    for _ in range(15):
        app.cards.handle(message.body)
        (message,) = queue.take("notifications")
        assert message.scheduled_at is not None
        assert message.scheduled_at >= clock() + timedelta(seconds=2)

    app.cards.handle(message.body)

    assert (effect_of(message).attempt, effect_of(message).held) == (0, 15)
    assert [p.text for p in chat.posts] == [f"[SEV2] {TITLE} (Open)"] and queue.dead == []


def test_slack_refusing_the_card_dead_letters_it_with_slacks_reason(
    app: Services, store: FakeStore, queue: FakeQueue, chat: FakeChat, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    chat.fail_next(1, Rejected("Slack refused chat.postMessage: channel_not_found"))
    (opened,) = queue.take("notifications")

    app.cards.handle(opened.body)

    (dead,) = queue.dead
    assert (dead.reason, dead.description) == (
        "Rejected",
        "Slack refused chat.postMessage: channel_not_found",
    )
    assert chat.posts == [] and [op for op, _ in chat.failed] == ["chat.postMessage"]
    assert stored(store, incident_id).slack_ts == ""
    assert queue.take("notifications") == []
