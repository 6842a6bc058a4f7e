"""`dr serve` acting on alerts, for the action benches: started with a policy and env, spoken to over HTTP."""

from __future__ import annotations

import http.client
import json
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.keepalive import free_port
from bench.over_http import HOST, _start, _stop, _tail, _wait_healthy
from bench.report import BenchFailed
from tests.action_kinds import acting_policy

FAILOVER = '{ action = "redis.failover", mode = "auto", page = "on-failure", settle_minutes = 0 }'
FINAL = ("succeeded", "failed", "refused", "skipped", "denied", "expired")


@dataclass
class Served:
    """One running `dr serve`: POST alerts, GET actions."""

    port: int
    key: str
    log: Path

    def post_alert(self, body: bytes) -> dict[str, Any]:
        """POST /api/alerts; the 202's JSON (BenchFailed on any other answer)."""
        status, answer = self._call("POST", "/api/alerts", body)
        if status != 202:
            raise BenchFailed(f"POST /api/alerts answered {status}: {answer[:300]!r}")
        found: dict[str, Any] = json.loads(answer)
        return found

    def actions(self) -> list[dict[str, Any]]:
        """GET /api/actions (up to 1000)."""
        status, answer = self._call("GET", "/api/actions?limit=1000", None)
        if status != 200:
            raise BenchFailed(f"GET /api/actions answered {status}: {answer[:300]!r}")
        found: list[dict[str, Any]] = json.loads(answer)["actions"]
        return found

    def wait_for(self, done: Callable[[], bool], what: str, seconds: float) -> None:
        """Poll every 10 ms; BenchFailed with the server's log tail when time is up."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.01)
        raise BenchFailed(f"not within {seconds:.0f} s: {what}\n{_tail(self.log)}")

    def _call(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            sep = "&" if "?" in path else "?"
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, f"{path}{sep}code={quote(self.key)}", body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@contextmanager
def serving(
    env: dict[str, str], targets: str = "", check_seconds: float = 0.2, **guardrails: int
) -> Iterator[Served]:
    """`dr serve` with a policy failing Redis over on `redis-down*` alerts; stopped after.

    `check_seconds` is how often a running operation is checked: short, so a bench that waits for
    its failovers to finish does not wait out the 15 s a deployment uses.
    """
    with tempfile.TemporaryDirectory(prefix="dr-bench-act-") as tmp:
        policy = acting_policy(Path(tmp) / "policy.toml", FAILOVER, targets=targets, **guardrails)
        port, key, log_path = free_port(), secrets.token_urlsafe(16), Path(tmp) / "serve.log"
        settings = {
            "DR_POLICY_FILE": str(policy),
            "DR_ACTION_CHECK_SECONDS": f"{check_seconds:g}",
            "DR_RETRY_BASE_SECONDS": "0.05",
            "DR_RETRY_MAX_SECONDS": "0.2",
        }
        with log_path.open("wb") as log:
            server = _start(port, Path(tmp) / "data", key, log, None, settings | env)
            try:
                _wait_healthy(server, port, log_path)
                yield Served(port, key, log_path)
            finally:
                _stop(server)


def final(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The actions in a final state."""
    return [a for a in actions if a["state"] in FINAL]
