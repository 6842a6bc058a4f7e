"""Malformed input against the three POST routes of a real `dr serve`: how many got a 5xx (goal: 0).

Deterministic (hypothesis, derandomized): the hand-written bad requests of the tests, any bytes
under any content type, any JSON value, and every reference payload with one field deleted or
replaced. PagerDuty's route gets each body with a valid signature, so the fuzz reaches past it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import secrets
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.keepalive import free_port
from bench.over_http import HOST, _start, _stop, _wait_healthy
from bench.report import BenchFailed, Figure
from tests.bad_inputs import ALERTS as BAD_ALERTS
from tests.bad_inputs import EVENTS as BAD_EVENTS
from tests.conftest import REFDATA
from tests.json_strategies import JSON_VALUES, one_field_changed

EXAMPLES = 400  # per route and kind of input
SECRET = "bench-webhook-secret"
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "", "application/cloudevents+json"]
)


def _documents(folder: str, pattern: str) -> list[Any]:
    return [json.loads(p.read_text()) for p in sorted((REFDATA / folder).glob(pattern))]


ROUTES: dict[str, list[Any]] = {
    "/api/alerts": _documents("azure_monitor", "[cl]*.json")
    + _documents("azure_monitor", "noncommon_*.json"),
    "/api/eventgrid": _documents("event_grid", "*.json"),
    "/api/pagerduty": _documents("pagerduty", "webhook_v3_captured_*.json"),
}


def run(profile: bool = False) -> list[Figure]:
    """Serve, send every malformed input, count the answers by class; BenchFailed on any 5xx."""
    key = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="dr-bench-malformed-") as tmp:
        data, log_path = Path(tmp) / "data", Path(tmp) / "serve.log"
        port = free_port()
        os.environ["PAGERDUTY_WEBHOOK_SECRETS"] = SECRET  # read by the dr serve started below
        with log_path.open("wb") as log:
            server = _start(port, data, key, log, None)
            try:
                _wait_healthy(server, port, log_path)
                counts = _campaign(port, key)
            finally:
                _stop(server)
                os.environ.pop("PAGERDUTY_WEBHOOK_SECRETS", None)
    figures = []
    failures = []
    for route, statuses in counts.items():
        tried = sum(statuses.values())
        five = sum(n for status, n in statuses.items() if status >= 500)
        classes = Counter(f"{status // 100}xx" for status in statuses.elements())
        shown = ", ".join(f"{c} {n}" for c, n in sorted(classes.items()))
        figures.append(
            Figure("malformed", f"{route}: tried / 5xx", f"{tried:,} / {five} ({shown})", "0 5xx", five == 0)
        )
        if five:
            failures.append(f"{route}: {five} of {tried} answers were 5xx")
    if failures:
        raise BenchFailed("malformed: " + "; ".join(failures))
    return figures


def _campaign(port: int, key: str) -> dict[str, Counter[int]]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    counts: dict[str, Counter[int]] = {route: Counter() for route in ROUTES}

    def send(route: str, body: bytes, content_type: str) -> None:
        headers = {"content-type": content_type} if content_type else {}
        if route == "/api/pagerduty":
            signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers["x-pagerduty-signature"] = f"v1={signature}"
            headers["x-webhook-id"] = hashlib.sha256(body).hexdigest()[:32]
        conn.request("POST", f"{route}?code={quote(key)}", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        counts[route][response.status] += 1

    for route in ROUTES:
        for case in BAD_ALERTS if route == "/api/alerts" else BAD_EVENTS:
            send(route, case.body, case.content_type)
        for strategy in _strategies(route):
            _run_examples(strategy, lambda pair, route=route: send(route, *pair))
    conn.close()
    return counts


def _strategies(route: str) -> list[st.SearchStrategy[tuple[bytes, str]]]:
    documents = ROUTES[route]
    as_json = st.just("application/json")
    return [
        st.tuples(st.binary(max_size=300), CONTENT_TYPES),
        st.tuples(JSON_VALUES.map(lambda v: json.dumps(v).encode()), as_json),
        st.tuples(one_field_changed(documents).map(lambda d: json.dumps(d).encode()), as_json),
    ]


def _run_examples(
    strategy: st.SearchStrategy[tuple[bytes, str]], send: Callable[[tuple[bytes, str]], None]
) -> None:
    @settings(
        max_examples=EXAMPLES,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def each(pair: tuple[bytes, str]) -> None:
        send(pair)

    each()
