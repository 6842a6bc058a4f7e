"""Reading the status through the ports: the one impure step before the pure builder."""

from __future__ import annotations

from datetime import datetime

from shared.domain.actions import ActionState
from shared.ports import ActionStore, AutomationSwitch, QueueInspector, StatusQueries
from shared.status.model import (
    ALL_QUEUES,
    Automation,
    DeadLetterView,
    Status,
    build_status,
    describe_dead_letter,
)
from shared.triage.policy import Policy

# A storm opens about one incident per alert rule and resource: a hundred, not thousands.
INCIDENT_LIMIT = 1000
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
        open_incidents=store.open_incidents(INCIDENT_LIMIT),
        open_total=store.open_incident_count(),
        queues=queues.counts(ALL_QUEUES),
        dead_letters=queues.recent_dead_letters(ALL_QUEUES, dead_letters),
        outbox=store.outbox_backlog(),
        automation=automation,
    )


ACTIVE = (ActionState.RUNNING, ActionState.APPROVED, ActionState.AWAITING_APPROVAL)


def read_automation(actions: ActionStore, switch: AutomationSwitch, setting_on: bool) -> Automation:
    """The kill switch and the actions that are running or waiting for a person."""
    active = [r for state in ACTIVE for r in actions.list_actions(state.value, None, 100)]
    return Automation(setting_on, tuple(switch.pauses()), tuple(active))


def read_dead_letters(queues: QueueInspector, queue: str | None, limit: int) -> list[DeadLetterView]:
    """Dead letters of one queue or of all, newest first, with what each message was."""
    names = (queue,) if queue else ALL_QUEUES
    return [describe_dead_letter(d) for d in queues.recent_dead_letters(names, limit)]
