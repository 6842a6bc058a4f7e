"""/dr and the buttons over HTTP against `dr serve`, signed and form-encoded as Slack sends them.

Slack (the Web API and response_urls) and PagerDuty (on-call) are the local stubs; the Operations
are the tests' FakeOperations (tests/e2e/slack_app.py), whose journal says what was asked of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.chatops.operations import ActionRequest
from tests.conftest import ROOT
from tests.e2e.conftest import Responder
from tests.slack_requests import SECRET, command_body, interaction_body, signed_headers
from tests.stubs import PagerDutyRestStub, SlackStub

BOT = "xoxb-e2e"
ALLOWED, ON_CALL, STRANGER = "W0ALLOWED", "W0ONCALL", "W0STRANGER"


@pytest.fixture(scope="module")
def stubs() -> Iterator[tuple[SlackStub, PagerDutyRestStub]]:
    with SlackStub(token=BOT) as slack, PagerDutyRestStub(token="pd-e2e") as pd:
        pd.add_service("PSVC1", escalation_policy_id="EP1")
        pd.add_on_call("EP1", "PU1", "Ada Lovelace", "ada@example.com")
        slack.add_user(ON_CALL, "ada@example.com", "ada")
        slack.add_user(STRANGER, "someone@example.com", "someone")
        yield slack, pd


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, stubs: tuple[SlackStub, PagerDutyRestStub]
) -> Iterator[Responder]:
    slack, pd = stubs
    env = {
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_ALLOWED_USERS": ALLOWED,
        "SLACK_BOT_TOKEN": BOT,
        "SLACK_API_URL": slack.url,
        "SLACK_CHANNEL": "C0INCIDENTS",
        "PAGERDUTY_API_TOKEN": "pd-e2e",
        "PAGERDUTY_API_URL": pd.url,
        "PAGERDUTY_SERVICE_ID": "PSVC1",
        **pd.client_env(),
        "PYTHONPATH": str(ROOT),  # for tests.e2e.slack_app (dr serve runs outside the checkout)
    }
    started = Responder(tmp_path_factory.mktemp("slack") / "data", env, app="tests.e2e.slack_app")
    yield started
    started.stop()


def send(
    served: Responder,
    route: str,
    body: bytes,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST as Slack does: no function key, the signature instead."""
    signed = signed_headers(body, int(time.time()) if timestamp is None else timestamp)
    sent = {k.lower(): v for k, v in signed.items()} | {k.lower(): v for k, v in (headers or {}).items()}
    return served.client.post(f"/slack/{route}", content=body, headers=sent)


def command(served: Responder, slack: SlackStub, text: str, user: str, trigger: str) -> httpx.Response:
    return send(
        served, "commands", command_body(text, slack.response_url(trigger), user_id=user, trigger_id=trigger)
    )


def replies(slack: SlackStub, name: str, count: int = 1) -> list[dict[str, Any]]:
    assert slack.wait_until(lambda: len(slack.responses(name)) >= count, 20), f"no reply to {name}"
    return slack.responses(name)


