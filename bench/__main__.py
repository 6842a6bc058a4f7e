"""`python -m bench [NAME] [--profile]`: run one benchmark, or all of them."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bench import (
    ALERTS,
    KEYS,
    coldstart,
    first_response,
    intake_ceiling,
    malformed,
    over_http,
    sentinel_failover,
    status,
    storm,
    tables_storm,
)
from bench.machine import describe
from bench.report import BenchFailed, Figure, show, table

BENCHES: dict[str, Callable[[bool], list[Figure]]] = {
    "coldstart": coldstart.run,
    "storm": storm.run,
    "http": over_http.run,
    "ceiling": intake_ceiling.run,
    "tables": tables_storm.run,
    "malformed": malformed.run,
    "first-response": first_response.run,
    "sentinel": sentinel_failover.run,
    "status": status.run,
}
TITLES = {
    "coldstart": f"coldstart: {coldstart.APP!r} vs {coldstart.BASELINE!r}, {coldstart.RUNS} runs each",
    "storm": f"storm: {ALERTS:,} alerts / {KEYS} keys through decode_json → parse_alert → Intake.accept",
    "http": (
        "http: the same storm to `dr serve`, one request per alert on one keep-alive connection, beside"
        " Prometheus Alertmanager"
    ),
    "ceiling": (
        "ceiling: Alertmanager, a do-nothing 202 app and a minimal durable intake (key, content type,"
        " essentials, one append) on uvicorn and on a bare protocol, alone and beside a busy core, the"
        " same storm and client"
    ),
    "tables": (
        f"tables: the storm admitted to the intake queue, then folded by {tables_storm.WRITERS} writers into"
        " a real Azurite"
    ),
    "malformed": f"malformed: bad and fuzzed requests ({malformed.EXAMPLES} per kind) to each POST route",
    "first-response": (
        f"first-response: {first_response.CACHES} Azure caches down at once through `dr serve`, ARM and"
        " managed-identity stubs: each alert's 202 → its action's first ARM request"
    ),
    "sentinel": "sentinel: an alert to `dr serve` → real Sentinels fail over → the new master takes a write",
    "status": (
        f"status: /dr status over {status.status_world.INCIDENTS:,} incidents"
        f" ({status.status_world.OPEN_INCIDENTS:,} open) on SQLite and on a real Azurite: the read and the"
        " desk in process, then signed Slack commands and GET /api/status to `dr serve` on each"
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmark (all by default); exit 1 if a correctness check fails."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("bench", nargs="?", choices=sorted(BENCHES), help="one benchmark (default: all)")
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile hotspots (slower; figures then inflated)"
    )
    args = parser.parse_args(argv)
    names = [args.bench] if args.bench else list(BENCHES)
    print(describe(), flush=True)
    started = time.perf_counter()
    figures: list[Figure] = []
    for name in names:
        print(f"\n{TITLES[name]}", flush=True)
        bench_started = time.perf_counter()
        try:
            results = BENCHES[name](args.profile)
        except BenchFailed as e:
            print(f"\nFAILED: {e}", file=sys.stderr)
            return 1
        show(results)
        print(f"  ({time.perf_counter() - bench_started:.1f} s)", flush=True)
        figures += results
    print(f"\n{describe()}")
    if args.profile:
        print("note: --profile was on, so the rates above are slowed by the profiler")
    print(table(figures))
    print(f"bench took {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
