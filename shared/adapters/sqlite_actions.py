"""Action records and the kill switch on SQLite, in the incidents' file so a transition and its
timeline line are one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from shared.adapters.sqlite_db import Database
from shared.domain.actions import ActionRecord, Pause
from shared.domain.incidents import TimelineEntry
from shared.errors import PreconditionFailed, StartRefused
from shared.ports import VersionedAction

SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    state TEXT NOT NULL,
    planned_at TEXT NOT NULL,
    started_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    wake_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS actions_newest ON actions (planned_at DESC);
CREATE INDEX IF NOT EXISTS actions_by_incident ON actions (incident_id, planned_at);
CREATE INDEX IF NOT EXISTS actions_by_resource ON actions (resource, planned_at);
CREATE INDEX IF NOT EXISTS actions_started ON actions (started_at) WHERE started_at != '';
CREATE TABLE IF NOT EXISTS automation_pauses (
    tenant TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
"""
# After SCHEMA: a file from before the wakes were recorded gets their column first.
WAKES = """
CREATE INDEX IF NOT EXISTS actions_due ON actions (wake_at) WHERE wake_at != '';
"""
_TIMELINE = "INSERT INTO timeline (incident_id, at, kind, text) VALUES (?,?,?,?)"
_STARTED_SINCE = "SELECT body FROM actions WHERE started_at != '' AND started_at >= ?"


class SqliteActionStore:
    """Implements `shared.ports.ActionStore` and `AutomationSwitch` on the incident store's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        conn = db.connection()
        conn.executescript(SCHEMA)
        if "wake_at" not in _column_names(conn):
            with db.write() as writing:  # looked at again under the write lock: another process may have
                if "wake_at" not in _column_names(writing):
                    writing.execute("ALTER TABLE actions ADD COLUMN wake_at TEXT NOT NULL DEFAULT ''")
        conn.executescript(WAKES)

    def create_action(
        self, record: ActionRecord, timeline: Sequence[TimelineEntry]
    ) -> VersionedAction | None:
        """Insert at version 1, with its lines; None when the id exists."""
        with self.db.write() as conn:
            inserted = conn.execute(
                "INSERT INTO actions (id, incident_id, resource, state, planned_at, started_at, wake_at,"
                " version, body) VALUES (?,?,?,?,?,?,?,1,?) ON CONFLICT (id) DO NOTHING",
                (*_columns(record), _body(record)),
            ).rowcount
            if not inserted:
                return None
            _lines(conn, record.incident_id, timeline)
        return VersionedAction(record, 1)

    def get_action(self, action_id: str) -> VersionedAction | None:
        """The record and its version."""
        row = (
            self.db.read().execute("SELECT version, body FROM actions WHERE id = ?", (action_id,)).fetchone()
        )
        return VersionedAction(_record(row["body"]), row["version"]) if row else None

    def save_action(
        self, record: ActionRecord, version: int, timeline: Sequence[TimelineEntry]
    ) -> VersionedAction:
        """Conditional on the version read."""
        with self.db.write() as conn:
            _update(conn, record, version, timeline)
        return VersionedAction(record, version + 1)

    def start_action(
        self,
        record: ActionRecord,
        version: int,
        timeline: Sequence[TimelineEntry],
        since: str,
        admit: Callable[[Sequence[ActionRecord]], str | None],
    ) -> VersionedAction:
        """The count and the start in one write transaction: no other start can come between them."""
        with self.db.write() as conn:
            started = [_record(row["body"]) for row in conn.execute(_STARTED_SINCE, (since,))]
            if why := admit(started):
                raise StartRefused(why)
            _update(conn, record, version, timeline)
        return VersionedAction(record, version + 1)

    def list_actions(self, state: str | None, incident_id: str | None, limit: int) -> list[ActionRecord]:
        """Newest first, filtered."""
        where, args = [], []
        if state:
            where.append("state = ?")
            args.append(state)
        if incident_id:
            where.append("incident_id = ?")
            args.append(incident_id)
        sql = "SELECT body FROM actions" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.db.read().execute(sql + " ORDER BY planned_at DESC, id LIMIT ?", (*args, limit))
        return [_record(row["body"]) for row in rows]

    def actions_in(self, states: Sequence[str], limit: int) -> list[ActionRecord]:
        """Newest first, in any of these states."""
        marks = ",".join("?" * len(states))
        rows = self.db.read().execute(
            f"SELECT body FROM actions WHERE state IN ({marks}) ORDER BY planned_at DESC, id LIMIT ?",
            (*states, limit),
        )
        return [_record(row["body"]) for row in rows]

    def actions_due(self, before: str, limit: int) -> list[VersionedAction]:
        """Whose wake was due by `before` (a final one's: its pending escalation), oldest due first."""
        rows = self.db.read().execute(
            "SELECT version, body FROM actions WHERE wake_at != '' AND wake_at <= ?"
            " ORDER BY wake_at, id LIMIT ?",
            (before, limit),
        )
        return [VersionedAction(_record(row["body"]), row["version"]) for row in rows]

    def actions_on(self, resource: str, since: str) -> list[ActionRecord]:
        """On one resource, planned since a time, oldest first."""
        rows = self.db.read().execute(
            "SELECT body FROM actions WHERE resource = ? AND planned_at >= ? ORDER BY planned_at",
            (resource.lower(), since),
        )
        return [_record(row["body"]) for row in rows]

    def started_since(self, since: str) -> list[ActionRecord]:
        """Started since a time."""
        rows = self.db.read().execute(_STARTED_SINCE, (since,))
        return [_record(row["body"]) for row in rows]

    def pauses(self) -> list[Pause]:
        """Every paused scope."""
        rows = self.db.read().execute("SELECT body FROM automation_pauses ORDER BY tenant")
        return [Pause(**json.loads(row["body"])) for row in rows]

    def pause(self, pause: Pause) -> None:
        """Insert or replace the scope's pause."""
        body = json.dumps({"tenant": pause.tenant, "by": pause.by, "at": pause.at, "reason": pause.reason})
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO automation_pauses (tenant, body) VALUES (?, ?)"
                " ON CONFLICT (tenant) DO UPDATE SET body = excluded.body",
                (pause.tenant, body),
            )

    def resume(self, tenant: str) -> bool:
        """Delete the scope's pause."""
        with self.db.write() as conn:
            return bool(conn.execute("DELETE FROM automation_pauses WHERE tenant = ?", (tenant,)).rowcount)


