"""What intake would decide about a payload, without storing or sending anything."""

from __future__ import annotations

from typing import Any

from shared.bootstrap import services
from shared.clock import iso
from shared.domain.signals import Signal
from shared.intake.azure_monitor import parse_alert
from shared.intake.event_grid import Handshake, parse_delivery
from shared.intake.json_body import decode_json
from shared.triage.assessment import assess
from shared.triage.correlation import correlate


def explain(body: bytes) -> dict[str, Any]:
    """The normalized signals, matched rules, severity with reasons, and the effects a new incident gets."""
    app = services()
    payload = decode_json(body, "application/json")
    if _looks_like_alert(payload):
        signals = [parse_alert(payload, app.owner())]
    else:
        delivery = parse_delivery(payload, app.owner())
        if isinstance(delivery, Handshake):
            return {"handshake": {"validationResponse": delivery.validation_code}}
        signals = delivery.signals
    return {"policy": app.policy.source, "signals": [_explain_one(s) for s in signals]}


def _explain_one(signal: Signal) -> dict[str, Any]:
    app = services()
    assessment = assess(signal, app.policy)
    decision: dict[str, Any] = {
        "signal": signal.to_dict(),
        "rules_matched": list(assessment.rules),
        "severity": assessment.severity.label,
        "reasons": list(assessment.reasons),
        "informational": assessment.informational,
        "resolves": assessment.resolves,
        "correlation_key": assessment.correlation_key,
    }
    outcome = None
    if not assessment.informational:
        outcome = correlate(None, signal, assessment, iso(app.clock()), app.policy)
    decision["planned_effects"] = [e.to_dict() for e in outcome.effects] if outcome else []
    return decision


def _looks_like_alert(payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    data = payload.get("data")
    return "schemaId" in payload or "context" in payload or (isinstance(data, dict) and "essentials" in data)
