"""Ports: what the flow needs from the outside world, shaped by their callers. Adapters: `shared.adapters`.

The store is cut the way Azure Table Storage will hold it:
- `IncidentRepository`: one incident with its signals and timeline, which can share a partition, so
  a commit is one atomic, ETag-conditional transaction (intake, the effect handlers, webhooks);
- `ExternalIds`: point lookups by another system's id, a partition of their own;
- `IncidentQueries`: reads across incidents (lists, the condition index for cross-tenant
  escalation, the outbox sweep), which on Table Storage are index entities in their own
  partitions, written before the incident and tolerated when a crash leaves them behind.
The queue is shaped like Service Bus: message_id duplicate detection, session_id per target,
scheduled delivery, dead-letter. Pagers and chats receive what was built for them, so a dry-run
records exactly what the real adapter would send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from shared.domain.actions import ActionRecord, Pause
from shared.domain.incidents import Incident, TimelineEntry
from shared.domain.signals import Signal


@dataclass(frozen=True)
class Versioned:
    """An incident as read, with the ETag a conditional write must present."""

    incident: Incident
    etag: str


class IncidentRepository(Protocol):
    """The incident aggregate: an incident with its signals and timeline; every write is conditional."""

    def open_incident(self, correlation_key: str) -> Versioned | None:
        """The open (not resolved) incident for a correlation key, if any."""

    def get(self, incident_id: str) -> Versioned | None:
        """An incident by id."""

    def commit(
        self,
        incident: Incident,
        etag: str | None,
        signals: Sequence[Signal] = (),
        timeline: Sequence[TimelineEntry] = (),
    ) -> str:
        """Write the incident with its new signals and timeline entries atomically; return the new ETag.

        etag None means create: raises Conflict if the incident id exists or its correlation key
        already has an open incident. Otherwise raises PreconditionFailed if the ETag is stale.
        If any signal's id is already stored, raises DuplicateSignal naming those ids (its
        `signal_ids`) and nothing is written. Intake folds a batch of signals into one commit, so
        on Table Storage the signals share the incident's partition and one transaction holds at
        most `MAX_SIGNALS_PER_COMMIT` of them.
        """

    def add_timeline(self, incident_id: str, entries: Sequence[TimelineEntry]) -> None:
        """Append history without touching the incident (no ETag: entries never conflict)."""

    def timeline(self, incident_id: str) -> list[TimelineEntry]:
        """Oldest first."""

    def record_informational(self, signal: Signal) -> bool:
        """Store a signal that opens no incident; False if it was already stored."""


class ExternalIds(Protocol):
    """Another system's id for one of ours (PagerDuty's incident, a resolved alert instance)."""

    def link_external(self, system: str, external_id: str, incident_id: str) -> None:
        """Remember that the external id names this incident."""

    def find_external(self, system: str, external_id: str) -> str | None:
        """Our incident id for the external id."""

    def find_externals(self, system: str, external_ids: Sequence[str]) -> dict[str, str]:
        """Our incident ids for those of the external ids that are known (one look-up for a batch)."""


class IncidentQueries(Protocol):
    """Reads across incidents: lists, the condition index, the outbox sweep, health."""

    def list_incidents(self, status: str | None, tenant: str | None, limit: int) -> list[Incident]:
        """Newest first."""

    def signals(self, incident_id: str | None, limit: int) -> list[Signal]:
        """Signals of one incident, or the informational ones when incident_id is None; newest first."""

    def open_tenants(self, condition_key: str, since: str) -> list[tuple[str, str]]:
        """(tenant, incident id) of open incidents of this condition, opened at or after `since`."""

    def with_pending_effects(self, older_than: str, limit: int) -> list[Versioned]:
        """Incidents whose outbox still holds effects written before `older_than` (for the sweeper)."""

    def ping(self) -> None:
        """Raise if the store cannot be reached."""


# A Table Storage transaction holds at most 100 operations: the incident, its signals, its timeline
# lines. Intake folds no more signals than this into one commit.
MAX_SIGNALS_PER_COMMIT = 40


class IncidentStore(IncidentRepository, ExternalIds, IncidentQueries, Protocol):
    """What one store adapter provides (SQLite locally); callers ask for the narrow part they use."""


MAX_MESSAGE_BYTES = 256 * 1024  # a queue message's body: Service Bus Standard tier's limit


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


@dataclass(frozen=True)
class PageEvent:
    """One Events API v2 request, less the routing key (a secret): what real and dry-run pagers send."""

    action: str  # "trigger" | "resolve"
    dedup_key: str
    payload: Mapping[str, Any] | None = None
    links: tuple[Mapping[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        """The request body as PagerDuty documents it, without `routing_key`."""
        body: dict[str, Any] = {"event_action": self.action, "dedup_key": self.dedup_key}
        if self.payload is not None:
            body["payload"] = dict(self.payload)
        if self.links:
            body["links"] = [dict(link) for link in self.links]
        return body


class EffectQueue(Protocol):
    """Sends effect messages; receiving is the Functions host's job (or the local runtime's)."""

    def send(self, messages: Sequence[QueueMessage]) -> None:
        """Enqueue; a message_id seen within the duplicate-detection window is dropped silently."""

    def dead_letter_message(self, message: QueueMessage, reason: str, description: str) -> None:
        """Straight to the dead letters: a message its sender knows can never succeed (Service Bus
        senders cannot write a DLQ, so there it is a queue of our own that /dr status also reads)."""

    def dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        """Dead-lettered messages, newest first."""


@dataclass(frozen=True)
class Received:
    """A message as received under a peek-lock; settle it with its lock_token."""

    queue: str
    body: bytes
    message_id: str
    session_id: str | None
    application_properties: Mapping[str, Any]
    content_type: str
    sequence_number: int
    delivery_count: int
    enqueued_at: datetime
    scheduled_at: datetime | None
    lock_token: str
    locked_until: datetime


@runtime_checkable
class QueueReceiver(Protocol):
    """Takes messages off the queues under a peek-lock and settles them: the Functions host's job in
    Azure, the local host's in `dr serve`."""

    def receive(self, queue: str) -> Received | None:
        """Lock and return the next deliverable message, if any."""

    def complete(self, received: Received) -> None:
        """Remove the message for good; LockLost if the lock expired meanwhile."""

    def abandon(self, received: Received) -> None:
        """Release the lock so the message is delivered again."""

    def dead_letter(self, received: Received, reason: str, description: str) -> None:
        """Move the message to the dead letters with a reason a person can read."""

    def renew_lock(self, received: Received) -> None:
        """Extend the lock by the lock duration from now; LockLost if it is gone."""


