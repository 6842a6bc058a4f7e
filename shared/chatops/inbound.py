"""What Slack posts, parsed: a slash command's form fields, an interaction's `payload` JSON.

Only the fields the responder uses are kept; anything malformed is a BadInput naming the field.
`response_url` is a capability (whoever holds it may post as the app for 30 minutes): it is kept
out of repr so that logging a request never shows it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.errors import BadInput
from shared.intake.json_body import json_value

FORM = "application/x-www-form-urlencoded"
MAX_TEXT = 4000  # Slack caps a command's text well below this; longer is not Slack
MAX_ID = 255
ACTION_IDS = ("dr_confirm", "dr_cancel", "dr_approve", "dr_deny", "dr_ack", "dr_resolve")
# Where Slack's response_urls point. Anything else is refused: a signed request naming another host
# (a leaked signing secret) must not turn the worker into a client of the metadata endpoint.
SLACK_REPLY_ORIGINS = frozenset({"https://hooks.slack.com"})


def reply_origins(slack_api_url: str) -> frozenset[str]:
    """Slack's response_url origin, and the Web API's own (SLACK_API_URL: a proxy, or a local stub)."""
    api = urlsplit(slack_api_url)
    return SLACK_REPLY_ORIGINS | {f"{api.scheme}://{api.netloc.lower()}"}


@dataclass(frozen=True)
class SlashCommand:
    """One /dr invocation."""

    command: str
    text: str
    user_id: str
    user_name: str
    channel_id: str
    team_id: str
    trigger_id: str
    response_url: str = field(repr=False)


@dataclass(frozen=True)
class ButtonPress:
    """One press of one of our buttons (a block_actions interaction)."""

    action_id: str
    value: str
    action_ts: str
    block_id: str
    user_id: str
    user_name: str
    channel_id: str
    message_ts: str
    trigger_id: str
    message_blocks: tuple[dict[str, Any], ...]  # the pressed message as it was (absent on ephemeral ones)
    response_url: str = field(repr=False)
    team_id: str = ""  # the presser's own workspace ("" in presses queued before it was kept)


def form_fields(body: bytes, content_type: str | None) -> dict[str, str]:
    """The form's fields (the last of a repeated one); BadInput if it is not a form."""
    if (content_type or "").split(";")[0].strip().lower() != FORM:
        raise BadInput("unsupported_media_type", f"Slack posts {FORM}", 415)
    try:
        text = body.decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadInput("invalid_form", f"the body is not a form: {str(e)[:100]}") from None
    return {name: values[-1] for name, values in parsed.items()}


def parse_command(fields: dict[str, str], origins: Collection[str] = SLACK_REPLY_ORIGINS) -> SlashCommand:
    """The command; BadInput naming a missing field."""
    text = fields.get("text", "")
    if len(text) > MAX_TEXT:
        raise BadInput("invalid_field", f"text must be at most {MAX_TEXT} characters", 422)
    return SlashCommand(
        command=_field(fields, "command"),
        text=text,
        user_id=_field(fields, "user_id"),
        user_name=fields.get("user_name", "")[:MAX_ID],
        channel_id=_field(fields, "channel_id"),
        team_id=fields.get("team_id", "")[:MAX_ID],
        trigger_id=_field(fields, "trigger_id"),
        response_url=_response_url(fields.get("response_url", ""), "response_url", origins),
    )


def parse_interaction(fields: dict[str, str], origins: Collection[str] = SLACK_REPLY_ORIGINS) -> ButtonPress:
    """The button press in the `payload` field; BadInput for anything but one of our buttons."""
    if "payload" not in fields:
        raise BadInput("missing_field", "an interaction carries its JSON in the form field payload")
    # Parsed as a webhook's body is: a lone surrogate or NaN would be taken here and fail later, in
    # the worker (the queued press is encoded), and the pressed message's blocks are kept and queued
    # (dataclasses.asdict recurses), so nesting deeper than Slack's few levels is refused too.
    try:
        payload = json_value(fields["payload"])
    except BadInput as e:
        raise BadInput("invalid_json", f"the payload field is not JSON: {e.detail}") from None
    if not isinstance(payload, dict):
        raise BadInput("invalid_field", "payload must be a JSON object")
    if payload.get("type") != "block_actions":
        raise BadInput(
            "unsupported_interaction", f"only block_actions are handled, not {_shown(payload.get('type'))}"
        )
    actions = payload.get("actions")
    if not (isinstance(actions, list) and len(actions) == 1 and isinstance(actions[0], dict)):
        raise BadInput("invalid_field", "payload.actions must hold one action")
    action = actions[0]
    action_id = _text(action, "action_id", "payload.actions[0]")
    if action_id not in ACTION_IDS:
        raise BadInput(
            "unknown_action", f"action_id {_shown(action_id)} is not one of {', '.join(ACTION_IDS)}"
        )
    user = _object(payload, "user", "payload")
    channel, container, message = (
        _dict(payload, "channel"),
        _dict(payload, "container"),
        _dict(payload, "message"),
    )
    blocks = message.get("blocks")
    if not isinstance(blocks, list):
        blocks = []
    return ButtonPress(
        action_id=action_id,
        value=_text(action, "value", "payload.actions[0]", limit=2000, empty=False),
        action_ts=_text(action, "action_ts", "payload.actions[0]"),
        block_id=str(action.get("block_id") or "")[:MAX_ID],
        user_id=_text(user, "id", "payload.user"),
        user_name=str(user.get("username") or user.get("name") or "")[:MAX_ID],
        channel_id=str(channel.get("id") or container.get("channel_id") or "")[:MAX_ID],
        message_ts=str(container.get("message_ts") or message.get("ts") or "")[:MAX_ID],
        trigger_id=_text(payload, "trigger_id", "payload"),
        message_blocks=tuple(b for b in blocks if isinstance(b, dict)),
        response_url=_response_url(payload.get("response_url"), "payload.response_url", origins),
        # The user's home workspace, which in a channel shared with another organisation
        # (Slack Connect) is not the workspace the app is installed in.
        team_id=str(user.get("team_id") or _dict(payload, "team").get("id") or "")[:MAX_ID],
    )


def _field(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise BadInput("missing_field", f"the form has no {name}")
    if len(value) > MAX_ID:
        raise BadInput("invalid_field", f"{name} must be at most {MAX_ID} characters", 422)
    return value


def _dict(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _object(data: dict[str, Any], name: str, at: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise BadInput("missing_field", f"{at}.{name} must be an object")
    return value


def _text(data: dict[str, Any], name: str, at: str, limit: int = MAX_ID, empty: bool = False) -> str:
    value = data.get(name)
    if not isinstance(value, str) or (not value and not empty):
        raise BadInput("missing_field", f"{at}.{name} must be a non-empty string")
    if len(value) > limit:
        raise BadInput("invalid_field", f"{at}.{name} must be at most {limit} characters", 422)
    return value


def _response_url(value: Any, where: str, origins: Collection[str]) -> str:
    """A URL on one of Slack's reply origins (never echoed: it is a capability)."""
    if not isinstance(value, str) or not value:
        raise BadInput("missing_field", f"the request has no {where}")
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or not parts.netloc or len(value) > 2000:
        raise BadInput("invalid_field", f"{where} must be an https URL")
    if f"{parts.scheme}://{parts.netloc.lower()}" not in origins:
        raise BadInput("invalid_field", f"{where} must be a Slack URL (https://hooks.slack.com/…)")
    return value


def _shown(value: Any) -> str:
    return repr(value)[:60]
