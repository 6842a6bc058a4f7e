"""The incident's Slack card (Block Kit) and the lines its thread gets, built from the incident alone."""

from __future__ import annotations

from typing import Any

from shared.domain.incidents import ACKNOWLEDGED, PAGE_RESOLVED, RESOLVED, Incident
from shared.domain.severity import Severity
from shared.paging.page import PD_SEVERITY

ICON = {
    Severity.SEV1: ":red_circle:",
    Severity.SEV2: ":large_orange_circle:",
    Severity.SEV3: ":large_yellow_circle:",
    Severity.SEV4: ":white_circle:",
}
MAX_TEXT = 2900  # Slack: 3000 characters per section text


def card(incident: Incident, links: list[dict[str, str]]) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for the incident as it is now."""
    label = incident.severity.label.upper()
    scope = " · ALL TENANTS" if incident.all_tenants else ""
    title = f"{ICON[incident.severity]} {label}{scope} · {incident.title}"
    text = f"[{label}] {incident.title} ({_status(incident)})"
    owner = (
        " · ".join(p for p in (incident.tenant, incident.component, incident.environment) if p) or "unknown"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {
            "type": "section",
            "fields": [
                _field("Status", _status(incident)),
                _field("Tenant · component · env", owner),
                _field("Signals", str(incident.signal_count)),
                _field("PagerDuty", _pagerduty(incident), markup=True),
            ],
        },
        _section("Why " + incident.severity.label, "\n".join(f"• {escape(r)}" for r in incident.reasons)),
    ]
    if incident.action_states:
        lines = "\n".join(f"• {escape(line)}" for line in incident.action_states.values())
        blocks.append(_section("First response", lines))
    elif incident.planned_actions:
        blocks.append(
            _section("First response", "\n".join(f"• {escape(a)}" for a in incident.planned_actions))
        )
    if incident.failures:
        blocks.append(
            _section(":warning: Failed", "\n".join(f"• {escape(f)}" for f in incident.failures[-5:]))
        )
    if incident.is_open:
        blocks.append(incident_buttons(incident))
    context = [f"`{incident.id}`", f"opened {incident.opened_at}"]
    context += [f"<{link['href']}|{escape(link['text'])}>" for link in links]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return text, blocks


def incident_buttons(incident: Incident) -> dict[str, Any]:
    """Acknowledge (until someone has) and Resolve, valued with the incident id (see the chatops contract)."""
    buttons = []
    if incident.status != ACKNOWLEDGED:
        buttons.append(button("dr_ack", "Acknowledge", incident.id))
    buttons.append(button("dr_resolve", "Resolve", incident.id, style="primary"))
    return {"type": "actions", "block_id": f"incident:{incident.id}"[:255], "elements": buttons}


def button(action_id: str, label: str, value: str, style: str = "") -> dict[str, Any]:
    """A Block Kit button (value ≤ 2000 characters)."""
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "value": value[:2000],
    }
    if style:
        element["style"] = style
    return element


def _status(incident: Incident) -> str:
    if incident.status == RESOLVED:
        by = f" by {incident.resolved_by}" if incident.resolved_by else ""
        return f"Resolved{by} at {incident.resolved_at}"
    if incident.status == ACKNOWLEDGED:
        return f"Acknowledged by {incident.acknowledged_by or 'someone'} at {incident.acknowledged_at}"
    return "Open"


def _pagerduty(incident: Incident) -> str:
    state = incident.pagerduty_state
    if state.may_be_out and state.severity is not None:
        severity = PD_SEVERITY[state.severity]
        shown = f"acknowledged ({severity})" if incident.status == ACKNOWLEDGED else f"triggered ({severity})"
    elif state == PAGE_RESOLVED:
        shown = "resolved"
    elif incident.page_held:
        shown = "held: paged only if the automatic action fails"
    else:
        shown = "not paged"
    return f"<{escape(incident.pagerduty_url)}|{shown}>" if incident.pagerduty_url else shown


def _field(name: str, value: str, markup: bool = False) -> dict[str, str]:
    """A field; `markup` for values we built as mrkdwn ourselves (links), else escaped."""
    return {"type": "mrkdwn", "text": f"*{name}*\n{value if markup else escape(value)}"[:2000]}


def _section(name: str, body: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": f"*{name}*\n{body}"[:MAX_TEXT]}}


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup; text from alerts must not."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
