"""Hand-written in-memory adapters for the ports, which record what they were asked (no mocks).

Each fake keeps the semantics its port promises (and that `tests/adapters/test_store_contract.py`
holds FakeStore to against the SQLite store), plus switches a test throws to script a failure:
a lost race, a queue that is down, a PagerDuty 429, a Slack 400.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.domain.effects import Effect
from shared.domain.incidents import Incident, TimelineEntry
from shared.domain.signals import Signal
from shared.errors import Conflict, DuplicateSignal, PreconditionFailed, Rejected
from shared.ports import (
    Chat,
    DeadLetter,
    EffectQueue,
    IncidentStore,
    PageEvent,
    Pager,
    PagerDirectory,
    QueueMessage,
    Versioned,
)


class _Script:
    """Errors to raise on the next calls, in order."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    def add(self, times: int, error: Exception) -> None:
        self.errors.extend([error] * times)

    def pop(self) -> Exception | None:
        return self.errors.pop(0) if self.errors else None


# ---------------------------------------------------------------------------------------- store


@dataclass
class _StoredSignal:
    signal: Signal
    incident_id: str | None
    received_at: str
    seq: int


class FakeStore:
    """IncidentStore in memory, with the SQLite store's ETag semantics.

    What is stored goes through the stored form (`to_record` / `to_dict`) and back, as with a real
    backend, so a field that does not survive storage fails here too. `commits` lists every
    incident version written, oldest first, so a test can see the states it went through.
    """

    def __init__(self) -> None:
        self._incidents: dict[str, Versioned] = {}
        self._signals: dict[str, _StoredSignal] = {}
        self._timeline: dict[str, list[TimelineEntry]] = {}
        self._external: dict[tuple[str, str], str] = {}
        self._etags = itertools.count(1)
        self._seq = itertools.count(1)
        self._races: list[Callable[[Incident], Incident]] = []
        self.commits: list[Incident] = []
        self.races_lost = 0
        self.reachable = True

    # -- switches

    def lose_races(self, times: int = 1, rival: Callable[[Incident], Incident] | None = None) -> None:
        """The next `times` updates lose a race: another writer commits `rival(stored)` just before each."""
        self._races.extend([rival or (lambda incident: incident)] * times)

    def put(self, incident: Incident) -> str:
        """Store an incident as it is (a test's starting point); returns its ETag."""
        return self.commit(incident, None)

    # -- IncidentRepository

    def open_incident(self, correlation_key: str) -> Versioned | None:
        """The open incident for a key."""
        return next(
            (
                v
                for v in self._incidents.values()
                if v.incident.correlation_key == correlation_key and v.incident.is_open
            ),
            None,
        )

    def get(self, incident_id: str) -> Versioned | None:
        """An incident by id."""
        return self._incidents.get(incident_id)

    def commit(
        self,
        incident: Incident,
        etag: str | None,
        signals: Sequence[Signal] = (),
        timeline: Sequence[TimelineEntry] = (),
    ) -> str:
        """Write incident, signals and timeline all or nothing, conditional on the ETag."""
        if etag is not None and self._races and incident.id in self._incidents:
            rival = self._races.pop(0)
            self.races_lost += 1
            stored = self._incidents[incident.id]
            self._write(rival(stored.incident))
        ids = [s.id for s in signals]
        known = {i for i in ids if i in self._signals or ids.count(i) > 1}
        if known:
            raise DuplicateSignal(*sorted(known))
        if etag is None:
            if incident.id in self._incidents:
                raise Conflict(f"incident {incident.id} exists")
            if incident.is_open and self.open_incident(incident.correlation_key) is not None:
                raise Conflict(f"an open incident for {incident.correlation_key!r} exists")
        else:
            current = self._incidents.get(incident.id)
            if current is None or current.etag != etag:
                raise PreconditionFailed(f"incident {incident.id} changed since it was read")
            if incident.is_open and not current.incident.is_open:
                other = self.open_incident(incident.correlation_key)
                if other is not None and other.incident.id != incident.id:
                    raise Conflict(f"an open incident for {incident.correlation_key!r} exists")
        for signal in signals:
            self._add_signal(signal, incident.id, incident.updated_at)
        new_etag = self._write(incident)
        self._timeline.setdefault(incident.id, []).extend(timeline)
        return new_etag

    def add_timeline(self, incident_id: str, entries: Sequence[TimelineEntry]) -> None:
        """Append history."""
        self._timeline.setdefault(incident_id, []).extend(entries)

    def timeline(self, incident_id: str) -> list[TimelineEntry]:
        """In time order; lines of the same time in the order written (sorted() is stable)."""
        return sorted(self._timeline.get(incident_id, []), key=lambda e: e.at)

    def record_informational(self, signal: Signal) -> bool:
        """Store a signal without an incident; False if already stored."""
        if signal.id in self._signals:
            return False
        self._add_signal(signal, None, signal.occurred_at)
        return True

    # -- ExternalIds

    def link_external(self, system: str, external_id: str, incident_id: str) -> None:
        """Insert or replace the link."""
        self._external[(system, external_id)] = incident_id

    def find_external(self, system: str, external_id: str) -> str | None:
        """Our incident id for the external id."""
        return self._external.get((system, external_id))

    def find_externals(self, system: str, external_ids: Sequence[str]) -> dict[str, str]:
        """Our incident ids for the known ones."""
        return {i: self._external[(system, i)] for i in external_ids if (system, i) in self._external}

    # -- IncidentQueries

    def list_incidents(self, status: str | None, tenant: str | None, limit: int) -> list[Incident]:
        """Newest first (by opening time, then id), optionally filtered."""
        found = [
            v.incident
            for v in self._incidents.values()
            if (not status or v.incident.status == status) and (not tenant or v.incident.tenant == tenant)
        ]
        found.sort(key=lambda i: i.id)
        found.sort(key=lambda i: i.opened_at, reverse=True)
        return found[:limit]

    def signals(self, incident_id: str | None, limit: int) -> list[Signal]:
        """Newest first."""
        found = [s for s in self._signals.values() if s.incident_id == incident_id]
        found.sort(key=lambda s: (s.received_at, s.seq), reverse=True)
        return [s.signal for s in found[:limit]]

    def open_tenants(self, condition_key: str, since: str) -> list[tuple[str, str]]:
        """(tenant, incident id) of open incidents of this condition opened since `since`, oldest first."""
        found = [
            v.incident
            for v in self._incidents.values()
            if v.incident.condition_key == condition_key
            and v.incident.is_open
            and v.incident.opened_at >= since
            and v.incident.tenant
        ]
        found.sort(key=lambda i: i.opened_at)
        return [(i.tenant, i.id) for i in found]

    def with_pending_effects(self, older_than: str, limit: int) -> list[Versioned]:
        """Incidents whose outbox is not empty, last updated before `older_than`, oldest first."""
        found = [
            v for v in self._incidents.values() if v.incident.outbox and v.incident.updated_at < older_than
        ]
        found.sort(key=lambda v: v.incident.updated_at)
        return found[:limit]

    def ping(self) -> None:
        """Raise if the test made the store unreachable."""
        if not self.reachable:
            raise ConnectionError("the fake store is unreachable")

    # -- internals

    def _write(self, incident: Incident) -> str:
        stored = Incident.from_record(json.loads(json.dumps(incident.to_record())))
        etag = f'W/"{next(self._etags)}"'
        self._incidents[incident.id] = Versioned(stored, etag)
        self.commits.append(stored)
        return etag

    def _add_signal(self, signal: Signal, incident_id: str | None, at: str) -> None:
        stored = Signal.from_dict(json.loads(json.dumps(signal.to_dict())))
        self._signals[signal.id] = _StoredSignal(stored, incident_id, at, next(self._seq))


