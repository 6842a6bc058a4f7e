"""PagerDuty webhooks v3 at the door: the signature, then a well-formed event, then the queue.

The HTTP answer must come within 5 s and PagerDuty delivers at least once, so nothing is applied
here: the event goes on the `pagerduty` queue with the delivery's X-Webhook-Id as message id
(a redelivery is dropped there), and the worker applies it once (shared.paging.webhook_updates).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.clock import parse_iso
from shared.domain.effects import PAGERDUTY_QUEUE
from shared.errors import BadInput, Unauthorized
from shared.intake.json_body import decode_json, optional, require
from shared.ports import MAX_MESSAGE_BYTES, QueueMessage

MAX_ID_LENGTH = 128  # Service Bus message and session ids: event.id and the incident's id become them


@dataclass(frozen=True)
class WebhookEvent:
    """The parts of a v3 delivery the responder needs; `raw` is the event object itself."""

    id: str
    event_type: str
    occurred_at: str
    raw: Mapping[str, Any]

    @property
    def session(self) -> str:
        """Events of one PagerDuty incident are applied in order (`parse_event` checked the ids)."""
        data = self.raw.get("data") or {}
        incident = data["incident"] if isinstance(data.get("incident"), dict) else data
        return str(incident.get("id") or self.id)


def verify_signature(body: bytes, header: str | None, secrets: Sequence[str]) -> None:
    """Unauthorized unless one of the `v1=` signatures is HMAC-SHA256(secret, body) for one of the secrets."""
    if not secrets:
        raise Unauthorized("PagerDuty webhooks are refused: no PAGERDUTY_WEBHOOK_SECRETS configured")
    offered = [s.strip()[3:] for s in (header or "").split(",") if s.strip().startswith("v1=")]
    if not offered:
        raise Unauthorized("missing X-PagerDuty-Signature (v1=…)")
    expected = [hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets]
    # Every pair is compared, in constant time, so timing says nothing about which one matched.
    matched = [hmac.compare_digest(o.encode(), e.encode()) for o in offered for e in expected]
    if not any(matched):
        raise Unauthorized("X-PagerDuty-Signature does not match")


def parse_event(body: bytes, content_type: str | None, content_encoding: str | None = None) -> WebhookEvent:
    """The delivery's event; BadInput naming what is missing."""
    payload = decode_json(body, content_type, content_encoding=content_encoding)
    event = require(payload, "event", dict)
    event_id = _id(require(event, "id", str, at="event", nonempty=True), "event.id")
    # The ids the queue message is keyed by must fit it; a delivery that cannot be queued can never
    # succeed, and PagerDuty would retry a 5xx for good.
    data = optional(event, "data", dict, at="event") or {}
    if isinstance(data.get("incident"), dict):
        _id(optional(data, "incident.id", str, at="event.data"), "event.data.incident.id")
    else:
        _id(optional(data, "id", str, at="event.data"), "event.data.id")
    event_type = require(event, "event_type", str, at="event", nonempty=True)
    occurred_at = require(event, "occurred_at", str, at="event")
    if parse_iso(occurred_at) is None:
        detail = f"event.occurred_at must be an ISO 8601 date-time, got {occurred_at[:50]!r}"
        raise BadInput("invalid_field", detail, 422)
    return WebhookEvent(id=event_id, event_type=event_type, occurred_at=occurred_at, raw=event)


def _id(value: str | None, where: str) -> str:
    if value is not None and len(value) > MAX_ID_LENGTH:
        raise BadInput("invalid_field", f"{where} must be at most {MAX_ID_LENGTH} characters", 422)
    return value or ""


def to_message(event: WebhookEvent, delivery_id: str | None, body: bytes) -> QueueMessage:
    """The queue message for the worker: the verified body as it came (re-encoding could grow it)."""
    if delivery_id is not None and not 0 < len(delivery_id) <= MAX_ID_LENGTH:
        raise BadInput("invalid_header", f"X-Webhook-Id must be 1 to {MAX_ID_LENGTH} characters")
    if len(body) > MAX_MESSAGE_BYTES:
        detail = f"a delivery over {MAX_MESSAGE_BYTES} bytes does not fit the queue"
        raise BadInput("body_too_large", detail, 413)
    return QueueMessage(
        queue=PAGERDUTY_QUEUE,
        body=body,
        message_id=delivery_id or event.id,
        session_id=event.session,
        application_properties={"event_type": event.event_type},
    )
