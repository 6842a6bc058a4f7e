"""STAND-IN until slack-ops lands: the contract's types, so the Slack edge imports and runs.

The real module (slack-ops) replaces this file whole; nothing here but what the contract fixes.
`Operations` is the interface only: `Services.operations` (slack-ops) builds the real one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from shared.domain.actions import ActionRecord, Actor
from shared.domain.incidents import Incident


class OperationRefused(Exception):
    """What a person asked cannot be done now; str(e) is the polite reason to show them."""


@dataclass(frozen=True)
class ActionRequest:
    """A person's /dr failover|rollback|restart|restore, before it is confirmed."""

    verb: str
    target: str
    system: str = ""
    revision: int | None = None
    backup: str | None = None

    def to_value(self) -> str:
        """Compact JSON, at most 2000 characters (a button's value)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_value(cls, text: str) -> ActionRequest:
        """Inverse of `to_value`; OperationRefused when the text is not one of ours."""
        try:
            data = json.loads(text)
            return cls(**data)
        except (ValueError, TypeError, RecursionError):
            raise OperationRefused("this button is not one of ours, or is from an older release") from None


@dataclass(frozen=True)
class Preview:
    """Exactly what confirming would do, for the confirmation message."""

    request: ActionRequest
    summary: str
    details: tuple[str, ...]
    refused: str = ""


class Operations:
    """What the /dr commands and buttons do (slack-ops implements it)."""

    def preview(self, request: ActionRequest) -> Preview:
        raise NotImplementedError

    def confirm(self, request: ActionRequest, actor: Actor, request_id: str) -> ActionRecord:
        raise NotImplementedError

    def approve(self, action_id: str, actor: Actor) -> ActionRecord:
        raise NotImplementedError

    def deny(self, action_id: str, actor: Actor) -> ActionRecord:
        raise NotImplementedError

    def acknowledge(self, incident_id: str, actor: Actor) -> Incident:
        raise NotImplementedError

    def resolve(self, incident_id: str, actor: Actor) -> Incident:
        raise NotImplementedError

    def pause(self, tenant: str, actor: Actor, reason: str) -> str:
        raise NotImplementedError

    def resume(self, tenant: str, actor: Actor) -> str:
        raise NotImplementedError
