"""Prometheus Alertmanager on the same machine, fed the same storm by the same kind of client: the
yardstick for `dr serve`'s HTTP intake (issue 8 asks for at least its rate)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import ALERTS, KEYS
from bench.keepalive import post_all
from bench.report import BenchFailed

HOST = "127.0.0.1"
BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's
CONFIG = "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n"
START_TIMEOUT = 30.0


def binary() -> str:
    """The Alertmanager on PATH; BenchFailed naming the package when there is none."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    raise BenchFailed("http: Alertmanager not found: apt-get install prometheus-alertmanager")


def bodies() -> list[bytes]:
    """The storm as Alertmanager's v2 API takes it: one alert per request, KEYS alert groups."""
    return [
        json.dumps(
            [
                {
                    "labels": {"alertname": f"redis-errors-{n % KEYS}", "instance": f"storm-{n}"},
                    "annotations": {"summary": "Redis errors above threshold", "description": "x" * 200},
                    "startsAt": "2026-12-02T00:00:00Z",
                }
            ]
        ).encode()
        for n in range(ALERTS)
    ]


def rate(port: int) -> float:
    """Alerts per second: Alertmanager started, the storm sent on one keep-alive connection, stopped."""
    with tempfile.TemporaryDirectory(prefix="dr-bench-am-") as tmp:
        config = Path(tmp) / "alertmanager.yml"
        config.write_text(CONFIG)
        server = subprocess.Popen(
            [
                binary(),
                f"--config.file={config}",
                f"--storage.path={tmp}",
                f"--web.listen-address={HOST}:{port}",
                "--cluster.listen-address=",  # one node: no gossip port
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(server, port)
            return post_all(port, "/api/v2/alerts", bodies(), 200, "Alertmanager")
        finally:
            server.terminate()
            server.wait(10)


def _wait_ready(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchFailed(f"http: Alertmanager exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/-/ready")
            ready = conn.getresponse().status == 200
            conn.close()
            if ready:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchFailed("http: Alertmanager not ready")
