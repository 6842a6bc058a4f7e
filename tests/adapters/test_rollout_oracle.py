"""The rollback plan against the real kubectl: `kubectl rollout undo` on a stub API server is the oracle.

For each case the same Deployment and ReplicaSets go to `plan_rollback` and, through the stub, to
whichever `kubectl` is on PATH (v1.32 here; Debian's kubernetes-client 1.20 on a fresh CI machine,
which sends the same patch for these objects). Either both send the same JSON patch, or both
refuse, or both skip. kubectl's patch is its Go structs re-encoded, so it carries zero values the
API server's JSON does not (`creationTimestamp: null`, `resources: {}`): both sides are compared
with nulls, empty maps and empty lists dropped. Never skipped: without kubectl the test fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.actions.rollout import (
    DeploymentPaused,
    NoRolloutHistory,
    RevisionNotFound,
    RollbackPlan,
    RollbackRefused,
    plan_rollback,
)
from tests.kube_objects import NAME, NAMESPACE, deployment, replica_set, template
from tests.kubectl import kubectl_or_fail, run_kubectl
from tests.stubs.kube_api import KubeApiStub

V1, V2, V3 = template("shop/web:1"), template("shop/web:2", env="canary"), template("shop/web:3")


@dataclass(frozen=True)
class Kubectl:
    """What one `kubectl rollout undo` did."""

    returncode: int
    stdout: str
    stderr: str
    patches: list[Any]  # the JSON bodies of the PATCH requests it sent
    content_types: list[str]


@pytest.fixture(scope="module")
def kubectl_path() -> str:
    return kubectl_or_fail()


@pytest.fixture
def stub() -> Iterator[KubeApiStub]:
    with KubeApiStub() as server:
        yield server


def undo(
    kubectl_path: str, stub: KubeApiStub, home: Path, objects: list[dict[str, Any]], to_revision: int | None
) -> Kubectl:
    """Seed the stub and run the real `kubectl rollout undo` against it, with a HOME of its own."""
    for obj in objects:
        stub.add(obj)
    flags = [f"--to-revision={to_revision}"] if to_revision is not None else []
    done = run_kubectl(
        kubectl_path, stub, home, "rollout", "undo", f"deployment/{NAME}", "-n", NAMESPACE, *flags
    )
    patches = stub.requests_to(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}", "PATCH")
    return Kubectl(
        done.returncode,
        done.stdout,
        done.stderr,
        [json.loads(p.body) for p in patches],
        [p.header("content-type") or "" for p in patches],
    )


def without_zero_values(value: Any) -> Any:
    """JSON without nulls, empty maps and empty lists (the Go zero values kubectl's structs add)."""
    if isinstance(value, dict):
        items = ((k, without_zero_values(v)) for k, v in value.items())
        return {k: v for k, v in items if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [without_zero_values(v) for v in value]
    return value


def plan(objects: list[dict[str, Any]], to_revision: int | None) -> RollbackPlan | RollbackRefused:
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    replica_sets = [o for o in objects if o["kind"] == "ReplicaSet"]
    try:
        return plan_rollback(deployments[0], replica_sets, to_revision)
    except RollbackRefused as e:
        return e


def assert_same_patch(ours: RollbackPlan | RollbackRefused, theirs: Kubectl) -> RollbackPlan:
    assert theirs.returncode == 0, theirs.stderr
    assert "rolled back" in theirs.stdout
    assert isinstance(ours, RollbackPlan), ours
    assert ours.skipped is None
    assert theirs.content_types == ["application/json-patch+json"]
    assert without_zero_values(ours.body()) == without_zero_values(theirs.patches[0])
    return ours


# ---------------------------------------------------------------------------- patches


def three_revisions() -> list[dict[str, Any]]:
    return [
        deployment(V3, revision=3),
        replica_set(V1, revision=1),
        replica_set(V2, revision=2),
        replica_set(V3, revision=3),
    ]


def test_undo_goes_back_to_the_second_newest_revision(
    kubectl_path: str, stub: KubeApiStub, tmp_path: Path
) -> None:
    objects = three_revisions()
    ours = assert_same_patch(plan(objects, None), undo(kubectl_path, stub, tmp_path, objects, None))
    assert ours.revision == 2
    assert ours.patch[0]["value"]["spec"]["containers"][0]["image"] == "shop/web:2"


def test_undo_to_revision_one(kubectl_path: str, stub: KubeApiStub, tmp_path: Path) -> None:
    objects = three_revisions()
    ours = assert_same_patch(plan(objects, 1), undo(kubectl_path, stub, tmp_path, objects, 1))
    assert ours.revision == 1
    assert ours.patch[0]["value"]["spec"]["containers"][0]["image"] == "shop/web:1"


def test_a_foreign_replica_set_with_the_same_labels_is_not_history(
    kubectl_path: str, stub: KubeApiStub, tmp_path: Path
) -> None:
    # Revision 9 with the Deployment's labels, but controlled by another owner (and one with no
    # owner at all): were either counted, "undo" would pick revision 3, the current one, and skip.
    foreign = replica_set(template("other/web:9"), revision=9, name="web-foreign", owner_uid="another-uid")
    orphan = replica_set(template("other/web:8"), revision=8, name="web-orphan", owner_uid=None)
    objects = [*three_revisions(), foreign, orphan]
    ours = assert_same_patch(plan(objects, None), undo(kubectl_path, stub, tmp_path, objects, None))
    assert ours.revision == 2


def test_annotations_kept_from_the_deployment_and_taken_from_the_replica_set(
    kubectl_path: str, stub: KubeApiStub, tmp_path: Path
) -> None:
    last_applied = '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}}'
    current = deployment(
        V3,
        revision=3,
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": last_applied,
            "deployment.kubernetes.io/revision-history": "1",
            "kubernetes.io/change-cause": "deploy web:3",
            "team": "checkout",  # not on the ReplicaSet: dropped
        },
    )
    old = replica_set(
        V2,
        revision=2,
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": '{"stale":true}',  # kept from the Deployment
            "deployment.kubernetes.io/revision-history": "7,8",  # kept from the Deployment
            "deprecated.deployment.rollback.to": "5",  # the Deployment has none: none
            "kubernetes.io/change-cause": "deploy web:2",  # taken
            "owner": "payments",  # taken
        },
    )
    objects = [current, replica_set(V1, revision=1), old, replica_set(V3, revision=3)]
    ours = assert_same_patch(plan(objects, None), undo(kubectl_path, stub, tmp_path, objects, None))
    assert ours.patch[1]["value"] == {
        "kubectl.kubernetes.io/last-applied-configuration": last_applied,
        "deployment.kubernetes.io/revision": "3",
        "deployment.kubernetes.io/revision-history": "1",
        "kubernetes.io/change-cause": "deploy web:2",
        "owner": "payments",
    }


