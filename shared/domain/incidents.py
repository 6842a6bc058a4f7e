"""Incident: the signals of one correlation key while it is open, with its severity and why."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from shared.domain.severity import Severity


class IncidentStatus(enum.StrEnum):
    """Where an incident stands; only a resolved one lets its key open a new incident."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


OPEN, ACKNOWLEDGED, RESOLVED = IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED


@dataclass(frozen=True)
class TimelineEntry:
    """One line of an incident's history."""

    at: str
    kind: str  # "opened", "signal", "severity", "resolved", "effect", …
    text: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return asdict(self)


class PageStatus(enum.StrEnum):
    """How far PagerDuty has been told about an incident."""

    NONE = ""  # never paged
    TRIGGERING = "triggering"  # a trigger may be out: written before the call, in case its answer is lost
    TRIGGERED = "triggered"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class PageState:
    """What PagerDuty was last told: a status and, while triggered, at which severity."""

    status: PageStatus = PageStatus.NONE
    severity: Severity | None = None

    @property
    def may_be_out(self) -> bool:
        """PagerDuty may show an alert for it (so a resolve must go out)."""
        return self.status in (PageStatus.TRIGGERING, PageStatus.TRIGGERED)

    def __str__(self) -> str:
        """The stored form: "", "triggering:sev1", "triggered:sev2", "resolved"."""
        if self.severity is not None and self.may_be_out:
            return f"{self.status.value}:{self.severity.label}"
        return self.status.value

    @classmethod
    def parse(cls, text: str) -> PageState:
        """Inverse of `str`; ValueError on anything else."""
        status, _, severity = text.partition(":")
        state = cls(PageStatus(status), Severity.parse(severity) if severity else None)
        if state.may_be_out != (state.severity is not None):
            raise ValueError(f"not a page state: {text!r}")
        return state


NOT_PAGED = PageState()
PAGE_RESOLVED = PageState(PageStatus.RESOLVED)


@dataclass(frozen=True)
class Incident:
    """State of one incident; changed only by building a new one (see `shared.triage.assessment`)."""

    id: str
    correlation_key: str
    condition_key: str  # the same failure on another tenant shares it (cross-tenant escalation)
    title: str
    severity: Severity
    status: IncidentStatus
    tenant: str
    environment: str
    component: str
    resource_id: str
    rule: str
    kind: str  # the kind of the signal that opened it ("Resource Health", an event type, …)
    signal_count: int
    opened_at: str
    updated_at: str
    last_signal_at: str
    reasons: tuple[str, ...]
    resolved_at: str | None = None
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    all_tenants: bool = False
    paged: bool = False  # a page was triggered, so resolving must resolve it too
    # An automatic action with page = "on-failure" is at work: nobody is woken unless it fails.
    page_held: bool = False
    # Each action taken for the incident and where it stands, as the card shows it (id → line).
    action_states: Mapping[str, str] = field(default_factory=dict)
    planned_actions: tuple[str, ...] = ()
    # What PagerDuty was last told, and through which routing selector, so a resolve goes to the
    # trigger's routing key.
    pagerduty_state: PageState = NOT_PAGED
    pagerduty_route: str = ""
    pagerduty_incident: str = ""  # PagerDuty's incident id and link, once its webhook names them
    pagerduty_url: str = ""
    slack_channel: str = ""
    slack_ts: str = ""  # the card's message; updates edit it, events reply in its thread
    time_to_acknowledge_seconds: float | None = None
    time_to_resolve_seconds: float | None = None
    failures: tuple[str, ...] = ()  # effects that gave up, with the reason a person reads
    # Digests of the alert instances still firing (see `shared.triage.correlation.instance_of`):
    # a Resolved of one of them resolves the incident only when it was the last. Internal, like
    # the outbox; a record stored before they were tracked has none.
    firing_instances: tuple[str, ...] = ()
    # When each planned action's part (its label names it: "… deployment=shop/cart") last had a
    # signal, so settling one part's action is not failed by another part's alert. Internal.
    part_signals: Mapping[str, str] = field(default_factory=dict)
    # Effects decided but not yet confirmed on the queue (transactional outbox): the intake
    # clears them after a successful send, the sweeper re-sends what a crash left behind.
    outbox: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def is_open(self) -> bool:
        """Not resolved."""
        return self.status != RESOLVED

    def evolve(self, **changes: Any) -> Incident:
        """A copy with changes."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form (the outbox is internal and left out)."""
        data = {name: getattr(self, name) for name in _PUBLIC_FIELDS}
        data["severity"] = self.severity.label
        data["reasons"] = list(self.reasons)
        data["planned_actions"] = list(self.planned_actions)
        data["failures"] = list(self.failures)
        data["pagerduty_state"] = str(self.pagerduty_state)
        data["action_states"] = dict(self.action_states)
        return data

    def to_record(self) -> dict[str, Any]:
        """The stored form: public fields plus the outbox (shallow: it is written on every signal)."""
        data = self.to_dict()
        if self.firing_instances:  # left out when empty, so most records stay readable by older code
            data["firing_instances"] = list(self.firing_instances)
        if self.part_signals:
            data["part_signals"] = dict(self.part_signals)
        data["outbox"] = [dict(e) for e in self.outbox]
        return data

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Incident:
        """Inverse of `to_record`; fields it does not know (written by a newer release) are ignored, so a
        rollback can still read what the newer code stored."""
        fields = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        fields["severity"] = Severity.parse(fields["severity"])
        fields["status"] = IncidentStatus(fields["status"])
        fields["reasons"] = tuple(fields["reasons"])
        fields["planned_actions"] = tuple(fields.get("planned_actions", ()))
        fields["failures"] = tuple(fields.get("failures", ()))
        fields["firing_instances"] = tuple(fields.get("firing_instances", ()))
        fields["part_signals"] = dict(fields.get("part_signals", {}))
        fields["outbox"] = tuple(fields.get("outbox", ()))
        fields["action_states"] = dict(fields.get("action_states", {}))
        fields["pagerduty_state"] = PageState.parse(fields.get("pagerduty_state", ""))
        return cls(**fields)


_FIELD_NAMES = frozenset(f.name for f in fields(Incident))
_INTERNAL = ("outbox", "firing_instances", "part_signals")
_PUBLIC_FIELDS = tuple(f.name for f in fields(Incident) if f.name not in _INTERNAL)


def incident_id(correlation_key: str, opened_at: str, opened_by: str) -> str:
    """Short, stable and readable: date of opening plus a hash of key, opening time and the signal
    that opened it (a batch can resolve an incident and reopen its key within one millisecond)."""
    digest = hashlib.sha256(f"{correlation_key}\n{opened_at}\n{opened_by}".encode()).hexdigest()[:10]
    return f"inc-{opened_at[:10].replace('-', '')}-{digest}"
