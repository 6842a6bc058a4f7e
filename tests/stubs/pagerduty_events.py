"""PagerDuty Events API v2 (POST /v2/enqueue, /v2/change/enqueue), with a model of the alerts it opened.

Protocol: ../shared/refdata/pagerduty/docs/events-API-v2__*.md and the OpenAPI file beside them.
Bodies: 202 {"status": "success", "message": "Event processed", "dedup_key"} and the Error schema
{"status", "message", "errors": [...]} (the OpenAPI examples). The wording of the individual
`errors` strings is ours; PagerDuty's own is similar ("'payload.summary' is missing or blank").
"""

from __future__ import annotations

import copy
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from tests.stubs.base import Recorded, Reply, StubServer

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
UNRECOGNIZED = {  # the OpenAPI "Error" example, verbatim
    "status": "Unrecognized object",
    "message": "Event object format is unrecognized",
    "errors": ["JSON parse error"],
}


@dataclass
class Alert:
    """One PagerDuty alert: opened by a trigger, ended by a resolve; a later trigger opens a new one."""

    routing_key: str
    dedup_key: str
    status: str  # "triggered", "acknowledged", "resolved"
    severity: str
    summary: str
    payload: dict[str, Any]  # of the latest trigger
    triggers: int = 1  # trigger events applied (the first included)
    actions: list[str] = field(default_factory=lambda: ["trigger"])  # every event applied, in order


def invalid_event(*errors: str) -> dict[str, Any]:
    """PagerDuty's 400 body for a well-formed JSON object that is not a valid event."""
    return {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}


def invalid(*errors: str) -> Reply:
    """PagerDuty's 400 reply with that body."""
    return Reply(400, invalid_event(*errors))


