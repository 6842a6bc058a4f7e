"""What /dr shows, as Block Kit: help, the status screen, incident lists and timelines, refusals."""

from __future__ import annotations

from collections.abc import Sequence

from shared.chatops.blocks import (
    IN_CHANNEL,
    Reply,
    Screen,
    bounded_section,
    clip,
    context,
    escape,
    header,
    section,
    sections,
)
from shared.chatops.grammar import USAGES, Usage
from shared.domain.incidents import Incident, TimelineEntry
from shared.status.model import OpenIncident, Status
from shared.status.render import age, budget

MAX_LIST = 20  # incidents in /dr incidents: a screen, not the archive (GET /api/incidents has it all)
MAX_TIMELINE = 30  # the newest lines of /dr show
VIEWED = "slack-read"  # the timeline kind of a read-only command's audit line


def help_reply(nearest: Usage | None = None, problem: str = "") -> Reply:
    """One command's help (the nearest to what was typed) or every command's."""
    blocks = [section(f":warning: {escape(problem)}")] if problem else []
    if nearest is not None:
        blocks.append(section(f"`{escape(nearest.syntax)}`\n{nearest.summary}"))
        blocks.append(context("`/dr help` lists every command."))
        return Reply(f"{problem} Usage: {nearest.syntax}".strip(), tuple(blocks))
    lines = [f"`{escape(u.syntax)}` — {u.summary}" for u in USAGES]
    blocks += sections("DR Responder commands", lines)
    blocks.append(context("Commands that change something are for the allowlist and whoever is on call."))
    return Reply(f"{problem} /dr commands: " + ", ".join(u.verb for u in USAGES), tuple(blocks))


def status_reply(status: Status, components: Sequence[str]) -> Reply:
    """The status model on one screen: per component and tenant, then actions, dead letters, automation."""
    screen = Screen()
    counts = status.to_dict()["incidents"]["by_severity"]
    by_severity = " · ".join(f"{label} {n}" for label, n in counts.items()) or "none"
    screen.add(header("DR status"))
    screen.add(
        context(f"{status.generated_at} · policy {escape(status.policy)} · {_automation_line(status)}")
    )
    screen.add(section(f"*Open incidents: {status.open_incidents}* ({by_severity})"))
    left_out = 0
    for group in status.groups:
        sev = " · ".join(f"{label} {n}" for label, n in group.by_severity.items())
        where = f"{escape(group.component or '-')} · {escape(group.tenant or '-')}"
        title = f"{where} — {group.count} open ({sev})"
        lines = [_incident_line(i) for i in group.incidents]  # the model carries the worst few
        block, shown = bounded_section(title, lines, total=group.count)
        # Five blocks are kept for what follows: the note, quiet components, actions, dead letters, queues.
        left_out += group.count - (shown if screen.add(block, keep=5) else 0)
    if left_out:
        screen.add(context(f"{left_out} more open incidents not shown: `/dr incidents` lists them"))
    quiet = [c for c in components if c not in {g.component for g in status.groups}]
    if quiet:
        screen.add(context("No open incidents: " + ", ".join(escape(c) for c in quiet)))
    active = status.automation.active
    if active:
        lines = [
            f"`{r.id}` {escape(r.action)} on {escape(r.target)} — {r.state.value}"
            + (f" (expires {r.expires_at})" if r.expires_at else "")
            + (f" · `/dr approve {r.id}`" if r.state.value == "awaiting approval" else "")
            for r in active
        ]
        screen.add(bounded_section("Actions running or waiting", lines, at_most=10)[0])
    if status.dead_lettered:
        lines = [
            f"{d.dead_lettered_at[:16]} {escape(d.queue)}: {escape(clip(d.reason, 60))}"
            + (f" · `{d.incident_id}`" if d.incident_id else "")
            for d in status.dead_letters
        ]
        screen.add(bounded_section(f"Dead letters: {status.dead_lettered}", lines)[0])
    busy = [f"{q.queue} {q.ready + q.scheduled}" for q in status.queues if q.ready + q.scheduled]
    screen.add(context("Queues waiting: " + (", ".join(busy) if busy else "none")))
    open_ = f"{status.open_incidents} open incident{'' if status.open_incidents == 1 else 's'}"
    text = f"DR status: {open_} ({by_severity}); {_automation_line(status)}"
    return Reply(text, tuple(screen.blocks), IN_CHANNEL)


