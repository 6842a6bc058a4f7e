"""`dr smoke` (the real command, as a process) against `dr serve` paging and carding through the stubs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import DR, KEY, Responder
from tests.stubs import PagerDutyEventsStub, Recorded, Reply, SlackStub, StubServer

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
SLACK_TOKEN = "xoxb-smoke-bot-token"
CHANNEL = "C0INCIDENTS"
INCIDENT = re.compile(r"^incident (inc-\S+)$", re.MULTILINE)


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyEventsStub]:
    with PagerDutyEventsStub() as stub:
        yield stub


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub(token=SLACK_TOKEN) as stub:
        yield stub


@pytest.fixture
def responder(
    start_responder: Callable[..., Responder], pagerduty: PagerDutyEventsStub, slack: SlackStub
) -> Responder:
    """dr serve paging the PagerDuty stub and carding in the Slack stub; retries in milliseconds."""
    return start_responder(
        env={
            **pagerduty.client_env(),
            "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "PAGERDUTY_EVENTS_URL": pagerduty.url,
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "SLACK_API_URL": slack.url,
            "SLACK_CHANNEL": CHANNEL,
            "DR_RETRY_BASE_SECONDS": "0.05",
            "DR_RETRY_MAX_SECONDS": "0.2",
        }
    )


def smoke(
    url: str, key: str, cwd: Path, *options: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run `dr smoke`; (exit code, stdout, stderr)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DR_FUNCTION_KEY", "SSL_CERT_FILE")}
    done = subprocess.run(
        [str(DR), "smoke", "--url", url, "--key", key, *options],
        capture_output=True,
        timeout=90,
        cwd=cwd,
        env={**clean, **(env or {})},
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def marks(out: str) -> dict[str, str]:
    """Each checklist line's step name and mark."""
    found = re.findall(r"^  ([✓✗-]) ([a-z ]+?) +\d+\.\d\d s", out, re.MULTILINE)
    return {name: mark for mark, name in found}


def test_smoke_passes_with_one_page_and_one_card_for_its_test_alert(
    responder: Responder, pagerduty: PagerDutyEventsStub, slack: SlackStub, tmp_path: Path
) -> None:
    code, out, err = smoke(responder.base.removesuffix("/api"), KEY, tmp_path, "--timeout", "30")
    assert code == 0, out + err
    assert set(marks(out).values()) == {"✓"} and len(marks(out)) == 8, out
    assert "passed: 8 of 8 steps" in out and KEY not in out + err
    rule = re.search(r"alert rule (dr-smoke-[0-9a-f]{8})", out)
    incident = INCIDENT.search(out)
    assert rule and incident, out
    incident_id = incident.group(1)

    events = [e for e in pagerduty.events if e["dedup_key"] == incident_id]
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert events[0]["routing_key"] == ROUTING_KEY and events[0]["payload"]["severity"] == "error"
    assert rule.group(1) in events[0]["payload"]["summary"] and "dr-smoke" in events[0]["payload"]["source"]

    posts = [r for r in slack.requests_to("chat.postMessage") if not (r.json or {}).get("thread_ts")]
    assert len(posts) == 1 and rule.group(1) in posts[0].json["text"]
    assert slack.wait_until(lambda: "Resolved" in slack.cards(CHANNEL)[0].text)
    assert slack.requests_to("chat.update") and slack.cards(CHANNEL)[0].updates >= 1

    stored = responder.get(f"/incidents/{incident_id}").json()
    assert (stored["status"], stored["severity"], stored["planned_actions"]) == ("resolved", "sev2", [])
    assert (
        stored["resource_id"]
        .lower()
        .startswith("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/dr-smoke/")
    )
    assert responder.get("/actions", incident=incident_id).json()["actions"] == [], "no first response"


def test_json_report_names_the_incident_and_every_step(responder: Responder, tmp_path: Path) -> None:
    code, out, err = smoke(responder.base, KEY, tmp_path, "--timeout", "30", "--json")
    report = json.loads(out)
    assert code == 0 and report["passed"] is True, out + err
    assert [s["status"] for s in report["steps"]] == ["passed"] * 8
    assert report["incident"].startswith("inc-") and report["alert_rule"].startswith("dr-smoke-")
    assert report["url"] == responder.base


