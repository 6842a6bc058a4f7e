"""Shaping HTTP answers the same way in every responder: JSON, and errors as {error, detail}."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func

from shared.errors import BadInput, StoreContention, StoreUnavailable

log = logging.getLogger(__name__)

Handler = Callable[[func.HttpRequest], func.HttpResponse]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A JSON answer."""
    return func.HttpResponse(
        json.dumps(data, separators=(",", ":")),
        status_code=status,
        headers=headers,
        mimetype="application/json",
    )


def error_response(status: int, error: str, detail: str) -> func.HttpResponse:
    """An error answer a person can act on."""
    return json_response({"error": error, "detail": detail}, status)


def answers_errors(handler: Handler) -> Handler:
    """Bad input becomes its 4xx, a store that keeps losing races a 503; nothing becomes a 500."""

    @wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except BadInput as e:
            return error_response(e.status, e.error, e.detail)
        except StoreUnavailable as e:
            log.error("store unavailable: %s", e)
            return error_response(503, "unavailable", f"the store cannot take writes now ({e}); retry later")
        except StoreContention as e:
            log.warning("store contention: %s", e)
            return error_response(503, "busy", "too many concurrent updates; retry shortly")

    return wrapper


def query_int(req: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within bounds, or BadInput naming it."""
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        # ASCII digits only: int() also takes "٣", " 5", "+5" and "1_0", which no client means.
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError(raw)
        value = int(raw)
    except ValueError:
        raise BadInput("invalid_parameter", f"{name} must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise BadInput("invalid_parameter", f"{name} must be an integer from {low} to {high}")
    return value


# The function key: the host reads it from the query string of every route, so every route takes it.
FUNCTION_KEY_PARAMETER = "code"


def only_parameters(req: func.HttpRequest, *allowed: str) -> None:
    """BadInput naming the query parameters a route does not take, or that are given twice: a misspelt
    filter must not be ignored, nor a repeated one half-read, or a caller misreads what was filtered."""
    unknown = sorted(set(req.params) - {*allowed, FUNCTION_KEY_PARAMETER})
    if unknown:
        named = ", ".join(repr(name[:40]) for name in unknown[:10]) + (", …" if len(unknown) > 10 else "")
        takes = f"this route takes {', '.join(allowed)}" if allowed else "this route takes none"
        raise BadInput("invalid_parameter", f"unknown query parameter(s): {named}; {takes}")
    repeated = _repeated_parameters(req.url)
    if repeated:
        named = ", ".join(repr(name[:40]) for name in repeated[:10])
        raise BadInput(
            "invalid_parameter", f"repeated query parameter(s): {named}; give each once (one value each)"
        )


def _repeated_parameters(url: str) -> list[str]:
    """The query parameters the URL names more than once (the function key aside: the host's).

    `params` maps each name to one string (dr serve keeps the last value), so `?severity=sev1&severity=sev4`
    would quietly filter on one of them: the URL the host gives keeps them all.
    """
    query = url.partition("?")[2].partition("#")[0]  # not urlsplit: it refuses some hosts ("[")
    if "&" not in query:
        return []
    counts = Counter(name for name, _ in parse_qsl(query, keep_blank_values=True))
    return sorted(name for name, n in counts.items() if n > 1 and name != FUNCTION_KEY_PARAMETER)
