"""The confirmation a failover, rollback, restart or restore waits on, and what a pressed button leaves."""

from __future__ import annotations

from typing import Any

from shared.chatops.blocks import Reply, context, escape, section
from shared.chatops.operations import CONFIRM_MINUTES, Preview
from shared.paging.card import button

CONFIRM_BLOCK = "dr_confirmation"


def confirmation_reply(preview: Preview) -> Reply:
    """Exactly what confirming would do, with Confirm and Cancel (no Confirm when it is refused)."""
    value = preview.request.to_value()
    blocks: list[dict[str, Any]] = [section(f"*{escape(preview.summary)}*")]
    if preview.details:
        blocks.append(section("\n".join(f"• {escape(line)}" for line in preview.details)))
    buttons = [button("dr_cancel", "Cancel", value)]
    if preview.refused:
        blocks.append(section(f":no_entry: Cannot be done now: {escape(preview.refused)}"))
    else:
        buttons.insert(0, button("dr_confirm", "Confirm", value, "danger"))
        blocks.append(
            context(
                f"Nothing happens until you press Confirm (within {CONFIRM_MINUTES} minutes, then ask again)."
            )
        )
    blocks.append({"type": "actions", "block_id": CONFIRM_BLOCK, "elements": buttons})
    return Reply(preview.summary, tuple(blocks))


def pressed_reply(
    blocks: tuple[dict[str, Any], ...], action_id: str, block_id: str, line: str, whole_block: bool
) -> Reply:
    """The pressed message, its button (or its whole row) gone, and a line saying who did what, when."""
    kept: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("type") == "actions" and (block.get("block_id") == block_id or _holds(block, action_id)):
            if whole_block:
                continue
            elements = [
                e
                for e in block.get("elements") or []
                if isinstance(e, dict) and e.get("action_id") != action_id
            ]
            if not elements:
                continue
            block = {**block, "elements": elements}
        kept.append(block)
    if not kept:
        kept = [section(line)]
    else:
        kept.append(context(line))
    return Reply(line, tuple(kept), replace=True)


def _holds(block: dict[str, Any], action_id: str) -> bool:
    return any(isinstance(e, dict) and e.get("action_id") == action_id for e in block.get("elements") or [])
