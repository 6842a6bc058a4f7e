"""uvicorn's httptools protocol, with its parser's 400s in the JSON shape of every other refusal."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MALFORMED = json.dumps(
    {
        "error": "malformed_request",
        "detail": "the HTTP request could not be parsed (its request line, a header, the chunked"
        " encoding or the Content-Length); send a well-formed HTTP/1.1 request",
    }
).encode()
UPGRADE_WITH_BODY = json.dumps(
    {
        "error": "upgrade_not_supported",
        "detail": "this server does not switch protocols, and the parser stops at a request that asks"
        " to (Upgrade: h2c, as curl --http2 sends), so its body would be lost; send it without the"
        " Upgrade header (curl --http1.1)",
    }
).encode()

# What the Functions host (Kestrel) allows a request's line and headers: MaxRequestHeadersTotalSize,
# 32 KB. The parser gathers a header's value whole before it hands it on, so without a bound a
# sender that never ends one would grow the server's memory without end.
MAX_HEAD_BYTES = 32 * 1024
HEAD_TOO_LARGE = json.dumps(
    {
        "error": "headers_too_large",
        "detail": f"the request line and headers exceed {MAX_HEAD_BYTES // 1024} KiB; send fewer or"
        " shorter headers (the function key fits in ?code= or x-functions-key)",
    }
).encode()


class _UpgradeWithBody(Exception):
    """Raised in a parser callback, which httptools turns into the parse error uvicorn answers."""


class JsonErrorsProtocol(HttpToolsProtocol):
    """What a sender gets for a request the parser refuses: a JSON 400, then the connection closed."""

    _refusal = MALFORMED
    _head_open = False  # between a request's first byte and the end of its headers
    _head_bytes = 0  # of that head, counted from the reads that began and ended inside it

    def data_received(self, data: bytes) -> None:
        """Parse; a head that grows past MAX_HEAD_BYTES is answered 431 and the connection closed."""
        open_before = self._head_open
        super().data_received(data)
        # A read that began and ended inside one head is all head (one that began a request may
        # hold the end of the one before: it is not counted, which lets at most one read more in).
        if open_before and self._head_open:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self.transport.write(self.answer(431, HEAD_TOO_LARGE, close=True))
                self.transport.close()

    def on_message_begin(self) -> None:
        """A request begins: its head is open until its headers are complete."""
        super().on_message_begin()
        self._head_open, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        """Refuse a non-WebSocket upgrade that carries a body: uvicorn would run it with none."""
        self._head_open = False
        if self.parser.should_upgrade() and not self._should_upgrade() and self._has_body():
            self._refusal = UPGRADE_WITH_BODY
            raise _UpgradeWithBody
        super().on_headers_complete()

    def _has_body(self) -> bool:
        for name, value in self.headers:
            if name == b"transfer-encoding" or (
                name == b"content-length" and value.strip() not in (b"", b"0")
            ):
                return True
        return False

    def send_400_response(self, msg: str) -> None:
        """As uvicorn's, with our body: uvicorn's own is plain text that a sender's tooling cannot read."""
        del msg  # uvicorn's one text ("Invalid HTTP request received."), which ours says better
        self.transport.write(self.answer(400, self._refusal, close=True))
        self.transport.close()

    def answer(
        self, status: int, body: bytes, *, close: bool, content_type: bytes = b"application/json"
    ) -> bytes:
        """A whole HTTP/1.1 answer as uvicorn writes one: its default headers, a length, the body."""
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [b"content-type: ", content_type, b"\r\n", b"content-length: %d\r\n" % len(body)]
        if close:
            content.append(b"connection: close\r\n")
        content += [b"\r\n", body]
        return b"".join(content)
