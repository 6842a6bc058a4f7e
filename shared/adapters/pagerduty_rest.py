"""PagerDirectory on PagerDuty's REST API v2, through the `pagerduty` package's RestApiV2Client."""

from __future__ import annotations

import threading
import time
from typing import Any

from shared.adapters.pagerduty_client import rest_client, translated_errors
from shared.ports import OnCall

ON_CALL_TTL_SECONDS = 60.0  # who is on call changes at shift boundaries; a minute stale is fine


class PagerDutyRest:
    """Implements `shared.ports.PagerDirectory` for one PagerDuty service."""

    def __init__(self, api_token: str, base_url: str, service_id: str, from_email: str | None) -> None:
        self.service_id = service_id
        with translated_errors("PagerDuty REST API"):
            self._client = rest_client(api_token, base_url, from_email)
        self._lock = threading.Lock()
        self._on_call: tuple[float, list[OnCall]] | None = None

    def incident_id(self, dedup_key: str) -> str | None:
        """PagerDuty's incident for our dedup key (its incident_key)."""
        with translated_errors("PagerDuty REST API (incidents)"):
            found = self._client.rget("/incidents", params={"incident_key": dedup_key})
        return str(found[0]["id"]) if isinstance(found, list) and found else None

    def incident_key(self, incident_id: str) -> str | None:
        """GET /incidents/{id}: its incident_key."""
        with translated_errors("PagerDuty REST API (incident)"):
            found = self._client.rget(f"/incidents/{incident_id}")
        key = found.get("incident_key") if isinstance(found, dict) else None
        return str(key) if key else None

    def add_note(self, incident_id: str, text: str) -> None:
        """Add a note (PagerDuty wants a From header: PAGERDUTY_FROM_EMAIL)."""
        with translated_errors("PagerDuty REST API (notes)"):
            self._client.rpost(f"/incidents/{incident_id}/notes", json={"content": text[:25_000]})

    def acknowledge(self, incident_id: str) -> None:
        """PUT /incidents/{id} status acknowledged (as PAGERDUTY_FROM_EMAIL)."""
        self._set_status(incident_id, "acknowledged")

    def resolve(self, incident_id: str) -> None:
        """PUT /incidents/{id} status resolved (as PAGERDUTY_FROM_EMAIL)."""
        self._set_status(incident_id, "resolved")

    def _set_status(self, incident_id: str, status: str) -> None:
        with translated_errors(f"PagerDuty REST API ({status})"):
            # rput wraps the body as {"incident": {...}}, the entity PUT /incidents/{id} takes.
            self._client.rput(
                f"/incidents/{incident_id}", json={"type": "incident_reference", "status": status}
            )

    def on_call(self) -> list[OnCall]:
        """Who is on call now on the service's escalation policy; cached for a minute."""
        with self._lock:
            if self._on_call and time.monotonic() - self._on_call[0] < ON_CALL_TTL_SECONDS:
                return self._on_call[1]
        with translated_errors("PagerDuty REST API (on-call)"):
            service = self._client.rget(f"/services/{self.service_id}")
            policy = service["escalation_policy"]["id"]
            entries = self._client.rget(
                "/oncalls", params={"escalation_policy_ids": [policy], "include": ["users"], "earliest": True}
            )
        people = [_on_call(e) for e in entries if isinstance(e, dict) and isinstance(e.get("user"), dict)]
        with self._lock:
            self._on_call = (time.monotonic(), people)
        return people


def _on_call(entry: dict[str, Any]) -> OnCall:
    user = entry["user"]
    return OnCall(
        user_id=str(user.get("id", "")),
        name=str(user.get("name") or user.get("summary", "")),
        email=str(user.get("email", "")),
        escalation_level=int(entry.get("escalation_level", 0)),
    )
