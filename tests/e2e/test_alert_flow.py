"""Over real HTTP against `dr serve`: an alert's whole way, duplicates, Resolved, auth."""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from shared.adapters.sqlite_store import SqliteIncidentStore
from shared.domain.incidents import TimelineEntry
from tests.alerts import body, metric_alert
from tests.conftest import ROOT
from tests.e2e.conftest import KEY, Responder
from tests.factories import resource


def _incident(responder: Responder, incident_id: str) -> dict:  # type: ignore[type-arg]
    answer = responder.get(f"/incidents/{incident_id}")
    assert answer.status_code == 200
    return dict(answer.json())


def test_sample_alert_opens_a_sev1_and_its_effects_run(start_responder: Callable[..., Responder]) -> None:
    responder = start_responder()
    answer = responder.post("/alerts", (ROOT / "samples" / "cosmos-unavailable.json").read_bytes())
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 1
    (incident_id,) = responder.incidents_of(answer)  # folded moments after the 202

    listed = responder.get("/incidents").json()["incidents"]
    assert [i["id"] for i in listed] == [incident_id]
    incident = listed[0]
    assert {
        k: incident[k] for k in ("severity", "status", "tenant", "environment", "component", "signal_count")
    } == {
        "severity": "sev1",
        "status": "open",
        "tenant": "ikea",
        "environment": "dev",
        "component": "cosmosdb",
        "signal_count": 1,
    }
    for field in ("id", "title", "resource_id", "opened_at", "resolved_at", "reasons"):
        assert field in incident
    assert any("rule cosmosdb-unavailable" in r for r in incident["reasons"])

    # the queue workers inside dr serve page, notify and plan the action
    def effects_done() -> bool:
        kinds = {e["kind"] for e in _incident(responder, incident_id)["timeline"]}
        return {"page", "notify", "action"} <= kinds

    responder.wait_for(effects_done, "page, notify and act on the timeline")
    lines = (responder.data_dir / "dry-run" / "pagerduty.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    sent = [r["payload"] for r in records if r["operation"] != "change"]  # change events: the action's news
    assert [(p["event_action"], p["dedup_key"], p["payload"]["severity"]) for p in sent] == [
        ("trigger", incident_id, "critical")
    ]


def test_duplicate_delivery_counts_once_and_resolved_resolves(
    start_responder: Callable[..., Responder],
) -> None:
    responder = start_responder()
    fired = body(metric_alert(alert_id="dup-1"))
    first = responder.incidents_of(responder.post("/alerts", fired))
    again = responder.incidents_of(responder.post("/alerts", fired))
    second = responder.incidents_of(responder.post("/alerts", body(metric_alert(alert_id="dup-2"))))
    assert first == again == second and len(first) == 1
    assert _incident(responder, first[0])["signal_count"] == 2  # the resend was one signal
    pages = responder.data_dir / "dry-run" / "pagerduty.jsonl"

    def operations() -> list[str]:
        return (
            [json.loads(line)["operation"] for line in pages.read_text().splitlines()]
            if pages.exists()
            else []
        )

    # Resolve once the page is out: an incident resolved before its page leaves is never paged.
    responder.wait_for(lambda: operations() == ["trigger"], "the page triggered")
    # dup-1 and dup-2 are two instances of one alert rule on one resource: the incident resolves
    # when the last of them does.
    partly = responder.post("/alerts", body(metric_alert(alert_id="dup-2", condition="Resolved")))
    assert responder.incidents_of(partly) == first
    incident = _incident(responder, first[0])
    assert incident["status"] == "open"
    assert any("1 of 2 instances resolved" in e["text"] for e in incident["timeline"])
    resolved = responder.post("/alerts", body(metric_alert(alert_id="dup-1", condition="Resolved")))
    assert responder.incidents_of(resolved) == first
    incident = _incident(responder, first[0])
    assert incident["status"] == "resolved" and incident["resolved_at"] and incident["signal_count"] == 4
    assert responder.get("/incidents", status="open").json()["count"] == 0
    assert responder.get("/incidents", status="resolved").json()["count"] == 1

    responder.wait_for(lambda: operations() == ["trigger", "resolve"], "the page resolved")


def test_a_sev0_alert_is_never_lowered_by_a_generic_rule(responder: Responder) -> None:
    alert = metric_alert(rule="cosmos-availability-floor", severity="Sev0", metric="ServiceAvailability")
    answer = responder.post("/alerts", body(alert))
    assert answer.status_code == 202, answer.text
    (incident_id,) = responder.incidents_of(answer)
    incident = _incident(responder, incident_id)
    assert incident["severity"] == "sev1"
    assert any("rule elevated-errors says sev2, kept sev1" in r for r in incident["reasons"])


def test_function_key_is_required(responder: Responder) -> None:
    url = f"{responder.base}/alerts"
    assert httpx.post(url, content=body(metric_alert())).status_code == 401
    wrong = httpx.post(url, content=body(metric_alert()), params={"code": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    assert "nope" not in wrong.text
    assert httpx.get(f"{responder.base}/incidents").status_code == 401
    assert httpx.get(f"{responder.base}/health").status_code == 200
    header = httpx.get(f"{responder.base}/incidents", headers={"x-functions-key": "e2e-function-key"})
    assert header.status_code == 200


@pytest.mark.parametrize(
    ("header", "code", "status"),
    [
        (KEY, "wrong", 200),  # the header wins over ?code=, as in the Functions host
        ("wrong", KEY, 401),
        ("", KEY, 401),  # a header that is there but empty still wins: no key
        (None, KEY, 200),
    ],
)
def test_the_functions_key_header_takes_precedence_over_code(
    responder: Responder, header: str | None, code: str, status: int
) -> None:
    headers = {} if header is None else {"x-functions-key": header}
    answer = httpx.get(f"{responder.base}/incidents", params={"code": code}, headers=headers)
    assert answer.status_code == status, answer.text


def test_unknown_routes_and_methods_answer_json(responder: Responder) -> None:
    assert responder.get("/nothing").status_code == 404
    wrong_method = responder.client.put("/alerts", params={"code": "e2e-function-key"})
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"
    missing = responder.get("/incidents/inc-none")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_incident_list_filters_and_limits(start_responder: Callable[..., Responder]) -> None:
    responder = start_responder()
    for n in range(5):
        tenant = "ikea" if n % 2 else "hm"
        target = resource("cosmosdb", f"cosmos-amicis-{tenant}-dev", f"rg-amicis-{tenant}-dev")
        answer = responder.post("/alerts", body(metric_alert(rule=f"r{n}", target=target, alert_id=f"a{n}")))
        responder.incidents_of(answer)  # folded a moment after the 202
    assert responder.get("/incidents").json()["count"] == 5
    assert responder.get("/incidents", limit="2").json()["count"] == 2
    assert responder.get("/incidents", tenant="ikea").json()["count"] == 2
    bad_limits = [{"limit": v} for v in ("0", "1001", "x", "٣", " 5", "+5")]
    for bad in [*bad_limits, {"status": "sleeping"}]:
        answer = responder.get("/incidents", **bad)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_parameter"


def test_the_timeline_over_http_is_in_time_order(responder: Responder) -> None:
    answer = responder.post("/alerts", body(metric_alert(rule="timeline-order", alert_id="order-1")))
    (incident_id,) = responder.incidents_of(answer)
    # A line dated before the opening, written after it (as a slow worker, or another process, does).
    store = SqliteIncidentStore(responder.data_dir / "incidents.sqlite3")
    store.add_timeline(incident_id, [TimelineEntry("2000-01-01T00:00:00.000Z", "page", "written late")])
    timeline = _incident(responder, incident_id)["timeline"]
    assert timeline[0]["text"] == "written late"
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)


def test_signals_stored_as_informational_say_so_over_http(start_responder: Callable[..., Responder]) -> None:
    responder = start_responder()
    answer = responder.post("/alerts", body(metric_alert(alert_id="gone-1", condition="Resolved")))
    assert responder.folded(answer) == [None]  # nothing open: kept as informational
    assert responder.folded(responder.post("/alerts", body(metric_alert(alert_id="gone-1")))) == [None]
    signals = responder.get("/signals").json()["signals"]
    assert sorted((s["state"], s["informational"]) for s in signals) == [("fired", True), ("resolved", True)]


def test_a_body_shorter_than_its_content_length_is_408_not_a_held_connection(responder: Responder) -> None:
    """Content-Length: 100 and 10 bytes: dr serve answers 408 after its read timeout, not after 120 s+."""
    with socket.create_connection(("127.0.0.1", responder.port), timeout=60) as conn:
        conn.sendall(
            f"POST /api/alerts?code={KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"schemaId'
        )
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert time.monotonic() - started < 60, "well under the 120 s a stalled body used to hold it"
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert json.loads(payload)["error"] == "request_timeout"


def test_a_gzip_transfer_coding_is_501_not_misread(responder: Responder) -> None:
    """The parser undoes the chunking only; the gzip left inside must not be read as the body."""
    packed = gzip.compress(body(metric_alert()))
    chunked = f"{len(packed):x}\r\n".encode() + packed + b"\r\n0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", responder.port), timeout=30) as conn:
        conn.sendall(
            f"POST /api/alerts?code={KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: gzip, chunked\r\n\r\n".encode()
            + chunked
        )
        answer = b""
        while not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501"), head
    assert json.loads(payload) == {
        "error": "not_implemented",
        "detail": "Transfer-Encoding gzip, chunked is not supported; send the body uncompressed",
    }


def test_ctrl_c_stops_it_cleanly(start_responder: Callable[..., Responder]) -> None:
    """SIGINT, as Ctrl-C sends it: exit status 0 and a last line, not a KeyboardInterrupt traceback."""
    responder = start_responder()
    assert responder.post("/alerts", body(metric_alert())).status_code == 202
    responder.stop()
    log = responder.log.read_text()
    assert responder.process.returncode == 0, log[-2000:]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log
    assert log.rstrip().endswith("DR Responder stopped")
