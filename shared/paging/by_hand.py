"""What a person's acknowledge or resolve (from Slack) does to our incident, pure.

Ours changes at once, in the same conditional commit as the card update and the effect that
tells PagerDuty (its REST API, through the `pages` queue), so PagerDuty is told even when it is
down now: the page sync retries it, and says on the incident while it keeps failing.
"""

from __future__ import annotations

from shared.clock import seconds_between
from shared.domain.effects import Change, Effect, EffectKind
from shared.domain.incidents import ACKNOWLEDGED, RESOLVED, Incident, TimelineEntry
from shared.errors import Rejected

PD_ACKNOWLEDGE = "pd-acknowledge"  # page effects: set PagerDuty's incident to this status by REST
PD_RESOLVE = "pd-resolve"
PD_STATUS = {PD_ACKNOWLEDGE: "acknowledged", PD_RESOLVE: "resolved"}


class AlreadyThere(Rejected):
    """The incident is acknowledged or resolved already; the text says by whom and when."""


def acknowledged(incident: Incident, who: str, now: str) -> Change:
    """Acknowledged by `who` ("U0ADA via slack"); AlreadyThere when it was acknowledged or resolved."""
    if incident.status == RESOLVED:
        raise AlreadyThere(f"{_resolved(incident)}: there is nothing to acknowledge")
    if incident.status == ACKNOWLEDGED:
        raise AlreadyThere(
            f"incident {incident.id} was acknowledged by {incident.acknowledged_by or 'someone'} "
            f"at {incident.acknowledged_at} already"
        )
    updated = marked_acknowledged(incident, who, now).evolve(updated_at=now)
    return _told(updated, f"Acknowledged by {who}", "acknowledged", PD_ACKNOWLEDGE, who, now)


def marked_acknowledged(incident: Incident, who: str, at: str) -> Incident:
    """The incident acknowledged by `who` at `at` (here or in PagerDuty), its time to acknowledge kept."""
    return incident.evolve(
        status=ACKNOWLEDGED,
        acknowledged_at=at,
        acknowledged_by=who,
        time_to_acknowledge_seconds=incident.time_to_acknowledge_seconds
        or seconds_between(incident.opened_at, at),
    )


def resolved(incident: Incident, who: str, now: str) -> Change:
    """Resolved by `who`; AlreadyThere when it was resolved before."""
    if incident.status == RESOLVED:
        raise AlreadyThere(f"{_resolved(incident)} already")
    updated = incident.evolve(
        status=RESOLVED,
        resolved_at=now,
        resolved_by=who,
        time_to_resolve_seconds=seconds_between(incident.opened_at, now),
        firing_instances=(),  # a new alert opens a new incident, as after any resolve
        updated_at=now,
    )
    return _told(updated, f"Resolved by {who}", "resolved", PD_RESOLVE, who, now)


def _told(updated: Incident, line: str, event: str, pagerduty: str, who: str, now: str) -> Change:
    severity = updated.severity.label
    effects = [
        Effect(EffectKind.NOTIFY, updated.id, event, severity, now, detail=line),
        Effect(EffectKind.PAGE, updated.id, pagerduty, severity, now, detail=who),
    ]
    return Change(updated, [TimelineEntry(now, event, line)], effects)


def _resolved(incident: Incident) -> str:
    by = incident.resolved_by or "its alert"
    return f"incident {incident.id} was resolved by {by} at {incident.resolved_at}"
