"""`dr explain` for a person: a short summary of what intake would decide, before the full JSON."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

WIDTH = 100


def render_explanation(explained: Mapping[str, Any]) -> str:
    """A short summary for a person; every line says something (nothing invented, nothing empty)."""
    kind = explained["payload"]
    lines = [f"{kind[0].upper()}{kind[1:]}: it belongs to {explained['endpoint']}"]
    for note in explained["notes"]:
        lines += textwrap.wrap(f"note: {note}", WIDTH, subsequent_indent="      ")
    if "handshake" in explained:
        code = explained["handshake"]["validationResponse"]
        lines.append(f'a subscription validation handshake: answered 200 {{"validationResponse": "{code}"}}')
        return "\n".join(lines) + "\n"
    for decision in explained["signals"]:
        lines += ["", *_summary(decision)]
    lines += ["", "The full structure: dr explain FILE --json"]
    return "\n".join(lines) + "\n"


def _summary(decision: Mapping[str, Any]) -> list[str]:
    signal = decision["signal"]
    lines = [signal["title"]]
    owner = [
        f"{label} {signal[key]}"
        for key, label in (("tenant", "tenant"), ("component", "component"), ("environment", "environment"))
        if signal[key]
    ]
    if owner:
        lines.append(f"  owner      {' · '.join(owner)}")
    if decision["informational"]:
        lines.append("  severity   none: informational, recorded as a signal, opens no incident")
        lines += _why(decision["reasons"])
        return lines
    rules = decision["rules_matched"]
    by = f" (rule{'s' if len(rules) > 1 else ''} {', '.join(rules)})" if rules else " (Azure's baseline)"
    if decision["resolves"]:
        lines.append(f"  resolves   its incident{by}")
    else:
        lines.append(f"  severity   {decision['severity']}{by}")
        lines += _why(decision["reasons"])
    lines.append(f"  incident   {_incident_line(decision)}")
    effects = decision["planned_effects"]
    pages = [e for e in effects if e["kind"] == "page"]
    if pages:
        lines.append("  page       " + "; ".join(f"PagerDuty {e['event']} at {e['severity']}" for e in pages))
    elif decision["resolves"]:
        pass  # a resolve's page follows the incident it finds
    elif decision["severity"] not in decision["pages_at"]:
        paging = ", ".join(decision["pages_at"])
        lines.append(f"  page       none: {decision['severity']} does not page (the policy pages {paging})")
    elif decision["incident"]["action"] == "update":
        lines.append("  page       none: paged already (it pages again only at a higher severity)")
    cards = [e for e in effects if e["kind"] == "notify"]
    if cards:
        lines.append("  card       " + "; ".join(f"Slack card: {e['event']}" for e in cards))
    for act in (e for e in effects if e["kind"] == "act"):
        target = act["target"].rsplit("/", 1)[-1] or "its resource"
        lines.append(f"  action     {act['event']} on {target} (mode {act['mode']})")
    return lines


def _why(reasons: list[str]) -> list[str]:
    lines = []
    for i, reason in enumerate(reasons):
        first = "  why        " if i == 0 else " " * 13
        lines += textwrap.wrap(reason, WIDTH, initial_indent=first, subsequent_indent=" " * 15)
    return lines


def _incident_line(decision: Mapping[str, Any]) -> str:
    incident = decision["incident"]
    action = incident["action"]
    if action == "resolve" and incident.get("known_open") is False:
        return "resolves the one open for its correlation key, if any (no store here to ask)"
    if action == "open":
        if incident.get("known_open") is False:
            return "opens a new one, or updates the one open for its correlation key (no store here to ask)"
        return "opens a new one (none is open for its correlation key)"
    if action == "none":
        return "none: " + incident.get("why", "informational")
    since = f"open since {incident['opened_at']}, {incident['signal_count']} signals"
    return f"{'resolves' if action == 'resolve' else 'updates'} {incident['id']} ({since})"
