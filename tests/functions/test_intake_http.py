"""POST /api/alerts and POST/OPTIONS /api/eventgrid: the registered functions with real HttpRequests."""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import azure.functions as func
import pytest

from shared.adapters import sqlite_db
from shared.bootstrap import Services
from shared.settings import MAX_BODY_BYTES
from tests.alerts import body, metric_alert
from tests.bad_inputs import ALERTS, EVENTS, BadRequest
from tests.conftest import REFDATA
from tests.functions.harness import (
    ALERT_FILES,
    DELIVERY_FILES,
    EMPTY,
    INCIDENT_EVENTS,
    INFORMATIONAL_ALERTS,
    QUEUES,
    VALIDATION_EVENT,
    VALIDATION_REPLY,
    alert_payload,
    all_signals,
    assert_error,
    event_payload,
    function,
    json_body,
    post,
    registered_names,
    snapshot,
)


def _report(answer: func.HttpResponse, accepted: int) -> dict[str, Any]:
    assert answer.status_code == 202, answer.get_body()
    report = json_body(answer)
    assert set(report) == {
        "accepted",
        "signals",
        "incidents",
        "opened",
        "updated",
        "resolved",
        "informational",
        "duplicates",
    }
    assert report["accepted"] == accepted
    return dict(report)


def assert_store_holds(app: Services, report: dict[str, Any]) -> None:
    """A fresh store holds exactly what the report of its first request says, and the effects are queued."""
    store = app.store
    incidents = store.list_incidents(None, None, 1000)
    assert sorted(i.id for i in incidents) == sorted(report["incidents"])
    assert len(incidents) == report["opened"]
    assert len(store.signals(None, 1000)) == report["informational"]
    for incident in incidents:
        assert incident.status == "open" and incident.signal_count == 1
        assert len(store.signals(incident.id, 10)) == 1
        assert incident.outbox == (), "the intake sent the effects and cleared its outbox"
        assert [e.kind for e in store.timeline(incident.id)][:1] == ["opened"]
    queued = snapshot(app).queued
    assert queued == (
        sum(i.paged for i in incidents),
        len(incidents),  # the default policy notifies on every severity
        sum(len(i.planned_actions) for i in incidents),
    )


def test_every_trigger_family_is_registered() -> None:
    assert registered_names() == {
        "alerts",
        "eventgrid",
        "eventgrid_trigger",
        "health",
        "list_incidents",
        "get_incident",
        "informational_signals",
        "status",
        "list_actions",
        "get_action",
        "decide_action",
        "automation",
        "send_page",
        "send_notification",
        "run_action",
        "fold_signals",
        "sweep_outbox",
        "sweep_actions",
        "pagerduty_webhook",
        "apply_pagerduty_event",
        "slack_commands",
        "slack_interactions",
        "work_chatops",
    }


# --- alerts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALERT_FILES)
def test_reference_alert_is_accepted_and_stored(app: Services, name: str) -> None:
    """Every full Azure Monitor reference payload: 202, and the store holds what the report says."""
    report = _report(post("alerts", (REFDATA / "azure_monitor" / name).read_bytes()), accepted=1)
    if name in INFORMATIONAL_ALERTS:
        assert (report["opened"], report["informational"], report["incidents"]) == (0, 1, [])
    else:
        assert (report["opened"], report["informational"], len(report["incidents"])) == (1, 0, 1)
    assert (report["updated"], report["resolved"], report["duplicates"]) == (0, 0, 0)
    assert_store_holds(app, report)
    (signal,) = all_signals(app)
    assert signal.source == "azure-monitor"


@pytest.mark.parametrize("name", ALERT_FILES)
def test_reference_alert_delivered_twice_is_counted_once(name: str) -> None:
    """Azure Monitor retries a webhook it thinks failed: the second delivery changes nothing."""
    payload = (REFDATA / "azure_monitor" / name).read_bytes()
    _report(post("alerts", payload), accepted=1)
    before = snapshot()
    again = _report(post("alerts", payload), accepted=1)
    assert (again["duplicates"], again["opened"], again["informational"]) == (1, 0, 0)
    assert snapshot() == before


