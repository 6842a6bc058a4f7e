"""redis.failover end to end over HTTP: an alert POSTed to `dr serve` moves a real master or an Azure Cache.

`dr serve` is a child process: it takes tokens from the managed-identity stub (IDENTITY_ENDPOINT,
as on App Service), calls the ARM stub (DR_ARM_URL) or real Sentinels, and tells the PagerDuty
events stub. Nothing here waits but the polling `wait_for`s; nothing asserts a duration.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.action_kinds import acting_policy
from tests.alerts import body, metric_alert
from tests.e2e.conftest import KEY, Responder
from tests.factories import resource
from tests.servers.redis_sentinel import MASTER_NAME, PASSWORD, SentinelSet, running_sentinels
from tests.stubs import ArmStub, PagerDutyEventsStub
from tests.stubs.arm_services import azure_cache, serve_azure_cache
from tests.stubs.managed_identity import ManagedIdentityStub

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
FAILOVER = '{ action = "redis.failover", mode = "auto", page = "on-failure", settle_minutes = 0 }'
SELF_HOSTED = "redis-amicis-ikea-prod"
CACHE = resource("redis", "redis-amicis-ikea-dev")
REDIS_API = "2024-11-01"  # azure-mgmt-redis 14.5.0's
FAILOVER_SECONDS = 40.0  # a Sentinel failover takes a few seconds here; the bound only stops a hung test


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyEventsStub]:
    with PagerDutyEventsStub() as stub:
        yield stub


@pytest.fixture
def identity() -> Iterator[ManagedIdentityStub]:
    with ManagedIdentityStub() as stub:
        yield stub


@pytest.fixture
def arm() -> Iterator[ArmStub]:
    with ArmStub() as stub:
        serve_azure_cache(stub)
        yield stub


@pytest.fixture(scope="module")
def processes() -> Iterator[SentinelSet]:
    with running_sentinels("dr-e2e-sentinel-") as cluster:
        yield cluster


@pytest.fixture
def sentinels(processes: SentinelSet) -> SentinelSet:
    processes.heal()
    return processes


Serve = Callable[..., Responder]


@pytest.fixture
def serve(
    start_responder: Callable[..., Responder],
    tmp_path: Path,
    pagerduty: PagerDutyEventsStub,
    identity: ManagedIdentityStub,
    arm: ArmStub,
) -> Serve:
    """`dr serve` acting on `redis-down*` alerts with the policy's targets, checks and leases short."""

    def start(targets: str = "", data_dir: Path | None = None, action: str = FAILOVER) -> Responder:
        policy = acting_policy(tmp_path / "policy.toml", action, targets=targets)
        env = {
            **pagerduty.client_env(),
            **arm.client_env(),
            **identity.client_env(),
            "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "PAGERDUTY_EVENTS_URL": pagerduty.url,
            "DR_ARM_URL": arm.url,
            "DR_POLICY_FILE": str(policy),
            "DR_ACTION_CHECK_SECONDS": "0.2",
            "DR_QUEUE_LOCK_SECONDS": "2",
            "DR_LOST_ANSWER_SECONDS": "4",  # the lease: a takeover looks as soon as it may
            "DR_RETRY_BASE_SECONDS": "0.05",
            "DR_RETRY_MAX_SECONDS": "0.2",
            "SHOP_REDIS_PASSWORD": PASSWORD,
        }
        return start_responder(data_dir=data_dir, env=env)

    return start


def sentinel_target(cluster: SentinelSet) -> str:
    listed = ", ".join(f'"{host}:{port}"' for host, port in cluster.sentinel_addresses)
    return (
        f'\n[targets."{SELF_HOSTED}"]\nsentinels = [{listed}]\nmaster = "{MASTER_NAME}"\n'
        'password_setting = "SHOP_REDIS_PASSWORD"\n'
    )


def alert(target: str, alert_id: str = "00000000-0000-0000-0000-0000000000d1") -> bytes:
    return body(metric_alert(rule="redis-down", target=target, alert_id=alert_id, severity="Sev1"))


def post_alert(responder: Responder, payload: bytes) -> str:
    answer = responder.post("/alerts", payload)
    assert answer.status_code == 202, answer.text
    return responder.incidents_of(answer)[0]


def actions(responder: Responder) -> list[dict[str, Any]]:
    answer = responder.get("/actions")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["actions"])


def finished(responder: Responder) -> dict[str, Any] | None:
    """The one action, once it is in a final state."""
    found = actions(responder)
    final = [a for a in found if a["state"] in ("succeeded", "failed", "refused", "skipped")]
    return final[0] if final else None


