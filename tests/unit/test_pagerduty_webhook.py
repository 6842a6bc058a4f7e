"""PagerDuty webhook v3 signatures (PagerDuty's and go-pagerduty's test vectors) and event parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from shared.errors import BadInput, Unauthorized
from shared.paging.webhook import parse_event, to_message, verify_signature
from tests.conftest import REFDATA

PD = REFDATA / "pagerduty"


def _vectors() -> list[tuple[str, str, str, bool]]:
    data = json.loads((PD / "webhook_v3_signature_test_vectors.json").read_text())
    return [
        (v["secret"], case["body_file"], case["X-PagerDuty-Signature"], case["expected_valid"])
        for v in data["vectors"]
        for case in v["cases"]
    ]


@pytest.mark.parametrize(("secret", "body_file", "header", "valid"), _vectors())
def test_reference_vectors(secret: str, body_file: str, header: str, valid: bool) -> None:
    body = (PD / body_file).read_bytes()
    if valid:
        verify_signature(body, header, [secret])
    else:
        with pytest.raises(Unauthorized):
            verify_signature(body, header, [secret])


def _sign(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_during_rotation_any_signature_and_either_secret_is_accepted() -> None:
    body = (PD / "webhook_v3_captured_incident_acknowledged.json").read_bytes()
    old, new = "old-secret", "new-secret"
    verify_signature(body, f"{_sign('unknown', body)},{_sign(new, body)}", [old, new])
    verify_signature(body, _sign(old, body), [old, new])
    with pytest.raises(Unauthorized, match="does not match"):
        verify_signature(body, _sign("unknown", body), [old, new])


@pytest.mark.parametrize(
    ("header", "secrets", "detail"),
    [
        (None, ["hunter2-webhook-secret"], "missing X-PagerDuty-Signature"),
        ("", ["hunter2-webhook-secret"], "missing"),
        ("v2=abc", ["hunter2-webhook-secret"], "missing"),
        ("v1=", ["hunter2-webhook-secret"], "does not match"),
        ("v1=00", [], "no PAGERDUTY_WEBHOOK_SECRETS"),
    ],
)
def test_refusals_name_the_problem_and_never_the_secret(
    header: str | None, secrets: list[str], detail: str
) -> None:
    with pytest.raises(Unauthorized) as caught:
        verify_signature(b"{}", header, secrets)
    assert caught.value.status == 401 and detail in caught.value.detail
    assert all(s not in caught.value.detail for s in secrets)


def test_parse_event_and_its_queue_message() -> None:
    body = (PD / "webhook_v3_captured_incident_acknowledged.json").read_bytes()
    event = parse_event(body, "application/json")
    assert (event.id, event.event_type, event.occurred_at) == (
        "01FKZSRAQJLP9S3OPM2VALGUPJ",
        "incident.acknowledged",
        "2025-04-07T03:47:13.546Z",
    )
    message = to_message(event, "delivery-1", body)
    assert (message.queue, message.message_id, message.session_id) == (
        "pagerduty",
        "delivery-1",
        "Q2CKYRLH85UNN4",
    )
    assert message.body == body, "queued as it came: re-encoding could make it bigger"
    annotated_body = (PD / "webhook_v3_captured_incident_annotated.json").read_bytes()
    annotated = parse_event(annotated_body, None)
    assert to_message(annotated, None, annotated_body).session_id == "Q2CKYRLH85UNN4", (
        "ordered with its incident"
    )


def test_a_delivery_too_big_for_the_queue_is_413() -> None:
    event = {
        "id": "e",
        "event_type": "incident.annotated",
        "occurred_at": "2025-04-07T03:47:13.546Z",
        "data": {"content": "😀" * 70_000},
    }
    body = json.dumps({"event": event}, ensure_ascii=False).encode()
    with pytest.raises(BadInput) as caught:
        to_message(parse_event(body, None), "d", body)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("body", "error", "detail"),
    [
        (b"{", "malformed_json", "line 1"),
        (b"[]", "invalid_field", "(root)"),
        (b"{}", "missing_field", "event"),
        (b'{"event": {"id": "x", "occurred_at": "t"}}', "missing_field", "event.event_type"),
        (b'{"event": {"id": 7, "event_type": "x", "occurred_at": "t"}}', "invalid_field", "event.id"),
        (
            b'{"event": {"id": "x", "event_type": "x", "occurred_at": "t"}}',
            "invalid_field",
            "event.occurred_at",
        ),
    ],
)
def test_malformed_events_are_named(body: bytes, error: str, detail: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_event(body, "application/json")
    assert caught.value.error == error and detail in caught.value.detail


def test_every_reference_webhook_parses(refdata: Path) -> None:
    files = sorted((refdata / "pagerduty").glob("webhook_v3_*.json"))
    envelopes: list[Any] = [json.loads(f.read_text()) for f in files]
    full = [f for f, e in zip(files, envelopes, strict=True) if isinstance(e, dict) and "event" in e]
    assert len(full) >= 7
    for f in full:
        assert parse_event(f.read_bytes(), "application/json").event_type
