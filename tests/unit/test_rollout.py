"""The rollback plan alone: kubectl's rules for history, ownership, revisions, skips and annotations."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.actions.rollout import (
    DeploymentPaused,
    NoRolloutHistory,
    RevisionNotFound,
    RollbackRefused,
    controlled_replica_sets,
    equal_ignore_hash,
    plan_rollback,
    selector_matches,
)
from shared.errors import Rejected
from tests.kube_objects import UID, deployment, replica_set, template

V1, V2, V3 = template("web:1"), template("web:2"), template("web:3")


def history() -> list[dict[str, Any]]:
    return [replica_set(V1, revision=1), replica_set(V2, revision=2), replica_set(V3, revision=3)]


def test_the_default_target_is_the_second_highest_revision_not_the_list_order() -> None:
    shuffled = [history()[2], history()[0], history()[1]]
    plan = plan_rollback(deployment(V3, revision=3), shuffled)
    assert (plan.revision, plan.replica_set) == (2, shuffled[2]["metadata"]["name"])
    assert plan.namespace == "shop"
    assert plan.deployment == "web"


def test_the_patch_replaces_the_template_and_the_annotations() -> None:
    plan = plan_rollback(deployment(V3, revision=3), history())
    assert [(op["op"], op["path"]) for op in plan.patch] == [
        ("replace", "/spec/template"),
        ("replace", "/metadata/annotations"),
    ]
    assert plan.patch[0]["value"] == V2  # the hash label gone, nothing else changed
    assert plan.patch[1]["value"] == {"deployment.kubernetes.io/revision": "3"}


def test_the_plan_does_not_share_or_change_its_inputs() -> None:
    current, replica_sets = deployment(V3, revision=3), history()
    before = copy.deepcopy((current, replica_sets))
    plan = plan_rollback(current, replica_sets)
    assert (current, replica_sets) == before
    body = plan.body()
    body[0]["value"]["spec"]["containers"].clear()
    assert plan.patch[0]["value"]["spec"]["containers"]


def test_to_revision_picks_that_revision() -> None:
    assert plan_rollback(deployment(V3, revision=3), history(), to_revision=1).revision == 1


@pytest.mark.parametrize("to_revision", [4, -1])
def test_a_revision_not_in_history_is_refused(to_revision: int) -> None:
    with pytest.raises(RevisionNotFound, match=f"revision {to_revision} in history"):
        plan_rollback(deployment(V3, revision=3), history(), to_revision=to_revision)


def test_refusals_are_rejections() -> None:
    assert issubclass(RollbackRefused, Rejected)


def test_one_revision_is_no_history() -> None:
    with pytest.raises(NoRolloutHistory, match='"web"'):
        plan_rollback(deployment(V3, revision=3), [replica_set(V3, revision=3)])


def test_a_paused_deployment_is_refused_once_the_revision_is_found() -> None:
    with pytest.raises(DeploymentPaused):
        plan_rollback(deployment(V3, revision=3, paused=True), history())
    with pytest.raises(RevisionNotFound):
        plan_rollback(deployment(V3, revision=3, paused=True), history(), to_revision=9)


def test_the_current_revision_is_a_skip_with_no_patch() -> None:
    plan = plan_rollback(deployment(V3, revision=3), history(), to_revision=3)
    assert plan.skipped == "current template already matches revision 3"
    assert plan.patch == ()
    assert plan.body() == []


def test_only_replica_sets_the_deployment_controls_by_uid() -> None:
    foreign = replica_set(template("x:9"), revision=9, name="a", owner_uid="someone-else")
    orphan = replica_set(template("x:8"), revision=8, name="b", owner_uid=None)
    not_controller = replica_set(template("x:7"), revision=7, name="c")
    not_controller["metadata"]["ownerReferences"][0]["controller"] = False
    other_namespace = replica_set(template("x:6"), revision=6, name="d")
    other_namespace["metadata"]["namespace"] = "elsewhere"
    unselected = replica_set(template("x:5"), revision=5, name="e", labels={"app": "api"})
    extra = [foreign, orphan, not_controller, other_namespace, unselected]
    owned = controlled_replica_sets(deployment(V3, revision=3), [*history(), *extra])
    assert {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in owned} == {
        "1",
        "2",
        "3",
    }
    assert plan_rollback(deployment(V3, revision=3), [*history(), *extra]).revision == 2


def test_the_first_controller_reference_counts() -> None:
    rs = replica_set(V2, revision=2)
    rs["metadata"]["ownerReferences"].insert(0, {"uid": "other", "controller": True})
    assert controlled_replica_sets(deployment(V3, revision=3), [rs]) == []
    assert UID in rs["metadata"]["ownerReferences"][1]["uid"]


def test_the_new_replica_set_goes_last_the_rest_by_creation_time() -> None:
    r1 = replica_set(V1, revision=1, created="2026-11-03T00:00:00Z")
    r2 = replica_set(V2, revision=2, created="2026-11-02T00:00:00Z")
    r3 = replica_set(V3, revision=3, created="2026-11-01T00:00:00Z")
    owned = controlled_replica_sets(deployment(V3, revision=3), [r1, r2, r3])
    assert [rs["metadata"]["name"] for rs in owned] == [
        r2["metadata"]["name"],
        r1["metadata"]["name"],
        r3["metadata"]["name"],
    ]


def test_revision_annotations_as_go_parses_them() -> None:
    # Missing is revision 0; "+2" is 2; what ParseInt refuses is passed over.
    sets = [
        replica_set(V1, revision=None, name="none"),
        replica_set(V2, revision="+2", name="plus"),
        replica_set(template("web:x"), revision="1_0", name="underscore"),
        replica_set(template("web:y"), revision=" 5", name="space"),
        replica_set(template("web:z"), revision="99999999999999999999", name="overflow"),
        replica_set(V3, revision=3),
    ]
    assert plan_rollback(deployment(V3, revision=3), sets).replica_set == "plus"
    assert plan_rollback(deployment(V3, revision=3), sets[:1] + sets[-1:]).replica_set == "none"


def test_equal_revisions_are_decided_by_kubectl_order() -> None:
    # Sorted a, b, then the new one: b becomes "previous", then the new one pushes a (the first
    # "latest") into its place. The oracle test of the same case agrees.
    a = replica_set(V1, revision=2, name="a", created="2026-11-01T00:00:00Z")
    b = replica_set(V2, revision=2, name="b", created="2026-11-02T00:00:00Z")
    assert plan_rollback(deployment(V3, revision=3), [b, a, replica_set(V3, revision=3)]).replica_set == "a"


def test_annotations_kept_and_taken() -> None:
    current = deployment(
        V3,
        revision=3,
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": "mine",
            "deployment.kubernetes.io/max-replicas": "5",
            "only-on-the-deployment": "dropped",
        },
    )
    old = replica_set(
        V2,
        revision=2,
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "theirs", "from-rs": "taken"},
    )
    plan = plan_rollback(current, [old, replica_set(V3, revision=3)])
    assert plan.patch[1]["value"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "mine",
        "deployment.kubernetes.io/revision": "3",
        "deployment.kubernetes.io/max-replicas": "5",
        "from-rs": "taken",
    }


def test_equal_ignore_hash() -> None:
    hashed = copy.deepcopy(V2)
    hashed["metadata"]["labels"]["pod-template-hash"] = "abc"
    assert equal_ignore_hash(hashed, V2)
    no_timestamp = copy.deepcopy(V2)
    del no_timestamp["metadata"]["creationTimestamp"]
    no_timestamp["spec"]["containers"][0]["env"] = []
    assert equal_ignore_hash(no_timestamp, V2)  # null, missing and [] are all nil
    assert not equal_ignore_hash(V1, V2)
    without_security_context = copy.deepcopy(V2)
    del without_security_context["spec"]["securityContext"]
    assert not equal_ignore_hash(without_security_context, V2)  # a pointer to {} is not nil


def test_a_label_left_empty_by_the_hash_is_dropped() -> None:
    bare = copy.deepcopy(V2)
    bare["metadata"]["labels"] = {}
    rs = replica_set(bare, revision=2)
    plan = plan_rollback(deployment(V3, revision=3), [rs, replica_set(V3, revision=3)])
    assert "labels" not in plan.patch[0]["value"]["metadata"]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [({"app": "web", "tier": "a"}, True), ({"app": "web"}, False), ({"app": "web", "tier": "b"}, False)],
)
def test_selector_expressions(labels: dict[str, str], expected: bool) -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "c"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert selector_matches(selector, labels) is expected
    assert selector_matches(None, labels) is False  # kubectl: a nil selector selects nothing
    assert selector_matches({}, labels) is True