def timeline(responder: Responder, incident_id: str) -> list[str]:
    incident = responder.get(f"/incidents/{incident_id}").json()
    return [e["text"] for e in incident["timeline"] if e["kind"] == "action"]


def assert_in_order(lines: list[str], *expected: str) -> None:
    """Each expected fragment is in some line, after the line the previous one was in."""
    at = -1
    for fragment in expected:
        later = [i for i, line in enumerate(lines) if fragment in line and i > at]
        assert later, f"{fragment!r} not after line {at} in:\n" + "\n".join(lines)
        at = later[0]


def assert_paged_only_news(responder: Responder, pagerduty: PagerDutyEventsStub, incident_id: str) -> None:
    """Nobody woken (page on failure only), but PagerDuty heard what the action did."""
    responder.wait_for(
        lambda: any("succeeded" in e["payload"]["summary"] for e in pagerduty.change_events),
        "the change event",
    )
    assert pagerduty.events == []  # no trigger, acknowledge or resolve
    assert all(e["routing_key"] == ROUTING_KEY for e in pagerduty.change_events)
    assert {e["payload"]["custom_details"]["incident"] for e in pagerduty.change_events} == {incident_id}


# --- (a) self-hosted Redis behind real Sentinels -------------------------------------------------


def test_an_alert_fails_a_self_hosted_master_over_behind_real_sentinels(
    serve: Serve, sentinels: SentinelSet, pagerduty: PagerDutyEventsStub
) -> None:
    old = sentinels.said_by(sentinels.sentinels[0])
    responder = serve(sentinel_target(sentinels))

    incident_id = post_alert(responder, alert(resource("redis", SELF_HOSTED)))
    responder.wait_for(lambda: finished(responder) is not None, "the failover to finish", FAILOVER_SECONDS)

    done = finished(responder)
    assert done is not None and done["state"] == "succeeded", done
    assert (done["action"], done["target"], done["mode"]) == (
        "redis.failover",
        resource("redis", SELF_HOSTED),
        "auto",
    )
    named = {sentinels.said_by(s) for s in sentinels.sentinels}
    assert len(named) == 1 and old not in named  # every Sentinel agrees on the new master
    (new,) = named
    assert new is not None
    assert sentinels.role(new) == "master"
    assert sentinels.client(new).set("dr-e2e-write", "after-failover") is True
    assert_in_order(
        timeline(responder, incident_id),
        "planned (auto)",
        "running",
        "done and verified",
        "succeeded",
    )
    assert_paged_only_news(responder, pagerduty, incident_id)


# --- (b) Azure Cache for Redis through ARM, with a managed identity ------------------------------


def test_an_alert_reboots_an_azure_cache_primary_with_a_managed_identity_token(
    serve: Serve, arm: ArmStub, identity: ManagedIdentityStub, pagerduty: PagerDutyEventsStub
) -> None:
    azure_cache(arm, CACHE)
    responder = serve()

    incident_id = post_alert(responder, alert(CACHE))
    responder.wait_for(lambda: finished(responder) is not None, "the failover to finish")

    done = finished(responder)
    assert done is not None and done["state"] == "succeeded", done
    [reboot] = arm.requests_to(f"{CACHE}/forceReboot", "POST")
    assert reboot.query["api-version"] == [REDIS_API]
    assert reboot.json == {"rebootType": "PrimaryNode"}
    cache = arm.get(CACHE)
    assert cache is not None
    assert [i["isPrimary"] for i in cache["properties"]["instances"]] == [False, True]
    # Every ARM call carried a token the identity endpoint issued for ARM's scope.
    issued = identity.issued
    assert issued and {i.resource for i in issued} == {arm.url} and {i.client_id for i in issued} == {None}
    assert set(arm.bearer_tokens()) <= {i.token for i in issued}
    assert arm.requests and all(r.header("Authorization") == "Bearer ***" for r in arm.requests)
    assert_in_order(
        timeline(responder, incident_id), "planned (auto)", "running", "done and verified", "succeeded"
    )
    assert_paged_only_news(responder, pagerduty, incident_id)


