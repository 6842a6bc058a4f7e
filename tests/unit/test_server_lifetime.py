"""A server that the tests start dies with the test run, even one killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A stand-in test run: starts a long sleep the way the fixtures start servers, says its pid, waits.
STARTER = """
import subprocess, sys, time
from tests.servers.lifetime import dies_with_test_run
server = subprocess.Popen(dies_with_test_run(["sleep", "60"]))
print(server.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it is dead, only not yet reaped (by init here).
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"


def test_a_server_is_killed_when_the_run_that_started_it_is_killed() -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    server = int(starter.stdout.readline())
    # setpriv sets the signal, then execs: wait for the exec, or the kill could come before the set.
    deadline = time.monotonic() + 10
    while (
        not Path(f"/proc/{server}/cmdline").read_bytes().startswith(b"sleep") and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    assert _alive(server)
    starter.send_signal(signal.SIGKILL)
    starter.wait(10)
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(server), f"the server {server} outlived the run that started it"
