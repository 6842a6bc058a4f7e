"""Builds the adapters once per process, on first use, so a cold start pays only for its path."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from shared.clock import Clock, utc_now
from shared.intake.azure_monitor import Owner
from shared.intake.pipeline import Intake
from shared.policy import Policy, load_policy
from shared.ports import EffectQueue, IncidentStore
from shared.resources import Ownership, ResourceId, ownership
from shared.settings import Settings
from shared.worker import EffectWorker


@dataclass
class Services:
    """The responder's dependencies, built from settings."""

    settings: Settings
    clock: Clock = utc_now

    @cached_property
    def policy(self) -> Policy:
        """The validated policy."""
        return load_policy(self.settings.policy_file)

    @cached_property
    def store(self) -> IncidentStore:
        """Incidents (SQLite under the data dir)."""
        from shared.adapters.sqlite_store import SqliteIncidentStore

        return SqliteIncidentStore(self.settings.data_dir / "incidents.sqlite3")

    @cached_property
    def queue(self) -> EffectQueue:
        """The effects queues (SQLite under the data dir)."""
        return self.local_queue

    @cached_property
    def local_queue(self):  # type: ignore[no-untyped-def]  # SqliteQueue, imported lazily
        """The embedded queue that `dr serve` also receives from."""
        from shared.adapters.sqlite_queue import SqliteQueue

        return SqliteQueue(
            self.settings.data_dir / "queue.sqlite3",
            lock_duration=self.settings.queue_lock_seconds,
            max_delivery_count=self.settings.queue_max_delivery_count,
        )

    @cached_property
    def intake(self) -> Intake:
        """The intake pipeline."""
        return Intake(self.store, self.queue, self.policy, self.clock)

    @cached_property
    def worker(self) -> EffectWorker:
        """The effect worker with dry-run pager and chat."""
        from shared.adapters.dryrun import DryRunChat, DryRunPager, DryRunRecorder

        dry = self.settings.data_dir / "dry-run"
        pager = DryRunPager(DryRunRecorder(dry / "pagerduty.jsonl", "pagerduty"))
        chat = DryRunChat(DryRunRecorder(dry / "slack.jsonl", "slack"))
        return EffectWorker(self.store, pager, chat, self.clock)

    def owner(self) -> Owner:
        """Who a resource belongs to, by tags or the policy's naming convention."""
        policy = self.policy

        def owner(resource: ResourceId, tags: Mapping[str, str]) -> Ownership:
            return ownership(resource, tags, policy.naming, dict(policy.component_by_type))

        return owner


_services: Services | None = None
_lock = threading.Lock()


def services() -> Services:
    """This process's services, built on first call from the environment."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                _services = Services(Settings.from_env())
    return _services


def reset(replacement: Services | None = None) -> None:
    """Drop (or replace) the process's services: tests and `dr serve` set their own settings."""
    global _services
    with _lock:
        _services = replacement