def _automation_line(status: Status) -> str:
    automation = status.automation
    if not automation.setting_on:
        return ":double_vertical_bar: automation off (DR_AUTOMATION)"
    if not automation.pauses:
        return ":arrow_forward: automation on"
    paused = "; ".join(
        f"{p.scope} by {escape(p.by)}" + (f" ({escape(p.reason)})" if p.reason else "")
        for p in automation.pauses
    )
    return f":double_vertical_bar: paused: {paused}"


def _incident_line(incident: OpenIncident) -> str:
    notes = [
        f"open {age(incident.age_seconds)}",
        f"response {budget(incident.response)}",
        f"RTO {budget(incident.rto)}",
    ]
    if incident.status != "open":
        notes.insert(0, incident.status)
    return (
        f"`{incident.severity}` {escape(clip(incident.title, 120))} · "
        + " · ".join(notes)
        + f" · `{incident.id}`"
    )


def incidents_reply(incidents: Sequence[Incident], tenant: str, severity: str) -> Reply:
    """The newest incidents of a tenant and severity, one line each."""
    scope = " ".join(x for x in (tenant, severity) if x) or "all tenants"
    if not incidents:
        return Reply(f"No incidents ({scope}).", (section(f"No incidents ({escape(scope)})."),))
    lines = [
        f"`{i.severity.label}` {i.status.value} · {escape(clip(i.title, 120))} · {escape(i.tenant or '-')}"
        f" · {i.opened_at[:16]} · `{i.id}`"
        for i in incidents[:MAX_LIST]
    ]
    blocks = [*sections(f"Incidents, newest first ({escape(scope)})", lines)]
    blocks.append(context("`/dr show <incident>` shows one with its timeline."))
    return Reply(f"{len(incidents)} incidents ({scope})", tuple(blocks))


def incident_reply(incident: Incident, timeline: Sequence[TimelineEntry]) -> Reply:
    """One incident and the newest lines of its timeline."""
    facts = [
        f"*{escape(incident.title)}*",
        f"`{incident.severity.label}` {incident.status.value} · tenant {escape(incident.tenant or '-')}"
        f" · {escape(incident.component or '-')} · {incident.signal_count} signals",
        f"opened {incident.opened_at}"
        + (
            f" · acknowledged by {escape(incident.acknowledged_by or '?')}"
            if incident.acknowledged_at
            else ""
        )
        + (f" · resolved {incident.resolved_at}" if incident.resolved_at else ""),
    ]
    if incident.pagerduty_url:
        facts.append(f"<{incident.pagerduty_url}|PagerDuty>")
    # Who looked is audit, not the incident's story: counted here, every line kept in the store.
    story = [e for e in timeline if e.kind != VIEWED]
    viewed = len(timeline) - len(story)
    newest = story[-MAX_TIMELINE:]
    lines = [f"{e.at[:19]} _{escape(e.kind)}_ {escape(clip(e.text, 300))}" for e in newest]
    blocks = [header(f"{incident.id}"), section("\n".join(facts))]
    blocks += sections(f"Timeline ({len(newest)} of {len(story)}, oldest first)", lines or ["(empty)"])
    if viewed:
        blocks.append(
            context(f"Looked at {viewed} time{'' if viewed == 1 else 's'} from Slack (`/dr show`).")
        )
    return Reply(f"{incident.id}: {incident.title}", tuple(blocks))


def refusal(usage_or_action: str, who_may: str) -> Reply:
    """The polite no."""
    text = f"Sorry, you may not {usage_or_action}. {who_may}"
    return Reply(text, (section(f":no_entry: Sorry, you may not {escape(usage_or_action)}. {who_may}"),))


def notice(
    text: str, emoji: str = "information_source", response_type: str = "ephemeral", replace: bool = False
) -> Reply:
    """One line (refusals of operations, results)."""
    return Reply(text, (section(f":{emoji}: {escape(text)}"),), response_type, replace)