# ---------------------------------------------------------------------------------------- queue


class FakeQueue:
    """EffectQueue in memory: `sent` holds what was accepted, `dead` what was dead-lettered.

    Duplicate detection by (queue, message_id) as Service Bus does it, with a window that never
    ends (a test is shorter than ten minutes). `down = True` makes `send` raise and accept nothing.
    """

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.sent: list[QueueMessage] = []
        self.dropped: list[QueueMessage] = []  # duplicates, dropped silently
        self.dead: list[DeadLetter] = []
        self.down = False
        self.send_calls = 0
        self._seen: set[tuple[str, str]] = set()
        self._taken: dict[str, int] = {}
        self._clock = clock or (lambda: datetime.now(UTC))

    def send(self, messages: Sequence[QueueMessage]) -> None:
        """Accept the batch, all or nothing; a message id seen before is dropped."""
        self.send_calls += 1
        if self.down:
            raise ConnectionError("the fake queue is down")
        for message in messages:
            key = (message.queue, message.message_id)
            if key in self._seen:
                self.dropped.append(message)
                continue
            self._seen.add(key)
            self.sent.append(message)

    def dead_letter_message(self, message: QueueMessage, reason: str, description: str) -> None:
        """Record a dead letter."""
        self.dead.append(
            DeadLetter(
                queue=message.queue,
                message_id=message.message_id,
                session_id=message.session_id,
                body=message.body,
                reason=reason,
                description=description,
                delivery_count=0,
                dead_lettered_at=self._clock().isoformat(),
            )
        )

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        return [d for d in reversed(self.dead) if d.queue == queue][:limit]

    # -- for assertions

    def messages(self, queue: str) -> list[QueueMessage]:
        """What was accepted on one queue, oldest first."""
        return [m for m in self.sent if m.queue == queue]

    def effects(self, queue: str) -> list[Effect]:
        """The effects carried by what was accepted on one queue, oldest first."""
        return [Effect.from_dict(json.loads(m.body)) for m in self.messages(queue)]

    def take(self, queue: str) -> list[QueueMessage]:
        """What was accepted on one queue since the last take (to deliver by hand); `sent` keeps it all."""
        messages = self.messages(queue)
        start, self._taken[queue] = self._taken.get(queue, 0), len(messages)
        return messages[start:]


