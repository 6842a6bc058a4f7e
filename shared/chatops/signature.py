"""Slack's request signature at the door: `v0:{timestamp}:{raw body}`, HMAC-SHA256, five minutes.

https://docs.slack.dev/authentication/verifying-requests-from-slack/ — slack_sdk's
SignatureVerifier does the arithmetic (constant-time compare); this module checks the headers'
shape first, since the verifier raises on a timestamp that is not a number, a signature that is
not ASCII or a body that is not UTF-8, and answers with a reason that names no secret.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.clock import Clock
from shared.errors import Unauthorized

MAX_HEADER = 100  # "v0=" and 64 hex digits; a timestamp of ten digits


def verify_request(body: bytes, headers: Mapping[str, str], secret: str | None, clock: Clock) -> None:
    """Unauthorized unless the request carries Slack's valid, fresh signature of this body."""
    from slack_sdk.signature import Clock as SlackClock
    from slack_sdk.signature import SignatureVerifier

    class Seconds(SlackClock):
        """slack_sdk's clock over the responder's, so tests move time without patching."""

        def now(self) -> float:
            return clock().timestamp()

    if not secret:
        raise Unauthorized("Slack requests are refused: no SLACK_SIGNING_SECRET configured")
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp") or ""
    signature = lowered.get("x-slack-signature") or ""
    if not (timestamp and signature):
        raise Unauthorized("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    if not (len(timestamp) <= MAX_HEADER and timestamp.isascii() and timestamp.isdigit()):
        raise Unauthorized("X-Slack-Request-Timestamp must be a Unix time in seconds")
    if not (len(signature) <= MAX_HEADER and signature.isascii() and signature.startswith("v0=")):
        raise Unauthorized("X-Slack-Signature must be v0=<hex>")
    try:
        body.decode("utf-8")  # the verifier decodes the body; Slack signs only UTF-8 forms
    except UnicodeDecodeError:
        raise Unauthorized("the body is not UTF-8, so not a request Slack signed") from None
    verifier = SignatureVerifier(secret, Seconds())
    if abs(verifier.clock.now() - int(timestamp)) > 300:
        raise Unauthorized(
            "X-Slack-Request-Timestamp is more than 5 minutes off: a replay, or a clock to fix"
        )
    if not verifier.is_valid(body, timestamp, signature):
        raise Unauthorized("X-Slack-Signature does not match")
