"""Pager and chat that only log and record what they would send: the default until keys are set."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from shared.incidents import Incident
from shared.severity import Severity

log = logging.getLogger(__name__)


class DryRunRecorder:
    """Appends each would-be request as one JSON line, so a person (or a test) can read it back."""

    def __init__(self, path: Path, service: str) -> None:
        self.path = path
        self.service = service
        self._lock = threading.Lock()

    def record(self, operation: str, payload: dict[str, Any]) -> None:
        """Log and append one would-be request."""
        line = json.dumps(
            {"service": self.service, "operation": operation, "payload": payload}, sort_keys=True
        )
        log.info("dry-run %s %s: %s", self.service, operation, line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    def sent(self) -> list[dict[str, Any]]:
        """Everything recorded so far, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


class DryRunPager:
    """Records the PagerDuty Events v2 request it would send."""

    def __init__(self, recorder: DryRunRecorder) -> None:
        self.recorder = recorder

    def trigger(self, incident: Incident) -> str:
        """Record a trigger."""
        self.recorder.record("trigger", events_v2_body(incident, "trigger"))
        return f"PagerDuty (dry-run): would trigger {PD_SEVERITY[incident.severity]} for {incident.id}"

    def resolve(self, incident: Incident) -> str:
        """Record a resolve."""
        self.recorder.record("resolve", events_v2_body(incident, "resolve"))
        return f"PagerDuty (dry-run): would resolve {incident.id}"


class DryRunChat:
    """Records the Slack message it would post."""

    def __init__(self, recorder: DryRunRecorder) -> None:
        self.recorder = recorder

    def post(self, incident: Incident, event: str) -> str:
        """Record a post or update."""
        counts = f"{incident.status}, {incident.signal_count} signals"
        text = f"[{incident.severity.label.upper()}] {incident.title} ({counts})"
        self.recorder.record(
            event, {"incident_id": incident.id, "text": text, "reasons": list(incident.reasons)}
        )
        return f"Slack (dry-run): would post '{event}' for {incident.id}"


PD_SEVERITY = {
    Severity.SEV1: "critical",
    Severity.SEV2: "error",
    Severity.SEV3: "warning",
    Severity.SEV4: "info",
}


def events_v2_body(incident: Incident, action: str) -> dict[str, Any]:
    """The Events API v2 body for an incident (routing key left out: it is a secret)."""
    body: dict[str, Any] = {"event_action": action, "dedup_key": incident.id}
    if action == "trigger":
        body["payload"] = {
            "summary": incident.title[:1024],
            "severity": PD_SEVERITY[incident.severity],
            "source": incident.resource_id or incident.component or "azure",
            "component": incident.component,
            "group": incident.tenant,
            "class": incident.rule,
            "custom_details": {"reasons": list(incident.reasons), "signal_count": incident.signal_count},
        }
    return body
