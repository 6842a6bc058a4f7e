"""A real Azurite Table service for the Table Storage adapter's tests, on a free loopback port.

Azurite 3.35.0 (the last release that runs on Node 20) is installed into `.azurite/` by
`make setup`; `start()` raises `MissingAzurite` saying so when it is not there (the tests fail
on it, they are never skipped). In memory, so nothing is left behind; readiness is polled.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.servers.lifetime import dies_with_test_run

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".azurite" / "node_modules" / ".bin" / "azurite-table"
READY_SECONDS = 30.0
# The well-known development account every Azurite accepts.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class MissingAzurite(RuntimeError):
    """Azurite is not installed in the checkout."""


def connection_string(port: int) -> str:
    """The connection string of the development account on this port."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"TableEndpoint=http://{HOST}:{port}/{ACCOUNT};"
    )


def free_port() -> int:
    """A port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running_azurite() -> Iterator[str]:
    """Start azurite-table, wait until it listens, yield its connection string, stop it."""
    if not BINARY.exists():
        raise MissingAzurite(f"{BINARY} not found: run `make setup` (it installs azurite@3.35.0 there)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="azurite-") as workdir:
        log = Path(workdir) / "azurite.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                dies_with_test_run(
                    [
                        str(BINARY),
                        "--inMemoryPersistence",
                        "--tableHost",
                        HOST,
                        "--tablePort",
                        str(port),
                        "--skipApiVersionCheck",
                        "--loose",
                        "--silent",
                    ]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        try:
            deadline = time.monotonic() + READY_SECONDS
            while not _answers(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"azurite-table did not start: {log.read_text(errors='replace')[-2000:]}"
                    )
                time.sleep(0.05)
            yield connection_string(port)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def fresh_table(connection: str, counter: Any = None) -> Any:
    """A TableClient on a table of its own (a new name each call), so tests never share rows."""
    from shared.adapters.azure_tables_client import table_client

    return table_client(f"t{uuid.uuid4().hex[:16]}", connection_string=connection, counter=counter)
