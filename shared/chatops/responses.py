"""Posting to a response_url (slack_sdk's WebhookClient): the capability URL Slack gives each request.

It takes five posts in 30 minutes. Failures are the caller's to retry through the queue; the URL
never appears in a log or an error, only the status Slack answered.
"""

from __future__ import annotations

import http.client
import logging
from typing import Protocol

from shared.chatops.blocks import Reply
from shared.errors import Rejected, Transient, retry_after_seconds

TIMEOUT_SECONDS = 10
# WebhookClient logs the URL it posts to at DEBUG: its logger stays at WARNING whatever DR_LOG_LEVEL says.
_quiet = logging.getLogger(__name__ + ".webhook")
_quiet.setLevel(logging.WARNING)


class Responses(Protocol):
    """Where replies go."""

    def post(self, response_url: str, reply: Reply) -> None:
        """Post; Transient (try later) or Rejected (never will work)."""
        ...


class WebhookResponses:
    """Implements `Responses` with slack_sdk.webhook.WebhookClient."""

    def post(self, response_url: str, reply: Reply) -> None:
        """POST the reply's JSON."""
        from slack_sdk.webhook import WebhookClient

        client = WebhookClient(response_url, timeout=TIMEOUT_SECONDS, logger=_quiet, retry_handlers=[])
        try:
            answer = client.send_dict(reply.to_dict())
        except (OSError, http.client.HTTPException) as e:
            raise Transient(f"Slack response_url unreachable ({type(e).__name__})") from None
        if answer.status_code == 429 or answer.status_code >= 500:
            retry_after = retry_after_seconds(
                (answer.headers or {}).get("Retry-After") or (answer.headers or {}).get("retry-after")
            )
            raise Transient(f"Slack response_url answered {answer.status_code}", retry_after)
        if answer.status_code >= 400:
            # expired_url, used_url, invalid_blocks: another try cannot help.
            raise Rejected(f"Slack response_url refused: {answer.status_code} {str(answer.body)[:100]}")