# ---------------------------------------------------------------------------------------- pager


class FakePager:
    """Pager that records each event it took in `sent` as (event, route), and refused calls in `failed`.

    `route` is what `route_for` answers for every incident (None: nothing configured, Rejected).
    `during_send`, if set, runs inside the call, before PagerDuty "answers": the world moving on
    while a request is in flight.
    """

    def __init__(self, route: str | None = "default#fake") -> None:
        self.route = route
        self.sent: list[tuple[PageEvent, str]] = []
        self.failed: list[tuple[PageEvent, str, Exception]] = []
        self.routed: list[str] = []  # incident ids route_for was asked about
        self.changes: list[tuple[str, str, str, dict[str, Any]]] = []  # (route, summary, source, details)
        self.during_send: Callable[[PageEvent, str], None] | None = None
        self._script = _Script()

    def fail_next(self, times: int, error: Exception) -> None:
        """The next `times` sends raise `error` (Transient or Rejected) and take nothing."""
        self._script.add(times, error)

    def route_for(self, incident: Incident) -> str:
        """The configured route, or Rejected."""
        self.routed.append(incident.id)
        if self.route is None:
            raise Rejected("no PagerDuty routing key fits this incident (fake)")
        return self.route

    def send(self, event: PageEvent, route: str) -> str:
        """Record the event, or raise the next scripted error."""
        if self.during_send is not None:
            self.during_send(event, route)
        error = self._script.pop()
        if error is not None:
            self.failed.append((event, route, error))
            raise error
        self.sent.append((event, route))
        return f"PagerDuty (fake): {event.action} {event.dedup_key} via {route}"

    def change_event(self, route: str, summary: str, source: str, details: dict[str, Any]) -> str:
        """Record the change event, or raise the next scripted error."""
        error = self._script.pop()
        if error is not None:
            raise error
        self.changes.append((route, summary, source, details))
        return f"PagerDuty (fake): change event '{summary[:80]}'"


# ---------------------------------------------------------------------------------------- chat


