"""uvicorn's httptools protocol, with its parser's 400 in the JSON shape of every other refusal."""

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


class JsonErrorsProtocol(HttpToolsProtocol):
    """What a sender gets for a request the parser refuses: a JSON 400, then the connection closed."""

    def send_400_response(self, msg: str) -> None:
        """As uvicorn's, with our body: uvicorn's own is plain text that a sender's tooling cannot read."""
        del msg  # uvicorn's one text ("Invalid HTTP request received."), which MALFORMED says better
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(MALFORMED)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                MALFORMED,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
