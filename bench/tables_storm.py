"""The storm on Table Storage: 10,000 alerts over 100 keys admitted to the intake queue, folded by 8
concurrent writers into a real Azurite, each its own client as Function instances would be."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import ALERTS, KEYS
from bench.payloads import storm
from bench.report import BenchFailed, Figure

WRITERS = 8
BATCH = 100  # host.json's serviceBus.maxMessageBatchSize
GOAL_OPS_PER_ALERT = 1.2
GOAL_LOST_PERCENT = 1.0


def run(profile: bool = False) -> list[Figure]:
    """Admit, fold with WRITERS threads, check exactly KEYS incidents holding every signal."""
    from shared.adapters.azure_tables import table_stores
    from shared.adapters.azure_tables_client import TableCounter
    from shared.adapters.sqlite_queue import SqliteQueue
    from shared.bootstrap import Services
    from shared.intake.admission import INTAKE_QUEUE, Admission, signal_of
    from shared.intake.azure_monitor import parse_alert
    from shared.intake.json_body import decode_json
    from shared.intake.pipeline import Intake
    from shared.settings import MAX_BODY_BYTES, Settings
    from tests.servers.azurite import running_azurite

    del profile
    with tempfile.TemporaryDirectory(prefix="dr-bench-tables-") as tmp, running_azurite() as connection:
        services = Services(Settings(data_dir=Path(tmp)))
        queue = SqliteQueue(Path(tmp) / "queue.sqlite3")
        admission = Admission(queue, services.policy)
        signals = [
            parse_alert(decode_json(b, "application/json", MAX_BODY_BYTES), services.owner()) for b in storm()
        ]
        rejected = 0
        started = time.perf_counter()
        for signal in signals:  # one webhook request each
            try:
                admission.admit([signal])
            except Exception:
                rejected += 1
        admitted = time.perf_counter() - started

        table = f"storm{uuid.uuid4().hex[:12]}"
        counter = TableCounter()
        table_stores(None, connection, lambda: None, table=table)  # creates the table, uncounted
        errors: list[Exception] = []

        def writer() -> None:
            store, _ = table_stores(None, connection, lambda: None, table=table, counter=counter)
            intake = Intake(store, queue, services.policy, services.clock)
            while batch := queue.receive_batch(INTAKE_QUEUE, BATCH):
                try:
                    intake.accept([signal_of(r.body) for r in batch])
                except Exception as e:  # reported below; the batch comes again
                    errors.append(e)
                    queue.abandon_batch(batch)
                    continue
                queue.complete_batch(batch)

        started = time.perf_counter()
        threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        folded = time.perf_counter() - started
        check, _ = table_stores(None, connection, lambda: None, table=table)
        incidents = check.list_incidents(None, None, 1000)
        held = sum(i.signal_count for i in incidents)
    problems = []
    if len(incidents) != KEYS or held != ALERTS:
        problems.append(
            f"expected {KEYS} incidents holding {ALERTS} signals, found {len(incidents)} holding {held}"
        )
    if rejected:
        problems.append(f"{rejected} admissions rejected")
    if problems:
        raise BenchFailed(
            "tables: " + "; ".join(problems) + (f"; first error: {errors[0]!r}" if errors else "")
        )
    per_alert = counter.requests / ALERTS
    lost = counter.conflicts + counter.preconditions_failed
    lost_percent = 100 * lost / max(counter.requests, 1)
    return [
        Figure(
            "tables", f"incidents / signals ({WRITERS} writers)", f"{len(incidents)} / {held:,} (asserted)"
        ),
        Figure("tables", "admissions rejected", f"{rejected}", "0", rejected == 0),
        Figure(
            "tables",
            "Table requests per alert",
            f"{per_alert:.3f}",
            f"≤ {GOAL_OPS_PER_ALERT}",
            per_alert <= GOAL_OPS_PER_ALERT,
        ),
        Figure(
            "tables",
            "writes lost to a conflict (409/412)",
            f"{lost} of {counter.requests:,} ({lost_percent:.2f} %)",
            f"≤ {GOAL_LOST_PERCENT:.0f} %",
            lost_percent <= GOAL_LOST_PERCENT,
        ),
        Figure("tables", "admitted (SQLite intake queue)", f"{ALERTS / admitted:,.0f} alerts/s"),
        Figure("tables", "folded into Azurite", f"{ALERTS / folded:,.0f} alerts/s ({folded:.1f} s)"),
        Figure("tables", "batches that failed and came again", str(len(errors))),
    ]
