"""Event Grid: the webhook (POST/OPTIONS /api/eventgrid) and the Event Grid trigger share one path."""

from __future__ import annotations

import azure.functions as func

from responders.http import answers_errors, error_response, json_response
from shared.bootstrap import services
from shared.clock import iso
from shared.intake.event_grid import Handshake, parse_delivery, signal_from_event
from shared.intake.json_body import decode_json
from shared.settings import MAX_BODY_BYTES

bp = func.Blueprint()


@bp.route(route="eventgrid", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def eventgrid(req: func.HttpRequest) -> func.HttpResponse:
    """Validation handshakes, then events in either schema, single or batched."""
    if req.method == "OPTIONS":
        return cloudevents_handshake(req)
    payload = decode_json(req.get_body(), req.headers.get("content-type"), MAX_BODY_BYTES)
    app = services()
    delivery = parse_delivery(payload, app.owner())
    if isinstance(delivery, Handshake):
        return json_response({"validationResponse": delivery.validation_code})
    report = app.intake.accept(delivery.signals)
    return json_response({"accepted": len(delivery.signals), **report.to_dict()}, status=202)


def cloudevents_handshake(req: func.HttpRequest) -> func.HttpResponse:
    """CloudEvents abuse protection: echo the origin that asks to deliver to us."""
    origin = req.headers.get("webhook-request-origin")
    if not origin:
        return error_response(400, "missing_header", "OPTIONS needs a WebHook-Request-Origin header")
    return func.HttpResponse(
        status_code=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"}
    )


@bp.event_grid_trigger(arg_name="event")
def eventgrid_trigger(event: func.EventGridEvent) -> None:
    """In Azure, system topics deliver here; same path as the webhook (errors make Event Grid retry)."""
    app = services()
    envelope = {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        # The host parses eventTime; a missing one must not turn every retry into a 422.
        "eventTime": iso(event.event_time or app.clock()),
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }
    app.intake.accept([signal_from_event(envelope, app.owner())])
