"""send_page, send_notification and run_action with real Service Bus messages taken off the queues."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.bootstrap import Services
from shared.domain.actions import action_id
from shared.domain.effects import Effect
from shared.errors import PoisonMessage
from shared.localhost.runtime import service_bus_message
from shared.paging.page_sync import desired_page_state
from shared.ports import QueueMessage, Received
from tests.conftest import ROOT
from tests.factories import FakeClock
from tests.functions.harness import (
    dry_run,
    function,
    json_body,
    post,
    raw_message,
)

COSMOS = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-amicis-ikea-dev"
    "/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-amicis-ikea-dev"
)
TITLE = "cosmos-resource-health: cosmos-amicis-ikea-dev Unavailable"
REASONS = [
    "Azure Monitor severity Sev1 → sev2 (baseline)",
    "Cosmos DB cosmos-amicis-ikea-dev is Unavailable (Resource Health): database unavailable, RTO 5 min"
    " → sev1 (rule cosmosdb-unavailable)",
]
TRIGGERS = {"pages": "send_page", "notifications": "send_notification", "actions": "run_action"}


def _post_sample(name: str) -> dict[str, Any]:
    answer = post("alerts", (ROOT / "samples" / name).read_bytes())
    assert answer.status_code == 202, answer.get_body()
    return dict(json_body(answer))


def _deliver(app: Services, queue: str) -> Received:
    """Receive the next message as the Service Bus trigger would, run its function, complete it."""
    received = app.local_queue.receive(queue)
    assert received is not None, f"nothing on {queue}"
    function(TRIGGERS[queue])(service_bus_message(received))
    app.local_queue.complete(received)
    return received


@pytest.fixture
def incident_id(app: Services) -> str:
    """The sample Cosmos DB outage: a sev1 with a page, a card and a suggested failover queued."""
    (opened,) = _post_sample("cosmos-unavailable.json")["incidents"]
    return str(opened)


def test_the_queued_messages_are_the_incident_effects(app: Services, incident_id: str) -> None:
    bodies = {}
    for queue in TRIGGERS:
        received = app.local_queue.receive(queue)
        assert received is not None
        assert received.application_properties["incident_id"] == incident_id
        bodies[queue] = json.loads(received.body)
        resource_session = "resource-" + hashlib.sha256(COSMOS.lower().encode()).hexdigest()[:32]
        expected_session = resource_session if queue == "actions" else incident_id
        assert received.session_id == expected_session, (
            "actions serialize per resource, the rest per incident"
        )
    at = "2026-11-25T10:00:00.000Z"
    base = {"incident_id": incident_id, "severity": "sev1", "at": at, "detail": "", "attempt": 0, "held": 0}
    plain = {**base, "target": "", "mode": "", "rule": "", "params": ""}
    assert bodies == {
        "pages": {**plain, "kind": "page", "event": "trigger"},
        "notifications": {**plain, "kind": "notify", "event": "opened"},
        "actions": {
            **base,
            "kind": "act",
            "event": "cosmosdb.failover",
            "target": COSMOS,
            "mode": "approve",
            "rule": "cosmosdb-unavailable",
            "params": "",
        },
    }


def test_send_page_records_the_pagerduty_trigger(
    app: Services, data_dir: Path, clock: FakeClock, incident_id: str
) -> None:
    clock.advance(seconds=5)
    _deliver(app, "pages")
    assert dry_run(data_dir, "pagerduty") == [
        {
            "service": "pagerduty",
            "operation": "trigger",
            "payload": {
                "event_action": "trigger",
                "dedup_key": incident_id,
                "payload": {
                    "summary": f"[SEV1] {TITLE}",
                    "severity": "critical",
                    "source": COSMOS,
                    "component": "cosmosdb",
                    "group": "ikea",
                    "class": "Resource Health",
                    "custom_details": {
                        "incident": incident_id,
                        "reasons": REASONS,
                        "signal_count": 1,
                        "environment": "dev",
                        "opened_at": "2026-11-25T10:00:00.000Z",
                        "planned_actions": ["cosmosdb.failover (approve)"],
                        # The dry-run records what the real pager sends, the runbook section too.
                        "runbook": "runbook.md#cosmos-db",
                    },
                },
                "links": [
                    {
                        "href": "https://portal.azure.com/#resource" + COSMOS,
                        "text": "cosmos-amicis-ikea-dev in the Azure portal",
                    }
                ],
            },
        }
    ]
    assert dry_run(data_dir, "slack") == []
    last = app.store.timeline(incident_id)[-1]
    assert (last.at, last.kind, last.text) == (
        "2026-11-25T10:00:05.000Z",
        "page",
        f"PagerDuty (dry-run): would trigger critical for {incident_id}",
    )
    found = app.store.get(incident_id)
    assert found is not None and str(found.incident.pagerduty_state) == "triggered:sev1"


def test_send_notification_posts_the_card_once_then_updates_it(
    app: Services, data_dir: Path, clock: FakeClock, incident_id: str
) -> None:
    clock.advance(seconds=7)
    _deliver(app, "notifications")
    (posted,) = dry_run(data_dir, "slack")
    assert posted["operation"] == "chat.postMessage"
    message = posted["payload"]
    assert (message["channel"], message["text"], message["thread_ts"]) == (
        "#dry-run",
        f"[SEV1] {TITLE} (Open)",
        None,
    )
    assert message["blocks"][0]["text"]["text"] == f":red_circle: SEV1 · {TITLE}"
    assert dry_run(data_dir, "pagerduty") == []
    last = app.store.timeline(incident_id)[-1]
    assert (last.at, last.kind, last.text) == (
        "2026-11-25T10:00:07.000Z",
        "notify",
        "Slack: card posted in #dry-run",
    )
    found = app.store.get(incident_id)
    assert found is not None and found.incident.slack_ts == message["ts"]
    # the page refreshes the card: an update of the same message, never a second card
    _deliver(app, "pages")
    _deliver(app, "notifications")
    update = dry_run(data_dir, "slack")[-1]
    assert (update["operation"], update["payload"]["ts"]) == ("chat.update", message["ts"])


def test_run_action_records_the_action_on_the_timeline(
    app: Services, data_dir: Path, incident_id: str
) -> None:
    _deliver(app, "actions")
    lines = [e.text for e in app.store.timeline(incident_id) if e.kind == "action"]
    planned = "planned (approve) by automation (rule cosmosdb-unavailable)"
    assert lines[0] == f"cosmosdb.failover on {COSMOS}: {planned}"
    assert dry_run(data_dir, "pagerduty") == dry_run(data_dir, "slack") == []


def _drain(app: Services) -> None:
    """Settle what is left on the queues without running it."""
    for queue in TRIGGERS:
        while (received := app.local_queue.receive(queue)) is not None:
            app.local_queue.complete(received)


def test_resolving_the_outage_resolves_the_page(app: Services, data_dir: Path, incident_id: str) -> None:
    _deliver(app, "pages")
    _deliver(app, "notifications")
    _drain(app)
    report = _post_sample("cosmos-available.json")
    assert (report["resolved"], report["incidents"]) == (1, [incident_id])
    _deliver(app, "pages")
    assert [r["payload"] for r in dry_run(data_dir, "pagerduty")][1:] == [
        {"event_action": "resolve", "dedup_key": incident_id}
    ]
    _deliver(app, "notifications")
    *_, update, reply = dry_run(data_dir, "slack")
    assert update["operation"] == "chat.update" and "(Resolved by azure-monitor" in update["payload"]["text"]
    assert reply["payload"]["thread_ts"] == update["payload"]["ts"]
    recovered = TITLE.replace("Unavailable", "Available")
    assert reply["payload"]["text"] == f"Resolved by azure-monitor: {recovered}"
    kinds = [e.kind for e in app.store.timeline(incident_id)]
    assert kinds[-2:] == ["resolved", "page"]


POISON = [
    b"",
    b"not json",
    b"\xff\xfe",
    b"null",
    b"42",
    b"[]",
    b'"kind incident_id event severity at"',
    b'{"kind": "page", "incident_id": "x", "event": "e", "severity": "sev1", "at": "t", "attempt": "many"}',
    b"{}",
    b'{"kind": "page"}',
    b'{"kind": "email", "incident_id": "x", "event": "e", "severity": "sev1", "at": "t"}',
    b'{"kind": "page", "incident_id": "inc-unknown", "event": "trigger", "severity": "sev1", "at": "t"}',
]


@pytest.mark.parametrize("queue", list(TRIGGERS))
@pytest.mark.parametrize("body", POISON, ids=[b.decode("latin-1")[:30] for b in POISON])
def test_a_malformed_message_raises_poison(
    app: Services, data_dir: Path, incident_id: str, queue: str, body: bytes
) -> None:
    """Raising makes Service Bus redeliver, then dead-letter; nothing is recorded meanwhile."""
    before = app.store.timeline(incident_id)
    with pytest.raises(PoisonMessage):
        function(TRIGGERS[queue])(raw_message(body))
    assert app.store.timeline(incident_id) == before
    assert dry_run(data_dir, "pagerduty") == dry_run(data_dir, "slack") == []


@pytest.mark.parametrize(
    ("params", "why"),
    [("{oops", "not JSON"), ("[1, 2]", "must be a JSON object, not list"), ('"zone"', "not str")],
)
def test_an_act_whose_params_are_not_a_json_object_is_poison(
    app: Services, incident_id: str, params: str, why: str
) -> None:
    """Dead-lettered at once with the cause (no redelivery mends it), and no action is recorded."""
    act = {
        "kind": "act",
        "incident_id": incident_id,
        "event": "cosmosdb.failover",
        "severity": "sev1",
        "at": "2026-11-25T10:00:00.000Z",
        "target": COSMOS,
        "mode": "approve",
        "params": params,
    }
    before = app.store.timeline(incident_id)
    with pytest.raises(PoisonMessage, match=why):
        function("run_action")(raw_message(json.dumps(act).encode()))
    assert app.store.timeline(incident_id) == before
    assert app.action_store.get_action(action_id(incident_id, "cosmosdb.failover", COSMOS, params)) is None


def _host_loop(app: Services, queue: str, handler: Callable[..., Any]) -> int:
    """What the Functions host does: run the function, complete on success, abandon on an exception."""
    failures = 0
    while (received := app.local_queue.receive(queue)) is not None:
        try:
            handler(service_bus_message(received))
        except PoisonMessage:
            failures += 1
            app.local_queue.abandon(received)
        else:
            app.local_queue.complete(received)
    return failures


def test_a_poison_message_is_dead_lettered_after_max_deliveries(app: Services) -> None:
    app.local_queue.send([QueueMessage(queue="pages", body=b"{oops", message_id="bad-1", session_id="s")])
    assert _host_loop(app, "pages", function("send_page")) == 3  # DR_QUEUE_MAX_DELIVERY_COUNT
    (dead,) = app.local_queue.dead_letters("pages")
    assert (dead.message_id, dead.reason, dead.body) == ("bad-1", "MaxDeliveryCountExceeded", b"{oops")


# --- properties: any body either does its one job or is poison, never something in between ----

WORKER_PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
EFFECT_KEYS = ("kind", "incident_id", "event", "severity", "at", "target", "mode")


@st.composite
def effect_like(draw: st.DrawFn, incident_id: str) -> dict[str, Any]:
    """An effect message, with any field missing, mistyped, unknown or right."""
    right = {
        "kind": st.sampled_from(["page", "notify", "act"]),
        "incident_id": st.just(incident_id),
        "event": st.sampled_from(["trigger", "resolve", "opened", "cosmosdb.failover"]),
    }
    message = {}
    for key in EFFECT_KEYS:
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        message[key] = draw(right.get(key, st.text(max_size=12)) | SCALARS)
    return message


def _recorded(app: Services, data_dir: Path, incident_id: str) -> tuple[int, int, int]:
    return (
        len(app.store.timeline(incident_id)),
        len(dry_run(data_dir, "pagerduty")),
        len(dry_run(data_dir, "slack")),
    )


@pytest.mark.parametrize("queue", list(TRIGGERS))
@WORKER_PROPERTY
@given(body=st.binary(max_size=500))
def test_any_bytes_are_poison(
    app: Services, data_dir: Path, incident_id: str, queue: str, body: bytes
) -> None:
    before = _recorded(app, data_dir, incident_id)
    with pytest.raises(PoisonMessage):
        function(TRIGGERS[queue])(raw_message(body))
    assert _recorded(app, data_dir, incident_id) == before


@WORKER_PROPERTY
@given(data=st.data())
def test_an_effect_like_message_syncs_the_incident_or_is_poison(
    app: Services, data_dir: Path, incident_id: str, data: st.DataObject
) -> None:
    """Pages and cards are synchronised, not replayed: a second delivery changes nothing more."""
    message = data.draw(effect_like(incident_id))
    queue = data.draw(st.sampled_from(list(TRIGGERS)))
    before = _recorded(app, data_dir, incident_id)
    deliver = function(TRIGGERS[queue])
    try:
        deliver(raw_message(json.dumps(message).encode()))
    except PoisonMessage:
        assert _recorded(app, data_dir, incident_id) == before
        return
    found = app.store.get(incident_id)
    assert found is not None
    kind = str(message["kind"])
    if kind == "page":
        assert found.incident.pagerduty_state == desired_page_state(found.incident, app.policy)
        assert str(found.incident.pagerduty_state) == "triggered:sev1"
        once = _recorded(app, data_dir, incident_id)
        deliver(raw_message(json.dumps(message).encode()))
        assert _recorded(app, data_dir, incident_id)[1] == once[1], "no second PagerDuty call"
    elif kind == "notify":
        assert found.incident.slack_ts, "the card exists"
        posts = [r for r in dry_run(data_dir, "slack") if r["operation"] == "chat.postMessage"]
        assert len([p for p in posts if p["payload"]["thread_ts"] is None]) == 1, "one card, never two"
    else:
        # An action is one record however often its message comes (an earlier example may have made
        # it): it is stored, and delivering its message again adds nothing to the timeline.
        act = Effect.from_dict(message)
        assert app.action_store.get_action(action_id(act.incident_id, act.event, act.target, act.params))
        once = _recorded(app, data_dir, incident_id)
        deliver(raw_message(json.dumps(message).encode()))
        assert _recorded(app, data_dir, incident_id)[0] == once[0], "the same action, not a second one"


def test_deeply_nested_json_is_poison_too() -> None:
    with pytest.raises(PoisonMessage):
        function("send_page")(raw_message(b"[" * 100_000 + b"]" * 100_000))
