"""`dr serve`'s front door for alerts: a sure alert is kept in the inbox and answered 202 in the parser.

For `POST /api/alerts` with the right function key and a plain JSON body, the protocol holds the
request back from uvicorn's ASGI cycle (a task, a scope, the Functions request object) and, once
the body is whole, asks `sure_signal_id`. A sure alert is appended to the inbox and answered at
once with what the full path would have answered; anything else (not sure, a wrong key, the inbox
busy) is handed to uvicorn as if it had never been held back, and the full path answers it as it
always has. Only the cheap part is done here: parsing, triage for the session key and the queue
append run in the worker process, which drains the inbox.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import sqlite3
from typing import ClassVar

import httptools

from shared.localhost.inbox import Inbox
from shared.localhost.protocol import JsonErrorsProtocol
from shared.localhost.sure_alerts import sure_signal_id
from shared.ports import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

PATH = b"/api/alerts"
# What the full path's json_response sends: application/json, charset from azure.functions.
CONTENT_TYPE = b"application/json; charset=utf-8"
# Larger bodies take the full path: their signal could outgrow a queue message, which only the full
# path can refuse (413). A signal holds a body's text at most twice (the resource id is kept whole and
# as its parts), each non-ASCII character escaped to up to three times its UTF-8 size: 6x, so 32 KiB
# keeps the worst case under 256 KiB (tests/unit/test_sure_alerts.py builds it).
MAX_SURE_BYTES = MAX_MESSAGE_BYTES // 8
# A held body that is not whole by then goes to uvicorn, so the full path's read timeout (408)
# applies to a sender that stalls, as it always has.
HOLD_SECONDS = 1.0


class FastIntakeProtocol(JsonErrorsProtocol):
    """uvicorn's httptools protocol that answers sure alerts itself (see the module's docstring)."""

    inbox: ClassVar[Inbox]
    function_key: ClassVar[bytes]
    _held: list[bytes] | None = None  # the body of a request held back from uvicorn
    _release: asyncio.TimerHandle | None = None  # hands a slow held body over to uvicorn
    _closing = False  # uvicorn asked the connection to shut down while a request was held

    def on_message_begin(self) -> None:
        """A new request: nothing held yet."""
        super().on_message_begin()
        self._held = None
        # A pipelined request after one answered here starts in the same read: the keep-alive timer
        # that answer armed must not close the connection under it (uvicorn cancels it per read).
        self._unset_keepalive_if_required()

    def shutdown(self) -> None:
        """uvicorn is stopping: a held request is still answered, then the connection closed."""
        if self._held is None:
            super().shutdown()
            return
        self._closing = True

    def on_headers_complete(self) -> None:
        """Hold back a request this protocol may answer itself; start the rest as uvicorn does."""
        if self._may_answer():
            self._head_open = False  # as the parent's would: the head is whole
            self._held = []
            return
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        """Parse; a request still held when the bytes run out waits HOLD_SECONDS for the rest."""
        super().data_received(data)
        # Most alerts come whole in one read and are answered inside the parse: no timer for them.
        if self._held is not None and self._release is None:
            self._release = self.loop.call_later(HOLD_SECONDS, self._hand_over)

    def connection_lost(self, exc: Exception | None) -> None:
        """A held request's sender left: nothing to answer, nothing kept."""
        self._stop_release()
        super().connection_lost(exc)

    def on_body(self, body: bytes) -> None:
        """Gather a held request's body; pass the rest on."""
        if self._held is None:
            super().on_body(body)
            return
        self._held.append(body)

    def on_message_complete(self) -> None:
        """Answer a held request if its alert is sure and kept; else replay it to uvicorn."""
        if self._held is None:
            super().on_message_complete()
            return
        self._stop_release()
        body, self._held = b"".join(self._held), None
        answer = self._admit(body)
        if answer is not None:
            self._answer(answer)
            return
        self._replay(body)
        super().on_message_complete()

    def _hand_over(self) -> None:
        """A body slower than HOLD_SECONDS: uvicorn takes the request, and its read timeout with it."""
        self._release = None
        if self._held is not None:
            body, self._held = b"".join(self._held), None
            self._replay(body)

    def _replay(self, body: bytes) -> None:
        """Start the held request in uvicorn as if it had never been held back."""
        super().on_headers_complete()
        if self._closing:
            self.cycle.keep_alive = False  # as uvicorn's shutdown does to a request in flight
        if body:
            super().on_body(body)

    def _stop_release(self) -> None:
        if self._release is not None:
            self._release.cancel()
            self._release = None

    def _may_answer(self) -> bool:
        """POST /api/alerts, the right key, a plain JSON body of a known size, nothing in flight."""
        parser = self.parser
        if parser.get_method() != b"POST" or parser.should_upgrade() or self.expect_100_continue:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # a pipelined request waits for the one before it: answers keep their order
        url = httptools.parse_url(self.url)
        if url.path != PATH:
            return False
        headers: dict[bytes, bytes] = {}
        for name, value in self.headers:
            if name == b"content-type" and name in headers:
                return False  # the full path reads them joined ("application/json, text/plain"): 415
            headers.setdefault(name, value)  # the first of each, as the host reads the key
        if b"transfer-encoding" in headers or b"content-encoding" in headers:
            return False
        length = headers.get(b"content-length", b"")
        if not length.isdigit() or int(length) > MAX_SURE_BYTES:
            return False
        if headers.get(b"content-type", b"").split(b";")[0].strip().lower() != b"application/json":
            return False
        return self._key_matches(headers.get(b"x-functions-key"), url.query)

    def _key_matches(self, header: bytes | None, query: bytes | None) -> bool:
        # As FunctionsHttpHost reads it: the first x-functions-key header if any, else the first ?code=.
        given = header.decode("latin-1").encode() if header is not None else _first_code(query or b"")
        return bool(given) and hmac.compare_digest(given, self.function_key)

    def _admit(self, body: bytes) -> bytes | None:
        """The 202's body once the alert is kept, or None to leave the request to the full path."""
        signal_id = sure_signal_id(body)
        if signal_id is None:
            return None
        try:
            self.inbox.append(body)
        except sqlite3.Error as e:  # busy or full: the full path has its own answer for that
            log.warning("inbox append failed, the alert takes the full path: %s", e)
            return None
        return b'{"accepted":1,"signals":["%s"]}' % signal_id.encode()  # json_response's bytes

    def _answer(self, body: bytes) -> None:
        """Write the 202 as uvicorn would, then let it arm keep-alive or start a pipelined request."""
        keep_alive = (
            not self._closing and self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        )
        self.transport.write(self.answer(202, body, close=not keep_alive, content_type=CONTENT_TYPE))
        if keep_alive:
            self.on_response_complete()
        else:
            self.transport.close()


def _first_code(query: bytes) -> bytes:
    """The first `code` in a query string, as parse_qsl would read it; b"" when it has escapes."""
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"code":
            # A key with %-escapes or "+" is read by the full path: parse_qsl's decoding is its own.
            return b"" if b"%" in value or b"+" in value else value
        if b"%" in name or b"+" in name:
            return b""  # could be an escaped "code": the full path decides
    return b""


def fast_intake_protocol(inbox: Inbox, function_key: str) -> type[FastIntakeProtocol]:
    """The protocol class for uvicorn's `http=`, bound to this server's inbox and key."""
    return type(
        "BoundFastIntakeProtocol",
        (FastIntakeProtocol,),
        {"inbox": inbox, "function_key": function_key.encode(), "__doc__": FastIntakeProtocol.__doc__},
    )
