"""Event Grid: the webhook (POST/OPTIONS /api/eventgrid) and the Event Grid trigger share one path."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from responders.http import answers_errors, error_response, json_response
from shared.bootstrap import services
from shared.clock import iso
from shared.errors import BadInput
from shared.intake.event_grid import Handshake, parse_delivery, signal_from_event
from shared.intake.json_body import decode_json
from shared.settings import MAX_BODY_BYTES

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.route(route="eventgrid", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def eventgrid(req: func.HttpRequest) -> func.HttpResponse:
    """Validation handshakes, then events in either schema, single or batched."""
    if req.method == "OPTIONS":
        return cloudevents_handshake(req)
    payload = decode_json(
        req.get_body(), req.headers.get("content-type"), MAX_BODY_BYTES, req.headers.get("content-encoding")
    )
    app = services()
    delivery = parse_delivery(payload, app.owner())
    if isinstance(delivery, Handshake):
        return json_response({"validationResponse": delivery.validation_code})
    return json_response(app.admission.admit(delivery.signals).to_dict(), status=202)


def cloudevents_handshake(req: func.HttpRequest) -> func.HttpResponse:
    """CloudEvents abuse protection: echo the origin that asks to deliver to us."""
    origin = req.headers.get("webhook-request-origin")
    if not origin:
        return error_response(400, "missing_header", "OPTIONS needs a WebHook-Request-Origin header")
    return func.HttpResponse(
        status_code=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"}
    )


@bp.event_grid_trigger(arg_name="event")
def eventgrid_trigger(event: func.EventGridEvent | func.CloudEvent) -> None:
    """In Azure, system topics deliver here; same path as the webhook (errors make Event Grid retry)."""
    app = services()
    try:
        signal = signal_from_event(envelope(event, app.clock()), app.owner())
    except BadInput as e:
        # Retrying a malformed event cannot help; Event Grid would retry it for a day.
        log.error("Event Grid event %s refused: %s: %s", event.id, e.error, e.detail)
        return
    app.admission.admit([signal])


def envelope(event: func.EventGridEvent | func.CloudEvent, now: datetime) -> dict[str, Any]:
    """The host's event object back into the wire shape intake reads (either schema)."""
    if isinstance(event, func.CloudEvent):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": _utc(event.time, now),
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": _utc(event.event_time, now),
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def _utc(moment: datetime | None, now: datetime) -> str:
    """The host parses times; one without an offset is UTC (as Event Grid sends), a missing one is now."""
    if moment is None:
        return iso(now)
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
