"""IncidentStore, StatusQueries and IncidentPages on Azure Table Storage (partitions: azure_tables.md).

An incident, its open-pointer row, its signals and its timeline share the partition of its
correlation key, so a commit is one ETag-conditional transaction. Everything read across incidents
lives in index partitions: a status row per live incident (open, or with effects in its outbox)
written as an unconfirmed intent before the commit and confirmed after it, the newest-first list,
the id → key map, the global signal-id claims. Readers verify what is unconfirmed against the
incident; `repair()` settles what a crash between two partitions left.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from shared.adapters.azure_tables_client import (
    Sequencer,
    TableCounter,
    TransactionFailed,
    best_effort,
    body_properties,
    delete_entity,
    escape_key,
    etag_of,
    get_entity,
    if_match,
    inverted,
    line_entities,
    prefix_range,
    query,
    read_body,
    submit,
    timeline_of,
    translated_errors,
)
from shared.domain.incidents import Incident, TimelineEntry
from shared.domain.signals import Signal
from shared.errors import Conflict, DuplicateSignal, PreconditionFailed
from shared.ports import IncidentCursor, IncidentHeadline, OpenOverview, OutboxBacklog, Versioned

log = logging.getLogger(__name__)

IDS = "incident-ids"  # RowKey incident id → its correlation key
LIST = "incident-list"  # RowKey inverted opening time | id: the newest-first list
STATUS = "incident-status"  # RowKey id: a copy of each incident open or with a pending outbox
CLAIMS = "signal-ids"  # RowKey signal id → the row that holds it: one signal, stored once anywhere
INFORMATIONAL = "informational"  # RowKey inverted time | inverted sequence | id
NOTES = "actions"  # action records and timeline lines written outside a commit (add_timeline)
OPEN_ROW = "open"
INCIDENT_ROWS = "incident|"
SIGNAL_ROWS = "signal|"
HEADLINE = "headline"  # status rows: the IncidentHeadline as JSON
# Filter comparisons per query are limited (15 on Azure): look duplicates up in groups.
_OR_GROUP = 14
# An unconfirmed status row younger than this may be a commit in flight: repair() leaves it.
REPAIR_AFTER = timedelta(minutes=1)


def key_partition(correlation_key: str) -> str:
    """The partition of a correlation key's incidents."""
    return "key|" + escape_key(correlation_key)


def incident_row(incident_id: str) -> str:
    return INCIDENT_ROWS + escape_key(incident_id)


def timeline_rows(incident_id: str) -> str:
    """RowKey prefix of an incident's timeline entities in its key partition."""
    return "timeline|" + escape_key(incident_id) + "|"


def note_rows(incident_id: str) -> str:
    """RowKey prefix of an incident's lines in the notes partition (add_timeline, actions)."""
    return "line|" + escape_key(incident_id) + "|"


def list_row(incident: Incident) -> str:
    return inverted(incident.opened_at) + "|" + escape_key(incident.id)


def _listed(incident: Incident) -> dict[str, Any]:
    """The list row: where the incident is, and what a page filters on."""
    return {
        "PartitionKey": LIST,
        "RowKey": list_row(incident),
        "key": incident.correlation_key,
        "status": str(incident.status),
        "tenant": incident.tenant,
        "severity": incident.severity.label,
    }


def _incident_props(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "status": str(incident.status),
        "tenant": incident.tenant,
        "severity": incident.severity.label,
        "condition_key": incident.condition_key,
        "opened_at": incident.opened_at,
        "updated_at": incident.updated_at,
        "has_outbox": bool(incident.outbox),
        **body_properties(incident.to_record()),
    }


def _in_status(incident: Incident) -> bool:
    """Held in the status partition: open, or with effects not yet confirmed sent."""
    return incident.is_open or bool(incident.outbox)


@dataclass(frozen=True)
class _Live:
    """A status row as readers use it, verified against the incident when it was unconfirmed."""

    id: str
    status: str
    tenant: str
    condition_key: str
    opened_at: str
    updated_at: str
    has_outbox: bool
    versioned: Versioned | None  # None when only the row's fields were read


