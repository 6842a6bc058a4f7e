"""`/dr status` as Slack sends it: a signed, form-encoded POST to /api/slack/commands on one connection."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from bench.report import BenchFailed

HOST = "127.0.0.1"
PATH = "/api/slack/commands"
FORM = "application/x-www-form-urlencoded"


def command_body(text: str, n: int) -> bytes:
    """The fields Slack posts for `/dr <text>`, a fresh trigger id each time (as each invocation has)."""
    return urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",  # the deprecated verification token Slack still sends
            "team_id": "T0001",
            "team_domain": "amicis",
            "channel_id": "C2147483705",
            "channel_name": "incidents",
            "user_id": "U2147483697",
            "user_name": "ana",
            "command": "/dr",
            "text": text,
            "api_app_id": "A123456",
            "is_enterprise_install": "false",
            "response_url": "https://hooks.slack.com/commands/T0001/1234/abcd",
            "trigger_id": f"13345224609.738474920.{n:08d}",
        }
    ).encode()


def signed_headers(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """Slack's signature v0: HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
    }


def timed_commands(
    port: int, secret: str, text: str, runs: int, warm_up: int, check: Callable[[dict[str, Any]], None]
) -> tuple[list[float], bytes]:
    """Seconds per answer after the warm-ups, and the last body; BenchFailed at a wrong answer.

    Each request is signed just before it is sent (the clock is part of what is signed) and the
    signing is outside the time, as it is on Slack's side.
    """
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    times: list[float] = []
    sock, body = None, b""
    for n in range(warm_up + runs):
        form = command_body(text, n)
        headers = signed_headers(form, secret, int(time.time()))
        started = time.perf_counter()
        conn.request("POST", PATH, body=form, headers=headers)
        response = conn.getresponse()
        body = response.read()
        seconds = time.perf_counter() - started
        if n and conn.sock is not sock:  # http.client reconnects silently when the server closes
            raise BenchFailed(f"slack: `dr serve` closed the keep-alive connection before request {n}")
        sock = conn.sock
        if response.status != 200:
            raise BenchFailed(f"slack: /dr {text} answered {response.status}: {body[:300]!r}")
        try:
            answer = json.loads(body)
        except ValueError:
            raise BenchFailed(f"slack: /dr {text} answered what is not JSON: {body[:300]!r}") from None
        check(answer)
        if n >= warm_up:
            times.append(seconds)
    conn.close()
    return times, body
