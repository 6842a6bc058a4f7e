"""/dr and the buttons through the registered functions, with real HttpRequests and Slack's signatures.

Slack (the Web API and the response_urls) and PagerDuty (on-call) are local stubs spoken to by the
real slack_sdk and pagerduty clients; the Operations are a hand-written fake that records calls.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from shared.domain.effects import CHATOPS_QUEUE
from shared.domain.incidents import TimelineEntry
from shared.ports import QueueMessage
from tests.factories import incident
from tests.fake_operations import REFUSED_TARGET
from tests.functions.harness import assert_error, json_body
from tests.functions.slack_harness import (
    ALLOWED,
    IN_GROUP,
    ON_CALL,
    STRANGER,
    WORKSPACE,
    SlackWorld,
    post_form,
    text_of,
)
from tests.functions.slack_harness import chatops as chatops  # the fixture, re-exported
from tests.slack_requests import SECRET, command_body, interaction_body, signed_headers


def store_incident(chatops: SlackWorld, incident_id: str = "inc-20261125-aaaa") -> str:
    made = incident(incident_id)
    chatops.app.store.commit(made, None, timeline=[TimelineEntry(made.opened_at, "opened", "opened by test")])
    return incident_id


def queued(chatops: SlackWorld) -> int:
    return chatops.app.local_queue.active_count(CHATOPS_QUEUE)


# --- the door -----------------------------------------------------------------------------------


def test_the_refdata_signed_command_is_verified_and_answered(chatops: SlackWorld, refdata: Path) -> None:
    vector = json.loads((refdata / "slack" / "signature_test_vector.json").read_text())
    body = (refdata / "slack" / vector["body_file"]).read_bytes()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": vector["X-Slack-Request-Timestamp"],
        "X-Slack-Signature": vector["X-Slack-Signature"],
    }
    chatops.clock.now = chatops.clock.now.fromtimestamp(
        int(vector["X-Slack-Request-Timestamp"]), chatops.clock.now.tzinfo
    )
    answer = post_form("slack/commands", body, headers, "slack_commands")
    assert answer.status_code == 200, answer.get_body()
    assert "/dr status" in text_of(json_body(answer))  # its text is empty: the help


@pytest.mark.parametrize("route", ["commands", "interactions"])
def test_a_wrong_signature_or_a_stale_timestamp_is_a_401_and_nothing_is_queued(
    chatops: SlackWorld, route: str
) -> None:
    url = chatops.slack.response_url("x")
    body = command_body("ack inc-1", url) if route == "commands" else interaction_body("dr_ack", "inc-1", url)
    now = int(chatops.clock().timestamp())
    name = f"slack_{route}"
    wrong = signed_headers(body, now, secret="not-the-secret")
    assert_error(post_form(f"slack/{route}", body, wrong, name), 401, "unauthorized", "does not match")
    stale = signed_headers(body, now - 301)
    assert_error(post_form(f"slack/{route}", body, stale, name), 401, "unauthorized", "5 minutes")
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert_error(post_form(f"slack/{route}", body, unsigned, name), 401, "unauthorized", "missing")
    assert queued(chatops) == 0 and chatops.operations.calls == [] and chatops.slack.responses() == []


@pytest.mark.parametrize(
    ("route", "body", "content_type", "status", "error"),
    [
        ("commands", b'{"text":"status"}', "application/json", 415, "unsupported_media_type"),
        ("commands", b"token=x", None, 400, "missing_field"),
        ("interactions", b"token=x", None, 400, "missing_field"),
        ("interactions", b"payload=%7Bnope", None, 400, "invalid_json"),
        ("interactions", b"payload=%5B%5D", None, 400, "invalid_field"),
        ("commands", b"text=" + b"a" * 70_000, None, 413, "body_too_large"),
    ],
)
def test_bad_input_with_a_valid_signature_is_a_named_4xx(
    chatops: SlackWorld, route: str, body: bytes, content_type: str | None, status: int, error: str
) -> None:
    headers = signed_headers(body, int(chatops.clock().timestamp()))
    if content_type:
        headers["Content-Type"] = content_type
    assert_error(post_form(f"slack/{route}", body, headers, f"slack_{route}"), status, error)
    assert queued(chatops) == 0


def test_an_unknown_action_id_is_a_400_naming_ours(chatops: SlackWorld) -> None:
    answer = chatops.press("a", "click_me_123")
    assert_error(answer, 400, "unknown_action", "dr_confirm")
    assert queued(chatops) == 0


def test_a_press_nesting_its_message_too_deep_is_400_not_a_crash(chatops: SlackWorld) -> None:
    """Signed, so only the secret's holder can send it; still a clear 400, nothing queued."""
    nested: object = "deep"
    for _ in range(500):  # json.loads takes it; keeping it (asdict) would not
        nested = [nested]
    message = {"ts": "1.2", "blocks": [{"type": "section", "deep": nested}]}
    answer = chatops.press("dr_ack", "inc-1", message=message)
    assert_error(answer, 400, "invalid_json", "nested deeper than 64 levels")
    assert queued(chatops) == 0


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ({"user_name": "\ud800"}, "surrogate"),  # JSON carries it; no store or hash can
        ({"message": {"ts": "1.2", "blocks": [{"type": "section", "n": float("nan")}]}}, "NaN"),
        ({"message": {"ts": "1.2", "blocks": [{"type": "section", "n": float("-inf")}]}}, "Infinity"),
    ],
)
def test_a_press_whose_payload_json_is_not_json_is_400_not_dead_lettered_later(
    chatops: SlackWorld, extra: dict[str, Any], detail: str
) -> None:
    assert_error(chatops.press("dr_ack", "inc-1", **extra), 400, "invalid_json", detail)
    assert queued(chatops) == 0


