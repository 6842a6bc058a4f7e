"""Both Slack endpoints under hypothesis, every request VALIDLY signed: never a 5xx, errors as
{error, detail}, and whatever was queued is worked off without an unexpected exception."""

from __future__ import annotations

import contextlib
import json
from functools import cache
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.chatops.inbound import ACTION_IDS
from shared.errors import PoisonMessage
from tests.conftest import REFDATA
from tests.functions.harness import json_body
from tests.functions.slack_harness import SlackWorld, post_form
from tests.functions.slack_harness import chatops as chatops  # the fixture, re-exported
from tests.json_strategies import json_values, one_field_changed
from tests.slack_requests import command_body, signed_headers

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "application/json",
        "",
    ]
)
WORDS = st.sampled_from(
    [
        "status",
        "incidents",
        "show",
        "ack",
        "resolve",
        "failover",
        "redis",
        "cosmos",
        "rollback",
        "restart",
        "restore",
        "approve",
        "deny",
        "pause",
        "resume",
        "help",
        "--to",
        "--backup",
        "*",
        "shop/web",
        "inc-1",
        "act-1",
        "sev1",
        "3",
    ]
)
TEXT = st.lists(WORDS | st.text(max_size=12), max_size=6).map(" ".join) | st.text(max_size=300)


@cache
def _payload() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (REFDATA / "slack" / "block_actions_payload_boltpy_test.json").read_text()
    )
    document["actions"][0]["action_id"] = "dr_ack"
    return document


def check(chatops: SlackWorld, route: str, body: bytes, content_type: str) -> None:
    """One signed request: a 2xx or a named 4xx; then the queue is worked off."""
    headers = signed_headers(body, int(chatops.clock().timestamp()))
    headers["Content-Type"] = content_type
    answer: func.HttpResponse = post_form(f"slack/{route}", body, headers, f"slack_{route}")
    event(f"HTTP {answer.status_code}")
    assert answer.status_code < 500, answer.get_body()
    if answer.status_code >= 400:
        error = json_body(answer)
        assert set(error) == {"error", "detail"} and error["error"], error
    with contextlib.suppress(PoisonMessage):  # dead-lettered by the host, with its reason
        chatops.work()


@PROPERTY
@given(
    text=TEXT,
    user=st.sampled_from(["W0ALLOWED", "W0STRANGER", "W0ONCALL", "Wnobody"]),
    content_type=CONTENT_TYPES,
)
def test_any_command_text_signed_is_never_a_5xx(
    chatops: SlackWorld, text: str, user: str, content_type: str
) -> None:
    body = command_body(text, chatops.slack.response_url("fuzz"), user_id=user, trigger_id=f"t-{hash(text)}")
    check(chatops, "commands", body, content_type)


@PROPERTY
@given(
    fields=st.dictionaries(
        st.sampled_from(["command", "text", "user_id", "channel_id", "trigger_id", "response_url", "payload"])
        | st.text(max_size=8),
        st.text(max_size=40),
        max_size=8,
    )
)
def test_any_form_signed_is_never_a_5xx(chatops: SlackWorld, fields: dict[str, str]) -> None:
    body = urlencode(fields).encode()
    check(chatops, "commands", body, "application/x-www-form-urlencoded")
    check(chatops, "interactions", body, "application/x-www-form-urlencoded")


@PROPERTY
@given(body=st.binary(max_size=2000))
def test_any_bytes_signed_are_never_a_5xx(chatops: SlackWorld, body: bytes) -> None:
    check(chatops, "commands", body, "application/x-www-form-urlencoded")
    check(chatops, "interactions", body, "application/x-www-form-urlencoded")


@PROPERTY
@given(
    payload=one_field_changed([_payload()]) | json_values(),
    action_id=st.sampled_from(ACTION_IDS),
    value=st.text(max_size=50) | json_values().map(json.dumps),
)
def test_any_interaction_payload_signed_is_never_a_5xx(
    chatops: SlackWorld, payload: Any, action_id: str, value: str
) -> None:
    if (
        isinstance(payload, dict)
        and isinstance(payload.get("actions"), list)
        and payload["actions"]
        and isinstance(payload["actions"][0], dict)
    ):
        payload["actions"][0].update(action_id=action_id, value=value)
        if isinstance(payload.get("response_url"), str):
            payload["response_url"] = chatops.slack.response_url("fuzz")
    check(
        chatops,
        "interactions",
        urlencode({"payload": json.dumps(payload)}).encode(),
        "application/x-www-form-urlencoded",
    )
