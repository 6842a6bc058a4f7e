"""Over real HTTP: dr serve pages PagerDuty and posts to Slack (both protocol stubs), and hears back."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.alerts import body, metric_alert
from tests.conftest import REFDATA, ROOT
from tests.e2e.conftest import Responder
from tests.stubs import PagerDutyEventsStub, SlackStub

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
SLACK_TOKEN = "xoxb-e2e-bot-token"
CHANNEL = "C0INCIDENTS"
WEBHOOK_SECRET = "e2e-webhook-secret"


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyEventsStub]:
    with PagerDutyEventsStub(rate_limit_per_minute=120) as stub:
        yield stub


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub(token=SLACK_TOKEN, channels={"incidents": CHANNEL}) as stub:
        yield stub


@pytest.fixture
def responder(
    start_responder: Callable[..., Responder], pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> Responder:
    """dr serve with real PagerDuty and Slack settings pointing at the stubs; retries in milliseconds."""
    env = {
        **pagerduty.client_env(),
        "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PAGERDUTY_EVENTS_URL": pagerduty.url,
        "PAGERDUTY_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_API_URL": slack.url,
        "SLACK_CHANNEL": CHANNEL,
        "DR_RETRY_BASE_SECONDS": "0.05",
        "DR_RETRY_MAX_SECONDS": "0.2",
    }
    return start_responder(env=env)


def _open_sample(responder: Responder) -> str:
    answer = responder.post("/alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
    assert answer.status_code == 202, answer.text
    return responder.incidents_of(answer)[0]


def _incident(responder: Responder, incident_id: str) -> dict[str, Any]:
    return dict(responder.get(f"/incidents/{incident_id}").json())


def test_a_sev1_is_paged_carded_and_resolved_through_the_real_clients(
    responder: Responder, pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> None:
    incident_id = _open_sample(responder)
    assert pagerduty.wait_until(lambda: pagerduty.incident_count(incident_id) == 1)
    (event,) = pagerduty.events
    assert event["routing_key"] == ROUTING_KEY and event["event_action"] == "trigger"
    assert event["dedup_key"] == incident_id
    payload = event["payload"]
    assert (payload["severity"], payload["component"], payload["group"], payload["class"]) == (
        "critical",
        "cosmosdb",
        "ikea",
        "Resource Health",
    )
    assert payload["summary"].startswith("[SEV1] ") and payload["source"].endswith("/cosmos-amicis-ikea-dev")
    assert payload["custom_details"]["signal_count"] == 1 and payload["custom_details"]["reasons"]
    assert event["links"][0]["href"].startswith("https://portal.azure.com/#resource/subscriptions/")
    assert slack.wait_until(lambda: len(slack.cards(CHANNEL)) == 1)

    resolved = responder.post("/alerts", (ROOT / "samples" / "cosmos-available.json").read_bytes())
    assert responder.incidents_of(resolved) == [incident_id]
    assert pagerduty.wait_until(
        lambda: (a := pagerduty.alert(incident_id)) is not None and a.status == "resolved"
    )
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "resolve"]
    assert slack.wait_until(lambda: "Resolved" in slack.cards(CHANNEL)[0].text)
    (card,) = slack.cards(CHANNEL)
    assert card.updates >= 1, "the card is updated, never posted twice"
    # The timeline line is written once PagerDuty has answered: wait for it, not for the stub.
    responder.wait_for(
        lambda: [e["kind"] for e in _incident(responder, incident_id)["timeline"]].count("page") == 2,
        "both pages on the timeline",
    )


def test_pagerduty_failing_then_accepting_makes_exactly_one_incident(
    responder: Responder, pagerduty: PagerDutyEventsStub
) -> None:
    pagerduty.fail_next("/v2/enqueue", 3, status=500)
    incident_id = _open_sample(responder)
    assert pagerduty.wait_until(lambda: pagerduty.incident_count(incident_id) == 1)
    assert len(pagerduty.requests_to("/v2/enqueue")) == 4, (
        "three 500s, retried through the queue, then accepted"
    )
    assert pagerduty.incident_count() == 1


def test_a_429_is_honoured_and_retried(responder: Responder, pagerduty: PagerDutyEventsStub) -> None:
    pagerduty.respond_next("/v2/enqueue", 429, headers={"Retry-After": "1"})
    incident_id = _open_sample(responder)
    assert pagerduty.wait_until(lambda: pagerduty.incident_count(incident_id) == 1)
    first, second = pagerduty.requests_to("/v2/enqueue")
    assert first.json == second.json


def test_slack_down_for_the_whole_test_never_holds_up_a_page(
    responder: Responder, pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> None:
    slack.set_down(True)
    incident_id = _open_sample(responder)
    assert pagerduty.wait_until(lambda: pagerduty.incident_count(incident_id) == 1)
    assert slack.cards() == []
    # Slack is retried with backoff, then the card is given up on and written down.
    responder.wait_for(
        lambda: any("Slack" in f for f in _incident(responder, incident_id)["failures"]),
        "the card given up on",
    )


def test_a_page_pagerduty_refuses_is_written_down_and_told_to_slack(
    responder: Responder, pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> None:
    pagerduty.respond_next("/v2/enqueue", 400, times=50)
    incident_id = _open_sample(responder)
    responder.wait_for(lambda: _incident(responder, incident_id)["failures"], "the refusal recorded")
    (failure,) = _incident(responder, incident_id)["failures"]
    assert "PagerDuty refused it (400)" in failure and "Event object is invalid" in failure
    assert slack.wait_until(lambda: any(":warning:" in m.text for m in slack.messages(CHANNEL)))
    assert len(pagerduty.requests_to("/v2/enqueue")) == 1, "a 400 is not retried"


def _signed(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps({"event": event}).encode()
    signature = "v1=" + hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-PagerDuty-Signature": signature, "X-Webhook-Id": event["id"]}


def test_acknowledged_in_pagerduty_comes_back_to_the_incident_and_its_card(
    responder: Responder, pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> None:
    incident_id = _open_sample(responder)
    assert slack.wait_until(lambda: len(slack.cards(CHANNEL)) == 1)
    captured = json.loads(
        (REFDATA / "pagerduty" / "webhook_v3_captured_incident_acknowledged.json").read_text()
    )
    captured["event"]["data"]["incident_key"] = incident_id
    raw, headers = _signed(captured["event"])
    answer = responder.post("/pagerduty", raw, **headers)
    assert answer.status_code == 202
    responder.wait_for(lambda: _incident(responder, incident_id)["status"] == "acknowledged", "acknowledged")
    incident = _incident(responder, incident_id)
    assert incident["acknowledged_by"] == "Ben" and incident["time_to_acknowledge_seconds"] is not None
    card = slack.cards(CHANNEL)[0]
    assert slack.wait_until(
        lambda: "Acknowledged by Ben in PagerDuty" in [m.text for m in slack.replies(card.ts)]
    )

    wrong = responder.post("/pagerduty", raw, **{**headers, "X-PagerDuty-Signature": "v1=" + "0" * 64})
    assert wrong.status_code == 401
    broken = b'{"event": '
    signature = "v1=" + hmac.new(WEBHOOK_SECRET.encode(), broken, hashlib.sha256).hexdigest()
    malformed = responder.post("/pagerduty", broken, **{"X-PagerDuty-Signature": signature})
    assert malformed.status_code == 400 and malformed.json()["error"] == "malformed_json"


def test_a_storm_pages_once_per_incident_and_never_meets_a_429(
    responder: Responder, pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> None:
    """10,000 alerts over 100 incidents; the stub answers 429 past PagerDuty's 120 events a minute."""
    targets = [
        f"/subscriptions/1/resourceGroups/rg-amicis-t{n}-dev/providers/Microsoft.Cache/Redis/redis-amicis-t{n}-dev"
        for n in range(100)
    ]
    client = responder.client
    for n in range(10_000):
        alert = metric_alert(rule=f"redis-rule-{n % 100}", target=targets[n % 100], alert_id=f"s-{n}")
        assert (
            client.post(
                "/alerts",
                content=body(alert),
                params={"code": "e2e-function-key"},
                headers={"content-type": "application/json"},
            ).status_code
            == 202
        )
    assert pagerduty.wait_until(lambda: pagerduty.incident_count() == 100, timeout=60)
    triggers = [e for e in pagerduty.events if e["event_action"] == "trigger"]
    assert 100 <= len(triggers) <= 110, "about one trigger per incident"
    assert pagerduty.throttled == 0, "never a 429"
