"""PageSync on the fakes: what PagerDuty is sent, when, through which route, and what a failure leaves."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.bootstrap import Services
from shared.clock import iso
from shared.domain.effects import Effect, EffectKind
from shared.domain.incidents import (
    NOT_PAGED,
    PAGE_RESOLVED,
    RESOLVED,
    Incident,
    PageState,
    PageStatus,
    TimelineEntry,
)
from shared.domain.severity import Severity
from shared.errors import PoisonMessage, Rejected, Transient
from shared.outbox import effect_message
from shared.paging.links import PORTAL
from shared.ports import PageEvent, QueueMessage
from tests.factories import FakeClock, resource, signal
from tests.fakes import FakeChat, FakePager, FakeQueue, FakeStore
from tests.unit.conftest import CHANNEL_ID, RUNBOOKS

RID = resource("cosmosdb", "cosmos-amicis-ikea-dev")
TITLE = "cosmos-availability on cosmos-amicis-ikea-dev"
TRIGGERED_SEV2 = PageState(PageStatus.TRIGGERED, Severity.SEV2)
TRIGGERED_SEV1 = PageState(PageStatus.TRIGGERED, Severity.SEV1)


def open_incident(app: Services, azure_severity: str = "Sev1") -> str:
    """Intake opens an incident (Sev1 in Azure: our sev2, which pages); returns its id."""
    report = app.intake.accept([signal(azure_severity=azure_severity)])
    (incident_id,) = report.incidents
    return incident_id


def stored(store: FakeStore, incident_id: str) -> Incident:
    found = store.get(incident_id)
    assert found is not None
    return found.incident


def page_states(store: FakeStore, incident_id: str) -> list[PageState]:
    """The page states the incident was written with, repeats folded."""
    states: list[PageState] = []
    for version in store.commits:
        if version.id == incident_id and (not states or states[-1] != version.pagerduty_state):
            states.append(version.pagerduty_state)
    return states


def effect_of(message: QueueMessage) -> Effect:
    return Effect.from_dict(json.loads(message.body))


def only_page(queue: FakeQueue) -> QueueMessage:
    (page,) = queue.take("pages")
    return page


# ---------------------------------------------------------------------------- the first trigger


def test_the_first_trigger_sends_the_incident_as_it_is_through_its_route(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    page = only_page(queue)
    assert effect_of(page).event == "trigger"
    at_the_call: list[PageState] = []
    pager.during_send = lambda event, route: at_the_call.append(stored(store, incident_id).pagerduty_state)
    clock.advance(seconds=3)

    app.pages.handle(page.body)

    expected = PageEvent(
        action="trigger",
        dedup_key=incident_id,
        payload={
            "summary": f"[SEV2] {TITLE}",
            "source": RID,
            "severity": "error",
            "component": "cosmosdb",
            "group": "ikea",
            "class": "Platform",
            "custom_details": {
                "incident": incident_id,
                "reasons": ["Azure Monitor severity Sev1 → sev2 (baseline)"],
                "signal_count": 1,
                "environment": "dev",
                "opened_at": "2026-11-25T10:00:00.000Z",
                "runbook": "runbook.md#cosmos-db",
            },
        },
        links=(
            {"href": PORTAL + RID, "text": "cosmos-amicis-ikea-dev in the Azure portal"},
            {"href": f"{RUNBOOKS}/runbook.md#cosmos-db", "text": "DR runbook"},
        ),
    )
    assert pager.sent == [(expected, "ikea#fp-ikea")]
    assert pager.routed == [incident_id]
    # "triggering" is on the incident before PagerDuty is called, "triggered" once it answered.
    assert at_the_call == [PageState(PageStatus.TRIGGERING, Severity.SEV2)]
    assert page_states(store, incident_id) == [NOT_PAGED, at_the_call[0], TRIGGERED_SEV2]
    incident = stored(store, incident_id)
    assert (incident.pagerduty_state, incident.pagerduty_route) == (TRIGGERED_SEV2, "ikea#fp-ikea")
    assert incident.updated_at == "2026-11-25T10:00:03.000Z" and incident.outbox == ()
    assert store.timeline(incident_id)[-1] == TimelineEntry(
        "2026-11-25T10:00:03.000Z", "page", f"PagerDuty (fake): trigger {incident_id} via ikea#fp-ikea"
    )
    # The card is told the incident was paged.
    assert [(e.event, e.detail) for e in queue.effects("notifications")] == [
        ("opened", ""),
        ("paged-triggered:sev2", ""),
    ]
    assert queue.take("pages") == [] and queue.dead == []


def test_a_second_page_message_for_the_same_state_sends_nothing(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager
) -> None:
    incident_id = open_incident(app)
    page = only_page(queue)
    app.pages.handle(page.body)
    commits, timeline, notes = len(store.commits), store.timeline(incident_id), len(queue.sent)

    app.pages.handle(page.body)  # the same message redelivered
    late = Effect(EffectKind.PAGE, incident_id, "converge", "sev2", "2026-11-25T10:00:09.000Z", detail="x")
    app.pages.handle(effect_message(late).body)  # another page message, nothing new to show

    assert [event.action for event, _ in pager.sent] == ["trigger"]
    assert len(store.commits) == commits, "not even a 'triggering' write"
    assert store.timeline(incident_id) == timeline and len(queue.sent) == notes


def test_a_raised_severity_triggers_again_at_the_new_severity_through_the_same_route(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager
) -> None:
    incident_id = open_incident(app, "Sev1")
    app.pages.handle(only_page(queue).body)
    pager.route = "*/sev1#fp-other"  # what a sev1 would be routed to now: the page keeps its route

    app.intake.accept([signal(azure_severity="Sev0", id="raised")])
    raised = only_page(queue)
    assert (effect_of(raised).event, effect_of(raised).severity) == ("trigger", "sev1")
    app.pages.handle(raised.body)

    (_, first_route), (event, route) = pager.sent
    assert (event.action, event.dedup_key, route) == ("trigger", incident_id, first_route)
    assert event.payload is not None
    assert event.payload["severity"] == "critical" and event.payload["summary"] == f"[SEV1] {TITLE}"
    assert event.payload["custom_details"]["signal_count"] == 2
    assert pager.routed == [incident_id], "the route is asked for once, on the first trigger"
    assert stored(store, incident_id).pagerduty_state == TRIGGERED_SEV1


def test_the_resolve_goes_through_the_route_that_triggered(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager
) -> None:
    incident_id = open_incident(app)
    app.pages.handle(only_page(queue).body)
    pager.route = "ikea#fp-rotated"  # the routing settings changed since

    app.intake.accept([signal(state="resolved", id="recovered", azure_severity="Sev1")])
    resolve = only_page(queue)
    assert effect_of(resolve).event == "resolve"
    app.pages.handle(resolve.body)

    assert pager.sent[1:] == [(PageEvent("resolve", incident_id), "ikea#fp-ikea")]
    incident = stored(store, incident_id)
    assert incident.pagerduty_state == PAGE_RESOLVED and incident.status == RESOLVED
    assert store.timeline(incident_id)[-1].text == f"PagerDuty (fake): resolve {incident_id} via ikea#fp-ikea"
    assert queue.effects("notifications")[-1].event == "paged-resolved"


def test_an_incident_resolved_before_its_page_went_out_is_never_paged(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager
) -> None:
    incident_id = open_incident(app)
    app.intake.accept([signal(state="resolved", id="recovered", azure_severity="Sev1")])
    pages = queue.take("pages")
    assert [effect_of(m).event for m in pages] == ["trigger", "resolve"]

    for message in pages:
        app.pages.handle(message.body)

    assert pager.sent == [] and pager.failed == [] and pager.routed == []
    assert stored(store, incident_id).pagerduty_state == NOT_PAGED
    assert [e.kind for e in store.timeline(incident_id)] == ["opened", "resolved"]
    assert not any(e.event.startswith("paged-") for e in queue.effects("notifications"))


# ---------------------------------------------------------------------------- failures


def test_a_transient_failure_schedules_exactly_one_retry_with_one_more_try(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    page = only_page(queue)
    pager.fail_next(1, Transient("PagerDuty answered 503"))

    app.pages.handle(page.body)

    (retry,) = queue.take("pages")
    first, again = effect_of(page), effect_of(retry)
    assert again == Effect(
        EffectKind.PAGE, incident_id, "trigger", "sev2", first.at, attempt=first.attempt + 1, held=0
    )
    assert retry.message_id != page.message_id and retry.session_id == incident_id
    assert retry.scheduled_at is not None
    # Backoff: 2 s for the first retry, ±20 %.
    assert clock() + timedelta(seconds=1.6) <= retry.scheduled_at <= clock() + timedelta(seconds=2.4)
    assert retry.application_properties == {"kind": "page", "incident_id": incident_id, "attempt": 1}
    assert pager.sent == [] and len(pager.failed) == 1
    incident = stored(store, incident_id)
    # PagerDuty may have taken it: the incident says so, so a resolve would still go out.
    assert incident.pagerduty_state == PageState(PageStatus.TRIGGERING, Severity.SEV2)
    assert incident.failures == () and queue.dead == []
    assert [e.event for e in queue.effects("notifications")] == ["opened"]

    app.pages.handle(retry.body)  # PagerDuty is back
    assert [(event.action, route) for event, route in pager.sent] == [("trigger", "ikea#fp-ikea")]
    assert stored(store, incident_id).pagerduty_state == TRIGGERED_SEV2
    assert queue.take("pages") == []


def test_a_429_with_retry_after_holds_the_page_back_without_counting_a_try(
    app: Services, queue: FakeQueue, pager: FakePager, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    pager.fail_next(1, Transient("PagerDuty answered 429", retry_after=30, held=True))

    app.pages.handle(only_page(queue).body)

    (retry,) = queue.take("pages")
    assert (effect_of(retry).attempt, effect_of(retry).held) == (0, 1)
    assert retry.scheduled_at is not None
    assert clock() + timedelta(seconds=30) <= retry.scheduled_at <= clock() + timedelta(seconds=37.5)
    assert pager.sent == []
    assert effect_of(retry).incident_id == incident_id


def test_being_held_back_many_times_is_never_announced_as_a_failure(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager
) -> None:
    incident_id = open_incident(app)
    pager.fail_next(12, Transient("PagerDuty answered 429", retry_after=1, held=True))
    message = only_page(queue)
    for _ in range(12):
        app.pages.handle(message.body)
        (message,) = queue.take("pages")
    assert (effect_of(message).attempt, effect_of(message).held) == (0, 12)
    assert stored(store, incident_id).failures == ()
    assert [e.event for e in queue.effects("notifications")] == ["opened"]

    app.pages.handle(message.body)
    assert [event.action for event, _ in pager.sent] == ["trigger"]


def test_every_fifth_failed_try_is_written_on_the_incident_and_told_to_the_card(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    pager.fail_next(10, Transient("PagerDuty answered 502"))
    message = only_page(queue)
    warnings_after: list[int] = []
    for tries in range(1, 11):
        app.pages.handle(message.body)
        (message,) = queue.take("pages")
        assert effect_of(message).attempt == tries
        warnings_after.append(len(stored(store, incident_id).failures))

    assert warnings_after == [0, 0, 0, 0, 1, 1, 1, 1, 1, 2]
    now = iso(clock())
    assert stored(store, incident_id).failures == (
        f"{now} page trigger: still failing after 5 tries, retrying: PagerDuty answered 502",
        f"{now} page trigger: still failing after 10 tries, retrying: PagerDuty answered 502",
    )
    failed = [e for e in store.timeline(incident_id) if e.kind == "failed"]
    assert [e.text for e in failed] == [
        "page trigger: still failing after 5 tries, retrying: PagerDuty answered 502",
        "page trigger: still failing after 10 tries, retrying: PagerDuty answered 502",
    ]
    told = [e for e in queue.effects("notifications") if e.event == "failure"]
    assert [(e.severity, e.detail) for e in told] == [
        ("sev2", ":warning: page trigger: still failing after 5 tries, retrying: PagerDuty answered 502"),
        ("sev2", ":warning: page trigger: still failing after 10 tries, retrying: PagerDuty answered 502"),
    ]
    assert queue.dead == [], "a page never gives up"

    app.pages.handle(message.body)
    assert [event.action for event, _ in pager.sent] == ["trigger"]


def test_a_refused_page_is_dead_lettered_with_pagerdutys_reason_and_told_in_slack(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager, chat: FakeChat, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    page = only_page(queue)
    reason = "PagerDuty refused it (400): Event object is invalid; 'routing_key' is invalid"
    pager.fail_next(1, Rejected(reason))

    app.pages.handle(page.body)

    (dead,) = queue.dead
    assert (dead.queue, dead.message_id, dead.reason, dead.description) == (
        "pages",
        page.message_id,
        "Rejected",
        reason,
    )
    assert effect_of(QueueMessage("pages", dead.body, dead.message_id)) == effect_of(page)
    assert queue.take("pages") == [], "not retried"
    assert pager.sent == []
    assert stored(store, incident_id).failures == (f"{iso(clock())} page trigger: {reason}",)
    assert store.timeline(incident_id)[-1] == TimelineEntry(iso(clock()), "failed", f"page trigger: {reason}")

    for note in queue.take("notifications"):  # "opened", then the failure
        app.cards.handle(note.body)
    (card,) = chat.cards()
    (line,) = chat.replies(card.ts)
    assert (line.channel, line.text, line.blocks) == (CHANNEL_ID, f":warning: page trigger: {reason}", None)


def test_no_routing_key_for_the_incident_is_refused_before_anything_is_written(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager
) -> None:
    incident_id = open_incident(app)
    pager.route = None

    app.pages.handle(only_page(queue).body)

    (dead,) = queue.dead
    assert (dead.reason, dead.description) == (
        "Rejected",
        "no PagerDuty routing key fits this incident (fake)",
    )
    assert pager.sent == [] and pager.failed == []
    assert stored(store, incident_id).pagerduty_state == NOT_PAGED, "nothing can be out: no 'triggering'"


# ---------------------------------------------------------------------------- converging


def test_resolved_in_pagerduty_while_the_trigger_was_in_flight_converges_to_resolved(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    resolved_in_pagerduty = {
        "event": {
            "id": "E-race",
            "event_type": "incident.resolved",
            "occurred_at": "2026-11-25T10:00:01Z",
            "agent": {"summary": "Ben"},
            "data": {"id": "Q1", "type": "incident", "incident_key": incident_id},
        }
    }

    def on_call_resolves_it(event: PageEvent, route: str) -> None:
        if event.action == "trigger":
            app.pagerduty_events.handle(json.dumps(resolved_in_pagerduty).encode())

    pager.during_send = on_call_resolves_it
    app.pages.handle(only_page(queue).body)

    (converge,) = queue.take("pages")
    assert (effect_of(converge).kind, effect_of(converge).event) == (EffectKind.PAGE, "converge")
    assert converge.scheduled_at is None, "at once"
    incident = stored(store, incident_id)
    assert incident.status == RESOLVED and incident.pagerduty_state == TRIGGERED_SEV2

    clock.advance(seconds=1)
    app.pages.handle(converge.body)

    assert [(event.action, route) for event, route in pager.sent] == [
        ("trigger", "ikea#fp-ikea"),
        ("resolve", "ikea#fp-ikea"),
    ]
    assert pager.sent[1][0] == PageEvent("resolve", incident_id)
    assert stored(store, incident_id).pagerduty_state == PAGE_RESOLVED
    assert queue.take("pages") == [], "converged: nothing more to send"


def test_raised_while_the_trigger_was_in_flight_triggers_once_more_at_the_new_severity(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager
) -> None:
    incident_id = open_incident(app, "Sev1")

    def raised_meanwhile(event: PageEvent, route: str) -> None:
        if len(pager.sent) == 0:
            app.intake.accept([signal(azure_severity="Sev0", id="raised")])

    pager.during_send = raised_meanwhile
    app.pages.handle(only_page(queue).body)
    follow_ups = queue.take("pages")
    assert sorted(effect_of(m).event for m in follow_ups) == ["converge", "trigger"]
    for message in follow_ups:
        app.pages.handle(message.body)

    sent = [(event.action, (event.payload or {}).get("severity")) for event, _ in pager.sent]
    assert sent == [("trigger", "error"), ("trigger", "critical")], "the second follow-up coalesced"
    assert stored(store, incident_id).pagerduty_state == TRIGGERED_SEV1


@pytest.mark.parametrize("body", [b"{oops", b"[]", b'{"kind": "page"}'])
def test_a_malformed_page_message_is_poison_and_nothing_is_sent(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager, chat: FakeChat, body: bytes
) -> None:
    with pytest.raises(PoisonMessage):
        app.pages.handle(body)
    assert pager.sent == pager.failed == [] and chat.posts == [] and queue.sent == [] and store.commits == []


def test_an_incident_resolved_just_before_triggering_is_written_is_not_paged(
    app: Services, store: FakeStore, queue: FakeQueue, pager: FakePager, clock: FakeClock
) -> None:
    incident_id = open_incident(app)
    page = only_page(queue)
    now = iso(clock())
    # The resolve lands after PageSync read the incident and before its "triggering" write.
    store.lose_races(1, rival=lambda i: i.evolve(status=RESOLVED, resolved_at=now, updated_at=now))

    app.pages.handle(page.body)

    assert [event.action for event, _ in pager.sent] == [], "a resolved incident never rings a phone"
    assert stored(store, incident_id).pagerduty_state == NOT_PAGED
