"""The status model as text for a person at a terminal: tables that fit 100 columns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.status.model import Budget, DeadLetterView, OpenIncident, Status

WIDTH = 100
MAX_INCIDENT_ROWS = 30  # a storm's hundred incidents do not fit a screen; --json has the shown ones
_INCIDENT_ROW = "{sev:<4}  {component:<10}  {tenant:<9}  {age:>6}  {response:<18}  {rto:<18}  {id}"
_QUEUE_ROW = "{queue:<14}  {ready:>7}  {scheduled:>9}  {in_flight:>9}  {dead:>13}"
_DEAD_ROW = "{when:<19}  {queue:<13}  {reason:<24}  {incident}"


def render_status(status: Status, width: int = WIDTH) -> str:
    """The whole view: open incidents, queues, dead letters, outboxes, automation."""
    lines = [f"DR Responder status at {status.generated_at} · policy {status.policy}", ""]
    lines += _incidents(status)
    lines += ["", *_queues(status)]
    lines += ["", *_dead_letters_section(status)]
    lines += ["", _outboxes(status), *_automation(status)]
    return "\n".join(clip(line, width) for line in lines) + "\n"


def render_dead_letters(dead_letters: Sequence[DeadLetterView], width: int = WIDTH) -> str:
    """The list `dr dead-letters` prints, newest first."""
    if not dead_letters:
        return "No dead letters.\n"
    noun = "dead letter" if len(dead_letters) == 1 else "dead letters"
    lines = [f"{len(dead_letters)} {noun}, newest first; dr replay MESSAGE_ID sends one again", ""]
    lines += dead_letter_rows(dead_letters)
    return "\n".join(clip(line, width) for line in lines) + "\n"


def dead_letter_rows(dead_letters: Sequence[DeadLetterView]) -> list[str]:
    """A header, then three lines per dead letter: where and why, its message id, the description."""
    lines = [_DEAD_ROW.format(when="when (UTC)", queue="queue", reason="reason", incident="incident")]
    for d in dead_letters:
        lines.append(
            _DEAD_ROW.format(
                when=_when(d.dead_lettered_at),
                queue=clip(d.queue, 13),
                reason=clip(d.reason, 24),
                incident=d.incident_id or "-",
            ).rstrip()
        )
        # The id in full, on a line of its own: it is what `dr replay` takes.
        lines.append(f"  id {d.message_id}" + (f"  ({d.summary})" if d.summary else ""))
        lines.append(f"  {' '.join(d.description.split())}")
    return lines


def clip(text: str, width: int) -> str:
    """At most `width` characters, an ellipsis marking what was cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def age(seconds: float) -> str:
    """45s, 12m, 3h05m, 2d04h."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    if whole < 86_400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d{whole % 86_400 // 3600:02d}h"


def budget(used: Budget | None) -> str:
    """ "80% of 15m", "OVER 240% of 5m"; once stopped "met 40% of 15m" or "late 140% of 15m"."""
    if used is None:
        return "-"
    target = age(used.target_minutes * 60).removesuffix("00m")
    if used.running:
        text = f"OVER {used.used_percent}%" if used.over else f"{used.used_percent}%"
    else:
        text = f"late {used.used_percent}%" if used.over else f"met {used.used_percent}%"
    return clip(f"{text} of {target}", 18)


def _incidents(status: Status) -> list[str]:
    if not status.groups:
        return ["OPEN INCIDENTS  none"]
    counts = status.to_dict()["incidents"]["by_severity"]
    by_severity = " · ".join(f"{label} {n}" for label, n in counts.items())
    shown = status.shown_incidents
    of = f", {shown} shown" if shown < status.open_incidents else ""
    lines = [f"OPEN INCIDENTS  {status.open_incidents} ({by_severity}{of}) · per component and tenant"]
    lines.append(
        _INCIDENT_ROW.format(
            sev="sev",
            component="component",
            tenant="tenant",
            age="age",
            response="response",
            rto="RTO",
            id="incident",
        )
    )
    rows = [i for g in status.groups for i in g.incidents]
    for incident in rows[:MAX_INCIDENT_ROWS]:
        lines += _incident(incident)
    if len(rows) < status.open_incidents:
        more = status.open_incidents - min(len(rows), MAX_INCIDENT_ROWS)
        lines.append(f"… and {more} more: GET /api/incidents?status=open lists them all")
    elif len(rows) > MAX_INCIDENT_ROWS:
        lines.append(f"… and {len(rows) - MAX_INCIDENT_ROWS} more: dr status --json shows them")
    return lines


def _incident(incident: OpenIncident) -> list[str]:
    row = _INCIDENT_ROW.format(
        sev=incident.severity,
        component=clip(incident.component or "-", 10),
        tenant=clip(incident.tenant or "-", 9),
        age=age(incident.age_seconds),
        response=budget(incident.response),
        rto=budget(incident.rto),
        id=incident.id,
    )
    notes = [incident.title]
    if incident.status != "open":
        notes.append(incident.status)
    notes.append(f"{incident.signal_count} signal" + ("" if incident.signal_count == 1 else "s"))
    if incident.all_tenants:
        notes.append("all tenants")
    return [row, "      " + " · ".join(notes)]


def _queues(status: Status) -> list[str]:
    lines = [
        _QUEUE_ROW.format(
            queue="QUEUES", ready="ready", scheduled="scheduled", in_flight="in flight", dead="dead-lettered"
        )
    ]
    for q in status.queues:
        lines.append(
            _QUEUE_ROW.format(
                queue=q.queue,
                ready=q.ready,
                scheduled=q.scheduled,
                in_flight=q.in_flight,
                dead=q.dead_lettered,
            )
        )
    return lines


def _dead_letters_section(status: Status) -> list[str]:
    if not status.dead_letters:
        return ["DEAD LETTERS  none"]
    newest = len(status.dead_letters)
    shown = f"the newest {newest}" if newest < status.dead_lettered else "all"
    lines = [f"DEAD LETTERS  {status.dead_lettered} ({shown} below; dr replay MESSAGE_ID sends one again)"]
    return lines + dead_letter_rows(status.dead_letters)


def _outboxes(status: Status) -> str:
    outboxes = status.outboxes
    if not outboxes.incidents:
        return "OUTBOXES  none waiting: every decided effect is on its queue"
    noun = "incident" if outboxes.incidents == 1 else "incidents"
    oldest = f"; oldest {age(outboxes.oldest_age_seconds)}" if outboxes.oldest_age_seconds is not None else ""
    return f"OUTBOXES  {outboxes.incidents} {noun} with effects not yet on a queue{oldest} (swept every 30 s)"


def _automation(status: Status) -> list[str]:
    automation = status.automation
    if not automation.setting_on:
        head = "AUTOMATION  OFF (DR_AUTOMATION=off): actions are suggested, approved by hand, or dry-run"
    elif automation.paused:
        head = "AUTOMATION  PAUSED for all tenants"
    else:
        head = "AUTOMATION  on"
    lines = [head]
    for pause in automation.pauses:
        why = f": {pause.reason}" if pause.reason else ""
        lines.append(f"  paused for {pause.scope} by {pause.by} at {_when(pause.at)}{why}  (dr resume)")
    for r in automation.active:
        short = r.target.rstrip("/").rsplit("/", 1)[-1]
        waiting = r.state == "awaiting approval"
        expires = f", expires {_when(r.expires_at)}" if waiting else ""
        lines.append(f"  {r.state:<17} {r.action} on {short} ({r.incident_id}){expires}")
        if waiting:
            lines.append(f"    dr approve {r.id}   or   dr deny {r.id}")
    if not automation.active:
        lines.append("  no action running or waiting for approval")
    return lines


def _when(moment: str) -> str:
    try:
        return datetime.fromisoformat(moment.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return moment[:19]
