"""Intake: store each signal with its incident, then hand the decided effects to the queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from shared.clock import Clock, iso, minutes_before
from shared.domain.effects import Change
from shared.domain.incidents import Incident
from shared.domain.signals import Signal
from shared.errors import Conflict, DuplicateSignal, PreconditionFailed, StoreContention
from shared.outbox import MAX_ATTEMPTS, Outbox
from shared.ports import EffectQueue, IncidentStore, Versioned
from shared.triage.assessment import assess
from shared.triage.correlation import correlate, escalate_for_peers, instance_of, is_firing
from shared.triage.policy import Policy


@dataclass
class IntakeReport:
    """What happened to the signals of one request."""

    incidents: list[str] = field(default_factory=list)  # ids touched, in order
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    informational: int = 0
    duplicates: int = 0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "incidents": self.incidents,
            "opened": self.opened,
            "updated": self.updated,
            "resolved": self.resolved,
            "informational": self.informational,
            "duplicates": self.duplicates,
        }


class Intake:
    """Accepts signals: triage, correlate, conditional write, then send effects (outbox pattern)."""

    def __init__(self, store: IncidentStore, queue: EffectQueue, policy: Policy, clock: Clock) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.outbox = Outbox(store, queue)

    def accept(self, signals: Sequence[Signal]) -> IntakeReport:
        """Accept each signal; on return every one is on disk (sending may be left to the sweeper)."""
        report = IntakeReport()
        for signal in signals:
            self._accept_one(signal, report)
        return report

    def _accept_one(self, signal: Signal, report: IntakeReport) -> None:
        assessment = assess(signal, self.policy)
        if assessment.informational:
            self._record_informational(signal, report)
            return
        for _ in range(MAX_ATTEMPTS):
            now = iso(self.clock())
            current = self.store.open_incident(assessment.correlation_key)
            # A Fired retried after its own Resolved was handled: stale, not a new outage. With an
            # incident open it would bring back an instance that resolved and keep it open; one
            # the incident knows to be firing cannot have resolved, so repeats skip the look-up.
            if (current is None or not is_firing(current.incident, signal)) and self._already_resolved(
                signal
            ):
                self._record_informational(signal, report)
                return
            outcome = correlate(current.incident if current else None, signal, assessment, now, self.policy)
            if outcome is None:  # a resolve with nothing open: keep it, it says something happened
                self._record_informational(signal, report)
                self._remember_resolved(signal, "")
                return
            staged = outcome.staged()
            try:
                etag = self.store.commit(
                    staged, current.etag if current else None, [signal], outcome.timeline
                )
            except DuplicateSignal:
                report.duplicates += 1
                if current is not None:  # a retry after a crash may find effects or escalation undone
                    self.flush(current)
                    self._escalate_across_tenants(current.incident)
                return
            except (Conflict, PreconditionFailed):
                continue
            self._count(outcome, current, report)
            self.flush(Versioned(staged, etag))
            if current is None:
                self._escalate_across_tenants(outcome.incident)
            else:  # a Resolved, whether it resolved the incident or one instance of several
                self._remember_resolved(signal, outcome.incident.id)
            return
        raise StoreContention(f"incident for {assessment.correlation_key!r} kept changing under us")

    def flush(self, versioned: Versioned) -> None:
        """Send what the incident's outbox holds (see `shared.outbox`)."""
        self.outbox.flush(versioned)

    def _escalate_across_tenants(self, opened: Incident) -> None:
        """The same condition open on enough tenants: escalate every one of those incidents.

        Asked after the new incident is committed, so of two openings racing on two tenants the
        later one always sees the other; escalating is idempotent, so both may do it.
        """
        if not opened.tenant:
            return
        since = minutes_before(self.clock(), self.policy.window_minutes)
        peers = self.store.open_tenants(opened.condition_key, since)
        tenants = sorted({tenant for tenant, _ in peers})
        if len(tenants) < self.policy.cross_tenant_threshold:
            return
        for _, incident_id in peers:

            def escalate(incident: Incident) -> Change | None:
                return escalate_for_peers(incident, tenants, iso(self.clock()), self.policy)

            self.outbox.update(incident_id, escalate)

    def _remember_resolved(self, signal: Signal, incident_id: str) -> None:
        instance = _alert_instance(signal)
        if instance and signal.state == "resolved":
            self.store.link_external(RESOLVED_ALERTS, instance, incident_id or "-")

    def _already_resolved(self, signal: Signal) -> bool:
        instance = _alert_instance(signal)
        return (
            bool(instance)
            and signal.state == "fired"
            and self.store.find_external(RESOLVED_ALERTS, instance) is not None
        )

    def _record_informational(self, signal: Signal, report: IntakeReport) -> None:
        # Stored without an incident, it says so, whatever made it informational (a routine event,
        # a stale Fired, a Resolved with nothing open), not only an unknown event type.
        if not signal.informational:
            signal = replace(signal, informational=True)
        if self.store.record_informational(signal):
            report.informational += 1
        else:
            report.duplicates += 1

    @staticmethod
    def _count(outcome: Change, current: Versioned | None, report: IntakeReport) -> None:
        report.incidents.append(outcome.incident.id)
        if current is None:
            report.opened += 1
        elif not outcome.incident.is_open:
            report.resolved += 1
        else:
            report.updated += 1


# An Azure Monitor alert instance (alertId, with its dimensions) fires once and resolves once; a new
# firing is a new instance. So a Fired whose instance is already resolved is a late retry.
RESOLVED_ALERTS = "azure-monitor-resolved"


def _alert_instance(signal: Signal) -> str:
    # The instance as correlation tracks it: by alertId alone, one resolved dimension of a
    # multi-dimension alert would make every later firing of its other dimensions look stale.
    return instance_of(signal)
