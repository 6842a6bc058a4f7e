"""Authorisation against Slack's users.info and usergroups.users.list (the stub, through slack_sdk) and
PagerDuty's on-call (the stub, through the pagerduty client)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.adapters.pagerduty_rest import PagerDutyRest
from shared.adapters.slack_people import SlackPeople
from shared.chatops.authorisation import EMAIL_TTL_SECONDS, GROUP_TTL_SECONDS, Authorisation
from tests.stubs import PagerDutyRestStub, Recorded, SlackStub

TOKEN = "xoxb-people"


def arg(request: Recorded, name: str) -> str:
    """An argument as slack_sdk sent it (a form field; a query parameter on a GET)."""
    values = (request.form or {}).get(name) or request.query.get(name) or [""]
    return values[-1]


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub(token=TOKEN) as stub:
        stub.add_user("W1", "Ada@Example.com", "ada")
        stub.add_user("W2", None, "a-bot")
        stub.add_group("S1", ["W3"])
        yield stub


@pytest.fixture
def pagerduty(monkeypatch: pytest.MonkeyPatch) -> Iterator[PagerDutyRestStub]:
    with PagerDutyRestStub(token="pd") as stub:
        assert stub.ca_file
        monkeypatch.setenv("SSL_CERT_FILE", stub.ca_file)
        stub.add_service("PSVC1", escalation_policy_id="EP1")
        stub.add_on_call("EP1", "PU1", "Ada Lovelace", "ada@example.com")
        yield stub


def test_users_info_gives_the_email_lower_cased_and_none_for_strangers(slack: SlackStub) -> None:
    people = SlackPeople(TOKEN, slack.url)
    assert people.email("W1") == "ada@example.com"
    assert people.email("W2") is None
    assert people.email("W404") is None  # user_not_found
    [sent] = slack.requests_to("users.info")[:1]
    assert arg(sent, "user") == "W1" and sent.header("Authorization") == f"Bearer {TOKEN}"


def test_usergroups_users_list_gives_the_members(slack: SlackStub) -> None:
    people = SlackPeople(TOKEN, slack.url)
    assert people.group_members("S1") == frozenset({"W3"})
    assert people.group_members("S404") == frozenset()  # no_such_subteam
    assert arg(slack.requests_to("usergroups.users.list")[0], "usergroup") == "S1"


def test_on_call_is_matched_by_email_and_lookups_are_cached_until_they_expire(
    slack: SlackStub, pagerduty: PagerDutyRestStub
) -> None:
    now = [0.0]
    auth = Authorisation(
        ["W9"],
        ["S1"],
        SlackPeople(TOKEN, slack.url),
        PagerDutyRest("pd", pagerduty.url, "PSVC1", None),
        lambda: now[0],
    )
    verdict = auth.check("W1")
    assert verdict.allowed and "Ada Lovelace" in verdict.because
    assert auth.check("W3").allowed and "S1" in auth.check("W3").because
    assert not auth.check("W2").allowed
    assert auth.check("W9").because == "on SLACK_ALLOWED_USERS"
    assert len(slack.requests_to("usergroups.users.list")) == 1
    assert len([r for r in slack.requests_to("users.info") if arg(r, "user") == "W1"]) == 1
    now[0] += max(EMAIL_TTL_SECONDS, GROUP_TTL_SECONDS) + 1
    auth.check("W1")
    assert len(slack.requests_to("usergroups.users.list")) == 2
    assert len([r for r in slack.requests_to("users.info") if arg(r, "user") == "W1"]) == 2


def test_a_token_slack_refuses_is_a_refusal_that_says_why_not_a_crash(slack: SlackStub) -> None:
    auth = Authorisation([], ["S1"], SlackPeople("xoxb-revoked", slack.url), None)
    verdict = auth.check("W3")
    assert not verdict.allowed and "invalid_auth" in verdict.because
    assert "xoxb-revoked" not in verdict.because


def test_who_may_names_the_allowlist_the_groups_and_on_call(slack: SlackStub) -> None:
    people = SlackPeople(TOKEN, slack.url)
    assert (
        Authorisation(["W1"], ["S1"], people, None).who_may()
        == "Only <@W1>; members of <!subteam^S1> may do this."
    )
    assert "SLACK_ALLOWED_USERS" in Authorisation([], [], None, None).who_may()
