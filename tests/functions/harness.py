"""Calling the registered functions the way the Functions host does, and reading what they left behind."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import azure.functions as func
from azure.functions.servicebus import ServiceBusMessage

import function_app
from shared.adapters.sqlite_queue import SqliteQueue
from shared.bootstrap import Services, services
from shared.domain.signals import Signal
from shared.intake.pipeline import IntakeReport
from shared.localhost.runtime import service_bus_message
from tests.conftest import REFDATA

JSON = "application/json"
QUEUES = ("pages", "notifications", "actions")
EVERYTHING = 1_000_000  # a limit no test comes near

ALERT_FILES = sorted(
    p.name for p in (REFDATA / "azure_monitor").glob("*.json") if not p.name.startswith("ctx_")
)
VALIDATION_EVENT = "eg_SubscriptionValidationEvent.json"
VALIDATION_REPLY = "eg_SubscriptionValidation_response.json"  # what we must answer, not a delivery
EVENT_FILES = sorted(p.name for p in (REFDATA / "event_grid").glob("*.json") if p.name != VALIDATION_REPLY)
DELIVERY_FILES = [name for name in EVENT_FILES if name != VALIDATION_EVENT]

# Resolved with nothing open (two metric alerts; the Service Health test action is at stage
# "Resolved"): recorded as informational signals. Every other reference alert opens an incident.
INFORMATIONAL_ALERTS = {
    "cas_metric_static_resolved_full.json",
    "cas_metric_static_resolved_with_customProperties.json",
    "cas_testaction_service_health_fired.json",
}
# Deletions and AKS support/rollout trouble open incidents; routine events are informational.
INCIDENT_EVENTS = {
    "docs_eg_resources_ResourceDeleteSuccess.json",
    "sdkjava_eg_ResourceDeleteSuccessEvent.json",
    "sdkgo_eg_aks_ClusterSupportEnded.json",
    "sdkgo_eg_aks_ClusterSupportEnding.json",
    "sdkgo_eg_aks_NodePoolRollingFailed.json",
}


@cache
def registered() -> tuple[Any, ...]:
    """The app's registered functions (`get_functions()` refuses a second call: it re-validates names)."""
    return tuple(function_app.app.get_functions())


@cache
def _functions() -> dict[str, Callable[..., Any]]:
    return {str(fn.get_function_name()): fn.get_user_function() for fn in registered()}


def function(name: str) -> Callable[..., Any]:
    """The user function registered under `name`, as the host would call it."""
    return _functions()[name]


def registered_names() -> set[str]:
    """Names of every registered function."""
    return set(_functions())


def alert_payload(name: str) -> Any:
    """One Azure Monitor reference payload."""
    return json.loads((REFDATA / "azure_monitor" / name).read_text())


def event_payload(name: str) -> Any:
    """One Event Grid reference delivery (an event object or an array of them)."""
    return json.loads((REFDATA / "event_grid" / name).read_text())


def post(
    route: str,
    body: bytes,
    content_type: str | None = JSON,
    headers: Mapping[str, str] | None = None,
    function_name: str | None = None,
) -> func.HttpResponse:
    """POST /api/{route} to its function (named after the route unless given) with a real HttpRequest."""
    sent = dict(headers or {})
    if content_type is not None:
        sent["Content-Type"] = content_type
    request = func.HttpRequest(method="POST", url=f"/api/{route}", body=body, headers=sent)
    response: func.HttpResponse = function(function_name or route)(request)
    if route in INTAKE_ROUTES and response.status_code == 202:
        folded = fold()
        # The intake queue drops a resent signal (duplicate detection by message id): for the
        # test it is a duplicate all the same, as when the store refuses one sent after the window.
        dropped = json.loads(response.get_body())["accepted"] - folded.delivered
        _FOLDED[response] = {**folded.report.to_dict(), "duplicates": folded.report.duplicates + dropped}
    return response


INTAKE_ROUTES = ("alerts", "eventgrid")
# What folding did with each intake 202's signals, for json_body: the answer itself says only what
# was accepted, and a test wants to know what became of it.
_FOLDED: WeakKeyDictionary[func.HttpResponse, dict[str, Any]] = WeakKeyDictionary()


