"""Over real HTTP: every bad request gets its 4xx and stores nothing; both Event Grid handshakes."""

from __future__ import annotations

import contextlib
import json
import socket
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bad_inputs import ALERTS, EVENTS, BadRequest
from tests.conftest import REFDATA
from tests.e2e.conftest import KEY, Responder


def _stored(responder: Responder) -> tuple[int, int]:
    incidents = responder.get("/incidents", limit="1000").json()["count"]
    signals = responder.get("/signals", limit="1000").json()["count"]
    return incidents, signals


@pytest.mark.parametrize(
    ("path", "case"),
    [("/alerts", c) for c in ALERTS] + [("/eventgrid", c) for c in EVENTS],
    ids=[f"alerts: {c.name}" for c in ALERTS] + [f"eventgrid: {c.name}" for c in EVENTS],
)
def test_bad_request_gets_a_4xx_naming_the_problem(responder: Responder, path: str, case: BadRequest) -> None:
    before = _stored(responder)
    answer = responder.post(path, case.body, case.content_type, **dict(case.headers))
    assert answer.status_code == case.status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    problem = answer.json()
    assert problem["error"] == case.error and case.detail in problem["detail"]
    assert _stored(responder) == before


# What uvicorn's parser refuses before any function sees it: each is sent as raw bytes.
_POST = b"POST /api/alerts?code=" + KEY.encode() + b" HTTP/1.1\r\nHost: x\r\n"
_PAUSE = b"<pause>"  # where the test waits before sending the rest
_ALERT = (REFDATA / "azure_monitor" / "cas_testaction_metric_static_fired.json").read_bytes()
_UNPARSABLE = {
    "a NUL in a header": _POST + b"X-Bad: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
    "two Content-Lengths": _POST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "a bad chunk size": _POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 (TLS on the plain port)\r\n\r\n",
    # The first chunk is a whole alert, and the function is reading the body when the bad chunk size
    # comes: the sender is told 400, so it must not be stored either.
    "a whole alert, then a bad chunk size": _POST
    + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"%x\r\n%s\r\n" % (len(_ALERT), _ALERT)
    + _PAUSE
    + b"zz\r\n",
    # curl --http2 on an http:// URL: the parser stops at the headers, so the body would be lost.
    "an h2c upgrade with a body": _POST
    + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
    + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(_ALERT), _ALERT),
}
_ERRORS = {"an h2c upgrade with a body": "upgrade_not_supported"}


@pytest.mark.parametrize("name", list(_UNPARSABLE))
def test_an_unparsable_request_gets_a_json_400_and_a_closed_connection(
    responder: Responder, name: str
) -> None:
    raw = _UNPARSABLE[name]
    before = _stored(responder)
    with socket.create_connection(("127.0.0.1", responder.port), timeout=10) as conn:
        for n, part in enumerate(raw.split(_PAUSE)):
            if n:
                time.sleep(0.3)  # the server has handed the first part to the function by now
            conn.sendall(part)
        answer = b""
        while chunk := conn.recv(65536):  # the server closes: the whole answer, then EOF
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"] == _ERRORS.get(name, "malformed_request")
    time.sleep(1.0)  # an accepted alert is folded well within this: had one been taken, it would show
    assert _stored(responder) == before


def test_a_header_that_never_ends_is_a_json_431_not_memory_without_end(responder: Responder) -> None:
    before = _stored(responder)
    answer = b""
    with socket.create_connection(("127.0.0.1", responder.port), timeout=10) as conn:
        conn.sendall(_POST + b"Content-Type: application/json\r\nX-Padding: ")
        try:
            for _ in range(4096):  # 64 MiB if nobody stopped it; the server must stop at 32 KiB
                conn.sendall(b"a" * 16384)
                time.sleep(0.002)  # so that the server reads it in many pieces, as a slow sender sends
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed while we still sent
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"content-type: application/json" in head.lower() and b"connection: close" in head.lower()
    assert json.loads(body)["error"] == "headers_too_large"
    assert _stored(responder) == before


def test_headers_under_the_limit_are_served_as_before(responder: Responder) -> None:
    answer = responder.post("/alerts", _ALERT, **{"x-padding": "a" * (24 * 1024)})
    assert answer.status_code == 202, answer.text


def test_subscription_validation_handshake(responder: Responder) -> None:
    request = (REFDATA / "event_grid" / "eg_SubscriptionValidationEvent.json").read_bytes()
    expected = json.loads((REFDATA / "event_grid" / "eg_SubscriptionValidation_response.json").read_text())
    answer = responder.post("/eventgrid", request, **{"aeg-event-type": "SubscriptionValidation"})
    assert answer.status_code == 200
    assert answer.json() == expected


def test_cloudevents_options_handshake(responder: Responder) -> None:
    answer = responder.client.options(
        "/eventgrid", params={"code": KEY}, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
    )
    assert answer.status_code == 200
    assert answer.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    missing = responder.client.options("/eventgrid", params={"code": KEY})
    assert missing.status_code == 400 and missing.json()["error"] == "missing_header"
    unauthenticated = httpx.options(f"{responder.base}/eventgrid", headers={"WebHook-Request-Origin": "x"})
    assert unauthenticated.status_code == 401


# the one file that is not a delivery is the answer to the validation handshake
DELIVERIES = sorted(
    p.name for p in (REFDATA / "event_grid").iterdir() if not p.name.endswith("_response.json")
)


@pytest.mark.parametrize("name", DELIVERIES)
def test_every_reference_event_delivery_is_accepted(responder: Responder, name: str) -> None:
    payload = (REFDATA / "event_grid" / name).read_bytes()
    content_type = (
        "application/cloudevents+json" if name.startswith(("ce_", "docs_ce_")) else "application/json"
    )
    answer = responder.post("/eventgrid", payload, content_type)
    expected = 200 if "SubscriptionValidation" in name else 202
    assert answer.status_code == expected, answer.text


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (REFDATA / "azure_monitor").iterdir() if not p.name.startswith("ctx_"))
)
def test_every_reference_alert_is_accepted(responder: Responder, name: str) -> None:
    answer = responder.post("/alerts", (REFDATA / "azure_monitor" / name).read_bytes())
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 1


def _encode(value: object) -> bytes:
    return json.dumps(value).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/alerts", "/eventgrid"]),
    payload=st.binary(max_size=300) | json_values.map(_encode),
)
def test_fuzzed_bodies_never_get_a_5xx(responder: Responder, path: str, payload: bytes) -> None:
    answer = responder.post(path, payload)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert set(answer.json()) == {"error", "detail"}
