"""A local stand-in for Azure Service Bus queues on SQLite, shared by threads and processes.

Same semantics as Service Bus: duplicate detection by message_id, scheduled delivery, peek-lock
with lock expiry and delivery counts, sessions (one locked message per session, FIFO within it),
dead-lettering with a reason and MaxDeliveryCountExceeded.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.adapters.sqlite_db import Database
from shared.clock import Clock, utc_now
from shared.errors import LockLost
from shared.ports import MAX_MESSAGE_BYTES, DeadLetter, QueueCounts, QueueMessage, Received

# Completed messages are deleted; 'scheduled' ones turn 'active' when due, so the receive query
# never has to step over a backlog of future messages.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    session_id TEXT,
    body BLOB NOT NULL,
    properties TEXT NOT NULL,
    content_type TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    scheduled_at REAL,
    state TEXT NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token TEXT,
    locked_until REAL NOT NULL DEFAULT 0,
    dl_reason TEXT,
    dl_description TEXT,
    dl_at REAL
);
CREATE INDEX IF NOT EXISTS ix_queue_messages_plain
    ON queue_messages (queue, seq) WHERE state = 'active' AND session_id IS NULL;
CREATE INDEX IF NOT EXISTS ix_queue_messages_session
    ON queue_messages (queue, session_id, seq) WHERE state = 'active' AND session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_queue_messages_scheduled
    ON queue_messages (queue, scheduled_at) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS ix_queue_messages_dead
    ON queue_messages (queue, dl_at) WHERE state = 'deadlettered';

-- One row per session with active messages: its FIFO head and who holds its lock, so receive
-- finds the next session head by index instead of stepping over every message of locked sessions.
CREATE TABLE IF NOT EXISTS queue_sessions (
    queue TEXT NOT NULL,
    session_id TEXT NOT NULL,
    head_seq INTEGER,
    lock_token TEXT,
    locked_until REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, session_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_queue_sessions_head
    ON queue_sessions (queue, head_seq) WHERE head_seq IS NOT NULL;

CREATE TABLE IF NOT EXISTS queue_dedup (
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at REAL NOT NULL,
    PRIMARY KEY (queue, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_queue_dedup_sent ON queue_dedup (sent_at);
"""

MAX_ID_LENGTH = 128  # Service Bus: message and session ids
# Expired duplicate-detection rows only take space (a send past the window replaces its row), so
# they are pruned now and then rather than by every send, where the delete was an eighth of it.
PRUNE_EVERY_SECONDS = 60.0

_ANYTHING_DUE = """
SELECT EXISTS (SELECT 1 FROM queue_messages
               WHERE queue = :queue AND state = 'active' AND session_id IS NULL)
    OR EXISTS (SELECT 1 FROM queue_messages
               WHERE queue = :queue AND state = 'active' AND session_id IS NOT NULL)
    OR EXISTS (SELECT 1 FROM queue_messages
               WHERE queue = :queue AND state = 'scheduled' AND scheduled_at <= :now)
"""
_NEXT_CANDIDATE = """
SELECT * FROM queue_messages
WHERE seq IN (
    (SELECT seq FROM queue_messages
     WHERE queue = :queue AND state = 'active' AND session_id IS NULL AND locked_until <= :now
     ORDER BY seq LIMIT 1),
    (SELECT head_seq FROM queue_sessions
     WHERE queue = :queue AND head_seq IS NOT NULL AND locked_until <= :now
     ORDER BY head_seq LIMIT 1)
)
ORDER BY seq LIMIT 1
"""

_REFRESH_HEAD = """
UPDATE queue_sessions
SET head_seq = (SELECT MIN(seq) FROM queue_messages
                WHERE queue = :queue AND session_id = :session AND state = 'active')
WHERE queue = :queue AND session_id = :session
RETURNING head_seq
"""

_RELEASE_SESSION = """
UPDATE queue_sessions
SET lock_token = NULL, locked_until = 0,
    head_seq = (SELECT MIN(seq) FROM queue_messages
                WHERE queue = :queue AND session_id = :session AND state = 'active')
WHERE queue = :queue AND session_id = :session AND lock_token = :token
RETURNING head_seq
"""

_ADD_TO_SESSION = """
INSERT INTO queue_sessions (queue, session_id, head_seq) VALUES (?, ?, ?)
ON CONFLICT (queue, session_id) DO UPDATE SET head_seq = excluded.head_seq
WHERE head_seq IS NULL OR excluded.head_seq < head_seq
"""


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class SqliteQueue:
    """Service Bus queues in one SQLite file: the EffectQueue, QueueReceiver and QueueInspector ports."""

    def __init__(
        self,
        path: str | Path,
        *,
        lock_duration: float = 30.0,
        max_delivery_count: int = 10,
        duplicate_window: float = 600.0,
        clock: Clock = utc_now,
        synchronous: str = "NORMAL",
    ) -> None:
        self._db = Database(path, _SCHEMA, synchronous)
        self._lock_duration = lock_duration
        self._max_delivery_count = max_delivery_count
        self._duplicate_window = duplicate_window
        self._clock = clock
        self._next_prune = 0.0

    def send(self, messages: Sequence[QueueMessage]) -> None:
        """Enqueue the batch in one transaction; a message_id seen within the window is dropped."""
        if not messages:
            return
        now = self._clock().timestamp()
        rows = [self._row(m, now) for m in messages]
        cutoff = now - self._duplicate_window
        with self._db.write() as conn:
            if now >= self._next_prune:
                conn.execute("DELETE FROM queue_dedup WHERE sent_at < ?", (cutoff,))
                self._next_prune = now + PRUNE_EVERY_SECONDS
            for row in rows:
                queue, message_id, session_id, *_, state = row
                accepted = conn.execute(
                    "INSERT INTO queue_dedup (queue, message_id, sent_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (queue, message_id) DO UPDATE SET sent_at = excluded.sent_at "
                    "WHERE sent_at < ?",
                    (queue, message_id, now, cutoff),
                ).rowcount
                if not accepted:
                    continue
                seq = conn.execute(
                    "INSERT INTO queue_messages (queue, message_id, session_id, body, properties, "
                    "content_type, enqueued_at, scheduled_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                ).lastrowid
                if session_id is not None and state == "active":
                    conn.execute(_ADD_TO_SESSION, (queue, session_id, seq))

    def receive(self, queue: str) -> Received | None:
        """Lock and return the deliverable message with the lowest sequence number, if any."""
        now = self._clock().timestamp()
        # Idle pumps poll often; a read answers "nothing here" without taking the write lock
        # that intake needs.
        if not self._db.read().execute(_ANYTHING_DUE, {"queue": queue, "now": now}).fetchone()[0]:
            return None
        with self._db.write() as conn:
            self._activate_due(conn, queue, now)
            while True:
                row = conn.execute(_NEXT_CANDIDATE, {"queue": queue, "now": now}).fetchone()
                if row is None:
                    return None
                if row["delivery_count"] >= self._max_delivery_count:
                    description = (
                        f"delivered {row['delivery_count']} times without being completed "
                        f"(max delivery count {self._max_delivery_count})"
                    )
                    self._to_dead_letters(conn, row["seq"], "MaxDeliveryCountExceeded", description, now)
                    if row["session_id"] is not None:
                        head = conn.execute(_REFRESH_HEAD, {"queue": queue, "session": row["session_id"]})
                        self._forget_if_empty(conn, queue, row["session_id"], head.fetchone()[0])
                    continue
                token = uuid.uuid4().hex
                locked_until = now + self._lock_duration
                conn.execute(
                    "UPDATE queue_messages SET delivery_count = delivery_count + 1, lock_token = ?, "
                    "locked_until = ? WHERE seq = ?",
                    (token, locked_until, row["seq"]),
                )
                if row["session_id"] is not None:
                    conn.execute(
                        "UPDATE queue_sessions SET lock_token = ?, locked_until = ? "
                        "WHERE queue = ? AND session_id = ?",
                        (token, locked_until, queue, row["session_id"]),
                    )
                return self._received(row, token, locked_until)

    def receive_batch(self, queue: str, max_messages: int) -> list[Received]:
        """Lock the next session and up to `max_messages` of its deliverable messages, in order, under
        one lock (a trigger with cardinality "many"); a message without a session comes alone."""
        first = self.receive(queue)
        if first is None or first.session_id is None or max_messages <= 1:
            return [] if first is None else [first]
        with self._db.write() as conn:
            rows = conn.execute(
                "UPDATE queue_messages SET delivery_count = delivery_count + 1, lock_token = ?, "
                "locked_until = ? WHERE seq IN (SELECT seq FROM queue_messages WHERE queue = ? AND "
                "session_id = ? AND state = 'active' AND seq > ? AND delivery_count < ? "
                "ORDER BY seq LIMIT ?) RETURNING *",
                (
                    first.lock_token,
                    first.locked_until.timestamp(),
                    queue,
                    first.session_id,
                    first.sequence_number,
                    self._max_delivery_count,
                    max_messages - 1,
                ),
            ).fetchall()
        # The batch shares the first message's lock and its expiry; RETURNING shows counts already raised.
        locked_until = first.locked_until.timestamp()
        rest = [
            replace(self._received(r, first.lock_token, locked_until), delivery_count=r["delivery_count"])
            for r in rows
        ]
        return [first, *sorted(rest, key=lambda r: r.sequence_number)]

    def complete_batch(self, batch: Sequence[Received]) -> None:
        """Remove every message of a batch from `receive_batch` and release its session, atomically."""
        self._settle_batch(
            batch, "DELETE FROM queue_messages WHERE state = 'active' AND lock_token = ? AND seq IN"
        )

    def abandon_batch(self, batch: Sequence[Received]) -> None:
        """Release every message of a batch (they come again, each delivery counted) and its session."""
        self._settle_batch(
            batch,
            "UPDATE queue_messages SET lock_token = NULL, locked_until = 0"
            " WHERE state = 'active' AND lock_token = ? AND seq IN",
        )

    def _settle_batch(self, batch: Sequence[Received], statement: str) -> None:
        if not batch:
            return
        token = batch[0].lock_token
        seqs = [r.sequence_number for r in batch]
        with self._db.write() as conn:
            changed = conn.execute(f"{statement} ({','.join('?' * len(seqs))})", (token, *seqs)).rowcount
            if changed != len(seqs):
                raise LockLost(self._lock_lost(batch[0]))
            self._settle(conn, batch[0], changed)

    def complete(self, received: Received) -> None:
        """Remove the message for good."""
        with self._db.write() as conn:
            deleted = conn.execute(
                "DELETE FROM queue_messages WHERE seq = ? AND state = 'active' AND lock_token = ?",
                (received.sequence_number, received.lock_token),
            ).rowcount
            self._settle(conn, received, deleted)

    def abandon(self, received: Received) -> None:
        """Release the lock so the message can be received again now."""
        with self._db.write() as conn:
            updated = conn.execute(
                "UPDATE queue_messages SET lock_token = NULL, locked_until = 0 "
                "WHERE seq = ? AND state = 'active' AND lock_token = ?",
                (received.sequence_number, received.lock_token),
            ).rowcount
            self._settle(conn, received, updated)

    def dead_letter(self, received: Received, reason: str, description: str) -> None:
        """Move the message to the dead letters with a reason a person can read."""
        now = self._clock().timestamp()
        with self._db.write() as conn:
            moved = self._to_dead_letters(
                conn, received.sequence_number, reason, description, now, received.lock_token
            )
            self._settle(conn, received, moved)

    def dead_letter_message(self, message: QueueMessage, reason: str, description: str) -> None:
        """Put a message its sender knows can never succeed straight among the dead letters."""
        now = self._clock().timestamp()
        row = self._row(message, now)
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO queue_messages (queue, message_id, session_id, body, properties, content_type,"
                " enqueued_at, scheduled_at, state, dl_reason, dl_description, dl_at)"
                " VALUES (?,?,?,?,?,?,?,?,'deadlettered',?,?,?)",
                (*row[:8], reason, description, now),
            )

    def renew_lock(self, received: Received) -> None:
        """Extend the lock by lock_duration from now (Received.locked_until is not updated)."""
        locked_until = self._clock().timestamp() + self._lock_duration
        with self._db.write() as conn:
            renewed = conn.execute(
                "UPDATE queue_messages SET locked_until = ? "
                "WHERE seq = ? AND state = 'active' AND lock_token = ?",
                (locked_until, received.sequence_number, received.lock_token),
            ).rowcount
            if renewed and received.session_id is not None:
                renewed = conn.execute(
                    "UPDATE queue_sessions SET locked_until = ? "
                    "WHERE queue = ? AND session_id = ? AND lock_token = ?",
                    (locked_until, received.queue, received.session_id, received.lock_token),
                ).rowcount
            if not renewed:
                raise LockLost(self._lock_lost(received))

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Dead-lettered messages, newest first."""
        return self.recent_dead_letters([queue], limit)

    def active_count(self, queue: str) -> int:
        """Messages neither completed nor dead-lettered, scheduled ones included."""
        conn = self._db.read()
        row = conn.execute(
            "SELECT (SELECT COUNT(*) FROM queue_messages "
            "        WHERE queue = :q AND state = 'active' AND session_id IS NULL)"
            "     + (SELECT COUNT(*) FROM queue_messages "
            "        WHERE queue = :q AND state = 'active' AND session_id IS NOT NULL)"
            "     + (SELECT COUNT(*) FROM queue_messages WHERE queue = :q AND state = 'scheduled')",
            {"q": queue},
        ).fetchone()
        return int(row[0])

    def next_due(self, queue: str) -> float | None:
        """Epoch seconds when a receive may next succeed (past if one would now); None if empty."""
        conn = self._db.read()
        row = conn.execute(
            "SELECT (SELECT MIN(MAX(locked_until, COALESCE(scheduled_at, enqueued_at))) "
            "        FROM queue_messages WHERE queue = :q AND state = 'active' AND session_id IS NULL),"
            "       (SELECT MIN(MAX(s.locked_until, COALESCE(m.scheduled_at, m.enqueued_at))) "
            "        FROM queue_sessions s JOIN queue_messages m ON m.seq = s.head_seq "
            "        WHERE s.queue = :q AND s.head_seq IS NOT NULL),"
            "       (SELECT MIN(scheduled_at) FROM queue_messages "
            "        WHERE queue = :q AND state = 'scheduled')",
            {"q": queue},
        ).fetchone()
        times = [t for t in row if t is not None]
        return min(times) if times else None

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()

    # --- QueueInspector: the operator's view ---------------------------------------------------

    def counts(self, queues: Sequence[str]) -> list[QueueCounts]:
        """Counts per queue by state; a scheduled message already due counts as ready."""
        names = {f"q{i}": q for i, q in enumerate(queues)}
        found = {
            row["queue"]: row
            for row in self._db.read().execute(
                "SELECT queue,"
                " SUM(state = 'active' AND locked_until <= :now)"
                "   + SUM(state = 'scheduled' AND scheduled_at <= :now) AS ready,"
                " SUM(state = 'scheduled' AND scheduled_at > :now) AS scheduled,"
                " SUM(state = 'active' AND locked_until > :now) AS in_flight,"
                " SUM(state = 'deadlettered') AS dead_lettered"
                f" FROM queue_messages WHERE queue IN ({', '.join(':' + n for n in names)}) GROUP BY queue",
                {"now": self._clock().timestamp(), **names},
            )
        }
        return [
            QueueCounts(
                queue=q,
                ready=int(found[q]["ready"]) if q in found else 0,
                scheduled=int(found[q]["scheduled"]) if q in found else 0,
                in_flight=int(found[q]["in_flight"]) if q in found else 0,
                dead_lettered=int(found[q]["dead_lettered"]) if q in found else 0,
            )
            for q in queues
        ]

    def recent_dead_letters(self, queues: Sequence[str], limit: int) -> list[DeadLetter]:
        """Dead letters across these queues, newest first."""
        rows = (
            self._db.read()
            .execute(
                f"SELECT {_DEAD_LETTER_COLUMNS} FROM queue_messages WHERE state = 'deadlettered'"
                f" AND queue IN ({', '.join('?' * len(queues))}) ORDER BY dl_at DESC, seq DESC LIMIT ?",
                (*queues, limit),
            )
            .fetchall()
        )
        return [_dead_letter(r) for r in rows]

    def find_dead_letters(self, message_id: str) -> list[DeadLetter]:
        """Every dead letter with this message id, newest first."""
        rows = (
            self._db.read()
            .execute(
                f"SELECT {_DEAD_LETTER_COLUMNS} FROM queue_messages"
                " WHERE state = 'deadlettered' AND message_id = ? ORDER BY dl_at DESC, seq DESC",
                (message_id,),
            )
            .fetchall()
        )
        return [_dead_letter(r) for r in rows]

    def resend_dead_letter(self, queue: str, message_id: str, new_message_id: str) -> bool:
        """Send a copy under the new id and take every dead letter of (queue, message_id) off, atomically.

        Two dead letters with one id in one queue are one message given up on twice (effect ids are
        stable): one copy is sent. In one transaction, so two replays racing send one copy.
        """
        now = self._clock().timestamp()
        with self._db.write() as conn:
            taken = conn.execute(
                "DELETE FROM queue_messages WHERE queue = ? AND message_id = ? AND state = 'deadlettered'"
                " RETURNING seq, session_id, body, properties, content_type",
                (queue, message_id),
            ).fetchall()
            if not taken:
                return False
            newest = max(taken, key=lambda r: r["seq"])
            properties = {**json.loads(newest["properties"]), "replay_of": message_id}
            copy = QueueMessage(
                queue=queue,
                body=newest["body"],
                message_id=new_message_id,
                session_id=newest["session_id"],
                application_properties=properties,
                content_type=newest["content_type"],
            )
            row = self._row(copy, now)
            conn.execute(
                "INSERT INTO queue_dedup (queue, message_id, sent_at) VALUES (?, ?, ?)"
                " ON CONFLICT (queue, message_id) DO UPDATE SET sent_at = excluded.sent_at",
                (queue, new_message_id, now),
            )
            seq = conn.execute(
                "INSERT INTO queue_messages (queue, message_id, session_id, body, properties, "
                "content_type, enqueued_at, scheduled_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ).lastrowid
            if copy.session_id is not None:
                conn.execute(_ADD_TO_SESSION, (queue, copy.session_id, seq))
        return True

    def _row(self, m: QueueMessage, now: float) -> tuple[Any, ...]:
        # Service Bus's limits, so code that passes here does not fail on the real thing.
        if not 0 < len(m.message_id) <= MAX_ID_LENGTH:
            raise ValueError(f"message_id must be 1 to {MAX_ID_LENGTH} characters, got {len(m.message_id)}")
        if m.session_id is not None and not 0 < len(m.session_id) <= MAX_ID_LENGTH:
            raise ValueError(f"session_id must be 1 to {MAX_ID_LENGTH} characters, got {len(m.session_id)}")
        if len(m.body) > MAX_MESSAGE_BYTES:
            raise ValueError(f"message body is {len(m.body)} bytes; the limit is {MAX_MESSAGE_BYTES}")
        scheduled_at: float | None = None
        if m.scheduled_at is not None:
            if m.scheduled_at.tzinfo is None:
                raise ValueError(f"scheduled_at of message {m.message_id} must be timezone-aware")
            scheduled_at = m.scheduled_at.timestamp()
        state = "scheduled" if scheduled_at is not None and scheduled_at > now else "active"
        properties = json.dumps(dict(m.application_properties)) if m.application_properties else "{}"
        return (
            m.queue, m.message_id, m.session_id, bytes(m.body), properties,
            m.content_type, now, scheduled_at, state,
        )  # fmt: skip

    def _activate_due(self, conn: sqlite3.Connection, queue: str, now: float) -> None:
        due = conn.execute(
            "UPDATE queue_messages SET state = 'active' "
            "WHERE queue = ? AND state = 'scheduled' AND scheduled_at <= ? RETURNING seq, session_id",
            (queue, now),
        ).fetchall()
        for seq, session_id in due:
            if session_id is not None:
                conn.execute(_ADD_TO_SESSION, (queue, session_id, seq))

    def _to_dead_letters(
        self,
        conn: sqlite3.Connection,
        seq: int,
        reason: str,
        description: str,
        now: float,
        token: str | None = None,
    ) -> int:
        return conn.execute(
            "UPDATE queue_messages SET state = 'deadlettered', dl_reason = ?, dl_description = ?, "
            "dl_at = ?, lock_token = NULL, locked_until = 0 "
            "WHERE seq = ? AND state = 'active' AND (? IS NULL OR lock_token = ?)",
            (reason, description, now, seq, token, token),
        ).rowcount

    def _settle(self, conn: sqlite3.Connection, received: Received, changed: int) -> None:
        """Finish a settlement: LockLost unless this receiver still held the message and its session."""
        if not changed:
            raise LockLost(self._lock_lost(received))
        if received.session_id is None:
            return
        params = {"queue": received.queue, "session": received.session_id, "token": received.lock_token}
        row = conn.execute(_RELEASE_SESSION, params).fetchone()
        if row is None:
            # The message's own token still matched, but its lock expired and another message of
            # the session was received since: the session lock is someone else's now.
            raise LockLost(
                f"session {received.session_id} of queue {received.queue} is locked by another receiver"
            )
        self._forget_if_empty(conn, received.queue, received.session_id, row[0])

    @staticmethod
    def _forget_if_empty(conn: sqlite3.Connection, queue: str, session_id: str, head: int | None) -> None:
        if head is None:
            conn.execute("DELETE FROM queue_sessions WHERE queue = ? AND session_id = ?", (queue, session_id))

    @staticmethod
    def _lock_lost(received: Received) -> str:
        return (
            f"lock on message {received.message_id} (sequence {received.sequence_number}) of queue "
            f"{received.queue} was lost: it expired and the message was received or settled again"
        )

    @staticmethod
    def _received(row: sqlite3.Row, token: str, locked_until: float) -> Received:
        return Received(
            queue=row["queue"],
            body=row["body"],
            message_id=row["message_id"],
            session_id=row["session_id"],
            application_properties=json.loads(row["properties"]),
            content_type=row["content_type"],
            sequence_number=row["seq"],
            delivery_count=row["delivery_count"] + 1,
            enqueued_at=_utc(row["enqueued_at"]),
            scheduled_at=None if row["scheduled_at"] is None else _utc(row["scheduled_at"]),
            lock_token=token,
            locked_until=_utc(locked_until),
        )


_DEAD_LETTER_COLUMNS = "queue, message_id, session_id, body, dl_reason, dl_description, delivery_count, dl_at"


def _dead_letter(row: sqlite3.Row) -> DeadLetter:
    return DeadLetter(
        queue=row["queue"],
        message_id=row["message_id"],
        session_id=row["session_id"],
        body=row["body"],
        reason=row["dl_reason"],
        description=row["dl_description"],
        delivery_count=row["delivery_count"],
        dead_lettered_at=_utc(row["dl_at"]).isoformat(),
    )
