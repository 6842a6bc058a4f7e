"""The operator's view end to end: `dr status`, `dr dead-letters` and `dr replay` against `dr serve`
with Slack unreachable, then back; and `dr serve` reading local.settings.json under the environment."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.action_kinds import policy_without_actions
from tests.conftest import ROOT
from tests.e2e.conftest import DR, Responder
from tests.stubs import SlackStub

SLACK_TOKEN = "xoxb-operator-view-token"
CHANNEL = "C0INCIDENTS"


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub(token=SLACK_TOKEN, channels={"incidents": CHANNEL}, tls=True) as stub:
        yield stub


def dr(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """An operator's command against the responder's data dir, from another process."""
    return subprocess.run(
        [str(DR), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=data_dir.parent,
        check=False,
    )


def status_of(responder: Responder) -> dict[str, Any]:
    done = dr("status", "--json", data_dir=responder.data_dir)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _settled(responder: Responder) -> bool:
    """Nothing left to deliver: every card either went out or was dead-lettered."""
    queues = responder.get("/status").json()["queues"]
    return all(q["ready"] + q["scheduled"] + q["in_flight"] == 0 for q in queues.values())


def test_cards_dead_lettered_while_slack_is_unreachable_are_replayed_once_it_is_back(
    start_responder: Callable[..., Responder], slack: SlackStub, tmp_path: Path
) -> None:
    responder = start_responder(
        env={
            # Only the incident's own cards (opened, paged): an action's thread lines would add more.
            "DR_POLICY_FILE": str(policy_without_actions(tmp_path / "policy.toml")),
            **slack.client_env(),
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "SLACK_API_URL": slack.url,
            "SLACK_CHANNEL": CHANNEL,
            # A card gives up after 12 tries: in milliseconds here, so it is dead-lettered in seconds.
            "DR_RETRY_BASE_SECONDS": "0.05",
            "DR_RETRY_MAX_SECONDS": "0.1",
        }
    )
    slack.set_down(True, close=True)  # connections cut without an answer: unreachable
    answer = responder.post("/alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
    (incident_id,) = responder.incidents_of(answer)
    responder.wait_for(lambda: _settled(responder), "every card tried 12 times", seconds=60)
    assert slack.cards() == [] and len(slack.requests_to("chat.postMessage")) >= 24

    # dr status: the incident with its budgets, and the two cards (opened, paged) dead-lettered.
    status = status_of(responder)
    assert status["queues"]["notifications"]["dead_lettered"] == 2
    assert status["dead_letters"]["total"] == 2
    dead = status["dead_letters"]["newest"]
    assert {d["summary"] for d in dead} == {"notify opened", "notify paged-triggered:sev1"}
    for letter in dead:
        assert (letter["queue"], letter["reason"], letter["incident_id"]) == (
            "notifications",
            "MaxAttemptsExceeded",
            incident_id,
        )
        assert "Slack chat.postMessage: unreachable" in letter["description"]
        assert "gave up after 12 tries" in letter["description"]
    (group,) = status["incidents"]["groups"]
    assert (group["component"], group["tenant"], group["incidents"][0]["id"]) == (
        "cosmosdb",
        "ikea",
        incident_id,
    )
    assert group["incidents"][0]["rto"]["target_minutes"] == 5
    shown = dr("status", data_dir=responder.data_dir)
    assert shown.returncode == 0, shown.stderr
    assert "MaxAttemptsExceeded" in shown.stdout and incident_id in shown.stdout
    assert all(len(line) <= 100 for line in shown.stdout.splitlines())

    # dr dead-letters: each with its id, reason and description.
    listed = dr("dead-letters", data_dir=responder.data_dir)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("2 dead letters, newest first")
    for letter in dead:
        assert f"  id {letter['message_id']}  ({letter['summary']})" in listed.stdout
    assert listed.stdout.count("MaxAttemptsExceeded") == 2 and "unreachable" in listed.stdout
    as_json = json.loads(
        dr("dead-letters", "--queue", "notifications", "--json", data_dir=responder.data_dir).stdout
    )
    assert as_json["count"] == 2
    assert (
        json.loads(dr("dead-letters", "--queue", "pages", "--json", data_dir=responder.data_dir).stdout)[
            "count"
        ]
        == 0
    )

    # Slack is back: replay the card that opened the incident. It appears, once.
    slack.set_down(False)
    opened = next(d for d in dead if d["summary"] == "notify opened")
    replayed = dr("replay", opened["message_id"], data_dir=responder.data_dir)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith(
        f"replayed notifications message {opened['message_id']} (notify opened) as "
    )
    assert slack.wait_until(lambda: len(slack.cards(CHANNEL)) == 1)
    again = dr("replay", opened["message_id"], data_dir=responder.data_dir)
    assert again.returncode == 1 and "no dead letter with message id" in again.stderr, "never replayed twice"

    # The other card updates the same message rather than posting a second one.
    paged = next(d for d in dead if d["summary"] != "notify opened")
    assert dr("replay", paged["message_id"], data_dir=responder.data_dir).returncode == 0
    assert slack.wait_until(lambda: slack.cards(CHANNEL)[0].updates >= 1)
    responder.wait_for(lambda: _settled(responder), "the replays delivered")
    assert len(slack.cards(CHANNEL)) == 1, "the card appears once"
    after = status_of(responder)
    assert after["dead_letters"]["total"] == 0 and after["queues"]["notifications"]["dead_lettered"] == 0
    timeline = [e["text"] for e in responder.get(f"/incidents/{incident_id}").json()["timeline"]]
    replay_lines = [t for t in timeline if t.startswith("Replayed dead-lettered notify")]
    assert len(replay_lines) == 2 and all(t.endswith("by dr replay") for t in replay_lines)
    assert f"Slack: card posted in {CHANNEL}" in timeline


def _signed(secret: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(
        {"event": {"id": "E-ping", "event_type": "pagey.ping", "occurred_at": "2026-11-25T10:00:00Z"}}
    )
    signature = "v1=" + hmac.new(secret.encode(), raw.encode(), hashlib.sha256).hexdigest()
    return raw.encode(), {"X-PagerDuty-Signature": signature, "X-Webhook-Id": f"w-{secret}"}


def test_serve_reads_local_settings_under_the_environment_and_says_where_each_came_from(
    start_responder: Callable[..., Responder], tmp_path: Path
) -> None:
    workdir = tmp_path / "app"
    workdir.mkdir()
    (workdir / "local.settings.json").write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {
                    "FUNCTIONS_WORKER_RUNTIME": "python",
                    "SLACK_CHANNEL": "C0FROMFILE",
                    "PAGERDUTY_WEBHOOK_SECRETS": "file-secret",
                    "DR_RETRY_MAX_SECONDS": "9",
                },
            }
        )
    )
    responder = start_responder(env={"PAGERDUTY_WEBHOOK_SECRETS": "env-secret"}, cwd=workdir)
    banner = responder.log.read_text()
    for source in (
        "    DR_DATA_DIR                --data-dir",
        "    DR_FUNCTION_KEY            --function-key",
        "    DR_RETRY_MAX_SECONDS       local.settings.json",
        "    PAGERDUTY_WEBHOOK_SECRETS  environment",
        "    SLACK_CHANNEL              local.settings.json",
    ):
        assert source in banner.splitlines(), f"{source!r} not in\n{banner}"
    assert "C0FROMFILE" not in banner and "secret" not in banner.replace("SECRETS", ""), "never a value"

    # The environment's secret is the one in force; the file's lost.
    raw, headers = _signed("env-secret")
    assert responder.post("/pagerduty", raw, **headers).status_code == 202
    raw, headers = _signed("file-secret")
    assert responder.post("/pagerduty", raw, **headers).status_code == 401
    # The file's channel is: the dry-run card goes there.
    responder.post("/alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
    cards = responder.data_dir / "dry-run" / "slack.jsonl"
    responder.wait_for(cards.exists, "a dry-run card")
    assert json.loads(cards.read_text().splitlines()[0])["payload"]["channel"] == "C0FROMFILE"
