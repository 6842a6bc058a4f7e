"""Links a responder follows from a page or a card: the resource in the portal, the runbook section."""

from __future__ import annotations

from shared.domain.incidents import Incident
from shared.triage.policy import Policy

PORTAL = "https://portal.azure.com/#resource"


def incident_links(incident: Incident, policy: Policy, runbook_base: str) -> list[dict[str, str]]:
    """[{"href", "text"}] as PagerDuty and Slack take them; the runbook only when its base URL is set."""
    links = []
    if incident.resource_id.startswith("/subscriptions/"):
        name = incident.resource_id.rsplit("/", 1)[-1]
        links.append({"href": PORTAL + incident.resource_id, "text": f"{name} in the Azure portal"})
    component = policy.component(incident.component)
    if component and runbook_base:
        links.append({"href": runbook_base.rstrip("/") + "/" + component.runbook, "text": "DR runbook"})
    if incident.pagerduty_url:
        links.append({"href": incident.pagerduty_url, "text": "PagerDuty incident"})
    return links
