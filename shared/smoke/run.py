"""The smoke test's steps: health, a test alert, its incident, page and card, its resolve.

Every wait polls (with a small backoff, bounded by the time-out) and finds the incident by its
unique alert rule, so it holds whether intake answers with the incident or only with what it
accepted and opens the incident a moment later. Once the Fired is accepted the Resolved is always
sent, so a failed run leaves nothing open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.smoke.alert import SmokeAlert
from shared.smoke.client import ApiClient, KeyRefused, Unreachable

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
STEPS = (
    "health",
    "alert accepted",
    "incident opened",
    "paged",
    "card posted",
    "resolve accepted",
    "incident resolved",
    "page resolved",
)
FIRST_POLL, MAX_POLL = 0.1, 2.0  # seconds between polls: quick at first, then easing off
LIST_PAGES = 5  # pages of GET /api/incidents searched for the smoke incident (100 each)

T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One line of the checklist."""

    name: str
    status: str
    seconds: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"step": self.name, "status": self.status, "seconds": self.seconds, "detail": self.detail}


@dataclass
class SmokeReport:
    """What a smoke run found, step by step."""

    url: str
    rule: str
    incident_id: str = ""
    steps: list[Step] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every step passed (a skipped one did not)."""
        return len(self.steps) == len(STEPS) and all(s.status == PASSED for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`dr smoke --json`)."""
        return {
            "url": self.url,
            "alert_rule": self.rule,
            "incident": self.incident_id or None,
            "passed": self.passed,
            "steps": [s.to_dict() for s in self.steps],
        }


class StepFailed(Exception):
    """A step saw something other than what it waited for; the message says what."""


