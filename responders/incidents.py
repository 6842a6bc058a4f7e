"""Reading state: GET /api/health, /api/incidents, /api/incidents/{id}, /api/signals."""

from __future__ import annotations

import base64
import binascii
import json
import logging

import azure.functions as func

from responders.http import answers_errors, error_response, json_response, only_parameters, query_int
from shared.bootstrap import services
from shared.domain.incidents import ACKNOWLEDGED, OPEN, RESOLVED
from shared.domain.severity import Severity
from shared.errors import BadInput
from shared.ports import IncidentCursor

bp = func.Blueprint()
log = logging.getLogger(__name__)

STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)
SEVERITIES = tuple(s.label for s in Severity)


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
    """Newest first; ?status=, ?tenant=, ?severity=, ?limit= (default 100, at most 1000), ?cursor=."""
    only_parameters(req, "status", "tenant", "severity", "limit", "cursor")
    status = req.params.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadInput("invalid_parameter", f"status must be one of {', '.join(STATUSES)}")
    severity = (req.params.get("severity") or "").lower() or None
    if severity is not None and severity not in SEVERITIES:
        raise BadInput("invalid_parameter", f"severity must be one of {', '.join(SEVERITIES)}")
    limit = query_int(req, "limit", 100, 1, 1000)
    tenant = (req.params.get("tenant") or "").lower() or None  # tenants are stored in lower case
    after = decode_cursor(req.params.get("cursor") or "")
    # One more than asked says whether another page follows, without counting them all.
    found = services().incident_pages.incidents_page(status, tenant, severity, after, limit + 1)
    page = found[:limit]
    body: dict[str, object] = {"incidents": [i.to_dict() for i in page], "count": len(page)}
    if len(found) > limit:
        body["next_cursor"] = encode_cursor(IncidentCursor(page[-1].opened_at, page[-1].id))
    return json_response(body)


def encode_cursor(cursor: IncidentCursor) -> str:
    """Opaque to callers: they pass back what they were given."""
    raw = json.dumps([cursor.opened_at, cursor.incident_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> IncidentCursor | None:
    """None for no cursor; BadInput for one this API did not make."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        opened_at, incident_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise BadInput(
            "invalid_parameter", "cursor is not one this API returned: pass next_cursor as given"
        ) from None
    if not (
        isinstance(opened_at, str) and isinstance(incident_id, str) and _encodable(opened_at, incident_id)
    ):
        raise BadInput("invalid_parameter", "cursor is not one this API returned: pass next_cursor as given")
    return IncidentCursor(opened_at, incident_id)


def _encodable(*texts: str) -> bool:
    """Text the store can hold: JSON may carry lone surrogates, which UTF-8 cannot."""
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@bp.route(route="incidents/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@answers_errors
def get_incident(req: func.HttpRequest) -> func.HttpResponse:
    """One incident with its timeline and latest signals."""
    only_parameters(req)
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
    only_parameters(req, "limit")
    limit = query_int(req, "limit", 100, 1, 1000)
    signals = services().store.signals(None, limit)
    return json_response({"signals": [s.to_dict() for s in signals], "count": len(signals)})