class PagerDutyEventsStub(StubServer):
    """Point `PagerDutyEvents(routing, stub.url, ...)` (or PAGERDUTY_EVENTS_URL) at `url`.

    HTTPS by default: the `pagerduty` client accepts only https:// base URLs, so a client must trust
    `ca_file` (SSL_CERT_FILE). `rate_limit_per_minute` (e.g. 120) makes it answer 429 to events beyond
    that many per routing key in the last 60 s, as PagerDuty does; off by default.
    """

    def __init__(self, *, tls: bool = True, rate_limit_per_minute: int | None = None) -> None:
        super().__init__(tls=tls)
        self.rate_limit_per_minute = rate_limit_per_minute
        self._events: list[dict[str, Any]] = []
        self._change_events: list[dict[str, Any]] = []
        self._alerts: list[Alert] = []
        self._dropped: list[dict[str, Any]] = []
        self._throttled = 0
        self._sent_at: dict[str, deque[float]] = {}

    # --- the model, for assertions ------------------------------------------------------------

    @property
    def events(self) -> list[dict[str, Any]]:
        """Accepted (202) /v2/enqueue bodies, oldest first, as sent (routing_key included)."""
        with self._lock:
            return copy.deepcopy(self._events)

    @property
    def change_events(self) -> list[dict[str, Any]]:
        """Accepted /v2/change/enqueue bodies, oldest first."""
        with self._lock:
            return copy.deepcopy(self._change_events)

    @property
    def alerts(self) -> list[Alert]:
        """Every alert opened, oldest first (snapshots)."""
        with self._lock:
            return [
                replace(a, payload=copy.deepcopy(a.payload), actions=list(a.actions)) for a in self._alerts
            ]

    def alert(self, dedup_key: str, routing_key: str | None = None) -> Alert | None:
        """The latest alert with this dedup key (and routing key, if given)."""
        found = [a for a in self.alerts if a.dedup_key == dedup_key and routing_key in (None, a.routing_key)]
        return found[-1] if found else None

    def incident_count(self, dedup_key: str | None = None) -> int:
        """How many alerts (so PagerDuty incidents) were opened, for one dedup key or in all."""
        return sum(1 for a in self.alerts if dedup_key in (None, a.dedup_key))

    def triggered_keys(self) -> set[str]:
        """The distinct dedup keys triggered at least once."""
        return {a.dedup_key for a in self.alerts}

    @property
    def dropped(self) -> list[dict[str, Any]]:
        """acknowledge/resolve events that matched no open alert on their routing key (202, ignored)."""
        with self._lock:
            return copy.deepcopy(self._dropped)

    @property
    def throttled(self) -> int:
        """How many events the rate limit answered with 429."""
        with self._lock:
            return self._throttled

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._events.clear()
            self._change_events.clear()
            self._alerts.clear()
            self._dropped.clear()
            self._throttled = 0
            self._sent_at.clear()

    def default_body(self, status: int) -> Any:
        if status == 400:
            return invalid_event("scripted 400")
        if status == 429:
            return {"status": "throttle event", "message": "Too many events for this routing key"}
        return {"status": "error", "message": f"scripted {status}"}

    # --- the protocol -------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path not in ("/v2/enqueue", "/v2/change/enqueue"):
            return Reply(404, {"status": "error", "message": "Not Found"})
        event = request.json
        if not isinstance(event, dict):
            return Reply(400, UNRECOGNIZED)
        routing_key = event.get("routing_key")
        if not isinstance(routing_key, str) or not routing_key.strip():
            return invalid("'routing_key' is missing or blank")
        if request.path == "/v2/change/enqueue":
            return self._change(event)
        errors = _event_errors(event)
        if errors:
            return invalid(*errors)
        if self._over_limit(routing_key):
            self._throttled += 1
            return Reply(429, self.default_body(429))
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        self._events.append(copy.deepcopy(event))
        self._apply(routing_key, dedup_key, event)
        return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})

    def _change(self, event: dict[str, Any]) -> Reply:
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return invalid("'payload' is missing or not an object")
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            return invalid("'payload.summary' is missing or blank")
        if len(summary) > MAX_SUMMARY:
            return invalid(f"'payload.summary' is longer than {MAX_SUMMARY} characters")
        self._change_events.append(copy.deepcopy(event))
        return Reply(202, {"status": "success", "message": "Change event processed"})

    def _apply(self, routing_key: str, dedup_key: str, event: dict[str, Any]) -> None:
        action = event["event_action"]
        current = next(
            (
                a
                for a in reversed(self._alerts)
                if a.routing_key == routing_key and a.dedup_key == dedup_key and a.status != "resolved"
            ),
            None,
        )
        if action == "trigger":
            payload = event["payload"]
            if current is None:
                self._alerts.append(
                    Alert(
                        routing_key, dedup_key, "triggered", payload["severity"], payload["summary"], payload
                    )
                )
                return
            current.triggers += 1
            current.severity, current.summary, current.payload = (
                payload["severity"],
                payload["summary"],
                payload,
            )
        elif current is None:
            # "Acknowledge or resolve events without a currently open alert will not create a new one",
            # and those sent via another routing key than the trigger's "will be dropped".
            self._dropped.append(copy.deepcopy(event))
            return
        else:
            current.status = "acknowledged" if action == "acknowledge" else "resolved"
        current.actions.append(action)

    def _over_limit(self, routing_key: str) -> bool:
        if self.rate_limit_per_minute is None:
            return False
        now = time.monotonic()
        sent = self._sent_at.setdefault(routing_key, deque())
        while sent and now - sent[0] >= 60:
            sent.popleft()
        if len(sent) >= self.rate_limit_per_minute:
            return True
        sent.append(now)
        return False


def _event_errors(event: dict[str, Any]) -> list[str]:
    errors = []
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and not isinstance(dedup_key, str):
        errors.append("'dedup_key' must be a string")
    elif isinstance(dedup_key, str) and len(dedup_key) > MAX_DEDUP_KEY:
        errors.append(f"'dedup_key' is longer than {MAX_DEDUP_KEY} characters")
    elif action in ("acknowledge", "resolve") and not dedup_key:
        errors.append("'dedup_key' is missing or blank")
    if action != "trigger":
        return errors
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return [*errors, "'payload' is missing or not an object"]
    for name in ("summary", "source", "severity"):
        value = payload.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append(f"'payload.{name}' is missing or blank")
    summary, severity = payload.get("summary"), payload.get("severity")
    if isinstance(summary, str) and len(summary) > MAX_SUMMARY:
        errors.append(f"'payload.summary' is longer than {MAX_SUMMARY} characters")
    if isinstance(severity, str) and severity.strip() and severity not in SEVERITIES:
        errors.append("'payload.severity' is invalid (must be one of: critical, error, warning, info)")
    links = event.get("links", [])
    if not isinstance(links, list) or not all(isinstance(x, dict) and x.get("href") for x in links):
        errors.append("'links' must be a list of objects with an 'href'")
    return errors
