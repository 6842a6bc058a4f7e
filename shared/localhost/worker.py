"""`dr serve`'s second process: the queue and timer triggers, and the inbox's drain.

Azure runs the HTTP functions and the Service Bus functions on instances of their own; `dr serve`
does the same with two processes, so that folding a storm into incidents and running actions do
not take the GIL from the webhook that answers the next alert. The front (uvicorn) starts this
process, restarts it if it dies, and stops it on the way out; it stops by itself if the front is
killed (the parent check), so a kill -9 of `dr serve` leaves nothing running.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from shared import bootstrap
from shared.localhost.drain import InboxDrain, admit_alerts
from shared.localhost.inbox import Inbox
from shared.localhost.runtime import start_triggers
from shared.settings import Settings

log = logging.getLogger("dr.serve")

START_TIMEOUT_SECONDS = 60.0  # imports and the first SQLite opens; a cold laptop can be slow
STOP_TIMEOUT_SECONDS = 10.0  # a running function finishes its call, then the process exits
PARENT_CHECK_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
RESTART_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)  # after the worker died: back off, never give up
STABLE_SECONDS = 60.0  # a worker that ran this long before it died starts the back-off over


def run(settings: Settings, app_module: str, started: Connection, front: int) -> None:
    """The worker process: triggers and drain until SIGTERM or the death of the front (`front`)."""
    _die_with_parent()
    if os.getppid() != front:
        return  # the front died before the line above took effect
    # Ctrl-C in a terminal reaches the whole process group; the front decides when this one stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    services = bootstrap.Services(settings)
    bootstrap.reset(services)
    functions = importlib.import_module(app_module).app.get_functions()
    lines = start_triggers(functions, services.receiver, stop)
    InboxDrain(Inbox(settings.data_dir, settings.sqlite_synchronous), admit_alerts(services), stop).start()
    lines.append(
        "alerts answered by the front: drained from the inbox onto the intake queue, in the background"
    )
    started.send(lines)
    started.close()
    while not stop.wait(PARENT_CHECK_SECONDS):
        if os.getppid() != front:
            break  # the front is gone (kill -9) where the kernel does not say so: nobody would stop us


def _die_with_parent() -> None:
    """On Linux, the kernel kills this process the moment the front dies: a kill -9 of `dr serve`
    must stop an action mid-call as it did when both were one process, not let it run on alone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent check in `run` stands in
        pass


class Worker:
    """The front's handle on the worker process: start it, keep it running, stop it."""

    def __init__(self, settings: Settings, app_module: str) -> None:
        self.settings = settings
        self.app_module = app_module
        # spawn, not fork: the front has threads and SQLite connections a fork would copy half-made.
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._stopping = threading.Event()
        self._guard = threading.Lock()

    def start(self) -> list[str]:
        """Start the worker, wait until its triggers run; what it started, for the banner."""
        lines = self._spawn()
        threading.Thread(target=self._keep_running, name="worker-watch", daemon=True).start()
        return lines

    def stop(self) -> None:
        """SIGTERM, a wait for the running calls, then SIGKILL if it is still there."""
        self._stopping.set()
        with self._guard:
            process = self._process
        if process is None:
            return
        process.terminate()
        # Polled, not join(timeout): seen returning at once with the process alive (a Ctrl-C under
        # `make run`), which cut the worker's running calls short.
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while process.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.is_alive():
            log.warning("worker did not stop within %.0f s; killed", STOP_TIMEOUT_SECONDS)
            process.kill()
            process.join()

    @property
    def pid(self) -> int | None:
        """The worker's process id now."""
        return self._process.pid if self._process else None

    def _spawn(self) -> list[str]:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=run,
            args=(self.settings, self.app_module, send, os.getpid()),
            name="dr-serve-worker",
            daemon=True,
        )
        with self._guard:
            if self._stopping.is_set():
                return []
            process.start()
            self._process = process
        send.close()  # the child's end; the front keeps only its own
        try:
            if receive.poll(START_TIMEOUT_SECONDS):
                lines: list[str] = receive.recv()
                return lines
        except EOFError:
            pass  # it died before it said anything
        finally:
            receive.close()
        process.join(1)
        raise RuntimeError(f"the worker process did not start (exit code {process.exitcode}); see above")

    def _keep_running(self) -> None:
        failures, since = 0, time.monotonic()
        while True:
            process = self._process
            if process is None:
                return
            process.join()
            if self._stopping.is_set():
                return
            if process.is_alive():  # join can return with it alive (see stop): not a death
                self._stopping.wait(PARENT_CHECK_SECONDS)
                continue
            if time.monotonic() - since > STABLE_SECONDS:
                failures = 0  # it ran a good while: this is a new failure, not the same one again
            delay = RESTART_SECONDS[min(failures, len(RESTART_SECONDS) - 1)]
            log.error("worker process exited with %s; starting it again in %.0f s", process.exitcode, delay)
            failures += 1
            if self._stopping.wait(delay):
                return
            since = time.monotonic()
            try:
                self._spawn()
            except RuntimeError as e:
                log.error("%s", e)  # the dead process is joined at once above, and tried again later
