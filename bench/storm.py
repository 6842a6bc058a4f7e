"""Storm, in process: 10,000 alerts through decode_json → parse_alert → Intake.accept on real SQLite.

The parent starts a fresh interpreter (`python -m bench.storm --child DIR`) so that peak RSS is the
storm's own, not the rest of the bench's.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import KEYS, REPO
from bench.report import BenchFailed, Figure, hotspots, percentile

GOAL_RATE = 5_000  # alerts/s on one core
GOAL_RSS_MB = 150
TIMEOUT_SECONDS = 600  # far above any sane run; bounds a hung child
_RESULT = "RESULT "


def run(profile: bool = False) -> list[Figure]:
    """Run the storm in a fresh subprocess and turn its result into figures; BenchFailed if wrong."""
    with tempfile.TemporaryDirectory(prefix="dr-bench-storm-") as tmp:
        cmd = [sys.executable, "-m", "bench.storm", "--child", tmp, *(["--profile"] if profile else [])]
        done = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    result: dict[str, Any] | None = None
    for line in done.stdout.splitlines():
        if line.startswith(_RESULT):
            result = json.loads(line[len(_RESULT) :])
        else:
            print(line)
    if done.returncode != 0 or result is None:
        raise BenchFailed(f"storm child failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return _figures(result)


def _figures(r: dict[str, Any]) -> list[Figure]:
    problems = []
    if r["incidents"] != KEYS or r["opened"] != KEYS:
        problems.append(f"expected exactly {KEYS} incidents, found {r['incidents']} (opened {r['opened']})")
    if r["duplicates"] or r["informational"]:
        problems.append(f"{r['duplicates']} duplicates, {r['informational']} informational: expected none")
    if r["opened"] + r["updated"] != r["alerts"]:
        problems.append(f"opened + updated = {r['opened'] + r['updated']}, expected {r['alerts']}")
    if r["outbox_left"]:
        problems.append(f"{r['outbox_left']} incidents still hold unsent effects")
    if problems:
        raise BenchFailed("storm: " + "; ".join(problems))
    rate = r["alerts"] / r["seconds"]
    rss_mb = r["maxrss_kib"] * 1024 / 1e6
    queues = ", ".join(f"{q} {n}" for q, n in r["effects_by_queue"].items())
    return [
        Figure("storm", "alerts/s (in process)", f"{rate:,.0f}", f"≥ {GOAL_RATE:,}", rate >= GOAL_RATE),
        Figure("storm", "alerts, wall / CPU s", f"{r['alerts']:,} in {r['seconds']:.2f} / {r['cpu']:.2f} s"),
        Figure("storm", "per-alert p50 / p99", f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f} ms"),
        Figure("storm", "incidents opened", f"{r['incidents']} (asserted = {KEYS})"),
        Figure("storm", "effects queued", f"{r['effects']} ({queues})"),
        Figure("storm", "peak RSS", f"{rss_mb:.1f} MB", f"≤ {GOAL_RSS_MB} MB", rss_mb <= GOAL_RSS_MB),
        Figure("storm", "RSS before storm", f"{r['rss_before_kib'] * 1024 / 1e6:.1f} MB"),
    ]


def child(data_dir: Path, profile: bool) -> dict[str, Any]:
    """The storm itself; returns the raw numbers."""
    # Imported here: the parent process must not pay for (or be measured with) the app's modules.
    from bench.payloads import storm
    from shared import bootstrap
    from shared.domain.effects import QUEUES
    from shared.intake.azure_monitor import parse_alert
    from shared.intake.json_body import decode_json
    from shared.settings import MAX_BODY_BYTES, Settings

    bodies = storm()  # generated up front: the loop below measures intake only
    settings = Settings(
        data_dir=data_dir, policy_file=None, queue_lock_seconds=30.0, queue_max_delivery_count=10
    )
    bootstrap.reset(bootstrap.Services(settings))
    app = bootstrap.services()
    intake = app.intake  # policy, store and queue are built here, outside the timed loop
    counts = dict.fromkeys(("opened", "updated", "duplicates", "informational"), 0)
    latencies: list[float] = []
    rss_before = _current_rss_kib()
    profiler = cProfile.Profile() if profile else None
    cpu0, t0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for body in bodies:
        start = time.perf_counter()
        # What responders/alerts.py does per request, minus the HTTP host.
        payload = decode_json(body, "application/json", MAX_BODY_BYTES)
        services = bootstrap.services()
        signal = parse_alert(payload, services.owner())
        report = services.intake.accept([signal])
        latencies.append(time.perf_counter() - start)
        for name in counts:
            counts[name] += getattr(report, name)
    if profiler:
        profiler.disable()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    store, queue = intake.store, app.local_queue
    effects = {q: queue.active_count(q) for q in QUEUES.values()}
    latencies.sort()
    if profiler:
        print(f"storm profile (cProfile, {len(bodies):,} alerts; profiling slows the run):")
        print(hotspots(pstats.Stats(profiler)))
    return {
        "alerts": len(bodies),
        "seconds": seconds,
        "cpu": cpu,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        **counts,
        "incidents": len(store.list_incidents(None, None, 1000)),
        "outbox_left": len(store.with_pending_effects("9999", 1000)),
        "effects": sum(effects.values()),
        "effects_by_queue": effects,
        "rss_before_kib": rss_before,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # KiB on Linux
        "synchronous": app.settings.sqlite_synchronous,
        "profiled": profile,
    }


def _current_rss_kib() -> int:
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


def main() -> None:
    """`python -m bench.storm --child DIR [--profile]`: the subprocess side."""
    parser = argparse.ArgumentParser(prog="python -m bench.storm")
    parser.add_argument("--child", type=Path, required=True, help="empty data dir to use")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    result = child(args.child, args.profile)
    print(_RESULT + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
