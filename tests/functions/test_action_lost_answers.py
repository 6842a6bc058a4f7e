"""A start whose answer was lost, through the whole pipeline, on the real adapters and their wire stubs.

The stub takes the one call that changes the target and then loses its answer (a 502, a dropped
connection). The action must never send that call again on a maybe: it waits, asks the
precondition about that very start, and goes on from what it finds. Across every delivery, exactly
one reboot (one PATCH) reaches the stub, and the action ends succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.actions.kind import ActionKind
from shared.adapters.azure_actions import azure_kinds
from shared.adapters.kube import kube_kinds
from shared.bootstrap import Services
from shared.domain.actions import ActionState
from tests.action_kinds import PretendCache
from tests.factories import FakeClock, resource
from tests.fakes import FakeChat, FakePager
from tests.functions.action_harness import (
    CACHE,
    only_action,
    open_incident,
    run_queues,
    services_for,
    timeline,
    use,
)
from tests.kube_access import TOKENS, StubLocator
from tests.kube_objects import NAME, NAMESPACE, deployment, replica_set, template
from tests.stubs.arm import ArmStub, StubCredential
from tests.stubs.arm_services import azure_cache, serve_azure_cache
from tests.stubs.kube_api import KubeApiStub

LOST_ANSWER_SECONDS = 120  # PipelineSettings.lost_answer_seconds (the lease here is 60 s)
REBOOT = f"{CACHE}/forceReboot"
CLUSTER = resource("aks", "aks-shop", "rg-amicis-ikea-prod")
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"
RULE = "automation (rule test-redis-down)"

Build = Callable[[str, list[ActionKind]], Services]


@pytest.fixture
def build(data_dir: Path, clock: FakeClock, pager: FakePager, chat: FakeChat) -> Build:
    """The app with one rule running `action` on `redis-down*` alerts, with these kinds (no pretend one)."""

    def built(action: str, kinds: list[ActionKind]) -> Services:
        return use(services_for(data_dir, clock, PretendCache(), pager, chat, action, kinds=kinds))

    return built


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmStub]:
    with ArmStub() as started:
        started.announce(monkeypatch)
        yield started


def _waits_first(app: Services, clock: FakeClock, incident_id: str, asked: Callable[[], int]) -> None:
    """After the lost answer nothing is asked or sent until lost_answer_seconds have passed."""
    record = only_action(app, incident_id)
    assert (record.state, record.continuation["phase"]) == (ActionState.RUNNING, "starting")
    assert "start_failed" not in record.continuation and record.continuation["outcome_unknown"]
    before = asked()
    run_queues(app, seconds=LOST_ANSWER_SECONDS - 2)
    assert asked() == before, "looked again before lost_answer_seconds"


@pytest.mark.parametrize(
    ("swap_after_reads", "lost", "looked"),
    [
        (
            0,
            502,
            "it is under way or done (the primary moved already (shard 0: instance 0 → 1)); checking it",
        ),
        (1, None, "no sign that it took effect (reboot the primary of"),
    ],
    ids=["answered-502-swap-seen", "dropped-swap-not-yet-seen"],
)
def test_a_redis_reboot_whose_answer_was_lost_is_sent_once_and_succeeds(
    build: Build,
    arm: ArmStub,
    clock: FakeClock,
    swap_after_reads: int,
    lost: int | None,
    looked: str,
) -> None:
    serve_azure_cache(arm, swap_after_reads=swap_after_reads)  # the roles swap that many reads later
    azure_cache(arm, CACHE)
    app = build(
        '{ action = "redis.failover", mode = "auto", settle_minutes = 5 }',
        azure_kinds(arm.url, StubCredential(), check_seconds=1),
    )
    arm.lose_answer_next(REBOOT, lost, method="POST")  # ARM queues the reboot; its answer is lost

    incident_id = open_incident()
    run_queues(app, until=lambda: len(arm.requests_to(REBOOT, "POST")) == 1)
    _waits_first(app, clock, incident_id, lambda: len(arm.requests_to(CACHE, "GET")))
    run_queues(app)

    record = only_action(app, incident_id)
    assert len(arm.requests_to(REBOOT, "POST")) == 1, "a second reboot would fail the cache back"
    assert record.state is ActionState.SUCCEEDED, (record.state, record.result)
    lines = timeline(app, incident_id)
    said = (
        f"redis.failover on {CACHE}: the answer to the start was lost (rebooting the primary of Azure Cache"
    )
    assert any(
        t.startswith(said)
        and t.endswith(f"; looking again in {LOST_ANSWER_SECONDS} s before doing anything ({RULE})")
        for t in lines
    ), lines
    assert any(f"looked again after the start's answer was lost: {looked}" in t for t in lines), lines
    assert any("done and verified: primary moved (shard 0: instance 0 → 1)" in t for t in lines), lines


def _rollout_history() -> list[dict[str, Any]]:
    v2, v3 = template("shop/web:2", env="canary"), template("shop/web:3")
    return [
        deployment(v3, revision=3),
        replica_set(template("shop/web:1"), revision=1),
        replica_set(v2, revision=2),
        replica_set(v3, revision=3),
    ]


@pytest.mark.parametrize("lost", [502, None], ids=["answered-502", "dropped"])
def test_a_kubernetes_rollback_whose_patch_answer_was_lost_is_patched_once_and_succeeds(
    build: Build, clock: FakeClock, lost: int | None
) -> None:
    with KubeApiStub(tls=True, tokens=TOKENS) as kube:
        for obj in _rollout_history():
            kube.add(obj)
        app = build(
            '{ action = "kubernetes.rollback", mode = "auto", settle_minutes = 5, deployment = "shop/web",'
            " rolled_out_within_minutes = 0 }",
            kube_kinds(StubLocator(kube)),
        )
        kube.lose_answer_next(DEPLOYMENT_PATH, lost, method="PATCH")  # applied; the answer lost

        incident_id = open_incident(target=CLUSTER)
        run_queues(app, until=lambda: len(kube.patches) == 1)
        _waits_first(app, clock, incident_id, lambda: len(kube.requests_to(DEPLOYMENT_PATH, "GET")))
        run_queues(app, until=lambda: only_action(app, incident_id).continuation.get("phase") == "operating")
        kube.set_status(
            "Deployment",
            NAMESPACE,
            NAME,
            observedGeneration=4,
            replicas=3,
            updatedReplicas=3,
            availableReplicas=3,
        )
        run_queues(app)

        record = only_action(app, incident_id)
        assert len(kube.patches) == 1, "one rollback: a second PATCH is refused or undoes it"
        assert record.state is ActionState.SUCCEEDED, (record.state, record.result)
        patched = kube.get("Deployment", NAMESPACE, NAME)
        assert patched is not None
        assert patched["metadata"]["annotations"]["dr-responder/action-id"] == record.id
        assert patched["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/web:2"
        lines = timeline(app, incident_id)
        assert not any("changed since the precondition" in t for t in lines), lines
        assert any(
            "looked again after the start's answer was lost: it is under way or done (deployment shop/web "
            "carries this action's dr-responder/action-id: its rollback was applied); checking it" in t
            for t in lines
        ), lines
        assert any('done and verified: deployment "web" successfully rolled out' in t for t in lines), lines
