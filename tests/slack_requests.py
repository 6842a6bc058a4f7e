"""Slack's requests as Slack sends them: form-encoded, signed `v0:{timestamp}:{body}` with the secret."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

from tests.conftest import REFDATA

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the refdata vector's; any string would do
FORM = "application/x-www-form-urlencoded"


def signed_headers(body: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    """The headers Slack adds: the timestamp and the v0 signature of this body."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


def command_body(
    text: str,
    response_url: str,
    user_id: str = "W111",
    trigger_id: str = "111.111.xxx",
    user_name: str = "",
    team_id: str = "",
) -> bytes:
    """The refdata slash command's fields (workspace T111), as /dr with this text (by `user_name`, from
    `team_id`, if given)."""
    fields = dict(_pairs((REFDATA / "slack" / "slash_command_body_boltpy_test.txt").read_text()))
    fields.update(command="/dr", text=text, response_url=response_url, user_id=user_id, trigger_id=trigger_id)
    if team_id:
        fields["team_id"] = team_id
    if user_name:
        fields["user_name"] = user_name
    return urlencode(fields).encode()


def interaction_body(
    action_id: str,
    value: str,
    response_url: str,
    user_id: str = "W111",
    trigger_id: str = "111.222.valid",
    action_ts: str = "1596530385.194939",
    message: dict[str, Any] | None = None,
    user_name: str = "",
    user_team_id: str = "",
) -> bytes:
    """The refdata block_actions payload (workspace T111), pressing one of our buttons (by `user_name`,
    a user of workspace `user_team_id`, if given)."""
    payload = json.loads((REFDATA / "slack" / "block_actions_payload_boltpy_test.json").read_text())
    payload["user"]["id"] = user_id
    if user_team_id:
        payload["user"]["team_id"] = user_team_id
    if user_name:
        payload["user"].update(username=user_name, name=user_name)
    payload["response_url"] = response_url
    payload["trigger_id"] = trigger_id
    payload["actions"][0].update(action_id=action_id, value=value, action_ts=action_ts)
    if message is not None:
        payload["message"] = message
        if "ts" in message:  # Slack names the pressed message in the container too
            payload.setdefault("container", {})["message_ts"] = message["ts"]
    return urlencode({"payload": json.dumps(payload)}).encode()


def _pairs(text: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(text, keep_blank_values=True)
