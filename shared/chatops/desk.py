"""The /dr desk: answers what can be answered within Slack's 3 seconds, queues the rest, and works it off.

Read-only commands (status, incidents, show, help) are answered in the HTTP response. Commands that
change something, and every button press, are queued (`chatops`) and acknowledged at once; the
queue's worker checks who may, calls the Operations, and posts the outcome to the response_url,
retrying that post through the queue with backoff.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from shared.chatops import views
from shared.chatops.authorisation import Authorisation, Verdict
from shared.chatops.blocks import IN_CHANNEL, Reply
from shared.chatops.confirmation import confirmation_reply, pressed_reply
from shared.chatops.grammar import CONFIRMED, Command, NotACommand, parse
from shared.chatops.inbound import ButtonPress, SlashCommand
from shared.chatops.jobs import (
    command_from,
    command_message,
    digest,
    press_from,
    press_message,
    reply_message,
)
from shared.chatops.operations import ActionRequest, OperationRefused, Operations
from shared.chatops.plain import one_line
from shared.chatops.responses import Responses
from shared.clock import Clock, iso, parse_iso
from shared.domain.actions import ActionRecord, Actor
from shared.domain.incidents import Incident, TimelineEntry
from shared.errors import PoisonMessage, Rejected, Transient
from shared.ports import EffectQueue, IncidentPages, IncidentRepository
from shared.retries import Backoff
from shared.status.model import Status

log = logging.getLogger(__name__)

# Read-only commands whose answer may take longer than Slack's 3 seconds (a filtered list over many
# incidents on Table Storage): answered from the queue too. The status has its own benchmark; on
# Service Bus it is queued as well (its counts and dead letters are admin calls and peeks per queue,
# which grow with the dead-letter backlog: largest during the incident someone asks about).
LISTS = ("incidents",)
QUEUED_STATUS = (*LISTS, "status")
# A queue send made while Slack waits (its 3 s include verifying the request and answering) gives
# up after this, and the person is told to try again, instead of Slack showing its own time-out.
QUEUE_SEND_SECONDS = 2.0
# Slack: a response_url is "usable up to 5 times within 30 minutes". Each reply is one post to its own
# URL, so what bounds its retries is that life: they back off (DR_RETRY_BASE_SECONDS doubling up to
# DR_RETRY_MAX_SECONDS, 2 s to 5 minutes) and the last is due as the life ends. It is counted from the
# first try, a little after Slack made the URL (the command waited in the queue): hence the margin.
RESPONSE_URL_LIFE = timedelta(minutes=30)
REPLY_MARGIN = timedelta(minutes=1)
MAX_REPLY_ATTEMPTS = 20  # with a short DR_RETRY_MAX_SECONDS, the life alone would allow hundreds
VIA = "slack"


@dataclass
class Desk:
    """Everything /dr and the buttons need."""

    incidents: IncidentRepository
    pages: IncidentPages
    status: Callable[[], Status]
    components: Callable[[], Sequence[str]]
    queue: EffectQueue
    authorisation: Authorisation
    operations: Operations | None
    responses: Responses
    clock: Clock
    backoff: Backoff
    queued_reads: tuple[str, ...] = LISTS  # read-only verbs answered from the queue
    # SLACK_TEAM_IDS. The signing secret is the app's, not a workspace's: an app installed in two
    # workspaces, or a channel shared with another organisation, brings others' requests signed alike.
    workspaces: tuple[str, ...] = ()

    # --- the HTTP side: within 3 seconds --------------------------------------------------

    def command(self, command: SlashCommand) -> Reply:
        """The immediate answer to a /dr command (a changing one is queued and acknowledged)."""
        actor = _actor(command.user_id, command.user_name)
        if not self._serves(command.team_id):
            self._audit(actor, f"/dr {command.text}", _foreign(command.team_id))
            return views.notice(
                f"This responder does not serve your Slack workspace ({command.team_id or 'unnamed'}):"
                " nothing was done.",
                "no_entry",
            )
        parsed = parse(command.text)
        if isinstance(parsed, NotACommand):
            self._audit(actor, f"/dr {command.text}", f"not a command: {parsed.problem}")
            return views.help_reply(parsed.nearest, parsed.problem)
        if not parsed.usage.changes and parsed.verb not in self.queued_reads:
            return self._read(parsed, actor)
        if parsed.verb in self.queued_reads:
            self.queue.send([command_message(command)])
            self._audit(actor, _spelt(parsed, command.text), "queued")
            return views.notice(f"Looking: `/dr {_clean(command.text)}`…", "mag")
        if self.operations is None:
            self._audit(actor, _spelt(parsed, command.text), "refused: no operations wired")
            return views.notice("This responder has no operations wired in: nothing was done.", "warning")
        self.queue.send([command_message(command)])
        self._audit(actor, _spelt(parsed, command.text), "queued")
        return views.notice(f"Working on `/dr {_clean(command.text)}`…", "hourglass_flowing_sand")

    def press(self, press: ButtonPress) -> None:
        """Queue a button press (the HTTP answer is an empty 200)."""
        if not self._serves(press.team_id):
            # Not queued, so nothing is updated: the presser sees no answer, the log says why.
            self._audit(
                _actor(press.user_id, press.user_name), f"pressed {press.action_id}", _foreign(press.team_id)
            )
            return
        self.queue.send([press_message(press)])
        self._audit(_actor(press.user_id, press.user_name), f"pressed {press.action_id}", "queued")

    def _read(self, command: Command, actor: Actor) -> Reply:
        what = f"/dr {command.verb} {command.subject or command.tenant} {command.severity}".strip()
        if command.verb == "help":
            from shared.chatops.grammar import BY_VERB

            usage = BY_VERB.get(command.subject)
            problem = "" if usage or not command.subject else f"`{command.subject[:40]}` is not a /dr command"
            self._audit(actor, what, "shown")
            return views.help_reply(usage, problem)
        if command.verb == "status":
            reply = views.status_reply(self.status(), self.components())
            self._audit(actor, what, "shown")
            return reply
        if command.verb == "incidents":
            found = self.pages.incidents_page(
                None, command.tenant or None, command.severity or None, None, views.MAX_LIST
            )
            self._audit(actor, what, f"{len(found)} listed")
            return views.incidents_reply(found, command.tenant, command.severity)
        versioned = self.incidents.get(command.subject)
        if versioned is None:
            self._audit(actor, what, "no such incident")
            return views.notice(f"There is no incident {command.subject}. `/dr incidents` lists them.", "mag")
        self._audit(actor, what, "shown", versioned.incident, kind=views.VIEWED)
        return views.incident_reply(versioned.incident, self.incidents.timeline(command.subject))

    # --- the queue side --------------------------------------------------------------------

    def handle(self, body: bytes) -> None:
        """Work one `chatops` message; PoisonMessage for one that can never be worked."""
        try:
            data = json.loads(body)
            kind = data["kind"]
            if kind == "command":
                self._run_command(command_from(data["command"]))
            elif kind == "press":
                self._run_press(press_from(data["press"]))
            elif kind == "reply":
                self._deliver(
                    data["origin"],
                    data["response_url"],
                    Reply.from_dict(data["reply"]),
                    int(data["attempt"]),
                    str(data.get("session") or "slack"),  # "slack" for a reply queued before it was kept
                    # A reply queued before the first try was kept: its life is counted from now.
                    first_try=parse_iso(str(data.get("first_try") or "")),
                )
            else:
                raise PoisonMessage(f"unknown chatops message kind {str(kind)[:40]!r}")
        except (ValueError, KeyError, TypeError) as e:
            raise PoisonMessage(f"not a chatops message: {type(e).__name__}") from None

    def _run_command(self, command: SlashCommand) -> None:
        actor = _actor(command.user_id, command.user_name)
        parsed = parse(command.text)
        origin = f"slack-command-{digest(command.trigger_id)}"
        if isinstance(parsed, Command) and parsed.verb in self.queued_reads:
            self._send(origin, command.response_url, self._read(parsed, actor), command.channel_id)
            return
        if not isinstance(parsed, Command) or self.operations is None:
            raise PoisonMessage("a queued command that is no longer a changing command")
        what = _spelt(parsed, command.text)
        verdict = self.authorisation.check(command.user_id)
        if not verdict.allowed:
            self._audit(actor, what, f"refused: {verdict.because}", self._incident(parsed))
            reply = views.refusal(f"run `/dr {parsed.verb}`", self._who_may(verdict))
        else:
            reply = self._operate(self.operations, parsed, actor, what)
        self._send(origin, command.response_url, reply, command.channel_id)

    def _operate(self, ops: Operations, command: Command, actor: Actor, what: str) -> Reply:
        incident = self._incident(command)
        try:
            if command.verb in CONFIRMED:
                preview = ops.preview(_request(command))
                self._audit(
                    actor, what, "refused: " + preview.refused if preview.refused else "confirmation shown"
                )
                return confirmation_reply(preview)
            if command.verb == "ack":
                result, approved = ops.acknowledge_approving(command.subject, actor)
                line = f"{actor.name} acknowledged {result.id}: {result.title} (here and in PagerDuty)"
                line += _approves(approved)
            elif command.verb == "resolve":
                result = ops.resolve(command.subject, actor)
                line = f"{actor.name} resolved {result.id}: {result.title} (here and in PagerDuty)"
            elif command.verb in ("approve", "deny"):
                decide = ops.approve if command.verb == "approve" else ops.deny
                record = decide(command.subject, actor)
                line = (
                    f"{actor.name} {'approved' if command.verb == 'approve' else 'denied'} {_action(record)}"
                )
            elif command.verb == "pause":
                self._known_tenant(command)
                line = ops.pause(
                    one_line(command.tenant), actor, one_line(command.reason) or "paused from Slack"
                )
            else:
                line = ops.resume(one_line(command.tenant), actor)
        except OperationRefused as e:
            self._audit(actor, what, f"refused: {e}", incident)
            return views.notice(str(e), "no_entry")
        self._audit(actor, what, "done", incident)
        return views.notice(line, "white_check_mark", IN_CHANNEL)

    def _run_press(self, press: ButtonPress) -> None:
        origin = f"slack-press-{digest(press.trigger_id, press.action_ts)}"
        self._send(origin, press.response_url, self._pressed(press), press.channel_id or press.user_id)

    def _pressed(self, press: ButtonPress) -> Reply:
        """What the press does, audited; the reply that says so."""
        actor = _actor(press.user_id, press.user_name)
        what = f"pressed {press.action_id} ({press.value[:80]})"
        when = _when(self.clock())
        if press.action_id == "dr_cancel":  # only stops what it shows, so anyone who sees it may
            try:
                self._cancel(press, actor)
            except OperationRefused as e:  # confirmed first: the message stays as it is
                self._audit(actor, what, f"refused: {e}")
                return views.notice(str(e), "no_entry")
            self._audit(actor, what, "cancelled")
            line = f"Cancelled by <@{press.user_id}> {when}: nothing was done."
            return pressed_reply(press.message_blocks, press.action_id, press.block_id, line, True)
        incident = self._exists(self._incident_of(press.action_id, press.value))
        verdict = self.authorisation.check(press.user_id)
        if not verdict.allowed:
            self._audit(actor, what, f"refused: {verdict.because}", incident)
            return views.refusal(_BUTTONS[press.action_id], self._who_may(verdict))
        if self.operations is None:
            return views.notice("This responder has no operations wired in: nothing was done.", "warning")
        try:
            line, whole, concerns = self._apply(self.operations, press, actor, when)
        except OperationRefused as e:
            self._audit(actor, what, f"refused: {e}", incident)
            return views.notice(str(e), "no_entry")
        self._audit(actor, what, "done", incident or self._exists(concerns))
        return pressed_reply(press.message_blocks, press.action_id, press.block_id, line, whole)

    def _apply(self, ops: Operations, press: ButtonPress, actor: Actor, when: str) -> tuple[str, bool, str]:
        """Call the operation the button names; (the line the message gets, whether the whole row goes,
        the incident it concerns)."""
        who = f"<@{press.user_id}>"
        if press.action_id == "dr_confirm":
            request = ActionRequest.from_value(press.value)
            record = ops.confirm(request, actor, _request_id(press))
            by = record.planned_by
            said = "Confirmed" if by.name == actor.name else "Already confirmed"
            line = f"{said} by {by} {_when_iso(record.planned_at)}: {_action(record)}"
            return line, True, record.incident_id
        if press.action_id in ("dr_approve", "dr_deny"):
            record = (ops.approve if press.action_id == "dr_approve" else ops.deny)(press.value, actor)
            verb = "Approved" if press.action_id == "dr_approve" else "Denied"
            return f"{verb} by {who} {when}: {_action(record)}", True, record.incident_id
        if press.action_id == "dr_ack":
            incident, approved = ops.acknowledge_approving(press.value, actor)
            line = f"Acknowledged by {who} {when} (here and in PagerDuty): {incident.id}"
            return line + _approves(approved), False, incident.id
        incident = ops.resolve(press.value, actor)
        return f"Resolved by {who} {when} (here and in PagerDuty): {incident.id}", True, incident.id

    def _cancel(self, press: ButtonPress, actor: Actor) -> None:
        """Cancel the confirmation on its request id (a later Confirm is refused); not ours: nothing to do."""
        try:
            request = ActionRequest.from_value(press.value)
        except OperationRefused:
            return
        if self.operations is not None:
            self.operations.cancel(request, actor, _request_id(press))

    # --- replies, with retries -------------------------------------------------------------

    def _send(self, origin: str, response_url: str, reply: Reply, session: str) -> None:
        self._deliver(origin, response_url, reply, 1, session)

    def _deliver(
        self,
        origin: str,
        response_url: str,
        reply: Reply,
        attempt: int,
        session: str = "slack",
        first_try: datetime | None = None,
    ) -> None:
        """Post the reply; on a transient failure queue the next try with backoff while the response_url
        lives, then give up visibly."""
        first = first_try or self.clock()
        try:
            self.responses.post(response_url, reply)
        except Rejected as e:
            log.warning("slack reply %s (try %d) refused for good: %s", origin, attempt, e)
            return
        except Transient as e:
            now = self.clock()
            following = partial(reply_message, origin, response_url, reply, session, first_try=iso(first))
            last = first + RESPONSE_URL_LIFE - REPLY_MARGIN
            wait = timedelta(seconds=self.backoff.delay(attempt, e.retry_after, e.held))
            at = min(now + wait, last)  # the last try as the URL's life ends, not a wait past it
            asked_past = now + timedelta(seconds=e.retry_after or 0) > last  # Retry-After is not cut short
            if attempt >= MAX_REPLY_ATTEMPTS or at <= now or asked_past:
                reason = f"{attempt} tries in {(now - first).total_seconds() / 60:.0f} min: {e}"
                log.error("slack reply %s gave up after %s", origin, reason)
                self.queue.dead_letter_message(following(attempt + 1), "ReplyNotDelivered", reason)
                return
            delay = (at - now).total_seconds()
            log.warning("slack reply %s (try %d) failed: %s; again in %.1f s", origin, attempt, e, delay)
            self.queue.send([following(attempt + 1, at)])

    # --- audit -------------------------------------------------------------------------------

    def _who_may(self, verdict: Verdict) -> str:
        """Who may; and, when a source could not answer, that it is why (the allowlist is unaffected)."""
        who = self.authorisation.who_may()
        if not verdict.unchecked:
            return who
        unchecked = verdict.unchecked
        return f"{who} I could not check whether you are one of them just now ({unchecked}); try again soon."

    def _known_tenant(self, command: Command) -> None:
        """OperationRefused when a pause with a reason names a tenant no incident ever had: that reads
        two ways (`/dr pause failover drill`: every tenant, for a drill?), and the wrong one would
        leave automation running everywhere. A tenant alone (`/dr pause zara`) is taken as said."""
        tenant, reason = command.tenant, command.reason
        if tenant and reason and not self.pages.incidents_page(None, tenant, None, None, 1):
            raise OperationRefused(
                f"No incident has had tenant `{tenant}` yet, so nothing was paused: did you mean every"
                f" tenant, `/dr pause * {tenant} {reason}`, or the tenant alone, `/dr pause {tenant}`?"
            )

    def _incident(self, command: Command) -> Incident | None:
        return self._exists(self._incident_of(command.verb, command.subject))

    def _incident_of(self, verb: str, subject: str) -> str | None:
        """The incident a command or button is about (an approval's is its action's), for its audit line."""
        if verb in ("ack", "resolve", "show", "dr_ack", "dr_resolve"):
            return subject
        if verb in ("approve", "deny", "dr_approve", "dr_deny") and self.operations is not None:
            return self.operations.incident_of(subject)
        return None

    def _exists(self, incident_id: str | None) -> Incident | None:
        if not incident_id:
            return None
        found = self.incidents.get(incident_id)
        return found.incident if found else None

    def _serves(self, team_id: str) -> bool:
        return not self.workspaces or team_id in self.workspaces

    def _audit(
        self, actor: Actor, what: str, result: str, incident: Incident | None = None, kind: str = "slack"
    ) -> None:
        """Log who did what and how it went; on the incident's timeline too when it names one."""
        # Each part may quote Slack's text (a command, a button's value, a name), so each is made one
        # plain line: a newline in it must not write a line of its own.
        who, what, result = one_line(str(actor)), one_line(what)[:200], one_line(result)[:300]
        log.info("slack: %s: %s → %s", who, what, result)
        if incident is not None:
            line = f"{who}: {what} → {result}"
            self.incidents.add_timeline(incident.id, [TimelineEntry(iso(self.clock()), kind, line)])


