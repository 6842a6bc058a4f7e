"""`dr serve`'s inbox: alerts already answered 202, waiting for the full path onto the intake queue.

A SQLite file of its own (`DATA_DIR/inbox.sqlite`), so that an append never waits on the queue
file's write lock, which the folders hold in turns; WAL with the store's and queue's
`synchronous` (NORMAL unless DR_SQLITE_SYNCHRONOUS says FULL), so an accepted alert outlives a
crash of the process (kill -9), and with FULL a power loss. The worker's drain reads
rows in id order, admits them, and forgets them in batches. The newest row it admitted is emptied,
not deleted: SQLite gives a new row the largest id there plus one, so keeping it keeps ids rising
and a drain that remembers the last id it admitted cannot skip a newer row (AUTOINCREMENT would
do the same at the cost of a second write in every append: 12 µs where the append takes 13).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from shared.adapters.sqlite_db import SYNCHRONOUS_MODES

log = logging.getLogger(__name__)

FILE_NAME = "inbox.sqlite"
# An append that cannot have the write lock within this long (the drain forgets in short
# transactions) is left to the full path instead, which has its own answer for a busy store.
APPEND_TIMEOUT_SECONDS = 1.0
# The appender never checkpoints on its own below this many WAL pages (~40 MB): the drain does,
# after it forgets. Above it, it does, so a stopped drain cannot grow the WAL without bound.
APPENDER_AUTOCHECKPOINT_PAGES = 10_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    body BLOB NOT NULL
)
"""


@dataclass(frozen=True)
class Waiting:
    """An accepted alert not yet on the intake queue."""

    id: int
    received_at: float
    body: bytes


class Inbox:
    """The inbox file; one connection, used by one thread at a time (the event loop, or the drain)."""

    def __init__(self, data_dir: Path, synchronous: str = "NORMAL", *, appender: bool = False) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILE_NAME
        self._db = sqlite3.connect(
            self.path, timeout=APPEND_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # DR_SQLITE_SYNCHRONOUS, as for the store and the queue (validated by Settings): FULL also
        # survives a power loss, at an fsync in every append.
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}: {synchronous!r}")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        if appender:
            self._db.execute(f"PRAGMA wal_autocheckpoint={APPENDER_AUTOCHECKPOINT_PAGES}")
        self._db.execute(_SCHEMA)

    def append(self, body: bytes) -> int:
        """Keep an accepted body; on return it is in the WAL. sqlite3.Error if it could not be."""
        cursor = self._db.execute("INSERT INTO inbox (received_at, body) VALUES (?, ?)", (time.time(), body))
        return int(cursor.lastrowid or 0)

    def waiting(self, after: int, limit: int) -> list[Waiting]:
        """Up to `limit` bodies with ids above `after`, oldest first."""
        rows = self._db.execute(
            "SELECT id, received_at, body FROM inbox WHERE id > ? AND length(body) > 0 ORDER BY id LIMIT ?",
            (after, limit),
        ).fetchall()
        return [Waiting(row[0], row[1], bytes(row[2])) for row in rows]

    def forget(self, through: int) -> None:
        """Drop the bodies up to `through` (they are on the intake queue), then checkpoint the WAL."""
        # The row `through` stays, emptied, so that ids keep rising (see the module's docstring).
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("DELETE FROM inbox WHERE id < ?", (through,))
            self._db.execute("UPDATE inbox SET body = x'' WHERE id = ?", (through,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def count(self) -> int:
        """How many accepted bodies wait."""
        return int(self._db.execute("SELECT COUNT(*) FROM inbox WHERE length(body) > 0").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def waiting_in(data_dir: Path) -> int | None:
    """How many accepted alerts this data dir's inbox holds; None if it has no inbox."""
    path = data_dir / FILE_NAME
    if not path.is_file():
        return None
    db = sqlite3.connect(path, timeout=APPEND_TIMEOUT_SECONDS)
    try:
        return int(db.execute("SELECT COUNT(*) FROM inbox WHERE length(body) > 0").fetchone()[0])
    except sqlite3.OperationalError:  # created a moment ago, its table not yet
        return None
    except sqlite3.DatabaseError as e:  # damaged: the rest of the status must still answer
        log.warning("the inbox %s cannot be read, so the status leaves it out: %s", path, e)
        return None
    finally:
        db.close()
