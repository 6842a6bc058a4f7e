"""Pager and chat that only log and record what they would send: the default until keys are set."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from shared.domain.incidents import Incident
from shared.ports import PageEvent

log = logging.getLogger(__name__)


class DryRunRecorder:
    """Appends each would-be request as one JSON line, so a person (or a test) can read it back."""

    def __init__(self, path: Path, service: str) -> None:
        self.path = path
        self.service = service
        self._lock = threading.Lock()

    def record(self, operation: str, payload: dict[str, Any], summary: str) -> None:
        """Append one would-be request; log one line of it (the whole request is in the file)."""
        line = json.dumps(
            {"service": self.service, "operation": operation, "payload": payload}, sort_keys=True
        )
        log.info("dry-run %s %s %s", self.service, operation, _one_line(summary))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    def sent(self) -> list[dict[str, Any]]:
        """Everything recorded so far, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


class DryRunPager:
    """Records the PagerDuty Events v2 request it would send (the routing key, a secret, left out)."""

    def __init__(self, recorder: DryRunRecorder) -> None:
        self.recorder = recorder

    def route_for(self, incident: Incident) -> str:
        """No route: once real keys are set, the first real page picks one."""
        return ""

    def send(self, event: PageEvent, route: str) -> str:
        """Record the request body the real pager would send (less the routing key)."""
        if event.action == "resolve":
            self.recorder.record(event.action, event.body(), event.dedup_key)
            return f"PagerDuty (dry-run): would resolve {event.dedup_key}"
        payload = event.payload or {}
        severity = payload.get("severity", "")
        self.recorder.record(
            event.action, event.body(), f"{severity} {event.dedup_key}: {payload.get('summary', '')}"
        )
        return f"PagerDuty (dry-run): would trigger {severity} for {event.dedup_key}"

    def change_event(self, route: str, summary: str, source: str, details: dict[str, Any]) -> str:
        """Record the change event it would send."""
        body = {"payload": {"summary": summary[:1024], "source": source, "custom_details": details}}
        self.recorder.record("change", body, summary)
        return f"PagerDuty (dry-run): would send change event '{summary[:80]}'"


class DryRunChat:
    """Records the Slack messages it would post."""

    def __init__(self, recorder: DryRunRecorder) -> None:
        self.recorder = recorder

    def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None, thread_ts: str | None = None
    ) -> tuple[str, str]:
        """Record a post; returns the channel and a made-up ts like Slack's."""
        ts = f"{time.time():.6f}"
        where = f"{channel} thread {thread_ts}" if thread_ts else channel
        self.recorder.record(
            "chat.postMessage",
            {"channel": channel, "text": text, "blocks": blocks, "thread_ts": thread_ts, "ts": ts},
            f"{where}: {text}",
        )
        return channel, ts

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """Record an update."""
        self.recorder.record(
            "chat.update",
            {"channel": channel, "ts": ts, "text": text, "blocks": blocks},
            f"{channel} {ts}: {text}",
        )


def _one_line(text: str, limit: int = 200) -> str:
    """A log line stays one line: newlines folded, long text cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
