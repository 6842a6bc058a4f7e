"""Opening SQLite: threads of one process take a file's write lock in turn, without SQLite's sleeps."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest

from shared.adapters import sqlite_db
from shared.adapters.sqlite_db import Database
from shared.errors import StoreBusy, StoreUnavailable

SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"


class Holder(threading.Thread):
    """Holds a write transaction on `db` until told to let go."""

    def __init__(self, db: Database) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.holding = threading.Event()
        self.let_go = threading.Event()

    def run(self) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT INTO notes (text) VALUES ('first')")
            self.holding.set()
            self.let_go.wait(30)


class Writer(threading.Thread):
    """One write on `db` from a connection whose SQLite busy timeout is 0: it would fail at once there."""

    def __init__(self, db: Database) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.error: BaseException | None = None

    def run(self) -> None:
        self.db.connection().execute("PRAGMA busy_timeout=0")
        try:
            with self.db.write() as conn:
                conn.execute("INSERT INTO notes (text) VALUES ('second')")
        except BaseException as e:
            self.error = e


def _texts(db: Database) -> list[str]:
    return [row["text"] for row in db.read().execute("SELECT text FROM notes ORDER BY id")]


def test_a_thread_waits_for_another_threads_write_in_this_process(tmp_path: Path) -> None:
    # Two Database objects on one file (the store and the action store share a file the same way).
    holder = Holder(Database(tmp_path / "d.sqlite3", SCHEMA))
    holder.start()
    assert holder.holding.wait(10)
    writer = Writer(Database(tmp_path / "d.sqlite3", SCHEMA))
    writer.start()
    writer.join(0.3)
    assert writer.is_alive(), "the second writer should be waiting for the first"
    holder.let_go.set()
    holder.join(10)
    writer.join(10)
    # Had it gone to SQLite with the lock held, busy_timeout=0 would have answered "locked" at once.
    assert writer.error is None
    assert _texts(Database(tmp_path / "d.sqlite3", SCHEMA)) == ["first", "second"]


def test_a_wait_past_the_busy_timeout_is_store_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_db, "BUSY_TIMEOUT_MS", 50)
    db = Database(tmp_path / "d.sqlite3", SCHEMA)
    holder = Holder(db)
    holder.start()
    assert holder.holding.wait(10)
    writer = Writer(db)
    writer.start()
    writer.join(10)
    holder.let_go.set()
    holder.join(10)
    assert isinstance(writer.error, StoreBusy)
    assert "d.sqlite3 stayed locked by another thread of this process" in str(writer.error)
    assert _texts(db) == ["first"]


def test_a_failed_transaction_is_rolled_back_and_lets_the_next_writer_in(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.sqlite3", SCHEMA)
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute("INSERT INTO notes (text) VALUES ('lost')")
        raise RuntimeError("the handler failed")
    writer = Writer(db)
    writer.start()
    writer.join(10)
    assert writer.error is None
    assert _texts(db) == ["second"]


def test_a_nested_write_fails_instead_of_hanging(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.sqlite3", SCHEMA)
    with db.write() as conn:
        conn.execute("INSERT INTO notes (text) VALUES ('outer')")
        with pytest.raises(sqlite3.OperationalError, match="within a transaction"), db.write():
            pass
    assert _texts(db) == ["outer"]


def test_a_lock_held_by_another_process_past_the_busy_timeout_is_store_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a stalled second `dr serve` on the data dir does: callers answer 503, not 500."""
    monkeypatch.setattr(sqlite_db, "BUSY_TIMEOUT_MS", 50)
    db = Database(tmp_path / "d.sqlite3", SCHEMA)
    other = sqlite3.connect(tmp_path / "d.sqlite3", isolation_level=None)  # not this Database's lock
    other.execute("BEGIN IMMEDIATE")
    try:
        busy = re.escape("d.sqlite3 stayed locked by another process for over 0.05 s")
        with pytest.raises(StoreBusy, match=busy), db.write() as conn:
            conn.execute("INSERT INTO notes (text) VALUES ('lost')")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _texts(db) == []


def test_a_full_disk_is_store_unavailable_with_nothing_half_written_and_the_lock_let_go(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "full.sqlite3", SCHEMA)
    with db.write() as conn:
        conn.execute("INSERT INTO notes (text) VALUES ('kept')")
    pages = db.read().execute("PRAGMA page_count").fetchone()[0]
    db.connection().execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL

    with pytest.raises(StoreUnavailable, match="database or disk is full"), db.write() as conn:
        conn.execute("INSERT INTO notes (text) VALUES ('first')")
        conn.execute("INSERT INTO notes (text) VALUES (?)", ("x" * 100_000,))

    assert [r[0] for r in db.read().execute("SELECT text FROM notes")] == ["kept"]
    db.connection().execute(f"PRAGMA max_page_count = {pages * 100}")
    with db.write() as conn:  # the lock was let go, the connection still works
        conn.execute("INSERT INTO notes (text) VALUES ('after')")
    assert [r[0] for r in db.read().execute("SELECT text FROM notes ORDER BY id")] == ["kept", "after"]
