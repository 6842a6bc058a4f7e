"""Ports: what the domain needs from the outside world. Adapters live in `shared.adapters`.

They are shaped for the production adapters: the store like Azure Table Storage (ETag-conditional
writes, atomic only within one incident: its row, signals and timeline can share a partition) and the
queue like Service Bus (message_id duplicate detection, session_id per target, scheduled delivery,
dead-letter). Still to settle for Table Storage: where "one open incident per key", cross-incident
signal dedupe and the listing, condition and outbox queries live (index entities in their own
partitions, written before the incident, tolerated when left behind by a crash).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from shared.domain.incidents import Incident, TimelineEntry
from shared.domain.signals import Signal


@dataclass(frozen=True)
class Versioned:
    """An incident as read, with the ETag a conditional write must present."""

    incident: Incident
    etag: str


class IncidentStore(Protocol):
    """Incidents, their signals and timelines; every write is conditional."""

    def open_incident(self, correlation_key: str) -> Versioned | None:
        """The open (not resolved) incident for a correlation key, if any."""

    def get(self, incident_id: str) -> Versioned | None:
        """An incident by id."""

    def commit(
        self,
        incident: Incident,
        etag: str | None,
        signal: Signal | None = None,
        timeline: Sequence[TimelineEntry] = (),
    ) -> str:
        """Write the incident with its new signal and timeline entries atomically; return the new ETag.

        etag None means create: raises Conflict if the incident id exists or its correlation key
        already has an open incident. Otherwise raises PreconditionFailed if the ETag is stale.
        A signal whose id is already stored raises DuplicateSignal and nothing is written.
        """

    def add_timeline(self, incident_id: str, entries: Sequence[TimelineEntry]) -> None:
        """Append history without touching the incident (no ETag: entries never conflict)."""

    def link_external(self, system: str, external_id: str, incident_id: str) -> None:
        """Remember that another system's id (PagerDuty's incident) names this incident."""

    def find_external(self, system: str, external_id: str) -> str | None:
        """Our incident id for another system's id."""

    def record_informational(self, signal: Signal) -> bool:
        """Store a signal that opens no incident; False if it was already stored."""

    def list_incidents(self, status: str | None, tenant: str | None, limit: int) -> list[Incident]:
        """Newest first."""

    def timeline(self, incident_id: str) -> list[TimelineEntry]:
        """Oldest first."""

    def signals(self, incident_id: str | None, limit: int) -> list[Signal]:
        """Signals of one incident, or the informational ones when incident_id is None; newest first."""

    def open_tenants(self, condition_key: str, since: str) -> list[tuple[str, str]]:
        """(tenant, incident id) of open incidents of this condition, opened at or after `since`."""

    def with_pending_effects(self, older_than: str, limit: int) -> list[Versioned]:
        """Incidents whose outbox still holds effects written before `older_than` (for the sweeper)."""

    def ping(self) -> None:
        """Raise if the store cannot be reached."""


class DuplicateSignal(Exception):
    """The signal was accepted before; the write was not repeated."""


@dataclass(frozen=True)
class QueueMessage:
    """A message to send; `message_id` makes a resend within the dedup window a no-op."""

    queue: str
    body: bytes
    message_id: str
    session_id: str | None = None
    scheduled_at: datetime | None = None  # None = deliver now
    application_properties: Mapping[str, Any] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True)
class DeadLetter:
    """A message that gave up, with the reason a person reads in /dr status."""

    queue: str
    message_id: str
    session_id: str | None
    body: bytes
    reason: str
    description: str
    delivery_count: int
    dead_lettered_at: str


class EffectQueue(Protocol):
    """Sends effect messages; receiving is the Functions host's job (or the local runtime's)."""

    def send(self, messages: Sequence[QueueMessage]) -> None:
        """Enqueue; a message_id seen within the duplicate-detection window is dropped silently."""

    def dead_letter_message(self, message: QueueMessage, reason: str, description: str) -> None:
        """Straight to the dead letters: a message its sender knows can never succeed (Service Bus
        senders cannot write a DLQ, so there it is a queue of our own that /dr status also reads)."""

    def dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        """Dead-lettered messages, newest first."""