_BUTTONS = {
    "dr_confirm": "confirm this action",
    "dr_approve": "approve actions",
    "dr_deny": "deny actions",
    "dr_ack": "acknowledge incidents",
    "dr_resolve": "resolve incidents",
}


def _foreign(team_id: str) -> str:
    return f"refused: workspace {team_id or '(none given)'} is not in SLACK_TEAM_IDS"


def _actor(user_id: str, user_name: str) -> Actor:
    """The person as the Operations write them down (on timelines, on a pause): one plain line."""
    return Actor(one_line(f"{user_name} ({user_id})" if user_name else user_id), VIA)


def _request_id(press: ButtonPress) -> str:
    """One confirmation is one request, for its Confirm and its Cancel alike, wherever it is pressed.

    The value is sealed per preview (what it showed, and when), so it names the confirmation: the
    same Confirm pressed twice, a press Slack delivers twice, or the value replayed under another
    message (a Cancel on one and a Confirm on another) all ask for the same request id, done once.
    """
    return "slack-" + digest(press.channel_id, press.value)


def _approves(approved: Sequence[ActionRecord]) -> str:
    """What an acknowledgement approved too (`approve_on_ack = true`), said to the person who pressed."""
    if not approved:
        return ""
    return "; this also approves " + ", ".join(f"`{r.id}` ({r.action} on {r.target})" for r in approved)


def _request(command: Command) -> ActionRequest:
    return ActionRequest(command.verb, command.subject, command.system, command.revision, command.backup)


def _action(record: ActionRecord) -> str:
    return f"`{record.id}` {record.action} on {record.target} is {record.state.value}"


def _spelt(command: Command, text: str) -> str:
    return f"/dr {_clean(text)}" if text else f"/dr {command.verb}"


def _clean(text: str) -> str:
    return one_line(text)[:200].replace("`", "'")


def _when(moment: Any) -> str:
    """A Slack date that each reader sees in their own time zone (the fallback in UTC)."""
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} at {{time}}|{iso(moment)[:16]}Z>"


def _when_iso(text: str) -> str:
    moment = parse_iso(text)
    return _when(moment) if moment else text
