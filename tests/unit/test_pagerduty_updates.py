"""What PagerDuty's webhook events do to our incident (real captured payloads, retargeted)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.incidents import Incident, PageState
from shared.paging.webhook_updates import apply_event, malformed, pagerduty_incident_of
from shared.triage.assessment import assess
from shared.triage.correlation import correlate
from shared.triage.policy import load_policy
from tests.conftest import REFDATA
from tests.factories import signal

POLICY = load_policy()
NOW = "2025-04-07T03:50:00.000Z"
OPENED = "2025-04-07T03:45:00.000Z"


def _incident() -> Incident:
    s = signal(azure_severity="Sev0")
    outcome = correlate(None, s, assess(s, POLICY), OPENED, POLICY)
    assert outcome is not None
    return outcome.incident.evolve(outbox=(), pagerduty_state=PageState.parse("triggered:sev1"))


def captured(name: str) -> dict[str, Any]:
    """The `event` of a captured delivery."""
    event: dict[str, Any] = json.loads(
        (REFDATA / "pagerduty" / f"webhook_v3_captured_{name}.json").read_text()
    )["event"]
    return event


def test_acknowledged_records_who_and_time_to_acknowledge() -> None:
    change = apply_event(_incident(), captured("incident_acknowledged"), NOW)
    incident = change.incident
    assert (incident.status, incident.acknowledged_by, incident.acknowledged_at) == (
        "acknowledged",
        "Ben",
        "2025-04-07T03:47:13.546Z",
    )
    assert incident.time_to_acknowledge_seconds == 133.546
    assert (incident.pagerduty_incident, incident.pagerduty_url) == (
        "Q2CKYRLH85UNN4",
        "https://aldaviva.pagerduty.com/incidents/Q2CKYRLH85UNN4",
    )
    assert change.timeline[0].text == "Acknowledged by Ben in PagerDuty"
    (notify,) = change.effects
    assert (notify.kind, notify.detail) == ("notify", "Acknowledged by Ben in PagerDuty")


def test_resolved_in_pagerduty_resolves_ours_without_sending_it_back() -> None:
    event = captured("incident_resolved")
    change = apply_event(_incident(), event, NOW)
    incident = change.incident
    assert incident.status == "resolved" and incident.resolved_at == event["occurred_at"]
    assert incident.resolved_by is not None and incident.resolved_by.endswith("(PagerDuty)")
    assert str(incident.pagerduty_state) == "resolved", "PagerDuty knows: no resolve event goes back"
    assert incident.time_to_resolve_seconds is not None and incident.time_to_resolve_seconds > 0


def test_unacknowledged_reopens() -> None:
    acknowledged = apply_event(_incident(), captured("incident_acknowledged"), NOW).incident
    event = {**captured("incident_acknowledged"), "event_type": "incident.unacknowledged", "id": "E2"}
    assert apply_event(acknowledged, event, NOW).incident.status == "open"


def test_a_note_is_a_thread_line() -> None:
    change = apply_event(_incident(), captured("incident_annotated"), NOW)
    assert change.incident.status == "open"
    assert change.timeline[0].text == "Note from Ben: Resolution Note: I'm resolving it"
    assert change.incident.pagerduty_incident == "Q2CKYRLH85UNN4", "a note names its incident by reference"


@pytest.mark.parametrize(
    ("event_type", "data", "line"),
    [
        (
            "incident.reassigned",
            {"type": "incident", "assignees": [{"summary": "Dad"}]},
            "Reassigned to Dad by Ben",
        ),
        ("incident.escalated", {"type": "incident", "assignees": [{"summary": "Dad"}]}, "Escalated to Dad"),
        (
            "incident.priority_updated",
            {"type": "incident", "priority": {"summary": "P1"}},
            "Priority set to P1 by Ben",
        ),
        ("incident.triggered", {"type": "incident", "number": 37}, "PagerDuty incident #37 opened"),
        ("incident.workflow.started", {"type": "incident"}, "PagerDuty incident.workflow.started from Ben"),
    ],
)
def test_other_events_are_written_down(event_type: str, data: dict[str, Any], line: str) -> None:
    event = {**captured("incident_acknowledged"), "event_type": event_type, "data": data}
    change = apply_event(_incident(), event, NOW)
    assert change.incident.status == "open"
    assert change.timeline[0].text == line


def test_which_incident_an_event_names() -> None:
    assert pagerduty_incident_of(captured("incident_acknowledged")) == (
        "Q2CKYRLH85UNN4",
        "dfead9d88e0649e8b7dee514b1875756",
    )
    assert pagerduty_incident_of(captured("incident_annotated")) == ("Q2CKYRLH85UNN4", "")
    assert pagerduty_incident_of(captured("pagey_ping")) == ("", "")


def test_unacknowledged_forgets_who_acknowledged() -> None:
    acknowledged = apply_event(_incident(), captured("incident_acknowledged"), NOW).incident
    event = {**captured("incident_acknowledged"), "event_type": "incident.unacknowledged", "id": "E3"}
    reopened = apply_event(acknowledged, event, NOW).incident
    assert (reopened.acknowledged_by, reopened.acknowledged_at) == (None, None)
    assert reopened.time_to_acknowledge_seconds == acknowledged.time_to_acknowledge_seconds, (
        "the first one counts"
    )


@pytest.mark.parametrize(
    ("event_type", "data", "problem"),
    [
        ("incident.reassigned", {"assignees": 5}, "event.data.assignees must be an array, got a number"),
        ("incident.escalated", {"assignees": "Ben"}, "event.data.assignees must be an array, got a string"),
        (
            "incident.reassigned",
            {"assignees": [1]},
            "event.data.assignees[0] must be an object, got a number",
        ),
        (
            "incident.priority_updated",
            {"priority": [1]},
            "event.data.priority must be an object, got an array",
        ),
        ("incident.annotated", {"content": {"a": 1}}, "event.data.content must be a string, got an object"),
    ],
)
def test_a_malformed_field_is_named_on_the_timeline_and_changes_nothing(
    event_type: str, data: dict[str, Any], problem: str
) -> None:
    event = {"id": "E9", "event_type": event_type, "occurred_at": NOW, "data": data}
    assert malformed(event) == problem
    incident = _incident()
    change = apply_event(incident, event, NOW)
    assert change.incident == incident
    (line,) = change.timeline
    assert line.text == f"PagerDuty {event_type} (event E9) not applied: {problem}"
