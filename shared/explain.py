"""What intake would decide about a payload, without storing or sending anything.

Explain says which endpoint a payload belongs to, and says so when it was meant for the other one,
when an Event Grid event carries an Azure Monitor alert in its data (or an alert carries events),
and when it fails to parse as what it looks like but parses as the other kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.bootstrap import services
from shared.clock import iso
from shared.domain.incidents import Incident
from shared.domain.signals import Signal
from shared.errors import BadInput
from shared.intake.azure_monitor import Owner, parse_alert
from shared.intake.event_grid import Handshake, parse_delivery
from shared.intake.json_body import decode_json
from shared.triage.assessment import assess
from shared.triage.correlation import correlate

ALERTS, EVENTGRID = "alerts", "eventgrid"
ENDPOINTS = {ALERTS: "POST /api/alerts", EVENTGRID: "POST /api/eventgrid"}
KINDS = {ALERTS: "an Azure Monitor alert", EVENTGRID: "an Event Grid delivery"}
STORE_FILE = "incidents.sqlite3"  # as bootstrap names it: read when present, never created here


def explain(body: bytes, endpoint: str | None = None) -> dict[str, Any]:
    """The endpoint it belongs to, notes, the normalized signals, matched rules, severity with
    reasons, the incident it would open or update, and the effects planned."""
    app = services()
    payload = decode_json(body, "application/json")
    belongs, parsed, notes = _parse(payload, app.owner())
    notes += _wrapping_notes(payload, belongs)
    if endpoint is not None and endpoint != belongs:
        notes.insert(0, _misdirected(payload, belongs, endpoint, app.owner()))
    found: dict[str, Any] = {"endpoint": ENDPOINTS[belongs], "payload": KINDS[belongs], "notes": notes}
    if isinstance(parsed, Handshake):
        return {**found, "handshake": {"validationResponse": parsed.validation_code}}
    return {**found, "policy": app.policy.source, "signals": [_explain_one(s) for s in parsed]}


def _parse(payload: Any, owner: Owner) -> tuple[str, Handshake | list[Signal], list[str]]:
    """Parse as what it looks like; if that fails and the other kind succeeds, say so and use it."""
    looks = ALERTS if _looks_like_alert(payload) else EVENTGRID
    other = EVENTGRID if looks == ALERTS else ALERTS
    try:
        return looks, _parse_as(looks, payload, owner), []
    except BadInput as first:
        try:
            parsed = _parse_as(other, payload, owner)
        except BadInput:
            hint = _wrapping_notes(payload, looks)
            if hint:
                raise BadInput(first.error, f"{first.detail}; {hint[0]}", first.status) from None
            raise first from None
        note = (
            f"it looks like {KINDS[looks]} but does not parse as one ({first.error}: {first.detail}); "
            f"it parses as {KINDS[other]}"
        )
        return other, parsed, [note]


def _parse_as(kind: str, payload: Any, owner: Owner) -> Handshake | list[Signal]:
    if kind == ALERTS:
        return [parse_alert(payload, owner)]
    delivery = parse_delivery(payload, owner)
    return delivery if isinstance(delivery, Handshake) else delivery.signals


def _misdirected(payload: Any, belongs: str, endpoint: str, owner: Owner) -> str:
    """What the endpoint it was meant for would make of it: its real answer, never a guess."""
    try:
        _parse_as(endpoint, payload, owner)
    except BadInput as e:
        answer = f"which answers {e.status} {e.error}"
    else:
        answer = f"which would read it as {KINDS[endpoint]}, not as what it is"
    return f"this is {KINDS[belongs]}: send it to {ENDPOINTS[belongs]}, not {ENDPOINTS[endpoint]} ({answer})"


def _wrapping_notes(payload: Any, belongs: str) -> list[str]:
    """An event whose data is an alert, or an alert whose data holds events."""
    if belongs == EVENTGRID:
        items = payload if isinstance(payload, list) else [payload]
        wrapping = [
            str(item.get("id", i))
            for i, item in enumerate(items)
            if isinstance(item, Mapping) and _is_alert(item.get("data"))
        ]
        if wrapping:
            return [
                f"the data of event {', '.join(wrapping[:3])} is an Azure Monitor alert: "
                f"{ENDPOINTS[EVENTGRID]} records the event, it does not triage the alert inside; "
                f"send the alert to {ENDPOINTS[ALERTS]}"
            ]
        return []
    data = payload.get("data") if isinstance(payload, Mapping) else None
    events = data if isinstance(data, list) else [data]
    if any(_looks_like_event(e) for e in events):
        return [
            f"its data holds Event Grid events: {ENDPOINTS[ALERTS]} reads alerts only; "
            f"deliver the events to {ENDPOINTS[EVENTGRID]}"
        ]
    return []


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
        "pages_at": sorted(s.label for s in app.policy.paging),
    }
    if assessment.informational:
        decision["incident"] = {"action": "none"}
        decision["planned_effects"] = []
        return decision
    if assessment.resolves and not _store_read():
        # What a resolve does depends on the incident it finds: with no store to ask, say only that.
        decision["incident"] = {"action": "resolve", "known_open": False}
        decision["planned_effects"] = []
        return decision
    current = _open_incident(assessment.correlation_key)
    outcome = correlate(current, signal, assessment, iso(app.clock()), app.policy)
    if outcome is None:
        decision["incident"] = {"action": "none", "why": "a resolve with nothing open is recorded only"}
    elif current is None:
        decision["incident"] = {"action": "open", "known_open": _store_read()}
    else:
        action = "resolve" if not outcome.incident.is_open else "update"
        decision["incident"] = {
            "action": action,
            "id": current.id,
            "status": current.status,
            "opened_at": current.opened_at,
            "signal_count": current.signal_count,
        }
    # A new incident's id would be made from the time it opens: not shown, so none is invented.
    effects = outcome.effects if outcome else []
    decision["planned_effects"] = [
        {k: v for k, v in e.to_dict().items() if k != "incident_id"} for e in effects
    ]
    return decision


def _store_read() -> bool:
    """Whether an incident store was there to ask (else "opens" means "unless one is open")."""
    return (services().settings.data_dir / STORE_FILE).exists()


def _open_incident(correlation_key: str) -> Incident | None:
    """The open incident for the key, when a store exists; explain never creates one."""
    if not _store_read():
        return None
    found = services().store.open_incident(correlation_key)
    return found.incident if found else None


def _looks_like_alert(payload: Any) -> bool:
    if not isinstance(payload, Mapping):
        return False
    data = payload.get("data")
    return (
        "schemaId" in payload or "context" in payload or (isinstance(data, Mapping) and "essentials" in data)
    )


def _is_alert(data: Any) -> bool:
    """A whole alert, or its `data` part (essentials and alertContext) forwarded alone."""
    return _looks_like_alert(data) or (isinstance(data, Mapping) and "essentials" in data)


def _looks_like_event(item: Any) -> bool:
    return isinstance(item, Mapping) and (
        "eventType" in item or "specversion" in item or "event_type" in item
    )
