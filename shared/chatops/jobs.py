"""The `chatops` queue: work a Slack request started but the 3-second answer could not wait for.

Three kinds of message: a changing `command`, a button `press`, and a `reply` to post to a
response_url. The message id is derived from Slack's trigger_id (and the action's ts), so a request
Slack retries (X-Slack-Retry-Num) is queued once: the queue's duplicate detection drops the resend,
the same on the embedded queue as on Service Bus. The body carries the response_url, which is a
capability: it is never logged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from shared.chatops.blocks import Reply
from shared.chatops.inbound import ButtonPress, SlashCommand
from shared.domain.effects import CHATOPS_QUEUE
from shared.ports import QueueMessage

MAX_SESSION = 128


def digest(*parts: str) -> str:
    """A short stable hash of the parts."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def command_message(command: SlashCommand) -> QueueMessage:
    """A changing command, keyed by its trigger_id (a Slack retry carries the same one)."""
    body = {"kind": "command", "command": asdict(command)}
    return _message(f"slack-command-{digest(command.trigger_id)}", body, command.channel_id)


def press_message(press: ButtonPress) -> QueueMessage:
    """A button press, keyed by its trigger_id and the action's ts."""
    data = asdict(press)
    data["message_blocks"] = list(press.message_blocks)
    body = {"kind": "press", "press": data}
    return _message(
        f"slack-press-{digest(press.trigger_id, press.action_ts)}", body, press.channel_id or press.user_id
    )


def reply_message(
    origin: str,
    response_url: str,
    reply: Reply,
    session: str,
    attempt: int = 1,
    at: datetime | None = None,
    first_try: str = "",
) -> QueueMessage:
    """A reply to post (again, when `attempt` > 1, at `at`; first tried at `first_try`, ISO 8601)."""
    body = {
        "kind": "reply",
        "response_url": response_url,
        "reply": reply.to_dict(),
        "attempt": attempt,
        "origin": origin,
        "first_try": first_try,
        "session": session,  # a retry stays in the channel's session, after the channel's other work
    }
    return _message(f"{origin}-reply-{attempt}", body, session, at)


def _message(message_id: str, body: dict[str, Any], session: str, at: datetime | None = None) -> QueueMessage:
    # Service Bus takes session ids of up to 128 characters; Slack's channel ids are a dozen.
    session = session if 0 < len(session) <= MAX_SESSION else digest(session or "slack")
    return QueueMessage(
        queue=CHATOPS_QUEUE,
        body=json.dumps(body, separators=(",", ":")).encode(),
        message_id=message_id,
        session_id=session,
        scheduled_at=at,
        application_properties={"kind": str(body["kind"])},
    )


def command_from(data: dict[str, Any]) -> SlashCommand:
    """Inverse of `command_message`'s body."""
    return SlashCommand(**data)


def press_from(data: dict[str, Any]) -> ButtonPress:
    """Inverse of `press_message`'s body."""
    return ButtonPress(**{**data, "message_blocks": tuple(data.get("message_blocks") or ())})
