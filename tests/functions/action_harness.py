"""The action pipeline's test harness: the app with the pretend failover, its queues driven by the clock.

The registered functions are called as the host calls them, on the real SQLite store and embedded
queue, with the test's clock; the action is the pretend failover of `tests.action_kinds`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import azure.functions as func

from shared import bootstrap
from shared.actions.kind import ActionKind
from shared.actions.registry import Registry
from shared.bootstrap import Services
from shared.domain.actions import ActionRecord
from shared.localhost.runtime import service_bus_message
from shared.settings import Settings
from tests.action_kinds import PretendCache, PretendFailover, policy_with
from tests.alerts import body, metric_alert
from tests.factories import FakeClock, resource
from tests.fakes import FakeChat, FakePager
from tests.functions.harness import JSON, function, json_body, post

TRIGGERS = {
    "actions": "run_action",
    "pages": "send_page",
    "notifications": "send_notification",
    "pagerduty": "apply_pagerduty_event",
}
CACHE = resource("redis", "redis-amicis-ikea-prod", "rg-amicis-ikea-prod")
OTHER_CACHE = resource("redis", "redis-amicis-hm-prod", "rg-amicis-hm-prod")
AUTO = '{ action = "test.failover", mode = "auto", settle_minutes = 5 }'
WEBHOOK_SECRET = "test-webhook-secret-0123456789"


def services_for(
    data_dir: Path,
    clock: FakeClock,
    world: PretendCache,
    pager: FakePager,
    chat: FakeChat,
    action: str,
    extra: str = "",
    env: Mapping[str, str] | None = None,
    limits: Mapping[str, int] | None = None,
    kinds: Sequence[ActionKind] | None = None,
    severity: str = "sev2",
) -> Services:
    """The app with one rule acting on `redis-down*` alerts; `limits` replace [guardrails] values.

    `kinds`: the actions it knows (real kinds on their vendors' stubs); the pretend failover if None.
    `severity`: the rule's (sev3 opens incidents that page only when an action escalates).
    """
    policy = policy_with(data_dir.parent / "policy.toml", action, "", extra, severity)
    if limits:
        text = policy.read_text()
        for key, value in limits.items():
            text, found = re.subn(rf"^{key} = \d+$", f"{key} = {value}", text, count=1, flags=re.M)
            assert found == 1, f"[guardrails] has no {key}"
        policy.write_text(text)
    settings = {
        "DR_DATA_DIR": str(data_dir),
        "DR_POLICY_FILE": str(policy),
        "DR_ACTION_CHECK_SECONDS": "1",
        "DR_RETRY_BASE_SECONDS": "0.01",
        "DR_RETRY_MAX_SECONDS": "0.01",
        "DR_QUEUE_MAX_DELIVERY_COUNT": "3",
        "SLACK_CHANNEL": "C-INCIDENTS",
        "PAGERDUTY_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        **(env or {}),
    }
    registry = Registry(list(kinds) if kinds is not None else [PretendFailover(world)])
    return Services(Settings.from_env(settings), clock=clock, registry=registry, pager=pager, chat=chat)


def use(app: Services) -> Services:
    """Make `app` the one the registered functions reach."""
    bootstrap.reset(app)
    return app


def deliver(app: Services, queue: str, errors: list[Exception] | None = None) -> int:
    """Deliver what is due on one queue now; a function that raises has its message abandoned."""
    delivered = 0
    while (received := app.local_queue.receive(queue)) is not None:
        delivered += 1
        try:
            function(TRIGGERS[queue])(service_bus_message(received))
        except Exception as e:  # the host abandons the message: it comes again
            if errors is None:
                raise
            errors.append(e)
            app.local_queue.abandon(received)
            continue
        app.local_queue.complete(received)
    return delivered


def run_queues(
    app: Services,
    seconds: float = 600,
    until: Callable[[], bool] | None = None,
    errors: list[Exception] | None = None,
) -> None:
    """Deliver whatever comes due, moving the clock a second at a time, for up to `seconds`
    (or until `until()` holds after a round)."""
    assert isinstance(app.clock, FakeClock)
    for _ in range(int(seconds)):
        for queue in TRIGGERS:
            deliver(app, queue, errors)
        if until is not None and until():
            return
        if all(app.local_queue.next_due(q) is None for q in TRIGGERS):
            return
        app.clock.advance(seconds=1)


def alert(
    target: str = CACHE,
    condition: str = "Fired",
    fired: str | None = None,
    alert_id: str = "1",
    dimensions: list[dict[str, str]] | None = None,
    rule: str = "redis-down",
) -> bytes:
    """A Sev2 `redis-down` metric alert on the cache."""
    payload = metric_alert(
        rule,
        target,
        alert_id=f"00000000-0000-0000-0000-{int(alert_id):012d}",
        condition=condition,
        severity="Sev2",
    )
    if fired:
        payload["data"]["essentials"]["firedDateTime"] = fired
    if dimensions is not None:
        payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = dimensions
    return body(payload)


def open_incident(target: str = CACHE, alert_id: str = "1", **changes: Any) -> str:
    """POST the alert; the id of the incident it opened."""
    answer = post("alerts", alert(target, alert_id=alert_id, **changes))
    assert answer.status_code == 202, answer.get_body()
    return str(json_body(answer)["incidents"][0])


def now_iso(clock: FakeClock) -> str:
    """The clock as Azure Monitor writes a time."""
    return clock().isoformat().replace("+00:00", "Z")


def actions_of(app: Services, incident_id: str) -> list[ActionRecord]:
    """The incident's action records, newest first."""
    return app.action_store.list_actions(None, incident_id, 100)


def only_action(app: Services, incident_id: str) -> ActionRecord:
    """The incident's one action record."""
    [record] = actions_of(app, incident_id)
    return record


def timeline(app: Services, incident_id: str) -> list[str]:
    """The incident's timeline texts, oldest first."""
    return [e.text for e in app.store.timeline(incident_id)]


def triggers(pager: FakePager) -> list[str]:
    """The dedup keys of every trigger the pager took."""
    return [event.dedup_key for event, _ in pager.sent if event.action == "trigger"]


def call(
    name: str,
    method: str,
    url: str,
    payload: Any = None,
    raw: bytes | None = None,
    route_params: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> func.HttpResponse:
    """Call an HTTP function with a real HttpRequest (a JSON body, or raw bytes)."""
    data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
    request = func.HttpRequest(
        method=method,
        url=url,
        body=data,
        headers={"Content-Type": JSON},
        params=dict(params or {}),
        route_params=dict(route_params or {}),
    )
    response: func.HttpResponse = function(name)(request)
    return response


def decide(action_id: str, verb: str, payload: Any = None, raw: bytes | None = None) -> func.HttpResponse:
    """POST /api/actions/{id}/approve|deny."""
    return call(
        "decide_action",
        "POST",
        f"/api/actions/{action_id}/{verb}",
        payload,
        raw,
        {"action_id": action_id, "decision": verb},
    )


def automation(payload: Any = None, raw: bytes | None = None) -> func.HttpResponse:
    """POST /api/automation (GET when there is no body)."""
    if payload is None and raw is None:
        return call("automation", "GET", "/api/automation")
    return call("automation", "POST", "/api/automation", payload, raw)