def calls(served: Responder) -> list[list[str]]:
    journal = served.data_dir / "operations.jsonl"
    return [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []


def said(reply: Any) -> str:
    return json.dumps(reply, ensure_ascii=False)


@pytest.fixture(scope="module")
def incident_id(served: Responder) -> str:
    answer = served.post("/alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
    [opened] = served.incidents_of(answer)
    return opened


def test_wrong_signature_stale_timestamp_and_a_stale_replay_are_401(
    served: Responder, stubs: tuple[SlackStub, PagerDutyRestStub]
) -> None:
    slack, _ = stubs
    body = command_body("status", slack.response_url("x"))
    wrong = served.client.post(
        "/slack/commands", content=body, headers=signed_headers(body, int(time.time()), secret="guess")
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    stale = send(served, "commands", body, timestamp=int(time.time()) - 600)
    assert stale.status_code == 401 and "5 minutes" in stale.json()["detail"]
    # A request captured and replayed later carries its old timestamp: refused the same way.
    captured = signed_headers(body, int(time.time()) - 301)
    assert served.client.post("/slack/commands", content=body, headers=captured).status_code == 401


@pytest.mark.parametrize(
    ("route", "body", "content_type", "status"),
    [
        ("commands", b'{"text": "status"}', "application/json", 415),
        ("interactions", b"token=x", "application/x-www-form-urlencoded", 400),
        ("interactions", b"payload=%7Bnot-json", "application/x-www-form-urlencoded", 400),
        ("interactions", b"payload=" + b"a" * 70_000, "application/x-www-form-urlencoded", 413),
        ("commands", b"text=" + b"a" * 1_100_000, "application/x-www-form-urlencoded", 413),
    ],
)
def test_bad_input_is_a_json_4xx(
    served: Responder, route: str, body: bytes, content_type: str, status: int
) -> None:
    answer = send(served, route, body, headers={"content-type": content_type})
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error", "detail"}


def test_help_status_incidents_and_show(
    served: Responder, stubs: tuple[SlackStub, PagerDutyRestStub], incident_id: str
) -> None:
    slack, _ = stubs
    helped = command(served, slack, "help", STRANGER, "t-help")
    assert helped.status_code == 200 and "/dr failover redis|cosmos" in said(helped.json())
    status = command(served, slack, "status", STRANGER, "t-status").json()
    assert status["response_type"] == "in_channel" and incident_id in said(status)
    assert "Looking" in said(command(served, slack, "incidents", STRANGER, "t-list").json())
    [listed] = replies(slack, "t-list")
    assert incident_id in said(listed)
    shown = command(served, slack, f"show {incident_id}", STRANGER, "t-show").json()
    assert incident_id in said(shown) and "Timeline" in said(shown)
    timeline = served.get(f"/incidents/{incident_id}").json()
    assert any(
        e["kind"] == "slack-read" and "/dr show" in e["text"] for e in timeline["timeline"]
    )  # the audit line


def test_an_unknown_command_gets_the_nearest_help(
    served: Responder, stubs: tuple[SlackStub, PagerDutyRestStub]
) -> None:
    slack, _ = stubs
    reply = command(served, slack, "incidnets ikea", STRANGER, "t-typo").json()
    assert "did you mean `incidents`?" in said(reply) and reply["response_type"] == "ephemeral"


def test_an_unknown_user_is_refused_and_a_user_on_call_may(
    served: Responder, stubs: tuple[SlackStub, PagerDutyRestStub], incident_id: str
) -> None:
    slack, pd = stubs
    assert "Working on" in said(command(served, slack, f"ack {incident_id}", STRANGER, "t-refused").json())
    [refusal] = replies(slack, "t-refused")
    assert "Sorry, you may not run `/dr ack`" in said(refusal) and f"<@{ALLOWED}>" in said(refusal)
    assert not [c for c in calls(served) if c[0] == "acknowledge"]
    command(served, slack, f"ack {incident_id}", ON_CALL, "t-on-call")
    [done] = replies(slack, "t-on-call")
    assert done["response_type"] == "in_channel" and "acknowledged" in said(done)
    assert [c[1] for c in calls(served) if c[0] == "acknowledge"] == [incident_id]
    assert pd.requests_to("/oncalls") and slack.requests_to("users.info")


def test_a_replayed_command_within_the_window_is_done_once(
    served: Responder, stubs: tuple[SlackStub, PagerDutyRestStub]
) -> None:
    slack, _ = stubs
    body = command_body(
        "pause * storm", slack.response_url("t-replay"), user_id=ALLOWED, trigger_id="t-replay"
    )
    first = send(served, "commands", body)
    again = send(
        served, "commands", body, headers={"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}
    )
    assert first.status_code == again.status_code == 200
    replies(slack, "t-replay")
    time.sleep(0.5)  # what a second delivery would have needed to arrive
    assert len([c for c in calls(served) if c[0] == "pause"]) == 1
    assert len(slack.responses("t-replay")) == 1


def test_a_confirm_button_pressed_twice_is_one_action(
    served: Responder, stubs: tuple[SlackStub, PagerDutyRestStub]
) -> None:
    slack, _ = stubs
    command(served, slack, "restart shop/web", ALLOWED, "t-restart")
    [confirmation] = replies(slack, "t-restart")
    [value] = {e["value"] for b in confirmation["blocks"] if b["type"] == "actions" for e in b["elements"]}
    assert ActionRequest.from_value(value) == ActionRequest("restart", "shop/web")
    for n in (1, 2):
        body = interaction_body(
            "dr_confirm",
            value,
            slack.response_url(f"press-{n}"),
            user_id=ALLOWED,
            trigger_id=f"p-{n}",
            action_ts=f"{n}.0",
        )
        assert send(served, "interactions", body).status_code == 200
    [first] = replies(slack, "press-1")
    [second] = replies(slack, "press-2")
    confirms = [c for c in calls(served) if c[0] == "confirm"]
    assert len(confirms) == 2 and confirms[0][3] == confirms[1][3]  # the same request id: one action
    assert "act-1" in said(first) and "act-1" in said(second) and "act-2" not in said(second)
    assert first["replace_original"] is True
