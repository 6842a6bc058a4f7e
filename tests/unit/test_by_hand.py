"""A person's acknowledge and resolve: our incident at once, PagerDuty's by REST through the pages queue."""

from __future__ import annotations

import json

import pytest

from shared.bootstrap import Services
from shared.domain.effects import Effect, EffectKind
from shared.domain.incidents import ACKNOWLEDGED, PAGE_RESOLVED, RESOLVED, Incident
from shared.errors import Rejected, Transient
from shared.paging.by_hand import PD_ACKNOWLEDGE, PD_RESOLVE, AlreadyThere, acknowledged, resolved
from shared.paging.card import card
from shared.settings import Settings
from tests.factories import FakeClock, signal
from tests.fakes import FakeChat, FakeDirectory, FakePager, FakeQueue, FakeStore

WHO = "U0ADA via slack"
NOW = "2026-11-25T10:05:00.000Z"


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
def app(
    settings: Settings,
    clock: FakeClock,
    store: FakeStore,
    queue: FakeQueue,
    pager: FakePager,
    chat: FakeChat,
    directory: FakeDirectory,
) -> Services:
    return Services(
        settings, clock=clock, store=store, queue=queue, pager=pager, chat=chat, directory=directory
    )


def opened(app: Services, store: FakeStore, queue: FakeQueue) -> Incident:
    (incident_id,) = app.intake.accept([signal(azure_severity="Sev1")]).incidents
    queue.take("notifications"), queue.take("pages")
    found = store.get(incident_id)
    assert found is not None
    return found.incident


def test_acknowledged_changes_ours_and_asks_for_pagerdutys_and_the_card(
    app: Services, store: FakeStore, queue: FakeQueue
) -> None:
    incident = opened(app, store, queue)

    change = acknowledged(incident, WHO, NOW)

    assert (change.incident.status, change.incident.acknowledged_by) == (ACKNOWLEDGED, WHO)
    assert change.incident.acknowledged_at == NOW and change.incident.time_to_acknowledge_seconds == 300
    assert [e.text for e in change.timeline] == [f"Acknowledged by {WHO}"]
    assert [(e.kind, e.event, e.detail) for e in change.effects] == [
        (EffectKind.NOTIFY, "acknowledged", f"Acknowledged by {WHO}"),
        (EffectKind.PAGE, PD_ACKNOWLEDGE, WHO),
    ]


def test_a_second_acknowledge_or_resolve_says_by_whom_and_when(
    app: Services, store: FakeStore, queue: FakeQueue
) -> None:
    acked = acknowledged(opened(app, store, queue), WHO, NOW).incident
    with pytest.raises(AlreadyThere, match=f"acknowledged by {WHO} at {NOW} already"):
        acknowledged(acked, "U0BOB via slack", NOW)
    done = resolved(acked, WHO, NOW).incident
    assert (done.status, done.resolved_by, done.firing_instances) == (RESOLVED, WHO, ())
    with pytest.raises(AlreadyThere, match=f"resolved by {WHO} at {NOW} already"):
        resolved(done, WHO, NOW)
    with pytest.raises(AlreadyThere, match="nothing to acknowledge"):
        acknowledged(done, WHO, NOW)


def status_effect(incident: Incident, event: str) -> bytes:
    effect = Effect(EffectKind.PAGE, incident.id, event, incident.severity.label, NOW, detail=WHO)
    return json.dumps(effect.to_dict()).encode()


def test_page_sync_puts_pagerdutys_incident_found_by_our_dedup_key_and_says_so(
    app: Services, store: FakeStore, queue: FakeQueue, directory: FakeDirectory
) -> None:
    incident = opened(app, store, queue)
    directory.keys["Q1PD"] = incident.id

    app.pages.handle(status_effect(incident, PD_ACKNOWLEDGE))

    assert directory.statuses == [("Q1PD", "acknowledged")]
    line = f"PagerDuty incident Q1PD acknowledged for {WHO} (REST API)"
    assert store.timeline(incident.id)[-1].text == line
    told = queue.effects("notifications")[-1]
    assert (told.event, told.detail) == ("pd-status", line)
    found = store.get(incident.id)
    assert found is not None and found.incident.pagerduty_incident == "Q1PD"


def test_a_rest_resolve_marks_the_page_resolved_so_no_resolve_event_follows(
    app: Services, store: FakeStore, queue: FakeQueue, directory: FakeDirectory, pager: FakePager
) -> None:
    incident = opened(app, store, queue)
    directory.keys["Q1PD"] = incident.id

    app.pages.handle(status_effect(incident, PD_RESOLVE))

    assert directory.statuses == [("Q1PD", "resolved")] and pager.sent == []
    found = store.get(incident.id)
    assert found is not None and found.incident.pagerduty_state == PAGE_RESOLVED


def test_pagerduty_down_is_retried_through_the_queue_with_its_retry_after(
    app: Services, store: FakeStore, queue: FakeQueue, directory: FakeDirectory
) -> None:
    incident = opened(app, store, queue)
    directory.keys["Q1PD"] = incident.id
    directory.fail_next(1, Transient("PagerDuty REST API (acknowledged): rate limited (429)", 30, held=True))

    app.pages.handle(status_effect(incident, PD_ACKNOWLEDGE))

    assert directory.statuses == []
    [retry] = queue.take("pages")
    assert retry.scheduled_at is not None
    assert Effect.from_dict(json.loads(retry.body)).event == PD_ACKNOWLEDGE
    app.pages.handle(retry.body)
    assert directory.statuses == [("Q1PD", "acknowledged")]


def test_pagerduty_refusing_is_on_the_incident_and_dead_lettered(
    app: Services, store: FakeStore, queue: FakeQueue, directory: FakeDirectory
) -> None:
    incident = opened(app, store, queue)
    directory.keys["Q1PD"] = incident.id
    directory.fail_next(1, Rejected("PagerDuty refused it (400): Incident Already Resolved"))

    app.pages.handle(status_effect(incident, PD_ACKNOWLEDGE))

    assert [d.reason for d in queue.dead] == ["Rejected"]
    assert "Incident Already Resolved" in store.timeline(incident.id)[-1].text


def test_never_paged_says_there_is_nothing_to_acknowledge_in_pagerduty(
    app: Services, store: FakeStore, queue: FakeQueue, directory: FakeDirectory
) -> None:
    incident = opened(app, store, queue)

    app.pages.handle(status_effect(incident, PD_ACKNOWLEDGE))

    assert directory.statuses == []
    assert "never paged" in store.timeline(incident.id)[-1].text


def actions(blocks: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [
        (element["action_id"], element["value"])
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]  # type: ignore[attr-defined]
    ]


def test_the_card_offers_acknowledge_until_acknowledged_and_nothing_once_resolved(
    app: Services, store: FakeStore, queue: FakeQueue
) -> None:
    incident = opened(app, store, queue)
    assert actions(card(incident, [])[1]) == [("dr_ack", incident.id), ("dr_resolve", incident.id)]
    acked = acknowledged(incident, WHO, NOW).incident
    assert actions(card(acked, [])[1]) == [("dr_resolve", incident.id)]
    assert actions(card(resolved(acked, WHO, NOW).incident, [])[1]) == []
