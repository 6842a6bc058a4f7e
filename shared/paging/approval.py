"""The approval request in the incident's thread (Block Kit): what the action will do, Approve / Deny."""

from __future__ import annotations

from typing import Any

from shared.clock import parse_iso
from shared.domain.actions import ActionRecord
from shared.paging.card import MAX_TEXT, button, escape

# What the action's parameters and its precondition's findings say a person must see before
# approving: the backup a restore takes, the revision a rollback goes back to, the deployment.
SHOWN = ("backup", "schedule", "namespace", "deployment", "to_revision", "revision", "old_primary", "region")


def approval_request(record: ActionRecord, line: str) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text: the timeline's line, blocks) asking to approve or deny the record awaiting approval."""
    found = record.continuation.get("found")
    facts = {**dict(record.params), **(found if isinstance(found, dict) else {})}
    fields = [
        _field("Action", record.action),
        _field("Target", record.target),
        _field("Expires", "never") if not record.expires_at else _dated("Expires", record.expires_at),
        _field("Asked by", str(record.planned_by)),
    ]
    fields += [
        _field(name.replace("_", " ").capitalize(), str(facts[name])) for name in SHOWN if facts.get(name)
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Approval needed*\n{escape(record.request)}"[:MAX_TEXT]},
        },
        {"type": "section", "fields": fields[:10]},  # Slack: at most 10 fields
        {
            "type": "actions",
            "block_id": f"approval:{record.id}"[:255],
            "elements": [
                button("dr_approve", "Approve", record.id, style="primary"),
                button("dr_deny", "Deny", record.id, style="danger"),
            ],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"`{record.id}` · or `/dr approve {record.id}`"}],
        },
    ]
    return escape(line)[:MAX_TEXT], blocks


def _dated(name: str, when: str) -> dict[str, str]:
    """A time each reader sees in their own time zone (`<!date^…>`), the ISO time as its fallback."""
    moment = parse_iso(when)
    if moment is None:
        return _field(name, when)
    slack = f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{escape(when)}>"
    return {"type": "mrkdwn", "text": f"*{name}*\n{slack}"}


def _field(name: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{name}*\n{escape(value)}"[:2000]}
