"""Builds the adapters from settings once per process, on first use, so a cold start pays only for its path.

Settings choose the adapters (SQLite and the embedded queue today; Table Storage and Service Bus
when the Azure adapters land); tests and tools pass their own: `Services(settings, store=…, queue=…)`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING

from shared.clock import Clock, utc_now
from shared.domain.resources import Owner, Ownership, ResourceId, ownership
from shared.errors import SettingsError
from shared.intake.admission import Admission
from shared.intake.pipeline import Intake
from shared.outbox import Outbox
from shared.paging.routing import RoutingTable
from shared.ports import ActionBook, Chat, EffectQueue, IncidentStore, Pager, PagerDirectory, QueueReceiver
from shared.retries import Backoff, EffectRunner
from shared.settings import Settings
from shared.triage.policy import Policy, load_policy

if TYPE_CHECKING:
    from shared.actions.pipeline import ActionPipeline
    from shared.actions.registry import Registry
    from shared.adapters.sqlite_queue import SqliteQueue
    from shared.chatops.desk import Desk
    from shared.chatops.operations import Operations
    from shared.paging.card_sync import CardSync
    from shared.paging.page_sync import PageSync
    from shared.paging.webhook_worker import PagerDutyEventWorker
    from shared.ports import IncidentPages, QueueInspector, StatusQueries
    from shared.status.model import Automation, Status


class Services:
    """The responder's dependencies, built from settings; any adapter can be given instead."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock = utc_now,
        *,
        store: IncidentStore | None = None,
        queue: EffectQueue | None = None,
        pager: Pager | None = None,
        chat: Chat | None = None,
        directory: PagerDirectory | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        given = {
            "store": store,
            "queue": queue,
            "pager": pager,
            "chat": chat,
            "directory": directory,
            "registry": registry,
        }
        # A given adapter takes the place of the cached property of its name.
        self.__dict__.update({name: adapter for name, adapter in given.items() if adapter is not None})

    @cached_property
    def policy(self) -> Policy:
        """The validated policy."""
        from shared.actions.registry import validate_actions

        policy = load_policy(self.settings.policy_file)
        validate_actions(policy, self.registry)
        return policy

    @cached_property
    def store(self) -> IncidentStore:
        """Incidents: Table Storage when it is configured, else SQLite under the data dir."""
        if self._tables is not None:
            return self._tables[0]
        from shared.adapters.sqlite_store import SqliteIncidentStore

        return SqliteIncidentStore(
            self.settings.data_dir / "incidents.sqlite3", synchronous=self.settings.sqlite_synchronous
        )

    @cached_property
    def queue(self) -> EffectQueue:
        """The queues: Service Bus when its connection is set, else the embedded SQLite queue."""
        settings = self.settings
        if settings.service_bus_namespace or settings.service_bus_connection:
            from shared.adapters.azure_clients import LazyCredential
            from shared.adapters.service_bus import service_bus_queue

            client_id = settings.service_bus_client_id or settings.managed_identity_client_id
            return service_bus_queue(
                settings.service_bus_namespace,
                settings.service_bus_connection,
                lambda: LazyCredential(client_id),
                clock=self.clock,
            )
        from shared.adapters.sqlite_queue import SqliteQueue

        return SqliteQueue(
            self.settings.data_dir / "queue.sqlite3",
            lock_duration=self.settings.queue_lock_seconds,
            max_delivery_count=self.settings.queue_max_delivery_count,
            clock=self.clock,  # the same time the handlers schedule retries by
            synchronous=self.settings.sqlite_synchronous,
        )

    @property
    def receiver(self) -> QueueReceiver:
        """What the local host receives from: the embedded queue (in Azure the Functions host receives)."""
        queue = self.queue
        if not isinstance(queue, QueueReceiver):
            raise SettingsError(
                "the queue is Service Bus (ServiceBusConnection is set), which the Functions host"
                " receives from; dr serve runs the triggers on its embedded queue: unset it to run locally"
            )
        return queue

    @property
    def local_queue(self) -> SqliteQueue:
        """The embedded queue, when it is the queue (local tools and tests read its counts)."""
        from shared.adapters.sqlite_queue import SqliteQueue

        queue = self.queue
        if not isinstance(queue, SqliteQueue):
            raise TypeError(f"the queue is {type(queue).__name__}, not the embedded one")
        return queue

    @cached_property
    def outbox(self) -> Outbox:
        """Sends incidents' outboxes and applies changes with conditional writes."""
        return Outbox(self.store, self.queue)

    @cached_property
    def admission(self) -> Admission:
        """Takes signals in: the intake queue, which `intake` folds."""
        return Admission(self.queue, self.policy)

    @cached_property
    def intake(self) -> Intake:
        """Folds admitted signals into incidents (the `intake` queue's trigger)."""
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
        return PagerDutyEvents(routing, settings.pagerduty_events_url)

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
    def effects(self) -> EffectRunner:
        """Runs effect messages with retries, shared by the page, card and action handlers."""
        backoff = Backoff(self.settings.retry_base_seconds, self.settings.retry_max_seconds)
        return EffectRunner(self.store, self.queue, self.outbox, self.clock, backoff)

    @cached_property
    def pages(self) -> PageSync:
        """Handles the `pages` queue."""
        from shared.paging.page_sync import PageSync

        return PageSync(
            self.effects,
            self.outbox,
            self.pager,
            self.policy,
            self.clock,
            self.settings.runbook_base_url,
            self.directory,
        )

    @cached_property
    def cards(self) -> CardSync:
        """Handles the `notifications` queue."""
        from shared.paging.card_sync import CardSync

        settings = self.settings
        default_channel = settings.slack_channel or (None if settings.posts_for_real else "#dry-run")
        channels = RoutingTable.parse(default_channel, settings.slack_channels, "SLACK_CHANNELS")
        try:
            actions: ActionBook | None = self.action_store
        except TypeError:  # a store given without actions beside it (unit tests): plain approval lines
            actions = None
        return CardSync(
            self.effects,
            self.outbox,
            self.chat,
            channels,
            self.policy,
            self.clock,
            settings.runbook_base_url,
            actions,
        )

    @cached_property
    def registry(self) -> Registry:
        """The actions the policy may name, wired to their vendors (which connect on first use)."""
        from shared.actions.registry import Registry
        from shared.adapters.acr import acr_kinds
        from shared.adapters.azure_actions import aks_locator, azure_kinds
        from shared.adapters.azure_clients import ActionsCredential, arm_timeouts
        from shared.adapters.keyvault import keyvault_kinds
        from shared.adapters.kube import kube_kinds

        settings = self.settings
        arm, every = settings.arm_url, settings.action_check_seconds
        timeouts = arm_timeouts(self.lease_seconds)  # a start's call ends before its lease can
        # azure-identity is loaded on the first token; token requests are bounded as ARM calls are.
        credential = ActionsCredential(settings.managed_identity_client_id, timeouts)
        return Registry(
            [
                *azure_kinds(arm, credential, check_seconds=every, timeouts=timeouts),
                *acr_kinds(arm, credential, check_seconds=every, timeouts=timeouts),
                *keyvault_kinds(credential, check_seconds=every, timeouts=timeouts),
                *kube_kinds(aks_locator(arm, credential, timeouts)),
            ]
        )

    @property
    def lease_seconds(self) -> float:
        """How long a claimed start is left to its worker before another takes it over: two locks."""
        return max(2 * self.settings.queue_lock_seconds, 1.0)

    @cached_property
    def _tables(self) -> tuple[IncidentStore, ActionBook] | None:
        """Both stores on one Table Storage table and client (actions share the incidents' timeline)."""
        settings = self.settings
        if not (settings.tables_endpoint or settings.tables_connection):
            return None
        from shared.adapters.azure_clients import LazyCredential
        from shared.adapters.azure_tables import table_stores

        client_id = settings.managed_identity_client_id
        return table_stores(
            settings.tables_endpoint,
            settings.tables_connection,
            lambda: LazyCredential(client_id),
            table=settings.tables_table,
        )

    @cached_property
    def action_store(self) -> ActionBook:
        """Action records and the kill switch, beside the incidents (their timeline is shared)."""
        if self._tables is not None:
            return self._tables[1]
        from shared.adapters.sqlite_actions import SqliteActionStore
        from shared.adapters.sqlite_store import SqliteIncidentStore

        store = self.store
        if not isinstance(store, SqliteIncidentStore):
            raise TypeError(f"actions are stored beside SQLite incidents, not {type(store).__name__}")
        return SqliteActionStore(store.db)

    def automation_view(self) -> Automation:
        """The kill switch and the active actions, for the status model."""
        from shared.status.read import read_automation

        store = self.action_store
        return read_automation(store, store, self.settings.automation == "on")

    @cached_property
    def actions(self) -> ActionPipeline:
        """Handles the `actions` queue."""
        from shared.actions.pipeline import ActionPipeline, PipelineSettings

        settings = self.settings
        pacing = PipelineSettings(
            automation_on=settings.automation == "on",
            check_seconds=settings.action_check_seconds,
            lease_seconds=self.lease_seconds,
            lost_answer_seconds=settings.lost_answer_seconds,
            retry_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
            max_errors=max(1, min(5, settings.queue_max_delivery_count - 1)),
        )
        store = self.action_store
        return ActionPipeline(
            self.registry, store, store, self.store, self.outbox, self.queue, self.policy, self.clock, pacing
        )

    @cached_property
    def operations(self) -> Operations:
        """What Slack's /dr commands and buttons do (actions, decisions, acknowledge, resolve, pause)."""
        from shared.chatops.operations import Operations

        store = self.action_store
        return Operations(
            self.actions,
            self.store,
            store,
            store,
            self.outbox,
            self.clock,
            seal_key=self.settings.slack_signing_secret or "",  # seals what a confirmation showed
        )

    @cached_property
    def pagerduty_events(self) -> PagerDutyEventWorker:
        """Applies PagerDuty webhook events."""
        from shared.paging.webhook_worker import PagerDutyEventWorker

        def acknowledged(incident_id: str, who: str) -> None:
            if any(plan.approve_on_ack for plan in self.policy.actions()):  # else no action can wait on it
                self.actions.approve_on_ack(incident_id, who)

        return PagerDutyEventWorker(self.store, self.outbox, self.clock, self.directory, acknowledged)

    def owner(self) -> Owner:
        """Who a resource belongs to, by tags or the policy's naming convention."""
        policy = self.policy

        def owner(resource: ResourceId, tags: Mapping[str, str]) -> Ownership:
            return ownership(resource, tags, policy.naming, dict(policy.component_by_type))

        return owner

    @cached_property
    def desk(self) -> Desk:
        """Slack's /dr commands and buttons."""
        from shared.adapters.service_bus import ServiceBusQueue
        from shared.adapters.sqlite_queue import SqliteQueue
        from shared.chatops.authorisation import Authorisation, OnCallLookup
        from shared.chatops.desk import LISTS, QUEUE_SEND_SECONDS, QUEUED_STATUS, Desk
        from shared.chatops.responses import WebhookResponses
        from shared.status.read import read_status

        settings = self.settings
        people = None
        if settings.slack_bot_token:
            from shared.adapters.slack_people import SlackPeople

            people = SlackPeople(settings.slack_bot_token, settings.slack_api_url)
        directory = self.directory
        on_call = directory if isinstance(directory, OnCallLookup) else None  # PagerDutyRest has it

        def status() -> Status:
            return read_status(
                self.status_queries, self.queue_inspector, self.policy, self.clock(), self.automation_view()
            )

        queue = self.queue
        if isinstance(queue, ServiceBusQueue):  # Slack waits 3 s: a send retrying past that helps nobody
            queue = queue.within(QUEUE_SEND_SECONDS)
        return Desk(
            incidents=self.store,
            pages=self.incident_pages,
            status=status,
            components=lambda: tuple(self.policy.components),
            queue=queue,
            authorisation=Authorisation(
                settings.slack_allowed_users, settings.slack_allowed_groups, people, on_call
            ),
            operations=self.operations,
            responses=WebhookResponses(),
            clock=self.clock,
            backoff=Backoff(settings.retry_base_seconds, settings.retry_max_seconds),
            queued_reads=LISTS if isinstance(queue, SqliteQueue) else QUEUED_STATUS,
            workspaces=settings.slack_team_ids,
        )

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
        """Counts, dead letters and replay on the queues (Service Bus's or the local queue)."""
        from shared.ports import QueueInspector

        queue = self.queue
        if not isinstance(queue, QueueInspector):
            raise TypeError(f"{type(queue).__name__} cannot count or replay its messages")
        return queue


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
