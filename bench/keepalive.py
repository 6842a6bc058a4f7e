"""The yardsticks' client: POST each body in turn on one keep-alive connection, as an action group does."""

from __future__ import annotations

import http.client
import socket
import time

from bench.report import BenchFailed

HOST = "127.0.0.1"


def post_all(
    port: int, path: str, bodies: list[bytes], status: int, who: str, headers: dict[str, str] | None = None
) -> float:
    """Requests per second; BenchFailed naming `who` at the first answer that is not `status`."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Content-Type": "application/json", **(headers or {})}
    start = time.perf_counter()
    for body in bodies:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != status:
            raise BenchFailed(f"http: {who} answered {response.status}")
    seconds = time.perf_counter() - start
    conn.close()
    return len(bodies) / seconds


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port
