"""PagerDuty webhooks v3: POST /api/pagerduty (signed), applied from the `pagerduty` queue."""

from __future__ import annotations

import logging

import azure.functions as func

from responders.http import answers_errors, error_response, json_response
from shared.bootstrap import services
from shared.domain.effects import PAGERDUTY_QUEUE
from shared.errors import BadInput
from shared.paging.webhook import parse_event, to_message, verify_signature
from shared.settings import MAX_BODY_BYTES

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.route(route="pagerduty", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def pagerduty_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Verify the signature, queue the event, answer 202 at once (PagerDuty waits 5 s at most)."""
    app = services()
    body = req.get_body()
    if len(body) > MAX_BODY_BYTES:
        return json_response({"error": "body_too_large", "detail": f"limit {MAX_BODY_BYTES} bytes"}, 413)
    verify_signature(body, req.headers.get("x-pagerduty-signature"), app.settings.pagerduty_webhook_secrets)
    try:
        event = parse_event(body, req.headers.get("content-type"), req.headers.get("content-encoding"))
        message = to_message(event, req.headers.get("x-webhook-id"), body)
    except BadInput as e:
        # PagerDuty drops a 4xx without a retry and disables the subscription after three in a row:
        # a signed delivery refused here is worth a line in the log.
        log.warning(
            "PagerDuty delivery %s refused: %s: %s", req.headers.get("x-webhook-id"), e.error, e.detail
        )
        raise
    try:
        app.queue.send([message])
    except Exception:
        log.exception("PagerDuty event %s not queued", event.id)
        return error_response(503, "unavailable", "the event could not be queued; PagerDuty will retry")
    return json_response({"accepted": True, "event": event.event_type}, status=202)


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name=PAGERDUTY_QUEUE, connection="ServiceBusConnection", is_sessions_enabled=True
)
def apply_pagerduty_event(msg: func.ServiceBusMessage) -> None:
    """Apply one PagerDuty event to our incident."""
    services().pagerduty_events.handle(msg.get_body())
