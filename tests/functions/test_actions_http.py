"""GET /api/actions[/{id}], POST /api/actions/{id}/approve|deny and POST /api/automation over real
HttpRequests: filters, errors as JSON, and fuzzed bodies that never get a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.bootstrap import Services
from shared.domain.actions import ActionState, Actor
from tests.action_kinds import PretendCache
from tests.factories import FakeClock
from tests.functions.action_harness import (
    CACHE,
    OTHER_CACHE,
    automation,
    decide,
    only_action,
    open_incident,
    run_queues,
)
from tests.functions.harness import assert_error, get, json_body
from tests.json_strategies import json_values

Acting = Callable[..., Services]
APPROVE = '{ action = "test.failover", mode = "approve" }'


@pytest.fixture
def two(acting: Acting, clock: FakeClock) -> tuple[Services, str, str]:
    """Two incidents a second apart, each with an action awaiting approval; the first is then
    approved and runs."""
    app = acting(APPROVE)
    first = open_incident(CACHE)
    clock.advance(seconds=1)
    second = open_incident(OTHER_CACHE, alert_id="2")
    run_queues(app, until=lambda: _planned_none(app))
    decide(only_action(app, first).id, "approve", {"by": "alice"})
    run_queues(app, until=lambda: only_action(app, first).state is ActionState.SUCCEEDED)
    return app, first, second


def _planned_none(app: Services) -> bool:
    return not app.action_store.list_actions(ActionState.PLANNED.value, None, 10)


def listed(params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    answer = get("list_actions", "/api/actions", params)
    assert answer.status_code == 200, answer.get_body()
    found = json_body(answer)
    assert found["count"] == len(found["actions"])
    return list(found["actions"])


def test_actions_are_listed_newest_first_and_filtered_by_status_and_incident(
    two: tuple[Services, str, str],
) -> None:
    _, first, second = two
    everything = listed()
    assert [a["incident_id"] for a in everything] == [second, first]
    assert [a["incident_id"] for a in listed({"status": "awaiting approval"})] == [second]
    assert [a["incident_id"] for a in listed({"status": "succeeded"})] == [first]
    assert listed({"status": "running"}) == []
    assert [a["state"] for a in listed({"incident": first})] == ["succeeded"]
    assert listed({"incident": second, "status": "succeeded"}) == []
    assert listed({"incident": "inc-nobody"}) == []
    assert [a["incident_id"] for a in listed({"limit": "1"})] == [second]
    approved = listed({"incident": first})[0]
    assert approved["approved_by"] == {"name": "alice", "via": "api"}
    assert approved["target"] == CACHE and approved["mode"] == "approve"


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"state": "failed"}, "unknown query parameter(s): 'state'"),
        ({"incident_id": "x"}, "unknown query parameter(s): 'incident_id'"),
        ({"status": "done"}, "status must be one of planned, awaiting approval, approved, running"),
        ({"status": "SUCCEEDED"}, "status must be one of"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(
    two: tuple[Services, str, str], params: dict[str, str], detail: str
) -> None:
    answer = get("list_actions", "/api/actions", params)
    assert_error(answer, 400, "invalid_parameter", detail)


def test_one_action_by_id_and_404_for_an_unknown_one(two: tuple[Services, str, str]) -> None:
    app, first, _ = two
    record = only_action(app, first)
    answer = get("get_action", f"/api/actions/{record.id}", route_params={"action_id": record.id})
    assert answer.status_code == 200
    assert json_body(answer) == json.loads(json.dumps(record.to_dict()))
    unknown = get("get_action", "/api/actions/act-nope", route_params={"action_id": "act-nope"})
    assert_error(unknown, 404, "not_found", "no action act-nope")
    extra = get(
        "get_action", f"/api/actions/{record.id}", {"verbose": "1"}, route_params={"action_id": record.id}
    )
    assert_error(extra, 400, "invalid_parameter", "'verbose'")


def test_a_decision_other_than_approve_or_deny_is_404(two: tuple[Services, str, str]) -> None:
    app, _, second = two
    record = only_action(app, second)
    assert_error(decide(record.id, "cancel", {"by": "alice"}), 404, "not_found", "/approve or /deny")
    assert only_action(app, second).state is ActionState.AWAITING_APPROVAL


def _any_body() -> st.SearchStrategy[bytes]:
    """Bytes, any JSON value, and objects that look like a decision or a pause with any values."""
    fields = st.fixed_dictionaries(
        {},
        optional={
            "by": json_values() | st.text(max_size=300),
            "paused": json_values(),
            "tenant": json_values() | st.text(max_size=120),
            "reason": json_values() | st.text(max_size=600),
        },
    )
    documents = json_values() | fields | st.dictionaries(st.text(max_size=8), json_values(), max_size=3)
    return st.binary(max_size=200) | documents.map(lambda v: json.dumps(v).encode())


def _no_5xx(answer: Any) -> int:
    status = int(answer.status_code)
    assert status < 500, answer.get_body()
    if status >= 400:
        assert set(json_body(answer)) == {"error", "detail"}
    return status


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_any_body(), verb=st.sampled_from(["approve", "deny"]))
def test_fuzzed_decisions_never_get_a_5xx(
    two: tuple[Services, str, str], world: PretendCache, body: bytes, verb: str
) -> None:
    app, first, second = two
    waiting = only_action(app, second)
    before = app.action_store.get_action(waiting.id)
    status = _no_5xx(decide(waiting.id, verb, raw=body))
    after = app.action_store.get_action(waiting.id)
    if status == 200:
        assert after is not None and after.record.state in (ActionState.APPROVED, ActionState.DENIED)
        assert before is not None and before.record.state is ActionState.AWAITING_APPROVAL
        decoded = json.loads(body)
        if after.record.state is ActionState.APPROVED:
            assert after.record.approved_by == Actor(decoded["by"].strip(), "api")
    else:
        assert after == before, "a refused request changes nothing"
    _no_5xx(decide(only_action(app, first).id, verb, raw=body))
    assert only_action(app, first).state is ActionState.SUCCEEDED
    assert world.starts == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_any_body())
def test_fuzzed_automation_requests_never_get_a_5xx(two: tuple[Services, str, str], body: bytes) -> None:
    before = json_body(automation())
    status = _no_5xx(automation(raw=body))
    after = json_body(automation())
    if status == 200:
        document = json.loads(body)
        assert isinstance(document, dict) and isinstance(document["paused"], bool)
        assert isinstance(document["by"], str) and document["by"].strip()
    else:
        assert after == before, "a refused request changes nothing"


@pytest.mark.parametrize("tenant", ["   ", 0, False, []])
def test_a_blank_or_non_string_tenant_is_refused_not_taken_for_every_tenant(
    acting: Acting, tenant: Any
) -> None:
    app = acting(APPROVE)
    assert_error(
        automation({"paused": True, "tenant": tenant, "by": "alice"}), 422, "invalid_field", "tenant"
    )
    assert app.action_store.pauses() == []