def utc_now() -> str:
    """Now as Azure Monitor writes its times."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Smoke:
    """Runs the steps against one responder; `clock`, `sleep` and `now` are injectable for tests."""

    def __init__(
        self,
        client: ApiClient,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], str] = utc_now,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.now = now

    def run(self, alert: SmokeAlert) -> SmokeReport:
        """Every step, in order; after a key the host refuses, the rest are skipped."""
        report = SmokeReport(self.client.base, alert.rule)
        try:
            self._run(alert, report)
        except KeyRefused as e:
            self._record(report, STEPS[len(report.steps)], FAILED, 0.0, str(e))
        for name in STEPS[len(report.steps) :]:
            self._record(report, name, SKIPPED, 0.0, _why_skipped(report))
        return report

    def _run(self, alert: SmokeAlert, report: SmokeReport) -> None:
        if self._step(report, "health", self._health, str) is None:
            return
        fired_at = self.now()
        hints = self._step(report, "alert accepted", lambda: self._post(alert.payload(fired_at)), _accepted)
        if hints is None:
            return
        accepted_at = self.clock()
        incident = self._step(report, "incident opened", lambda: self._opened(alert, hints), _opening)
        if incident is not None:
            report.incident_id = incident["id"]
            self._paged_and_carded(report, incident["id"], accepted_at)
        else:
            for name in ("paged", "card posted"):
                self._record(report, name, SKIPPED, 0.0, "no incident to look at")
        # Whatever happened, resolve what was fired: a smoke test leaves nothing open.
        resolved_at = self.now()
        resolve = self._step(
            report, "resolve accepted", lambda: self._post(alert.payload(fired_at, resolved_at)), _accepted
        )
        if resolve is not None:
            self._resolved(report, incident)

    # --- the steps ----------------------------------------------------------------------------

    def _health(self) -> str:
        """200 from GET /api/health; a 5xx is waited out (an app starting), anything else fails at once."""
        last: list[str] = []

        def healthy() -> dict[str, Any] | None:
            answer = self.client.get("/health", keyed=False)
            if answer.status == 200:
                return answer.body if isinstance(answer.body, dict) else {}
            last[:] = [f"GET /api/health answered {answer.status}: {answer.error()}"]
            if answer.status < 500:
                raise StepFailed(last[0])
            return None

        try:
            body = self._wait(healthy, "not healthy", retry=())
        except StepFailed as e:
            if last and str(e) != last[0]:  # timed out on 5xx answers: say what they were
                raise StepFailed(f"{e}; last: {last[0]}") from None
            raise
        return f"{body.get('status', 'ok')} ({body.get('rules', '?')} rules)"

    def _post(self, payload: dict[str, Any]) -> list[str]:
        """POST /api/alerts; the incident ids the answer names, if it names any (a hint, not relied on)."""
        answer = self.client.post("/alerts", payload)
        if answer.status != 202:
            raise StepFailed(f"POST /api/alerts answered {answer.status}: {answer.error()}")
        named = answer.body.get("incidents") if isinstance(answer.body, dict) else None
        return [i for i in named if isinstance(i, str)] if isinstance(named, list) else []

    def _opened(self, alert: SmokeAlert, hints: list[str]) -> dict[str, Any]:
        incident = self._wait(
            lambda: self._find(alert.rule, hints), f"no incident with alert rule {alert.rule}"
        )
        planned = incident.get("planned_actions") or []
        if planned:
            raise StepFailed(
                f"{incident['id']}: the policy planned a first response for the smoke alert "
                f"({', '.join(map(str, planned))}); resolving it at once"
            )
        return incident

    def _paged_and_carded(self, report: SmokeReport, incident_id: str, accepted_at: float) -> None:
        """Page and card are waited for together, each timed from the alert's 202."""
        seen: dict[str, tuple[float, dict[str, Any]]] = {}

        def both() -> dict[str, Any] | None:
            incident = self._incident(incident_id)
            for name, done in (("paged", _paged(incident)), ("card posted", bool(incident.get("slack_ts")))):
                if done and name not in seen:
                    seen[name] = (self.clock() - accepted_at, incident)
            return incident if len(seen) == 2 else None

        last: dict[str, Any] = {}
        try:
            self._wait(both, "")
        except StepFailed:
            last = self._incident_or_empty(incident_id)
        for name, describe, failing in (
            ("paged", _page_line, _page_trouble),
            ("card posted", _card_line, _card_trouble),
        ):
            if name in seen:
                seconds, incident = seen[name]
                self._record(report, name, PASSED, seconds, describe(incident))
            else:
                waited = f"not within {self.timeout:g} s"
                self._record(report, name, FAILED, self.clock() - accepted_at, f"{waited}: {failing(last)}")

    def _resolved(self, report: SmokeReport, incident: dict[str, Any] | None) -> None:
        if incident is None:
            for name in ("incident resolved", "page resolved"):
                self._record(report, name, SKIPPED, 0.0, "no incident to look at")
            return
        incident_id = incident["id"]

        def resolved() -> dict[str, Any] | None:
            found = self._incident(incident_id)
            return found if found.get("status") == "resolved" else None

        done = self._step(
            report, "incident resolved", lambda: self._wait(resolved, "not resolved"), _resolution
        )
        if done is None:
            self._record(report, "page resolved", SKIPPED, 0.0, "the incident did not resolve")
        elif report.steps[STEPS.index("paged")].status != PASSED:
            self._record(report, "page resolved", SKIPPED, 0.0, "the page was never confirmed")
        else:

            def page_resolved() -> dict[str, Any] | None:
                found = self._incident(incident_id)
                return found if found.get("pagerduty_state") == "resolved" else None

            self._step(report, "page resolved", lambda: self._wait(page_resolved, "not resolved"), _page_line)

    # --- reading the incident -----------------------------------------------------------------

    def _find(self, rule: str, hints: list[str]) -> dict[str, Any] | None:
        """The smoke incident: by the ids the 202 named if any, else newest first in the list."""
        for incident_id in hints:
            answer = self.client.get(f"/incidents/{incident_id}")
            if answer.status == 200 and isinstance(answer.body, dict) and answer.body.get("rule") == rule:
                return answer.body
        params = {"limit": "100"}
        for _ in range(LIST_PAGES):
            answer = self.client.get("/incidents", params)
            if answer.status != 200 or not isinstance(answer.body, dict):
                raise StepFailed(f"GET /api/incidents answered {answer.status}: {answer.error()}")
            for incident in answer.body.get("incidents") or []:
                if isinstance(incident, dict) and incident.get("rule") == rule:
                    return self._incident(str(incident["id"]))
            cursor = answer.body.get("next_cursor")
            if not cursor:
                return None
            params = {"limit": "100", "cursor": str(cursor)}
        return None

    def _incident(self, incident_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/incidents/{incident_id}")
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise StepFailed(f"GET /api/incidents/{incident_id} answered {answer.status}: {answer.error()}")
        return answer.body

    def _incident_or_empty(self, incident_id: str) -> dict[str, Any]:
        try:
            return self._incident(incident_id)
        except (StepFailed, Unreachable):
            return {}

    # --- running and waiting ------------------------------------------------------------------

    def _step(
        self, report: SmokeReport, name: str, work: Callable[[], T], describe: Callable[[T], str]
    ) -> T | None:
        """Run one step and record it; its value, or None when it failed."""
        started = self.clock()
        try:
            value = work()
        except (StepFailed, Unreachable) as e:
            self._record(report, name, FAILED, self.clock() - started, str(e))
            return None
        self._record(report, name, PASSED, self.clock() - started, describe(value))
        return value

    def _wait(
        self,
        check: Callable[[], T | None],
        what: str,
        retry: tuple[type[Exception], ...] = (StepFailed, Unreachable),
    ) -> T:
        """Poll until check() gives a value; StepFailed with `what` (and the last error) at the time-out.
        The errors in `retry` are polled through (a deploy restarting, a busy store), others raised."""
        deadline = self.clock() + self.timeout
        pause, trouble = FIRST_POLL, ""
        while True:
            try:
                found = check()
                if found is not None:
                    return found
                trouble = ""
            except retry as e:
                trouble = f" (last: {e})"
            left = deadline - self.clock()
            if left <= 0:
                raise StepFailed(f"{what} within {self.timeout:g} s{trouble}")
            self.sleep(min(pause, left))
            pause = min(pause * 1.5, MAX_POLL)

    def _record(self, report: SmokeReport, name: str, status: str, seconds: float, detail: str) -> None:
        report.steps.append(Step(name, status, round(seconds, 3), self.client.redact(detail)))


def _why_skipped(report: SmokeReport) -> str:
    failed = [s.name for s in report.steps if s.status == FAILED]
    return f"after {failed[-1]} failed" if failed else "not reached"


def _accepted(hints: list[str]) -> str:
    return f"202, incident {', '.join(hints)}" if hints else "202"


def _opening(incident: dict[str, Any]) -> str:
    return f"{incident['id']} {incident.get('severity', '')}: {incident.get('title', '')}"


def _paged(incident: dict[str, Any]) -> bool:
    return str(incident.get("pagerduty_state") or "").startswith("triggered")


def _last_line(incident: dict[str, Any], kind: str) -> str:
    lines = [e.get("text", "") for e in incident.get("timeline") or [] if e.get("kind") == kind]
    return str(lines[-1]) if lines else ""


def _failures(incident: dict[str, Any], kind: str) -> str:
    found = [str(f) for f in incident.get("failures") or [] if f" {kind} " in f" {f} "]
    return f"; failure: {found[-1]}" if found else ""


def _page_line(incident: dict[str, Any]) -> str:
    line = _last_line(incident, "page") or f"pagerduty_state {incident.get('pagerduty_state')}"
    link = incident.get("pagerduty_url") or incident.get("pagerduty_incident")
    return f"{line} ({link})" if link else line


def _card_line(incident: dict[str, Any]) -> str:
    line = _last_line(incident, "notify") or f"card in {incident.get('slack_channel')}"
    return f"{line}, ts {incident.get('slack_ts')}"


def _page_trouble(incident: dict[str, Any]) -> str:
    if not incident:
        return "the incident could not be read"
    state = incident.get("pagerduty_state")
    seen = (
        f"pagerduty_state {state!r}" if state else f"never paged ({incident.get('severity')}: does it page?)"
    )
    held = ", held while an action works" if incident.get("page_held") else ""
    return f"{seen}{held}{_failures(incident, 'page')}"


def _card_trouble(incident: dict[str, Any]) -> str:
    if not incident:
        return "the incident could not be read"
    return f"no Slack card yet (slack_ts empty){_failures(incident, 'notify')}"


def _resolution(incident: dict[str, Any]) -> str:
    return _last_line(incident, "resolved") or f"resolved at {incident.get('resolved_at')}"
