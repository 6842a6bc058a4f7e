"""The ceiling's minimal intake on a bare uvloop + httptools protocol: no uvicorn, no ASGI.

What a hand-written HTTP front could gain over uvicorn for the same work: the request is handled in
the parser's callback, with no per-request task, scope or ASGI messages. Run as
`python -m bench.bare_intake PORT`, with the journal and key in the environment as for the ASGI app.
"""

from __future__ import annotations

import asyncio
import os
import sys
import zlib
from typing import cast

import httptools
import uvloop

from bench.intake_ceiling import _MAGIC, _RECORD, ANSWER, JOURNAL_ENV, KEY_ENV, REFUSED, _is_valid

HOST = "127.0.0.1"  # as every bench server
_REASONS = {
    202: b"Accepted",
    401: b"Unauthorized",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Entity",
}


def _response(status: int, body: bytes) -> bytes:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % (status, _REASONS[status], len(body)) + body


_ACCEPTED = _response(202, ANSWER)
_REFUSALS = {status: _response(status, REFUSED) for status in (401, 415, 422)}


class MinimalIntake(asyncio.Protocol):
    """One connection: key, content type, essentials, one append, 202, as `intake_ceiling.app` does."""

    def __init__(self, journal: int, key: bytes) -> None:
        self.journal = journal
        self.key = key
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._begin()

    def _begin(self) -> None:
        self.body: list[bytes] = []
        self.given_key = b""
        self.content_type = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one, not by subclass

    def data_received(self, data: bytes) -> None:
        """Feed the parser; its callbacks answer each whole request in order."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        """A new request on the connection."""
        self._begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        """Only the two headers the intake reads."""
        name = name.lower()
        if name == b"x-functions-key":
            self.given_key = value
        elif name == b"content-type":
            self.content_type = value

    def on_body(self, body: bytes) -> None:
        """Gather the body."""
        self.body.append(body)

    def on_message_complete(self) -> None:
        """The request is whole: check it, append it, answer."""
        assert self.transport is not None
        body = b"".join(self.body)
        if self.given_key != self.key:
            answer = _REFUSALS[401]
        elif self.content_type.split(b";")[0].strip().lower() != b"application/json":
            answer = _REFUSALS[415]
        elif not _is_valid(body):
            answer = _REFUSALS[422]
        else:
            os.write(self.journal, _RECORD.pack(_MAGIC, len(body), zlib.crc32(body)) + body)
            answer = _ACCEPTED
        self.transport.write(answer)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def _serve(port: int) -> None:
    journal = os.open(os.environ[JOURNAL_ENV], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    key = os.environ[KEY_ENV].encode()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: MinimalIntake(journal, key), HOST, port)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(_serve(int(sys.argv[1])))
