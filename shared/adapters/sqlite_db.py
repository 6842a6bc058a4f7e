"""Opening SQLite the same way everywhere: WAL, a busy timeout, one connection per thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.errors import StoreBusy, StoreUnavailable

# NORMAL in WAL mode: a commit is in the WAL file before we answer, so it survives a crash of
# this process; FULL also fsyncs each commit, surviving power loss at a cost in throughput.
SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")
# SQLite's words for a file that cannot take a write now, whoever asks (SQLITE_FULL, _IOERR, _READONLY).
_UNAVAILABLE = ("database or disk is full", "disk I/O error", "attempt to write a readonly database")
BUSY_TIMEOUT_MS = 10_000

# Threads of one process opening a file take turns: switching to WAL answers "locked" at once
# instead of waiting out the busy timeout, and the schema script must not meet another's writes.
_SETUP_LOCKS: dict[Path, threading.RLock] = {}
# Threads of one process also queue for a file's write lock here, not in SQLite: its busy handler
# sleeps 1, 2, 5 … 100 ms between tries, so with dozens of pump threads writing, a waiter slept on
# long after the lock was free (most of an action's delivery time under 50 failovers at once).
# Other processes still meet SQLite's lock and its busy timeout.
_WRITE_LOCKS: dict[Path, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _setup_lock(path: Path) -> threading.RLock:
    with _LOCKS_GUARD:
        return _SETUP_LOCKS.setdefault(path.resolve(), threading.RLock())


def _write_lock(path: Path) -> threading.RLock:
    with _LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(path.resolve(), threading.RLock())


class Database:
    """A SQLite file shared by threads and processes; each thread gets its own connection."""

    def __init__(self, path: str | Path, schema: str, synchronous: str = "NORMAL") -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            # SQLite reads an unknown value as NORMAL without a word: never weaken durability silently.
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}: {synchronous!r}")
        self.synchronous = synchronous
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._setup_lock = _setup_lock(self.path)
        self._write_lock = _write_lock(self.path)
        self._schema = schema
        # executescript commits as it goes; CREATE … IF NOT EXISTS makes a concurrent start harmless
        # (between processes; in one, the lock keeps it from meeting another thread's writes).
        with self._setup_lock:
            self.connection().executescript(schema)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE in `write`).
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.row_factory = sqlite3.Row
            with self._setup_lock:  # setting WAL mode answers "locked" at once, not after a wait
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # Checkpoint less often than every 1000 pages: a storm rewrites the same hot pages,
            # and each checkpoint copies them (and syncs) again.
            conn.execute("PRAGMA wal_autocheckpoint=4000")
            self._local.conn = conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front, so two processes never deadlock."""
        conn = self.connection()
        # Reentrant, so a nested write fails in SQLite ("within a transaction") instead of hanging here.
        if not self._write_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise StoreBusy(self._busy("another thread of this process"))
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                raise StoreBusy(self._busy("another process")) from e
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.OperationalError as e:
                self._roll_back(conn)
                if any(sign in str(e) for sign in _UNAVAILABLE):
                    raise StoreUnavailable(f"{self.path.name}: {e}") from e
                raise
            except BaseException:
                self._roll_back(conn)
                raise
        finally:
            self._write_lock.release()

    @staticmethod
    def _roll_back(conn: sqlite3.Connection) -> None:
        # SQLite has already rolled back a transaction that failed for a full disk or an I/O error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _busy(self, holder: str) -> str:
        return f"{self.path.name} stayed locked by {holder} for over {BUSY_TIMEOUT_MS / 1000:g} s"

    def read(self) -> sqlite3.Connection:
        """A connection for reads (each statement sees a consistent snapshot)."""
        return self.connection()

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
