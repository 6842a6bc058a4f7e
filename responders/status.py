"""The operator's view over HTTP: GET /api/status."""

from __future__ import annotations

import azure.functions as func

from responders.http import answers_errors, json_response, only_parameters
from shared.bootstrap import services

bp = func.Blueprint()


@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def status(req: func.HttpRequest) -> func.HttpResponse:
    """Open incidents per component and tenant, queues, dead letters, outboxes, automation."""
    from shared.status.read import read_status  # only this route needs the status model: not at cold start

    only_parameters(req)
    app = services()
    return json_response(
        read_status(
            app.status_queries, app.queue_inspector, app.policy, app.clock(), app.automation_view()
        ).to_dict()
    )
