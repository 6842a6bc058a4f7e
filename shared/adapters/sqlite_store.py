"""IncidentStore on SQLite: the local and test store, shaped like Azure Table Storage.

Each incident with its signals and timeline is one "partition" written in one transaction; every
write is conditional on the ETag read, and a partial unique index keeps one open incident per
correlation key even when several processes share the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from shared.adapters.sqlite_db import Database
from shared.domain.incidents import Incident, TimelineEntry
from shared.domain.signals import Signal
from shared.errors import Conflict, DuplicateSignal, PreconditionFailed
from shared.ports import IncidentCursor, IncidentHeadline, OpenCount, OpenOverview, OutboxBacklog, Versioned

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    correlation_key TEXT NOT NULL,
    condition_key TEXT NOT NULL,
    status TEXT NOT NULL,
    tenant TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    has_outbox INTEGER NOT NULL,
    etag TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_incident_per_key
    ON incidents (correlation_key) WHERE status != 'resolved';
CREATE INDEX IF NOT EXISTS incidents_newest ON incidents (opened_at DESC);
CREATE INDEX IF NOT EXISTS incidents_open_by_condition
    ON incidents (condition_key, opened_at) WHERE status != 'resolved';
CREATE INDEX IF NOT EXISTS incidents_with_outbox ON incidents (updated_at) WHERE has_outbox = 1;
CREATE INDEX IF NOT EXISTS incidents_open_by_group ON incidents (
    json_extract(body, '$.component'), tenant, json_extract(body, '$.severity'), opened_at, id
) WHERE status != 'resolved';
CREATE TABLE IF NOT EXISTS signals (
    id TEXT PRIMARY KEY,
    incident_id TEXT,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_by_incident ON signals (incident_id, received_at);
CREATE TABLE IF NOT EXISTS timeline (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_by_incident_in_time ON timeline (incident_id, at, seq);
DROP INDEX IF EXISTS timeline_by_incident;
CREATE TABLE IF NOT EXISTS external_ids (
    system TEXT NOT NULL,
    external_id TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    PRIMARY KEY (system, external_id)
);
"""


# The expressions of the incidents_open_by_group index, spelled alike so that the planner uses it.
_COMPONENT = "json_extract(body, '$.component')"
_SEVERITY = "json_extract(body, '$.severity')"


