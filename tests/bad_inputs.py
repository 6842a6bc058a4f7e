"""Every kind of bad request the two intake endpoints must refuse, and the answer each must get."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any

from tests.alerts import metric_alert
from tests.conftest import REFDATA

JSON = "application/json"


@dataclass(frozen=True)
class BadRequest:
    """A request and the answer it must get."""

    name: str
    body: bytes
    content_type: str
    status: int
    error: str
    detail: str = ""  # a piece of the detail that names the problem
    headers: tuple[tuple[str, str], ...] = ()  # besides Content-Type


def _alert(change: Any) -> bytes:
    payload = metric_alert()
    change(payload)
    return json.dumps(payload).encode()


def _described(description: str) -> dict[str, Any]:
    payload = metric_alert()
    payload["data"]["essentials"]["description"] = description
    return payload


def _event_grid() -> list[Any]:
    return list(json.loads((REFDATA / "event_grid" / "eg_redis_PatchingCompleted.json").read_text()))


def _events(change: Any) -> bytes:
    events = _event_grid()
    change(events)
    return json.dumps(events).encode()


TOO_BIG = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'

COMMON = [
    BadRequest("malformed json", b'{"schemaId": ', JSON, 400, "malformed_json", "line 1"),
    BadRequest("not utf-8", b'{"a": "\xff"}', JSON, 400, "malformed_json", "UTF-8"),
    BadRequest("wrong content type", b"{}", "text/plain", 415, "unsupported_media_type", "text/plain"),
    BadRequest(
        "form content type", b"a=b", "application/x-www-form-urlencoded", 415, "unsupported_media_type"
    ),
    BadRequest("empty body", b"", JSON, 400, "empty_body"),
    BadRequest("null", b"null", JSON, 422, "invalid_payload", "null"),
    BadRequest("a number", b"42", JSON, 422, "invalid_payload"),
    BadRequest("over 1 MiB", TOO_BIG, JSON, 413, "body_too_large", "1048576"),
    BadRequest(
        "gzip body",
        gzip.compress(b'{"schemaId": "azureMonitorCommonAlertSchema"}'),
        JSON,
        415,
        "unsupported_media_type",
        "content-encoding",
        (("Content-Encoding", "gzip"),),
    ),
    BadRequest(
        "deflate body",
        b'{"a": 1}',
        JSON,
        415,
        "unsupported_media_type",
        "deflate",
        (("Content-Encoding", "deflate"),),
    ),
]

ALERTS = [
    *COMMON,
    BadRequest("empty array", b"[]", JSON, 422, "invalid_payload", "list"),
    # 200 KB of UTF-8, but each é escaped to 6 bytes in the signal: over a queue message's 256 KiB.
    BadRequest(
        "a signal too large for a queue message",
        json.dumps(_described("\u00e9" * 100_000), ensure_ascii=False).encode(),
        JSON,
        413,
        "signal_too_large",
        "262144",
    ),
    BadRequest("empty object", b"{}", JSON, 422, "missing_field", "schemaId"),
    BadRequest(
        "unknown schemaId",
        _alert(lambda p: p.update(schemaId="contosoAlertSchema")),
        JSON,
        422,
        "unsupported_schema",
        "contosoAlertSchema",
    ),
    BadRequest(
        "missing essentials",
        _alert(lambda p: p["data"].pop("essentials")),
        JSON,
        422,
        "missing_field",
        "data.essentials",
    ),
    BadRequest(
        "missing alertRule",
        _alert(lambda p: p["data"]["essentials"].pop("alertRule")),
        JSON,
        422,
        "missing_field",
        "data.essentials.alertRule",
    ),
    BadRequest(
        "mistyped alertTargetIDs",
        _alert(lambda p: p["data"]["essentials"].update(alertTargetIDs="not-a-list")),
        JSON,
        422,
        "invalid_field",
        "data.essentials.alertTargetIDs",
    ),
    BadRequest(
        "unknown severity",
        _alert(lambda p: p["data"]["essentials"].update(severity="Sev9")),
        JSON,
        422,
        "invalid_field",
        "data.essentials.severity",
    ),
    BadRequest(
        "unknown monitorCondition",
        _alert(lambda p: p["data"]["essentials"].update(monitorCondition="Sleeping")),
        JSON,
        422,
        "invalid_field",
        "data.essentials.monitorCondition",
    ),
    BadRequest(
        "firedDateTime not a time",
        _alert(lambda p: p["data"]["essentials"].update(firedDateTime="yesterday")),
        JSON,
        422,
        "invalid_field",
        "data.essentials.firedDateTime",
    ),
    BadRequest(
        "firedDateTime past year 9999",
        _alert(lambda p: p["data"]["essentials"].update(firedDateTime="99999-01-01T00:00:00Z")),
        JSON,
        422,
        "invalid_field",
        "data.essentials.firedDateTime",
    ),
    BadRequest(
        "resolvedDateTime not a time",
        _alert(
            lambda p: p["data"]["essentials"].update(monitorCondition="Resolved", resolvedDateTime="nope")
        ),
        JSON,
        422,
        "invalid_field",
        "data.essentials.resolvedDateTime",
    ),
]

EVENTS = [
    *COMMON,
    BadRequest("empty array", b"[]", JSON, 422, "no_events"),
    BadRequest("array of null", b"[null]", JSON, 422, "invalid_field", "[0]"),
    BadRequest(
        "event without eventType",
        _events(lambda e: e[0].pop("eventType")),
        JSON,
        422,
        "missing_field",
        "[0].eventType",
    ),
    BadRequest(
        "event with a numeric id",
        _events(lambda e: e[0].update(id=7)),
        JSON,
        422,
        "invalid_field",
        "[0].id",
    ),
    BadRequest(
        "eventTime not a time",
        _events(lambda e: e[0].update(eventTime="nope")),
        JSON,
        422,
        "invalid_field",
        "[0].eventTime",
    ),
    BadRequest(
        "CloudEvents time not a time",
        json.dumps(
            [
                dict(
                    json.loads((REFDATA / "event_grid" / "ce_redis_PatchingCompleted.json").read_text())[0],
                    time="nope",
                )
            ]
        ).encode(),
        "application/cloudevents-batch+json",
        422,
        "invalid_field",
        "[0].time",
    ),
]
