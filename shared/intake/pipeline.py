"""Intake: store each signal with its incident, then hand the decided effects to the queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from shared.clock import Clock, iso, minutes_before
from shared.domain.effects import Change
from shared.domain.incidents import Incident, TimelineEntry
from shared.domain.signals import Signal
from shared.errors import Conflict, DuplicateSignal, PreconditionFailed, StoreContention
from shared.outbox import MAX_ATTEMPTS, Outbox
from shared.ports import MAX_SIGNALS_PER_COMMIT, EffectQueue, IncidentStore, Versioned
from shared.triage.assessment import Assessment, assess
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
        """Fold the signals into their incidents; on return every one is on disk (sending may be
        left to the sweeper).

        Signals of one correlation key fold into one conditional write, up to
        MAX_SIGNALS_PER_COMMIT at a time, in the order given: one write per batch instead of one
        per signal is what keeps a storm from becoming a storm of ETag conflicts.
        """
        report = IntakeReport()
        by_key: dict[str, list[tuple[Signal, Assessment]]] = {}
        seen: set[str] = set()
        for signal in signals:
            if signal.id in seen:  # the same signal twice in one batch: stored once
                report.duplicates += 1
                continue
            seen.add(signal.id)
            assessment = assess(signal, self.policy)
            if assessment.informational:
                self._record_informational(signal, report)
            else:
                by_key.setdefault(assessment.correlation_key, []).append((signal, assessment))
        for key, batch in by_key.items():
            for start in range(0, len(batch), MAX_SIGNALS_PER_COMMIT):
                self._fold(key, batch[start : start + MAX_SIGNALS_PER_COMMIT], report)
        return report

    def _fold(self, key: str, batch: list[tuple[Signal, Assessment]], report: IntakeReport) -> None:
        """Fold a batch of one key's signals into its open incident, a commit per incident touched."""
        attempts = 0
        while batch:
            attempts += 1
            if attempts > MAX_ATTEMPTS + len(batch):  # each commit that wins consumes signals
                raise StoreContention(f"incident for {key!r} kept changing under us")
            current = self.store.open_incident(key)
            fold = self._plan(current, batch)
            if fold.outcomes:
                staged = fold.outcomes[-1].staged_incident
                try:
                    etag = self.store.commit(
                        staged, current.etag if current else None, fold.signals, fold.timeline
                    )
                except DuplicateSignal as e:
                    report.duplicates += sum(1 for s, _ in batch if s.id in e.signal_ids)
                    batch = [(s, a) for s, a in batch if s.id not in e.signal_ids]
                    if current is not None:  # a retry after a crash may find effects or escalation undone
                        self.flush(current)
                        self._escalate_across_tenants(current.incident)
                    continue
                except (Conflict, PreconditionFailed):
                    continue
                for outcome in fold.outcomes:
                    _count(outcome, report)
                self.flush(Versioned(staged, etag))
                if current is None:
                    self._escalate_across_tenants(staged)
                for signal in fold.signals:  # a Resolved, whether of the incident or of one instance
                    self._remember_resolved(signal, staged.id)
            for signal in fold.informational:
                self._record_informational(signal, report)
                if signal.state == "resolved" and signal.id in fold.resolved_alone:
                    self._remember_resolved(signal, "")
            batch = batch[fold.consumed :]

    def _plan(self, current: Versioned | None, batch: list[tuple[Signal, Assessment]]) -> _Fold:
        """Correlate signals in turn onto the incident, up to the first one that resolves it (the
        signals after it belong to the next incident of the key, or to none)."""
        now = iso(self.clock())
        fold = _Fold()
        incident = current.incident if current else None
        # The instances known to have resolved, in one look-up for the batch (on Table Storage one
        # per Fired was a request each), and those the batch resolves as it goes.
        fired = {_alert_instance(s) for s, _ in batch if s.state == "fired"} - {""}
        resolved = set(self.store.find_externals(RESOLVED_ALERTS, sorted(fired)))
        for signal, assessment in batch:
            fold.consumed += 1
            instance = _alert_instance(signal)
            # A Fired retried after its own Resolved was handled: stale, not a new outage. With an
            # incident open it would bring back an instance that resolved and keep it open; one
            # the incident knows to be firing cannot have resolved.
            if (
                signal.state == "fired"
                and instance in resolved
                and (incident is None or not is_firing(incident, signal))
            ):
                fold.informational.append(signal)
                continue
            outcome = correlate(incident, signal, assessment, now, self.policy)
            if outcome is None:  # a resolve with nothing open: keep it, it says something happened
                fold.informational.append(signal)
                fold.resolved_alone.add(signal.id)
                continue
            staged = outcome.staged()
            fold.outcomes.append(_Outcome(staged, opened=incident is None))
            fold.signals.append(signal)
            fold.timeline.extend(outcome.timeline)
            if signal.state == "resolved" and instance:
                resolved.add(instance)
            incident = staged
            if not staged.is_open:
                break
        return fold

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

    def _record_informational(self, signal: Signal, report: IntakeReport) -> None:
        # Stored without an incident, it says so, whatever made it informational (a routine event,
        # a stale Fired, a Resolved with nothing open), not only an unknown event type.
        if not signal.informational:
            signal = replace(signal, informational=True)
        if self.store.record_informational(signal):
            report.informational += 1
        else:
            report.duplicates += 1


@dataclass
class _Outcome:
    """One signal's effect on the incident: the incident after it, and whether it opened it."""

    staged_incident: Incident
    opened: bool


@dataclass
class _Fold:
    """What one conditional write of a batch holds, and what of the batch it used up."""

    outcomes: list[_Outcome] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    informational: list[Signal] = field(default_factory=list)
    resolved_alone: set[str] = field(default_factory=set)  # Resolved signals that found nothing open
    consumed: int = 0


def _count(outcome: _Outcome, report: IntakeReport) -> None:
    report.incidents.append(outcome.staged_incident.id)
    if outcome.opened:
        report.opened += 1
    elif not outcome.staged_incident.is_open:
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
