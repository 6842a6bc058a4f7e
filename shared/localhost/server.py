"""`dr serve`: the registered functions over HTTP, and a worker process for their queues and timers."""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from shared import bootstrap
from shared.localhost.asgi import FunctionsHttpHost, http_routes
from shared.localhost.fast_intake import fast_intake_protocol
from shared.localhost.inbox import Inbox
from shared.localhost.served import ServedServices
from shared.localhost.worker import Worker
from shared.settings import Settings

log = logging.getLogger("dr.serve")

FRONT_SWITCH_INTERVAL_SECONDS = 0.001


def function_key(data_dir: Path, given: str | None) -> str:
    """The key callers must present: given, or one kept in the data dir across restarts."""
    if given:
        return given
    path = data_dir / "function-key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Created whole and private in one step: two processes starting together race here.
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_new_key() + "\n")
            f.flush()
            os.fsync(f.fileno())
    for _ in range(100):  # the other process may still be writing it
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
        time.sleep(0.01)
    raise SystemExit(f"dr serve: {path} is empty; delete it to make a new key")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: the same way out, through `serve`'s finally."""
    raise KeyboardInterrupt


def _new_key() -> str:
    """A random key that does not begin with "-", so it can be given as `--function-key KEY`."""
    while (key := secrets.token_urlsafe(24)).startswith("-"):
        pass
    return key


def serve(
    host: str, port: int, settings: Settings, app_module: str, settings_lines: Sequence[str] = ()
) -> None:
    """Run until interrupted; the banner says where each setting came from (`settings_lines`)."""
    import uvicorn

    data_dir, key = settings.data_dir, settings.function_key
    # The event loop (which answers the front door's alerts) shares the GIL with the functions' pool:
    # a busy function would hold it for the default 5 ms at a time; 1 ms keeps the loop's waits short.
    sys.setswitchinterval(FRONT_SWITCH_INTERVAL_SECONDS)
    services = ServedServices(settings)  # /api/status counts the inbox too
    bootstrap.reset(services)  # what the registered functions get from bootstrap.services()
    policy = services.policy  # fail fast, with the policy's own message, before serving anything
    _ = services.receiver  # the same for a queue the worker could not receive from (Service Bus)
    functions = importlib.import_module(app_module).app.get_functions()
    routes = http_routes(functions)
    secret = function_key(data_dir, key)
    worker = Worker(settings, app_module)
    try:
        started = worker.start()
    except RuntimeError as e:
        raise SystemExit(f"dr serve: {e}") from e
    banner = [f"DR Responder on http://{host}:{port}/api (data: {data_dir}, policy: {policy.source})"]
    banner += [f"  {'/'.join(sorted(r.methods))} /api/{r.template}  [{r.auth_level}]" for r in routes]
    banner.append(f"  in a worker process (pid {worker.pid}):")
    banner += [f"    {line}" for line in started]
    where = "given" if key else str(data_dir / "function-key")
    banner.append(f"  function key: {where} (pass ?code= or x-functions-key)")
    banner += settings_lines
    print("\n".join(banner), flush=True)
    config = uvicorn.Config(
        FunctionsHttpHost(routes, secret),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # httptools, with JSON for its 400s, answering sure alerts itself (fast_intake)
        http=fast_intake_protocol(Inbox(data_dir, settings.sqlite_synchronous, appender=True), secret),
        loop="uvloop",
        lifespan="on",
    )
    # uvicorn stops gracefully on SIGTERM too, then raises it again once done: with the default
    # handler that would end this process before the worker is stopped (kill, systemd, docker stop).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        # uvicorn has shut down by now and raises the Ctrl-C it caught again, for its caller to
        # see; here Ctrl-C is how one stops the responder, not an error to show a traceback for.
        pass
    finally:
        worker.stop()
    print("DR Responder stopped", flush=True)
