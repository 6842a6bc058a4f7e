"""The ceiling of a durable Python intake on this machine, beside Alertmanager, in one run.

`minimal` is the least a webhook may do before a durable 202 and stay honest: check the function
key and the content type, validate the common schema's essentials with `dr serve`'s quick check
(msgspec, in C: 2–7 µs an alert where `json.loads` alone takes 9), and append the body to a journal
with one `os.write`. Its rate is
an upper bound for any intake that does more (ours parses, triages and appends a message); the runs
beside a busy process show what folding on the machine's other core costs it, at normal priority
and at the lowest the kernel has (SCHED_IDLE).
"""

from __future__ import annotations

import os
import secrets
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

from bench import alertmanager, asgi_floor
from bench.keepalive import free_port
from bench.payloads import storm
from bench.report import BenchFailed, Figure
from shared.localhost.sure_alerts import sure_signal_id

JOURNAL_ENV = "DR_CEILING_JOURNAL"
KEY_ENV = "DR_CEILING_KEY"
ANSWER = b'{"accepted":1}'
REFUSED = b'{"error":"refused"}'
_RECORD = struct.Struct("<4sII")  # magic, length, CRC-32: what a reader would find a torn tail by
_MAGIC = b"DRJ1"
# What a folder does to the machine while the storm arrives: it keeps one core busy.
_BUSY = (
    "import os, sys\n"
    "if sys.argv[1] == 'idle': os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n"
    "while True: pass"
)


def _is_valid(body: bytes) -> bool:
    # dr serve's own quick check (shared/localhost/sure_alerts.py): the common schema's essentials.
    return sure_signal_id(body) is not None


_journal: int | None = None
_key = b""


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Key, content type, essentials, one append, 202; anything wrong is a 4xx."""
    global _journal, _key
    if scope["type"] != "http":
        return
    if _journal is None:
        _journal = os.open(os.environ[JOURNAL_ENV], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _key = os.environ[KEY_ENV].encode()
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    headers = dict(scope["headers"])
    status, answer = 202, ANSWER
    if headers.get(b"x-functions-key", b"") != _key:
        status, answer = 401, REFUSED
    elif headers.get(b"content-type", b"").split(b";")[0].strip().lower() != b"application/json":
        status, answer = 415, REFUSED
    elif not _is_valid(body):
        status, answer = 422, REFUSED
    else:
        os.write(_journal, _RECORD.pack(_MAGIC, len(body), zlib.crc32(body)) + body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))],
        }
    )
    await send({"type": "http.response.body", "body": answer})


def run(profile: bool = False) -> list[Figure]:
    """Alertmanager, the do-nothing app, the minimal intake on uvicorn and bare, beside a busy core or not."""
    bodies = storm()
    before = alertmanager.rate(free_port())
    floor = asgi_floor.rate(free_port(), bodies)
    alone = _minimal(bodies, None)
    beside = _minimal(bodies, "normal")
    beside_idle = _minimal(bodies, "idle")
    bare = _minimal(bodies, None, bare=True)
    bare_beside = _minimal(bodies, "normal", bare=True)
    after = alertmanager.rate(free_port())
    yardstick = (before + after) / 2

    def ratio(rate: float) -> str:
        return f"{rate:,.0f}/s = {rate / yardstick:.2f}×"

    return [
        Figure("ceiling", "Alertmanager, before / after", f"{before:,.0f} / {after:,.0f}/s"),
        Figure("ceiling", "do-nothing 202 app", ratio(floor)),
        Figure("ceiling", "minimal durable intake, alone", ratio(alone)),
        Figure("ceiling", "minimal intake beside a busy core", ratio(beside)),
        Figure("ceiling", "minimal intake beside a busy core at SCHED_IDLE", ratio(beside_idle)),
        Figure("ceiling", "minimal intake on a bare protocol, alone", ratio(bare)),
        Figure("ceiling", "minimal intake on a bare protocol beside a busy core", ratio(bare_beside)),
    ]


def _minimal(bodies: list[bytes], neighbour: str | None, bare: bool = False) -> float:
    """The minimal intake's rate, on uvicorn or on the bare protocol (`bench.bare_intake`)."""
    key = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="dr-bench-ceiling-") as tmp:
        journal = Path(tmp) / "intake.journal"
        env = dict(os.environ, **{JOURNAL_ENV: str(journal), KEY_ENV: key})
        headers = {"x-functions-key": key}
        port = free_port()
        busy = subprocess.Popen([sys.executable, "-c", _BUSY, neighbour]) if neighbour else None
        try:
            if bare:
                command = [sys.executable, "-m", "bench.bare_intake", str(port)]
                who = "the bare intake"
                rate = asgi_floor.served_rate(command, port, bodies, who, headers=headers, env=env)
            else:
                target, who = "bench.intake_ceiling:app", "the minimal intake"
                rate = asgi_floor.rate(port, bodies, target, who, headers=headers, env=env)
        finally:
            if busy:
                busy.kill()
                busy.wait()
        _check_journal(journal, bodies)
    return rate


def _check_journal(journal: Path, bodies: list[bytes]) -> None:
    """Every accepted body is in the journal, whole and in order: the 202s were not empty words."""
    data, offset, count = journal.read_bytes(), 0, 0
    while offset < len(data):
        magic, length, crc = _RECORD.unpack_from(data, offset)
        body = data[offset + _RECORD.size : offset + _RECORD.size + length]
        if magic != _MAGIC or zlib.crc32(body) != crc or body != bodies[count]:
            raise BenchFailed(f"ceiling: journal record {count} is not the body sent")
        offset, count = offset + _RECORD.size + length, count + 1
    if count != len(bodies):
        raise BenchFailed(f"ceiling: the journal holds {count} of {len(bodies)} accepted alerts")
