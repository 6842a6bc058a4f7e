"""What a page says: PagerDuty Events API v2 bodies for an incident, built the same for real and dry-run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.domain.incidents import Incident
from shared.domain.severity import Severity
from shared.ports import PageEvent

PD_SEVERITY = {
    Severity.SEV1: "critical",
    Severity.SEV2: "error",
    Severity.SEV3: "warning",
    Severity.SEV4: "info",
}
MAX_SUMMARY = 1024  # Events API v2 limits
MAX_DEDUP_KEY = 255


def dedup_key(incident: Incident) -> str:
    """One PagerDuty alert per incident: its id (short, unique per opening of a key)."""
    return incident.id[:MAX_DEDUP_KEY]


def trigger_payload(incident: Incident, runbook: str = "") -> dict[str, Any]:
    """The `payload` of a trigger event."""
    details: dict[str, Any] = {
        "incident": incident.id,
        "reasons": list(incident.reasons),
        "signal_count": incident.signal_count,
        "environment": incident.environment,
        "opened_at": incident.opened_at,
    }
    if incident.all_tenants:
        details["all_tenants"] = True
    if incident.planned_actions:
        details["planned_actions"] = list(incident.planned_actions)
    if runbook:
        details["runbook"] = runbook
    return {
        "summary": _summary(incident),
        "source": incident.resource_id or incident.component or "azure",
        "severity": PD_SEVERITY[incident.severity],
        "component": incident.component,
        "group": incident.tenant,
        "class": incident.kind,
        "custom_details": details,
    }


def _summary(incident: Incident) -> str:
    prefix = f"[{incident.severity.label.upper()}]" + (" [ALL TENANTS]" if incident.all_tenants else "")
    return f"{prefix} {incident.title}"[:MAX_SUMMARY]


def trigger_event(incident: Incident, links: Sequence[Mapping[str, str]], runbook: str = "") -> PageEvent:
    """Open or update the incident's alert (the same dedup key re-triggers it at a new severity)."""
    return PageEvent("trigger", dedup_key(incident), trigger_payload(incident, runbook), tuple(links))


def resolve_event(incident: Incident) -> PageEvent:
    """Resolve the incident's alert."""
    return PageEvent("resolve", dedup_key(incident))
