"""The storm over HTTP: `dr serve` on 127.0.0.1, one keep-alive connection, one alert per request."""

from __future__ import annotations

import http.client
import json
import os
import pstats
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from bench import ALERTS, KEYS, REPO, alertmanager, asgi_floor
from bench.keepalive import free_port
from bench.payloads import storm
from bench.report import BenchFailed, Figure, hotspots, percentile

GOAL_RATIO = 1.0  # of Prometheus Alertmanager's rate, measured in the same run with the same client
FOLD_TIMEOUT = 120.0  # the 202s say what was accepted; the incidents follow a batch later
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
SEND_TIMEOUT = 600.0  # the whole storm; at 100 alerts/s it would still finish
STOP_TIMEOUT = 30.0


def run(profile: bool = False) -> list[Figure]:
    """Serve, send the storm, check the answers and the incidents, stop; BenchFailed if anything is wrong."""
    bodies = storm()
    before = alertmanager.rate(free_port())
    floor = asgi_floor.rate(free_port(), bodies)
    key = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="dr-bench-http-") as tmp:
        data, log_path, prof_path = Path(tmp) / "data", Path(tmp) / "serve.log", Path(tmp) / "serve.prof"
        port = free_port()
        with log_path.open("wb") as log:
            server = _start(port, data, key, log, prof_path if profile else None)
            try:
                _wait_healthy(server, port, log_path)
                sent = _send(port, key, bodies)
                lag, incidents, signals = _wait_folded(port, key)
            finally:
                stop_seconds = _stop(server)  # None: it had to be killed, reported below
        if profile:
            print("http profile (cProfile of the front's main thread; pumps and drain run in the worker):")
            print(hotspots(pstats.Stats(str(prof_path))))
        delivered = sum(_lines(p) for p in (data / "dry-run").glob("*.jsonl"))
    problems = []
    if stop_seconds is None:
        problems.append(f"dr serve did not stop within {STOP_TIMEOUT:.0f} s of SIGINT and was killed")
    if sent["failures"]:
        problems.append(f"{sent['failures']} answers were not 202, first: {sent['first_failure']}")
    if incidents != KEYS or signals != len(bodies) or sent["accepted"] != len(bodies):
        problems.append(
            f"expected exactly {KEYS} incidents holding {len(bodies)} signals, found {incidents} holding"
            f" {signals} ({sent['accepted']} accepted)"
        )
    if problems:
        raise BenchFailed("http: " + "; ".join(problems))
    # Alertmanager again after dr serve, and the ratio against the mean of the two, as the ceiling
    # bench measures: a machine that drifts during the run then moves both sides alike.
    after = alertmanager.rate(free_port())
    yardstick = (before + after) / 2
    rate = len(bodies) / sent["seconds"]
    ratio = rate / yardstick
    return [
        Figure("http", "alerts/s (dr serve)", f"{rate:,.0f}"),
        Figure(
            "http",
            "alerts/s (Alertmanager, same client)",
            f"{yardstick:,.0f} (before {before:,.0f}, after {after:,.0f})",
        ),
        Figure(
            "http",
            "requests/s (uvicorn, a do-nothing 202 app)",
            f"{floor:,.0f} = {floor / yardstick:.2f}× Alertmanager",
        ),
        Figure(
            "http", "dr serve / Alertmanager", f"{ratio:.2f}×", f"≥ {GOAL_RATIO:.1f}×", ratio >= GOAL_RATIO
        ),
        Figure("http", "last 202 → all folded into incidents", f"{lag:.2f} s"),
        Figure("http", "alerts, wall", f"{len(bodies):,} in {sent['seconds']:.2f} s, all 202"),
        Figure("http", "latency p50 / p99", f"{sent['p50_ms']:.2f} / {sent['p99_ms']:.2f} ms"),
        Figure("http", "connections opened", str(sent["connections"])),
        Figure(
            "http", "incidents (GET /api/incidents)", f"{incidents} holding {signals:,} signals (asserted)"
        ),
        Figure(
            "http",
            "effects delivered by pumps",
            f"{delivered} (by shutdown; stop took {stop_seconds or 0:.1f} s)",
        ),
    ]


def _start(
    port: int,
    data: Path,
    key: str,
    log: IO[bytes],
    prof: Path | None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    # "=": a random key may begin with "-", which argparse would take for an option.
    args = ["serve", "--host", HOST, "--port", str(port), "--data-dir", str(data), f"--function-key={key}"]
    dr = Path(sys.executable).with_name("dr")
    if prof is not None:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "shared.cli", *args]
    else:
        cmd = [str(dr), *args] if dr.exists() else [sys.executable, "-m", "shared.cli", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("DR_DATA_DIR", "DR_FUNCTION_KEY")}
    env |= extra_env or {}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_healthy(server: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchFailed(f"dr serve exited with {server.returncode}:\n{_tail(log_path)}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass  # not listening yet
        time.sleep(0.05)
    raise BenchFailed(f"dr serve not healthy within {START_TIMEOUT:.0f} s:\n{_tail(log_path)}")


def _send(port: int, key: str, bodies: list[bytes]) -> dict[str, Any]:
    """POST each alert in turn on one keep-alive connection, as an action group does."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    path = f"/api/alerts?code={quote(key)}"
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    failures, accepted, connections, sock = 0, 0, 0, None
    first_failure = ""
    deadline = time.monotonic() + SEND_TIMEOUT
    start = time.perf_counter()
    for body in bodies:
        sent_at = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        latencies.append(time.perf_counter() - sent_at)
        if conn.sock is not sock:  # http.client reconnects silently when the server closes
            connections, sock = connections + 1, conn.sock
        if response.status == 202:
            accepted += json.loads(answer)["accepted"]
        else:
            failures += 1
            first_failure = first_failure or f"{response.status} {answer[:300]!r}"
        if time.monotonic() > deadline:
            raise BenchFailed(f"http: storm not sent within {SEND_TIMEOUT:.0f} s")
    seconds = time.perf_counter() - start
    conn.close()
    latencies.sort()
    return {
        "seconds": seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "failures": failures,
        "first_failure": first_failure,
        "accepted": accepted,
        "connections": connections,
    }


def _wait_folded(port: int, key: str) -> tuple[float, int, int]:
    """Seconds until the incidents hold every signal (or the time-out), the incidents, their signals."""
    start = time.perf_counter()
    while True:
        incidents = _incidents(port, key)
        signals = sum(i["signal_count"] for i in incidents)
        if signals >= ALERTS or time.perf_counter() - start > FOLD_TIMEOUT:
            return time.perf_counter() - start, len(incidents), signals
        time.sleep(0.01)


def _incidents(port: int, key: str) -> list[dict[str, Any]]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("GET", f"/api/incidents?limit=1000&code={quote(key)}")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise BenchFailed(f"GET /api/incidents answered {response.status}: {body[:300]!r}")
    found: list[dict[str, Any]] = json.loads(body)["incidents"]
    return found


def _stop(server: subprocess.Popen[bytes]) -> float | None:
    """SIGINT (as Ctrl-C would), then wait; the seconds taken, or None if it had to be killed."""
    start = time.perf_counter()
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            return None
    return time.perf_counter() - start


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-chars:]
