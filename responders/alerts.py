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
    """Store the alert and its incident, queue the effects, answer 202."""
    payload = decode_json(
        req.get_body(), req.headers.get("content-type"), MAX_BODY_BYTES, req.headers.get("content-encoding")
    )
    app = services()
    signal = parse_alert(payload, app.owner())
    report = app.intake.accept([signal])
    return json_response({"accepted": 1, **report.to_dict()}, status=202)