def test_a_sev0_alert_pages_and_its_resolve_resolves(app: Services) -> None:
    """Azure's Sev0 is the DR plan's sev1: paged; its Resolved resolves the incident and the page."""
    opened = _report(post("alerts", body(metric_alert(severity="Sev0"))), accepted=1)
    assert opened["opened"] == 1
    incident = app.store.list_incidents(None, None, 10)[0]
    assert (incident.severity.label, incident.tenant, incident.component, incident.paged) == (
        "sev1",
        "ikea",
        "cosmosdb",
        True,
    )
    resolved = _report(post("alerts", body(metric_alert(severity="Sev0", condition="Resolved"))), accepted=1)
    assert (resolved["resolved"], resolved["incidents"]) == (1, [incident.id])
    assert app.store.list_incidents("resolved", None, 10)[0].id == incident.id
    # trigger then resolve on the pages queue, in order, in the incident's session
    pages = []
    while (received := app.local_queue.receive("pages")) is not None:
        assert received.session_id == incident.id
        pages.append(json.loads(received.body)["event"])
        app.local_queue.complete(received)
    assert pages == ["trigger", "resolve"]


def test_a_sev0_availability_alert_stays_sev1_when_a_sev2_rule_matches(app: Services) -> None:
    """The author's Sev0 is a floor: "elevated errors" (sev2) matching it must not lower the page."""
    alert = metric_alert(severity="Sev0", metric="availabilityResults/availabilityPercentage")
    _report(post("alerts", body(alert)), accepted=1)
    (incident,) = app.store.list_incidents(None, None, 10)
    assert (incident.severity.label, incident.paged) == ("sev1", True)
    assert any("kept sev1: the alert's own severity is a floor" in r for r in incident.reasons)


def test_a_resolved_instance_does_not_resolve_what_another_instance_still_fires(app: Services) -> None:
    """Same rule and resource, alerts A and B fired (one incident); A resolved: B still fires."""
    _report(post("alerts", body(metric_alert(alert_id="inst-a", severity="Sev0"))), accepted=1)
    _report(post("alerts", body(metric_alert(alert_id="inst-b", severity="Sev0"))), accepted=1)
    (incident,) = app.store.list_incidents(None, None, 10)
    partly = _report(
        post("alerts", body(metric_alert(alert_id="inst-a", severity="Sev0", condition="Resolved"))), 1
    )
    assert (partly["resolved"], partly["updated"]) == (0, 1)
    found = app.store.get(incident.id)
    assert found is not None and found.incident.status == "open"
    assert any("1 of 2 instances resolved" in e.text for e in app.store.timeline(incident.id))
    pages = []
    while (received := app.local_queue.receive("pages")) is not None:
        pages.append(json.loads(received.body)["event"])
        app.local_queue.complete(received)
    assert pages == ["trigger"], "the page is not resolved while B fires"
    done = _report(
        post("alerts", body(metric_alert(alert_id="inst-b", severity="Sev0", condition="Resolved"))), 1
    )
    assert done["resolved"] == 1
    assert app.store.list_incidents("resolved", None, 10)[0].id == incident.id


@pytest.mark.parametrize("encoding", ["identity", "IDENTITY", ""])
def test_an_identity_content_encoding_is_accepted(encoding: str) -> None:
    headers = {"Content-Encoding": encoding}
    _report(post("alerts", body(metric_alert(alert_id=f"enc-{encoding}")), headers=headers), 1)


