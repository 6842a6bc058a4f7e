"""In `dr serve`, the worker's threads that can wait give the CPU to those that cannot.

On one machine the front (answering alerts) and the worker (folding them, updating cards and pages,
acting) share the cores. In a storm an alert must be answered now, and an action started and a
page sent now; folding the storm into incidents may trail by a second, since every answered alert
is already durable in the inbox. So the drain, the intake pumps and the timers run at a lower
priority: when the cores are contended they get about a tenth of their share, and when they are
not, all of it. The pumps that act or talk to people, and the lock renewer, keep the full share.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

# nice +10: CFS weighs a nice-10 thread at 110 against a nice-0 one's 1024.
BACKGROUND_NICENESS = 10
MAX_NICENESS = 19


def run_in_background() -> None:
    """Lower the calling thread's CPU priority by BACKGROUND_NICENESS (Linux; elsewhere nothing)."""
    # Only Linux gives each thread a niceness of its own; elsewhere the native thread id is no
    # process id, and setpriority would renice whatever process had that number.
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(MAX_NICENESS, now + BACKGROUND_NICENESS))
    except OSError as e:  # a sandbox that forbids it: the thread runs as it is, just as correctly
        log.debug("could not lower %s's priority: %s", threading.current_thread().name, e)
