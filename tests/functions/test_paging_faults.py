"""In-process: the queue-triggered functions with real PagerDuty and Slack settings, against the stubs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import bootstrap
from shared.bootstrap import Services
from shared.localhost.runtime import service_bus_message
from shared.ports import PageEvent
from shared.settings import Settings
from tests.conftest import ROOT
from tests.factories import FakeClock
from tests.functions.harness import function, json_body, post
from tests.stubs import PagerDutyEventsStub, SlackStub

CHANNEL = "C0INCIDENTS"
TRIGGERS = {"pages": "send_page", "notifications": "send_notification", "actions": "run_action"}


@pytest.fixture
def pagerduty(monkeypatch: pytest.MonkeyPatch) -> Iterator[PagerDutyEventsStub]:
    with PagerDutyEventsStub() as stub:
        monkeypatch.setenv("SSL_CERT_FILE", stub.ca_file or "")
        yield stub


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub(token="xoxb-in-process", channels={"incidents": CHANNEL}) as stub:
        yield stub


@pytest.fixture(autouse=True)
def app(
    data_dir: Path, clock: FakeClock, pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> Iterator[Services]:
    env = {
        "DR_DATA_DIR": str(data_dir),
        "PAGERDUTY_ROUTING_KEY": "e93facc04764012d7bfb002500d5d1a6",
        "PAGERDUTY_EVENTS_URL": pagerduty.url,
        "SLACK_BOT_TOKEN": "xoxb-in-process",
        "SLACK_API_URL": slack.url,
        "SLACK_CHANNEL": CHANNEL,
        # Retries are due a moment later on the test's clock, which run_queues moves on each round.
        "DR_RETRY_BASE_SECONDS": "0.01",
        "DR_RETRY_MAX_SECONDS": "0.01",
    }
    replacement = Services(Settings.from_env(env), clock=clock)
    bootstrap.reset(replacement)
    yield replacement
    bootstrap.reset()


def run_queues(app: Services, rounds: int = 50) -> int:
    """Deliver whatever is due, as the host would, until the queues are quiet; returns deliveries."""
    delivered = 0
    for _ in range(rounds):
        busy = False
        for queue, name in TRIGGERS.items():
            while (received := app.local_queue.receive(queue)) is not None:
                function(name)(service_bus_message(received))
                app.local_queue.complete(received)
                delivered += 1
                busy = True
        if not busy:
            return delivered
        assert isinstance(app.clock, FakeClock)
        app.clock.advance(seconds=1)  # past any backoff (0.01 s): what a retry waits for comes due
    raise AssertionError("the queues never went quiet")


def open_sample() -> str:
    answer = post("alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
    return str(json_body(answer)["incidents"][0])


def test_pagerduty_500_three_times_then_202_makes_one_incident(
    app: Services, pagerduty: PagerDutyEventsStub
) -> None:
    pagerduty.fail_next("/v2/enqueue", 3, status=500)
    incident_id = open_sample()
    run_queues(app)
    assert len(pagerduty.requests_to("/v2/enqueue")) == 4
    assert pagerduty.incident_count() == 1 and pagerduty.incident_count(incident_id) == 1
    found = app.store.get(incident_id)
    assert found is not None and str(found.incident.pagerduty_state) == "triggered:sev1"
    assert found.incident.failures == ()


def test_slack_down_throughout_pages_still_go_out(
    app: Services, pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> None:
    slack.set_down(True)
    incident_id = open_sample()
    run_queues(app)
    assert pagerduty.incident_count(incident_id) == 1
    assert slack.cards() == []
    found = app.store.get(incident_id)
    assert found is not None and any("gave up after 12 tries" in f for f in found.incident.failures)
    assert {d.reason for d in app.local_queue.dead_letters("notifications")} == {"MaxAttemptsExceeded"}


def test_a_400_is_not_retried_and_reaches_the_card(
    app: Services, pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> None:
    pagerduty.respond_next("/v2/enqueue", 400)
    incident_id = open_sample()
    run_queues(app)
    assert len(pagerduty.requests_to("/v2/enqueue")) == 1
    found = app.store.get(incident_id)
    assert found is not None
    (failure,) = found.incident.failures
    assert "PagerDuty refused it (400)" in failure
    (card,) = slack.cards(CHANNEL)
    assert any("PagerDuty refused it (400)" in m.text for m in slack.replies(card.ts))
    assert any(":warning: Failed" in str(block) for block in card.blocks), "the card lists the failure"
    (dead,) = app.local_queue.dead_letters("pages")
    assert dead.reason == "Rejected" and "PagerDuty refused it (400)" in dead.description


def test_a_page_whose_answer_was_lost_is_still_resolved(
    app: Services, pagerduty: PagerDutyEventsStub
) -> None:
    """The trigger fails (PagerDuty may have taken it); the incident resolves before the retry."""
    pagerduty.set_down(True)
    incident_id = open_sample()
    page = app.local_queue.receive("pages")
    assert page is not None
    function("send_page")(service_bus_message(page))  # fails: a retry is scheduled
    app.local_queue.complete(page)
    found = app.store.get(incident_id)
    assert found is not None and str(found.incident.pagerduty_state) == "triggering:sev1"
    pagerduty.set_down(False)
    post("alerts", (ROOT / "samples" / "cosmos-available.json").read_bytes())
    run_queues(app)
    assert [e["event_action"] for e in pagerduty.events] == ["resolve"], "resolve what may be out there"
    found = app.store.get(incident_id)
    assert found is not None and str(found.incident.pagerduty_state) == "resolved"


def test_resolved_in_pagerduty_while_a_trigger_was_on_its_way_converges_to_resolved(
    app: Services, pagerduty: PagerDutyEventsStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident_id = open_sample()
    pager = app.pager
    real_send = pager.send

    def trigger_then_resolved_in_pagerduty(event: PageEvent, route: str) -> str:
        line = real_send(event, route)
        if event.action != "trigger":
            return line
        # The on-call resolves it in PagerDuty before our worker writes down that it paged.
        resolved = {
            "id": "E-race",
            "event_type": "incident.resolved",
            "occurred_at": "2026-11-25T10:00:01Z",
            "agent": {"summary": "Ben"},
            "data": {"id": "Q1", "type": "incident", "incident_key": incident_id},
        }
        app.pagerduty_events.handle(json.dumps({"event": resolved}).encode())
        return line

    monkeypatch.setattr(pager, "send", trigger_then_resolved_in_pagerduty)
    run_queues(app)
    alert = pagerduty.alert(incident_id)
    assert alert is not None and alert.status == "resolved", "the page that went out is resolved too"
    found = app.store.get(incident_id)
    assert found is not None and (found.incident.status, str(found.incident.pagerduty_state)) == (
        "resolved",
        "resolved",
    )
