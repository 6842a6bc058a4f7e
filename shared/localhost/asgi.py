"""An ASGI app that serves the HTTP-triggered functions of a FunctionApp as the Functions host would."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func

from shared.localhost.routes import Route, compile_template
from shared.settings import MAX_BODY_BYTES

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ROUTE_PREFIX = "/api/"
# A client that sends less than its Content-Length would hold the request (and a worker's
# connection) until uvicorn gives up, minutes later; the Functions front end times the body
# read out with a 408, and so does this host.
BODY_READ_TIMEOUT_SECONDS = 5.0


def thread_count() -> int:
    """The Python worker's pool for sync functions: PYTHON_THREADPOOL_THREAD_COUNT, else its default."""
    given = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default, which the worker keeps


def http_routes(functions: Iterable[Any]) -> list[Route]:
    """The HTTP routes of built functions (`FunctionApp.get_functions()`), as the host registers them."""
    routes = []
    for function in functions:
        trigger = function.get_trigger()
        if trigger is None or trigger.type != "httpTrigger":
            continue
        template = trigger.route or function.get_function_name()
        methods = frozenset(
            str(getattr(m, "value", m)).upper() for m in (trigger.methods or [])
        ) or frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
        level = str(getattr(trigger.auth_level, "value", trigger.auth_level or "function")).lower()
        routes.append(
            Route(
                compile_template(template),
                template,
                methods,
                level,
                function.get_function_name(),
                function.get_user_function(),
            )
        )
    # Literal routes before parameterised ones, as the host's router prefers them.
    return sorted(routes, key=lambda r: ("{" in r.template, r.template))


class FunctionsHttpHost:
    """Routes /api/... to the registered functions; enforces function keys like the host does."""

    def __init__(self, routes: list[Route], function_key: str) -> None:
        if not function_key:
            raise ValueError("a function key is required: an empty one would let every caller in")
        self.routes = routes
        self.function_key = function_key
        # Sync functions run on a pool, as the Python worker runs them: one waiting on a busy store
        # must not hold the event loop, which also answers the front door's alerts.
        self._pool = ThreadPoolExecutor(thread_count(), thread_name_prefix="http-function")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        handled = await self._handle(scope, receive)
        if handled is None:
            return
        status, headers, body = handled
        # A known length spares chunked encoding: one write per answer instead of three.
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The answer, or None when the sender left before its request was whole."""
        path: str = scope["path"]
        if not path.startswith(ROUTE_PREFIX):
            return _error(404, "not_found", f"no function at {path}; functions are under {ROUTE_PREFIX}")
        route, params, allowed = self._route(path[len(ROUTE_PREFIX) :].strip("/"), scope["method"])
        if route is None:
            if allowed:
                return _error(405, "method_not_allowed", f"{path} accepts {', '.join(sorted(allowed))}")
            return _error(404, "not_found", f"no function at {path}")
        headers = _headers(scope)
        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        query = dict(pairs)
        if route.auth_level != "anonymous" and not self._authorized(scope, pairs):
            return _error(
                401, "unauthorized", "missing or wrong function key: pass ?code= or x-functions-key"
            )
        codings = [c.strip().lower() for c in headers.get("transfer-encoding", "").split(",") if c.strip()]
        if any(c != "chunked" for c in codings):
            # The HTTP parser undoes only the chunking: a gzip transfer coding would reach the
            # function still compressed and be misread as a body (RFC 9112 §6.1: 501).
            return _error(
                501,
                "not_implemented",
                f"Transfer-Encoding {', '.join(codings)} is not supported; send the body uncompressed",
            )
        try:
            body = await _read_body(receive, MAX_BODY_BYTES, BODY_READ_TIMEOUT_SECONDS)
        except ClientGone:
            return None  # nobody to answer; uvicorn has answered a parse error itself
        except TimeoutError:
            status, reply_headers, answer = _error(
                408,
                "request_timeout",
                f"the request body did not arrive within {BODY_READ_TIMEOUT_SECONDS:g} s",
            )
            return status, [*reply_headers, (b"connection", b"close")], answer
        if body is None:
            return _error(413, "body_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes")
        request = func.HttpRequest(
            method=scope["method"],
            url=_url(scope),
            headers=headers,
            params=query,
            route_params=params,
            body=body,
        )
        try:
            response = await asyncio.get_running_loop().run_in_executor(self._pool, route.handler, request)
        except Exception:
            log.exception("function %s failed", route.function_name)
            return _error(500, "internal_error", f"function {route.function_name} failed; see the log")
        return _response(response)

    def _route(self, path: str, method: str) -> tuple[Route | None, dict[str, str], set[str]]:
        allowed: set[str] = set()
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            if method in route.methods:
                return route, params, allowed
            allowed |= route.methods
        return None, {}, allowed

    def _authorized(self, scope: Scope, query: list[tuple[str, str]]) -> bool:
        # As the Functions host reads the key (AuthenticationLevelHandler.GetAuthorizationKeyInfoAsync):
        # the first x-functions-key header if there is one, even empty, else the first ?code=.
        header = next((v for k, v in scope["headers"] if k.lower() == b"x-functions-key"), None)
        if header is not None:
            given = header.decode("latin-1")
        else:
            given = next((v for k, v in query if k == "code"), "")
        return bool(given) and hmac.compare_digest(given.encode(), self.function_key.encode())


class ClientGone(Exception):
    """The sender went away (or its bytes stopped parsing) before the whole body arrived."""


async def _read_body(receive: Receive, limit: int, timeout: float) -> bytes | None:
    """The whole body, or None as soon as it passes the limit (never buffered past it).

    TimeoutError if it has not all arrived within `timeout` seconds, however it trickles in;
    ClientGone if the connection ended first, so that a part of a body is never handled as a whole.
    """
    chunks, size = [], 0
    # One deadline over the whole read: wait_for per receive() would start a task for each chunk.
    async with asyncio.timeout(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _url(scope: Scope) -> str:
    host, port = scope.get("server") or ("127.0.0.1", 80)
    query = scope.get("query_string", b"").decode("latin-1")
    return f"http://{host}:{port}{scope['path']}" + (f"?{query}" if query else "")


def _response(response: func.HttpResponse) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers.items()
        if k.lower() != "content-length"
    ]
    if not any(k == b"content-type" for k, _ in headers) and response.mimetype:
        content_type = response.mimetype
        if response.charset and response.mimetype.startswith(("text/", "application/json")):
            content_type += f"; charset={response.charset}"
        headers.append((b"content-type", content_type.encode("latin-1")))
    return response.status_code, headers, response.get_body() or b""


def _error(status: int, error: str, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": error, "detail": detail}).encode()
    return status, [(b"content-type", b"application/json")], body
