"""Page sync: makes PagerDuty show the incident as it is now, whatever the message says.

Pages are synchronised, not replayed: effects that arrive late, twice or out of order (a retry
overtaken by a resolve) still leave the right state, and a storm of updates to one incident
costs one call. A page never gives up; every few failed tries it says so on the incident.
"""

from __future__ import annotations

import logging

from shared.clock import Clock, iso
from shared.domain.effects import Change, Effect, EffectKind
from shared.domain.incidents import (
    NOT_PAGED,
    PAGE_RESOLVED,
    RESOLVED,
    Incident,
    PageState,
    PageStatus,
    TimelineEntry,
)
from shared.errors import Rejected, Transient
from shared.outbox import Outbox
from shared.paging.by_hand import PD_RESOLVE, PD_STATUS
from shared.paging.links import incident_links
from shared.paging.page import dedup_key, resolve_event, trigger_event
from shared.ports import Pager, PagerDirectory
from shared.retries import EffectRunner, RetryRule
from shared.triage.policy import Policy

log = logging.getLogger(__name__)

PAGE_RETRIES = RetryRule(give_up_after=None, warn_every=5)


class PageSync:
    """Handles the `pages` queue."""

    def __init__(
        self,
        runner: EffectRunner,
        outbox: Outbox,
        pager: Pager,
        policy: Policy,
        clock: Clock,
        runbook_base: str = "",
        directory: PagerDirectory | None = None,
    ) -> None:
        self.directory = directory
        self.runner = runner
        self.outbox = outbox
        self.pager = pager
        self.policy = policy
        self.clock = clock
        self.runbook_base = runbook_base

    def handle(self, body: bytes) -> None:
        """Carry out one page message; raising makes the queue redeliver it."""
        self.runner.run(body, EffectKind.PAGE, PAGE_RETRIES, self._sync)

    def _sync(self, effect: Effect, incident: Incident) -> None:
        if effect.event == "news":
            self._news(effect, incident)
            return
        if effect.event in PD_STATUS:
            self._set_status(effect, incident)
            return
        self._converge(incident)

    def _converge(self, incident: Incident) -> None:
        desired = desired_page_state(incident, self.policy)
        if desired == incident.pagerduty_state:
            return  # PagerDuty already shows this: coalesced
        if desired == PAGE_RESOLVED:
            route = incident.pagerduty_route
            line = self.pager.send(resolve_event(incident), route)
        else:
            route = incident.pagerduty_route or self.pager.route_for(incident)
            # Written before the call: if PagerDuty takes the trigger but its answer is lost, the
            # incident still knows a page may be out, and a later resolve goes to it.
            if not self._mark(incident.id, desired, route):
                return  # it moved on since it was read (resolved, raised): its own message pages it
            component = self.policy.component(incident.component)
            links = incident_links(incident, self.policy, self.runbook_base)
            event = trigger_event(incident, links, component.runbook if component else "")
            line = self.pager.send(event, route)
        now = iso(self.clock())

        def paged(current: Incident) -> Change:
            updated = current.evolve(pagerduty_state=desired, pagerduty_route=route, updated_at=now)
            effects = [Effect(EffectKind.NOTIFY, current.id, f"paged-{desired}", current.severity.label, now)]
            if desired_page_state(updated, self.policy) != desired:
                # The incident moved on while we called (resolved in PagerDuty, raised again): go again.
                effects.append(
                    Effect(EffectKind.PAGE, current.id, "converge", current.severity.label, now, detail=now)
                )
            return Change(updated, [TimelineEntry(now, "page", line)], effects)

        self.outbox.update(incident.id, paged)

    def _news(self, effect: Effect, incident: Incident) -> None:
        """What an action did: a change event, and a note on the PagerDuty incident once it has one."""
        try:
            route = incident.pagerduty_route or self.pager.route_for(incident)
        except Rejected:
            log.info("no PagerDuty route for %s: change event not sent", incident.id)
            return
        details = {"incident": incident.id, "action": effect.target, "resource": incident.resource_id}
        self.pager.change_event(route, effect.detail, incident.resource_id or "dr-responder", details)
        if self.directory is not None and incident.pagerduty_incident:
            self.directory.add_note(incident.pagerduty_incident, effect.detail)

    def _set_status(self, effect: Effect, incident: Incident) -> None:
        """A person acknowledged or resolved it in Slack: PagerDuty's incident too, by its REST API."""
        status, who = PD_STATUS[effect.event], effect.detail
        resolving = effect.event == PD_RESOLVE
        if self.directory is None:
            if resolving:
                self._converge(incident)  # a resolve event through the Events API instead
                return
            self._noted(
                incident,
                "PagerDuty not told of the acknowledgement: its REST API is not set up "
                "(PAGERDUTY_API_TOKEN, PAGERDUTY_SERVICE_ID, PAGERDUTY_FROM_EMAIL)",
            )
            return
        pagerduty_id = incident.pagerduty_incident or self.directory.incident_id(dedup_key(incident))
        if not pagerduty_id:
            if incident.pagerduty_state.status is PageStatus.TRIGGERING:
                raise Transient("PagerDuty has not opened its incident yet")  # the trigger is in flight
            if resolving:
                self._converge(incident)
                return
            self._noted(
                incident, "PagerDuty has no incident for it (never paged): nothing to acknowledge there"
            )
            return
        if resolving:
            self.directory.resolve(pagerduty_id)
        else:
            self.directory.acknowledge(pagerduty_id)
        line = f"PagerDuty incident {pagerduty_id} {status} for {who} (REST API)"
        self._noted(incident, line, pagerduty_id, PAGE_RESOLVED if resolving else None)

    def _noted(
        self, incident: Incident, line: str, pagerduty_id: str = "", state: PageState | None = None
    ) -> None:
        """The line on the timeline and in the card's thread; PagerDuty's incident id remembered."""
        now = iso(self.clock())

        def noted(current: Incident) -> Change:
            updated = current.evolve(pagerduty_incident=current.pagerduty_incident or pagerduty_id)
            if state is not None:
                updated = updated.evolve(pagerduty_state=state)
            tell = Effect(
                EffectKind.NOTIFY, current.id, "pd-status", current.severity.label, now, detail=line
            )
            return Change(updated, [TimelineEntry(now, "page", line)], [tell])

        self.outbox.update(incident.id, noted)

    def _mark(self, incident_id: str, desired: PageState, route: str) -> bool:
        """Write "triggering" if the incident as stored still wants this page; False if it does not."""
        triggering = PageState(PageStatus.TRIGGERING, desired.severity)

        def mark(current: Incident) -> Change | None:
            if desired_page_state(current, self.policy) != desired:
                return None
            return Change(current.evolve(pagerduty_state=triggering, pagerduty_route=route))

        return self.outbox.update(incident_id, mark) is not None


def desired_page_state(incident: Incident, policy: Policy) -> PageState:
    """What PagerDuty should show for the incident now."""
    current = incident.pagerduty_state
    if incident.status == RESOLVED:
        # Anything but "never paged" may have reached PagerDuty (a trigger in flight included).
        return PAGE_RESOLVED if current not in (NOT_PAGED, PAGE_RESOLVED) else current
    if incident.page_held and not current.may_be_out:
        return current  # the automation fixes it first; it pages when it fails
    if incident.severity in policy.paging:
        return PageState(PageStatus.TRIGGERED, incident.severity)
    return current
