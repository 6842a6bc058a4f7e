"""The action pipeline: guardrails → precondition → execute → verify → record, for every action.

Every message on the `actions` queue only wakes the pipeline for one action: the record says what
to do next, so a resent, redelivered or late message can never make an action run twice. The
record moves by conditional writes; whoever loses a race re-reads and goes on from what won.

    planned ─ guardrails, precondition ─► awaiting approval ─► approved ─┐
        └──────────────────── auto ──────────────────────────────────────┴► running
    running: starting (claimed, execute called) → operating (check until done) → settling (the
    alert must stay clear for settle_minutes) → succeeded | failed ("not recovered")

Every write that is followed by a message to the pipeline itself (a wake: the run after an
approval, a request's expiry, the next check, the look after a lease or a lost answer, a page
still pending on a final record) names that message in the same write (`ActionRecord.wake`). A
worker that dies between the write and the send, or a send that fails, leaves a record whose wake
is past due: `sweep` (the `sweep_actions` timer) sends it again, under the same message id, once it
is `wake_grace_seconds` late.

A start the vendor turned away (a 429, a 503, a 409, a refused connection) is sent again after a
back-off. A start that may have reached the target although nobody knows what it did is never sent
again blind: a worker that died between claiming and recording what execute started, or a start
whose answer was lost (`OutcomeUnknown`: a reset or time-out after sending, a 500/502/504/408),
leaves "starting" with its claim. After `lost_answer_seconds` (the lease at least; long enough for
an accepted call to show) the next delivery takes over and asks the precondition about that very
start (`Context.started`): STARTED, it took effect or is under way (checked from there on); SKIP,
not needed any more (settled); PROCEED, no sign of it (claimed again and started again, unless the
incident resolved meanwhile: then settled); REFUSE, it cannot tell or it is no longer safe (failed,
and a person is paged).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.actions import guardrails
from shared.actions.kind import ActionFailed, ActionKind, Context, Precheck, Progress, Step, Target, Verdict
from shared.actions.registry import Registry
from shared.clock import Clock, iso, parse_iso
from shared.domain.actions import (
    AUTOMATION,
    ESCALATION_PENDING,
    WAKE,
    ActionRecord,
    ActionState,
    ActionStep,
    Actor,
    Wake,
    action_id,
)
from shared.domain.effects import Change, Effect, EffectKind
from shared.domain.incidents import RESOLVED, Incident, TimelineEntry
from shared.errors import (
    OutcomeUnknown,
    PoisonMessage,
    PreconditionFailed,
    Rejected,
    StartRefused,
    StoreContention,
    Transient,
)
from shared.outbox import Outbox
from shared.ports import (
    ActionStore,
    AutomationSwitch,
    EffectQueue,
    IncidentRepository,
    QueueMessage,
    VersionedAction,
)
from shared.retries import Backoff
from shared.triage.policy import ActionPlan, Policy
from shared.triage.targets import plan_label

log = logging.getLogger(__name__)

ACTIONS_QUEUE = "actions"
# The wake-up of a person's action (checks count from 1, settle checks from 100_000, retries from
# 200_000, looks after a lost answer from 300_000, the takeover look after a claim from 400_000).
TAKEOVER_SEQ = 400_000
BY_HAND_SEQ = 500_000
# The delivery that pages for a final record whose escalation is still pending (see _end).
ESCALATE_SEQ = 600_000


@dataclass(frozen=True)
class PipelineSettings:
    """How the pipeline paces itself."""

    automation_on: bool = True  # DR_AUTOMATION
    check_seconds: float = 15.0  # between checks of a long operation
    lease_seconds: float = 60.0  # a claimed action not heard of for this long is taken over
    # After a start whose outcome is unknown (its answer lost, or its worker gone): how long to wait
    # (the lease at least) before looking whether it took effect, so an accepted call has shown.
    lost_answer_seconds: float = 120.0
    # After a vendor said "later": doubling from retry_seconds up to retry_max_seconds, jittered; a
    # 429's Retry-After wins. A step kept "later" for longer than its action's time-out is given up.
    retry_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    # Unexpected errors in one action's steps before it is failed and dead-lettered by us, with the
    # reason on the incident and in Slack: one delivery short of the queue's own MaxDeliveryCount,
    # whose dead letter nobody would hear of.
    max_errors: int = 5
    # A wake not come this long after it was due, its record unchanged, was lost: the sweep sends it
    # again (then after twice as long, up to wake_resend_max_seconds, if that one is lost too).
    wake_grace_seconds: float = 120.0
    wake_resend_max_seconds: float = 3600.0


class ActionPipeline:
    """Plans, guards, runs and verifies actions; handles the `actions` queue."""

    def __init__(
        self,
        registry: Registry,
        actions: ActionStore,
        switch: AutomationSwitch,
        store: IncidentRepository,
        outbox: Outbox,
        queue: EffectQueue,
        policy: Policy,
        clock: Clock,
        settings: PipelineSettings = PipelineSettings(),
    ) -> None:
        self.registry = registry
        self.actions = actions
        self.switch = switch
        self.store = store
        self.outbox = outbox
        self.queue = queue
        self.policy = policy
        self.clock = clock
        self.settings = settings

    # ---- entry points -------------------------------------------------------------------

    def handle(self, body: bytes) -> None:
        """One message of the `actions` queue: a planned action (an effect) or a step of one."""
        data = _parse(body)
        if "action_id" in data:
            try:
                step = ActionStep.from_dict(data)
            except (KeyError, TypeError, ValueError, OverflowError) as e:
                raise PoisonMessage(f"not an action step: {e}") from e
            self.advance(step.action_id)
            return
        try:
            effect = Effect.from_dict(data)
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise PoisonMessage(f"not an action message: {e}") from e
        if effect.kind is not EffectKind.ACT:
            raise PoisonMessage(f"a {effect.kind} effect on the actions queue")
        record = self.plan(effect)
        if record is not None:
            self.advance(record.id)

    def plan(self, effect: Effect) -> ActionRecord | None:
        """The action record of an `act` effect (created planned, or found from an earlier delivery)."""
        found = self.store.get(effect.incident_id)
        if found is None:
            raise PoisonMessage(f"act for unknown incident {effect.incident_id}")
        incident = found.incident
        params = _params(effect.params)
        record = ActionRecord(
            id=action_id(incident.id, effect.event, effect.target, effect.params),
            incident_id=incident.id,
            action=effect.event,
            target=effect.target,
            mode=effect.mode,
            state=ActionState.PLANNED,
            planned_by=Actor(AUTOMATION, effect.rule or "?"),
            planned_at=iso(self.clock()),
            updated_at=iso(self.clock()),
            rule=effect.rule,
            tenant=incident.tenant.lower(),
            region=str(params.get("region") or self.policy.reach(effect.target).get("region") or ""),
            params=params,
            result=effect.detail,  # why the target could not be resolved, if it could not
        )
        created = self.request(record)
        return created.record if created else self._get(record.id).record

    def request(self, record: ActionRecord) -> VersionedAction | None:
        """Store a new planned action (an automatic one, or a person's); None when it exists already."""
        target = record.target or "(no target)"
        line = f"{record.action} on {target}: planned ({record.mode}) by {record.planned_by}"
        created = self.actions.create_action(record, [TimelineEntry(record.planned_at, "action", line)])
        if created is not None:
            self._tell(created.record, line)
        return created

    def request_by_hand(self, record: ActionRecord) -> ActionRecord:
        """A person's confirmed action: stored planned (or found, confirmed before) and woken once."""
        # Its own sequence: the "run" an approval sends later must not be dropped as a duplicate.
        created = self.request(self._waking(record, "run", BY_HAND_SEQ, after=0))
        current = created.record if created else self._get(record.id).record
        if current.state is ActionState.PLANNED:
            self._send(current, current.wake or self._due(current, "run", BY_HAND_SEQ, after=0))
        return current

    def guardrail(self, record: ActionRecord) -> str | None:
        """Which guardrail would refuse the action now, saying why; None when none would."""
        return self._guardrail(record)

    def advance(self, action_id_: str) -> None:
        """Do whatever the action's record says comes next."""
        for _ in range(20):
            current = self._get(action_id_)
            try:
                self._advance(current)
                return
            except PreconditionFailed:
                continue  # another worker moved it: go on from what it wrote
        raise Transient(f"action {action_id_} kept changing under us")

    def decide(
        self, action_id_: str, approve: bool, actor: Actor, *, acknowledged: bool = False
    ) -> ActionRecord:
        """A person approves or denies an action awaiting approval; Rejected when it is not awaiting.

        `acknowledged`: the approval is an acknowledgement's (`approve_on_ack`), not a decision on it.
        """
        current = self._get(action_id_)
        record = current.record
        now = self.clock()
        if record.state is ActionState.AWAITING_APPROVAL and _due(record.expires_at, now):
            # Escalated as when the expiry message finds it: the message will find it final and say
            # nothing (or page, if this escalation could not: it is pending on the record).
            why = f"{record.action} on {record.target}: approval expired"
            automation = Actor(AUTOMATION, record.rule)
            self._end(
                current, ActionState.EXPIRED, automation, "approval request expired", why, deferred=True
            )
            raise Rejected(f"action {record.id} expired at {record.expires_at} before it was decided")
        resolved_at = self._resolved_at(record)
        if approve and record.state is ActionState.AWAITING_APPROVAL and resolved_at:
            # What the request asked for was for an open incident: approving it now would act on a
            # target that recovered without it.
            line = f"the incident resolved at {resolved_at} before it was decided"
            self._move(current, ActionState.EXPIRED, Actor(AUTOMATION, record.rule), line)
            raise Rejected(f"action {record.id} expired: {line}")
        if (
            approve
            and record.state is ActionState.AWAITING_APPROVAL
            and record.planned_by.is_person(actor.name)
        ):
            # Four eyes at every door (Slack, the API, the CLI): who asked for it does not approve it.
            raise Rejected(
                f"action {record.id} was asked for by {record.planned_by}: someone else must approve it"
            )
        if approve:
            # An approval is for now, on what the request's check found: a start that cannot go ahead
            # within the approval time (a vendor answering "later") lapses, not act on it hours on.
            start_by = iso(now + timedelta(minutes=self._minutes(record, "approval_minutes")))
            decision = {"start_by": start_by}
            if not acknowledged:  # a person who decided on it while paused means it: the pause lets it be
                decision["approved_at"] = iso(now)
            approved = self._waking(
                record.evolve(continuation=dict(record.continuation) | decision), "run", 0
            )
            moved = self._move(
                VersionedAction(approved, current.version),
                ActionState.APPROVED,
                actor,
                f"approved by {actor}",
            )
            try:
                self._wake(moved.record)
            except (Transient, StoreContention) as e:
                # The approval stands (asked again, it would be "approved" already): its run is on
                # the record, and the sweep sends it.
                log.warning("action %s approved; its run was not sent, the sweep sends it: %s", record.id, e)
        else:
            why = f"{record.action} on {record.target} was denied by {actor}"
            moved = self._end(current, ActionState.DENIED, actor, f"denied by {actor}", why, deferred=True)
        return moved.record

    def approve_on_ack(self, incident_id: str, who: str, via: str = "pagerduty") -> list[ActionRecord]:
        """On-call acknowledged (in PagerDuty, or from Slack): approve what waits for it under
        `approve_on_ack = true`, except what that person asked for (four eyes)."""
        approved = []
        for record in self.actions.list_actions(ActionState.AWAITING_APPROVAL.value, incident_id, 100):
            plan = self._rule_plan(record.rule, record.action)
            if record.planned_by.is_person(who):
                log.info("acknowledgement by %s does not approve %s: they asked for it", who, record.id)
            elif (
                plan is not None
                and plan.approve_on_ack
                and (why := guardrails.paused(record, self.switch.pauses()))
            ):
                # One acknowledges to stop the ringing: while paused that is no decision to act. It still
                # waits, for a person to approve by hand, or to expire.
                current = self._get(record.id)
                try:
                    self._noted(current, current.record, f"not approved by {who}'s acknowledgement: {why}")
                except PreconditionFailed:  # decided meanwhile: its own line says how
                    log.info("acknowledgement did not approve %s (paused); it moved meanwhile", record.id)
            elif plan is not None and plan.approve_on_ack:
                try:
                    approved.append(self.decide(record.id, True, Actor(who, via), acknowledged=True))
                except Rejected as e:  # expired, or decided meanwhile: said on its timeline already
                    log.info("acknowledgement did not approve %s: %s", record.id, e)
        return approved

    def sweep(self, limit: int = 200) -> int:
        """Send again each wake lost between its record's write and its send; how many were sent.

        Every write that is followed by a message says which (its step, its sequence, when it is due)
        in the record (`ActionRecord.wake`). One not come `wake_grace_seconds` past due, the record
        unchanged since, was lost. It is sent again with the same message id, so the queue drops it
        if the first did go out and is still remembered; any other extra delivery only makes the
        pipeline read the record again, which says what comes next. Marked first, by a conditional
        write: one that lost a race was not lost, and the next resend of one waits twice as long.
        """
        now = self.clock()
        grace = timedelta(seconds=self.settings.wake_grace_seconds)
        resent = 0
        for found in self.actions.actions_due(iso(now - grace), limit):
            record = found.record
            wake = record.wake or self._due(
                record, "check", ESCALATE_SEQ, at=parse_iso(record.wake_at) or now
            )
            due = parse_iso(wake.at) or now
            wait = min(
                self.settings.wake_grace_seconds * 2**wake.resent, self.settings.wake_resend_max_seconds
            )
            if now - due < timedelta(seconds=wait):
                continue  # sent again lately: that one may still come
            again = Wake(wake.step, wake.seq, iso(now), wake.resent + 1)
            what = f"its {wake.step} message (seq {wake.seq}), due at {wake.at}"
            line = _line(record, f"{what}, has not come: sent by the sweep (it is {record.state})")
            marked = record.evolve(continuation=dict(record.continuation) | {WAKE: again.to_dict()})
            try:
                saved = self.actions.save_action(
                    marked, found.version, [TimelineEntry(iso(now), "action", line)]
                )
            except (PreconditionFailed, StoreContention) as e:
                log.info("action %s: not sent again, it moved meanwhile or is busy: %s", record.id, e)
                continue
            log.warning("action %s (%s): %s, has not come: sending it again", record.id, record.state, what)
            self._send(saved.record, again)
            resent += 1
        return resent

    # ---- the state machine ---------------------------------------------------------------

    def _advance(self, current: VersionedAction) -> None:
        record = current.record
        state = record.state
        if state.final and ESCALATION_PENDING in record.continuation:
            self._escalate_pending(current)  # the delivery that ended it failed before it could page
        elif state.final:
            log.info("action %s is %s already: nothing to do", record.id, state)
        elif state is ActionState.PLANNED:
            self._planned(current)
        elif state is ActionState.AWAITING_APPROVAL:
            if _due(record.expires_at, self.clock()):
                line = f"no decision within the approval time (it expired at {record.expires_at})"
                why = f"{record.action} on {record.target}: approval expired"
                self._end(current, ActionState.EXPIRED, Actor(AUTOMATION, record.rule), line, why)
        elif state is ActionState.APPROVED:
            self._guarded_start(current)
        else:
            self._running(current)

    def _planned(self, current: VersionedAction) -> None:
        record = current.record
        automation = Actor(AUTOMATION, record.rule or "?")
        kind = self.registry.get(record.action)
        if kind is None:
            self._refuse(current, f"no action named {record.action!r} is registered")
            return
        if not record.target:
            self._refuse(current, f"no target: {record.result or 'the rule gave none'}")
            return
        if record.planned_by.name != AUTOMATION:
            # A person's request is for now, as an approval is (the same time to start it in).
            minutes = self._minutes(record, "approval_minutes")
            asked = parse_iso(record.planned_at)
            start_by = iso(asked + timedelta(minutes=minutes)) if asked else ""
            if start_by and self._lapsed(current, start_by, f"asked for by {record.planned_by}"):
                return
        if record.mode in ("auto", "approve") and self._unneeded(current):
            return
        target = self._target(record)
        if record.mode == "suggest":
            line = f"suggested: run `{kind.command(target)}`"
            self._move(current, ActionState.SKIPPED, automation, line)
            return
        if record.mode in ("auto", "approve") and (why := self._guardrail(record)):
            self._refuse(current, why)
            return
        check = self._precondition(current, kind, target, automation)
        if check is None:
            return
        if record.mode == "dry-run":
            line = (
                f"dry-run: would {kind.describe(target)} ({check.detail}); by hand: `{kind.command(target)}`"
            )
            self._move(current, ActionState.SKIPPED, automation, line)
            return
        if record.mode == "approve":
            self._ask(current, kind, target, check.detail, dict(check.found))
            return
        self._start(current, kind, target, dict(check.found), automation)

    def _ask(
        self,
        current: VersionedAction,
        kind: ActionKind,
        target: Target,
        found_detail: str,
        found: dict[str, Any],
    ) -> None:
        record = current.record
        plan = self._rule_plan(record.rule, record.action)
        expires = self.clock() + timedelta(minutes=self._minutes(record, "approval_minutes"))
        request = f"{kind.describe(target)}. Checked: {found_detail}. Expires {iso(expires)}."
        if plan and plan.approve_on_ack:
            request += " Acknowledging the PagerDuty incident approves it."
        waiting = record.evolve(request=request, expires_at=iso(expires), continuation={"found": found})
        waiting = self._waking(waiting, "expire", 0, at=expires + timedelta(seconds=1))
        moved = self._move(
            VersionedAction(waiting, current.version),
            ActionState.AWAITING_APPROVAL,
            Actor(AUTOMATION, record.rule or "?"),
            f"approval needed: {request} Approve: `dr approve {record.id}`",
        )
        self._wake(moved.record)

    def _guarded_start(self, current: VersionedAction) -> None:
        """An approved action: the guardrails and the precondition again (things moved), then start."""
        record = current.record
        start_by = record.continuation.get("start_by")
        if isinstance(start_by, str) and self._lapsed(current, start_by, f"approved by {record.approved_by}"):
            return
        kind = self.registry.get(record.action)
        if kind is None:
            self._refuse(current, f"no action named {record.action!r} is registered")
            return
        if self._unneeded(current):
            return
        if why := self._guardrail(record):
            self._refuse(current, why)
            return
        target = self._target(record)
        actor = record.approved_by or Actor(AUTOMATION, record.rule)
        check = self._precondition(current, kind, target, actor)
        if check is not None:
            self._start(current, kind, target, dict(check.found), actor)

    def _resolved_at(self, record: ActionRecord) -> str:
        """When the action's incident resolved; "" while it is open."""
        found = self.store.get(record.incident_id)
        if found is None or found.incident.is_open:
            return ""
        return found.incident.resolved_at or "an unknown time"

    def _unneeded(self, current: VersionedAction) -> bool:
        """Refuse an action whose incident resolved before it started; False while the incident is open."""
        resolved_at = self._resolved_at(current.record)
        if resolved_at:
            why = f"not started: the incident resolved at {resolved_at} before it could start"
            self._refuse(current, why)
        return bool(resolved_at)

    def _lapsed(self, current: VersionedAction, start_by: str, decided: str) -> bool:
        """Refuse and escalate a person's decision that could not start by `start_by`; False if in time."""
        if not _due(start_by, self.clock()):
            return False
        record = current.record
        later = record.continuation.get("later") or "its checks did not finish"
        lapsed = (
            f"lapsed: {decided}, but it could not start by {start_by} (last answer: {later}); ask for it"
            " again if it is still needed"
        )
        why = f"{record.action} on {record.target}: {lapsed}"
        self._end(current, ActionState.REFUSED, Actor(AUTOMATION, record.rule or "?"), lapsed, why)
        return True

    def _precondition(
        self, current: VersionedAction, kind: ActionKind, target: Target, actor: Actor
    ) -> Precheck | None:
        """The check before acting; None when it refused or skipped (and said so) or must come again."""
        record = current.record
        check: Precheck | None = self._step(current, lambda: kind.precondition(target, self._context(record)))
        if check is None:
            return None
        if check.verdict is Verdict.REFUSE:
            self._refuse(current, f"precondition: {check.detail}")
            return None
        if check.verdict in (Verdict.SKIP, Verdict.STARTED):  # STARTED only comes with Context.started
            self._move(current, ActionState.SKIPPED, actor, f"not needed: {check.detail}")
            return None
        return check

    def _start(
        self, current: VersionedAction, kind: ActionKind, target: Target, found: dict[str, Any], actor: Actor
    ) -> None:
        """Claim the record (one conditional write), then make the one call that changes the target."""
        now = iso(self.clock())
        record = current.record
        claim = record.evolve(continuation={"phase": "starting", "claimed_at": now, "found": found})
        moved, line = claim.moved(ActionState.RUNNING, actor, now, "started")
        moved = self._claimed(moved)
        limits = self.policy.guardrails

        def admit(started: Sequence[ActionRecord]) -> str | None:
            # The pauses and caps were read before the precondition; a pause set or an action started
            # elsewhere since must still stop this one, so they are read again in the starting write.
            why = guardrails.paused_for(moved, self.switch.pauses(), guardrails.explicit_approval(record))
            return why or (guardrails.over_cap(moved, started, limits) if moved.automatic else None)

        try:
            claimed = self.actions.start_action(
                moved, current.version, [line], iso(self.clock() - timedelta(hours=1)), admit
            )
        except StartRefused as e:
            self._refuse(current, str(e))
            return
        self._tell(claimed.record, line.text)
        self._execute(claimed, kind, target, found)

    def _execute(
        self, claimed: VersionedAction, kind: ActionKind, target: Target, found: dict[str, Any]
    ) -> None:
        record = claimed.record
        try:
            step = kind.execute(target, self._context(record), found)
        except OutcomeUnknown as e:
            self._lost_answer(claimed, e)
            return
        except Transient as e:
            # The vendor did not take the call (429, 503, 409, unreachable): try the start again.
            later = self._later(record, e)
            if later is None:
                self._finish(claimed, ActionState.FAILED, f"{self._gave_up_waiting(record, e)} (starting)")
                return
            tries = int(later["transients"])
            retry = self._waking(
                record.evolve(continuation=later | {"start_failed": str(e)}),
                "run",
                tries,
                after=self._backoff(tries, e),
            )
            self._wake(self.actions.save_action(retry, claimed.version, []).record)
            return
        except ActionFailed as e:
            self._finish(claimed, ActionState.FAILED, f"refused by the target: {e}")
            return
        except Exception as e:  # untranslated: counted as a step's are, or it would loop for ever
            if self._gave_up(claimed, e):
                return
            raise
        self._operated(claimed, step, first=True)

    def _lost_answer(self, claimed: VersionedAction, error: OutcomeUnknown) -> None:
        """The start may have reached the target and its answer was lost: look before doing anything.

        The record stays "starting" with its claim, as a worker's death leaves it, and a check comes
        after `lost_answer_seconds`: `_take_over` then asks the precondition about this start. It
        counts as a "later" from the vendor, so lost answers without end give up at the time-out.
        """
        record = claimed.record
        later = self._later(record, error)
        if later is None:
            tries = _count(record, "transients") - 1
            since = record.continuation.get("later_since", "?")
            why = (
                f"gave up starting it: answers lost or refused since {since} ({tries} tries), the last "
                f"one lost, so it may have taken effect: look at {record.target} ({error})"
            )
            self._finish(claimed, ActionState.FAILED, why)
            return
        wait = max(self.settings.lease_seconds, self.settings.lost_answer_seconds)
        unknown = self._waking(
            record.evolve(continuation=later | {"outcome_unknown": str(error)[:300]}),
            "check",
            int(later["transients"]) + 300_000,
            after=wait,
        )
        line = (
            f"the answer to the start was lost ({str(error)[:200]}); looking again in {wait:g} s "
            "before doing anything"
        )
        self._wake(self._noted(claimed, unknown, line).record)

    def _claimed(self, claim: ActionRecord) -> ActionRecord:
        """A claim with the wake a takeover looks by, after the lease: nothing sends it while its
        worker is inside execute (the delivery it is in comes again if that worker dies), so the
        sweep sends it only if that delivery is lost too (dead-lettered) and nothing else moved it.
        One per attempt and per start again, so a later claim's is not dropped as an earlier one's."""
        tries = claim.continuation.get("transients", 0)
        seq = TAKEOVER_SEQ + (tries if isinstance(tries, int) else 0)
        return self._waking(claim, "check", seq, after=self.settings.lease_seconds)

    def _restart(
        self, current: VersionedAction, kind: ActionKind, target: Target, found: dict[str, Any], line: str
    ) -> None:
        """Claim a started action again (a retry, or a takeover), then make the call again.

        The claim is one conditional write, as the first start's is: it renews the lease, so a
        redelivery meanwhile waits for it instead of calling too, and it reads the pauses again, so
        nothing starts again once `dr pause` has answered.
        """
        record = current.record
        now = iso(self.clock())
        kept = {k: v for k, v in record.continuation.items() if k in _KEPT_ON_RESTART}
        claim = record.evolve(continuation=kept | {"phase": "starting", "claimed_at": now, "found": found})
        claim = self._claimed(claim)
        lines = [TimelineEntry(now, "action", _line(claim, line))] if line else []

        def admit(_: Sequence[ActionRecord]) -> str | None:
            # Not a new start: the hourly caps counted it when it first started.
            if claim.automatic and not self.settings.automation_on:
                return "kill switch: DR_AUTOMATION=off, so nothing runs by itself"
            return guardrails.paused(claim, self.switch.pauses())  # every start again, approved or not

        try:
            claimed = self.actions.start_action(
                claim, current.version, lines, iso(self.clock() - timedelta(hours=1)), admit
            )
        except StartRefused as e:
            self._finish(current, ActionState.FAILED, f"stopped before starting it again: {e}")
            return
        if lines:
            self._tell(claimed.record, lines[0].text)
        self._execute(claimed, kind, target, found)

    def _running(self, current: VersionedAction) -> None:
        record = current.record
        phase = record.continuation.get("phase")
        kind = self.registry.get(record.action)
        if kind is None:
            self._finish(
                current, ActionState.FAILED, f"no action named {record.action!r} is registered any more"
            )
            return
        target = self._target(record)
        if phase == "starting":
            self._take_over(current, kind, target)
        elif phase == "operating":
            started = parse_iso(record.started_at) or self.clock()
            if self.clock() - started > timedelta(minutes=kind.timeout_minutes):
                self._finish(
                    current, ActionState.FAILED, f"timed out: not done after {kind.timeout_minutes} min"
                )
                return
            step = self._step(current, lambda: kind.check(target, self._context(record), record.continuation))
            if step is not None:
                self._operated(current, step, first=False)
        else:
            self._settle(current)

    def _take_over(self, current: VersionedAction, kind: ActionKind, target: Target) -> None:
        record = current.record
        found = dict(record.continuation.get("found") or {})
        if record.continuation.get("start_failed"):  # the vendor did not take the call: no one is inside
            self._restart(current, kind, target, found, "")
            return
        claimed_at = parse_iso(str(record.continuation.get("claimed_at", ""))) or self.clock()
        quiet = (self.clock() - claimed_at).total_seconds()
        lost = bool(record.continuation.get("outcome_unknown"))
        # A worker that died inside execute leaves the same doubt as a lost answer (its call may have
        # gone out), and the record may not say which it was (the write that says "lost" can fail
        # too): both wait lost_answer_seconds, for an accepted call to show, before anyone looks.
        hold = max(self.settings.lease_seconds, self.settings.lost_answer_seconds)
        if quiet < hold:
            # Another worker may be inside execute right now (or a lost answer's call may not show
            # yet): look again when the hold has run out. Not written on the record: this delivery
            # writes nothing, so if this send is lost the queue delivers it again.
            look = self._due(record, "check", record.attempts * 1000 + int(quiet), after=hold - quiet)
            self._send(record, look)
            return
        # The precondition is asked about this very start: it may find its change (STARTED).
        context = self._context(record, started=found)
        check = self._step(current, lambda: kind.precondition(target, context))
        if check is None:
            return
        now = iso(self.clock())
        before = (
            "looked again after the start's answer was lost"
            if lost
            else "took over from a worker that stopped"
        )
        if check.verdict is Verdict.STARTED:
            said = f"{before}: it is under way or done ({check.detail}); checking it"
            self._operated(current, Step(Progress.PENDING, check.detail, dict(check.found), 0), True, said)
            return
        if check.verdict is Verdict.SKIP:
            line = f"{before}: its change took effect ({check.detail})"
            self._settle(self._noted(current, record.evolve(continuation=self._settling(record, now)), line))
            return
        if check.verdict is Verdict.REFUSE:
            self._finish(current, ActionState.FAILED, f"{before}; precondition: {check.detail}")
            return
        if resolved_at := self._resolved_at(record):
            # The alert cleared while nobody knew whether the start went out: most likely it did.
            line = f"{before}: the incident resolved at {resolved_at} meanwhile; not started again"
            self._settle(self._noted(current, record.evolve(continuation=self._settling(record, now)), line))
            return
        # PROCEED: the precondition saw no sign of that start, after lost_answer_seconds in which an
        # accepted call shows; and every execute re-reads first.
        line = (
            f"{before}: no sign that it took effect ({check.detail}); starting again"
            if lost
            else "took over from a worker that stopped while starting it; still needed: starting again"
        )
        self._restart(
            VersionedAction(record.evolve(attempts=record.attempts + 1), current.version),
            kind,
            target,
            found,
            line,
        )

    def _operated(self, current: VersionedAction, step: Step, first: bool, said: str = "") -> None:
        record = current.record
        now = iso(self.clock())
        if step.progress is Progress.FAILED:
            self._finish(current, ActionState.FAILED, step.detail)
            return
        if step.progress is Progress.DONE:
            settled = record.evolve(continuation=self._settling(record, now) | {"result": step.detail})
            self._settle(self._noted(current, settled, f"done and verified: {step.detail}"))
            return
        checks = _count(record, "checks")
        found = record.continuation.get("found", {})
        # A check may answer with only what changed: keep what execute left for the checks after it.
        kept = {} if first else dict(record.continuation)
        continuation = {**kept, **step.continuation, "phase": "operating", "found": found, "checks": checks}
        operating = self._waking(
            record.evolve(continuation=continuation), "check", checks, after=self._interval(step)
        )
        if first:  # the progress is said once; each later check only saves what it found
            saved = self._noted(current, operating, said or f"in progress: {step.detail}")
        else:
            saved = self.actions.save_action(operating, current.version, [])
        self._wake(saved.record)

    def _noted(self, current: VersionedAction, updated: ActionRecord, text: str) -> VersionedAction:
        """Save a change that is not a transition, with its line on the timeline, the card and PagerDuty."""
        line = _line(updated, text)
        saved = self.actions.save_action(
            updated, current.version, [TimelineEntry(iso(self.clock()), "action", line)]
        )
        self._tell(saved.record, line)
        return saved

    def _settling(self, record: ActionRecord, now: str) -> dict[str, Any]:
        until = iso(self.clock() + timedelta(minutes=self._minutes(record, "settle_minutes")))
        return {
            "phase": "settling",
            "done_at": now,
            "settle_until": until,
            "found": record.continuation.get("found", {}),
        }

    def _settle(self, current: VersionedAction) -> None:
        """Verified success: the alert's condition stays clear for settle_minutes after the action."""
        record = current.record
        done_at = str(record.continuation.get("done_at", ""))
        until = str(record.continuation.get("settle_until", ""))
        found = self.store.get(record.incident_id)
        incident = found.incident if found else None
        done = parse_iso(done_at)
        resolved = parse_iso(incident.resolved_at or "") if incident and incident.status == RESOLVED else None
        # Only a resolution after the action was done says the action fixed it; one before (while it
        # ran) says nothing about it, so the settle window decides as for any other.
        if incident is not None and resolved and done and resolved > done:
            self._finish(
                current, ActionState.SUCCEEDED, f"recovered: the incident resolved at {incident.resolved_at}"
            )
            return
        last_at = self._last_signal(record, incident) if incident else ""
        last_signal = parse_iso(last_at) if last_at else None
        if incident is not None and last_signal and done and last_signal > done:
            why = f"not recovered: the alert fired again at {last_at} after the action"
            self._finish(current, ActionState.FAILED, why)
            return
        if _due(until, self.clock()):
            minutes = self._minutes(record, "settle_minutes")
            self._finish(
                current, ActionState.SUCCEEDED, f"recovered: no new signal for {minutes} min after the action"
            )
            return
        remaining = ((parse_iso(until) or self.clock()) - self.clock()).total_seconds()
        checks = _count(record, "settle_checks")
        settling = self._waking(
            record.evolve(continuation=dict(record.continuation) | {"settle_checks": checks}),
            "check",
            checks + 100_000,
            after=min(remaining + 0.01, self.settings.check_seconds),
        )
        self._wake(self.actions.save_action(settling, current.version, []).record)

    def _last_signal(self, record: ActionRecord, incident: Incident) -> str:
        """When the part the action is about last had a signal: its own, when the incident tracks it
        (another Deployment's alert does not undo this one's rollback), else the incident's newest."""
        plan = self._rule_plan(record.rule, record.action)
        label = plan_label(plan, record.params) if plan else ""
        return incident.part_signals.get(label, incident.last_signal_at)

    def _minutes(self, record: ActionRecord, name: str) -> int:
        """approval_, settle_ or cooldown_minutes: the rule's action's own, else the guardrails' default."""
        plan = self._rule_plan(record.rule, record.action)
        return int(getattr(plan, name) if plan else getattr(self.policy.guardrails, name))

    # ---- guardrails, steps and records ----------------------------------------------------

    def _guardrail(self, record: ActionRecord) -> str | None:
        limits = self.policy.guardrails
        cooldown = self._minutes(record, "cooldown_minutes")
        now = self.clock()
        window = max(cooldown, limits.breaker_window_minutes, 60 * 24)
        subject = self._subject(record)
        on_target = self.actions.actions_on(record.target, iso(now - timedelta(minutes=window)))
        history = guardrails.History(
            pauses=self.switch.pauses(),
            on_target=[r for r in on_target if guardrails.overlap(self._subject(r), subject)],
            started_last_hour=self.actions.started_since(iso(now - timedelta(hours=1))),
            automation_setting_on=self.settings.automation_on,
            where=self._where(record),
        )
        return guardrails.refusal(record, history, limits, cooldown, now)

    def _subject(self, record: ActionRecord) -> str:
        """What of its target the action changes: the target, narrowed by the params that say so."""
        parts = [value.strip("/").lower() for _, value in self._parts(record)]
        return "/".join([record.target.lower(), *parts])

    def _where(self, record: ActionRecord) -> str:
        """The subject as a refusal names it: "<cluster> (deployment shop/cart)"."""
        parts = ", ".join(f"{name} {value}" for name, value in self._parts(record))
        return f"{record.target} ({parts})" if parts else record.target

    def _parts(self, record: ActionRecord) -> list[tuple[str, str]]:
        kind = self.registry.get(record.action)
        narrowing = [name for name, param in kind.params.items() if param.narrows] if kind else []
        return [(name, str(record.params[name])) for name in narrowing if record.params.get(name)]

    def _step(self, current: VersionedAction, call: Callable[[], Any]) -> Any:
        """Run a read or check step; a Transient schedules another try, an error counts toward giving up."""
        record = current.record
        try:
            return call()
        except Transient as e:
            later = self._later(record, e)
            if later is None:
                state = ActionState.FAILED if record.state is ActionState.RUNNING else ActionState.REFUSED
                self._finish(current, state, self._gave_up_waiting(record, e))
                return None
            tries = int(later["transients"])
            retry = self._waking(
                record.evolve(continuation=later), "check", tries + 200_000, after=self._backoff(tries, e)
            )
            self._wake(self.actions.save_action(retry, current.version, []).record)
            return None
        except ActionFailed as e:
            running = record.state is ActionState.RUNNING
            self._finish(current, ActionState.FAILED if running else ActionState.REFUSED, f"cannot act: {e}")
            return None
        except Exception as e:  # a bug or an error no adapter translated: count it, let the queue redeliver
            if self._gave_up(current, e):
                return None
            raise

    def _later(self, record: ActionRecord, error: Transient) -> dict[str, Any] | None:
        """The continuation counting one more "later" from the vendor; None once the vendor has said
        it for longer than the action's time-out (a count would give up after minutes of fast 503s,
        or hold on for hours of long Retry-Afters)."""
        now = self.clock()
        # Counted from the first "later" of this step (a blip while planning says nothing of the checks).
        step = f"{record.state}:{record.continuation.get('phase', '')}"
        same = record.continuation.get("later_in") == step
        since = str(record.continuation.get("later_since") or iso(now)) if same else iso(now)
        began = parse_iso(since) or now
        kind = self.registry.get(record.action)
        limit = timedelta(minutes=kind.timeout_minutes if kind else 30)
        # A person's decision (an approval, their own request) lapses within approval_minutes instead.
        decided = record.state is ActionState.APPROVED or (
            record.state is ActionState.PLANNED and record.planned_by.name != AUTOMATION
        )
        if now - began > limit and not decided:
            return None
        return dict(record.continuation) | {
            "transients": _count(record, "transients"),
            "later": str(error)[:300],
            "later_since": since,
            "later_in": step,
        }

    def _gave_up_waiting(self, record: ActionRecord, error: Transient) -> str:
        tries = _count(record, "transients") - 1
        since = record.continuation.get("later_since", "?")
        return f'gave up: the vendor kept answering "later" since {since} ({tries} tries): {error}'

    def _backoff(self, tries: int, error: Transient) -> float:
        """Seconds before the next try: doubling and jittered, never sooner than a Retry-After asked."""
        backoff = Backoff(self.settings.retry_seconds, self.settings.retry_max_seconds)
        return backoff.delay(tries, error.retry_after, error.held)

    def _gave_up(self, current: VersionedAction, error: Exception) -> bool:
        """Count an untranslated error on the record; True when that was one too many (failed, and said)."""
        record = current.record
        errors = _count(record, "errors")
        reason = f"{type(error).__name__}: {error}"
        if errors >= self.settings.max_errors:
            state = ActionState.FAILED if record.state is ActionState.RUNNING else ActionState.REFUSED
            self._finish(current, state, f"gave up after {errors} errors: {reason}")
            self._dead_letter(record, reason)
            return True
        self.actions.save_action(
            record.evolve(continuation=dict(record.continuation) | {"errors": errors}), current.version, []
        )
        return False

    def _refuse(self, current: VersionedAction, why: str) -> None:
        record = current.record
        # A person's action is refused in their name: the audit says whose request the guardrail stopped.
        by = (
            record.planned_by
            if record.planned_by.name != AUTOMATION
            else Actor(AUTOMATION, record.rule or "?")
        )
        escalate = guardrails.breaker_tripped(why) or record.automatic
        pending = f"{record.action} on {record.target} refused: {why}" if escalate else ""
        self._end(current, ActionState.REFUSED, by, why, pending)

    def _finish(self, current: VersionedAction, state: ActionState, detail: str) -> None:
        record = current.record
        actor = Actor(AUTOMATION, record.rule or "?")
        if current.record.state is not ActionState.RUNNING and state in (
            ActionState.FAILED,
            ActionState.SUCCEEDED,
        ):
            state = ActionState.REFUSED
        pending = (
            f"{record.action} on {record.target}: {detail}" if state is not ActionState.SUCCEEDED else ""
        )
        self._end(current, state, actor, detail, pending)

    def _end(
        self,
        current: VersionedAction,
        to: ActionState,
        actor: Actor,
        detail: str,
        escalate: str,
        *,
        deferred: bool = False,
    ) -> VersionedAction:
        """A final transition, and its escalation (`escalate`, the why; "" for none) made sure of.

        The escalation is a second write, on the incident: the first marks it pending, with the wake
        that pages for it, so that a failure in between (a store locked past its timeout, a crash)
        leaves a record that the next delivery, or the sweep, escalates, instead of a final record
        nobody is paged for. `deferred`: a person's request (a denial) that must not fail on it: the
        transition stands, and the page is left to the sweep."""
        marked = current.record
        if escalate:
            pending = dict(marked.continuation) | {ESCALATION_PENDING: escalate}
            marked = self._waking(marked.evolve(continuation=pending), "check", ESCALATE_SEQ, after=0)
        moved = self._move(VersionedAction(marked, current.version), to, actor, detail)
        if escalate:
            try:
                self._escalate_pending(moved)
            except StoreContention as e:
                if not deferred:
                    raise  # the delivery comes again, and pages
                log.warning(
                    "action %s is %s; its escalation is pending, for the sweep: %s", moved.record.id, to, e
                )
        return moved

    def _escalate_pending(self, current: VersionedAction) -> None:
        """Escalate what the record marks pending, then clear the mark and its wake (a lost clear
        escalates twice: PagerDuty keeps one incident per key, and the timeline shows two lines)."""
        record = current.record
        why = str(record.continuation.get(ESCALATION_PENDING, ""))
        if not why:
            return
        self._escalate(record, why)
        cleared = {k: v for k, v in record.continuation.items() if k not in (ESCALATION_PENDING, WAKE)}
        try:
            self.actions.save_action(record.evolve(continuation=cleared), current.version, [])
        except (PreconditionFailed, StoreContention) as e:
            log.warning("action %s: escalated, but its pending mark stays: %s", record.id, e)

    def _move(self, current: VersionedAction, to: ActionState, actor: Actor, detail: str) -> VersionedAction:
        now = iso(self.clock())
        moved, line = current.record.moved(to, actor, now, detail)
        saved = self.actions.save_action(moved, current.version, [line])
        try:
            self._tell(saved.record, line.text)
        except StoreContention as e:
            # The transition stands, and what makes it go on (the caller's wake: run, expire, check)
            # must still be sent; only this piece of news is lost (the record and timeline keep it).
            log.warning("action %s is %s; the card and PagerDuty were not told: %s", saved.record.id, to, e)
        return saved

    def _tell(self, record: ActionRecord, line: str) -> None:
        """The card (each action and its state), its thread, and PagerDuty (a change event and a note)."""
        now = iso(self.clock())
        state = f"{record.action} on {_short(record.target)}: {record.state} ({record.mode})"
        if record.result:
            state += f" — {record.result[:200]}"

        def told(incident: Incident) -> Change:
            states = dict(incident.action_states) | {record.id: state}
            severity = incident.severity.label
            # "approval": the card's thread gets the request with Approve / Deny buttons.
            asking = "approval" if record.state is ActionState.AWAITING_APPROVAL else "action"
            effects = [
                Effect(EffectKind.NOTIFY, incident.id, asking, severity, now, target=record.id, detail=line),
                Effect(EffectKind.PAGE, incident.id, "news", severity, now, target=record.id, detail=line),
            ]
            return Change(incident.evolve(action_states=states, updated_at=now), (), effects)

        self.outbox.update(record.incident_id, told)

    def _escalate(self, record: ActionRecord, why: str) -> None:
        """The automation could not fix it: page (raising the severity if it would not page)."""
        now = iso(self.clock())
        policy = self.policy

        def escalated(incident: Incident) -> Change | None:
            if not incident.is_open:
                return None
            severity = incident.severity
            if severity not in policy.paging:
                severity = severity.raised()
            updated = incident.evolve(page_held=False, severity=severity, updated_at=now)
            line = f"Escalated: {why}" + (
                f" (raised to {severity.label})" if severity != incident.severity else ""
            )
            effects = []
            if severity in policy.paging:
                updated = updated.evolve(paged=True)
                effects.append(Effect(EffectKind.PAGE, incident.id, "trigger", severity.label, now))
            return Change(updated, [TimelineEntry(now, "escalated", line)], effects)

        if record.mode in ("auto", "approve"):
            self.outbox.update(record.incident_id, escalated)

    def _dead_letter(self, record: ActionRecord, reason: str) -> None:
        step = ActionStep(record.id, "check", record.target, 999_999)
        message = _step_message(step, None)
        self.queue.dead_letter_message(
            message, "ActionFailed", f"{record.action} on {record.target}: {reason}"
        )

    def _due(
        self,
        record: ActionRecord,
        step: str,
        seq: int,
        after: float | None = None,
        at: datetime | None = None,
    ) -> Wake:
        """A message to the pipeline itself, due later (never a function that waits)."""
        due = at or self.clock() + timedelta(
            seconds=after if after is not None else self.settings.retry_seconds
        )
        # The attempt is part of the id: a takeover's steps must not be dropped as the first worker's.
        return Wake(step, seq + record.attempts * 1_000_000, iso(due))

    def _waking(
        self,
        record: ActionRecord,
        step: str,
        seq: int,
        after: float | None = None,
        at: datetime | None = None,
    ) -> ActionRecord:
        """The record with the wake it is to be followed by (`_wake`), to be written with the write
        that precedes the send: a wake lost between them (the sender died, its send failed) then
        shows on the record, for the sweep to send again."""
        wake = self._due(record, step, seq, after, at)
        return record.evolve(continuation=dict(record.continuation) | {WAKE: wake.to_dict()})

    def _wake(self, record: ActionRecord) -> None:
        """Send the wake `record` was just written with (see `_waking`)."""
        wake = record.wake
        if wake is None:
            raise ValueError(f"action {record.id} was written without its wake")
        self._send(record, wake)

    def _send(self, record: ActionRecord, wake: Wake) -> None:
        self.queue.send([_step_message(wake.message(record), parse_iso(wake.at))])

    def _interval(self, step: Step) -> float:
        return max(min(step.check_after, self.settings.check_seconds), 0.0)

    def _target(self, record: ActionRecord) -> Target:
        return Target(record.target, dict(record.params), dict(self.policy.reach(record.target)))

    def _context(self, record: ActionRecord, started: Mapping[str, Any] | None = None) -> Context:
        found = self.store.get(record.incident_id)
        opened = parse_iso(found.incident.opened_at) if found else None
        now = self.clock()
        return Context(record.incident_id, opened or now, now, record.id, started)

    def _rule_plan(self, rule: str, action: str) -> ActionPlan | None:
        for candidate in self.policy.rules:
            if candidate.id == rule:
                return next((a for a in candidate.actions if a.action == action), None)
        return None

    def _get(self, action_id_: str) -> VersionedAction:
        found = self.actions.get_action(action_id_)
        if found is None:
            raise PoisonMessage(f"no action {action_id_}")
        return found


# A start again is the same step as the first: its counts, and how long the vendor has said "later".
_KEPT_ON_RESTART = frozenset({"transients", "errors", "later", "later_since", "later_in"})


def _parse(body: bytes) -> Mapping[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise PoisonMessage(f"not JSON: {e}") from e
    if not isinstance(data, dict):
        raise PoisonMessage("an action message must be a JSON object")
    return data


def _params(text: str) -> dict[str, Any]:
    """An act effect's parameters; PoisonMessage when they are not a JSON object (no retry mends them)."""
    try:
        params = json.loads(text) if text else {}
    except (ValueError, RecursionError) as e:
        raise PoisonMessage(f"the action's params are not JSON: {e}") from e
    if not isinstance(params, dict):
        raise PoisonMessage(f"the action's params must be a JSON object, not {type(params).__name__}")
    return params


def _step_message(step: ActionStep, due: datetime | None) -> QueueMessage:
    return QueueMessage(
        queue=ACTIONS_QUEUE,
        body=json.dumps(step.to_dict(), separators=(",", ":")).encode(),
        message_id=step.message_id,
        session_id=step.session_id,
        scheduled_at=due,
        application_properties={"kind": "act", "action_id": step.action_id, "step": step.step},
    )


def _count(record: ActionRecord, key: str) -> int:
    value = record.continuation.get(key, 0)
    return (value if isinstance(value, int) else 0) + 1


def _due(when: str, now: datetime) -> bool:
    moment = parse_iso(when) if when else None
    return moment is not None and now >= moment


def _line(record: ActionRecord, text: str) -> str:
    # Progress lines name their actor too, so an audit of the timeline alone tells who did what.
    return f"{record.action} on {record.target}: {text} ({Actor(AUTOMATION, record.rule or '?')})"


def _short(resource: str) -> str:
    return resource.rstrip("/").rsplit("/", 1)[-1] or resource
