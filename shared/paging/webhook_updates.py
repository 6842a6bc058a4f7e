"""What a PagerDuty webhook event does to our incident, pure: acknowledge, resolve, annotate, …"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.clock import seconds_between
from shared.domain.effects import Change, Effect, EffectKind
from shared.domain.incidents import ACKNOWLEDGED, OPEN, PAGE_RESOLVED, RESOLVED, Incident, TimelineEntry
from shared.intake.json_body import json_type
from shared.paging.by_hand import marked_acknowledged


def apply_event(incident: Incident, event: Mapping[str, Any], now: str) -> Change:
    """The incident after a v3 event, a timeline line, and a card update with a line for its thread.

    An event with a malformed field changes nothing: the line says what was not applied and why.
    """
    kind = str(event.get("event_type", ""))
    data = _data(event)
    at = str(event.get("occurred_at") or now)
    who = _name(event.get("agent")) or "PagerDuty"
    problem = malformed(event)
    updated = incident if problem else _linked(incident, data)
    line: str
    if problem:
        line = f"PagerDuty {kind or 'event'} (event {event.get('id', '?')}) not applied: {problem}"
    elif kind == "incident.acknowledged" and incident.status == OPEN:
        updated = marked_acknowledged(updated, who, at)
        line = f"Acknowledged by {who} in PagerDuty"
    elif kind == "incident.unacknowledged" and incident.status == ACKNOWLEDGED:
        updated = updated.evolve(status=OPEN, acknowledged_by=None, acknowledged_at=None)
        line = "Unacknowledged in PagerDuty (the acknowledgement timed out)"
    elif kind == "incident.resolved" and incident.status != RESOLVED:
        updated = updated.evolve(
            status=RESOLVED,
            resolved_at=at,
            resolved_by=f"{who} (PagerDuty)",
            time_to_resolve_seconds=seconds_between(incident.opened_at, at),
            pagerduty_state=PAGE_RESOLVED,  # PagerDuty knows: nothing to send back
        )
        line = f"Resolved by {who} in PagerDuty"
    else:
        line = _describe(kind, data, who)
    if updated.status != incident.status or (kind in _THREADED and not problem):
        updated = updated.evolve(updated_at=now)
    effect = Effect(
        EffectKind.NOTIFY, incident.id, f"pd:{event.get('id', '')}", updated.severity.label, now, detail=line
    )
    return Change(updated, [TimelineEntry(now, "pagerduty", line)], [effect])


_THREADED = {"incident.reassigned", "incident.escalated", "incident.annotated", "incident.priority_updated"}
# The fields `apply_event` reads, with the JSON type each must have when present (null = absent).
_SHAPES: dict[str, tuple[type, str]] = {
    "agent": (dict, "an object"),
    "data.assignees": (list, "an array"),
    "data.priority": (dict, "an object"),
    "data.content": (str, "a string"),
    "data.incident": (dict, "an object"),
    "data.html_url": (str, "a string"),
    "data.number": (int, "an integer"),
}


def malformed(event: Mapping[str, Any]) -> str:
    """What is wrong with a field the update reads, naming its path; "" when nothing is."""
    data = _data(event)
    for path, (kind, name) in _SHAPES.items():
        value = data.get(path[5:]) if path.startswith("data.") else event.get(path)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return f"event.{path} must be {name}, got {json_type(value)}"
    for index, assignee in enumerate(data.get("assignees") or []):
        if not isinstance(assignee, dict):
            return f"event.data.assignees[{index}] must be an object, got {json_type(assignee)}"
    return ""


def _describe(kind: str, data: Mapping[str, Any], who: str) -> str:
    if kind == "incident.triggered":
        number = data.get("number")
        return f"PagerDuty incident #{number} opened" if number else "PagerDuty incident opened"
    if kind == "incident.reassigned":
        names = ", ".join(n for n in (_name(a) for a in data.get("assignees") or []) if n)
        return f"Reassigned to {names or 'nobody'} by {who}"
    if kind == "incident.escalated":
        names = ", ".join(n for n in (_name(a) for a in data.get("assignees") or []) if n)
        return f"Escalated to {names or 'the next level'}"
    if kind == "incident.annotated":
        return f"Note from {who}: {str(data.get('content', ''))[:500]}"
    if kind == "incident.priority_updated":
        priority = data.get("priority")
        return f"Priority set to {_name(priority) or 'none'} by {who}"
    return f"PagerDuty {kind or 'event'} from {who}"


def _linked(incident: Incident, data: Mapping[str, Any]) -> Incident:
    """Remember PagerDuty's incident id and link, which the card and later events use."""
    reference = data.get("incident") if data.get("type") == "incident_note" else data
    if not isinstance(reference, dict) or incident.pagerduty_incident:
        return incident
    return incident.evolve(
        pagerduty_incident=str(reference.get("id") or ""), pagerduty_url=str(reference.get("html_url") or "")
    )


def pagerduty_incident_of(event: Mapping[str, Any]) -> tuple[str, str]:
    """(PagerDuty's incident id, its incident_key = our dedup key), "" where the event does not say."""
    data = _data(event)
    reference = data.get("incident") if isinstance(data.get("incident"), dict) else data
    if not isinstance(reference, dict) or reference.get("type") not in ("incident", "incident_reference"):
        return "", ""
    return str(reference.get("id") or ""), str(reference.get("incident_key") or "")


def _data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def _name(reference: Any) -> str:
    return str(reference.get("summary") or reference.get("name") or "") if isinstance(reference, dict) else ""
