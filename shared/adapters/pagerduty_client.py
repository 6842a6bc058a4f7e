"""The `pagerduty` package's clients, made to hand failures back at once, as our own error types.

Retries happen through our queue, not inside the client: the client's own loop sleeps in the
function (forever, on 429) and cannot honour Retry-After. So a 429 or 5xx becomes Transient at
once, carrying Retry-After; another 4xx becomes Rejected with PagerDuty's own error text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.errors import Rejected, Transient, retry_after_seconds

TIMEOUT_SECONDS = 10  # a queue function must not hang on a slow PagerDuty


class _RetryLater(Exception):
    def __init__(self, message: str, retry_after: float | None, held: bool) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.held = held


def events_client(routing_key: str, base_url: str) -> Any:
    """An EventsApiV2Client that does not wait on 429/5xx."""
    import pagerduty

    return _no_wait(pagerduty.EventsApiV2Client)(routing_key, base_url=base_url)


def rest_client(api_token: str, base_url: str, from_email: str | None) -> Any:
    """A RestApiV2Client that does not wait on 429/5xx."""
    import pagerduty

    return _no_wait(pagerduty.RestApiV2Client)(api_token, default_from=from_email, base_url=base_url)


def _no_wait(base: type) -> type:
    class NoWait(base):
        max_network_attempts = 0
        timeout = TIMEOUT_SECONDS

        def postprocess(self, response: Any) -> None:
            status = response.status_code
            if status == 429 or status >= 500:
                reason = "rate limited (429)" if status == 429 else f"PagerDuty answered {status}"
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
                raise _RetryLater(reason, retry_after, held=status == 429)

    NoWait.__name__ = f"NoWait{base.__name__}"
    return NoWait


@contextmanager
def translated_errors(what: str) -> Iterator[None]:
    """PagerDuty's and the network's failures as Transient or Rejected (never with a credential in them)."""
    import pagerduty

    try:
        yield
    except pagerduty.UrlError as e:  # not a pagerduty.Error: a base URL that is not https://
        raise Rejected(f"{what}: {e} (check PAGERDUTY_EVENTS_URL / PAGERDUTY_API_URL)") from None
    except _RetryLater as e:
        raise Transient(f"{what}: {e}", e.retry_after, held=e.held) from None
    except pagerduty.HttpError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise Rejected(f"{what}: PagerDuty refused it ({status}): {_errors(e.response)}") from None
    except pagerduty.Error as e:
        # No response: a network error, past the client's connection attempts.
        raise Transient(f"{what}: PagerDuty unreachable ({type(e.__cause__ or e).__name__})") from None


def _errors(response: Any) -> str:
    """PagerDuty's own words: {"status", "message", "errors": [...]} (Events) or {"error": {...}} (REST)."""
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return str(response.text)[:300]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [str(body.get("message", ""))] + [str(e) for e in body.get("errors", []) if e]
    return "; ".join(p for p in parts if p)[:500] or str(response.text)[:300]
