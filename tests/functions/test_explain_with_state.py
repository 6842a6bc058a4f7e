"""`explain` against a data dir that has incidents: it names the incident it would update or resolve."""

from __future__ import annotations

from pathlib import Path

from shared.explain import explain
from shared.explain_render import render_explanation
from tests.conftest import REFDATA, ROOT
from tests.functions.harness import json_body, post

UNAVAILABLE = (ROOT / "samples" / "cosmos-unavailable.json").read_bytes()
AVAILABLE = (ROOT / "samples" / "cosmos-available.json").read_bytes()


def test_a_repeat_updates_the_open_incident_by_its_real_id(data_dir: Path) -> None:
    (incident_id,) = json_body(post("alerts", UNAVAILABLE))["incidents"]
    explained = explain(UNAVAILABLE)
    (decision,) = explained["signals"]
    assert decision["incident"]["action"] == "update" and decision["incident"]["id"] == incident_id
    assert decision["planned_effects"] == [], "a repeat pages and cards nothing new"
    text = render_explanation(explained)
    assert f"incident   updates {incident_id} (open since " in text
    assert "page       none: paged already" in text


def test_a_resolve_names_the_incident_and_the_page_it_resolves(data_dir: Path) -> None:
    (incident_id,) = json_body(post("alerts", UNAVAILABLE))["incidents"]
    (decision,) = explain(AVAILABLE)["signals"]
    assert decision["incident"]["action"] == "resolve" and decision["incident"]["id"] == incident_id
    assert [(e["kind"], e["event"]) for e in decision["planned_effects"]] == [
        ("notify", "resolved"),
        ("page", "resolve"),
    ]
    assert all("incident_id" not in e for e in decision["planned_effects"])


def test_an_opening_with_a_store_says_none_is_open(data_dir: Path) -> None:
    post(
        "eventgrid",
        (REFDATA / "event_grid" / "eg_redis_PatchingCompleted.json").read_bytes(),
    )
    assert (data_dir / "incidents.sqlite3").exists()
    text = render_explanation(explain(UNAVAILABLE))
    assert "incident   opens a new one (none is open for its correlation key)" in text
    assert "inc-" not in text, "no id is invented for an incident that does not exist yet"