def test_a_wrong_key_fails_cleanly_and_sends_nothing(
    responder: Responder, pagerduty: PagerDutyEventsStub, tmp_path: Path
) -> None:
    wrong = "not-the-key-5a1b"
    code, out, err = smoke(responder.base, wrong, tmp_path, "--timeout", "5")
    assert code == 1 and "Traceback" not in out + err
    assert wrong not in out + err, "the key is never printed"
    assert marks(out)["health"] == "✓" and marks(out)["alert accepted"] == "✗"
    assert "the host refused the function key (401" in out and "check --key" in out
    assert {marks(out)[name] for name in ("incident opened", "paged", "resolve accepted")} == {"-"}
    assert responder.get("/incidents").json()["count"] == 0 and pagerduty.events == []


def test_a_pager_that_keeps_failing_shows_a_failed_page_within_the_timeout_and_still_resolves(
    responder: Responder, pagerduty: PagerDutyEventsStub, slack: SlackStub, tmp_path: Path
) -> None:
    pagerduty.set_down(True)  # 503 to every event
    started = time.monotonic()
    code, out, err = smoke(responder.base, KEY, tmp_path, "--timeout", "3")
    assert code == 1 and "Traceback" not in out + err, out + err
    assert time.monotonic() - started < 20, "each wait is bounded by --timeout"
    seen = marks(out)
    assert (seen["paged"], seen["card posted"]) == ("✗", "✓"), out
    assert (seen["resolve accepted"], seen["incident resolved"], seen["page resolved"]) == ("✓", "✓", "-")
    paged = next(line for line in out.splitlines() if "✗ paged" in line)
    assert "not within 3 s" in paged and "pagerduty_state 'triggering:sev2'" in paged, paged
    assert pagerduty.requests_to("/v2/enqueue") and pagerduty.events == []


class _AsyncIntake(StubServer):
    """In front of dr serve: intake as it is becoming, a 202 that names no incident and an incident
    that shows in the list only a few polls later."""

    def __init__(self, target: str, hidden_polls: int = 3) -> None:
        super().__init__()
        self.target = target
        self.hidden_polls = hidden_polls

    def answer(self, request: Recorded) -> Reply:
        if request.path == "/api/incidents" and len(self.requests_to("/api/incidents")) <= self.hidden_polls:
            return Reply(200, {"incidents": [], "count": 0})
        forwarded = httpx.request(
            request.method,
            self.target + request.path.removeprefix("/api"),
            params={k: v[-1] for k, v in request.query.items()},
            headers={k: v for k, v in request.headers.items() if k in ("x-functions-key", "content-type")},
            content=request.body,
        )
        body = forwarded.json() if forwarded.content else None
        if request.path == "/api/alerts" and forwarded.status_code == 202:
            body = {"accepted": body["accepted"], "signals": ["sig-…"]}
        return Reply(forwarded.status_code, body)


def test_the_incident_is_found_when_the_202_names_none_and_it_shows_later(
    responder: Responder, tmp_path: Path
) -> None:
    with _AsyncIntake(responder.base) as intake:
        code, out, err = smoke(intake.base_url, KEY, tmp_path, "--timeout", "30")
        assert code == 0, out + err
        assert "✓ alert accepted      " in out and "202, incident" not in out
        assert len(intake.requests_to("/api/incidents")) > intake.hidden_polls, "found by polling the list"


class _HealthOnly(StubServer):
    """An HTTPS host that is healthy and refuses every key, as a Function App with a wrong key does."""

    def answer(self, request: Recorded) -> Reply:
        if request.path == "/api/health":
            return Reply(200, {"status": "ok", "rules": 1})
        return Reply(401, b"")


def test_https_verifies_the_certificate_by_default(tmp_path: Path) -> None:
    with _HealthOnly(tls=True) as host:
        code, out, err = smoke(host.base_url, KEY, tmp_path, "--timeout", "2")
        assert code == 1 and "Traceback" not in out + err
        assert marks(out)["health"] == "✗" and "TLS certificate not trusted" in out, out

        code, out, err = smoke(host.base_url, KEY, tmp_path, "--timeout", "2", env=host.client_env())
        assert code == 1 and "Traceback" not in out + err
        assert (marks(out)["health"], marks(out)["alert accepted"]) == ("✓", "✗"), out
        assert "refused the function key (401" in out
        assert host.requests_to("/api/alerts")[0].header("x-functions-key") == KEY
