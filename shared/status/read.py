"""Reading the status through the ports: the one impure step before the pure builder."""

from __future__ import annotations

from datetime import datetime

from shared.domain.actions import ActionState
from shared.ports import ActionStore, ActiveActions, AutomationSwitch, QueueInspector, StatusQueries
from shared.status.model import (
    ALL_QUEUES,
    Automation,
    DeadLetterView,
    Status,
    build_status,
    describe_dead_letter,
)
from shared.triage.policy import Policy

# Every open incident is counted per component, tenant and severity; of each component and tenant
# only the worst few are shown (most severe, then oldest), and no more than fit one screen in all.
SHOWN_PER_GROUP = 3
SHOWN_LIMIT = 60
NEWEST_DEAD_LETTERS = 10


def read_status(
    store: StatusQueries,
    queues: QueueInspector,
    policy: Policy,
    now: datetime,
    automation: Automation | None = None,
    dead_letters: int = NEWEST_DEAD_LETTERS,
) -> Status:
    """The status as the store and the queues tell it now."""
    return build_status(
        now=now,
        policy=policy,
        open_incidents=store.open_overview(SHOWN_PER_GROUP, SHOWN_LIMIT),
        queues=queues.counts(ALL_QUEUES),
        dead_letters=queues.recent_dead_letters(ALL_QUEUES, dead_letters),
        outbox=store.outbox_backlog(),
        automation=automation,
    )


ACTIVE = (ActionState.RUNNING, ActionState.APPROVED, ActionState.AWAITING_APPROVAL)
ACTIVE_LIMIT = 100  # of each state


def read_automation(actions: ActionStore, switch: AutomationSwitch, setting_on: bool) -> Automation:
    """The kill switch and the actions that are running or waiting for a person."""
    if isinstance(actions, ActiveActions):  # one read, not one per state
        found = actions.actions_in([s.value for s in ACTIVE], ACTIVE_LIMIT * len(ACTIVE))
        active = sorted(found, key=lambda r: ACTIVE.index(r.state))  # stable: newest first in a state
    else:
        active = [r for state in ACTIVE for r in actions.list_actions(state.value, None, ACTIVE_LIMIT)]
    return Automation(setting_on, tuple(switch.pauses()), tuple(active))


def read_dead_letters(queues: QueueInspector, queue: str | None, limit: int) -> list[DeadLetterView]:
    """Dead letters of one queue or of all, newest first, with what each message was."""
    names = (queue,) if queue else ALL_QUEUES
    return [describe_dead_letter(d) for d in queues.recent_dead_letters(names, limit)]