# --- the workspace: SLACK_TEAM_IDS ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["status", "show inc-20261125-aaaa", "ack inc-20261125-aaaa"])
def test_a_command_from_another_workspace_is_refused_before_anything_is_read_or_queued(
    chatops: SlackWorld, text: str
) -> None:
    store_incident(chatops)
    reply = json_body(chatops.command(text, user=ALLOWED, team="T0OTHER"))  # signed with our secret
    said = text_of(reply)
    assert reply["response_type"] == "ephemeral"
    assert "does not serve your Slack workspace (T0OTHER)" in said and "nothing was done" in said
    assert "inc-20261125-aaaa" not in said and "cosmosdb" not in said
    assert queued(chatops) == 0 and chatops.operations.calls == []
    audit = [e.text for e in chatops.app.store.timeline("inc-20261125-aaaa") if e.kind.startswith("slack")]
    assert audit == []  # and its incident's timeline is not the place for a stranger's attempt


def test_a_press_by_a_user_of_another_organisation_is_not_queued(
    chatops: SlackWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack Connect: the channel is ours (team T111), the presser's home workspace is not."""
    incident_id = store_incident(chatops)
    with caplog.at_level(logging.INFO, logger="shared.chatops.desk"):
        answer = chatops.press("dr_ack", incident_id, user=ALLOWED, user_team_id="T0PARTNER")
    assert answer.status_code == 200 and queued(chatops) == 0
    assert chatops.work() == 0 and chatops.operations.calls == []
    assert "workspace T0PARTNER is not in SLACK_TEAM_IDS" in caplog.text


def test_our_own_workspace_is_served(chatops: SlackWorld) -> None:
    incident_id = store_incident(chatops)
    chatops.press("dr_ack", incident_id, user=ALLOWED, user_team_id=WORKSPACE)
    assert chatops.work() == 1 and [c[0] for c in chatops.operations.calls] == ["acknowledge"]


# --- read-only commands: anyone, at once --------------------------------------------------------


def test_status_is_answered_at_once_in_the_channel(chatops: SlackWorld) -> None:
    store_incident(chatops)
    reply = json_body(chatops.command("status", user=STRANGER))
    assert reply["response_type"] == "in_channel"
    assert "inc-20261125-aaaa" in text_of(reply) and "cosmosdb · ikea" in text_of(reply)
    assert len(reply["blocks"]) <= 50
    assert queued(chatops) == 0


def test_incidents_and_show_read_the_store_and_show_writes_the_timeline(chatops: SlackWorld) -> None:
    incident_id = store_incident(chatops)
    assert "Looking" in text_of(
        json_body(chatops.command("incidents ikea sev2", user=STRANGER, trigger="t-ikea"))
    )
    chatops.command("incidents hm", user=STRANGER, trigger="t-hm")
    assert chatops.work() == 2  # a list is answered from the queue: it may take longer than 3 s
    [listed] = chatops.replies("t-ikea")
    assert incident_id in text_of(listed) and listed["response_type"] == "ephemeral"
    assert incident_id not in text_of(chatops.replies("t-hm")[0])
    shown = json_body(chatops.command(f"show {incident_id}", user=STRANGER))
    assert "opened by test" in text_of(shown)
    audit = [e for e in chatops.app.store.timeline(incident_id) if e.kind == "slack-read"]
    assert len(audit) == 1 and STRANGER in audit[0].text and f"/dr show {incident_id}" in audit[0].text
    # Who looked is counted, not shown as the incident's story: readers push out no real line.
    for n in range(5):
        chatops.command(f"show {incident_id}", user=f"UREADER{n}")
    again = text_of(json_body(chatops.command(f"show {incident_id}", user=STRANGER)))
    assert "opened by test" in again and "Looked at 7 times from Slack" in again  # this one too
    assert "UREADER" not in again
    missing = json_body(chatops.command("show inc-nope", user=STRANGER))
    assert "no incident inc-nope" in text_of(missing)


def test_an_unknown_command_answers_the_nearest_commands_help(chatops: SlackWorld) -> None:
    reply = json_body(chatops.command("rolback shop/web"))
    assert "did you mean `rollback`?" in text_of(
        reply
    ) and "/dr rollback [&lt;cluster&gt;:]&lt;namespace&gt;" in text_of(reply)
    assert queued(chatops) == 0 and chatops.operations.calls == []


# --- changing commands: acknowledged at once, done from the queue --------------------------------


def test_a_stranger_is_refused_politely_and_told_who_may(chatops: SlackWorld) -> None:
    incident_id = store_incident(chatops)
    ack = json_body(chatops.command(f"ack {incident_id}", user=STRANGER, trigger="t-stranger"))
    assert "Working on" in text_of(ack)
    assert chatops.work() == 1
    [refusal] = chatops.replies("t-stranger")
    said = text_of(refusal)
    assert "Sorry, you may not run `/dr ack`" in said
    assert (
        f"<@{ALLOWED}>" in said and "<!subteam^S0RESPONDERS>" in said and "on call now in PagerDuty" in said
    )
    assert chatops.operations.calls == []
    audit = [e.text for e in chatops.app.store.timeline(incident_id) if e.kind == "slack"]
    assert any("refused" in line and STRANGER in line for line in audit)


@pytest.mark.parametrize("user", [ALLOWED, IN_GROUP, ON_CALL])
def test_the_allowlist_a_group_member_and_the_person_on_call_may_acknowledge(
    chatops: SlackWorld, user: str
) -> None:
    incident_id = store_incident(chatops)
    chatops.command(f"ack {incident_id}", user=user, trigger="t-ack")
    chatops.work()
    [done] = chatops.replies("t-ack")
    assert done["response_type"] == "in_channel" and "acknowledged" in text_of(done)
    assert [c[0] for c in chatops.operations.calls] == ["acknowledge"]
    assert user in chatops.operations.calls[0][2]
    if user == ON_CALL:  # matched by the e-mail users.info gave, case aside
        assert chatops.slack.requests_to("users.info") and chatops.pagerduty.requests_to("/oncalls")
    if user == ALLOWED:  # the allowlist needs no call at all
        assert not chatops.slack.requests_to("users.info") and not chatops.pagerduty.requests_to("/oncalls")


def test_lookups_are_cached_across_commands(chatops: SlackWorld) -> None:
    store_incident(chatops)  # tenant ikea
    for n in range(3):
        chatops.command("pause ikea storm", user=ON_CALL, trigger=f"t-{n}")
    chatops.work()
    assert len(chatops.slack.requests_to("users.info")) == 1
    assert len(chatops.slack.requests_to("usergroups.users.list")) == 1
    assert [c[0] for c in chatops.operations.calls] == ["pause"] * 3


def test_a_pause_naming_no_known_tenant_pauses_nothing_and_says_how(chatops: SlackWorld) -> None:
    store_incident(chatops)  # tenant ikea
    chatops.command("pause failover drill", user=ALLOWED, trigger="t-drill")
    chatops.command("pause ikea storm", user=ALLOWED, trigger="t-ikea")
    chatops.command("pause * failover drill", user=ALLOWED, trigger="t-all")
    chatops.command("pause zara", user=ALLOWED, trigger="t-zara")  # a tenant alone is taken as said
    chatops.work()
    [refused] = chatops.replies("t-drill")
    assert "nothing was paused" in text_of(refused) and "/dr pause * failover drill" in text_of(refused)
    assert "/dr pause failover`" in text_of(refused)
    assert [c[:2] for c in chatops.operations.calls] == [("pause", "ikea"), ("pause", ""), ("pause", "zara")]


def test_with_pagerduty_down_a_stranger_is_refused_at_once_and_the_channel_is_not_held_up(
    chatops: SlackWorld,
) -> None:
    chatops.pagerduty.set_down()
    chatops.slack.fail_next("/api/usergroups.users.list", 10, status=500)  # Slack's groups too
    for n in range(3):
        chatops.command("pause * drill", user=STRANGER, trigger=f"t-stranger-{n}")
    chatops.command("pause * drill", user=ALLOWED, trigger="t-allowed")
    assert chatops.work() == 4  # each once: a refusal is an answer, not a retry
    refused = text_of(chatops.replies("t-stranger-0")[0])
    assert "could not check whether you are one of them" in refused and "PagerDuty" in refused
    assert "user group S0RESPONDERS" in refused
    # A source that failed is not asked again for a while: one try, not one per press.
    assert len(chatops.pagerduty.requests_to("/services/PSVC1")) == 1
    assert [c[:2] for c in chatops.operations.calls] == [("pause", "")]  # the allowlist is unaffected
    assert queued(chatops) == 0


def test_a_failing_group_lookup_does_not_skip_the_on_call_check(chatops: SlackWorld) -> None:
    chatops.slack.fail_next("/api/usergroups.users.list", 10, status=500)
    chatops.command("pause * storm", user=ON_CALL, trigger="t-on-call")
    chatops.work()
    assert [c[:2] for c in chatops.operations.calls] == [("pause", "")]


def test_a_retried_command_is_done_once(chatops: SlackWorld) -> None:
    incident_id = store_incident(chatops)
    first = chatops.command(f"resolve {incident_id}", trigger="t-resolve")
    again = chatops.command(f"resolve {incident_id}", trigger="t-resolve", retry=True)
    assert first.status_code == again.status_code == 200
    assert chatops.work() == 1
    assert [c[0] for c in chatops.operations.calls] == ["resolve"]


def test_a_refused_operation_says_why(chatops: SlackWorld) -> None:
    chatops.command("approve act-missing", trigger="t-approve")
    chatops.work()
    [reply] = chatops.replies("t-approve")
    assert "There is no action act-missing." in text_of(reply) and reply["response_type"] == "ephemeral"


def test_failover_shows_a_confirmation_and_no_confirm_when_refused(chatops: SlackWorld) -> None:
    chatops.command("failover redis cache-a", trigger="t-fo")
    chatops.command(f"failover redis {REFUSED_TARGET}", trigger="t-locked")
    chatops.work()
    [confirmation] = chatops.replies("t-fo")
    buttons = [
        e["action_id"] for b in confirmation["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == ["dr_confirm", "dr_cancel"] and "target: cache-a" in text_of(confirmation)
    [locked] = chatops.replies("t-locked")
    buttons = [e["action_id"] for b in locked["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["dr_cancel"] and "already running" in text_of(locked)
    assert [c[0] for c in chatops.operations.calls] == ["preview", "preview"]


# --- buttons ------------------------------------------------------------------------------------


def test_confirm_pressed_twice_is_one_action_and_the_second_press_says_what_happened(
    chatops: SlackWorld,
) -> None:
    from shared.chatops.operations import ActionRequest

    value = ActionRequest("failover", "cache-a", "redis").to_value()
    assert chatops.press("dr_confirm", value, trigger="t-1", name="first").status_code == 200
    assert (
        chatops.press(
            "dr_confirm", value, user=IN_GROUP, trigger="t-2", action_ts="2.2", name="second"
        ).status_code
        == 200
    )
    assert chatops.work() == 2
    confirms = [c for c in chatops.operations.calls if c[0] == "confirm"]
    assert len(confirms) == 2 and confirms[0][3] == confirms[1][3]  # one request id
    assert len(chatops.operations.actions) == 1
    [first] = chatops.replies("first")
    [second] = chatops.replies("second")
    assert (
        first["replace_original"] is True and "Confirmed by" in text_of(first) and "act-1" in text_of(first)
    )
    assert "Already confirmed by" in text_of(second) and ALLOWED in text_of(second)


def test_ack_pressed_twice_is_applied_once_and_the_card_keeps_resolve(chatops: SlackWorld) -> None:
    incident_id = store_incident(chatops)
    card = {
        "ts": "111.222",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*SEV2* Cosmos"}},
            {
                "type": "actions",
                "block_id": "b",
                "elements": [
                    {"type": "button", "action_id": "dr_ack", "value": incident_id},
                    {"type": "button", "action_id": "dr_resolve", "value": incident_id},
                ],
            },
        ],
    }
    chatops.press("dr_ack", incident_id, trigger="t-1", name="first", message=card)
    chatops.press(
        "dr_ack", incident_id, user=ON_CALL, trigger="t-2", action_ts="3.3", name="second", message=card
    )
    chatops.work()
    [first] = chatops.replies("first")
    [second] = chatops.replies("second")
    assert first["replace_original"] is True and "Acknowledged by <@W0ALLOWED>" in text_of(first)
    kept = [e["action_id"] for b in first["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert kept == ["dr_resolve"]
    assert "already acknowledged" in text_of(second) and "replace_original" not in second
    assert [c[0] for c in chatops.operations.calls] == ["acknowledge", "acknowledge"]
    assert (
        sum(1 for e in chatops.app.store.timeline(incident_id) if e.kind == "slack") == 2
    )  # both presses audited


def test_a_press_slack_delivers_twice_is_queued_once(chatops: SlackWorld) -> None:
    chatops.operations.add_waiting_action("act-9")
    chatops.press("dr_approve", "act-9", trigger="t-1")
    chatops.press("dr_approve", "act-9", trigger="t-1")
    assert chatops.work() == 1
    assert [c[0] for c in chatops.operations.calls] == ["approve"]


def test_a_stranger_pressing_deny_is_refused_and_cancel_needs_nobody(chatops: SlackWorld) -> None:
    chatops.operations.add_waiting_action("act-9")
    chatops.press("dr_deny", "act-9", user=STRANGER, trigger="t-1", name="deny")
    chatops.press("dr_cancel", '{"verb":"restart"}', user=STRANGER, trigger="t-2", name="cancel")
    chatops.work()
    assert "Sorry, you may not deny actions" in text_of(chatops.replies("deny")[0])
    cancelled = chatops.replies("cancel")[0]
    assert cancelled["replace_original"] is True and "Cancelled by <@W0STRANGER>" in text_of(cancelled)
    assert chatops.operations.calls == []


def test_cancel_after_confirm_is_too_late_and_leaves_the_message_and_confirm_after_cancel_is_refused(
    chatops: SlackWorld,
) -> None:
    from shared.chatops.operations import ActionRequest

    value = ActionRequest("failover", "cache-a", "redis").to_value()
    later = ActionRequest("failover", "cache-b", "redis").to_value()
    chatops.press("dr_confirm", value, trigger="t-1", name="confirmed", message={"ts": "1.1", "blocks": []})
    chatops.press(
        "dr_cancel", value, user=IN_GROUP, trigger="t-2", name="late", message={"ts": "1.1", "blocks": []}
    )
    chatops.press(
        "dr_cancel",
        later,
        user=IN_GROUP,
        trigger="t-3",
        name="cancelled",
        message={"ts": "2.2", "blocks": []},
    )
    # The cancelled value replayed under another message is the same confirmation: still refused.
    chatops.press("dr_confirm", later, trigger="t-4", name="after", message={"ts": "3.3", "blocks": []})
    chatops.work()

    [late] = chatops.replies("late")
    assert "Too late: act-1 is planned" in text_of(late) and "replace_original" not in late
    [cancelled] = chatops.replies("cancelled")
    assert cancelled["replace_original"] is True and "Cancelled by <@W0INGROUP>" in text_of(cancelled)
    [after] = chatops.replies("after")
    assert "Not done: it was cancelled by primary-owner (W0INGROUP) via slack" in text_of(after)
    assert "replace_original" not in after and len(chatops.operations.actions) == 1
    calls = [(c[0], c[3]) for c in chatops.operations.calls]
    assert (
        calls[0][1] == calls[1][1] and calls[2][1] == calls[3][1] != calls[0][1]
    )  # one request id a confirmation, whichever message carries it


def test_acknowledge_says_which_waiting_actions_it_also_approves(chatops: SlackWorld) -> None:
    incident_id = store_incident(chatops)
    chatops.operations.add_waiting_action("act-9", incident_id)
    chatops.press("dr_ack", incident_id, trigger="t-1", name="ack")
    chatops.work()
    [acked] = chatops.replies("ack")
    assert "Acknowledged by <@W0ALLOWED>" in text_of(acked)
    assert "this also approves `act-9` (redis.failover on cache-a)" in text_of(acked)


# --- replies that fail, and what is never written down ------------------------------------------


def test_a_reply_slack_refuses_for_now_is_posted_again_from_the_queue(chatops: SlackWorld) -> None:
    chatops.slack.fail_next("/actions/*", 1, status=503)
    chatops.command("pause * maintenance", trigger="t-pause")
    chatops.work()
    assert chatops.replies("t-pause") == []
    chatops.clock.advance(minutes=1)
    assert chatops.work() == 1
    [reply] = chatops.replies("t-pause")
    assert "paused" in text_of(reply)
    assert [c[0] for c in chatops.operations.calls] == ["pause"]  # the pause itself was not repeated


def tried_at(chatops: SlackWorld, minutes: float, up_after: float | None = None) -> list[float]:
    """Work the chatops queue for `minutes` of the fake clock, every 5 s, with Slack's response_urls
    down (until `up_after`); the minutes at which a reply was posted."""
    start, tries = chatops.clock(), 0
    times: list[float] = []
    while (elapsed := (chatops.clock() - start).total_seconds() / 60) < minutes:
        chatops.slack.set_down(up_after is None or elapsed < up_after)
        chatops.work()
        if (now := len(chatops.slack.requests_to("/actions/*"))) > tries:
            tries, times = now, [*times, elapsed]
        chatops.clock.advance(seconds=5)
    chatops.slack.set_down(False)
    return times


def test_a_reply_is_retried_through_the_response_urls_thirty_minutes(chatops: SlackWorld) -> None:
    chatops.command("resume", trigger="t-late")
    times = tried_at(chatops, 40, up_after=25)
    assert 25 <= times[-1] < 30 and "resumed" in text_of(chatops.replies("t-late")[0])
    assert chatops.app.queue.dead_letters(CHATOPS_QUEUE, 10) == []
    assert [c[0] for c in chatops.operations.calls] == ["resume"]  # the resume itself was not repeated


def test_a_reply_tried_again_stays_in_its_channels_session(chatops: SlackWorld, data_dir: Path) -> None:
    chatops.command("resume", trigger="t-session")
    tried_at(chatops, 3)  # the first tries fail; each next one is queued in turn
    with sqlite3.connect(data_dir / "queue.sqlite3") as queue:
        rows = queue.execute(
            "SELECT session_id FROM queue_messages WHERE queue = ? AND message_id LIKE '%-reply-%'",
            (CHATOPS_QUEUE,),
        ).fetchall()
    channel = parse_qs(command_body("resume", "https://hooks.slack.com/x").decode())["channel_id"][0]
    assert rows and {session for (session,) in rows} == {channel}


def test_a_reply_that_never_gets_through_is_dead_lettered_with_a_reason(chatops: SlackWorld) -> None:
    chatops.command("resume", trigger="t-resume")
    times = tried_at(chatops, 60)
    assert 28 <= times[-1] < 30  # the last try as the response_url's life ends, none after
    assert 8 <= len(times) <= 20  # backing off to minutes apart, not hammering Slack
    dead = chatops.app.queue.dead_letters(CHATOPS_QUEUE, 10)
    assert len(dead) == 1 and dead[0].reason == "ReplyNotDelivered"


def test_no_response_url_signature_or_secret_reaches_the_log(
    chatops: SlackWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    incident_id = store_incident(chatops)
    chatops.slack.fail_next("/actions/*", 1, status=503)
    chatops.command(f"ack {incident_id}", user=ON_CALL, trigger="t-log")
    chatops.press("dr_resolve", incident_id, trigger="t-2", name="press")
    chatops.work()
    logged = caplog.text
    assert "slack:" in logged  # the audit lines are there
    assert (
        "/actions/" not in logged and "secret-" not in logged and SECRET not in logged and "v0=" not in logged
    )


FORGED = (
    "\n2026-11-25 10:00:00 CRITICAL shared.chatops.desk slack: /dr failover cosmos prod \u2192 done\x00\u202e"
)


def unseen(text: str) -> list[str]:
    """The characters of a text that would break or disguise a line: control, format, surrogate."""
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs")]


def test_slack_text_reaches_the_log_and_the_timeline_on_one_plain_line(
    chatops: SlackWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    incident_id = store_incident(chatops)
    chatops.command(f"rolback shop/web{FORGED}", trigger="t-forged")  # not a command
    chatops.command(f"ack {incident_id}", user_name=f"ada{FORGED}", trigger="t-named")
    chatops.press("dr_deny", f"act-missing{FORGED}", trigger="t-value", name="value")
    chatops.press("dr_resolve", incident_id, trigger="t-who", name="who", user_name=f"grace{FORGED}")
    chatops.work()
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("shared.chatops")]
    assert any("rolback" in m for m in logged) and any("act-missing" in m for m in logged)
    assert [m for m in logged if unseen(m)] == []
    lines = [e.text for e in chatops.app.store.timeline(incident_id) if e.kind == "slack"]
    assert any("ada" in line for line in lines) and any("grace" in line for line in lines)
    assert [line for line in lines if unseen(line)] == []


def test_the_manifest_points_slack_at_the_registered_routes_with_the_scopes_they_need() -> None:
    import yaml

    from tests.conftest import ROOT
    from tests.functions.harness import registered

    manifest = yaml.safe_load((ROOT / "infra" / "slack-app-manifest.yaml").read_text())
    routes = {
        str(f.get_trigger().route): str(f.get_trigger().auth_level).lower()
        for f in registered()
        if f.get_trigger().type == "httpTrigger"
    }
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/dr"
    for url in (command["url"], manifest["settings"]["interactivity"]["request_url"]):
        route = url.split("/api/", 1)[1]
        assert route in routes and "anonymous" in routes[route]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "users:read", "users:read.email", "usergroups:read"} <= scopes


def test_on_service_bus_a_retried_command_carries_the_same_message_id_for_duplicate_detection(
    chatops: SlackWorld,
) -> None:
    """The embedded queue drops the resend itself (above); Service Bus drops it by the same message id
    (the chatops queue has requires_duplicate_detection, as tests/infra checks), so the two are alike."""
    from shared.adapters.service_bus import ServiceBusQueue
    from tests.functions.test_service_bus_triggers import NoAdministration
    from tests.stubs.service_bus import Namespace

    namespace = Namespace()
    chatops.app.__dict__["queue"] = ServiceBusQueue(namespace, NoAdministration(), clock=chatops.clock)
    chatops.app.__dict__.pop("desk", None)
    chatops.command("resume ikea", trigger="t-sb")
    chatops.command("resume ikea", trigger="t-sb", retry=True)
    sent = namespace.stored(CHATOPS_QUEUE)
    assert (
        len(sent) == 2 and len({m.message_id for m in sent}) == 1 and len({m.session_id for m in sent}) == 1
    )
    # On Service Bus the status's counts and dead letters are remote calls that grow with the
    # backlog: /dr status is answered from the queue there, not within Slack's 3 seconds.
    assert "Looking" in text_of(json_body(chatops.command("status", trigger="t-sb-status")))
    assert len(namespace.stored(CHATOPS_QUEUE)) == 3


def test_on_service_bus_a_command_gives_up_on_the_queue_before_slack_does_and_says_so(
    chatops: SlackWorld,
) -> None:
    from azure.servicebus import exceptions as sb

    from shared.adapters.service_bus import SEND_TIMEOUT_SECONDS, ServiceBusQueue
    from shared.chatops.desk import QUEUE_SEND_SECONDS
    from tests.functions.test_service_bus_triggers import NoAdministration
    from tests.stubs.service_bus import Namespace

    namespace = Namespace()
    chatops.app.__dict__["queue"] = ServiceBusQueue(namespace, NoAdministration(), clock=chatops.clock)
    chatops.app.__dict__.pop("desk", None)
    chatops.command("resume ikea", trigger="t-sb-1")
    chatops.press("dr_ack", "inc-20261125-0001", trigger="t-sb-2")
    assert namespace.senders[CHATOPS_QUEUE].timeouts == [QUEUE_SEND_SECONDS] * 2
    # The SDK's own time-out (its retries inside) is what Slack would otherwise outwait.
    namespace.failures = [sb.OperationTimeoutError(message="send timed out")]
    reply = json_body(chatops.command("resume zara", trigger="t-sb-3"))
    assert reply["response_type"] == "ephemeral" and "try again shortly" in reply["text"]
    assert len(namespace.stored(CHATOPS_QUEUE)) == 2, "the timed-out command is not queued"
    # Everything else sends with the default: an incident's effects can wait for Service Bus.
    chatops.app.queue.send([QueueMessage(queue="pages", body=b"{}", message_id="m-1", session_id="inc-1")])
    assert namespace.senders["pages"].timeouts == [SEND_TIMEOUT_SECONDS]
    assert namespace.sender_requests == [CHATOPS_QUEUE, "pages"], "one sender per queue, shared"
