"""Block Kit pieces and Slack's limits: 50 blocks a message, 3000 characters a section's text.

A reply is the JSON a slash command's HTTP answer or a response_url POST carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.paging.card import escape

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_CONTEXT = 2000  # per context element
MAX_FALLBACK = 3000  # the notification text; Slack truncates far above, phones far below
EPHEMERAL, IN_CHANNEL = "ephemeral", "in_channel"

__all__ = ["Reply", "context", "escape", "header", "section", "sections"]


@dataclass(frozen=True)
class Reply:
    """A message for the person (ephemeral) or the channel (in_channel); replace edits the pressed one."""

    text: str
    blocks: tuple[dict[str, Any], ...] = ()
    response_type: str = EPHEMERAL
    replace: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The body Slack takes, within its limits."""
        blocks = list(self.blocks)
        if len(blocks) > MAX_BLOCKS:
            blocks = [
                *blocks[: MAX_BLOCKS - 1],
                context(f"… {len(blocks) - MAX_BLOCKS + 1} more blocks left out"),
            ]
        body: dict[str, Any] = {"response_type": self.response_type, "text": clip(self.text, MAX_FALLBACK)}
        if blocks:
            body["blocks"] = blocks
        if self.replace:
            body["replace_original"] = True
        return body

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        """Inverse of `to_dict` (a queued reply)."""
        return cls(
            str(data.get("text", "")),
            tuple(data.get("blocks", ())),
            str(data.get("response_type", EPHEMERAL)),
            bool(data.get("replace_original", False)),
        )


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> dict[str, Any]:
    """A header block (plain text, 150 characters)."""
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, 150)}}


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section, clipped to Slack's 3000 characters."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def sections(title: str, lines: Sequence[str], limit: int = MAX_SECTION) -> list[dict[str, Any]]:
    """A title and lines as few sections as fit Slack's limit, never cutting a line in two."""
    out: list[dict[str, Any]] = []
    chunk = f"*{title}*" if title else ""
    for line in lines:
        line = clip(line, limit - 10)
        if chunk and len(chunk) + 1 + len(line) > limit:
            out.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        out.append(section(chunk))
    return out


def bounded_section(
    title: str,
    lines: Sequence[str],
    limit: int = MAX_SECTION,
    at_most: int | None = None,
    total: int | None = None,
) -> tuple[dict[str, Any], int]:
    """One section of the title and as many lines as fit (at most `at_most`), ending "… and N more"
    counted of `total` when the lines are only the first few of more; and how many were shown."""
    text, shown = f"*{title}*", 0
    whole = len(lines) if total is None else max(total, len(lines))
    cap = len(lines) if at_most is None else min(at_most, len(lines))
    for n, line in enumerate(lines[:cap]):
        rest = whole - n - 1
        room = limit - len(text) - 1 - (len(f"… and {rest} more") + 1 if rest else 0)
        if len(line) > room:
            break
        text, shown = f"{text}\n{line}", shown + 1
    if shown < whole:
        text += f"\n… and {whole - shown} more"
    return section(text), shown


def context(text: str) -> dict[str, Any]:
    """A small grey line."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, MAX_CONTEXT)}]}


@dataclass(frozen=True)
class Screen:
    """Blocks collected in order, stopping before Slack's limit with a note of what did not fit."""

    blocks: list[dict[str, Any]] = field(default_factory=list)
    room: int = MAX_BLOCKS - 1  # one is kept for the "… not shown" note

    def add(self, *blocks: dict[str, Any], keep: int = 0) -> bool:
        """Append all of them, or none if they do not fit leaving `keep` free; False when they did not."""
        if len(self.blocks) + len(blocks) + keep > self.room:
            return False
        self.blocks.extend(blocks)
        return True
