"""GET /api/health, /api/incidents, /api/incidents/{id} and /api/signals with real HttpRequests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.bootstrap import Services
from shared.domain.incidents import TimelineEntry
from shared.settings import Settings
from shared.triage.policy import load_policy
from tests.alerts import body, metric_alert
from tests.factories import FakeClock, resource
from tests.functions.harness import assert_error, event_payload, get, json_body, post


def _open(rule: str, tenant: str = "ikea", fired: str = "2026-11-25T09:00:00.000Z") -> str:
    target = resource("cosmosdb", f"cosmos-amicis-{tenant}-dev", f"rg-amicis-{tenant}-dev")
    payload = metric_alert(rule=rule, target=target, severity="Sev2", alert_id=rule)
    payload["data"]["essentials"]["firedDateTime"] = fired
    answer = post("alerts", body(payload))
    assert answer.status_code == 202, answer.get_body()
    (incident_id,) = json_body(answer)["incidents"]
    return str(incident_id)


def _resolve(rule: str, tenant: str = "ikea") -> None:
    target = resource("cosmosdb", f"cosmos-amicis-{tenant}-dev", f"rg-amicis-{tenant}-dev")
    payload = metric_alert(rule=rule, target=target, alert_id=rule, condition="Resolved")
    assert json_body(post("alerts", body(payload)))["resolved"] == 1


@pytest.fixture
def incidents(clock: FakeClock) -> dict[str, str]:
    """Four incidents fired a minute apart (ikea a, hm b, ikea c, hm d); c is resolved."""
    opened = {}
    for minute, (name, tenant) in enumerate((("a", "ikea"), ("b", "hm"), ("c", "ikea"), ("d", "hm"))):
        opened[name] = _open(f"rule-{name}", tenant, fired=f"2026-11-25T09:0{minute}:00.000Z")
        clock.advance(minutes=1)
    _resolve("rule-c", "ikea")
    return opened


def _listed(params: dict[str, str] | None = None) -> list[str]:
    answer = get("list_incidents", "/api/incidents", params)
    assert answer.status_code == 200, answer.get_body()
    found = json_body(answer)
    assert found["count"] == len(found["incidents"])
    return [i["id"] for i in found["incidents"]]


def test_health_reports_ready() -> None:
    answer = get("health", "/api/health")
    assert answer.status_code == 200
    found = json_body(answer)
    assert found == {"status": "ok", "rules": len(load_policy().rules)}


def test_health_is_503_json_when_the_policy_is_invalid(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("version = 1\n[[rules]]\nid = 3\n")
    env = {"DR_DATA_DIR": str(tmp_path / "data"), "DR_POLICY_FILE": str(policy)}
    bootstrap.reset(Services(Settings.from_env(env)))
    answer = get("health", "/api/health")
    assert_error(answer, 503, "not_ready", "see its log")
    assert str(policy) not in answer.get_body().decode(), "an anonymous caller learns no paths"


def test_health_is_503_json_when_the_store_cannot_open(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be")
    bootstrap.reset(Services(Settings.from_env({"DR_DATA_DIR": str(blocker)})))
    assert_error(get("health", "/api/health"), 503, "not_ready")


def test_incidents_are_listed_newest_first(incidents: dict[str, str]) -> None:
    assert _listed() == [incidents[n] for n in "dcba"]


def test_incidents_by_status_and_tenant(incidents: dict[str, str]) -> None:
    assert _listed({"status": "open"}) == [incidents[n] for n in "dba"]
    assert _listed({"status": "resolved"}) == [incidents["c"]]
    assert _listed({"status": "acknowledged"}) == []
    assert _listed({"tenant": "ikea"}) == [incidents[n] for n in "ca"]
    assert _listed({"tenant": "hm", "status": "open"}) == [incidents[n] for n in "db"]
    assert _listed({"tenant": "nobody"}) == []
    assert _listed({"status": "", "tenant": ""}) == [incidents[n] for n in "dcba"]  # empty = no filter


@pytest.mark.parametrize(("limit", "expected"), [("1", "d"), ("3", "dcb"), ("1000", "dcba"), ("", "dcba")])
def test_incidents_limit(incidents: dict[str, str], limit: str, expected: str) -> None:
    assert _listed({"limit": limit}) == [incidents[n] for n in expected]


def test_incident_json_shape(incidents: dict[str, str]) -> None:
    (listed,) = json_body(get("list_incidents", "/api/incidents", {"limit": "1"}))["incidents"]
    assert listed["id"] == incidents["d"]
    assert {k: listed[k] for k in ("status", "tenant", "component", "severity", "signal_count")} == {
        "status": "open",
        "tenant": "hm",
        "component": "cosmosdb",
        "severity": "sev3",  # Azure Sev2, a CPU metric no rule raises: the baseline
        "signal_count": 1,
    }
    assert "outbox" not in listed, "the outbox is internal"


BAD_LIST_PARAMS: list[tuple[dict[str, str], str]] = [
    ({"status": "closed"}, "status must be one of open, acknowledged, resolved"),
    ({"status": "OPEN"}, "status must be one of"),
    ({"limit": "0"}, "limit must be an integer from 1 to 1000"),
    ({"limit": "1001"}, "limit must be an integer from 1 to 1000"),
    ({"limit": "-5"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "1.5"}, "limit"),
    ({"limit": "9" * 5000}, "limit"),
    ({"limit": "٣"}, "limit"),  # int() reads Arabic-Indic digits, and spaces, signs and underscores
    ({"limit": " 5"}, "limit"),
    ({"limit": "5 "}, "limit"),
    ({"limit": "+5"}, "limit"),
    ({"limit": "1_0"}, "limit"),
]


@pytest.mark.parametrize(("params", "detail"), BAD_LIST_PARAMS, ids=[str(p)[:40] for p, _ in BAD_LIST_PARAMS])
def test_incidents_bad_params_are_400(params: dict[str, str], detail: str) -> None:
    assert_error(get("list_incidents", "/api/incidents", params), 400, "invalid_parameter", detail)


def test_one_incident_with_timeline_and_signals(incidents: dict[str, str]) -> None:
    answer = get("get_incident", f"/api/incidents/{incidents['c']}", route_params={"id": incidents["c"]})
    assert answer.status_code == 200
    found: dict[str, Any] = json_body(answer)
    assert (found["id"], found["status"], found["tenant"]) == (incidents["c"], "resolved", "ikea")
    kinds = [e["kind"] for e in found["timeline"]]
    assert kinds[:1] == ["opened"] and "resolved" in kinds
    assert all(set(e) == {"at", "kind", "text"} for e in found["timeline"])
    assert [s["state"] for s in found["signals"]] == ["resolved", "fired"]  # newest first
    assert "outbox" not in found


def test_the_timeline_of_an_incident_is_in_time_order(app: Services, incidents: dict[str, str]) -> None:
    incident_id = incidents["a"]
    opened_at = app.store.timeline(incident_id)[0].at
    app.store.add_timeline(incident_id, [TimelineEntry("2026-11-25T09:59:00.000Z", "page", "written late")])
    answer = get("get_incident", f"/api/incidents/{incident_id}", route_params={"id": incident_id})
    timeline = json_body(answer)["timeline"]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    assert timeline[0]["at"] == "2026-11-25T09:59:00.000Z" < opened_at


@pytest.mark.parametrize("missing", ["inc-20261125-0000000000", "", "../etc/passwd", "' OR 1=1 --"])
def test_unknown_incident_is_404_json(incidents: dict[str, str], missing: str) -> None:
    answer = get("get_incident", f"/api/incidents/{missing}", route_params={"id": missing})
    assert_error(answer, 404, "not_found", repr(missing))


def test_signals_lists_only_informational_ones_newest_first(clock: FakeClock) -> None:
    assert json_body(get("informational_signals", "/api/signals")) == {"signals": [], "count": 0}
    _open("rule-x")  # an incident's signal is not informational
    names = ("eg_redis_PatchingCompleted.json", "docs_eg_resources_ResourceWriteSuccess.json")
    for name in names:
        assert json_body(post("eventgrid", body(event_payload(name))))["informational"] == 1
        clock.advance(minutes=1)
    found = json_body(get("informational_signals", "/api/signals"))
    assert found["count"] == 2
    kinds = [s["kind"] for s in found["signals"]]
    assert sorted(kinds) == ["Microsoft.Cache.PatchingCompleted", "Microsoft.Resources.ResourceWriteSuccess"]
    limited = json_body(get("informational_signals", "/api/signals", {"limit": "1"}))
    assert limited["count"] == 1 and limited["signals"][0] == found["signals"][0]


def test_what_is_stored_as_informational_says_informational_true(clock: FakeClock) -> None:
    """A resolve with nothing open, a stale Fired and a routine event are informational, and say so."""
    target = resource("cosmosdb", "cosmos-amicis-ikea-dev", "rg-amicis-ikea-dev")
    resolved = metric_alert(rule="rule-s", target=target, alert_id="stale-1", condition="Resolved")
    fired = metric_alert(rule="rule-s", target=target, alert_id="stale-1")
    assert json_body(post("alerts", body(resolved)))["informational"] == 1  # nothing open
    assert json_body(post("alerts", body(fired)))["informational"] == 1  # stale: its Resolved came first
    assert json_body(post("eventgrid", body(event_payload("docs2018_eg_acr_ImagePushed.json"))))[
        "informational"
    ]
    found = json_body(get("informational_signals", "/api/signals"))
    assert found["count"] == 3
    assert [s["informational"] for s in found["signals"]] == [True, True, True]


@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1"])
def test_signals_bad_limit_is_400(limit: str) -> None:
    assert_error(
        get("informational_signals", "/api/signals", {"limit": limit}), 400, "invalid_parameter", "limit"
    )
