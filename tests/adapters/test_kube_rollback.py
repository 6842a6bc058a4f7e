"""kubernetes.rollback on the real kubernetes client, against the API stub over TLS with Entra-like tokens."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.actions.kind import ActionFailed, Progress, Target, Verdict
from shared.actions.kubernetes import ACTION_ANNOTATION, KubernetesRollback
from shared.actions.rollout import REVISION, plan_rollback
from shared.adapters.kube import KubeClusters, kube_kinds
from shared.errors import OutcomeUnknown, Transient
from tests.kube_access import AKS_ID, OPENED, TOKENS, StubLocator, aks_target, bearer_tokens, incident
from tests.kube_objects import NAME, NAMESPACE, deployment, replica_set, template
from tests.stubs.kube_api import KubeApiStub

V1, V2, V3 = template("shop/web:1"), template("shop/web:2", env="canary"), template("shop/web:3")
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"
REPLICA_SETS_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets"


def history() -> list[dict[str, Any]]:
    """web at revision 3 (its ReplicaSet created 2026-11-23T10:00Z), revisions 1 and 2 before it."""
    return [
        deployment(V3, revision=3),
        replica_set(V1, revision=1),
        replica_set(V2, revision=2),
        replica_set(V3, revision=3),
    ]


@pytest.fixture
def stub() -> Iterator[KubeApiStub]:
    with KubeApiStub(tls=True, tokens=TOKENS) as server:
        for obj in history():
            server.add(obj)
        yield server


@pytest.fixture
def locator(stub: KubeApiStub) -> StubLocator:
    return StubLocator(stub)


@pytest.fixture
def rollback(locator: StubLocator) -> KubernetesRollback:
    return KubernetesRollback(KubeClusters(locator))


def target(**params: Any) -> Target:
    return aks_target(deployment=f"{NAMESPACE}/{NAME}", **params)


def test_precondition_reads_the_deployment_and_its_replica_sets_and_plans_kubectls_patch(
    stub: KubeApiStub, locator: StubLocator, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(target(), incident())

    assert check.verdict is Verdict.PROCEED, check.detail
    assert "roll back to revision 2" in check.detail
    objects = history()
    expected = plan_rollback(objects[0], objects[1:])
    assert check.found["patch"] == expected.body()
    assert check.found["revision"] == 2
    assert check.found["generation"] == 3
    get, listing = stub.requests
    assert (get.method, get.path) == ("GET", DEPLOYMENT_PATH)
    assert (listing.method, listing.path) == ("GET", REPLICA_SETS_PATH)
    assert listing.query == {"labelSelector": ["app=web"]}  # what kubectl lists with
    # A token asked for before each request (refresh_api_key_hook), not one kept from the first.
    assert bearer_tokens(stub) == list(TOKENS[:2])
    assert locator.located == [AKS_ID]


def test_execute_sends_one_json_patch_and_keeps_the_new_generation(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(target(), incident())
    stub.forget_requests()

    step = rollback.execute(target(), incident(), check.found)

    assert step.progress is Progress.PENDING
    assert step.detail == "deployment.apps/web rolled back to revision 2 (replica set " + (
        f"{check.found['replica_set']})"
    )
    assert step.continuation == {"generation": 4, "revision": 2}
    get, patch = stub.requests
    assert (get.method, get.path) == ("GET", DEPLOYMENT_PATH)
    assert (patch.method, patch.path, patch.query) == ("PATCH", DEPLOYMENT_PATH, {})
    assert patch.header("content-type") == "application/json-patch+json"
    assert patch.json == check.found["patch"]
    assert [op["path"] for op in patch.json] == ["/spec/template", "/metadata/annotations"]
    after = stub.get("Deployment", NAMESPACE, NAME)
    assert after is not None
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/web:2"


def test_check_follows_rollout_status_until_done(stub: KubeApiStub, rollback: KubernetesRollback) -> None:
    check = rollback.precondition(target(), incident())
    continuation = rollback.execute(target(), incident(), check.found).continuation
    stub.forget_requests()
    waiting = 'Waiting for deployment "web" rollout to finish: '
    statuses: list[tuple[dict[str, Any], Progress, str]] = [
        ({}, Progress.PENDING, "Waiting for deployment spec update to be observed..."),
        (
            {"observedGeneration": 4, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3},
            Progress.PENDING,
            f"{waiting}1 out of 3 new replicas have been updated...",
        ),
        (
            {"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3},
            Progress.PENDING,
            f"{waiting}1 old replicas are pending termination...",
        ),
        (
            {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2},
            Progress.PENDING,
            f"{waiting}2 of 3 updated replicas are available...",
        ),
        ({"availableReplicas": 3}, Progress.DONE, 'deployment "web" successfully rolled out'),
    ]
    for fields, progress, detail in statuses:
        stub.set_status("Deployment", NAMESPACE, NAME, **fields)
        step = rollback.check(target(), incident(), continuation)
        assert (step.progress, step.detail) == (progress, detail)
        assert step.continuation["generation"] == 4
        assert step.continuation["revision"] == 2
        continuation = step.continuation
    assert {(r.method, r.path) for r in stub.requests} == {("GET", DEPLOYMENT_PATH)}


def test_check_fails_when_the_progress_deadline_is_exceeded(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(target(), incident())
    continuation = rollback.execute(target(), incident(), check.found).continuation
    condition = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    stub.set_status("Deployment", NAMESPACE, NAME, observedGeneration=4, conditions=[condition])

    step = rollback.check(target(), incident(), continuation)

    assert step.progress is Progress.FAILED
    assert step.detail == 'deployment "web" exceeded its progress deadline'


def test_a_rollout_older_than_the_window_is_refused(stub: KubeApiStub, rollback: KubernetesRollback) -> None:
    check = rollback.precondition(target(), incident(opened=OPENED + timedelta(hours=2)))

    assert check.verdict is Verdict.REFUSE
    assert "not a recent rollout" in check.detail
    assert "(revision 3) was created at 2026-11-23T10:00:00Z, more than 60 minutes before" in check.detail
    assert stub.patches == []


def test_the_window_is_a_parameter_and_zero_turns_it_off(rollback: KubernetesRollback) -> None:
    late = incident(opened=OPENED + timedelta(hours=2))

    assert rollback.precondition(target(rolled_out_within_minutes=180), late).verdict is Verdict.PROCEED
    assert rollback.precondition(target(rolled_out_within_minutes=0), late).verdict is Verdict.PROCEED
    assert rollback.precondition(target(rolled_out_within_minutes=30), incident()).verdict is Verdict.PROCEED
    assert rollback.precondition(target(rolled_out_within_minutes=10), incident()).verdict is Verdict.REFUSE


def test_a_rollout_after_the_incident_opened_is_refused(rollback: KubernetesRollback) -> None:
    check = rollback.precondition(target(), incident(opened=OPENED - timedelta(hours=1)))

    assert check.verdict is Verdict.REFUSE
    assert "after the incident opened" in check.detail


def test_paused_deployment_is_refused(stub: KubeApiStub, rollback: KubernetesRollback) -> None:
    stub.add(deployment(V3, revision=3, paused=True))

    check = rollback.precondition(target(), incident())

    assert check.verdict is Verdict.REFUSE
    assert "you cannot rollback a paused deployment" in check.detail


def test_template_already_at_the_revision_is_skipped(rollback: KubernetesRollback) -> None:
    check = rollback.precondition(target(to_revision=3), incident())

    assert check.verdict is Verdict.SKIP
    assert check.detail == (
        "deployment shop/web: skipped rollback (current template already matches revision 3)"
    )


def test_to_revision_goes_to_that_revision(rollback: KubernetesRollback) -> None:
    check = rollback.precondition(target(to_revision=1), incident())

    assert check.verdict is Verdict.PROCEED
    assert check.found["revision"] == 1


def test_no_previous_revision_is_refused(stub: KubeApiStub, rollback: KubernetesRollback) -> None:
    stub.reset()
    stub.add(deployment(V3, revision=3))
    stub.add(replica_set(V3, revision=3))

    check = rollback.precondition(target(), incident())

    assert check.verdict is Verdict.REFUSE
    assert check.detail == 'no rollout history found for deployment "web"'


def test_a_missing_deployment_is_refused_naming_the_api_servers_message(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(aks_target(deployment="shop/nope"), incident())

    assert check.verdict is Verdict.REFUSE
    assert "GET deployment shop/nope on /subscriptions/" in check.detail
    assert '404 NotFound: deployments.apps "nope" not found' in check.detail


def test_a_bad_deployment_parameter_is_refused_before_any_request(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(aks_target(deployment="web"), incident())

    assert check.verdict is Verdict.REFUSE
    assert check.detail == "deployment must be \"namespace/name\", not 'web'"
    assert stub.requests == []


def test_execute_fails_when_the_deployment_changed_since_the_precondition(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(target(), incident())
    moved = deployment(template("shop/web:4"), revision=4)
    stub.add(moved)

    with pytest.raises(ActionFailed, match=r"changed since the precondition \(generation 3 → 4\)"):
        rollback.execute(target(), incident(), check.found)
    assert stub.patches == []


def test_429_is_transient_held_with_retry_after_and_not_retried_in_process(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(target(), incident())
    stub.forget_requests()
    stub.respond_next(DEPLOYMENT_PATH, 429, headers={"Retry-After": "1"})

    with pytest.raises(Transient) as caught:
        rollback.execute(target(), incident(), check.found)

    assert caught.value.held is True
    assert caught.value.retry_after == 1.0
    assert "429 TooManyRequests" in str(caught.value)
    assert len(stub.requests) == 1  # urllib3 did not sleep through the Retry-After itself


def test_500_on_the_patch_is_transient(stub: KubeApiStub, rollback: KubernetesRollback) -> None:
    check = rollback.precondition(target(), incident())
    # The GET before the patch is answered as usual, the PATCH with a 500.
    stub.respond_next(DEPLOYMENT_PATH, 200, stub.get("Deployment", NAMESPACE, NAME))
    stub.fail_next(DEPLOYMENT_PATH, times=1, status=500)

    with pytest.raises(Transient) as caught:
        rollback.execute(target(), incident(), check.found)

    assert caught.value.held is False
    assert "PATCH deployment shop/web" in str(caught.value)
    assert "500 InternalError" in str(caught.value)


def test_403_is_action_failed_with_the_forbidden_message(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    message = (
        'deployments.apps "web" is forbidden: User "dr-responder" cannot patch resource '
        '"deployments" in API group "apps" in the namespace "shop"'
    )
    check = rollback.precondition(target(), incident())
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403}
    stub.respond_next(DEPLOYMENT_PATH, 200, stub.get("Deployment", NAMESPACE, NAME))
    stub.respond_next(DEPLOYMENT_PATH, 403, {**body, "message": message})

    with pytest.raises(ActionFailed, match=re.escape(f"403 Forbidden: {message}")):
        rollback.execute(target(), incident(), check.found)


def test_401_without_a_valid_token_is_refused_in_the_precondition(stub: KubeApiStub) -> None:
    stub.tokens = {"another-token"}
    kinds = {k.name: k for k in kube_kinds(StubLocator(stub))}

    check = kinds["kubernetes.rollback"].precondition(target(), incident())

    assert check.verdict is Verdict.REFUSE
    assert "401 Unauthorized" in check.detail


def test_an_unreachable_cluster_is_transient(stub: KubeApiStub, rollback: KubernetesRollback) -> None:
    stub.stop()

    with pytest.raises(Transient, match="unreachable"):
        rollback.check(target(), incident(), {"generation": 4})


def test_the_client_is_built_once_per_cluster(stub: KubeApiStub, locator: StubLocator) -> None:
    clusters = KubeClusters(locator)
    first = clusters.cluster(target())
    clusters.cluster(target())
    other = clusters.cluster(Target(AKS_ID.replace("aks-shop", "aks-other")))

    assert locator.located == [AKS_ID, AKS_ID.replace("aks-shop", "aks-other")]
    assert first.client is clusters.cluster(target()).client
    assert other.client is not first.client


def test_a_kubeconfig_target_is_reached_through_its_context(stub: KubeApiStub, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(stub.kubeconfig(token=TOKENS[5], context="shop-prod"))
    kinds = {k.name: k for k in kube_kinds(None)}
    reached = Target(
        "shop-prod", {"deployment": "shop/web"}, {"kubeconfig": str(config), "context": "shop-prod"}
    )

    check = kinds["kubernetes.rollback"].precondition(reached, incident())

    assert check.verdict is Verdict.PROCEED, check.detail
    assert bearer_tokens(stub) == [TOKENS[5], TOKENS[5]]


def test_without_a_locator_or_kubeconfig_the_precondition_refuses() -> None:
    kinds = {k.name: k for k in kube_kinds(None)}

    check = kinds["kubernetes.rollback"].precondition(target(), incident())

    assert check.verdict is Verdict.REFUSE
    assert "no way to reach cluster" in check.detail


def test_command_is_the_kubectl_line(rollback: KubernetesRollback) -> None:
    assert rollback.command(target()) == "kubectl rollout undo deployment/web -n shop --context aks-shop"
    assert rollback.command(target(to_revision=2)) == (
        "kubectl rollout undo deployment/web -n shop --to-revision=2 --context aks-shop"
    )
    reached = Target(
        "shop-prod", {"deployment": "shop/web"}, {"kubeconfig": "/etc/kube/c", "context": "prod"}
    )
    assert rollback.command(reached) == (
        "kubectl rollout undo deployment/web -n shop --context prod --kubeconfig /etc/kube/c"
    )


# --- the action id on the Deployment, and a start whose answer was lost -----------------------------

ACTION_ID = "act-0123456789abcdef"


def acting(started: Any = None) -> Any:
    """The pipeline's context: the action's id, and on a takeover the start it asks about."""
    return dataclasses.replace(incident(), action_id=ACTION_ID, started=started)


def test_execute_sends_kubectls_patch_with_only_the_action_id_added(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(target(), acting())
    objects = history()
    assert check.found["patch"] == plan_rollback(objects[0], objects[1:]).body(), "kubectl's, as before"

    rollback.execute(target(), acting(), check.found)

    [patch] = stub.patches
    template_op, annotations_op = patch.body
    assert template_op == check.found["patch"][0]
    kubectls = check.found["patch"][1]
    assert annotations_op == {**kubectls, "value": {**kubectls["value"], ACTION_ANNOTATION: ACTION_ID}}
    after = stub.get("Deployment", NAMESPACE, NAME)
    assert after is not None and after["metadata"]["annotations"][ACTION_ANNOTATION] == ACTION_ID
    assert ACTION_ANNOTATION not in json.dumps(after["spec"]["template"]), "the pods stay kubectl's"


def test_a_patch_whose_answer_was_lost_is_found_by_its_action_id_even_after_the_controller_moved_on(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(target(), acting())
    stub.lose_answer_next(DEPLOYMENT_PATH, 502, method="PATCH")
    with pytest.raises(OutcomeUnknown, match="502"):
        rollback.execute(target(), acting(), check.found)
    # The controller then does what it does: revision 2's ReplicaSet becomes revision 4.
    stub.add(replica_set(V2, revision=4, created="2026-11-22T10:00:00Z"))
    rolled = stub.get("Deployment", NAMESPACE, NAME)
    assert rolled is not None
    rolled["metadata"]["annotations"][REVISION] = "4"
    stub.add(rolled)

    again = rollback.precondition(target(), acting(started=check.found))

    assert (again.verdict, again.detail) == (
        Verdict.STARTED,
        f"deployment shop/web carries this action's {ACTION_ANNOTATION}: its rollback was applied",
    )
    assert again.found == {"generation": 4, "revision": 2}
    # What a takeover did before: plan again (a refusal, "not a recent rollout"; with the window
    # off, a rollback to revision 3, the one rolled away from), and send the approved patch again,
    # refused as "changed since the precondition".
    assert rollback.precondition(target(), acting()).verdict is Verdict.REFUSE
    assert rollback.precondition(target(rolled_out_within_minutes=0), acting()).found["revision"] == 3
    with pytest.raises(ActionFailed, match="changed since the precondition"):
        rollback.execute(target(), acting(), check.found)
    assert len(stub.patches) == 1


def test_a_patch_whose_answer_was_lost_and_that_was_not_applied_proceeds_again(
    stub: KubeApiStub, rollback: KubernetesRollback
) -> None:
    check = rollback.precondition(target(), acting())
    stub.respond_next(DEPLOYMENT_PATH, 200, stub.get("Deployment", NAMESPACE, NAME))  # the GET before it
    stub.fail_next(DEPLOYMENT_PATH, times=1, status=504)  # a gateway's 504: nothing reached the API
    with pytest.raises(OutcomeUnknown, match="504"):
        rollback.execute(target(), acting(), check.found)

    again = rollback.precondition(target(), acting(started=check.found))

    assert again.verdict is Verdict.PROCEED  # no action id on it: the patch was not applied
    assert again.found == check.found
