"""The Kubernetes actions with the real kubernetes client against the API stub; kubectl as the oracle.

Each test asserts what reached the API server: the PATCH bodies and content types, the Restore
created, the bearer token. The rollback's patch is `plan_rollback`'s, which the rollback oracle
tests prove equal to `kubectl rollout undo`'s; the restart's is compared with `kubectl rollout
restart`'s here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.actions.clusters import ClusterAccess
from shared.actions.kind import ActionFailed, Context, Progress, Target, Verdict
from shared.actions.kubernetes import KubernetesRestart, KubernetesRollback, VeleroRestore
from shared.actions.rollout import plan_rollback
from shared.adapters.kube import KubeClusters
from shared.errors import Transient
from tests.kube_objects import NAME, NAMESPACE, deployment, replica_set, template
from tests.stubs.kube_api import KubeApiStub

V1, V2, V3 = template("shop/web:1"), template("shop/web:2", env="canary"), template("shop/web:3")
OPENED = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CONTEXT = Context("inc-20261125-abc", OPENED, OPENED)
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"


@pytest.fixture
def stub() -> Iterator[KubeApiStub]:
    with KubeApiStub() as server:
        yield server


@pytest.fixture
def kubeconfig(stub: KubeApiStub, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(stub.kubeconfig())
    return path


def target(kubeconfig: Path, **params: Any) -> Target:
    return Target(
        "onprem-cluster",
        {"deployment": f"{NAMESPACE}/{NAME}", **params},
        {"kubeconfig": str(kubeconfig), "context": "stub"},
    )


def seed(stub: KubeApiStub, *, current_created: str = "2026-11-25T09:50:00Z", paused: bool = False) -> None:
    stub.add(deployment(V3, revision=3, paused=paused))
    stub.add(replica_set(V1, revision=1))
    stub.add(replica_set(V2, revision=2))
    stub.add(replica_set(V3, revision=3, created=current_created))


def test_a_rollback_sends_kubectls_patch_once_and_is_done_when_the_rollout_is(
    stub: KubeApiStub, kubeconfig: Path
) -> None:
    seed(stub)
    kind = KubernetesRollback(KubeClusters(None), check_seconds=0)
    found = kind.precondition(target(kubeconfig), CONTEXT)
    assert found.verdict is Verdict.PROCEED and found.found == {"revision": 2}
    expected = plan_rollback(
        deployment(V3, revision=3), [replica_set(v, revision=n) for n, v in ((1, V1), (2, V2), (3, V3))]
    )
    step = kind.execute(target(kubeconfig), CONTEXT, found.found)
    [patch] = stub.patches
    assert patch.content_type == "application/json-patch+json"
    assert patch.body == expected.body()
    assert step.progress is Progress.PENDING and step.continuation == {"generation": 4}

    pending = kind.check(target(kubeconfig), CONTEXT, step.continuation)
    assert (pending.progress, pending.detail) == (
        Progress.PENDING,
        "Waiting for deployment spec update to be observed...",
    )
    stub.set_status(NAMESPACE, NAME, observedGeneration=4, replicas=4, updatedReplicas=3, availableReplicas=2)
    assert kind.check(target(kubeconfig), CONTEXT, step.continuation).detail == (
        'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...'
    )
    stub.set_status(NAMESPACE, NAME, replicas=3)
    assert kind.check(target(kubeconfig), CONTEXT, step.continuation).detail == (
        'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...'
    )
    stub.set_status(NAMESPACE, NAME, availableReplicas=3)
    done = kind.check(target(kubeconfig), CONTEXT, step.continuation)
    assert (done.progress, done.detail) == (Progress.DONE, 'deployment "web" successfully rolled out')
    # A retried execute finds the template rolled back already and sends nothing more.
    kind.execute(target(kubeconfig), CONTEXT, found.found)
    assert len(stub.patches) == 1


def test_a_rollout_past_its_deadline_fails(stub: KubeApiStub, kubeconfig: Path) -> None:
    seed(stub)
    stub.set_status(
        NAMESPACE,
        NAME,
        observedGeneration=3,
        conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
    )
    step = KubernetesRollback(KubeClusters(None)).check(target(kubeconfig), CONTEXT, {"generation": 3})
    assert (step.progress, step.detail) == (
        Progress.FAILED,
        'deployment "web" exceeded its progress deadline',
    )


def test_a_rollout_older_than_the_window_is_not_rolled_back(stub: KubeApiStub, kubeconfig: Path) -> None:
    seed(stub, current_created="2026-11-24T10:00:00Z")
    found = KubernetesRollback(KubeClusters(None)).precondition(
        target(kubeconfig, rolled_out_within_minutes=30), CONTEXT
    )
    assert found.verdict is Verdict.REFUSE
    assert found.detail.startswith(
        "not a recent rollout: the current ReplicaSet of shop/web was created at 2026-11-24T10:00:00"
    )
    assert stub.patches == []


def test_paused_refuses_and_a_matching_template_skips(stub: KubeApiStub, kubeconfig: Path) -> None:
    seed(stub, paused=True)
    kind = KubernetesRollback(KubeClusters(None))
    refused = kind.precondition(target(kubeconfig), CONTEXT)
    assert refused.verdict is Verdict.REFUSE and "paused" in refused.detail
    stub.reset()
    stub.add(deployment(V2, revision=3))
    stub.add(replica_set(V2, revision=2))
    stub.add(replica_set(V2, revision=3, name="web-again"))
    skipped = kind.precondition(target(kubeconfig, to_revision=2), CONTEXT)
    assert skipped.verdict is Verdict.SKIP and "already matches revision 2" in skipped.detail


def test_a_restart_is_kubectls_strategic_merge_patch_with_a_fresh_bearer_token(stub: KubeApiStub) -> None:
    seed(stub)
    tokens = iter(["token-1", "token-2", "token-3"])

    class Locator:
        def access(self, target: Target) -> ClusterAccess:
            return ClusterAccess(stub.url, "", lambda: next(tokens))

    kind = KubernetesRestart(KubeClusters(Locator()))
    aks = Target(
        "/subscriptions/1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-shop",
        {"deployment": f"{NAMESPACE}/{NAME}"},
    )
    assert kind.precondition(aks, CONTEXT).verdict is Verdict.PROCEED
    step = kind.execute(aks, CONTEXT, {})
    [patch] = stub.patches
    assert patch.content_type == "application/strategic-merge-patch+json"
    annotations = patch.body["spec"]["template"]["metadata"]["annotations"]
    assert list(patch.body) == ["spec"] and list(annotations) == ["kubectl.kubernetes.io/restartedAt"]
    assert datetime.fromisoformat(annotations["kubectl.kubernetes.io/restartedAt"]) == OPENED
    assert step.continuation == {"generation": 4}
    auth = [r.header("authorization") for r in stub.requests]
    assert auth == ["Bearer token-1", "Bearer token-2"], "the hook asks the locator's token for each request"
    assert kind.command(aks) == "kubectl rollout restart deployment/web -n shop"


def test_our_restart_patch_is_the_one_kubectl_rollout_restart_sends(
    stub: KubeApiStub, kubeconfig: Path, tmp_path: Path
) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is not on PATH (scripts/system-deps.sh installs Debian's kubernetes-client)"
    seed(stub)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig),
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    done = subprocess.run(
        [kubectl, "rollout", "restart", f"deployment/{NAME}", "-n", NAMESPACE, "--request-timeout=20s"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [theirs] = stub.patches
    stub.reset()
    seed(stub)
    KubernetesRestart(KubeClusters(None)).execute(target(kubeconfig), CONTEXT, {})
    [ours] = stub.patches
    assert ours.content_type.split(";")[0] == theirs.content_type.split(";")[0]

    def shape(body: Any) -> Any:
        annotations = body["spec"]["template"]["metadata"]["annotations"]
        return {key: sorted(annotations) for key in body} | {
            "stamp": type(datetime.fromisoformat(annotations["kubectl.kubernetes.io/restartedAt"]))
        }

    assert shape(ours.body) == shape(theirs.body)


def backup(name: str, phase: str, started: str, schedule: str = "daily") -> dict[str, Any]:
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": "velero", "labels": {"velero.io/schedule-name": schedule}},
        "status": {"phase": phase, "startTimestamp": started},
    }


def test_a_restore_takes_the_newest_completed_backup_of_the_schedule_and_is_created_once(
    stub: KubeApiStub, kubeconfig: Path
) -> None:
    stub.add(backup("daily-20261123", "Completed", "2026-11-23T02:00:00Z"))
    stub.add(backup("daily-20261124", "Completed", "2026-11-24T02:00:00Z"))
    stub.add(backup("daily-20261125", "PartiallyFailed", "2026-11-25T02:00:00Z"))
    stub.add(backup("weekly-1", "Completed", "2026-11-25T03:00:00Z", schedule="weekly"))
    kind = VeleroRestore(KubeClusters(None), check_seconds=0)
    where = Target(
        "onprem-cluster", {"namespace": "shop", "schedule": "daily"}, {"kubeconfig": str(kubeconfig)}
    )
    found = kind.precondition(where, CONTEXT)
    assert found.verdict is Verdict.PROCEED and found.found == {"backup": "daily-20261124"}
    assert "daily-20261124" in found.detail
    [listed] = stub.requests_to("/apis/velero.io/v1/namespaces/velero/backups")
    assert listed.query["labelSelector"] == ["velero.io/schedule-name=daily"]

    step = kind.execute(where, CONTEXT, found.found)
    again = kind.execute(where, CONTEXT, found.found)  # a retry after a lost answer
    creates = stub.requests_to("/apis/velero.io/v1/namespaces/velero/restores", "POST")
    assert len(creates) == 2 and creates[0].json == creates[1].json
    assert creates[0].json["spec"] == {"backupName": "daily-20261124", "includedNamespaces": ["shop"]}
    assert again.detail.endswith("exists already") and step.continuation == again.continuation
    name = step.continuation["restore"]
    assert kind.check(where, CONTEXT, step.continuation).progress is Progress.PENDING
    stub.get("Restore", "velero", name)
    with stub._lock:
        stub._objects[("Restore", "velero", name)]["status"] = {
            "phase": "PartiallyFailed",
            "errors": 2,
            "warnings": 1,
        }
    failed = kind.check(where, CONTEXT, step.continuation)
    assert (failed.progress, failed.detail) == (
        Progress.FAILED,
        f"restore {name} PartiallyFailed: 2 errors, 1 warnings",
    )
    assert kind.command(where) == "velero restore create --from-schedule daily --include-namespaces shop"


def test_no_completed_backup_refuses(stub: KubeApiStub, kubeconfig: Path) -> None:
    stub.add(backup("daily-1", "PartiallyFailed", "2026-11-25T02:00:00Z"))
    where = Target("c", {"namespace": "shop", "schedule": "daily"}, {"kubeconfig": str(kubeconfig)})
    found = VeleroRestore(KubeClusters(None)).precondition(where, CONTEXT)
    assert found.verdict is Verdict.REFUSE and "PartiallyFailed ones are skipped" in found.detail


def test_429_is_held_and_403_fails_naming_the_api_servers_reason(stub: KubeApiStub, kubeconfig: Path) -> None:
    seed(stub)
    kind = KubernetesRollback(KubeClusters(None))
    stub.respond_next(
        DEPLOYMENT_PATH,
        429,
        {"kind": "Status", "reason": "TooManyRequests", "message": "slow down"},
        headers={"Retry-After": "3"},
    )
    with pytest.raises(Transient) as held:
        kind.precondition(target(kubeconfig), CONTEXT)
    assert held.value.held and held.value.retry_after == 3
    forbidden = {
        "kind": "Status",
        "reason": "Forbidden",
        "message": 'deployments.apps "web" is forbidden: User "dr" cannot get',
    }
    stub.respond_next(DEPLOYMENT_PATH, 403, forbidden)
    with pytest.raises(ActionFailed, match=r"answered 403 Forbidden: deployments.apps \"web\" is forbidden"):
        kind.precondition(target(kubeconfig), CONTEXT)
