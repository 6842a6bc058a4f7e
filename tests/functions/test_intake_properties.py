"""Properties of POST /api/alerts and /api/eventgrid over any body: never a 5xx, and a 4xx stores nothing.

Examples share one data dir per test; each compares what is stored before and after its own request.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.functions.harness import (
    ALERT_FILES,
    EVENT_FILES,
    alert_payload,
    event_payload,
    json_body,
    post,
    snapshot,
)
from tests.json_strategies import json_values, one_field_changed

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ROUTES = ["alerts", "eventgrid"]

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "text/json",
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
    ]
) | st.text(max_size=40)


@cache
def _alerts() -> list[Any]:
    return [alert_payload(name) for name in ALERT_FILES]


@cache
def _deliveries() -> list[Any]:
    return [event_payload(name) for name in EVENT_FILES]


def check(route: str, body: bytes, content_type: str | None) -> int:
    """Send one request; assert the properties; return the status."""
    before = snapshot()
    answer = post(route, body, content_type)
    status = answer.status_code
    event(f"HTTP {status}")  # see the mix with --hypothesis-show-statistics
    assert status < 500, answer.get_body()
    if status >= 400:
        error = json_body(answer)
        assert set(error) == {"error", "detail"}, error
        assert isinstance(error["error"], str) and error["error"], error
        assert isinstance(error["detail"], str) and error["detail"], error
        assert snapshot() == before, f"a {status} stored something: {error}"
        return status
    assert status in (200, 202), status
    report = json_body(answer)
    after = snapshot()
    if status == 200:  # an Event Grid subscription handshake
        assert route == "eventgrid" and set(report) == {"validationResponse"}
        assert after == before
        return status
    # the store holds what the report says
    assert after.incidents - before.incidents == report["opened"]
    assert after.informational - before.informational == report["informational"]
    assert after.signals - before.signals == report["accepted"] - report["duplicates"]
    assert report["accepted"] == sum(
        report[k] for k in ("opened", "updated", "resolved", "informational", "duplicates")
    )
    if report["duplicates"] == report["accepted"]:
        assert after == before
    return status


@pytest.mark.parametrize("route", ROUTES)
@PROPERTY
@given(body=st.binary(max_size=3000), content_type=CONTENT_TYPES)
def test_any_bytes(route: str, body: bytes, content_type: str | None) -> None:
    check(route, body, content_type)


@pytest.mark.parametrize("route", ROUTES)
@PROPERTY
@given(value=json_values(allow_nan=True))
def test_any_json_value(route: str, value: Any) -> None:
    check(route, json.dumps(value).encode(), "application/json")


@PROPERTY
@given(payload=one_field_changed(_alerts()))
def test_reference_alert_with_one_field_deleted_or_replaced(payload: Any) -> None:
    check("alerts", json.dumps(payload).encode(), "application/json")


@PROPERTY
@given(payload=one_field_changed(_deliveries()))
def test_reference_event_delivery_with_one_field_deleted_or_replaced(payload: Any) -> None:
    check("eventgrid", json.dumps(payload).encode(), "application/json")


@cache
def _events() -> list[Any]:
    return [e for d in _deliveries() for e in (d if isinstance(d, list) else [d])]


@PROPERTY
@given(
    batch=st.lists(st.sampled_from(_events()) | one_field_changed(_events()), min_size=2, max_size=5),
    content_type=st.sampled_from(["application/json", "application/cloudevents-batch+json"]),
)
def test_batch_of_reference_events_some_changed(batch: list[Any], content_type: str) -> None:
    """One bad event refuses the batch, so Event Grid's retry of the whole batch is never half-stored."""
    check("eventgrid", json.dumps(batch).encode(), content_type)


@PROPERTY
@given(data=st.data())
def test_a_payload_of_the_other_family(data: st.DataObject) -> None:
    """An event on the alerts endpoint, an alert on the Event Grid one: refused cleanly or stored whole."""
    if data.draw(st.booleans()):
        check("alerts", json.dumps(data.draw(one_field_changed(_deliveries()))).encode(), None)
    else:
        check("eventgrid", json.dumps(data.draw(one_field_changed(_alerts()))).encode(), None)