@runtime_checkable
class BatchReceiver(QueueReceiver, Protocol):
    """Receives a session's messages in one batch under one lock, for triggers of cardinality "many"."""

    def receive_batch(self, queue: str, max_messages: int) -> list[Received]:
        """Lock the next session and up to `max_messages` of its messages, in order."""

    def complete_batch(self, batch: Sequence[Received]) -> None:
        """Remove them all and release the session; LockLost if the lock expired meanwhile."""

    def abandon_batch(self, batch: Sequence[Received]) -> None:
        """Release them all (they come again) and the session."""


class Pager(Protocol):
    """Pages the on-call engineer (PagerDuty Events API v2 in production).

    Calls raise `shared.errors.Transient` (try again later) or `Rejected` (never will work).
    """

    def route_for(self, incident: Incident) -> str:
        """The routing selector for an incident (tenant, severity); Rejected if none is configured."""

    def send(self, event: PageEvent, route: str) -> str:
        """Send a built event through a route (a resolve through the route that triggered); returns
        a line for the timeline."""

    def change_event(self, route: str, summary: str, source: str, details: dict[str, Any]) -> str:
        """Send a change event (what an action changed) through a route; returns a timeline line."""


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
    """Reads PagerDuty incidents and sets their status (PagerDuty REST API v2)."""

    def incident_key(self, incident_id: str) -> str | None:
        """The incident_key (our dedup key) of a PagerDuty incident, if it has one."""

    def add_note(self, incident_id: str, text: str) -> None:
        """Add a note to a PagerDuty incident (by PagerDuty's id)."""

    def incident_id(self, dedup_key: str) -> str | None:
        """PagerDuty's incident for our dedup key (its incident_key), if it has opened one."""

    def acknowledge(self, incident_id: str) -> None:
        """PUT the incident (by PagerDuty's id) to acknowledged."""

    def resolve(self, incident_id: str) -> None:
        """PUT the incident (by PagerDuty's id) to resolved."""


@dataclass(frozen=True)
class QueueCounts:
    """How many messages one queue holds, by state, as a person asks "is anything stuck?"."""

    queue: str
    ready: int  # deliverable now (or waiting only for their session)
    scheduled: int  # due later: retries with backoff
    in_flight: int  # locked by a receiver right now
    dead_lettered: int


@runtime_checkable
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


# A headline's title is cut as PagerDuty cuts a summary: the status clips it further anyway.
TITLE_CHARS = 1024


@dataclass(frozen=True)
class IncidentHeadline:
    """What the status shows of one open incident: no signals, outbox or history to read or parse."""

    id: str
    title: str
    severity: str  # "sev1" … "sev4"
    status: str
    tenant: str
    component: str
    environment: str
    opened_at: str
    signal_count: int
    all_tenants: bool = False
    acknowledged_at: str | None = None

    @classmethod
    def of(cls, incident: Incident) -> IncidentHeadline:
        """The headline of a whole incident."""
        return cls(
            id=incident.id,
            title=incident.title[:TITLE_CHARS],
            severity=incident.severity.label,
            status=str(incident.status),
            tenant=incident.tenant,
            component=incident.component,
            environment=incident.environment,
            opened_at=incident.opened_at,
            signal_count=incident.signal_count,
            all_tenants=incident.all_tenants,
            acknowledged_at=incident.acknowledged_at,
        )

    @property
    def rank(self) -> tuple[str, str, str]:
        """Most severe first, then oldest, then by id ("sev1" < "sev2" as text too)."""
        return (self.severity, self.opened_at, self.id)


