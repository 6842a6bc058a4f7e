"""Servers that tests start die with the test run, even when it is killed with SIGKILL."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

# setpriv (util-linux) sets the parent-death signal and execs the server in the same process, so
# pids, signals and exit codes are the server's own; preexec_fn would do it in Python, which is
# unsafe in a process with threads. The signal follows the *thread* that starts the server:
# start servers from a fixture or the test itself, never from a worker thread that ends first.
SETPRIV = shutil.which("setpriv")


def dies_with_test_run(command: Sequence[str]) -> list[str]:
    """`command` run so that the kernel kills it if the process that starts it dies."""
    if SETPRIV is None:
        raise RuntimeError("setpriv not found: run `make setup` (it installs util-linux)")
    return [SETPRIV, "--pdeathsig", "KILL", "--", *command]