def test_content_type_parameters_and_a_missing_content_type_are_accepted() -> None:
    _report(post("alerts", body(metric_alert(alert_id="a")), "application/json; charset=utf-8"), 1)
    _report(post("alerts", body(metric_alert(alert_id="b")), None), 1)
    _report(post("alerts", b"\xef\xbb\xbf" + body(metric_alert(alert_id="c"))), 1)  # a UTF-8 BOM


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda p: p.update(schemaId="Microsoft.Insights/LogAlert"), "Microsoft.Insights/LogAlert"),
        (lambda p: p.update(schemaId="  "), "not supported"),
    ],
    ids=["non-common log search alert", "blank schemaId"],
)
def test_documented_refused_schemas_answer_422(change: Any, detail: str) -> None:
    """azure_monitor.py: any other schemaId is refused with 422 unsupported_schema."""
    payload = metric_alert()
    change(payload)
    assert_error(post("alerts", body(payload)), 422, "unsupported_schema", detail)
    assert snapshot() == EMPTY


def test_classic_event_alert_is_refused_as_documented() -> None:
    """azure_monitor.py: classic alerts whose conditionType is not Metric are refused."""
    payload = alert_payload("legacy_classic_metric_alert_webhook.json")
    payload["context"]["conditionType"] = "Event"
    assert_error(post("alerts", body(payload)), 422, "unsupported_schema", "'Event'")
    assert snapshot() == EMPTY


def test_json_nested_beyond_the_limit_is_400_not_a_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert_error(post("alerts", deep), 400, "malformed_json", "nested")
    assert_error(post("eventgrid", deep), 400, "malformed_json", "nested")
    assert snapshot() == EMPTY


@pytest.mark.parametrize("route", ["alerts", "eventgrid"])
def test_a_body_of_exactly_1_mib_is_read_and_one_byte_more_is_413(route: str) -> None:
    document = body(metric_alert() if route == "alerts" else event_payload("eg_redis_PatchingCompleted.json"))
    exactly = document + b" " * (MAX_BODY_BYTES - len(document))
    assert post(route, exactly).status_code == 202
    assert_error(post(route, exactly + b" "), 413, "body_too_large", str(MAX_BODY_BYTES + 1))


def _alert_with(field: str, value: Any) -> Any:
    payload = metric_alert()
    payload["data"]["essentials"][field] = value
    return payload


def _event_with(field: str, value: Any) -> Any:
    events = event_payload("eg_redis_PatchingCompleted.json")
    events[0][field] = value
    return events


# "\ud800" is a well-formed JSON escape (RFC 8259 §8.2 leaves lone surrogates to the parser) that
# json.loads accepts, but no Unicode string: it used to fail later, in hashing or SQLite, as a 500.
@pytest.mark.parametrize(
    ("route", "payload"),
    [
        ("alerts", _alert_with("alertRule", "cosmos-errors-\ud800")),
        (
            "alerts",
            _alert_with("alertTargetIDs", ["/subscriptions/1/resourceGroups/rg/providers/A.B/c\ud800/x"]),
        ),
        ("eventgrid", _event_with("eventType", "Microsoft.Cache.Patching\ud800")),
        ("eventgrid", _event_with("eventTime", "2026-11-25T10:00:00Z\ud800")),
    ],
    ids=["alertRule", "alertTargetIDs", "eventType", "eventTime"],
)
def test_a_lone_surrogate_escape_is_refused_without_a_500(route: str, payload: Any) -> None:
    answer = post(route, body(payload))
    assert_error(answer, 400, "malformed_json", "surrogate")
    assert snapshot() == EMPTY


# --- bad requests: the shared table ---------------------------------------------------------


def _send_bad(route: str, case: BadRequest) -> None:
    answer = post(route, case.body, case.content_type, headers=dict(case.headers))
    assert_error(answer, case.status, case.error, case.detail)
    assert snapshot() == EMPTY, "a refused request stores and queues nothing"


@pytest.mark.parametrize("case", ALERTS, ids=[c.name for c in ALERTS])
def test_bad_alert_request_is_refused_and_stores_nothing(app: Services, case: BadRequest) -> None:
    _send_bad("alerts", case)
    assert app.store.list_incidents(None, None, 10) == []
    assert app.store.signals(None, 10) == []
    assert [app.local_queue.active_count(q) for q in QUEUES] == [0, 0, 0]


