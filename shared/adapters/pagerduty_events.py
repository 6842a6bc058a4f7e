"""Pager on PagerDuty's Events API v2, through the `pagerduty` package's EventsApiV2Client."""

from __future__ import annotations

import threading
import time
from typing import Any

from shared.adapters.pagerduty_client import events_client, translated_errors
from shared.errors import Rejected, Transient
from shared.incidents import Incident
from shared.paging import PD_SEVERITY, dedup_key, trigger_payload
from shared.routing import RoutingTable

EVENTS_PER_MINUTE = 120  # PagerDuty's documented limit per routing key


class PagerDutyEvents:
    """Implements `shared.ports.Pager`."""

    def __init__(self, routing: RoutingTable, base_url: str, runbooks: dict[str, str] | None = None) -> None:
        self.routing = routing
        self.base_url = base_url
        self.runbooks = runbooks or {}
        self._clients: dict[str, Any] = {}
        self._buckets: dict[str, _TokenBucket] = {}
        self._lock = threading.Lock()

    def route_for(self, incident: Incident) -> str:
        """The most specific routing selector configured for the incident's tenant and severity."""
        route = self.routing.route(incident.tenant, incident.severity.label)
        if route is None:
            raise Rejected("no PagerDuty routing key fits this incident (set PAGERDUTY_ROUTING_KEY)")
        return route

    def trigger(self, incident: Incident, route: str, links: list[dict[str, str]]) -> str:
        """Trigger (or re-trigger, with a new severity) the alert for the incident."""
        payload = trigger_payload(incident, self.runbooks.get(incident.component, ""))
        extra: dict[str, Any] = {"payload": payload}
        if links:
            extra["links"] = links
        key = dedup_key(incident)
        self._send(route, lambda client: client.send_event("trigger", dedup_key=key, **extra))
        return f"PagerDuty: triggered {PD_SEVERITY[incident.severity]} (dedup key {key}, route {route})"

    def resolve(self, incident: Incident, route: str) -> str:
        """Resolve the alert through the route that triggered it."""
        self._send(route, lambda client: client.resolve(dedup_key(incident)))
        return f"PagerDuty: resolved (dedup key {dedup_key(incident)})"

    def change_event(self, route: str, summary: str, source: str, details: dict[str, Any]) -> str:
        """Send a change event, so PagerDuty shows what an automated action changed."""
        payload = {"summary": summary[:1024], "source": source, "custom_details": details}
        self._send(route, lambda client: client.send_change_event(payload=payload))
        return f"PagerDuty: change event '{summary[:80]}'"

    def _send(self, route: str, call: Any) -> None:
        key = self.routing.target(route)
        if key is None:
            raise Rejected(f"PagerDuty route {route!r} is no longer configured")
        wait = self._bucket(route).take()
        if wait:
            raise Transient(f"holding back: {EVENTS_PER_MINUTE} events a minute on route {route}", wait)
        with translated_errors("PagerDuty Events API"):
            call(self._client(route, key))

    def _client(self, route: str, key: str) -> Any:
        with self._lock:
            client = self._clients.get(route)
            if client is None:
                client = self._clients[route] = events_client(key, self.base_url)
            return client

    def _bucket(self, route: str) -> _TokenBucket:
        with self._lock:
            return self._buckets.setdefault(route, _TokenBucket(EVENTS_PER_MINUTE, 60.0))


class _TokenBucket:
    """Per-process pacing under PagerDuty's limit, so a burst waits in the queue instead of getting 429s."""

    def __init__(self, capacity: int, per_seconds: float) -> None:
        self.capacity = capacity
        self.rate = capacity / per_seconds
        self.tokens = float(capacity)
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 if a token was taken, else seconds until one is free."""
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate
