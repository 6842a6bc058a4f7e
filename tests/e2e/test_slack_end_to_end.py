"""Every /dr command and button end to end: `dr serve` with its real Operations against every vendor's stub.

Signed, form-encoded requests as Slack sends them; what each vendor received is asserted (PagerDuty's
REST PUTs, ARM's reboot and offlineRegion, the Kubernetes patches and the Velero Restore), and so
are the incident's timeline and the action record: who, what, when, how it went.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerts import body, metric_alert
from tests.conftest import ROOT
from tests.e2e.slack_world import (
    AKS,
    ALLOWED,
    BOT,
    CHANNEL,
    FROM,
    NAMES,
    ON_CALL,
    PD_TOKEN,
    ROUTING_KEY,
    STRANGER,
    V1,
    World,
    as_message,
    buttons,
    rolled_out,
    said,
    world,
)
from tests.factories import resource
from tests.slack_requests import SECRET, command_body
from tests.stubs.arm_services import azure_cache, cosmos_account

AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"  # the scope AKS's Entra ID tokens are for
WHO_MAY = f"Only <@{ALLOWED}>; whoever is on call now in PagerDuty may do this."


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from world(tmp_path_factory.mktemp("slack-e2e"))


def paged_incident(w: World, name: str, n: int) -> str:
    """An alert on a cache that no rule acts on, paged (Azure Sev1): PagerDuty's REST API has it."""
    alert = metric_alert(
        rule="redis-connections",
        target=resource("redis", name),
        alert_id=f"0000-{n}",
        metric="connectedclients",
    )
    incident_id = w.alert(body(alert))
    w.until(lambda: w.events.incident_count(incident_id) == 1, "the trigger")
    w.rest.add_incident(incident_id, incident_id=f"PD{n}", service_id="PSVC1")
    return incident_id


def worked(record: dict[str, Any]) -> None:
    """It did its work and verified it; it now settles (the policy's settle_minutes) before it succeeds."""
    assert (record["state"], record["continuation"].get("phase")) == ("running", "settling"), record


def puts(w: World, pagerduty_id: str) -> list[Any]:
    return w.rest.requests_to(f"/incidents/{pagerduty_id}", "PUT")


def audit(w: World, incident_id: str, fragment: str) -> list[str]:
    # "slack" lines record what was done, "slack-read" lines who looked (`/dr show`).
    return [
        line
        for line in w.timeline(incident_id)
        if line.startswith(("slack: ", "slack-read: ")) and fragment in line
    ]


# --- incidents: ack and resolve, by command and by the card's buttons -------------------------------