class Pager(Protocol):
    """Pages the on-call engineer (PagerDuty Events API v2 in production).

    Calls raise `shared.errors.Transient` (try again later) or `Rejected` (never will work).
    """

    def route_for(self, incident: Incident) -> str:
        """The routing selector for an incident (tenant, severity); Rejected if none is configured."""

    def trigger(self, incident: Incident, route: str, links: list[dict[str, str]]) -> str:
        """Open or update the page; returns a line for the timeline."""

    def resolve(self, incident: Incident, route: str) -> str:
        """Resolve the page, through the route that triggered it; returns a line for the timeline."""

    def change_event(self, route: str, summary: str, source: str, details: dict[str, Any]) -> str:
        """Tell PagerDuty what an automated action changed; returns a line for the timeline."""


class Chat(Protocol):
    """Posts to the incident channel (Slack in production); raises Transient or Rejected."""

    def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None, thread_ts: str | None = None
    ) -> tuple[str, str]:
        """Post a message (in a thread when thread_ts is given); returns (channel id, ts)."""

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """Replace a message."""


@dataclass(frozen=True)
class OnCall:
    """Someone on call now, as PagerDuty says."""

    user_id: str
    name: str
    email: str
    escalation_level: int


class PagerDirectory(Protocol):
    """Reads and annotates PagerDuty incidents (PagerDuty REST API v2)."""

    def incident_id(self, dedup_key: str) -> str | None:
        """PagerDuty's incident id for our dedup key, if it has one."""

    def incident_key(self, incident_id: str) -> str | None:
        """The incident_key (our dedup key) of a PagerDuty incident, if it has one."""

    def add_note(self, incident_id: str, text: str) -> None:
        """Add a note to a PagerDuty incident."""

    def on_call(self) -> list[OnCall]:
        """Who is on call now for the service (cached briefly)."""


@dataclass(frozen=True)
class QueueCounts:
    """How many messages one queue holds, by state, as a person asks "is anything stuck?"."""

    queue: str
    ready: int  # deliverable now (or waiting only for their session)
    scheduled: int  # due later: retries with backoff
    in_flight: int  # locked by a receiver right now
    dead_lettered: int


class QueueInspector(Protocol):
    """Reads the queues for the operator's view, and sends a dead letter again (Service Bus: peek the
    queue and its DLQ, receive the dead letter by sequence number, send a copy, complete it)."""

    def counts(self, queues: Sequence[str]) -> list[QueueCounts]:
        """Counts per queue by state, in the order asked."""

    def recent_dead_letters(self, queues: Sequence[str], limit: int) -> list[DeadLetter]:
        """Dead letters across these queues, newest first."""

    def find_dead_letters(self, message_id: str) -> list[DeadLetter]:
        """Every dead letter with this message id, in any queue, newest first."""

    def resend_dead_letter(self, queue: str, message_id: str, new_message_id: str) -> bool:
        """Send the dead letter again as a new message and take it off the dead letters, in one step.

        The new id keeps duplicate detection from dropping it as the original it copies. False if it
        is no longer among the dead letters (replayed meanwhile), and nothing is sent.
        """


@dataclass(frozen=True)
class OutboxBacklog:
    """Incidents whose outbox still holds effects: normal for a moment, stuck if old."""

    incidents: int
    oldest_updated_at: str | None


@runtime_checkable
class StatusQueries(Protocol):
    """What the status model reads from the store."""

    def open_incidents(self, limit: int) -> list[Incident]:
        """Incidents not resolved (open or acknowledged), oldest first."""

    def open_incident_count(self) -> int:
        """How many incidents are not resolved."""

    def outbox_backlog(self) -> OutboxBacklog:
        """Incidents whose outbox is not empty, and the oldest of them."""


@dataclass(frozen=True)
class IncidentCursor:
    """Where a page of the incident list ended: the last incident's opening time and id."""

    opened_at: str
    incident_id: str


@runtime_checkable
class IncidentPages(Protocol):
    """The incident list a page at a time, by keyset on (opened_at, id), so deep pages stay cheap."""

    def incidents_page(
        self,
        status: str | None,
        tenant: str | None,
        severity: str | None,
        after: IncidentCursor | None,
        limit: int,
    ) -> list[Incident]:
        """Newest first (ties by id), after the cursor when given."""
