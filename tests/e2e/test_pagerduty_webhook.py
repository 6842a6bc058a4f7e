"""Over real HTTP: POST /api/pagerduty with valid signatures never answers a 5xx."""

from __future__ import annotations

import copy
import gzip
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.sqlite_queue import SqliteQueue
from tests.conftest import REFDATA, ROOT
from tests.e2e.conftest import Responder
from tests.json_strategies import json_values, one_field_changed

SECRET = "e2e-webhook-secret"
CAPTURED = {
    name: json.loads((REFDATA / "pagerduty" / f"webhook_v3_captured_{name}.json").read_text())
    for name in ("incident_acknowledged", "incident_annotated", "incident_resolved", "incident_triggered")
}
FUZZ_RUNS: list[int] = []


@pytest.fixture(scope="module")
def responder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Responder]:
    """dr serve with a webhook secret, shared by this module's tests."""
    started = Responder(
        tmp_path_factory.mktemp("pagerduty") / "data", env={"PAGERDUTY_WEBHOOK_SECRETS": SECRET}
    )
    yield started
    started.stop()


def _post(responder: Responder, envelope: Any, delivery: str) -> Any:
    raw = json.dumps(envelope).encode()
    signature = "v1=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return responder.post("/pagerduty", raw, **{"X-PagerDuty-Signature": signature, "X-Webhook-Id": delivery})


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("data",), "a string", "event.data"),
        (("data",), [1, 2], "event.data"),
        (("id",), "E" * 129, "event.id"),
        (("data", "id"), "Q" * 129, "event.data.id"),
    ],
)
def test_a_signed_delivery_that_can_never_succeed_is_a_4xx(
    responder: Responder, path: tuple[str, ...], value: Any, named: str
) -> None:
    envelope = copy.deepcopy(CAPTURED["incident_acknowledged"])
    parent = envelope["event"]
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    answer = _post(responder, envelope, f"never-{named}-{len(str(value))}")
    assert 400 <= answer.status_code < 500, answer.text
    assert set(answer.json()) == {"error", "detail"} and named in answer.json()["detail"]


def test_a_gzip_delivery_is_415_naming_the_encoding(responder: Responder) -> None:
    raw = gzip.compress(json.dumps(CAPTURED["incident_acknowledged"]).encode())
    signature = "v1=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"X-PagerDuty-Signature": signature, "X-Webhook-Id": "gzip-1", "Content-Encoding": "gzip"}
    answer = responder.post("/pagerduty", raw, **headers)
    assert answer.status_code == 415, answer.text
    assert (
        answer.json()["error"] == "unsupported_media_type" and "content-encoding" in answer.json()["detail"]
    )


def test_an_occurred_at_that_is_no_date_time_is_refused_at_the_door(responder: Responder) -> None:
    envelope = copy.deepcopy(CAPTURED["incident_acknowledged"])
    envelope["event"]["occurred_at"] = "yesterday"
    answer = _post(responder, envelope, "occurred-yesterday")
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_field" and "event.occurred_at" in answer.json()["detail"]


def test_a_malformed_field_is_written_on_the_incident_and_dead_lettered_as_poison(
    responder: Responder,
) -> None:
    opened = responder.post("/alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
    (incident_id,) = responder.incidents_of(opened)
    envelope = copy.deepcopy(CAPTURED["incident_acknowledged"])
    envelope["event"].update(id="E-assignees-5", event_type="incident.reassigned")
    envelope["event"]["data"].update(incident_key=incident_id, assignees=5)
    assert _post(responder, envelope, "assignees-5").status_code == 202

    def written_down() -> bool:
        timeline = responder.get(f"/incidents/{incident_id}").json()["timeline"]
        return any("not applied: event.data.assignees must be an array" in e["text"] for e in timeline)

    responder.wait_for(written_down, "the malformed event on the incident's timeline")
    queue = SqliteQueue(responder.data_dir / "queue.sqlite3")
    responder.wait_for(lambda: bool(queue.dead_letters("pagerduty")), "the event dead-lettered")
    (dead,) = [d for d in queue.dead_letters("pagerduty") if d.message_id == "assignees-5"]
    assert (dead.reason, dead.delivery_count) == ("PoisonMessage", 1)
    assert "event.data.assignees must be an array" in dead.description


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    envelope=one_field_changed(list(CAPTURED.values()), json_values() | st.text(min_size=100, max_size=300))
)
def test_fuzzed_validly_signed_deliveries_never_get_a_5xx(responder: Responder, envelope: Any) -> None:
    FUZZ_RUNS.append(1)
    answer = _post(responder, envelope, f"fuzz-{len(FUZZ_RUNS)}")
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert set(answer.json()) == {"error", "detail"}
