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


class _UpgradeWithBody(Exception):
    """Raised in a parser callback, which httptools turns into the parse error uvicorn answers."""


class JsonErrorsProtocol(HttpToolsProtocol):
    """What a sender gets for a request the parser refuses: a JSON 400, then the connection closed."""

    _refusal = MALFORMED

    def on_headers_complete(self) -> None:
        """Refuse a non-WebSocket upgrade that carries a body: uvicorn would run it with none."""
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
