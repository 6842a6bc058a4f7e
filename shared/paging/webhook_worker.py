"""Applies PagerDuty webhook events from the `pagerduty` queue to our incidents, once each."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from shared.clock import Clock, iso, utc_iso
from shared.domain.resources import ResourceId
from shared.domain.signals import Signal
from shared.errors import PoisonMessage
from shared.outbox import Outbox
from shared.paging.webhook_updates import apply_event, malformed, pagerduty_incident_of
from shared.ports import IncidentStore, PagerDirectory

log = logging.getLogger(__name__)


class PagerDutyEventWorker:
    """Applies each event to the incident it names; stored as a signal, an event counts once."""

    def __init__(
        self,
        store: IncidentStore,
        outbox: Outbox,
        clock: Clock,
        directory: PagerDirectory | None = None,
        on_acknowledged: Callable[[str, str], None] | None = None,
    ) -> None:
        # Told (incident id, who) when on-call acknowledges: actions waiting on approve_on_ack go.
        self.on_acknowledged = on_acknowledged
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self.directory = directory

    def handle(self, body: bytes) -> None:
        """Apply one event; raising makes the queue redeliver it."""
        event = _event(body)
        signal = _signal(event)
        problem = malformed(event)
        pagerduty_id, incident_key = pagerduty_incident_of(event)
        incident_id = self._ours(pagerduty_id, incident_key)
        if incident_id is None:
            # pagey.ping, or an incident this responder did not open: keep it, it says something happened.
            self.store.record_informational(signal)
            log.info("PagerDuty %s for no incident of ours (%s)", event["event_type"], pagerduty_id or "-")
        else:
            # A malformed event is written down on the incident (apply_event says what was not applied)…
            now = iso(self.clock())
            updated = self.outbox.update(
                incident_id, lambda incident: apply_event(incident, event, now), signal=signal
            )
            if pagerduty_id and not problem:
                self.store.link_external("pagerduty", pagerduty_id, incident_id)
            acknowledged = event["event_type"] == "incident.acknowledged" and not problem
            if acknowledged and self.on_acknowledged is not None:
                # Also on a redelivery (updated is None then): approving twice is refused, not repeated.
                incident = updated
                if incident is None:
                    stored = self.store.get(incident_id)
                    incident = stored.incident if stored else None
                if incident is not None and incident.acknowledged_by:
                    self.on_acknowledged(incident_id, incident.acknowledged_by)
        if problem:
            # …and settled as poison with its reason: no redelivery can make it well-formed.
            raise PoisonMessage(f"PagerDuty {event['event_type']} {event['id']}: {problem}")

    def _ours(self, pagerduty_id: str, incident_key: str) -> str | None:
        if incident_key and self.store.get(incident_key) is not None:
            return incident_key
        linked = self.store.find_external("pagerduty", pagerduty_id) if pagerduty_id else None
        if linked or not pagerduty_id or incident_key or self.directory is None:
            return linked
        # A note names its incident by PagerDuty's id only; before any event linked it, ask PagerDuty.
        # (Transient from the lookup raises: the queue delivers the event again.)
        key = self.directory.incident_key(pagerduty_id)
        return key if key and self.store.get(key) is not None else None


def _event(body: bytes) -> dict[str, Any]:
    """The event of a delivery as PagerDuty sent it ({"event": {...}})."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise PoisonMessage(f"not a PagerDuty event: {e}") from e
    event = envelope.get("event") if isinstance(envelope, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event.get("event_type"):
        raise PoisonMessage("not a PagerDuty event: needs id and event_type")
    return event


def _signal(event: dict[str, Any]) -> Signal:
    kind = str(event["event_type"])
    return Signal(
        id=f"pd:{event['id']}",
        source="pagerduty",
        schema="pagerduty-webhook-v3",
        kind=kind,
        rule=kind,
        state="event",
        azure_severity="",
        resource=ResourceId(raw=""),
        title=f"PagerDuty {kind}",
        occurred_at=utc_iso(str(event.get("occurred_at") or "")),
        informational=True,
    )
