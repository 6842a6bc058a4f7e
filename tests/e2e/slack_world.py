"""The world the real /dr runs against in e2e: `dr serve` (its own Operations) and every vendor's stub.

Slack (Web API and response_urls), PagerDuty Events and REST, ARM behind a managed identity
(Azure Cache, Cosmos DB, AKS's user kubeconfig) and the Kubernetes API of that cluster (Deployments,
ReplicaSets, Velero). Requests are signed and form-encoded as Slack sends them.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Responder
from tests.factories import resource
from tests.kube_objects import deployment, replica_set, template
from tests.slack_requests import SECRET, command_body, interaction_body, signed_headers
from tests.stubs import ArmStub, PagerDutyEventsStub, PagerDutyRestStub, SlackStub
from tests.stubs.arm_services import kubeconfig, serve_azure_cache, serve_cosmos
from tests.stubs.base import Reply
from tests.stubs.kube_api import KubeApiStub
from tests.stubs.managed_identity import ManagedIdentityStub

BOT = "xoxb-e2e-real-ops"
PD_TOKEN = "pd-e2e-real-ops"
ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
CHANNEL = "C0INCIDENTS"
FROM = "dr-responder@example.com"
ALLOWED, ON_CALL, STRANGER = "W0ALLOWED", "W0ONCALL", "W0STRANGER"
NAMES = {ALLOWED: "al", ON_CALL: "ada", STRANGER: "someone"}
AKS = resource("aks", "aks-shop", rg="rg-amicis-shop-prod")
V1, V2, V3 = template("shop/web:1"), template("shop/web:2", env="canary"), template("shop/web:3")
FINAL = ("succeeded", "failed", "refused", "skipped", "denied", "expired")
# Our guardrails' per-hour limits are for automation; a test of every command takes more actions.
LIMITS = {"max_per_hour": 100, "max_per_hour_per_tenant": 100, "max_per_hour_per_region": 100}


@dataclass
class World:
    """The stubs and the responder; `said` collects every Slack request's reply (by its name)."""

    slack: SlackStub
    events: PagerDutyEventsStub
    rest: PagerDutyRestStub
    arm: ArmStub
    identity: ManagedIdentityStub
    kube: KubeApiStub
    served: Responder
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # --- Slack's requests -----------------------------------------------------------------

    def send(self, route: str, body: bytes) -> httpx.Response:
        """POST as Slack does: no function key, the signature instead."""
        headers = {k.lower(): v for k, v in signed_headers(body, int(time.time())).items()}
        return self.served.client.post(f"/slack/{route}", content=body, headers=headers)

    def command(self, text: str, user: str) -> tuple[dict[str, Any], str]:
        """/dr <text> by `user`: (the HTTP answer's JSON, the name its response_url is read by)."""
        name = f"c{next(self._ids)}"
        body = command_body(
            text, self.slack.response_url(name), user_id=user, trigger_id=f"t.{name}", user_name=NAMES[user]
        )
        answer = self.send("commands", body)
        assert answer.status_code == 200, answer.text
        return answer.json(), name

    def queued(self, text: str, user: str) -> dict[str, Any]:
        """/dr <text> that is answered through the response_url: that answer."""
        _, name = self.command(text, user)
        return self.reply(name)

    def press(
        self,
        action_id: str,
        value: str,
        user: str,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Press a button on `message` (its blocks): the reply posted to the press's response_url."""
        name = f"p{next(self._ids)}"
        body = interaction_body(
            action_id,
            value,
            self.slack.response_url(name),
            user_id=user,
            trigger_id=f"t.{name}",
            action_ts=f"{time.time():.6f}",
            message=message,
            user_name=NAMES[user],
        )
        answer = self.send("interactions", body)
        assert answer.status_code == 200, answer.text
        return self.reply(name)

    def reply(self, name: str) -> dict[str, Any]:
        assert self.slack.wait_until(lambda: len(self.slack.responses(name)) >= 1, 20), f"no reply ({name})"
        [reply] = self.slack.responses(name)
        return dict(reply)

    # --- what dr serve holds --------------------------------------------------------------

    def alert(self, payload: bytes) -> str:
        answer = self.served.post("/alerts", payload)
        [incident_id] = self.served.incidents_of(answer)
        return incident_id

    def incident(self, incident_id: str) -> dict[str, Any]:
        return dict(self.served.get(f"/incidents/{incident_id}").json())

    def timeline(self, incident_id: str) -> list[str]:
        return [f"{e['kind']}: {e['text']}" for e in self.incident(incident_id)["timeline"]]

    def action(self, action_id: str) -> dict[str, Any]:
        found = [a for a in self.served.get("/actions").json()["actions"] if a["id"] == action_id]
        assert found, f"no action {action_id}"
        return dict(found[0])

    def actions_on(self, target: str) -> list[dict[str, Any]]:
        return [a for a in self.served.get("/actions").json()["actions"] if a["target"] == target]

    def until(self, check: Any, what: str) -> None:
        self.served.wait_for(check, what)

    def state(self, action_id: str, wanted: str | Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Wait until the action is in state `wanted` (or passes it); the record then."""
        seen: list[dict[str, Any]] = []

        def reached() -> bool:
            seen[:] = [self.action(action_id)]
            return seen[0]["state"] == wanted if isinstance(wanted, str) else wanted(seen[0])

        try:
            self.until(reached, f"{action_id} {wanted}")
        except AssertionError:
            raise AssertionError(f"{action_id} not {wanted} in time: {seen}") from None
        return seen[0]

    def verified(self, action_id: str) -> dict[str, Any]:
        """Wait until the action has done its work and checked it (then it settles for the policy's
        settle_minutes before it is called succeeded), or has finished otherwise; the record then."""

        def done(record: dict[str, Any]) -> bool:
            return record["state"] in FINAL or record["continuation"].get("phase") == "settling"

        return self.state(action_id, done)

    def thread_message(self, action_id: str) -> Any:
        """The Slack message whose buttons name the action (its approval request)."""

        def found() -> Any:
            for message in self.slack.messages():
                if action_id in buttons(message.blocks).values():
                    return message
            return None

        self.until(lambda: found() is not None, f"the approval request of {action_id} in Slack")
        return found()

    def card(self, incident_id: str) -> Any:
        """The incident's card (the top-level message with its buttons)."""

        def found() -> Any:
            cards = [c for c in self.slack.cards(CHANNEL) if incident_id in buttons(c.blocks).values()]
            return cards[0] if cards else None

        self.until(lambda: found() is not None, f"the card of {incident_id}")
        return found()


def buttons(blocks: Any) -> dict[str, str]:
    """action_id → value of every button in the blocks."""
    return {
        e["action_id"]: e["value"]
        for b in blocks or ()
        if b.get("type") == "actions"
        for e in b.get("elements", ())
    }


def as_message(blocks: Any, ts: str = "111.222") -> dict[str, Any]:
    """A block_actions payload's `message`: what the button was pressed on."""
    return {"type": "message", "ts": ts, "text": "", "blocks": list(blocks)}


def said(reply: Any) -> str:
    return json.dumps(reply, ensure_ascii=False)


def policy_file(path: Path) -> Path:
    """The default policy, its per-hour limits raised (see LIMITS)."""
    from shared.triage.policy import DEFAULT_POLICY

    text = DEFAULT_POLICY.read_text()
    for key, value in LIMITS.items():
        text, found = re.subn(rf"^{key} = \d+$", f"{key} = {value}", text, count=1, flags=re.M)
        assert found, f"the default policy has no {key}"
    path.write_text(text)
    return path


def serve_aks(arm: ArmStub, kube: KubeApiStub) -> None:
    """The AKS cluster in ARM; its user kubeconfig names the Kubernetes API stub."""
    arm.put(AKS, {"location": "westeurope", "properties": {"provisioningState": "Succeeded"}})
    config = base64.b64encode(kubeconfig(kube.url, kube.ca_pem).encode()).decode()
    arm.on(
        "POST",
        r".*/managedClusters/[^/]+/listClusterUserCredential",
        lambda request, match: Reply(200, {"kubeconfigs": [{"name": "clusterUser", "value": config}]}),
    )
    for obj in (
        deployment(V3, revision=3),
        replica_set(V1, revision=1),
        replica_set(V2, revision=2),
        replica_set(V3, revision=3),
        velero_backup("nightly-20261201", "shop"),
    ):
        kube.add(obj)


def velero_backup(name: str, namespace: str) -> dict[str, Any]:
    """A Completed Velero Backup of the namespace."""
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": "velero", "labels": {"velero.io/schedule-name": "daily"}},
        "spec": {"includedNamespaces": [namespace], "storageLocation": "default", "ttl": "720h0m0s"},
        "status": {"phase": "Completed", "startTimestamp": "2026-12-01T01:00:00Z", "version": 1},
    }


def rolled_out(kube: KubeApiStub) -> None:
    """What the Deployment controller does after a patch: every replica updated and available."""
    found = kube.get("Deployment", "shop", "web")
    assert found is not None
    generation = found["metadata"]["generation"]
    kube.set_status(
        "Deployment",
        "shop",
        "web",
        observedGeneration=generation,
        replicas=3,
        updatedReplicas=3,
        availableReplicas=3,
    )


def world(base: Path) -> Iterator[World]:
    """Start every stub and `dr serve` against them; stop them all after."""
    with ExitStack() as stack:
        slack = stack.enter_context(SlackStub(token=BOT, channels={"incidents": CHANNEL}))
        events = stack.enter_context(PagerDutyEventsStub())
        rest = stack.enter_context(PagerDutyRestStub(token=PD_TOKEN))
        arm = stack.enter_context(ArmStub())
        identity = stack.enter_context(ManagedIdentityStub())
        kube = stack.enter_context(KubeApiStub(tls=True))
        serve_azure_cache(arm)
        serve_cosmos(arm)
        serve_aks(arm, kube)
        rest.add_service("PSVC1", escalation_policy_id="EP1")
        rest.add_on_call("EP1", "PU1", "Ada Lovelace", "ada@example.com")
        slack.add_user(ON_CALL, "ada@example.com", "ada")
        slack.add_user(STRANGER, "someone@example.com", "someone")
        slack.add_user(ALLOWED, "allowed@example.com", "al")
        env = {
            **events.client_env(),
            **arm.client_env(),
            **identity.client_env(),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_ALLOWED_USERS": ALLOWED,
            "SLACK_BOT_TOKEN": BOT,
            "SLACK_API_URL": slack.url,
            "SLACK_CHANNEL": CHANNEL,
            "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "PAGERDUTY_EVENTS_URL": events.url,
            "PAGERDUTY_API_TOKEN": PD_TOKEN,
            "PAGERDUTY_API_URL": rest.url,
            "PAGERDUTY_SERVICE_ID": "PSVC1",
            "PAGERDUTY_FROM_EMAIL": FROM,
            "DR_ARM_URL": arm.url,
            "DR_POLICY_FILE": str(policy_file(base / "policy.toml")),
            "DR_ACTION_CHECK_SECONDS": "0.2",
            "DR_QUEUE_LOCK_SECONDS": "2",
            "DR_LOST_ANSWER_SECONDS": "4",  # the lease: a takeover looks as soon as it may
            "DR_RETRY_BASE_SECONDS": "0.05",
            "DR_RETRY_MAX_SECONDS": "0.2",
        }
        served = Responder(base / "data", env)
        stack.callback(served.stop)
        yield World(slack, events, rest, arm, identity, kube, served)
