"""SlackChat with the real slack_sdk WebClient against a local Slack Web API stub."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from shared.adapters.slack_chat import SlackChat
from shared.errors import Rejected, Transient
from tests.stubs import SlackStub

TOKEN = "xoxb-1111-2222-SlackBotTokenSecret"
CHANNEL = "C0INCIDENTS"
BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "SEV1 cosmos-availability"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Tenant* ikea · *Component* cosmosdb"}},
]


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub(token=TOKEN, channels={"#incidents": CHANNEL}, missing_channels={"#archived"}) as started:
        yield started


@pytest.fixture
def chat(stub: SlackStub) -> SlackChat:
    return SlackChat(TOKEN, stub.url)


def test_post_sends_channel_text_and_blocks_and_returns_the_ts(stub: SlackStub, chat: SlackChat) -> None:
    channel, ts = chat.post(CHANNEL, "SEV1 cosmos-availability on cosmos-amicis-ikea-dev", BLOCKS)
    assert channel == CHANNEL

    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/api/chat.postMessage")
    assert request.header("Authorization") == f"Bearer {TOKEN}"
    assert request.header("Content-Type") == "application/json;charset=utf-8"
    assert request.json == {
        "channel": CHANNEL,
        "text": "SEV1 cosmos-availability on cosmos-amicis-ikea-dev",
        "blocks": BLOCKS,
    }
    [card] = stub.cards(CHANNEL)
    assert (card.ts, card.text, card.blocks, card.updates) == (ts, request.json["text"], BLOCKS, 0)


def test_post_in_a_thread_sends_thread_ts(stub: SlackStub, chat: SlackChat) -> None:
    _, parent = chat.post(CHANNEL, "card", BLOCKS)

    _, reply = chat.post(CHANNEL, "PagerDuty: acknowledged by Ada", [], thread_ts=parent)

    assert stub.requests[-1].json == {
        "channel": CHANNEL,
        "text": "PagerDuty: acknowledged by Ada",
        "blocks": [],
        "thread_ts": parent,
    }
    assert reply != parent and float(reply) > float(parent)
    assert [m.ts for m in stub.replies(parent)] == [reply]


def test_update_sends_channel_ts_text_and_blocks(stub: SlackStub, chat: SlackChat) -> None:
    _, ts = chat.post(CHANNEL, "card", BLOCKS)
    new_blocks = [*BLOCKS, {"type": "context", "elements": [{"type": "mrkdwn", "text": "Acknowledged"}]}]

    chat.update(CHANNEL, ts, "card (acknowledged)", new_blocks)

    request = stub.requests[-1]
    assert (request.method, request.path) == ("POST", "/api/chat.update")
    assert request.header("Authorization") == f"Bearer {TOKEN}"
    assert request.json == {"channel": CHANNEL, "ts": ts, "text": "card (acknowledged)", "blocks": new_blocks}
    message = stub.message(CHANNEL, ts)
    assert message is not None and (message.text, message.blocks, message.updates) == (
        "card (acknowledged)",
        new_blocks,
        1,
    )


def test_one_card_updated_twice_with_three_thread_replies(stub: SlackStub, chat: SlackChat) -> None:
    channel, ts = chat.post("#incidents", "opened", BLOCKS)  # postMessage takes a name, answers the ID
    assert channel == CHANNEL, "the id to update the card with"
    for n in range(2):
        chat.update(CHANNEL, ts, f"update {n}", BLOCKS)
    for line in ("paged", "acknowledged", "resolved"):
        chat.post(CHANNEL, line, [], thread_ts=ts)

    [card] = stub.cards()
    assert (card.channel, card.ts, card.text, card.updates) == (CHANNEL, ts, "update 1", 2)
    assert [text for text, _ in card.versions] == ["opened", "update 0", "update 1"]
    assert [m.text for m in stub.replies(ts)] == ["paged", "acknowledged", "resolved"]


def test_update_by_channel_name_is_refused_as_slack_does(stub: SlackStub, chat: SlackChat) -> None:
    _, ts = chat.post("#incidents", "opened", BLOCKS)

    with pytest.raises(Rejected, match="channel_not_found"):
        chat.update("#incidents", ts, "changed", BLOCKS)

    assert stub.message(CHANNEL, ts) is not None and stub.cards()[0].updates == 0


def test_update_of_an_unknown_message_is_rejected(chat: SlackChat) -> None:
    with pytest.raises(Rejected, match="message_not_found"):
        chat.update(CHANNEL, "1700000000.000001", "x", BLOCKS)


def test_a_429_with_retry_after_is_transient_after_one_request(stub: SlackStub, chat: SlackChat) -> None:
    stub.respond_next("chat.postMessage", 429, headers={"Retry-After": "7"})

    with pytest.raises(Transient, match="ratelimited") as caught:
        chat.post(CHANNEL, "card", BLOCKS)

    assert caught.value.retry_after == 7.0 and caught.value.held, "rate limited: held back, not failed"
    assert len(stub.requests) == 1 and stub.messages() == []


def test_a_429_without_retry_after_is_transient_with_no_hint(stub: SlackStub, chat: SlackChat) -> None:
    stub.respond_next("chat.update", 429)
    _, ts = chat.post(CHANNEL, "card", BLOCKS)

    with pytest.raises(Transient) as caught:
        chat.update(CHANNEL, ts, "x", BLOCKS)

    assert caught.value.retry_after is None
    assert len(stub.requests) == 2


def test_ok_false_ratelimited_is_transient(stub: SlackStub, chat: SlackChat) -> None:
    stub.respond_next("chat.postMessage", 200, body={"ok": False, "error": "ratelimited"})

    with pytest.raises(Transient, match="ratelimited") as caught:
        chat.post(CHANNEL, "card", BLOCKS)
    assert caught.value.held


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_transient_after_one_request(stub: SlackStub, chat: SlackChat, status: int) -> None:
    stub.fail_next("chat.postMessage", 1, status=status)  # an HTML error page, as a proxy sends

    with pytest.raises(Transient):
        chat.post(CHANNEL, "card", BLOCKS)

    assert len(stub.requests) == 1


def test_a_missing_channel_is_rejected(stub: SlackStub, chat: SlackChat) -> None:
    with pytest.raises(Rejected, match="channel_not_found"):
        chat.post("#archived", "card", BLOCKS)

    assert len(stub.requests) == 1 and stub.messages() == []


def test_a_wrong_token_is_rejected(stub: SlackStub) -> None:
    with pytest.raises(Rejected, match="invalid_auth"):
        SlackChat("xoxb-wrong-token", stub.url).post(CHANNEL, "card", BLOCKS)

    assert len(stub.requests) == 1


@pytest.mark.parametrize("close", [False, True], ids=["503", "connection-closed"])
def test_slack_down_is_transient(stub: SlackStub, chat: SlackChat, close: bool) -> None:
    stub.set_down(close=close)

    with pytest.raises(Transient):
        chat.post(CHANNEL, "card", BLOCKS)

    assert len(stub.requests) == 1


def test_a_refused_connection_is_transient(stub: SlackStub, chat: SlackChat) -> None:
    stub.stop()

    with pytest.raises(Transient, match="unreachable"):
        chat.post(CHANNEL, "card", BLOCKS)


def test_the_token_is_never_in_an_error_or_a_log(stub: SlackStub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "xoxb-9999-8888-AnotherSecretToken"
    messages = []
    for token, status, channel in [
        (TOKEN, 429, CHANNEL),
        (TOKEN, 500, CHANNEL),
        (TOKEN, None, "#archived"),
        (wrong, None, CHANNEL),
    ]:
        if status:
            stub.respond_next("*", status, headers={"Retry-After": "1"})
        with pytest.raises((Transient, Rejected)) as caught:
            SlackChat(token, stub.url).post(channel, "card", BLOCKS)
        messages.append(str(caught.value))
    stub.stop()
    with pytest.raises(Transient) as refused:
        SlackChat(TOKEN, stub.url).update(CHANNEL, "1.2", "x", BLOCKS)
    messages.append(str(refused.value))

    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert logged  # slack_sdk does log these requests and failures
    for secret in (TOKEN, wrong, "SlackBotTokenSecret", "AnotherSecretToken"):
        assert not any(secret in m for m in messages + logged), secret


def test_the_card_and_an_approval_request_reach_slack_with_their_buttons(
    stub: SlackStub, chat: SlackChat
) -> None:
    from shared.domain.actions import ActionRecord, ActionState, Actor
    from shared.paging.approval import approval_request
    from shared.paging.card import card
    from tests.factories import incident

    text, blocks = card(incident("inc-20261125-0a1b2c3d4e"), [])
    _, ts = chat.post(CHANNEL, text, blocks)
    record = ActionRecord(
        id="act-0123456789abcdef",
        incident_id="inc-20261125-0a1b2c3d4e",
        action="velero.restore",
        target="/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-1",
        mode="approve",
        state=ActionState.AWAITING_APPROVAL,
        planned_by=Actor("U0ADA", "slack"),
        planned_at="2026-11-25T10:00:00.000Z",
        updated_at="2026-11-25T10:00:00.000Z",
        params={"namespace": "shop"},
        continuation={"found": {"backup": "daily-20261125"}},
        request="Restore namespace shop from backup daily-20261125. Expires 2026-11-25T10:30:00.000Z.",
        expires_at="2026-11-25T10:30:00.000Z",
    )
    line, approval = approval_request(record, "velero.restore on aks-1: awaiting approval")
    chat.post(CHANNEL, line, approval, thread_ts=ts)

    posted, asked = stub.requests_to("/api/chat.postMessage")
    buttons = [e for b in posted.json["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("dr_ack", "inc-20261125-0a1b2c3d4e"),
        ("dr_resolve", "inc-20261125-0a1b2c3d4e"),
    ]
    assert asked.json["thread_ts"] == ts
    buttons = [e for b in asked.json["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"], b["style"]) for b in buttons] == [
        ("dr_approve", "act-0123456789abcdef", "primary"),
        ("dr_deny", "act-0123456789abcdef", "danger"),
    ]
    shown = json.dumps(asked.json["blocks"])
    for fact in ("velero.restore", "aks-1", "daily-20261125", "2026-11-25T10:30:00.000Z", "shop"):
        assert fact in shown
