"""A small JSON client for the responder's HTTP API (urllib: no dependency, TLS verified by default)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

REQUEST_SECONDS = 15.0  # one request; the smoke test's waits poll with many of them


class Unreachable(Exception):
    """No HTTP answer: refused, timed out, a certificate not trusted; the message says which."""


class KeyRefused(Exception):
    """The host answered 401 or 403: the function key is wrong or missing."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status and body (parsed when it is JSON, else the text)."""

    status: int
    body: Any

    def error(self) -> str:
        """What a non-2xx answer said, short: `error: detail` when it is ours, else its text."""
        if isinstance(self.body, dict) and "error" in self.body:
            return f"{self.body.get('error')}: {self.body.get('detail', '')}"[:300]
        return " ".join(str(self.body or "").split())[:300] or "(empty body)"


def api_base(url: str) -> str:
    """The API's base URL from what an operator types: the app's URL, with or without /api."""
    base = url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--url must be an http:// or https:// URL, got {url!r}")
    return base if base.endswith("/api") else base + "/api"


class ApiClient:
    """GETs and POSTs JSON with the function key in `x-functions-key` (so it is in no URL or log)."""

    def __init__(self, base: str, key: str, timeout: float = REQUEST_SECONDS) -> None:
        self.base = base
        self._key = key
        self.timeout = timeout

    def get(self, path: str, params: dict[str, str] | None = None, keyed: bool = True) -> Answer:
        """GET base + path."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return self._send("GET", path + query, None, keyed)

    def post(self, path: str, payload: Any) -> Answer:
        """POST a JSON body."""
        return self._send("POST", path, json.dumps(payload).encode(), True)

    def _send(self, method: str, path: str, body: bytes | None, keyed: bool) -> Answer:
        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/json"
        if keyed:
            headers["x-functions-key"] = self._key
        request = urllib.request.Request(self.base + path, body, headers, method=method)
        where = f"{method} {self.base}{path.split('?')[0]}"
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                return Answer(response.status, _parsed(response.read()))
        except urllib.error.HTTPError as e:
            answer = Answer(e.code, _parsed(e.read()))
            if 300 <= e.code < 400:
                raise Unreachable(
                    f"{where}: redirected ({e.code}) to {e.headers.get('location', '?')}: pass that as --url"
                ) from None
            if e.code in (401, 403) and keyed:
                raise KeyRefused(
                    f"{where}: the host refused the function key ({e.code} {answer.error()}); "
                    "check --key: a function key or the host key of the Function App"
                ) from None
            return answer
        except urllib.error.URLError as e:
            raise Unreachable(f"{where}: {_reason(e.reason)}") from None
        except TimeoutError:
            raise Unreachable(f"{where}: no answer within {self.timeout:g} s") from None
        except (OSError, ValueError) as e:  # a connection reset mid-answer, a malformed URL
            raise Unreachable(f"{where}: {e}") from None

    def redact(self, text: str) -> str:
        """Text with the key taken out, in case a server echoes it."""
        return text.replace(self._key, "***") if self._key else text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would send the key header on to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _parsed(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return text


def _reason(reason: object) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({reason.verify_message})"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (nothing listening there?)"
    return str(reason)