def test_an_approval_over_http_runs_the_failover_once_and_names_who_approved(
    serve: Serve, arm: ArmStub, pagerduty: PagerDutyEventsStub
) -> None:
    azure_cache(arm, CACHE)
    responder = serve(action='{ action = "redis.failover", mode = "approve", settle_minutes = 0 }')
    # The sweep that sends again a run (or any wake) lost between its record's write and its send.
    assert (
        "    sweep_actions: timer 15,45 * * * * *, in the background"
        in responder.log.read_text().splitlines()
    )
    incident_id = post_alert(responder, alert(CACHE))

    def waiting() -> dict[str, Any] | None:
        found = [a for a in actions(responder) if a["state"] == "awaiting approval"]
        return found[0] if found else None

    responder.wait_for(lambda: waiting() is not None, "the approval request")
    request = waiting()
    assert request is not None
    assert "Expires" in request["request"] and request["expires_at"]
    assert arm.requests_to(f"{CACHE}/forceReboot", "POST") == []  # nothing before a person says so
    status = responder.get("/status").json()["automation"]
    assert [(a["id"], a["state"]) for a in status["actions"]] == [(request["id"], "awaiting approval")]

    refused = responder.client.post(
        f"/actions/{request['id']}/approve", params={"code": KEY}, json={"by": ""}
    )
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_field"
    approved = responder.client.post(
        f"/actions/{request['id']}/approve", params={"code": KEY}, json={"by": "alice@example.com"}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"] == {"name": "alice@example.com", "via": "api"}
    again = responder.client.post(
        f"/actions/{request['id']}/approve", params={"code": KEY}, json={"by": "bob@example.com"}
    )
    assert again.status_code == 409

    responder.wait_for(lambda: finished(responder) is not None, "the failover to finish")
    done = finished(responder)
    assert done is not None and done["state"] == "succeeded", done
    assert len(arm.requests_to(f"{CACHE}/forceReboot", "POST")) == 1
    assert_in_order(
        timeline(responder, incident_id),
        "planned (approve)",
        "awaiting approval",
        "approved by alice@example.com via api",
        "running",
        "succeeded",
    )


# --- (c) at-least-once delivery -------------------------------------------------------------------


def test_the_same_alert_delivered_three_times_fails_over_once(serve: Serve, arm: ArmStub) -> None:
    azure_cache(arm, CACHE)
    responder = serve()

    answers = [responder.post("/alerts", alert(CACHE)) for _ in range(3)]
    responder.wait_for(lambda: finished(responder) is not None, "the failover to finish")

    assert [a.status_code for a in answers] == [202, 202, 202]
    # Azure Monitor's retries of one alert are one signal
    folded = [responder.incidents_of(a) for a in answers]
    assert folded[0] == folded[1] == folded[2] and len(folded[0]) == 1
    assert responder.get(f"/incidents/{folded[0][0]}").json()["signal_count"] == 1
    [action] = actions(responder)
    assert action["state"] == "succeeded"
    assert len(arm.requests_to(f"{CACHE}/forceReboot", "POST")) == 1


# --- (d) the server killed while the reboot's answer is on its way --------------------------------


def test_a_server_killed_mid_reboot_is_taken_over_and_the_reboot_is_sent_once(
    serve: Serve, arm: ArmStub, tmp_path: Path
) -> None:
    azure_cache(arm, CACHE)
    released = arm.hold_next(f"{CACHE}/forceReboot")  # ARM takes the reboot; its answer waits
    data_dir = tmp_path / "data-shared"
    first = serve(data_dir=data_dir)

    incident_id = post_alert(first, alert(CACHE))
    first.wait_for(lambda: len(arm.requests_to(f"{CACHE}/forceReboot", "POST")) == 1, "the reboot POST")
    first.process.kill()  # SIGKILL: no shutdown, the action claimed and its execute unfinished
    first.process.wait()
    released.set()
    [claimed] = [a for a in actions_in(data_dir) if a["action"] == "redis.failover"]
    assert (claimed["state"], claimed["continuation"]["phase"]) == ("running", "starting")

    second = serve(data_dir=data_dir)
    second.wait_for(lambda: finished(second) is not None, "the takeover to finish")

    done = finished(second)
    assert done is not None and done["state"] == "succeeded", done
    assert len(arm.requests_to(f"{CACHE}/forceReboot", "POST")) == 1
    lines = timeline(second, incident_id)
    assert_in_order(lines, "planned (auto)", "running", "took over", "done and verified", "succeeded")
    assert any("primaries already moved" in line for line in lines), lines


def actions_in(data_dir: Path) -> list[dict[str, Any]]:
    """The action records as the killed server left them (read with sqlite3, not through a server)."""
    import sqlite3

    db = sqlite3.connect(data_dir / "incidents.sqlite3")
    try:
        return [json.loads(text) for (text,) in db.execute("SELECT body FROM actions")]
    finally:
        db.close()