def _columns(record: ActionRecord) -> tuple[str, str, str, str, str, str, str]:
    return (
        record.id,
        record.incident_id,
        record.target.lower(),
        record.state.value,
        record.planned_at,
        record.started_at,
        record.wake_at,
    )


def _column_names(conn: sqlite3.Connection) -> set[str]:
    return {str(row[1]) for row in conn.execute("PRAGMA table_info(actions)")}


def _body(record: ActionRecord) -> str:
    return json.dumps(record.to_dict(), separators=(",", ":"))


def _record(body: str) -> ActionRecord:
    return ActionRecord.from_dict(json.loads(body))


def _update(
    conn: sqlite3.Connection, record: ActionRecord, version: int, timeline: Sequence[TimelineEntry]
) -> None:
    _, _, _, state, _, started_at, wake_at = _columns(record)
    updated = conn.execute(
        "UPDATE actions SET state = ?, started_at = ?, wake_at = ?, version = version + 1, body = ?"
        " WHERE id = ? AND version = ?",
        (state, started_at, wake_at, _body(record), record.id, version),
    ).rowcount
    if not updated:
        raise PreconditionFailed(f"action {record.id} changed since version {version}")
    _lines(conn, record.incident_id, timeline)


def _lines(conn: sqlite3.Connection, incident_id: str, timeline: Sequence[TimelineEntry]) -> None:
    if timeline:
        conn.executemany(_TIMELINE, [(incident_id, e.at, e.kind, e.text) for e in timeline])
