"""Reading state: GET /api/health, /api/incidents, /api/incidents/{id}, /api/signals."""

from __future__ import annotations

import logging

import azure.functions as func

from responders.http import answers_errors, error_response, json_response, query_int
from shared.bootstrap import services
from shared.domain.incidents import ACKNOWLEDGED, OPEN, RESOLVED
from shared.errors import BadInput

bp = func.Blueprint()
log = logging.getLogger(__name__)

STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 once the policy is valid and the store answers; 503 otherwise."""
    try:
        app = services()
        app.store.ping()
        rules = len(app.policy.rules)
    except Exception:  # a health check reports, it does not fail; details go to the log, not to callers
        log.exception("not ready")
        return error_response(503, "not_ready", "the responder cannot serve yet; see its log")
    return json_response({"status": "ok", "rules": rules})


@bp.route(route="incidents", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def list_incidents(req: func.HttpRequest) -> func.HttpResponse:
    """Newest first; ?status=, ?tenant=, ?limit= (default 100, at most 1000)."""
    status = req.params.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadInput("invalid_parameter", f"status must be one of {', '.join(STATUSES)}")
    limit = query_int(req, "limit", 100, 1, 1000)
    tenant = (req.params.get("tenant") or "").lower() or None  # tenants are stored in lower case
    incidents = services().store.list_incidents(status, tenant, limit)
    return json_response({"incidents": [i.to_dict() for i in incidents], "count": len(incidents)})


@bp.route(route="incidents/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def get_incident(req: func.HttpRequest) -> func.HttpResponse:
    """One incident with its timeline and latest signals."""
    incident_id = req.route_params.get("id", "")
    store = services().store
    found = store.get(incident_id)
    if found is None:
        return error_response(404, "not_found", f"no incident {incident_id!r}")
    body = found.incident.to_dict()
    body["timeline"] = [e.to_dict() for e in store.timeline(incident_id)]
    body["signals"] = [s.to_dict() for s in store.signals(incident_id, limit=20)]
    return json_response(body)


@bp.route(route="signals", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def informational_signals(req: func.HttpRequest) -> func.HttpResponse:
    """Signals recorded without an incident (routine and unknown events), newest first."""
    limit = query_int(req, "limit", 100, 1, 1000)
    signals = services().store.signals(None, limit)
    return json_response({"signals": [s.to_dict() for s in signals], "count": len(signals)})
