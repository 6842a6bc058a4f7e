"""kubernetes.restart on the real kubernetes client; the real kubectl is the oracle for it and for the check.

`kubectl rollout restart` and our execute go to the same stub (plain HTTP, reached through a
kubeconfig, as a `[targets]` entry would): the same PATCH (path, fieldManager, content type, body
but for the timestamp). `kubectl rollout status --watch=false` prints, for each status a test
sets, exactly what our check says.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.actions.kind import Progress, Target, Verdict
from shared.actions.kubernetes import ACTION_ANNOTATION, KubernetesRestart, rollout_status
from shared.adapters.kube import KubeClusters
from shared.errors import OutcomeUnknown
from tests.kube_access import TOKENS, StubLocator, aks_target, bearer_tokens, incident
from tests.kube_objects import NAME, NAMESPACE, deployment, template
from tests.kubectl import kubectl_or_fail, run_kubectl
from tests.stubs.kube_api import KubeApiStub

V3 = template("shop/web:3")
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)\Z")


@pytest.fixture(scope="module")
def kubectl_path() -> str:
    return kubectl_or_fail()


@pytest.fixture
def plain() -> Iterator[KubeApiStub]:
    """A stub kubectl and our client both reach through a kubeconfig."""
    with KubeApiStub() as server:
        server.add(deployment(V3, revision=3))
        yield server


@pytest.fixture
def aks() -> Iterator[KubeApiStub]:
    """A stub behind TLS and bearer tokens, reached through the locator."""
    with KubeApiStub(tls=True, tokens=TOKENS) as server:
        server.add(deployment(V3, revision=3))
        yield server


def through_kubeconfig(stub: KubeApiStub, home: Path) -> Target:
    config = home / "ours.kubeconfig"
    config.write_text(stub.kubeconfig(context="shop-dev"))
    reach = {"kubeconfig": str(config), "context": "shop-dev"}
    return Target("shop-dev", {"deployment": f"{NAMESPACE}/{NAME}"}, reach)


def test_execute_sends_what_kubectl_rollout_restart_sends(
    kubectl_path: str, plain: KubeApiStub, tmp_path: Path
) -> None:
    theirs = run_kubectl(
        kubectl_path, plain, tmp_path, "rollout", "restart", f"deployment/{NAME}", "-n", NAMESPACE
    )
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout.strip() == "deployment.apps/web restarted"
    [their_patch] = plain.patches
    plain.add(deployment(V3, revision=3))  # as it was before kubectl's restart
    plain.forget_requests()
    restart = KubernetesRestart(KubeClusters(None))
    target = through_kubeconfig(plain, tmp_path)

    step = restart.execute(target, incident(), {})

    [ours] = plain.patches
    their_query = {k: v for k, v in their_patch.query.items() if k != "timeout"}  # --request-timeout's
    assert (ours.content_type, ours.query) == (their_patch.content_type, their_query)
    assert ours.content_type == "application/strategic-merge-patch+json"
    assert ours.query == {"fieldManager": ["kubectl-rollout"]}
    key = "kubectl.kubernetes.io/restartedAt"
    their_at = their_patch.body["spec"]["template"]["metadata"]["annotations"][key]
    assert RFC3339.match(their_at)
    assert ours.body == {"spec": {"template": {"metadata": {"annotations": {key: "2026-11-23T10:25:07Z"}}}}}
    assert their_patch.body == {"spec": {"template": {"metadata": {"annotations": {key: their_at}}}}}
    [request] = plain.requests
    assert (request.method, request.path) == ("PATCH", DEPLOYMENT_PATH)
    assert step.progress is Progress.PENDING
    assert step.detail == "deployment.apps/web restarted at 2026-11-23T10:25:07Z"
    assert step.continuation == {"generation": 4, "restarted_at": "2026-11-23T10:25:07Z"}


def test_a_paused_deployment_is_refused_as_kubectl_refuses_it(
    kubectl_path: str, plain: KubeApiStub, tmp_path: Path
) -> None:
    plain.add(deployment(V3, revision=3, paused=True))
    theirs = run_kubectl(
        kubectl_path, plain, tmp_path, "rollout", "restart", f"deployment/{NAME}", "-n", NAMESPACE
    )
    restart = KubernetesRestart(KubeClusters(None))

    check = restart.precondition(through_kubeconfig(plain, tmp_path), incident())

    assert theirs.returncode != 0
    assert check.verdict is Verdict.REFUSE
    message = "can't restart paused deployment (run rollout resume first)"
    assert message in theirs.stderr
    assert check.detail == f"deployment shop/web: {message}"
    assert plain.patches == []


def replicas(**fields: Any) -> dict[str, Any]:
    return fields


# Each status is set on top of the one before, as a controller moves a rollout on.
STATUSES = [
    replicas(observedGeneration=2),
    replicas(observedGeneration=3, replicas=4, updatedReplicas=1, availableReplicas=3),
    replicas(updatedReplicas=3),
    replicas(replicas=3, availableReplicas=2),
    replicas(availableReplicas=3),
    replicas(conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]),
]


def test_check_says_what_kubectl_rollout_status_says(
    kubectl_path: str, plain: KubeApiStub, tmp_path: Path
) -> None:
    restart = KubernetesRestart(KubeClusters(None))
    target = through_kubeconfig(plain, tmp_path)
    seen = []
    for fields in STATUSES:
        plain.set_status("Deployment", NAMESPACE, NAME, **fields)
        theirs = run_kubectl(
            kubectl_path,
            plain,
            tmp_path,
            "rollout",
            "status",
            f"deployment/{NAME}",
            "-n",
            NAMESPACE,
            "--watch=false",
        )
        ours = restart.check(target, incident(), {"generation": 3})
        if ours.progress is Progress.FAILED:
            assert theirs.returncode != 0
            assert f"error: {ours.detail}" in theirs.stderr
        else:
            assert theirs.returncode == 0, theirs.stderr
            assert theirs.stdout == ours.detail + "\n"
        seen.append(ours.progress)
    assert seen == [Progress.PENDING] * 4 + [Progress.DONE, Progress.FAILED]


def test_the_check_waits_for_the_generation_the_patch_made(aks: KubeApiStub) -> None:
    restart = KubernetesRestart(KubeClusters(StubLocator(aks)))
    target = aks_target(deployment="shop/web")

    step = restart.execute(target, incident(), {})
    # The controller has not seen generation 4 yet, though the replica counts look finished.
    first = restart.check(target, incident(), step.continuation)
    aks.set_status("Deployment", NAMESPACE, NAME, observedGeneration=4, availableReplicas=3)
    second = restart.check(target, incident(), first.continuation)

    assert first.progress is Progress.PENDING
    assert first.detail == "Waiting for deployment spec update to be observed..."
    assert second.progress is Progress.DONE
    assert second.continuation["restarted_at"] == "2026-11-23T10:25:07Z"
    assert all(token in TOKENS for token in bearer_tokens(aks))
    assert len(set(bearer_tokens(aks))) == 3  # one token asked for per request


def test_a_generation_from_the_continuation_is_kept_when_the_object_reports_an_older_one() -> None:
    current = deployment(V3, revision=3)

    step = rollout_status(current, generation=5)

    assert step.progress is Progress.PENDING
    assert step.continuation == {"generation": 5}


def test_precondition_proceeds_for_a_running_deployment(aks: KubeApiStub) -> None:
    restart = KubernetesRestart(KubeClusters(StubLocator(aks)))

    check = restart.precondition(aks_target(deployment="shop/web"), incident())

    assert check.verdict is Verdict.PROCEED
    assert [(r.method, r.path) for r in aks.requests] == [("GET", DEPLOYMENT_PATH)]


def test_command_is_kubectl_rollout_restart() -> None:
    restart = KubernetesRestart(KubeClusters(None))

    assert restart.command(aks_target(deployment="shop/web")) == (
        "kubectl rollout restart deployment/web -n shop --context aks-shop"
    )


def test_a_restart_stamps_the_action_id_and_a_takeover_finds_it_instead_of_restarting_again(
    aks: KubeApiStub,
) -> None:
    restart = KubernetesRestart(KubeClusters(StubLocator(aks)))
    target = aks_target(deployment="shop/web")
    acting = dataclasses.replace(incident(), action_id="act-1")
    found = restart.precondition(target, acting).found
    aks.lose_answer_next(DEPLOYMENT_PATH, None, method="PATCH")  # applied; the connection dropped
    with pytest.raises(OutcomeUnknown):
        restart.execute(target, acting, found)

    again = restart.precondition(target, dataclasses.replace(acting, started=found))

    [patch] = aks.patches
    key = "kubectl.kubernetes.io/restartedAt"
    assert patch.body == {  # kubectl's patch, and the action id on the Deployment itself
        "metadata": {"annotations": {ACTION_ANNOTATION: "act-1"}},
        "spec": {"template": {"metadata": {"annotations": {key: "2026-11-23T10:25:07Z"}}}},
    }
    assert (again.verdict, again.found) == (Verdict.STARTED, {"generation": 4})
    assert (
        again.detail
        == f"deployment shop/web carries this action's {ACTION_ANNOTATION}: its restart was applied"
    )
    other = dataclasses.replace(incident(), action_id="act-2", started=found)
    assert restart.precondition(target, other).verdict is Verdict.PROCEED, "another action's id is not ours"
