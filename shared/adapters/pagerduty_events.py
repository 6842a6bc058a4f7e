"""Pager on PagerDuty's Events API v2, through the `pagerduty` package's EventsApiV2Client."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from shared.adapters.pagerduty_client import events_client, translated_errors
from shared.domain.incidents import Incident
from shared.errors import Rejected, Transient
from shared.paging.routing import RoutingTable, target_fingerprint
from shared.ports import PageEvent

# PagerDuty's documented limit is about 120 events a minute per routing key; per process, so with
# several instances the sum can pass it: PagerDuty's 429 is then honoured through the queue.
EVENTS_PER_MINUTE = 120


class PagerDutyEvents:
    """Implements `shared.ports.Pager`."""

    def __init__(self, routing: RoutingTable, base_url: str) -> None:
        self.routing = routing
        self.base_url = base_url
        self._clients: dict[str, Any] = {}
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def route_for(self, incident: Incident) -> str:
        """ "selector#fingerprint" of the key for the incident's tenant and severity (never the key itself).

        The fingerprint, stored with the incident, lets the resolve go through the very key that
        triggered, even after the routing settings have changed.
        """
        selector = self.routing.route(incident.tenant, incident.severity.label)
        key = self.routing.target(selector) if selector else None
        if selector is None or key is None:
            raise Rejected("no PagerDuty routing key fits this incident (set PAGERDUTY_ROUTING_KEY)")
        return f"{selector}#{target_fingerprint(key)}"

    def send(self, event: PageEvent, route: str) -> str:
        """Send a trigger (or re-trigger, with a new severity) or a resolve through the route."""
        body = event.body()
        action, key = body.pop("event_action"), body.pop("dedup_key")
        self._send(route, lambda client: client.send_event(action, dedup_key=key, **body))
        if action == "resolve":
            return f"PagerDuty: resolved (dedup key {key})"
        severity = (event.payload or {}).get("severity", "")
        return f"PagerDuty: triggered {severity} (dedup key {key}, route {route})"

    def change_event(self, route: str, summary: str, source: str, details: dict[str, Any]) -> str:
        """Send a change event, so PagerDuty shows what an automated action changed."""
        payload = {"summary": summary[:1024], "source": source, "custom_details": details}
        self._send(route, lambda client: client.send_change_event(payload=payload))
        return f"PagerDuty: change event '{summary[:80]}'"

    def _send(self, route: str, call: Any) -> None:
        selector, _, fingerprint = route.partition("#")
        key = self.routing.with_fingerprint(fingerprint) if fingerprint else self.routing.target(selector)
        if key is None:
            raise Rejected(
                f"the PagerDuty routing key this incident was paged with ({route}) is no longer configured;"
                " resolve it in PagerDuty by hand"
            )
        wait = self._window(target_fingerprint(key)).take()  # PagerDuty counts per key
        if wait:
            raise Transient(
                f"holding back: {EVENTS_PER_MINUTE} events a minute on route {route}", wait, held=True
            )
        with translated_errors("PagerDuty Events API"):
            call(self._client(route, key))

    def _client(self, route: str, key: str) -> Any:
        with self._lock:
            client = self._clients.get(route)
            if client is None:
                client = self._clients[route] = events_client(key, self.base_url)
            return client

    def _window(self, key_fingerprint: str) -> _Window:
        with self._lock:
            return self._windows.setdefault(key_fingerprint, _Window(EVENTS_PER_MINUTE, 60.0))


class _Window:
    """At most `limit` events in any `seconds`: PagerDuty's own rule, so a burst of up to the limit
    goes out at once (a storm's sev1 pages must not wait) and the rest wait in the queue."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.sent: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 if the event may go now (and it is counted), else seconds until it may."""
        with self._lock:
            now = time.monotonic()
            while self.sent and now - self.sent[0] >= self.seconds:
                self.sent.popleft()
            if len(self.sent) < self.limit:
                self.sent.append(now)
                return 0.0
            return self.sent[0] + self.seconds - now
