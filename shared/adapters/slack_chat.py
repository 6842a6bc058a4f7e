"""Chat on Slack's Web API, through slack-sdk's WebClient (no retries inside: they go through the queue)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.errors import Rejected, Transient, retry_after_seconds

TIMEOUT_SECONDS = 10
# Slack's error codes that a later try may not get (everything else is a fault of ours to fix).
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class SlackChat:
    """Implements `shared.ports.Chat`."""

    def __init__(self, token: str, base_url: str) -> None:
        from slack_sdk import WebClient

        self._client = WebClient(token=token, base_url=base_url, timeout=TIMEOUT_SECONDS, retry_handlers=[])

    def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None, thread_ts: str | None = None
    ) -> tuple[str, str]:
        """chat.postMessage; returns (channel id, ts): chat.update takes ids only, not names."""
        with _translated("chat.postMessage"):
            answer = self._client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts
            )
        return str(answer["channel"]), str(answer["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """chat.update."""
        with _translated("chat.update"):
            self._client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)


@contextmanager
def _translated(method: str) -> Iterator[None]:
    from slack_sdk.errors import SlackApiError

    try:
        yield
    except SlackApiError as e:
        status = e.response.status_code
        error = e.response.get("error") if isinstance(e.response.data, dict) else None
        if status == 429 or status >= 500 or error in TRANSIENT_ERRORS:
            retry_after = retry_after_seconds(_header(e.response.headers, "retry-after"))
            raise Transient(
                f"Slack {method}: {error or status}",
                retry_after,
                held=status == 429 or error == "ratelimited",
            ) from None
        raise Rejected(f"Slack {method} refused: {error or status}") from None
    except (OSError, http.client.HTTPException) as e:  # refused, timed out, cut off mid-answer
        raise Transient(f"Slack {method}: unreachable ({type(e).__name__})") from None


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None