@pytest.mark.parametrize("case", EVENTS, ids=[c.name for c in EVENTS])
def test_bad_event_grid_request_is_refused_and_stores_nothing(app: Services, case: BadRequest) -> None:
    _send_bad("eventgrid", case)
    assert app.store.list_incidents(None, None, 10) == []
    assert app.store.signals(None, 10) == []
    assert [app.local_queue.active_count(q) for q in QUEUES] == [0, 0, 0]


def test_one_bad_event_in_a_batch_refuses_the_whole_batch() -> None:
    """Event Grid redelivers a failed batch whole, so none of it may be half-stored."""
    good = event_payload("eg_redis_PatchingCompleted.json")
    batch = [*copy.deepcopy(good), {**good[0], "id": "second", "eventTime": None}]
    assert_error(post("eventgrid", body(batch)), 422, "missing_field", "[1].eventTime")
    assert snapshot() == EMPTY


# --- Event Grid webhook -----------------------------------------------------------------------


def _events(name: str) -> list[Any]:
    payload = event_payload(name)
    return list(payload) if isinstance(payload, list) else [payload]


@pytest.mark.parametrize("name", DELIVERY_FILES)
def test_reference_event_is_accepted_and_stored(app: Services, name: str) -> None:
    """Every Event Grid reference delivery, either schema, as it was published: 202 and stored."""
    report = _report(post("eventgrid", (REFDATA / "event_grid" / name).read_bytes()), accepted=1)
    if name in INCIDENT_EVENTS:
        assert (report["opened"], report["informational"]) == (1, 0)
    else:
        assert (report["opened"], report["informational"], report["incidents"]) == (0, 1, [])
    assert_store_holds(app, report)
    again = _report(post("eventgrid", (REFDATA / "event_grid" / name).read_bytes()), accepted=1)
    assert (again["duplicates"], again["opened"], again["informational"]) == (1, 0, 0)


def test_subscription_validation_answers_the_code_and_stores_nothing() -> None:
    answer = post("eventgrid", (REFDATA / "event_grid" / VALIDATION_EVENT).read_bytes())
    assert answer.status_code == 200
    assert json_body(answer) == event_payload(VALIDATION_REPLY)
    assert snapshot() == EMPTY


def test_validation_event_without_a_code_is_422() -> None:
    event = _events(VALIDATION_EVENT)
    del event[0]["data"]["validationCode"]
    assert_error(post("eventgrid", body(event)), 422, "missing_field", "[0].data.validationCode")
    assert snapshot() == EMPTY


CLOUD_EVENT_FILES = sorted(n for n in DELIVERY_FILES if n.startswith(("ce_", "docs_ce_")))


@pytest.mark.parametrize("name", CLOUD_EVENT_FILES)
def test_single_cloud_event_with_its_own_content_type(app: Services, name: str) -> None:
    (event,) = _events(name)
    assert event["specversion"] == "1.0"
    report = _report(post("eventgrid", body(event), "application/cloudevents+json; charset=utf-8"), 1)
    assert_store_holds(app, report)
    (signal,) = all_signals(app)
    assert signal.schema == "CloudEvents"


def _unique(events: list[Any], name: str) -> list[Any]:
    """The samples reuse ids (the Redis ones share one); Event Grid promises source + id unique."""
    return [{**event, "id": f"{name}#{n}"} for n, event in enumerate(events)]


def test_cloud_events_batch_with_its_own_content_type(app: Services) -> None:
    batch = [event for name in CLOUD_EVENT_FILES for event in _unique(_events(name), name)]
    report = _report(post("eventgrid", body(batch), "application/cloudevents-batch+json"), len(batch))
    assert report["informational"] == len(batch) == len(CLOUD_EVENT_FILES)
    assert_store_holds(app, report)


