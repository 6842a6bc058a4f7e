"""The floor under any Python intake: an ASGI app that does nothing but answer 202, on the same
uvicorn (httptools) that `dr serve` runs, fed the same storm by the same client. What `dr serve`
spends above this rate is ours; what Alertmanager gains over it is Go's."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from typing import Any

from bench.keepalive import post_all
from bench.report import BenchFailed

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
ANSWER = b'{"accepted":1}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole body, answer 202: what every intake must do at least."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 202, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": ANSWER})


def rate(
    port: int,
    bodies: list[bytes],
    target: str = "bench.asgi_floor:app",
    who: str = "the do-nothing app",
    path: str = "/api/alerts",
    headers: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> float:
    """Requests per second: an ASGI app (the do-nothing one by default) on the uvicorn `dr serve` runs,
    the storm sent on one keep-alive connection."""
    command = [sys.executable, "-m", "uvicorn", target, "--host", HOST, "--port", str(port)]
    command += ["--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    return served_rate(command, port, bodies, who, path, headers, env)


def served_rate(
    command: list[str],
    port: int,
    bodies: list[bytes],
    who: str,
    path: str = "/api/alerts",
    headers: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> float:
    """Requests per second: the server `command` starts on `port`, fed the storm, then stopped."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_listening(server, port, who)
        return post_all(port, path, bodies, 202, who, headers)
    finally:
        server.terminate()
        server.wait(10)


def _wait_listening(server: subprocess.Popen[bytes], port: int, who: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchFailed(f"http: {who} exited with {server.returncode}")
        try:
            http.client.HTTPConnection(HOST, port, timeout=5).connect()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchFailed(f"http: {who} did not listen")
