"""`dr serve`'s services: the operator's view also counts the alerts the front door holds."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from shared.bootstrap import Services
from shared.intake.admission import INTAKE_QUEUE
from shared.localhost.inbox import waiting_in
from shared.ports import DeadLetter, QueueCounts, QueueInspector

INBOX = "inbox"  # its row in the status, just before the intake queue it drains into


class InboxCounts:
    """A queue inspector whose counts put the inbox before the intake queue, while it exists."""

    def __init__(self, queues: QueueInspector, data_dir: Path) -> None:
        self.queues = queues
        self.data_dir = data_dir

    def counts(self, queues: Sequence[str]) -> list[QueueCounts]:
        """The queues' counts; before `intake`, the alerts answered 202 and not yet on it."""
        found = self.queues.counts(queues)
        waiting = waiting_in(self.data_dir) if INTAKE_QUEUE in queues else None
        if waiting is None:
            return found
        at = list(queues).index(INTAKE_QUEUE)
        return [*found[:at], QueueCounts(INBOX, waiting, 0, 0, 0), *found[at:]]

    def recent_dead_letters(self, queues: Sequence[str], limit: int) -> list[DeadLetter]:
        """The queues' own."""
        return self.queues.recent_dead_letters(queues, limit)

    def find_dead_letters(self, message_id: str) -> list[DeadLetter]:
        """The queues' own."""
        return self.queues.find_dead_letters(message_id)

    def resend_dead_letter(self, queue: str, message_id: str, new_message_id: str) -> bool:
        """The queues' own."""
        return self.queues.resend_dead_letter(queue, message_id, new_message_id)


class ServedServices(Services):
    """The services `dr serve` and the `dr` commands on its data dir use."""

    @cached_property
    def queue_inspector(self) -> QueueInspector:
        """The queues' inspector, counting the inbox too."""
        # The parent's cached value is stored first under the same name, then replaced by this one.
        return InboxCounts(super().queue_inspector, self.settings.data_dir)