def test_pod_template_annotations_and_the_hash_label(
    kubectl_path: str, stub: KubeApiStub, tmp_path: Path
) -> None:
    annotated = template("shop/web:2", annotations={"prometheus.io/scrape": "true"})
    objects = [deployment(V3, revision=3), replica_set(annotated, revision=2), replica_set(V3, revision=3)]
    ours = assert_same_patch(plan(objects, None), undo(kubectl_path, stub, tmp_path, objects, None))
    restored = ours.patch[0]["value"]["metadata"]
    assert restored["labels"] == {"app": "web", "tier": "frontend"}
    assert restored["annotations"] == {"prometheus.io/scrape": "true"}


def test_two_replica_sets_of_one_revision(kubectl_path: str, stub: KubeApiStub, tmp_path: Path) -> None:
    # Listed in the "wrong" order: kubectl sorts by creation time before it walks the revisions.
    b = replica_set(V2, revision=2, name="web-b", created="2026-11-02T00:00:00Z")
    a = replica_set(V1, revision=2, name="web-a", created="2026-11-01T00:00:00Z")
    objects = [deployment(V3, revision=3), replica_set(V3, revision=3), b, a]
    ours = assert_same_patch(plan(objects, None), undo(kubectl_path, stub, tmp_path, objects, None))
    assert ours.replica_set == "web-a"


# ---------------------------------------------------------------------------- skips and refusals


def test_skips_when_the_template_already_matches(
    kubectl_path: str, stub: KubeApiStub, tmp_path: Path
) -> None:
    objects = three_revisions()
    ours = plan(objects, 3)
    theirs = undo(kubectl_path, stub, tmp_path, objects, 3)
    assert theirs.returncode == 0, theirs.stderr
    assert "skipped rollback (current template already matches revision 3)" in theirs.stdout
    assert theirs.patches == []
    assert isinstance(ours, RollbackPlan)
    assert ours.skipped == "current template already matches revision 3"
    assert ours.patch == ()


def test_skips_when_the_previous_revision_has_the_current_template(
    kubectl_path: str, stub: KubeApiStub, tmp_path: Path
) -> None:
    # Two ReplicaSets with one template (after a cluster upgrade changed the hash, kubernetes#40415).
    objects = [
        deployment(V3, revision=3),
        replica_set(V3, revision=2, name="web-old-hash"),
        replica_set(V3, revision=3),
    ]
    ours = plan(objects, None)
    theirs = undo(kubectl_path, stub, tmp_path, objects, None)
    assert theirs.returncode == 0, theirs.stderr
    assert "skipped rollback" in theirs.stdout
    assert theirs.patches == []
    assert isinstance(ours, RollbackPlan)
    assert ours.skipped is not None
    assert ours.revision == 2


@pytest.mark.parametrize(
    ("case", "to_revision", "error", "message"),
    [
        ("paused", None, DeploymentPaused, "you cannot rollback a paused deployment"),
        ("three", 7, RevisionNotFound, "unable to find specified revision 7 in history"),
        ("one", None, NoRolloutHistory, 'no rollout history found for deployment "web"'),
        # kubectl looks for the revision before it looks at `paused`
        ("paused", 7, RevisionNotFound, "unable to find specified revision 7 in history"),
    ],
)
def test_refusals(
    kubectl_path: str,
    stub: KubeApiStub,
    tmp_path: Path,
    case: str,
    to_revision: int | None,
    error: type[RollbackRefused],
    message: str,
) -> None:
    objects = {
        "paused": [deployment(V3, revision=3, paused=True), *three_revisions()[1:]],
        "three": three_revisions(),
        "one": [deployment(V3, revision=3), replica_set(V3, revision=3)],
    }[case]
    ours = plan(objects, to_revision)
    theirs = undo(kubectl_path, stub, tmp_path, objects, to_revision)
    assert theirs.returncode != 0
    assert message in theirs.stderr
    assert theirs.patches == []
    assert isinstance(ours, error)
    assert message in str(ours)


def test_the_stub_applies_the_patch_kubectl_sent(
    kubectl_path: str, stub: KubeApiStub, tmp_path: Path
) -> None:
    objects = three_revisions()
    theirs = undo(kubectl_path, stub, tmp_path, objects, None)
    assert theirs.returncode == 0, theirs.stderr
    after = stub.get("Deployment", NAMESPACE, NAME)
    assert after is not None
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/web:2"
    assert after["metadata"]["generation"] == 4