@dataclass
class Folded:
    """What `fold` delivered, and what intake made of it."""

    delivered: int
    report: IntakeReport


def fold(app: Services | None = None) -> Folded:
    """What the host does moments after a 202: deliver the intake queue's sessions to the fold
    trigger in batches, completing each."""
    app = app or services()
    report, delivered = IntakeReport(), 0
    if not isinstance(app.queue, SqliteQueue):  # a test with a queue of its own delivers it itself
        return Folded(0, report)
    queue = app.local_queue
    accept = app.intake.accept

    def recording(signals: Any) -> IntakeReport:
        done = accept(signals)
        for name, value in vars(done).items():
            setattr(report, name, getattr(report, name) + value)
        return done

    app.intake.accept = recording  # type: ignore[method-assign]
    try:
        while batch := queue.receive_batch("intake", 100):
            function("fold_signals")([service_bus_message(r) for r in batch])
            queue.complete_batch(batch)
            delivered += len(batch)
    finally:
        del app.intake.accept
    return Folded(delivered, report)


def get(
    name: str,
    url: str,
    params: Mapping[str, str] | None = None,
    route_params: Mapping[str, str] | None = None,
) -> func.HttpResponse:
    """GET a read function with a real HttpRequest."""
    request = func.HttpRequest(
        method="GET", url=url, body=b"", params=dict(params or {}), route_params=dict(route_params or {})
    )
    response: func.HttpResponse = function(name)(request)
    return response


def json_body(response: func.HttpResponse) -> Any:
    """The response body, which must be JSON and say so; for an intake 202, merged with what the
    fold that `post` ran made of its signals (`incidents`, `opened`, `duplicates`, …)."""
    assert response.mimetype == JSON, response.mimetype
    answer = json.loads(response.get_body())
    if response in _FOLDED:  # an intake 202, with what folding its signals did (see `post`)
        return {**answer, **_FOLDED[response]}
    return answer


def assert_error(response: func.HttpResponse, status: int, error: str, detail: str = "") -> dict[str, str]:
    """A JSON error answer: exactly {error, detail}, with `detail` containing the fragment."""
    assert response.status_code == status, response.get_body()
    body = json_body(response)
    assert set(body) == {"error", "detail"}, body
    assert body["error"] == error, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert detail in body["detail"], body
    return dict(body)


@dataclass(frozen=True)
class Snapshot:
    """How much the app has stored: incidents, signals, timeline rows and queued messages."""

    incidents: int
    informational: int
    signals: int
    timeline: int
    queued: tuple[int, ...]


def snapshot(app: Services | None = None) -> Snapshot:
    """Count everything the intake could have written."""
    app = app or services()
    store = app.store
    db = store.db  # type: ignore[attr-defined]  # the SQLite store: count rows the port cannot list
    conn = db.read()
    return Snapshot(
        incidents=len(store.list_incidents(None, None, EVERYTHING)),
        informational=len(store.signals(None, EVERYTHING)),
        signals=conn.execute("SELECT COUNT(*) FROM signals").fetchone()[0],
        timeline=conn.execute("SELECT COUNT(*) FROM timeline").fetchone()[0],
        queued=tuple(app.local_queue.active_count(q) for q in QUEUES),
    )


def all_signals(app: Services | None = None) -> list[Signal]:
    """Every stored signal: the informational ones, then each incident's."""
    store = (app or services()).store
    found = store.signals(None, EVERYTHING)
    for incident in store.list_incidents(None, None, EVERYTHING):
        found += store.signals(incident.id, EVERYTHING)
    return found


EMPTY = Snapshot(incidents=0, informational=0, signals=0, timeline=0, queued=(0, 0, 0))


def raw_message(body: bytes, message_id: str = "m-1", session_id: str | None = "s-1") -> ServiceBusMessage:
    """A Service Bus message with any body."""
    return ServiceBusMessage(
        body=body,
        message_id=message_id,
        session_id=session_id,
        application_properties={},
        user_properties={},
        delivery_count=1,
    )


def dry_run(data_dir: Path, service: str) -> list[dict[str, Any]]:
    """The requests the dry-run pager ("pagerduty") or chat ("slack") recorded, oldest first."""
    path = data_dir / "dry-run" / f"{service}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
