"""`/dr status` over a long-lived store: 10,000 incidents (1,000 open) in SQLite and in a real Azurite;
the whole status read (store, queues, automation) and the /dr desk's answer in process, then from
`dr serve` on each store: `/dr status` as Slack sends it (signed, form-encoded) and GET /api/status."""

from __future__ import annotations

import cProfile
import gc
import http.client
import io
import json
import pstats
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import over_http, slack_command, status_world
from bench.keepalive import free_port
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

        table = f"status{uuid.uuid4().hex[:12]}"
        tables, table_actions = table_stores(None, connection, lambda: None, table=table)
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
        # `dr serve` reads its settings from the environment: the Azurite one adds the table's.
        secret = secrets.token_urlsafe(24)
        stores = {
            "SQLite": {"SLACK_SIGNING_SECRET": secret},
            "Azurite": {
                "SLACK_SIGNING_SECRET": secret,
                "DR_TABLES_CONNECTION_STRING": connection,
                "DR_TABLES_TABLE": table,
            },
        }
        expected = {}
        for name, env in stores.items():
            desk, expected[name] = _desk(data, name, env)
            figures += _timed(f"/dr status on the desk, {name}", desk, profile)
        if _shape(expected["SQLite"]) != _shape(expected["Azurite"]):
            raise BenchFailed("status: /dr status shows SQLite and Azurite differently")
        for name, env in stores.items():
            figures += _over_http(data, name, env, expected[name])
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


def _desk(data: Path, store: str, env: dict[str, str]) -> tuple[Callable[[], Any], dict[str, Any]]:
    """The /dr desk as `dr serve` wires it for these settings: a timed `/dr status`, and its answer."""
    from shared.bootstrap import Services
    from shared.chatops.inbound import form_fields, parse_command
    from shared.settings import Settings

    services = Services(Settings.from_env({"DR_DATA_DIR": str(data), **env}))
    command = parse_command(form_fields(slack_command.command_body("status", 0), slack_command.FORM))

    def answer() -> bytes:
        return json.dumps(services.desk.command(command).to_dict()).encode()

    reply: dict[str, Any] = json.loads(answer())
    _check_reply(reply, f"the desk on {store}")
    return answer, reply


def _check_reply(reply: dict[str, Any], store: str) -> None:
    """The status screen of the seeded world: for the channel, every open incident and dead letter counted."""
    texts = [_text(block) for block in reply.get("blocks", ())]
    wanted = [
        f"*Open incidents: {status_world.OPEN_INCIDENTS}*",
        f"Dead letters: {status_world.DEAD_LETTERS}",
        "Actions running or waiting",
        "paused: tenant lego",
    ]
    missing = [w for w in wanted if not any(w in t for t in texts)]
    if reply.get("response_type") != "in_channel" or texts[:1] != ["DR status"] or missing:
        raise BenchFailed(
            f"status: /dr status on {store} answered {reply.get('response_type')!r} with {len(texts)} blocks,"
            f" missing {missing or 'the header'}: {json.dumps(reply)[:300]}"
        )


def _shape(reply: dict[str, Any]) -> tuple[Any, ...]:
    """What does not move with the clock: the type, the headline text, the blocks' kinds."""
    return reply["response_type"], reply["text"], tuple(b["type"] for b in reply["blocks"])


def _text(block: dict[str, Any]) -> str:
    if block["type"] == "context":
        return " ".join(e.get("text", "") for e in block["elements"])
    text = block.get("text") or {}
    return str(text.get("text", ""))


def _over_http(data: Path, store: str, env: dict[str, str], expected: dict[str, Any]) -> list[Figure]:
    """`dr serve` on the seeded store: /dr status signed as Slack signs it, and GET /api/status, each on
    one keep-alive connection."""
    key = secrets.token_urlsafe(16)
    port = free_port()
    log_path = data.parent / f"serve-{store}.log"
    times: list[float] = []
    with log_path.open("wb") as log:
        server = over_http._start(port, data, key, log, None, env)
        try:
            over_http._wait_healthy(server, port, log_path)

            def check(reply: dict[str, Any]) -> None:
                _check_reply(reply, f"dr serve on {store}")
                if _shape(reply) != _shape(expected):
                    raise BenchFailed(
                        f"status: /dr status from dr serve on {store} is not the desk's answer:"
                        f" {json.dumps(reply)[:300]}"
                    )

            slack_times, answer = slack_command.timed_commands(
                port, env["SLACK_SIGNING_SECRET"], "status", READS, WARM_UP, check
            )
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
    blocks = len(json.loads(answer)["blocks"])
    return [
        *_figures(f"POST /api/slack/commands /dr status, dr serve on {store}", slack_times),
        Figure("status", f"/dr status reply on {store}", f"{len(answer):,} bytes, {blocks} blocks (checked)"),
        *_figures(f"GET /api/status, dr serve on {store}", times),
        Figure("status", f"GET /api/status body on {store}", f"{len(body):,} bytes"),
    ]