@dataclass(frozen=True)
class OpenCount:
    """How many incidents of one component, tenant and severity are not resolved."""

    component: str
    tenant: str
    severity: str
    count: int


@dataclass(frozen=True)
class OpenOverview:
    """Every open incident counted; of each component and tenant only the first few, worst and oldest."""

    counts: tuple[OpenCount, ...]  # by component, tenant, severity
    shown: tuple[IncidentHeadline, ...]  # by rank

    @property
    def total(self) -> int:
        """All open incidents, shown or not."""
        return sum(c.count for c in self.counts)

    @classmethod
    def of(cls, headlines: Iterable[IncidentHeadline], per_group: int, limit: int) -> OpenOverview:
        """Count them all, keep the `per_group` first of each component and tenant, at most `limit`."""
        counts: dict[tuple[str, str, str], int] = {}
        groups: dict[tuple[str, str], list[IncidentHeadline]] = {}
        for h in headlines:
            key = (h.component, h.tenant, h.severity)
            counts[key] = counts.get(key, 0) + 1
            groups.setdefault((h.component, h.tenant), []).append(h)
        shown = [h for group in groups.values() for h in sorted(group, key=lambda h: h.rank)[:per_group]]
        return cls(
            tuple(OpenCount(*key, n) for key, n in sorted(counts.items())),
            tuple(sorted(shown, key=lambda h: h.rank)[:limit]),
        )


@runtime_checkable
class StatusQueries(Protocol):
    """What the status model reads from the store."""

    def open_overview(self, per_group: int, limit: int) -> OpenOverview:
        """Incidents not resolved, counted per component, tenant and severity; shown: the `per_group`
        most severe, then oldest, of each component and tenant, at most `limit` in all, by rank."""

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


@dataclass(frozen=True)
class VersionedAction:
    """An action record and the version a conditional write must match."""

    record: ActionRecord
    version: int


class ActionStore(Protocol):
    """Action records, each change one conditional write together with its timeline lines."""

    def create_action(
        self, record: ActionRecord, timeline: Sequence[TimelineEntry]
    ) -> VersionedAction | None:
        """Insert the record (version 1) and its lines; None when a record of that id exists already."""
        ...

    def get_action(self, action_id: str) -> VersionedAction | None:
        """The record and its version."""
        ...

    def save_action(
        self, record: ActionRecord, version: int, timeline: Sequence[TimelineEntry]
    ) -> VersionedAction:
        """Write the record if it is still at `version`; PreconditionFailed when another writer won."""
        ...

    def list_actions(self, state: str | None, incident_id: str | None, limit: int) -> list[ActionRecord]:
        """Newest first."""
        ...

    def actions_due(self, before: str, limit: int) -> list[VersionedAction]:
        """Actions whose `wake_at` is set and no later than `before`, oldest due first: the wakes a
        sweep sends again, and final records whose escalation is still pending."""
        ...

    def actions_on(self, resource: str, since: str) -> list[ActionRecord]:
        """Actions on one resource planned since a time (cooldowns, the circuit breaker, one at a time)."""
        ...

    def started_since(self, since: str) -> list[ActionRecord]:
        """Actions started (running or after) since a time, for the hourly caps."""
        ...

    def start_action(
        self,
        record: ActionRecord,
        version: int,
        timeline: Sequence[TimelineEntry],
        since: str,
        admit: Callable[[Sequence[ActionRecord]], str | None],
    ) -> VersionedAction:
        """`save_action` for a start the guardrails must still allow as of this write: `admit` sees
        what started since `since`, and no other start, nor a pause, comes between its reading and
        the write; StartRefused with its reason when it refuses."""
        ...


@runtime_checkable
class ActiveActions(Protocol):
    """Actions in any of several states in one read (the status asks for three)."""

    def actions_in(self, states: Sequence[str], limit: int) -> list[ActionRecord]:
        """Newest first, as list_actions."""
        ...


class AutomationSwitch(Protocol):
    """The kill switch, stored so that every instance sees it."""

    def pauses(self) -> list[Pause]:
        """Every scope paused now."""
        ...

    def pause(self, pause: Pause) -> None:
        """Pause a scope (again: the newest reason wins)."""
        ...

    def resume(self, tenant: str) -> bool:
        """Resume a scope; False when it was not paused."""
        ...


class ActionBook(ActionStore, AutomationSwitch, Protocol):
    """What one action-store adapter provides: the records and the kill switch."""


@runtime_checkable
class SelfRepairing(Protocol):
    """A store whose writes span partitions settles what a crash between them left (Table Storage)."""

    def repair(self) -> int:
        """Settle what interrupted writes left behind; how many incidents it settled."""
