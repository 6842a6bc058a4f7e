"""`/dr status` over a long-lived store: 10,000 incidents (1,000 open) in SQLite and in a real Azurite;
the whole status read (store, queues, automation) in process, and GET /api/status from `dr serve`."""

from __future__ import annotations

import cProfile
import gc
import http.client
import io
import pstats
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import over_http, status_world
from bench.report import BenchFailed, Figure, hotspots, percentile

READS = 200
WARM_UP = 5
GOAL_P99_MS = 300.0


def run(profile: bool = False) -> list[Figure]:
    """Seed both stores, check they tell the same status, time the reads on each and over HTTP."""
    from shared.adapters.azure_tables import table_stores
    from shared.adapters.sqlite_actions import SqliteActionStore
    from shared.adapters.sqlite_queue import SqliteQueue
    from shared.adapters.sqlite_store import SqliteIncidentStore
    from shared.triage.policy import load_policy
    from tests.servers.azurite import running_azurite

    seeded = status_world.world()
    policy = load_policy(None)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="dr-bench-status-") as tmp, running_azurite() as connection:
        data = Path(tmp) / "data"
        store = SqliteIncidentStore(data / "incidents.sqlite3")
        queue = SqliteQueue(data / "queue.sqlite3")
        started = time.perf_counter()
        status_world.seed_sqlite(store, seeded)
        sqlite_actions = SqliteActionStore(store.db)
        status_world.seed_actions(sqlite_actions, seeded)
        status_world.seed_dead_letters(queue, seeded)
        sqlite_seconds = time.perf_counter() - started

        tables, table_actions = table_stores(
            None, connection, lambda: None, table=f"status{uuid.uuid4().hex[:12]}"
        )
        started = time.perf_counter()
        transactions = status_world.seed_tables(tables, seeded)
        status_world.seed_actions(table_actions, seeded)
        tables_seconds = time.perf_counter() - started

        def reader(incidents: Any, actions: Any) -> Callable[[], dict[str, Any]]:
            from shared.status.read import read_automation, read_status

            return lambda: read_status(
                incidents, queue, policy, status_world.NOW, read_automation(actions, actions, True)
            ).to_dict()

        on_sqlite, on_tables = reader(store, sqlite_actions), reader(tables, table_actions)
        _check(on_sqlite(), on_tables())
        # A reader's process does not hold the 10,000 seeded incidents: with them alive, each full
        # collection of the garbage collector walks them too, and a few reads in a hundred pay for it.
        del seeded
        gc.collect()
        figures.append(
            Figure(
                "status",
                "seeded",
                f"{status_world.INCIDENTS:,} incidents ({status_world.OPEN_INCIDENTS:,} open): SQLite"
                f" {sqlite_seconds:.1f} s one commit each; Azurite {tables_seconds:.1f} s in {transactions:,}"
                " batch transactions",
            )
        )
        figures += _timed("read_status, SQLite", on_sqlite, profile)
        figures += _timed("read_status, Azurite", on_tables, profile)
        figures += _over_http(data)
    return figures


def _check(sqlite: dict[str, Any], tables: dict[str, Any]) -> None:
    """Both stores hold the same world: the same status, and every open incident counted."""
    incidents = sqlite["incidents"]
    if incidents["open"] != status_world.OPEN_INCIDENTS:
        raise BenchFailed(
            f"status: SQLite counts {incidents['open']} open, seeded {status_world.OPEN_INCIDENTS}"
        )
    for face in (sqlite, tables):
        face.pop("generated_at")
    if sqlite != tables:
        different = sorted(k for k in sqlite if sqlite[k] != tables.get(k))
        raise BenchFailed(f"status: SQLite and Azurite disagree on {', '.join(different)}")


def _timed(name: str, read: Callable[[], Any], profile: bool) -> list[Figure]:
    for _ in range(WARM_UP):
        read()
    times = []
    profiler = cProfile.Profile() if profile else None
    for _ in range(READS):
        started = time.perf_counter()
        if profiler is not None:
            profiler.runcall(read)
        else:
            read()
        times.append(time.perf_counter() - started)
    if profiler is not None:
        print(f"{name} profile:")
        print(hotspots(pstats.Stats(profiler, stream=io.StringIO())))
    return _figures(name, times)


def _figures(name: str, times: list[float]) -> list[Figure]:
    times.sort()
    p50, p95, p99 = (percentile(times, p) * 1000 for p in (50, 95, 99))
    worst = times[-1] * 1000
    return [
        Figure(
            "status",
            f"{name} p50 / p95 / p99 / max ({len(times)} reads)",
            f"{p50:.1f} / {p95:.1f} / {p99:.1f} / {worst:.1f} ms",
            f"p99 ≤ {GOAL_P99_MS:.0f} ms",
            p99 <= GOAL_P99_MS,
        )
    ]


def _over_http(data: Path) -> list[Figure]:
    """GET /api/status from `dr serve` on the seeded data directory, on one keep-alive connection."""
    key = secrets.token_urlsafe(16)
    port = over_http._free_port()
    log_path = data.parent / "serve.log"
    times: list[float] = []
    with log_path.open("wb") as log:
        server = over_http._start(port, data, key, log, None)
        try:
            over_http._wait_healthy(server, port, log_path)
            conn = http.client.HTTPConnection(over_http.HOST, port, timeout=30)
            path = f"/api/status?code={quote(key)}"
            for n in range(WARM_UP + READS):
                started = time.perf_counter()
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise BenchFailed(f"status: GET /api/status answered {response.status}: {body[:300]!r}")
                if n >= WARM_UP:
                    times.append(time.perf_counter() - started)
            conn.close()
        finally:
            over_http._stop(server)
    figures = _figures("GET /api/status, dr serve on SQLite", times)
    return [*figures, Figure("status", "GET /api/status body", f"{len(body):,} bytes")]