class TableIncidentStore:
    """Implements `shared.ports.IncidentStore`, `StatusQueries` and `IncidentPages` on one table."""

    def __init__(
        self,
        client: Any,
        counter: TableCounter | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.counter = counter
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sequencer = Sequencer()
        self._recent: _Lru[tuple[str, str], Incident] = _Lru(2048)
        self._keys: _Lru[str, str] = _Lru(8192)  # incident id → correlation key, never changes
        self._claimed: _Lru[str, tuple[str, str]] = _Lru(8192)  # signal id → owner row
        self._pool: ThreadPoolExecutor | None = None

    # --- IncidentRepository ---------------------------------------------------------------------

    def open_incident(self, correlation_key: str) -> Versioned | None:
        """One partition query: the key's incident rows that are not resolved."""
        low, high = prefix_range(INCIDENT_ROWS)
        rows = self._query(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high and status ne 'resolved'",
            {"pk": key_partition(correlation_key), "low": low, "high": high},
            top=1,
        )
        return self._versioned(rows[0]) if rows else None

    def get(self, incident_id: str) -> Versioned | None:
        """Through the id → key row (cached: it never changes)."""
        key = self._key_of(incident_id)
        if key is None:
            return None
        entity = get_entity(self.client, key_partition(key), incident_row(incident_id), self.counter)
        return self._versioned(entity) if entity is not None else None

    def commit(
        self,
        incident: Incident,
        etag: str | None,
        signals: Sequence[Signal] = (),
        timeline: Sequence[TimelineEntry] = (),
    ) -> str:
        """Intent in the status partition, then one transaction in the key partition, then confirm."""
        ids = [s.id for s in signals]
        repeated = {i for i in ids if ids.count(i) > 1}
        if repeated:
            raise DuplicateSignal(*sorted(repeated))
        pk = key_partition(incident.correlation_key)
        was_open = self._was_open(incident, etag, pk)
        elsewhere = self._claim(signals, pk)
        if elsewhere:
            raise DuplicateSignal(*sorted(elsewhere))
        intent = self._write_intent(incident)
        if etag is None:
            self._upsert(
                {"PartitionKey": IDS, "RowKey": escape_key(incident.id), "key": incident.correlation_key}
            )
            self._upsert(_listed(incident))
        operations = self._operations(incident, etag, was_open, pk, signals, timeline)
        try:
            try:
                results = submit(self.client, operations, self.counter)
            except TransactionFailed as failed:
                if not (failed.status == 404 and operations[failed.index][0] == "delete"):
                    raise
                # The key's open row is gone already (a repair, an older release): nothing to delete.
                del operations[failed.index]
                results = submit(self.client, operations, self.counter)
        except TransactionFailed as failed:
            if failed.index < len(signals):
                raise DuplicateSignal(*sorted(self._stored_signals(pk, ids))) from failed
            if etag is None:
                raise Conflict(f"incident {incident.id} or an open one for its key exists") from failed
            if failed.index == len(signals) or failed.status == 412:
                raise PreconditionFailed(f"incident {incident.id} changed since it was read") from failed
            raise Conflict(f"incident {incident.id}: its key has another open incident") from failed
        new_etag = etag_of(results[len(signals)])
        previous = self._recent.get((incident.id, etag)) if etag else None
        if etag is not None and (previous is None or _listed(previous) != _listed(incident)):
            best_effort(lambda: self._upsert(_listed(incident)), log, f"list row of {incident.id}")
        best_effort(lambda: self._confirm(incident, new_etag, intent), log, f"status row of {incident.id}")
        self._keys.put(incident.id, incident.correlation_key)
        self._recent.put((incident.id, new_etag), incident)
        return new_etag

    def add_timeline(self, incident_id: str, entries: Sequence[TimelineEntry]) -> None:
        """Lines in the notes partition: no look-up of the incident's key, never a conflict."""
        if entries:
            submit(
                self.client,
                [
                    ("create", e)
                    for e in line_entities(NOTES, note_rows(incident_id), entries, self.sequencer)
                ],
                self.counter,
            )

    def timeline(self, incident_id: str) -> list[TimelineEntry]:
        """Lines of the commits and of the notes partition, by time, then as written."""
        found = self._lines(NOTES, note_rows(incident_id))
        key = self._key_of(incident_id)
        if key is not None:
            found += self._lines(key_partition(key), timeline_rows(incident_id))
        return [line for *_, line in sorted(found, key=lambda f: f[:3])]

    def record_informational(self, signal: Signal) -> bool:
        """Claim the id, then store the signal in the informational partition."""
        row = f"{inverted(signal.occurred_at)}|{inverted(self.sequencer.next())}|{escape_key(signal.id)}"
        if self._claim([signal], INFORMATIONAL, row):
            return False
        entity = {
            "PartitionKey": INFORMATIONAL,
            "RowKey": row,
            "received_at": signal.occurred_at,
            **body_properties(signal.to_dict()),
        }
        with translated_errors(self.counter):
            self.client.create_entity(entity)
        return True

    # --- ExternalIds ----------------------------------------------------------------------------

    def link_external(self, system: str, external_id: str, incident_id: str) -> None:
        """Insert or replace, in the system's partition."""
        self._upsert(
            {
                "PartitionKey": "external|" + escape_key(system),
                "RowKey": escape_key(external_id),
                "incident_id": incident_id,
            }
        )

    def find_external(self, system: str, external_id: str) -> str | None:
        """A point read."""
        entity = get_entity(
            self.client, "external|" + escape_key(system), escape_key(external_id), self.counter
        )
        return str(entity["incident_id"]) if entity is not None else None

    def find_externals(self, system: str, external_ids: Sequence[str]) -> dict[str, str]:
        """One query of the system's partition per group of ids."""
        ids = list(dict.fromkeys(external_ids))
        found: dict[str, str] = {}
        for start in range(0, len(ids), _OR_GROUP):
            group = ids[start : start + _OR_GROUP]
            params = {
                "pk": "external|" + escape_key(system),
                **{f"r{n}": escape_key(i) for n, i in enumerate(group)},
            }
            where = " or ".join(f"RowKey eq @r{n}" for n in range(len(group)))
            # The SDK substitutes a parameter only where it stands between spaces: "( … )".
            rows = self._query(
                f"PartitionKey eq @pk and ( {where} )", params, select=["RowKey", "incident_id"]
            )
            by_row = {escape_key(i): i for i in group}
            found.update((by_row[r["RowKey"]], str(r["incident_id"])) for r in rows)
        return found

    # --- IncidentQueries ------------------------------------------------------------------------

    def list_incidents(self, status: str | None, tenant: str | None, limit: int) -> list[Incident]:
        """The first page of `incidents_page`."""
        return self.incidents_page(status, tenant, None, None, limit)

    def signals(self, incident_id: str | None, limit: int) -> list[Signal]:
        """Newest first: the informational partition in RowKey order, or one incident's signal rows."""
        if incident_id is None:
            rows = self._query("PartitionKey eq @pk", {"pk": INFORMATIONAL}, top=limit)
            return [Signal.from_dict(read_body(r)) for r in rows]
        key = self._key_of(incident_id)
        if key is None:
            return []
        low, high = prefix_range(SIGNAL_ROWS)
        rows = self._query(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high and incident_id eq @id",
            {"pk": key_partition(key), "low": low, "high": high, "id": incident_id},
        )
        rows.sort(key=lambda r: (r["received_at"], r["seq"]), reverse=True)
        return [Signal.from_dict(read_body(r)) for r in rows[:limit]]

    def open_tenants(self, condition_key: str, since: str) -> list[tuple[str, str]]:
        """From the status partition, filtered on the server."""
        live = self._live(
            "condition_key eq @c and opened_at ge @since and status ne 'resolved' and tenant ne ''",
            {"c": condition_key, "since": since},
            lambda e: e.condition_key == condition_key and e.opened_at >= since and bool(e.tenant),
            fields=("condition_key", "opened_at", "tenant"),
        )
        live.sort(key=lambda e: e.opened_at)
        return [(e.tenant, e.id) for e in live]

    def with_pending_effects(self, older_than: str, limit: int) -> list[Versioned]:
        """From the status partition; an ETag read from a copy may be stale (the sweeper re-reads)."""
        live = self._live(
            "has_outbox eq true and updated_at lt @t",
            {"t": older_than},
            lambda e: e.has_outbox and e.updated_at < older_than,
            bodies=True,
        )
        live.sort(key=lambda e: e.updated_at)
        return [e.versioned for e in live[:limit] if e.versioned is not None]

    def ping(self) -> None:
        """Raise if the table cannot be read."""
        get_entity(self.client, IDS, "ping", self.counter)

    # --- StatusQueries --------------------------------------------------------------------------

    def open_incidents(self, limit: int) -> list[Incident]:
        """One query of the status partition (copies), oldest first."""
        live = self._live("status ne 'resolved'", {}, lambda e: e.status != "resolved", bodies=True)
        live.sort(key=lambda e: (e.opened_at, e.id))
        return [e.versioned.incident for e in live[:limit] if e.versioned is not None]

    def open_overview(self, per_group: int, limit: int) -> OpenOverview:
        """One query of the status partition selecting the headline property, no bodies; a row
        unconfirmed, or written before rows carried headlines, is read through to its incident."""
        select = ["RowKey", "id", "key", "confirmed", HEADLINE]
        rows = self._query("PartitionKey eq @pk and status ne 'resolved'", {"pk": STATUS}, select=select)
        current = [r for r in rows if r.get("confirmed") and r.get(HEADLINE)]
        headlines = [_headline(r) for r in current]
        stale = [r for r in rows if not (r.get("confirmed") and r.get(HEADLINE))]
        for versioned in self._pool_map(self._read_status_truth, stale):
            if versioned is not None and versioned.incident.is_open:
                headlines.append(IncidentHeadline.of(versioned.incident))
        return OpenOverview.of(headlines, per_group, limit)

    def open_incident_count(self) -> int:
        """One query of the status partition, keys only."""
        return len(self._live("status ne 'resolved'", {}, lambda e: e.status != "resolved"))

    def outbox_backlog(self) -> OutboxBacklog:
        """One query of the status partition, keys and times only."""
        live = self._live("has_outbox eq true", {}, lambda e: e.has_outbox)
        return OutboxBacklog(len(live), min((e.updated_at for e in live), default=None))

    # --- IncidentPages --------------------------------------------------------------------------

    def incidents_page(
        self,
        status: str | None,
        tenant: str | None,
        severity: str | None,
        after: IncidentCursor | None,
        limit: int,
    ) -> list[Incident]:
        """The list partition in RowKey order (newest first, ties by id), each row checked against
        its incident, which is read in parallel: a stale row is skipped."""
        where, params = ["PartitionKey eq @pk"], {"pk": LIST}
        for name, value in (("status", status), ("tenant", tenant), ("severity", severity)):
            if value:
                where.append(f"{name} eq @{name}")
                params[name] = value
        if after is not None:
            where.append("RowKey gt @after")
            params["after"] = inverted(after.opened_at) + "|" + escape_key(after.incident_id)
        wanted = {"status": status, "tenant": tenant, "severity": severity}
        found: list[Incident] = []
        with translated_errors(self.counter):
            pages = self.client.query_entities(
                " and ".join(where), parameters=params, results_per_page=min(1000, max(limit, 10))
            ).by_page()
            for page in pages:
                rows = list(page)
                for versioned in self._pool_map(self._read_listed, rows):
                    if versioned is not None and _matches(versioned.incident, wanted):
                        found.append(versioned.incident)
                if len(found) >= limit:
                    break
        return found[:limit]

    # --- the sweep ------------------------------------------------------------------------------

    def repair(self, settled_before: datetime | None = None) -> int:
        """Settle the status rows left unconfirmed by a crash (or a lost race) before a time (a minute
        ago by default): the copy, the list row and the id row are rewritten from the incident, or
        deleted if the incident was never written. Returns how many incidents it settled."""
        before = (settled_before or self.clock() - REPAIR_AFTER).isoformat()
        rows = self._query("PartitionKey eq @pk and confirmed eq false", {"pk": STATUS})
        settled = 0
        for row in rows:
            if str(row.get("intent_at", "")) >= before:
                continue
            incident_id, key = str(row["id"]), str(row["key"])
            entity = get_entity(self.client, key_partition(key), incident_row(incident_id), self.counter)
            if entity is None:
                delete_entity(
                    self.client, LIST, inverted(str(row["opened_at"])) + "|" + escape_key(incident_id)
                )
                ids = get_entity(self.client, IDS, escape_key(incident_id), self.counter)
                if ids is not None and ids["key"] == key:
                    delete_entity(self.client, IDS, escape_key(incident_id), etag_of(ids), self.counter)
                delete_entity(self.client, STATUS, row["RowKey"], etag_of(row), self.counter)
            else:
                truth = self._versioned(entity)
                self._upsert(_listed(truth.incident))
                self._confirm(truth.incident, truth.etag, etag_of(row))
            settled += 1
        return settled

    # --- internals ------------------------------------------------------------------------------

    def _operations(
        self,
        incident: Incident,
        etag: str | None,
        was_open: bool,
        pk: str,
        signals: Sequence[Signal],
        timeline: Sequence[TimelineEntry],
    ) -> list[tuple[Any, ...]]:
        """Signals first (a duplicate is reported before a stale ETag), the incident, its open row,
        its timeline: one transaction, checked against the 100-operation and 4 MiB limits."""
        seqs = [self.sequencer.next() for _ in signals]
        operations: list[tuple[Any, ...]] = [
            (
                "create",
                {
                    "PartitionKey": pk,
                    "RowKey": SIGNAL_ROWS + escape_key(s.id),
                    "incident_id": incident.id,
                    "received_at": incident.updated_at,
                    "seq": seq,
                    **body_properties(s.to_dict()),
                },
            )
            for s, seq in zip(signals, seqs, strict=True)
        ]
        row = {"PartitionKey": pk, "RowKey": incident_row(incident.id), **_incident_props(incident)}
        if etag is None:
            operations.append(("create", row))
        else:
            operations.append(("update", row, if_match(etag)))
        pointer = {"PartitionKey": pk, "RowKey": OPEN_ROW, "incident_id": incident.id}
        if incident.is_open and not was_open:
            operations.append(("create", pointer))  # a second open incident for the key: 409
        elif was_open and not incident.is_open:
            operations.append(("delete", pointer))
        operations += [
            ("create", e) for e in line_entities(pk, timeline_rows(incident.id), timeline, self.sequencer)
        ]
        return operations

    def _was_open(self, incident: Incident, etag: str | None, pk: str) -> bool:
        """Whether the stored version holds the key's open row (from the cache, or one read)."""
        if etag is None:
            return False
        known = self._recent.get((incident.id, etag))
        if known is not None:
            return known.is_open
        entity = get_entity(self.client, pk, incident_row(incident.id), self.counter)
        # Missing or changed: the transaction fails on the ETag whatever this answers.
        return entity is not None and self._versioned(entity).incident.is_open

    def _claim(self, signals: Sequence[Signal], pk: str, row: str | None = None) -> set[str]:
        """Claim each signal id for the row that will hold it; the ids stored elsewhere already.

        One transaction in the claims partition; only when it is refused (a redelivery) is each id
        looked at alone. A claim whose row was never written (its commit lost) is taken over.
        """
        wanted = {s.id: (pk, row or SIGNAL_ROWS + escape_key(s.id)) for s in signals}
        todo = {i: owner for i, owner in wanted.items() if self._claimed.get(i) != owner}
        if not todo:
            return set()
        claims = [
            {"PartitionKey": CLAIMS, "RowKey": escape_key(i), "pk": o[0], "rk": o[1]} for i, o in todo.items()
        ]
        try:
            submit(self.client, [("create", c) for c in claims], self.counter)
        except TransactionFailed:
            return {i for i, claim in zip(todo, claims, strict=True) if not self._claim_one(claim)}
        for i, owner in todo.items():
            self._claimed.put(i, owner)
        return set()

    def _claim_one(self, claim: dict[str, Any]) -> bool:
        """True when the id is ours to store (claimed now, by us before, or left by a lost commit)."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        owner = (claim["pk"], claim["rk"])
        try:
            with translated_errors(self.counter):
                self.client.create_entity(claim)
        except Conflict:
            found = get_entity(self.client, CLAIMS, claim["RowKey"], self.counter)
            if found is not None and (found["pk"], found["rk"]) != owner:
                if get_entity(self.client, found["pk"], found["rk"], self.counter) is not None:
                    return False
                try:
                    with translated_errors(self.counter):
                        self.client.update_entity(
                            claim,
                            mode=UpdateMode.REPLACE,
                            etag=etag_of(found),
                            match_condition=MatchConditions.IfNotModified,
                        )
                except PreconditionFailed:
                    return False  # another writer took it over this instant
        self._claimed.put(str(claim["RowKey"]), owner)
        return True

    def _stored_signals(self, pk: str, ids: Sequence[str]) -> set[str]:
        """Which of these signal ids the partition holds (after a transaction refused one)."""
        stored: set[str] = set()
        for start in range(0, len(ids), _OR_GROUP):
            group = ids[start : start + _OR_GROUP]
            params = {"pk": pk, **{f"r{n}": SIGNAL_ROWS + escape_key(i) for n, i in enumerate(group)}}
            where = " or ".join(f"RowKey eq @r{n}" for n in range(len(group)))
            # The SDK substitutes a parameter only where it stands between spaces: "( … )".
            rows = self._query(
                f"PartitionKey eq @pk and ( {where} )", params, select=["RowKey", "incident_id"]
            )
            by_row = {SIGNAL_ROWS + escape_key(i): i for i in group}
            stored |= {by_row[r["RowKey"]] for r in rows}
        return stored

    def _write_intent(self, incident: Incident) -> str:
        """The status row as the commit will leave it, unconfirmed: written first, so a crash after
        the commit is found by readers (they verify it) and by repair(). Returns its ETag."""
        from azure.data.tables import UpdateMode

        entity = self._status_entity(incident, confirmed=False, incident_etag="")
        with translated_errors(self.counter):
            return etag_of(self.client.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def _confirm(self, incident: Incident, new_etag: str, intent_etag: str) -> None:
        """Confirm the intent, if no later writer replaced it (theirs confirms, or readers verify)."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        if not _in_status(incident):
            delete_entity(self.client, STATUS, escape_key(incident.id), intent_etag, self.counter)
            return
        entity = self._status_entity(incident, confirmed=True, incident_etag=new_etag)
        try:
            with translated_errors(self.counter):
                self.client.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=intent_etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except PreconditionFailed:
            pass

    def _status_entity(self, incident: Incident, confirmed: bool, incident_etag: str) -> dict[str, Any]:
        return {
            "PartitionKey": STATUS,
            "RowKey": escape_key(incident.id),
            "key": incident.correlation_key,
            "confirmed": confirmed,
            "intent_at": self.clock().isoformat(),
            "incident_etag": incident_etag,
            **_incident_props(incident),
            **_headline_props(incident),  # so that the status reads no body
        }

    def _live(
        self,
        where: str,
        params: Mapping[str, Any],
        holds: Callable[[_Live], bool],
        bodies: bool = False,
        fields: Iterable[str] = (),
    ) -> list[_Live]:
        """Status rows matching a filter; an unconfirmed one is replaced by its incident as stored
        (dropped when the incident does not hold the predicate, or does not exist)."""
        select = None
        if not bodies:
            select = ["RowKey", "id", "key", "confirmed", "status", "updated_at", "has_outbox", "opened_at"]
            select += [f for f in fields if f not in select]
        rows = self._query(f"PartitionKey eq @pk and {where}", {"pk": STATUS, **params}, select=select)
        confirmed = [r for r in rows if r.get("confirmed")]
        unconfirmed = [r for r in rows if not r.get("confirmed")]
        live = [self._live_row(r, bodies) for r in confirmed]
        for versioned in self._pool_map(self._read_status_truth, unconfirmed):
            if versioned is not None:
                i = versioned.incident
                live.append(
                    _Live(
                        i.id,
                        str(i.status),
                        i.tenant,
                        i.condition_key,
                        i.opened_at,
                        i.updated_at,
                        bool(i.outbox),
                        versioned,
                    )
                )
        return [e for e in live if holds(e)]

    def _live_row(self, row: Mapping[str, Any], bodies: bool) -> _Live:
        versioned = None
        if bodies:
            incident = Incident.from_record(read_body(row))
            versioned = Versioned(incident, str(row["incident_etag"]))
        return _Live(
            str(row["id"]),
            str(row["status"]),
            str(row.get("tenant", "")),
            str(row.get("condition_key", "")),
            str(row["opened_at"]),
            str(row["updated_at"]),
            bool(row["has_outbox"]),
            versioned,
        )

    def _read_status_truth(self, row: Mapping[str, Any]) -> Versioned | None:
        entity = get_entity(
            self.client, key_partition(str(row["key"])), incident_row(str(row["id"])), self.counter
        )
        return self._versioned(entity) if entity is not None else None

    def _read_listed(self, row: Mapping[str, Any]) -> Versioned | None:
        incident_id = str(row["RowKey"]).split("|", 1)[1]
        entity = get_entity(
            self.client, key_partition(str(row["key"])), INCIDENT_ROWS + incident_id, self.counter
        )
        return self._versioned(entity) if entity is not None else None

    def _pool_map(
        self, read: Callable[[Any], Versioned | None], rows: Sequence[Any]
    ) -> list[Versioned | None]:
        """Point reads in parallel: a page of 50 incidents is 50 round trips."""
        if len(rows) <= 1:
            return [read(r) for r in rows]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tables-read")
        return list(self._pool.map(read, rows))

    def _lines(self, pk: str, prefix: str) -> list[tuple[str, str, int, TimelineEntry]]:
        low, high = prefix_range(prefix)
        return timeline_of(
            self._query(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                {"pk": pk, "low": low, "high": high},
            )
        )

    def _key_of(self, incident_id: str) -> str | None:
        key = self._keys.get(incident_id)
        if key is None:
            entity = get_entity(self.client, IDS, escape_key(incident_id), self.counter)
            if entity is None:
                return None
            key = str(entity["key"])
            self._keys.put(incident_id, key)
        return key

    def _versioned(self, entity: Mapping[str, Any]) -> Versioned:
        etag = etag_of(entity)
        incident_id = str(entity["id"])
        incident = self._recent.get((incident_id, etag))
        if incident is None:
            incident = Incident.from_record(read_body(entity))
            self._recent.put((incident_id, etag), incident)
        return Versioned(incident, etag)

    def _upsert(self, entity: dict[str, Any]) -> None:
        from azure.data.tables import UpdateMode

        with translated_errors(self.counter):
            self.client.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def _query(
        self,
        where: str,
        params: Mapping[str, Any],
        select: Sequence[str] | None = None,
        top: int | None = None,
    ) -> list[Any]:
        return query(self.client, where, params, self.counter, select, top)


def _headline_props(incident: Incident) -> dict[str, Any]:
    """What the status shows of an incident, as one property of its status row: one string to
    deserialize instead of eleven (the SDK's per-property decoding is most of a 1,000-row read)."""
    return {HEADLINE: json.dumps(asdict(IncidentHeadline.of(incident)), separators=(",", ":"))}


def _headline(row: Mapping[str, Any]) -> IncidentHeadline:
    """The headline from a status row's property."""
    return IncidentHeadline(**json.loads(row[HEADLINE]))


def _matches(incident: Incident, wanted: Mapping[str, str | None]) -> bool:
    """The incident as stored still matches the filters its list row was found by."""
    actual = {"status": str(incident.status), "tenant": incident.tenant, "severity": incident.severity.label}
    return all(not value or actual[name] == value for name, value in wanted.items())


K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small thread-safe LRU map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if len(self._items) > self.size:
                self._items.popitem(last=False)
