"""`dr serve` as a real process on a free port, with its own data dir, spoken to over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers.lifetime import dies_with_test_run

KEY = "e2e-function-key"
DR = Path(sys.executable).with_name("dr")


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Responder:
    """One `dr serve` process and an HTTP client for it."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, cwd: Path | None = None, app: str = ""
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api"
        self.log = data_dir.parent / f"dr-serve-{self.port}.log"
        command = [
            str(DR),
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--function-key",
            KEY,
            *(["--app", app] if app else []),  # a module that defines `app` (function_app unless given)
        ]
        # Not the checkout: a developer's local.settings.json there must not reach the test's responder.
        self.cwd = cwd or data_dir.parent
        self.cwd.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                dies_with_test_run(command),
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        self.client = httpx.Client(base_url=self.base, timeout=30)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dr serve exited: {self.log.read_text()}")
            try:
                if self.client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"dr serve not ready: {self.log.read_text()}")

    def post(
        self, path: str, body: bytes, content_type: str = "application/json", **headers: str
    ) -> httpx.Response:
        """POST with the function key."""
        return self.client.post(
            path, content=body, params={"code": KEY}, headers={"content-type": content_type, **headers}
        )

    def get(self, path: str, **params: str) -> httpx.Response:
        """GET with the function key."""
        return self.client.get(path, params={"code": KEY, **params})

    def folded(self, answer: httpx.Response, seconds: float = 20) -> list[str | None]:
        """Wait until intake has folded an intake 202's signals: the incident of each, None for one
        kept as informational (read from the store file; the 202 says only what was accepted)."""
        assert answer.status_code == 202, answer.text
        ids = answer.json()["signals"]
        found: dict[str, str | None] = {}

        def stored() -> bool:
            with sqlite3.connect(f"file:{self.data_dir / 'incidents.sqlite3'}?mode=ro", uri=True) as conn:
                marks = ",".join("?" * len(ids))
                rows = conn.execute(f"SELECT id, incident_id FROM signals WHERE id IN ({marks})", ids)
                found.update(rows.fetchall())
            return len(found) == len(set(ids))

        self.wait_for(stored, f"signals {ids} folded", seconds)
        return [found[i] for i in ids]

    def incidents_of(self, answer: httpx.Response) -> list[str]:
        """The incidents an intake 202's signals went to, once folded, in order, each once."""
        return list(dict.fromkeys(i for i in self.folded(answer) if i is not None))

    def wait_for(self, check: Callable[[], bool], what: str, seconds: float = 20) -> None:
        """Poll until the queue workers have done something (no timing is asserted, only the outcome)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(f"not done within {seconds}s: {what}\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGINT, as Ctrl-C would, then wait."""
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_responder(tmp_path: Path) -> Iterator[Callable[..., Responder]]:
    """Start as many `dr serve` processes as a test needs; all are stopped after it."""
    started: list[Responder] = []

    def start(
        data_dir: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        app: str = "",
    ) -> Responder:
        responder = Responder(data_dir or tmp_path / f"data-{len(started)}", env, cwd, app)
        started.append(responder)
        return responder

    yield start
    for responder in started:
        responder.stop()


@pytest.fixture(scope="module")
def responder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Responder]:
    """One `dr serve` shared by a module's tests (tests that need a clean slate start their own)."""
    started = Responder(tmp_path_factory.mktemp("responder") / "data")
    yield started
    started.stop()
