"""The Function App with Slack wired to local stubs, and Slack's requests made as Slack makes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from shared import bootstrap
from shared.bootstrap import Services
from shared.domain.effects import CHATOPS_QUEUE
from shared.localhost.runtime import service_bus_message
from shared.settings import Settings
from tests.factories import FakeClock
from tests.fake_operations import FakeOperations
from tests.functions.harness import function
from tests.slack_requests import SECRET, command_body, interaction_body, signed_headers
from tests.stubs import PagerDutyRestStub, SlackStub

BOT_TOKEN = "xoxb-slack-edge-test"
PD_TOKEN = "pd-slack-edge-test"
ALLOWED = "W0ALLOWED"  # on SLACK_ALLOWED_USERS
IN_GROUP = "W0INGROUP"  # in the allowed user group
ON_CALL = "W0ONCALL"  # on call in PagerDuty, matched by e-mail
STRANGER = "W0STRANGER"  # none of these
WORKSPACE = "T111"  # on SLACK_TEAM_IDS: the workspace of Bolt's refdata requests
SIGNING_EXAMPLE_WORKSPACE = "T1DC2JH3J"  # on it too: the workspace of Slack's signed example
GROUP = "S0RESPONDERS"


@dataclass
class SlackWorld:
    """The app, its stubs and its fake Operations."""

    app: Services
    slack: SlackStub
    pagerduty: PagerDutyRestStub
    operations: FakeOperations
    clock: FakeClock

    def command(
        self,
        text: str,
        user: str = ALLOWED,
        trigger: str = "",
        retry: bool = False,
        team: str = "",
        user_name: str = "",
    ) -> func.HttpResponse:
        """POST /api/slack/commands, signed now."""
        url = self.slack.response_url(trigger or text.replace(" ", "-")[:30] or "help")
        body = command_body(
            text,
            url,
            user_id=user,
            trigger_id=trigger or f"trig-{text}-{user}",
            team_id=team,
            user_name=user_name,
        )
        headers = signed_headers(body, int(self.clock().timestamp()))
        if retry:
            headers["X-Slack-Retry-Num"] = "1"
        return post_form("slack/commands", body, headers, "slack_commands")

    def press(
        self,
        action_id: str,
        value: str,
        user: str = ALLOWED,
        trigger: str = "t-1",
        name: str = "press",
        **extra: Any,
    ) -> func.HttpResponse:
        """POST /api/slack/interactions, signed now."""
        body = interaction_body(
            action_id, value, self.slack.response_url(name), user_id=user, trigger_id=trigger, **extra
        )
        return post_form(
            "slack/interactions",
            body,
            signed_headers(body, int(self.clock().timestamp())),
            "slack_interactions",
        )

    def work(self) -> int:
        """Deliver what is due on the chatops queue to its trigger, as the host does; how many."""
        queue, done = self.app.local_queue, 0
        while (received := queue.receive(CHATOPS_QUEUE)) is not None:
            function("work_chatops")(service_bus_message(received))
            queue.complete(received)
            done += 1
        return done

    def replies(self, name: str) -> list[dict[str, Any]]:
        """What was posted to one response_url."""
        return self.slack.responses(name)


def post_form(route: str, body: bytes, headers: dict[str, str], name: str) -> func.HttpResponse:
    """A real HttpRequest to the registered function."""
    request = func.HttpRequest(method="POST", url=f"/api/{route}", body=body, headers=headers)
    response: func.HttpResponse = function(name)(request)
    return response


def text_of(reply: dict[str, Any]) -> str:
    """Everything a reply says, for assertions."""
    return json.dumps(reply, ensure_ascii=False)


@pytest.fixture
def chatops(data_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackWorld]:
    """The app with a signing secret, an allowlist, a group, PagerDuty's on-call, and FakeOperations."""
    with SlackStub(token=BOT_TOKEN) as slack, PagerDutyRestStub(token=PD_TOKEN) as pd:
        assert pd.ca_file
        monkeypatch.setenv("SSL_CERT_FILE", pd.ca_file)
        pd.add_service("PSVC1", escalation_policy_id="EP1")
        pd.add_on_call("EP1", "PU1", "Ada Lovelace", "ada@example.com")
        slack.add_user(ON_CALL, "Ada@Example.com", "ada")
        slack.add_user(STRANGER, "stranger@example.com", "stranger")
        slack.add_user(IN_GROUP, "grace@example.com", "grace")
        slack.add_group(GROUP, [IN_GROUP])
        settings = Settings.from_env(
            {
                "DR_DATA_DIR": str(data_dir),
                "DR_QUEUE_MAX_DELIVERY_COUNT": "3",
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_ALLOWED_USERS": ALLOWED,
                "SLACK_ALLOWED_GROUPS": GROUP,
                "SLACK_TEAM_IDS": f"{WORKSPACE},{SIGNING_EXAMPLE_WORKSPACE}",
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_API_URL": slack.url,
                "PAGERDUTY_API_TOKEN": PD_TOKEN,
                "PAGERDUTY_API_URL": pd.url,
                "PAGERDUTY_SERVICE_ID": "PSVC1",
            }
        )
        app = Services(settings, clock=clock)
        operations = FakeOperations(
            clock=clock, lookup=lambda i: v.incident if (v := app.store.get(i)) else None
        )
        app.__dict__["operations"] = operations  # what slack-ops' Services.operations will build
        bootstrap.reset(app)
        yield SlackWorld(app, slack, pd, operations, clock)
        bootstrap.reset()