@dataclass(frozen=True)
class Post:
    """A chat.postMessage the fake took."""

    channel: str  # as asked (a name or an id)
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    ts: str  # the ts the fake answered
    channel_id: str  # the channel id the fake answered


@dataclass(frozen=True)
class Update:
    """A chat.update the fake took."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]


class FakeChat:
    """Chat that records `posts` and `updates`, answers ts "1700000000.000001", … in order.

    `channel_ids` maps a channel name to the id Slack would answer (unmapped: answered as given).
    """

    def __init__(self, channel_ids: dict[str, str] | None = None) -> None:
        self.channel_ids = dict(channel_ids or {})
        self.posts: list[Post] = []
        self.updates: list[Update] = []
        self.failed: list[tuple[str, Exception]] = []  # (operation, error)
        self._script = _Script()
        self._ts = itertools.count(1)

    def fail_next(self, times: int, error: Exception) -> None:
        """The next `times` calls (post or update) raise `error` and take nothing."""
        self._script.add(times, error)

    def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None, thread_ts: str | None = None
    ) -> tuple[str, str]:
        """Record a post; returns (channel id, ts)."""
        self._raise_if_scripted("chat.postMessage")
        channel_id = self.channel_ids.get(channel, channel)
        ts = f"1700000000.{next(self._ts):06d}"
        self.posts.append(Post(channel, text, blocks, thread_ts, ts, channel_id))
        return channel_id, ts

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """Record an update."""
        self._raise_if_scripted("chat.update")
        self.updates.append(Update(channel, ts, text, blocks))

    def cards(self) -> list[Post]:
        """Top-level posts."""
        return [p for p in self.posts if p.thread_ts is None]

    def replies(self, ts: str) -> list[Post]:
        """Posts in the thread of `ts`."""
        return [p for p in self.posts if p.thread_ts == ts]

    def _raise_if_scripted(self, operation: str) -> None:
        error = self._script.pop()
        if error is not None:
            self.failed.append((operation, error))
            raise error


# ---------------------------------------------------------------------------------------- directory


class FakeDirectory:
    """PagerDirectory over a dict of PagerDuty incident id → incident_key; records what it was asked."""

    def __init__(self, keys: dict[str, str] | None = None) -> None:
        self.keys = dict(keys or {})
        self.asked: list[str] = []
        self.notes: list[tuple[str, str]] = []
        self.statuses: list[tuple[str, str]] = []  # (PagerDuty incident id, status) of each PUT
        self._script = _Script()

    def fail_next(self, times: int, error: Exception) -> None:
        """The next `times` look-ups raise `error`."""
        self._script.add(times, error)

    def add_note(self, incident_id: str, text: str) -> None:
        """Record the note."""
        error = self._script.pop()
        if error is not None:
            raise error
        self.notes.append((incident_id, text))

    def incident_key(self, incident_id: str) -> str | None:
        """The incident_key PagerDuty holds, if any."""
        self.asked.append(incident_id)
        error = self._script.pop()
        if error is not None:
            raise error
        return self.keys.get(incident_id)

    def incident_id(self, dedup_key: str) -> str | None:
        """PagerDuty's id of the incident with this incident_key, if any."""
        error = self._script.pop()
        if error is not None:
            raise error
        return next((pd for pd, key in self.keys.items() if key == dedup_key), None)

    def acknowledge(self, incident_id: str) -> None:
        """Record the acknowledgement, or raise the next scripted error."""
        self._set(incident_id, "acknowledged")

    def resolve(self, incident_id: str) -> None:
        """Record the resolve, or raise the next scripted error."""
        self._set(incident_id, "resolved")

    def _set(self, incident_id: str, status: str) -> None:
        error = self._script.pop()
        if error is not None:
            raise error
        self.statuses.append((incident_id, status))


# Each fake is held to its port by mypy (tests/fakes.py is in [tool.mypy] files).
_store: IncidentStore = FakeStore()
_queue: EffectQueue = FakeQueue()
_pager: Pager = FakePager()
_chat: Chat = FakeChat()
_directory: PagerDirectory = FakeDirectory()
