"""What a person does to the automation (approve, deny, pause, resume), the same from every door.

The HTTP API, the `dr` command and (later) Slack call these; each names the person and the door
("api", "cli", "slack", "pagerduty"), so an audit tells who did what through what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.actions.pipeline import ActionPipeline
from shared.clock import Clock, iso
from shared.domain.actions import ActionRecord, ActionState, Actor, InvalidTransition, Pause
from shared.errors import BadInput, PoisonMessage, PreconditionFailed, Rejected, StoreContention
from shared.ports import ActionStore, AutomationSwitch

MAX_NAME = 200
DECIDE_TRIES = 5  # re-reads after losing a race to another decision or the expiry


@dataclass(frozen=True)
class AutomationState:
    """Whether automation may act: the setting, and every paused scope."""

    setting_on: bool
    pauses: tuple[Pause, ...]

    @property
    def paused_everywhere(self) -> bool:
        """Nothing runs by itself."""
        return not self.setting_on or any(not p.tenant for p in self.pauses)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "setting": "on" if self.setting_on else "off (DR_AUTOMATION)",
            "paused": self.paused_everywhere,
            "pauses": [
                {"tenant": p.tenant or "*", "by": p.by, "at": p.at, "reason": p.reason} for p in self.pauses
            ],
        }


def person(by: Any, via: str) -> Actor:
    """The person behind a request; BadInput when the request does not name one."""
    if not isinstance(by, str) or not by.strip():
        raise BadInput("invalid_field", 'by must name the person ("by": "alice@example.com")', 422)
    if len(by) > MAX_NAME:
        raise BadInput("invalid_field", f"by is longer than {MAX_NAME} characters", 422)
    return Actor(by.strip(), via)


def decide(pipeline: ActionPipeline, action_id: str, approve: bool, actor: Actor) -> ActionRecord:
    """Approve or deny; BadInput 404 for an unknown action, 409 for one not awaiting a decision."""
    for _ in range(DECIDE_TRIES):
        try:
            return pipeline.decide(action_id, approve, actor)
        except PoisonMessage:
            raise BadInput("not_found", f"no action {action_id}", 404) from None
        except (InvalidTransition, Rejected) as e:
            raise BadInput("conflict", str(e), 409) from None
        except PreconditionFailed:
            continue  # someone else decided (or it expired) meanwhile: read it again and say so
    raise StoreContention(f"action {action_id} kept changing while it was decided")


def find(actions: ActionStore, action_id: str) -> ActionRecord:
    """One action; BadInput 404 when unknown."""
    found = actions.get_action(action_id)
    if found is None:
        raise BadInput("not_found", f"no action {action_id}", 404)
    return found.record


def set_paused(
    switch: AutomationSwitch, paused: bool, tenant: str, actor: Actor, reason: str, clock: Clock
) -> str:
    """Pause or resume a scope; the line a person reads back."""
    tenant = tenant.strip().lower()
    scope = f"tenant {tenant}" if tenant else "all tenants"
    if paused:
        switch.pause(Pause(tenant, str(actor), iso(clock()), reason.strip()))
        return f"automation paused for {scope} by {actor}"
    if switch.resume(tenant):
        return f"automation resumed for {scope} by {actor}"
    return f"automation was not paused for {scope}"


def state(switch: AutomationSwitch, setting_on: bool) -> AutomationState:
    """The kill switch as it stands."""
    return AutomationState(setting_on, tuple(switch.pauses()))


ACTION_STATES = tuple(s.value for s in ActionState)
