"""The guardrails, in one place: each says no with which guardrail and why, or lets an action run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.clock import iso, parse_iso
from shared.domain.actions import AUTOMATION, ActionRecord, ActionState, Pause
from shared.triage.policy import Guardrails

# Records that still hold their target: a second action on it must wait or be refused. One
# awaiting approval holds it too: its request says what the precondition found, and a person
# deciding on that must not find the target changed by another action meanwhile.
HOLDING = frozenset({ActionState.AWAITING_APPROVAL, ActionState.APPROVED, ActionState.RUNNING})


@dataclass(frozen=True)
class History:
    """What the guardrails look at besides the action itself."""

    pauses: Sequence[Pause]
    # Every action on the same resource within the longest window, or on a part of it that overlaps.
    on_target: Sequence[ActionRecord]
    started_last_hour: Sequence[ActionRecord]  # every action started in the last hour
    automation_setting_on: bool  # DR_AUTOMATION
    where: str = ""  # how refusals name the target, and the part of it the action changes


def overlap(subject: str, other: str) -> bool:
    """Two actions change the same thing: the same subject, or one inside the other."""
    return subject == other or subject.startswith(other + "/") or other.startswith(subject + "/")


def kill_switch(record: ActionRecord, history: History) -> str | None:
    """Automation off in the settings, or paused for all tenants or this one."""
    if not history.automation_setting_on:
        return "kill switch: DR_AUTOMATION=off, so nothing runs by itself"
    return paused(record, history.pauses)


def paused(record: ActionRecord, pauses: Sequence[Pause]) -> str | None:
    """Paused for all tenants or the record's (which stops a person's action too)."""
    for pause in pauses:
        if not pause.tenant or pause.tenant == record.tenant.lower():
            why = f": {pause.reason}" if pause.reason else ""
            return f"kill switch: automation is paused for {pause.scope} (by {pause.by} at {pause.at}{why})"
    return None


def explicit_approval(record: ActionRecord) -> str:
    """When a person approved the automation's request by deciding on it ("" for an acknowledgement's
    approval, a person's own action, or one not approved)."""
    at = record.continuation.get("approved_at") if record.planned_by.name == AUTOMATION else None
    return at if isinstance(at, str) and record.approved_by is not None else ""


def paused_for(record: ActionRecord, pauses: Sequence[Pause], approved_at: str = "") -> str | None:
    """A pause that stops this start: every one that covers it, but one a person's explicit approval
    (at `approved_at`) came after: they approved knowing automation was paused."""
    approved = parse_iso(approved_at) if approved_at else None
    before = [p for p in pauses if approved and (at := parse_iso(p.at)) is not None and at < approved]
    return paused(record, [p for p in pauses if p not in before])


def refusal(
    record: ActionRecord, history: History, limits: Guardrails, cooldown_minutes: int, now: datetime
) -> str | None:
    """The first guardrail that refuses the action, saying why; None when all let it run."""
    others = [r for r in history.on_target if r.id != record.id]
    where = history.where or record.target
    if record.automatic and (why := kill_switch(record, history)):
        return why
    # A person's action does not run "by itself" (DR_AUTOMATION=off leaves it be), but a pause,
    # set between its confirmation and its run, stops it as it stops the automation's.
    if record.planned_by.name != AUTOMATION and (why := paused(record, history.pauses)):
        return why
    # The automation's request, approved: a pause stops it unless a person approved it after the pause.
    # (Asking for approval while paused goes ahead: a request changes nothing.)
    if record.state is ActionState.APPROVED and (
        why := paused_for(record, history.pauses, explicit_approval(record))
    ):
        return why
    window_start = iso(now - timedelta(minutes=limits.breaker_window_minutes))
    tries = [r for r in others if r.action == record.action and r.attempts and r.started_at >= window_start]
    if len(tries) >= limits.breaker_attempts:
        return (
            f"circuit breaker: {record.action} ran {len(tries)} times on {where} within "
            f"{limits.breaker_window_minutes} min ({', '.join(r.id for r in tries[-3:])}); automation "
            "stops for this target and its owner is paged"
        )
    cooldown_start = iso(now - timedelta(minutes=cooldown_minutes))
    recent = [
        r for r in others if r.action == record.action and r.started_at and r.started_at >= cooldown_start
    ]
    if recent:
        last = recent[-1]
        until = parse_iso(last.started_at)
        again = iso(until + timedelta(minutes=cooldown_minutes)) if until else "later"
        return (
            f"cooldown: {record.action} ran on {where} at {last.started_at} ({last.id}, "
            f"{last.state}); not again before {again} ({cooldown_minutes} min)"
        )
    holding = [r for r in others if r.state in HOLDING]
    if holding:
        busy = holding[0]
        return f"one at a time: {busy.action} ({busy.id}) is {busy.state} on {where}"
    if record.automatic:
        return over_cap(record, history.started_last_hour, limits)
    return None


def region_key(region: str) -> str:
    """One region however it is spelt: "West Europe", "WestEurope" and "westeurope" alike."""
    return "".join(region.split()).lower()


def over_cap(record: ActionRecord, started: Sequence[ActionRecord], limits: Guardrails) -> str | None:
    """The hourly cap an automatic action would pass, given what started in the last hour; None if none."""
    automatic = [r for r in started if r.automatic and r.id != record.id]
    if len(automatic) >= limits.max_per_hour:
        count = len(automatic)
        return f"rate cap: {count} automatic actions in the last hour (max_per_hour = {limits.max_per_hour})"
    tenant = [r for r in automatic if r.tenant and r.tenant == record.tenant]
    if record.tenant and len(tenant) >= limits.max_per_hour_per_tenant:
        return (
            f"rate cap: {len(tenant)} automatic actions on tenant {record.tenant} in the last hour "
            f"(max_per_hour_per_tenant = {limits.max_per_hour_per_tenant})"
        )
    here = region_key(record.region)
    region = [r for r in automatic if r.region and region_key(r.region) == here]
    if record.region and len(region) >= limits.max_per_hour_per_region:
        return (
            f"rate cap: {len(region)} automatic actions in region {record.region} in the last hour "
            f"(max_per_hour_per_region = {limits.max_per_hour_per_region})"
        )
    return None


def breaker_tripped(reason: str) -> bool:
    """The refusal is the circuit breaker's (its owner is paged)."""
    return reason.startswith("circuit breaker")
