"""Builds the adapters once per process, on first use, so a cold start pays only for its path."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from shared.clock import Clock, utc_now
from shared.domain.resources import Ownership, ResourceId, ownership
from shared.intake.azure_monitor import Owner
from shared.intake.pipeline import Intake
from shared.outbox import Outbox
from shared.paging.routing import RoutingTable
from shared.paging.worker import Backoff, EffectWorker
from shared.ports import Chat, EffectQueue, IncidentStore, Pager, PagerDirectory
from shared.settings import Settings
from shared.triage.policy import Policy, load_policy

if TYPE_CHECKING:
    from shared.adapters.sqlite_queue import SqliteQueue
    from shared.paging.webhook_worker import PagerDutyEventWorker
    from shared.ports import IncidentPages, QueueInspector, StatusQueries


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
    def local_queue(self) -> SqliteQueue:
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
    def pager(self) -> Pager:
        """PagerDuty when a routing key is set, else a dry-run that records what it would send."""
        settings = self.settings
        if not settings.pages_for_real:
            from shared.adapters.dryrun import DryRunPager, DryRunRecorder

            return DryRunPager(DryRunRecorder(settings.data_dir / "dry-run" / "pagerduty.jsonl", "pagerduty"))
        from shared.adapters.pagerduty_events import PagerDutyEvents

        routing = RoutingTable.parse(
            settings.pagerduty_routing_key, settings.pagerduty_routing_keys, "PAGERDUTY_ROUTING_KEYS"
        )
        runbooks = {name: c.runbook for name, c in self.policy.components.items()}
        return PagerDutyEvents(routing, settings.pagerduty_events_url, runbooks)

    @cached_property
    def chat(self) -> Chat:
        """Slack when a bot token is set, else a dry-run that records what it would post."""
        settings = self.settings
        if not settings.posts_for_real:
            from shared.adapters.dryrun import DryRunChat, DryRunRecorder

            return DryRunChat(DryRunRecorder(settings.data_dir / "dry-run" / "slack.jsonl", "slack"))
        from shared.adapters.slack_chat import SlackChat

        return SlackChat(settings.slack_bot_token or "", settings.slack_api_url)

    @cached_property
    def directory(self) -> PagerDirectory | None:
        """PagerDuty's REST API, when a token and service are configured."""
        settings = self.settings
        if not (settings.pagerduty_api_token and settings.pagerduty_service_id):
            return None
        from shared.adapters.pagerduty_rest import PagerDutyRest

        return PagerDutyRest(
            settings.pagerduty_api_token,
            settings.pagerduty_api_url,
            settings.pagerduty_service_id,
            settings.pagerduty_from_email,
        )

    @cached_property
    def worker(self) -> EffectWorker:
        """Carries out pages, notifications and actions."""
        settings = self.settings
        default_channel = settings.slack_channel or (None if settings.posts_for_real else "#dry-run")
        channels = RoutingTable.parse(default_channel, settings.slack_channels, "SLACK_CHANNELS")
        backoff = Backoff(settings.retry_base_seconds, settings.retry_max_seconds)
        return EffectWorker(
            self.store,
            self.queue,
            self.pager,
            self.chat,
            channels,
            self.policy,
            self.clock,
            backoff,
            settings.runbook_base_url,
        )

    @cached_property
    def pagerduty_events(self) -> PagerDutyEventWorker:
        """Applies PagerDuty webhook events."""
        from shared.paging.webhook_worker import PagerDutyEventWorker

        return PagerDutyEventWorker(self.store, Outbox(self.store, self.queue), self.clock, self.directory)

    def owner(self) -> Owner:
        """Who a resource belongs to, by tags or the policy's naming convention."""
        policy = self.policy

        def owner(resource: ResourceId, tags: Mapping[str, str]) -> Ownership:
            return ownership(resource, tags, policy.naming, dict(policy.component_by_type))

        return owner

    @cached_property
    def status_queries(self) -> StatusQueries:
        """The store's reads for the operator's view."""
        from shared.ports import StatusQueries

        store = self.store
        if not isinstance(store, StatusQueries):
            raise TypeError(f"{type(store).__name__} does not answer the status queries")
        return store

    @cached_property
    def incident_pages(self) -> IncidentPages:
        """The store's incident list, a keyset page at a time."""
        from shared.ports import IncidentPages

        store = self.store
        if not isinstance(store, IncidentPages):
            raise TypeError(f"{type(store).__name__} does not list incidents by page")
        return store

    @cached_property
    def queue_inspector(self) -> QueueInspector:
        """Counts, dead letters and replay on the queues (the local queue answers them)."""
        return self.local_queue


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