class SqliteIncidentStore:
    """Implements `shared.ports.IncidentStore`, `StatusQueries` and `IncidentPages` on one SQLite file."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL") -> None:
        self.db = Database(path, SCHEMA, synchronous)
        self._recent = _Recent()

    def open_incident(self, correlation_key: str) -> Versioned | None:
        """The open incident for a key."""
        row = (
            self.db.read()
            .execute(
                "SELECT body, etag FROM incidents WHERE correlation_key = ? AND status != 'resolved'",
                (correlation_key,),
            )
            .fetchone()
        )
        return self._recent.versioned(row)

    def get(self, incident_id: str) -> Versioned | None:
        """An incident by id."""
        row = (
            self.db.read().execute("SELECT body, etag FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        )
        return self._recent.versioned(row)

    def commit(
        self,
        incident: Incident,
        etag: str | None,
        signals: Sequence[Signal] = (),
        timeline: Sequence[TimelineEntry] = (),
    ) -> str:
        """Write incident, signals and timeline in one transaction, conditional on the ETag."""
        new_etag = uuid.uuid4().hex
        body = json.dumps(incident.to_record(), separators=(",", ":"))
        changing = (incident.updated_at, int(bool(incident.outbox)), new_etag, body)
        with self.db.write() as conn:
            if signals:
                self._insert_signals(conn, signals, incident.id, incident.updated_at)
            if etag is None:
                try:
                    conn.execute(
                        "INSERT INTO incidents (correlation_key, condition_key, status, tenant, opened_at,"
                        " updated_at, has_outbox, etag, body, id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (
                            incident.correlation_key,
                            incident.condition_key,
                            incident.status,
                            incident.tenant,
                            incident.opened_at,
                            *changing,
                            incident.id,
                        ),
                    )
                except sqlite3.IntegrityError as e:
                    raise Conflict(f"incident {incident.id} or an open one for its key exists") from e
            else:
                # Key, condition, tenant and opening time never change; leaving them (and status,
                # unless it changes) out of the SET spares their indexes on every repeat signal.
                updated = conn.execute(
                    "UPDATE incidents SET updated_at=?, has_outbox=?, etag=?, body=? WHERE id=? AND etag=?",
                    (*changing, incident.id, etag),
                ).rowcount
                if updated != 1:
                    raise PreconditionFailed(f"incident {incident.id} changed since it was read")
                try:
                    conn.execute(
                        "UPDATE incidents SET status=? WHERE id=? AND status!=?",
                        (incident.status, incident.id, incident.status),
                    )
                except sqlite3.IntegrityError as e:  # reopened while its key has another open incident
                    raise Conflict(f"incident {incident.id}: its key has another open incident") from e
            if timeline:
                conn.executemany(
                    "INSERT INTO timeline (incident_id, at, kind, text) VALUES (?,?,?,?)",
                    [(incident.id, e.at, e.kind, e.text) for e in timeline],
                )
        self._recent.remember(Versioned(incident, new_etag))
        return new_etag

    def add_timeline(self, incident_id: str, entries: Sequence[TimelineEntry]) -> None:
        """Append history rows."""
        with self.db.write() as conn:
            conn.executemany(
                "INSERT INTO timeline (incident_id, at, kind, text) VALUES (?,?,?,?)",
                [(incident_id, e.at, e.kind, e.text) for e in entries],
            )

    def link_external(self, system: str, external_id: str, incident_id: str) -> None:
        """Insert or confirm the link."""
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO external_ids (system, external_id, incident_id) VALUES (?,?,?)",
                (system, external_id, incident_id),
            )

    def find_external(self, system: str, external_id: str) -> str | None:
        """Our incident id for the external id."""
        row = (
            self.db.read()
            .execute(
                "SELECT incident_id FROM external_ids WHERE system = ? AND external_id = ?",
                (system, external_id),
            )
            .fetchone()
        )
        return str(row["incident_id"]) if row else None

    def find_externals(self, system: str, external_ids: Sequence[str]) -> dict[str, str]:
        """Our incident ids for the known ones."""
        found: dict[str, str] = {}
        ids = list(dict.fromkeys(external_ids))
        for start in range(0, len(ids), 500):  # under SQLite's limit on bound parameters
            group = ids[start : start + 500]
            rows = self.db.read().execute(
                "SELECT external_id, incident_id FROM external_ids WHERE system = ?"
                f" AND external_id IN ({','.join('?' * len(group))})",
                (system, *group),
            )
            found.update((r["external_id"], r["incident_id"]) for r in rows)
        return found

    def record_informational(self, signal: Signal) -> bool:
        """Store a signal without an incident; False if already stored."""
        try:
            with self.db.write() as conn:
                self._insert_signals(conn, [signal], None, signal.occurred_at)
        except DuplicateSignal:
            return False
        return True

    def list_incidents(self, status: str | None, tenant: str | None, limit: int) -> list[Incident]:
        """Newest first, optionally filtered: the first page of `incidents_page`."""
        return self.incidents_page(status, tenant, None, None, limit)

    def timeline(self, incident_id: str) -> list[TimelineEntry]:
        """Oldest first."""
        rows = (
            self.db.read()
            # By time, then as written: a worker's line can be written after lines dated later.
            .execute(
                "SELECT at, kind, text FROM timeline WHERE incident_id = ? ORDER BY at, seq", (incident_id,)
            )
            .fetchall()
        )
        return [TimelineEntry(r["at"], r["kind"], r["text"]) for r in rows]

    def signals(self, incident_id: str | None, limit: int) -> list[Signal]:
        """Newest first."""
        clause = "incident_id = ?" if incident_id is not None else "incident_id IS NULL"
        args: tuple[object, ...] = (incident_id, limit) if incident_id is not None else (limit,)
        rows = (
            self.db.read()
            .execute(
                f"SELECT body FROM signals WHERE {clause} ORDER BY received_at DESC, rowid DESC LIMIT ?", args
            )
            .fetchall()
        )
        return [Signal.from_dict(json.loads(r["body"])) for r in rows]

    def open_tenants(self, condition_key: str, since: str) -> list[tuple[str, str]]:
        """(tenant, incident id) of open incidents of this condition opened since `since`."""
        rows = (
            self.db.read()
            .execute(
                "SELECT tenant, id FROM incidents WHERE condition_key = ? AND status != 'resolved'"
                " AND opened_at >= ? AND tenant != '' ORDER BY opened_at",
                (condition_key, since),
            )
            .fetchall()
        )
        return [(r["tenant"], r["id"]) for r in rows]

    def with_pending_effects(self, older_than: str, limit: int) -> list[Versioned]:
        """Incidents whose outbox was not emptied (a crash between commit and send)."""
        rows = (
            self.db.read()
            .execute(
                "SELECT body, etag FROM incidents WHERE has_outbox = 1 AND updated_at < ?"
                " ORDER BY updated_at LIMIT ?",
                (older_than, limit),
            )
            .fetchall()
        )
        return [v for v in (self._recent.versioned(r) for r in rows) if v is not None]

    def ping(self) -> None:
        """Raise if the file cannot be read."""
        self.db.read().execute("SELECT 1").fetchone()

    # --- StatusQueries and IncidentPages: the operator's reads ----------------------------------

    def open_incidents(self, limit: int) -> list[Incident]:
        """Not resolved, oldest first."""
        rows = (
            self.db.read()
            .execute(
                "SELECT body FROM incidents WHERE status != 'resolved' ORDER BY opened_at, id LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [Incident.from_record(json.loads(r["body"])) for r in rows]

    def open_overview(self, per_group: int, limit: int) -> OpenOverview:
        """Counts from the open incidents' index alone; only the shown ones' bodies are read."""
        read = self.db.read()
        counts = read.execute(
            f"SELECT {_COMPONENT}, tenant, {_SEVERITY}, COUNT(*) FROM incidents WHERE status != 'resolved'"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
        ranked = (
            f"SELECT id, {_SEVERITY} AS severity, opened_at, ROW_NUMBER() OVER (PARTITION BY {_COMPONENT},"
            f" tenant ORDER BY {_SEVERITY}, opened_at, id) AS n FROM incidents WHERE status != 'resolved'"
        )
        rows = read.execute(
            f"SELECT i.body FROM ({ranked}) AS r JOIN incidents AS i ON i.id = r.id WHERE r.n <= ?"
            " ORDER BY r.severity, r.opened_at, r.id LIMIT ?",
            (per_group, limit),
        ).fetchall()
        return OpenOverview(
            tuple(OpenCount(str(c), str(t), str(s), int(n)) for c, t, s, n in counts),
            tuple(IncidentHeadline.of(Incident.from_record(json.loads(r["body"]))) for r in rows),
        )

    def open_incident_count(self) -> int:
        """How many are not resolved."""
        row = self.db.read().execute("SELECT COUNT(*) FROM incidents WHERE status != 'resolved'").fetchone()
        return int(row[0])

    def outbox_backlog(self) -> OutboxBacklog:
        """Incidents with effects not yet confirmed on the queue."""
        row = (
            self.db.read()
            .execute("SELECT COUNT(*), MIN(updated_at) FROM incidents WHERE has_outbox = 1")
            .fetchone()
        )
        return OutboxBacklog(incidents=int(row[0]), oldest_updated_at=row[1])

    def incidents_page(
        self,
        status: str | None,
        tenant: str | None,
        severity: str | None,
        after: IncidentCursor | None,
        limit: int,
    ) -> list[Incident]:
        """Newest first, ties by id (as list_incidents), after the cursor: a keyset, never an offset."""
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if tenant:
            where.append("tenant = ?")
            args.append(tenant)
        if severity:
            # Severity changes over an incident's life and lives in its body; the Table Storage
            # adapter filters on a property instead. Locally a scan in index order is cheap enough.
            where.append("json_extract(body, '$.severity') = ?")
            args.append(severity)
        if after is not None:
            # Written as a range on opened_at so the incidents_newest index still serves it.
            where.append("opened_at <= ? AND (opened_at < ? OR id > ?)")
            args += [after.opened_at, after.opened_at, after.incident_id]
        sql = "SELECT body FROM incidents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY opened_at DESC, id LIMIT ?"
        rows = self.db.read().execute(sql, (*args, limit)).fetchall()
        return [Incident.from_record(json.loads(r["body"])) for r in rows]

    @staticmethod
    def _insert_signals(
        conn: sqlite3.Connection, signals: Sequence[Signal], incident_id: str | None, at: str
    ) -> None:
        conn.execute("SAVEPOINT signals")
        try:
            conn.executemany(
                "INSERT INTO signals (id, incident_id, received_at, body) VALUES (?,?,?,?)",
                [(s.id, incident_id, at, json.dumps(s.to_dict(), separators=(",", ":"))) for s in signals],
            )
            conn.execute("RELEASE signals")
        except sqlite3.IntegrityError as e:
            conn.execute("ROLLBACK TO signals")  # so the look-up below sees only what was stored before
            conn.execute("RELEASE signals")
            ids = [s.id for s in signals]
            marks = ",".join("?" * len(ids))
            known = conn.execute(f"SELECT id FROM signals WHERE id IN ({marks})", ids).fetchall()
            # The same id twice in one batch is a duplicate too, though neither is stored yet.
            repeated = {i for i in ids if ids.count(i) > 1}
            raise DuplicateSignal(*sorted({r["id"] for r in known} | repeated)) from e


class _Recent:
    """The last incidents written or read, by ETag: an ETag names one immutable version, and a storm
    re-reads the incident it just wrote, so the JSON need not be parsed again."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self.by_etag: OrderedDict[str, Versioned] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, versioned: Versioned) -> Versioned:
        with self._lock:
            self.by_etag[versioned.etag] = versioned
            if len(self.by_etag) > self.size:
                self.by_etag.popitem(last=False)
        return versioned

    def versioned(self, row: sqlite3.Row | None) -> Versioned | None:
        if row is None:
            return None
        found = self.by_etag.get(row["etag"])
        if found is not None:
            return found
        return self.remember(Versioned(Incident.from_record(json.loads(row["body"])), row["etag"]))
