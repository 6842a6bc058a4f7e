"""Decode a webhook's JSON body, and read fields from it with errors that name the field."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, TypeVar, cast

from shared.errors import BadInput

T = TypeVar("T")

MAX_BYTES = 1_048_576
MAX_DEPTH = 64

_JSON_TYPES = frozenset({"application/json", "text/json"})  # and any "+json" suffix type
_PATH_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    dict: "an object",
    list: "an array",
    object: "a value",
}


class _NotJson(ValueError):
    """NaN or Infinity: Python's json accepts them, JSON does not."""


def decode_json(
    body: bytes, content_type: str | None, max_bytes: int = MAX_BYTES, content_encoding: str | None = None
) -> Any:
    """Parse a request body as JSON; any problem is a BadInput (400, 413 or 415) saying what to fix."""
    _check_content_type(content_type)
    _check_content_encoding(content_encoding)
    if len(body) > max_bytes:
        raise BadInput("body_too_large", f"body is {len(body)} bytes; the limit is {max_bytes} bytes", 413)
    raw = bytes(body)
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM: not JSON, but some senders add one
        raw = raw[3:]
    if not raw.strip():
        raise BadInput("empty_body", "the request body is empty; send a JSON document", 400)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, column = _position(raw, e.start)
        raise BadInput("malformed_json", f"invalid UTF-8 at line {line} column {column}", 400) from e
    return json_value(text)


def json_value(text: str) -> Any:
    """Parse JSON text (a decoded body, or JSON in a form field); BadInput (400) naming the problem."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise BadInput("malformed_json", f"{e.msg} at line {e.lineno} column {e.colno}", 400) from e
    except RecursionError as e:
        raise BadInput("malformed_json", f"JSON nested deeper than {MAX_DEPTH} levels", 400) from e
    except ValueError as e:  # NaN/Infinity, or an integer longer than Python's digit limit
        raise BadInput("malformed_json", str(e)[:200], 400) from e
    # A document with at most MAX_DEPTH brackets cannot be nested deeper: skip the walk for most bodies.
    if text.count("[") + text.count("{") > MAX_DEPTH and nesting_depth(value) > MAX_DEPTH:
        raise BadInput("malformed_json", f"JSON nested deeper than {MAX_DEPTH} levels", 400)
    # JSON lets "\ud800" stand alone; such a string is not Unicode and fails later wherever it is
    # encoded (hashes, SQLite). Only bodies with an escape can hold one, so most skip the check.
    if "\\u" in text and _has_lone_surrogate(value):
        raise BadInput(
            "malformed_json", "a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff)", 400
        )
    return value


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def require(obj: Any, path: str, kind: type[T], *, at: str = "", nonempty: bool = False) -> T:
    """The value at dotted `path` ("data.essentials.alertRule", "allOf[0]"); 422 if absent or mistyped."""
    found, value = _lookup(obj, path, at)
    if not found or value is None:
        where = _join(at, path)
        raise BadInput("missing_field", f"{where} is required ({_TYPE_NAMES.get(kind, kind.__name__)})", 422)
    _check_type(value, kind, at, path)
    if nonempty and isinstance(value, str) and not value.strip():
        raise BadInput("missing_field", f"{_join(at, path)} is required and must not be empty", 422)
    return cast(T, value)


def optional(obj: Any, path: str, kind: type[T], *, at: str = "") -> T | None:
    """The value at dotted `path`, or None when absent or null; 422 if present with the wrong type."""
    found, value = _lookup(obj, path, at)
    if not found or value is None:
        return None
    _check_type(value, kind, at, path)
    return cast(T, value)


def dig(obj: Any, path: str) -> Any:
    """The value at dotted `path`, or None when absent or when the shape does not fit: never raises."""
    current = obj
    for token in _tokens(path):
        if isinstance(token, int):
            if not isinstance(current, list) or token >= len(current):
                return None
            current = current[token]
        elif isinstance(current, dict):
            current = current.get(token)
        else:
            return None
    return current


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    """A JSON scalar as stripped text ("" for null, arrays and objects); numbers keep their JSON form."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return ""


def join_path(at: str, path: str) -> str:
    """`at` + `path` as one dotted path: ("[2]", "eventType") → "[2].eventType"."""
    return _join(at, path)


def _check_content_type(content_type: str | None) -> None:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    # A missing content type is accepted: some senders (and test tools) omit it on JSON posts.
    if not mime or mime in _JSON_TYPES or (mime.endswith("+json") and "/" in mime):
        return
    shown = (content_type or "")[:100]
    raise BadInput(
        "unsupported_media_type", f"content type {shown!r} is not JSON; send application/json", 415
    )


def _check_content_encoding(content_encoding: str | None) -> None:
    # Neither the Functions host nor dr serve decompresses a request: a gzip body would otherwise
    # be reported as malformed JSON, which misleads whoever reads the answer.
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    if all(c == "identity" for c in codings):
        return
    shown = (content_encoding or "")[:100]
    raise BadInput(
        "unsupported_media_type",
        f"content-encoding {shown!r} is not supported; send the body uncompressed",
        415,
    )


def _reject_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not valid JSON")


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    return line, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def nesting_depth(value: Any) -> int:
    """How deep objects and arrays nest (walked without recursion); stops counting past MAX_DEPTH."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


@lru_cache(maxsize=512)
def _tokens(path: str) -> tuple[str | int, ...]:
    return tuple(int(index) if index else key for index, key in _PATH_TOKEN.findall(path))


def _lookup(obj: Any, path: str, at: str) -> tuple[bool, Any]:
    current = obj
    tokens = _tokens(path)
    for depth, token in enumerate(tokens):
        if current is None:
            return False, None
        if isinstance(token, int):
            if not isinstance(current, list):
                raise BadInput("invalid_field", f"{_walked(at, tokens[:depth])} must be an array", 422)
            if token >= len(current):
                return False, None
            current = current[token]
        else:
            if not isinstance(current, dict):
                raise BadInput("invalid_field", f"{_walked(at, tokens[:depth])} must be an object", 422)
            if token not in current:
                return False, None
            current = current[token]
    return True, current


def _walked(at: str, tokens: tuple[str | int, ...]) -> str:
    """The path walked so far, built only when an error needs it (lookups are on the hot path)."""
    walked = at
    for token in tokens:
        walked = f"{walked}[{token}]" if isinstance(token, int) else _join(walked, token)
    return walked or "(root)"


def _check_type(value: Any, kind: type, at: str, path: str) -> None:
    if kind is object:
        ok = True
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        expected = _TYPE_NAMES.get(kind, kind.__name__)
        raise BadInput("invalid_field", f"{_join(at, path)} must be {expected}, got {json_type(value)}", 422)


def json_type(value: Any) -> str:
    """How a person names a JSON value's type in an error: "a string", "an array", "null", …."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _join(at: str, path: str) -> str:
    if not at:
        return path
    if not path or path.startswith("["):
        return f"{at}{path}"
    return f"{at}.{path}"