def test_ack_and_resolve_commands_reach_pagerduty_and_a_stranger_changes_nothing(w: World) -> None:
    incident_id = paged_incident(w, "redis-amicis-lidl-dev", 1)

    refused = w.queued(f"ack {incident_id}", STRANGER)
    assert "Sorry, you may not run `/dr ack`" in said(refused) and WHO_MAY in said(refused)
    assert refused["response_type"] == "ephemeral"
    assert w.incident(incident_id)["status"] == "open" and puts(w, "PD1") == []
    assert audit(w, incident_id, f"someone ({STRANGER}) via slack: /dr ack {incident_id} → refused")

    acked = w.queued(f"ack {incident_id}", ON_CALL)  # on call in PagerDuty, matched by users.info e-mail
    assert acked["response_type"] == "in_channel" and f"acknowledged {incident_id}" in said(acked)
    w.until(lambda: len(puts(w, "PD1")) == 1, "PagerDuty's acknowledge")
    [put] = puts(w, "PD1")
    assert put.json == {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    assert put.header("From") == FROM and put.header("Authorization") == f"Token token={PD_TOKEN}"
    incident = w.incident(incident_id)
    assert (
        incident["status"] == "acknowledged" and incident["acknowledged_by"] == f"ada ({ON_CALL}) via slack"
    )

    resolved = w.queued(f"resolve {incident_id}", ALLOWED)
    assert f"resolved {incident_id}" in said(resolved)
    w.until(lambda: len(puts(w, "PD1")) == 2, "PagerDuty's resolve")
    assert puts(w, "PD1")[1].json == {"incident": {"type": "incident_reference", "status": "resolved"}}
    assert w.rest.status_changes() == [("PD1", "acknowledged", FROM), ("PD1", "resolved", FROM)]
    w.until(lambda: w.incident(incident_id)["status"] == "resolved", "resolved here")
    assert w.incident(incident_id)["resolved_by"] == f"al ({ALLOWED}) via slack"
    lines = w.timeline(incident_id)
    assert f"acknowledged: Acknowledged by ada ({ON_CALL}) via slack" in lines
    assert any("PagerDuty incident PD1 acknowledged" in line for line in lines)
    assert any("PagerDuty incident PD1 resolved" in line for line in lines)
    assert audit(w, incident_id, f"ada ({ON_CALL}) via slack: /dr ack {incident_id} → done")
    assert audit(w, incident_id, f"al ({ALLOWED}) via slack: /dr resolve {incident_id} → done")


def test_the_cards_acknowledge_and_resolve_pressed_twice_are_done_once(w: World) -> None:
    incident_id = paged_incident(w, "redis-amicis-aldi-dev", 2)
    card = w.card(incident_id)
    assert set(buttons(card.blocks)) == {"dr_ack", "dr_resolve"}
    message = as_message(card.blocks, card.ts)

    refused = w.press("dr_ack", incident_id, STRANGER, message)
    assert "Sorry, you may not acknowledge incidents" in said(refused) and puts(w, "PD2") == []

    first = w.press("dr_ack", incident_id, ALLOWED, message)
    second = w.press("dr_ack", incident_id, ALLOWED, message)
    assert first["replace_original"] is True and f"Acknowledged by <@{ALLOWED}>" in first["text"]
    assert "dr_ack" not in buttons(first["blocks"]) and "dr_resolve" in buttons(first["blocks"])
    assert "already" in second["text"] and f"al ({ALLOWED}) via slack" in second["text"]
    w.until(lambda: len(puts(w, "PD2")) == 1, "PagerDuty's acknowledge")

    def card_now() -> Any:
        now = w.slack.message(card.channel, card.ts)
        assert now is not None
        return now

    w.until(lambda: "dr_ack" not in buttons(card_now().blocks), "the card updated")
    assert re.search(rf"Acknowledged by al \({ALLOWED}\) via slack at 20\d\d-", said(card_now().blocks))

    resolved = [w.press("dr_resolve", incident_id, ALLOWED, message) for _ in range(2)]
    assert f"Resolved by <@{ALLOWED}>" in resolved[0]["text"] and buttons(resolved[0]["blocks"]) == {}
    assert "already" in resolved[1]["text"]
    w.until(lambda: len(puts(w, "PD2")) == 2, "PagerDuty's resolve")
    w.until(lambda: buttons(card_now().blocks) == {}, "the card resolved")
    assert re.search(rf"Resolved by al \({ALLOWED}\) via slack at 20\d\d-", said(card_now().blocks))
    # Updated in place, never posted again.
    assert len([c for c in w.slack.cards(CHANNEL) if incident_id in said(c.blocks)]) == 1
    assert [s for s in w.rest.status_changes() if s[0] == "PD2"] == [
        ("PD2", "acknowledged", FROM),
        ("PD2", "resolved", FROM),
    ]
    assert len(audit(w, incident_id, "pressed dr_ack")) >= 2
    assert audit(w, incident_id, f"al ({ALLOWED}) via slack: pressed dr_resolve ({incident_id}) → done")
    assert audit(w, incident_id, f"({STRANGER}) via slack: pressed dr_ack ({incident_id}) → refused")


# --- a person's actions: confirm, cancel, the guardrails, the vendors -------------------------------


def confirmation(w: World, text: str, user: str = ALLOWED) -> dict[str, Any]:
    reply = w.queued(text, user)
    assert reply["response_type"] == "ephemeral", reply
    return reply


def confirmed(w: World, reply: dict[str, Any], ts: str, user: str = ALLOWED, *again_by: str) -> str:
    """Press the confirmation's Confirm (then again by each of `again_by`); the action's id."""
    value, message = buttons(reply["blocks"])["dr_confirm"], as_message(reply["blocks"], ts)
    pressed = [w.press("dr_confirm", value, by, message) for by in (user, *again_by)]
    ids = {word.strip("`:") for p in pressed for word in p["text"].split() if word.startswith("`act-")}
    assert len(ids) == 1, pressed  # one confirmation message is one action, however often pressed
    first = pressed[0]["text"].split(":")[0]  # "Confirmed by al (W0ALLOWED) via slack <!date^…|…Z>"
    assert first.startswith(f"Confirmed by {NAMES[user]} ({user}) via slack <!date^"), first
    for by, again in zip(again_by, pressed[1:], strict=True):  # when it was confirmed, not pressed again
        expected = first if by == user else "Already c" + first[1:]
        assert again["text"].split(":")[0] == expected, again
    return ids.pop()


def test_failover_redis_confirmed_twice_reboots_the_primary_once(w: World) -> None:
    cache = resource("redis", "redis-amicis-ikea-dev")
    azure_cache(w.arm, cache)

    refused = w.queued(f"failover redis {cache}", STRANGER)
    assert "Sorry, you may not run `/dr failover`" in said(refused) and w.actions_on(cache) == []

    reply = confirmation(w, f"failover redis {cache}")
    assert set(buttons(reply["blocks"])) == {"dr_confirm", "dr_cancel"}
    assert "Action: redis.failover" in said(reply) and f"Target: {cache}" in said(reply)
    assert "Mode: auto" in said(reply) and w.arm.requests_to(f"{cache}/forceReboot", "POST") == []

    action_id = confirmed(w, reply, "900.001", ALLOWED, ON_CALL, ALLOWED)
    done = w.verified(action_id)
    worked(done)
    assert len(w.arm.requests_to(f"{cache}/forceReboot", "POST")) == 1
    assert done["planned_by"] == {"name": f"al ({ALLOWED})", "via": "slack"}
    lines = w.timeline(done["incident_id"])
    assert any(f"planned (auto) by al ({ALLOWED}) via slack" in line for line in lines)
    assert any("redis.failover" in line and "done and verified: primary moved" in line for line in lines)
    confirms = audit(w, done["incident_id"], "pressed dr_confirm")
    assert len(confirms) == 3 and all(line.endswith("→ done") for line in confirms), confirms


def test_cancel_does_nothing(w: World) -> None:
    cache = resource("redis", "redis-amicis-ikea-stage")
    azure_cache(w.arm, cache)
    reply = confirmation(w, f"failover redis {cache}")
    cancelled = w.press(
        "dr_cancel", buttons(reply["blocks"])["dr_cancel"], STRANGER, as_message(reply["blocks"], "900.002")
    )
    assert f"Cancelled by <@{STRANGER}>" in cancelled["text"] and buttons(cancelled["blocks"]) == {}
    # The cancellation is a record of its own (a later Confirm of that message finds it), never run.
    [tombstone] = w.actions_on(cache)
    assert tombstone["state"] == "skipped" and "cancel" in tombstone["result"].lower()
    assert w.arm.requests_to(f"{cache}/forceReboot") == []


def test_failover_cosmos_needs_an_approval_and_dr_approve_runs_it(w: World) -> None:
    account = resource("cosmosdb", "cosmos-amicis-ikea-stage")
    cosmos_account(w.arm, account)
    reply = confirmation(w, f"failover cosmos {account}")
    assert "Mode: approve" in said(reply)
    action_id = confirmed(w, reply, "900.003")
    waiting = w.state(action_id, "awaiting approval")
    request = w.thread_message(action_id)  # the approval request in the incident's thread
    assert buttons(request.blocks) == {"dr_approve": action_id, "dr_deny": action_id}
    assert w.arm.requests_to(f"{account}/offlineRegion") == []

    assert "Sorry, you may not run `/dr approve`" in said(w.queued(f"approve {action_id}", STRANGER))
    assert w.action(action_id)["state"] == "awaiting approval"
    approved = w.queued(f"approve {action_id}", ON_CALL)
    assert f"approved `{action_id}`" in said(approved), approved
    done = w.verified(action_id)
    worked(done)
    [offline] = w.arm.requests_to(f"{account}/offlineRegion", "POST")
    assert offline.json == {"region": "West Europe"}
    assert done["approved_by"] == {"name": f"ada ({ON_CALL})", "via": "slack"}
    lines = w.timeline(waiting["incident_id"])
    assert any(f"approved by ada ({ON_CALL}) via slack" in line for line in lines), lines
    assert audit(w, waiting["incident_id"], f"({STRANGER}) via slack: /dr approve {action_id} → refused")
    assert audit(w, waiting["incident_id"], f"ada ({ON_CALL}) via slack: /dr approve {action_id} → done")


def test_dr_deny_stops_it(w: World) -> None:
    account = resource("cosmosdb", "cosmos-amicis-hm-stage")
    cosmos_account(w.arm, account)
    action_id = confirmed(w, confirmation(w, f"failover cosmos {account}"), "900.004")
    w.state(action_id, "awaiting approval")
    denied = w.queued(f"deny {action_id}", ALLOWED)
    assert f"denied `{action_id}`" in said(denied)
    assert w.action(action_id)["state"] == "denied"
    again = w.queued(f"deny {action_id}", ON_CALL)
    assert f"Cannot deny {action_id}: it was denied" in said(again)
    assert w.arm.requests_to(f"{account}/offlineRegion") == []
    incident_id = w.action(action_id)["incident_id"]
    assert audit(w, incident_id, f"al ({ALLOWED}) via slack: /dr deny {action_id} → done")
    assert audit(w, incident_id, f"ada ({ON_CALL}) via slack: /dr deny {action_id} → refused: Cannot deny")


# --- an alert's action in approve mode: the request's buttons ---------------------------------------


def cosmos_alert(w: World, name: str, n: int) -> tuple[str, str]:
    """The Resource Health sample on account `name`: (its incident, its action awaiting approval)."""
    sample = json.loads((ROOT / "samples" / "cosmos-unavailable.json").read_text())
    essentials = sample["data"]["essentials"]
    account = essentials["alertTargetIDs"][0].replace("cosmos-amicis-ikea-dev", name)
    essentials.update(alertTargetIDs=[account], configurationItems=[name])
    essentials["alertId"] = essentials["alertId"][:-2] + f"{n:02d}"
    cosmos_account(w.arm, account)
    incident_id = w.alert(json.dumps(sample).encode())
    w.until(lambda: any(a["state"] == "awaiting approval" for a in w.actions_on(account)), "the request")
    [action] = w.actions_on(account)
    return incident_id, action["id"]


def test_an_alerts_approval_request_carries_approve_and_deny_and_approve_runs_it(w: World) -> None:
    incident_id, action_id = cosmos_alert(w, "cosmos-amicis-ikea-dev", 1)
    request = w.thread_message(action_id)
    card = w.card(incident_id)
    assert request.thread_ts == card.ts
    assert [b["type"] for b in request.blocks] == ["section", "section", "actions", "context"]
    assert "*Approval needed*" in request.blocks[0]["text"]["text"]
    fields = said(request.blocks[1]["fields"])
    assert "cosmosdb.failover" in fields and "Expires" in fields and "Asked by" in fields
    approve, deny = request.blocks[2]["elements"]
    assert (approve["action_id"], approve["value"], approve["style"]) == ("dr_approve", action_id, "primary")
    assert (deny["action_id"], deny["value"], deny["style"]) == ("dr_deny", action_id, "danger")

    message = as_message(request.blocks, request.ts)
    assert "Sorry, you may not approve actions" in said(w.press("dr_approve", action_id, STRANGER, message))
    pressed = w.press("dr_approve", action_id, ALLOWED, message)
    assert f"Approved by <@{ALLOWED}>" in pressed["text"] and buttons(pressed["blocks"]) == {}
    done = w.verified(action_id)
    worked(done)
    assert len(w.arm.requests_to(f"{done['target']}/offlineRegion", "POST")) == 1
    assert done["approved_by"] == {"name": f"al ({ALLOWED})", "via": "slack"}
    assert audit(w, incident_id, f"pressed dr_approve ({action_id}) → done")


def test_deny_pressed_twice_says_who_already_decided_and_when(w: World) -> None:
    incident_id, action_id = cosmos_alert(w, "cosmos-amicis-hm-dev", 2)
    request = w.thread_message(action_id)
    message = as_message(request.blocks, request.ts)
    first = w.press("dr_deny", action_id, ALLOWED, message)
    second = w.press("dr_deny", action_id, ON_CALL, message)
    assert f"Denied by <@{ALLOWED}>" in first["text"]
    record = w.action(action_id)
    assert record["state"] == "denied"
    assert f"Cannot deny {action_id}: it was denied by al ({ALLOWED}) via slack" in said(second), second
    assert record["updated_at"] in said(second)
    assert w.arm.requests_to(f"{record['target']}/offlineRegion") == []
    assert audit(w, incident_id, f"ada ({ON_CALL}) via slack: pressed dr_deny ({action_id}) → refused")


# --- Kubernetes: rollback, restart, restore --------------------------------------------------------


def resolved_and_succeeded(w: World, record: dict[str, Any]) -> None:
    """The person resolves the action's incident: the settling action is then called succeeded.

    (Until it is, it holds the cluster: one action at a time per resource.)"""
    assert "resolved" in said(w.queued(f"resolve {record['incident_id']}", ALLOWED))
    done = w.state(record["id"], "succeeded")
    assert done["result"].startswith("recovered: the incident resolved"), done


def test_rollback_restart_and_restore_reach_the_cluster_through_aks(w: World) -> None:
    reply = confirmation(w, f"rollback {AKS}:shop/web --to 1")
    assert "kubernetes.rollback" in said(reply) and "To revision: 1" in said(reply), said(reply)
    rollback = confirmed(w, reply, "900.010")
    w.until(lambda: len(w.kube.patches) == 1, "the rollback's patch")
    [patch] = w.kube.patches
    assert patch.content_type == "application/json-patch+json"
    rolled_out(w.kube)
    done = w.verified(rollback)
    worked(done)
    web = w.kube.get("Deployment", "shop", "web")
    assert web is not None and web["spec"]["template"]["spec"] == V1["spec"]
    assert any(
        f"planned (auto) by al ({ALLOWED}) via slack" in line for line in w.timeline(done["incident_id"])
    )
    resolved_and_succeeded(w, done)

    restart = confirmed(w, confirmation(w, f"restart {AKS}:shop/web"), "900.011")
    w.until(lambda: len(w.kube.patches) == 2, "the restart's patch")
    rolled_out(w.kube)
    done = w.verified(restart)
    worked(done)
    web = w.kube.get("Deployment", "shop", "web")
    assert (
        web is not None
        and "kubectl.kubernetes.io/restartedAt" in web["spec"]["template"]["metadata"]["annotations"]
    )
    resolved_and_succeeded(w, done)

    reply = confirmation(w, f"restore {AKS}:shop --backup nightly-20261201")
    assert "velero.restore" in said(reply) and "Backup: nightly-20261201" in said(reply), said(reply)
    restore = confirmed(w, reply, "900.012")
    w.state(restore, "awaiting approval")
    assert "you asked for it" in said(w.queued(f"approve {restore}", ALLOWED))  # four eyes
    assert f"approved `{restore}`" in said(w.queued(f"approve {restore}", ON_CALL))
    restores = "/apis/velero.io/v1/namespaces/velero/restores"
    w.until(lambda: len(w.kube.requests_to(restores, "POST")) == 1, "the Restore")
    [created] = w.kube.requests_to(restores, "POST")
    assert created.json["spec"]["backupName"] == "nightly-20261201"
    assert created.json["spec"]["includedNamespaces"] == ["shop"]
    w.kube.set_status("Restore", "velero", created.json["metadata"]["name"], phase="Completed")
    worked(w.verified(restore))
    assert len(w.kube.requests_to(restores, "POST")) == 1 and len(w.kube.patches) == 2
    # Every call carried a token the managed identity issued for AKS's Entra ID server application.
    tokens = {f"Bearer {i.token}" for i in w.identity.issued if i.resource.startswith(AKS_SERVER_APP)}
    assert tokens and {r.header("authorization") for r in w.kube.requests} <= tokens


# --- the kill switch -------------------------------------------------------------------------------


def test_pause_refuses_a_persons_action_until_resume(w: World) -> None:
    cache = resource("redis", "redis-amicis-zara-dev", rg="rg-amicis-zara-dev")
    azure_cache(w.arm, cache)
    assert "Sorry, you may not run `/dr pause`" in said(w.queued("pause zara", STRANGER))
    paused = w.queued("pause zara", ALLOWED)  # with a reason, a tenant no incident had is refused
    assert f"automation paused for tenant zara by al ({ALLOWED}) via slack" in said(paused), paused
    refused = confirmation(w, f"failover redis {cache}")
    assert "dr_confirm" not in buttons(refused["blocks"]) and "paused" in said(refused)
    assert "`/dr resume` lifts it" in said(refused)
    status = w.command("status", STRANGER)[0]
    assert "paused" in said(status).lower()

    resumed = w.queued("resume zara", ON_CALL)
    assert "automation resumed for tenant zara" in said(resumed), resumed
    action_id = confirmed(w, confirmation(w, f"failover redis {cache}"), "900.020")
    worked(w.verified(action_id))
    assert len(w.arm.requests_to(f"{cache}/forceReboot", "POST")) == 1


# --- read-only, and what the log keeps -------------------------------------------------------------


def test_status_incidents_and_show_and_no_secret_in_the_log(w: World) -> None:
    incident_id = paged_incident(w, "redis-amicis-coop-dev", 3)
    status, _ = w.command("status", STRANGER)
    assert status["response_type"] == "in_channel" and incident_id in said(status)
    listed = w.queued("incidents coop", STRANGER)
    assert incident_id in said(listed)
    shown, _ = w.command(f"show {incident_id}", STRANGER)
    assert incident_id in said(shown) and "Timeline" in said(shown)
    assert audit(w, incident_id, f"/dr show {incident_id} → shown")

    refused = w.press("dr_resolve", incident_id, STRANGER, as_message(w.card(incident_id).blocks))
    assert "Sorry" in refused["text"]

    log = w.served.log.read_text()
    assert "slack: " in log and "pressed dr_resolve" in log  # the audit lines are there
    tokens = [i.token for i in w.identity.issued]  # ARM's and AKS's bearer tokens, once an action ran
    # The response_urls are capabilities: neither their path nor their secret part is logged.
    for secret in (
        SECRET,
        BOT,
        PD_TOKEN,
        ROUTING_KEY,
        w.identity.secret,
        "/actions/T111/",
        "secret-",
        *tokens,
    ):
        assert secret not in log, f"{secret!r} in dr serve's log"


def test_nothing_unsigned_reaches_the_operations(w: World) -> None:
    cache = resource("redis", "redis-amicis-ikea-test")
    body = command_body(f"failover redis {cache}", w.slack.response_url("unsigned"), user_id=ALLOWED)
    answer = w.served.client.post(
        "/slack/commands", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 401
    assert w.slack.responses("unsigned") == [] and w.actions_on(cache) == []
