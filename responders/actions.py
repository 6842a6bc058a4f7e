"""The actions and the kill switch over HTTP: GET /api/actions[/{id}], POST approve|deny, /api/automation."""

from __future__ import annotations

import azure.functions as func

from responders.http import answers_errors, json_response, only_parameters, query_int
from shared.bootstrap import services
from shared.errors import BadInput
from shared.intake.json_body import decode_json
from shared.settings import MAX_BODY_BYTES

bp = func.Blueprint()
MAX_CONTROL_BODY = 16_384  # {"by": …, "reason": …}: anything larger is not a person's request


@bp.route(route="actions", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def list_actions(req: func.HttpRequest) -> func.HttpResponse:
    """Newest first; ?status= (a state), ?incident=, ?limit= (default 100, at most 1000)."""
    from shared.actions.control import ACTION_STATES

    only_parameters(req, "status", "incident", "limit")
    status = req.params.get("status") or None
    if status is not None and status not in ACTION_STATES:
        raise BadInput("invalid_parameter", f"status must be one of {', '.join(ACTION_STATES)}")
    limit = query_int(req, "limit", 100, 1, 1000)
    records = services().action_store.list_actions(status, req.params.get("incident") or None, limit)
    return json_response({"actions": [r.to_dict() for r in records], "count": len(records)})


@bp.route(route="actions/{action_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def get_action(req: func.HttpRequest) -> func.HttpResponse:
    """One action record."""
    from shared.actions.control import find

    only_parameters(req)
    return json_response(find(services().action_store, req.route_params.get("action_id", "")).to_dict())


@bp.route(route="actions/{action_id}/{decision}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def decide_action(req: func.HttpRequest) -> func.HttpResponse:
    """POST …/approve or …/deny with {"by": "<person>"}: 200 with the record, 404, 409 when not awaiting."""
    from shared.actions.control import decide, person

    only_parameters(req)
    decision = req.route_params.get("decision", "")
    if decision not in ("approve", "deny"):
        raise BadInput("not_found", "POST /api/actions/{id}/approve or /deny", 404)
    body = _control_body(req)
    record = decide(
        services().actions,
        req.route_params.get("action_id", ""),
        decision == "approve",
        person(body.get("by"), "api"),
    )
    return json_response(record.to_dict())


@bp.route(route="automation", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def automation(req: func.HttpRequest) -> func.HttpResponse:
    """GET: the kill switch. POST {"paused": true|false, "tenant": optional, "by": …, "reason": optional}."""
    from shared.actions import control

    only_parameters(req)
    app = services()
    if req.method == "POST":
        body = _control_body(req)
        paused = body.get("paused")
        if not isinstance(paused, bool):
            raise BadInput("invalid_field", "paused must be true or false", 422)
        tenant = body.get("tenant", "")
        reason = body.get("reason", "")
        if (
            not isinstance(tenant, str)
            or not isinstance(reason, str)
            or len(tenant) > 100
            or len(reason) > 500
        ):
            raise BadInput(
                "invalid_field", "tenant and reason must be strings (at most 100 and 500 characters)", 422
            )
        if tenant and not tenant.strip():
            # Blank is not "every tenant": leave tenant out to pause all of them.
            raise BadInput("invalid_field", "tenant is blank: leave it out to pause every tenant", 422)
        line = control.set_paused(
            app.action_store, paused, tenant, control.person(body.get("by"), "api"), reason, app.clock
        )
        state = control.state(app.action_store, app.settings.automation == "on")
        return json_response({"result": line, **state.to_dict()})
    return json_response(control.state(app.action_store, app.settings.automation == "on").to_dict())


def _control_body(req: func.HttpRequest) -> dict[str, object]:
    payload = decode_json(
        req.get_body(),
        req.headers.get("content-type"),
        min(MAX_BODY_BYTES, MAX_CONTROL_BODY),
        req.headers.get("content-encoding"),
    )
    if not isinstance(payload, dict):
        raise BadInput("invalid_body", "expected a JSON object", 422)
    return payload
