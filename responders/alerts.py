"""Azure Monitor action-group webhook (common alert schema): POST /api/alerts."""

from __future__ import annotations

import azure.functions as func

from responders.http import answers_errors, json_response
from shared.bootstrap import services
from shared.intake.azure_monitor import parse_alert
from shared.intake.json_body import decode_json
from shared.settings import MAX_BODY_BYTES

bp = func.Blueprint()


@bp.route(route="alerts", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def alerts(req: func.HttpRequest) -> func.HttpResponse:
    """Make the alert durable on the intake queue and answer 202; its incident follows within a batch."""
    payload = decode_json(
        req.get_body(), req.headers.get("content-type"), MAX_BODY_BYTES, req.headers.get("content-encoding")
    )
    app = services()
    signal = parse_alert(payload, app.owner())
    return json_response(app.admission.admit([signal]).to_dict(), status=202)