def test_event_grid_batch_of_every_reference_event(app: Services) -> None:
    names = [name for name in DELIVERY_FILES if name not in CLOUD_EVENT_FILES]
    batch = [event for name in names for event in _unique(_events(name), name)]
    report = _report(post("eventgrid", body(batch)), len(batch))
    assert (report["opened"], report["informational"]) == (
        len(INCIDENT_EVENTS),
        len(batch) - len(INCIDENT_EVENTS),
    )
    assert_store_holds(app, report)


def test_a_validation_event_inside_a_batch_is_refused_and_nothing_is_stored() -> None:
    """Event Grid sends a handshake alone: in a batch, answering it would drop the other events unsaid."""
    batch = [*_events("eg_redis_PatchingCompleted.json"), *_events(VALIDATION_EVENT)]
    answer = post("eventgrid", body(batch))
    assert_error(answer, 422, "mixed_batch", "[1] is a Microsoft.EventGrid.SubscriptionValidationEvent")
    assert "validationResponse" not in json_body(answer)
    assert snapshot() == EMPTY


# --- CloudEvents abuse protection (OPTIONS) ---------------------------------------------------


def _options(headers: dict[str, str]) -> func.HttpResponse:
    request = func.HttpRequest(method="OPTIONS", url="/api/eventgrid", body=b"", headers=headers)
    return function("eventgrid")(request)


def test_options_handshake_echoes_the_origin() -> None:
    answer = _options({"WebHook-Request-Origin": "eventemitter.example.com"})
    assert answer.status_code == 200
    assert answer.headers["WebHook-Allowed-Origin"] == "eventemitter.example.com"
    assert answer.headers["WebHook-Allowed-Rate"] == "*"
    assert snapshot() == EMPTY


def test_options_header_name_is_case_insensitive() -> None:
    answer = _options({"webhook-request-origin": "eventgrid.azure.net"})
    assert answer.status_code == 200
    assert answer.headers["webhook-allowed-origin"] == "eventgrid.azure.net"


@pytest.mark.parametrize("headers", [{}, {"WebHook-Request-Origin": ""}], ids=["missing", "empty"])
def test_options_without_an_origin_is_400_json(headers: dict[str, str]) -> None:
    assert_error(_options(headers), 400, "missing_header", "WebHook-Request-Origin")
    assert snapshot() == EMPTY


def test_a_store_held_locked_past_the_busy_timeout_answers_503_busy_and_stores_nothing(
    app: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer (a stalled `dr serve` on the same data dir) holds the queue's file: the sender
    is told to retry, as for contention, not given a 500."""
    monkeypatch.setattr(sqlite_db, "BUSY_TIMEOUT_MS", 50)
    holding, let_go = threading.Event(), threading.Event()

    def hold() -> None:
        with app.local_queue._db.write():
            holding.set()
            let_go.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        answer = post("alerts", body(metric_alert()))
    finally:
        let_go.set()
        holder.join(10)
    assert_error(answer, 503, "busy", "retry shortly")
    assert app.local_queue.active_count("intake") == 0 and all_signals(app) == []


def test_an_alert_when_the_queue_file_is_full_is_503_not_500(app: Services) -> None:
    """Azure Monitor retries a 5xx; a 503 says it is the store, and the log says which file."""
    database = app.queue._db  # type: ignore[attr-defined]
    pages = database.read().execute("PRAGMA page_count").fetchone()[0]
    database.connection().execute(f"PRAGMA max_page_count = {pages}")
    alert = metric_alert()
    alert["data"]["essentials"]["description"] = "x" * 50_000  # more than the file's pages can take
    try:
        response = post("alerts", body(alert))
    finally:
        database.connection().execute(f"PRAGMA max_page_count = {pages * 1000}")

    assert response.status_code == 503, response.get_body()
    problem = json.loads(response.get_body())
    assert problem["error"] == "unavailable" and "full" in problem["detail"]
