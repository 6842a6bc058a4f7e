"""A local HTTP server that records every request and answers from a script before its default.

Subclasses implement `answer(request) -> Reply`, the service's documented behaviour; the base
class does the rest: a ThreadingHTTPServer on 127.0.0.1:0 in a daemon thread (HTTPS when
`tls=True`), a thread-safe record of requests, per-path queues of canned replies (instead of the
service's), answers lost after the service acted (`lose_answer_next`), a "down" switch.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import socket
import ssl
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.stubs.tls import certificate

if TYPE_CHECKING:
    import pytest

log = logging.getLogger(__name__)
HOLD_SECONDS = 30.0  # the longest a held answer waits for its release (a test that forgot it)


@dataclass(frozen=True)
class Recorded:
    """One request as the stub received it."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]  # parse_qs: "include[]=users" → {"include[]": ["users"]}
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any = None  # the parsed body when it is JSON, else None
    form: dict[str, list[str]] | None = None  # the parsed body when form-encoded

    def header(self, name: str) -> str | None:
        """A header by name, case-insensitively."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    """What the stub answers: a dict or list body is sent as JSON, str as text, bytes as they are."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    close: bool = False  # drop the connection without answering


class StubServer:
    """Start with `start()` (or `with`), stop with `stop()`; `url` is what a client is pointed at."""

    content_type = "application/json"

    def __init__(self, *, tls: bool = False, keep_alive: bool = False) -> None:
        self.tls = tls
        self.keep_alive = keep_alive
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[Recorded] = []
        self._script: list[tuple[str, Reply]] = []
        self._holds: list[tuple[str, threading.Event]] = []
        self._losses: list[tuple[str, str | None, Reply]] = []
        self._down: Reply | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on a free port of 127.0.0.1; returns self."""
        server = _Server(("127.0.0.1", 0), _KeepAliveHandler if self.keep_alive else _Handler)
        server.stub = self
        if self.tls:
            context = certificate().server_context()
            # The handshake happens in the handler thread, on the first read, not in accept().
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._port = int(server.server_address[1])
        # A short poll interval: stop() waits for the serving loop to notice the shutdown.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: from now on a client's connection is refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.hang_up()  # a kept-alive connection must not reach a handler after this
            if self._thread is not None:
                self._thread.join(5)
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """scheme://127.0.0.1:port (kept after stop, so a test can try a refused connection)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        """The base URL a client takes (subclasses add a path where the real service has one)."""
        return self.base_url

    @property
    def ca_file(self) -> str | None:
        """The certificate a client must trust (SSL_CERT_FILE) when tls is on."""
        return certificate().cert_file if self.tls else None

    def client_env(self) -> dict[str, str]:
        """Environment for a child process that talks to this stub (SSL_CERT_FILE when tls is on)."""
        return {"SSL_CERT_FILE": self.ca_file} if self.ca_file else {}

    def announce(self, monkeypatch: pytest.MonkeyPatch) -> Self:
        """Set `client_env()` in this process for the test, as a child process would get it."""
        for name, value in self.client_env().items():
            monkeypatch.setenv(name, value)
        return self

    # --- what was received --------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """Every request received, oldest first (scripted and down answers included)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        """The requests whose path matches (fnmatch pattern, e.g. "/incidents/*/notes")."""
        pattern = self._pattern(path)
        return [
            r
            for r in self.requests
            if fnmatch.fnmatchcase(r.path, pattern) and (method is None or r.method == method.upper())
        ]

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until condition() holds (checked after each request); False on timeout."""
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def reset(self) -> None:
        """Forget the requests, the script and the down switch (subclasses also reset their model)."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self._down = None
            for _, released in self._holds:
                released.set()
            self._holds.clear()
            self._losses.clear()

    # --- scripting ----------------------------------------------------------------------------

    def respond_next(
        self,
        path: str,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests to path (fnmatch pattern, "*" = any) with this reply."""
        if isinstance(body, Reply):
            raise TypeError("body is the reply's body (dict, list, str or bytes), not a Reply")
        self._enqueue(
            path, Reply(status, self.default_body(status) if body is None else body, headers or {}), times
        )

    def fail_next(
        self,
        path: str,
        times: int,
        status: int = 500,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests to path with an error status (500 by default)."""
        self.respond_next(path, status, body, headers, times)

    def drop_next(self, path: str, times: int = 1) -> None:
        """Close the connection of the next `times` requests to path without answering."""
        self._enqueue(path, Reply(0, close=True), times)

    def hold_next(self, path: str) -> threading.Event:
        """Answer the next request to path only once the returned event is set (at most HOLD_SECONDS).

        The request is taken and acted on at once; only its answer waits, as when the service did
        the work but the answer is slow or lost: a client killed meanwhile never hears it.
        """
        released = threading.Event()
        with self._lock:
            self._holds.append((self._pattern(path), released))
        return released

    def lose_answer_next(
        self, path: str, status: int | None = None, *, method: str | None = None, times: int = 1
    ) -> None:
        """Act on the next `times` requests to path (of `method`, any if None) as the service does,
        then answer `status` (the service's error body for it) instead, or drop the connection
        without a word when status is None: the write was made and its answer lost on the way."""
        reply = Reply(0, close=True) if status is None else Reply(status, self.default_body(status))
        with self._lock:
            self._losses.extend([(self._pattern(path), method and method.upper(), reply)] * times)

    def set_down(self, down: bool = True, *, status: int = 503, close: bool = False) -> None:
        """While down, every request is answered `status` (or its connection closed when close=True)."""
        with self._lock:
            self._down = None if not down else Reply(status, "Service Unavailable", {}, close)

    @property
    def down(self) -> bool:
        """Whether the down switch is on."""
        with self._lock:
            return self._down is not None

    @down.setter
    def down(self, value: bool) -> None:
        self.set_down(value)

    def default_body(self, status: int) -> Any:
        """The body of a scripted reply given without one (subclasses speak their service's errors)."""
        return {"error": f"scripted {status}"}

    def _enqueue(self, path: str, reply: Reply, times: int) -> None:
        with self._lock:
            self._script.extend([(self._pattern(path), reply)] * times)

    def _pattern(self, path: str) -> str:
        return path

    # --- serving ------------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        """The service's own behaviour (called with the stub's lock held)."""
        raise NotImplementedError

    def _serve(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = Recorded(
            method=handler.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
            json=_json(body),
            form=_form(body, headers.get("content-type", "")),
        )
        with self._changed:
            self._requests.append(request)
            reply = self._down or self._scripted(request.path)
            if reply is None:
                try:
                    reply = self.answer(request)
                except Exception:  # a bug in the stub: answer 500 and show it
                    log.exception("%s failed on %s %s", type(self).__name__, request.method, request.path)
                    reply = Reply(500, "stub error:\n" + traceback.format_exc(), {})
                reply = self._lost(request.path, request.method) or reply
            held = self._held(request.path)
            self._changed.notify_all()
        if held is not None:
            held.wait(HOLD_SECONDS)
        self._send(handler, reply)

    def _scripted(self, path: str) -> Reply | None:
        for i, (pattern, reply) in enumerate(self._script):
            if fnmatch.fnmatchcase(path, pattern):
                del self._script[i]
                return reply
        return None

    def _lost(self, path: str, method: str) -> Reply | None:
        for i, (pattern, wanted, reply) in enumerate(self._losses):
            if fnmatch.fnmatchcase(path, pattern) and wanted in (None, method):
                del self._losses[i]
                return reply
        return None

    def _held(self, path: str) -> threading.Event | None:
        for i, (pattern, released) in enumerate(self._holds):
            if fnmatch.fnmatchcase(path, pattern):
                del self._holds[i]
                return released
        return None

    def _send(self, handler: _Handler, reply: Reply) -> None:
        if reply.close:
            handler.close_connection = True
            return
        if isinstance(reply.body, (dict, list)):
            data, content_type = json.dumps(reply.body).encode(), self.content_type
        elif isinstance(reply.body, str):
            data, content_type = reply.body.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = reply.body or b"", "application/octet-stream"
        handler.send_response(reply.status)
        own = {name.lower(): value for name, value in reply.headers.items()}
        handler.send_header("Content-Type", own.pop("content-type", content_type))  # a reply's own wins
        handler.send_header("Content-Length", str(len(data)))
        for name, value in own.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _form(body: bytes, content_type: str) -> dict[str, list[str]] | None:
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return None
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: StubServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def hang_up(self) -> None:
        """End every connection still open: its handler's next read finds it closed."""
        with self._open_lock:
            open_now = list(self._open)
        for connection in open_now:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        error = sys.exc_info()[1]
        # A client that hangs up or refuses the certificate is the client's business, not a stub bug.
        if not isinstance(error, (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped stub refuses the next request at once
    # instead of a pooled keep-alive connection still reaching a handler thread.
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_GET(self) -> None:
        self.server.stub._serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _KeepAliveHandler(_Handler):
    # As a real service answers: a client's pooled connection carries its next request, so what it
    # costs is what it costs against Azure, where a handshake per request would be the stub's doing.
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes; with Nagle on, the body of every answer after the
    # first on a connection waits for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True
