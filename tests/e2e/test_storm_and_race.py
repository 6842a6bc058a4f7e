"""Over real HTTP: an alert storm collapses into incidents; two processes on one data dir agree."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.alerts import body, metric_alert
from tests.e2e.conftest import KEY, Responder
from tests.factories import resource


def _targets(count: int) -> list[str]:
    return [resource("redis", f"redis-amicis-t{n}-dev", f"rg-amicis-t{n}-dev") for n in range(count)]


def test_storm_of_10000_alerts_over_100_keys_opens_exactly_100(
    start_responder: Callable[..., Responder],
) -> None:
    responder = start_responder()
    targets = _targets(100)
    # One alert per request on one keep-alive connection, as Azure Monitor sends them.
    connection = http.client.HTTPConnection("127.0.0.1", responder.port, timeout=30)
    statuses: dict[int, int] = {}
    for n in range(10_000):
        payload = body(metric_alert(rule="redis-errors", target=targets[n % 100], alert_id=f"storm-{n}"))
        connection.request("POST", f"/api/alerts?code={KEY}", payload, {"content-type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    connection.close()
    assert statuses == {202: 10_000}

    def folded() -> bool:  # the 202s say what was accepted; the incidents follow a batch later
        incidents = responder.get("/incidents", limit="1000").json()["incidents"]
        return sum(i["signal_count"] for i in incidents) == 10_000

    responder.wait_for(folded, "10,000 signals folded", seconds=120)
    incidents = responder.get("/incidents", limit="1000").json()["incidents"]
    assert len(incidents) == 100
    assert {i["signal_count"] for i in incidents} == {100}


def test_two_processes_on_one_data_dir_open_one_incident_per_key(
    start_responder: Callable[..., Responder], tmp_path: Path
) -> None:
    shared = tmp_path / "shared-data"
    first = start_responder(shared)
    second = start_responder(shared)
    targets = _targets(5)

    def send(n: int) -> int:
        server = first if n % 2 else second
        payload = body(metric_alert(rule="redis-errors", target=targets[n % 5], alert_id=f"race-{n}"))
        return server.post("/alerts", payload).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(send, range(400)))
    assert statuses == [202] * 400

    def folded() -> bool:
        return sum(i["signal_count"] for i in first.get("/incidents").json()["incidents"]) == 400

    first.wait_for(folded, "400 signals folded", seconds=60)
    for server in (first, second):
        incidents = server.get("/incidents").json()["incidents"]
        assert len(incidents) == 5
        assert sorted(i["signal_count"] for i in incidents) == [80] * 5
    # The same rule on five tenants: all five are escalated to sev1, affecting all tenants.
    incidents = first.get("/incidents").json()["incidents"]
    assert {(i["severity"], i["all_tenants"]) for i in incidents} == {("sev1", True)}
    ids = sorted(i["id"] for i in incidents)
    log = shared / "dry-run" / "pagerduty.jsonl"

    def last_page_per_incident() -> dict[str, str]:
        lines = log.read_text().splitlines() if log.exists() else []
        pages = [json.loads(line)["payload"] for line in lines]
        return {p["dedup_key"]: p["payload"]["severity"] for p in pages}

    # Two processes' workers share the queue: each incident is paged, and ends at its current severity.
    first.wait_for(
        lambda: last_page_per_incident() == dict.fromkeys(ids, "critical"), "every incident paged at sev1"
    )


def test_alerts_answered_202_survive_a_kill_9_before_they_are_folded(
    start_responder: Callable[..., Responder], tmp_path: Path
) -> None:
    """Accepted means durable: SIGKILL right after the 202s, and a restarted server folds every one."""
    data = tmp_path / "killed"
    env = {"DR_QUEUE_LOCK_SECONDS": "2"}  # a batch the killed server held comes back soon
    first = start_responder(data, env)
    targets = _targets(3)
    answers = [
        first.post(
            "/alerts", body(metric_alert(rule="redis-errors", target=targets[n % 3], alert_id=f"k-{n}"))
        )
        for n in range(150)
    ]
    first.process.kill()  # no shutdown: whatever was in flight stays where it was
    first.process.wait()
    assert [a.status_code for a in answers] == [202] * 150
    second = start_responder(data, env)

    def folded() -> bool:
        return sum(i["signal_count"] for i in second.get("/incidents").json()["incidents"]) == 150

    second.wait_for(folded, "150 signals folded after the restart", seconds=60)
    incidents = second.get("/incidents").json()["incidents"]
    assert sorted(i["signal_count"] for i in incidents) == [50, 50, 50]
