"""velero.restore on the real kubernetes client (CustomObjectsApi) against the API stub's Velero resources."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from shared.actions.kind import ActionFailed, Progress, Verdict
from shared.actions.velero import VeleroRestore, restore_name
from shared.adapters.kube import KubeClusters
from shared.errors import OutcomeUnknown, Transient
from tests.kube_access import TOKENS, StubLocator, aks_target, incident
from tests.stubs.kube_api import KubeApiStub

BACKUPS = "/apis/velero.io/v1/namespaces/velero/backups"
RESTORES = "/apis/velero.io/v1/namespaces/velero/restores"
RESTORE = "dr-inc-20261123-0a1b2c3d4e-shop"


def backup(
    name: str,
    *,
    schedule: str = "daily",
    phase: str = "Completed",
    started: str | None = "2026-11-23T01:00:00Z",
    included: list[str] | None = None,
    excluded: list[str] | None = None,
) -> dict[str, Any]:
    """A Velero Backup as the API server returns it."""
    status: dict[str, Any] = {"phase": phase, "version": 1, "formatVersion": "1.1.0"}
    if started is not None:
        status["startTimestamp"] = started
    spec: dict[str, Any] = {
        "includedNamespaces": included or ["*"],
        "storageLocation": "default",
        "ttl": "720h0m0s",
    }
    if excluded:
        spec["excludedNamespaces"] = excluded
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {
            "name": name,
            "namespace": "velero",
            "labels": {"velero.io/schedule-name": schedule, "velero.io/storage-location": "default"},
        },
        "spec": spec,
        "status": status,
    }


@pytest.fixture
def stub() -> Iterator[KubeApiStub]:
    with KubeApiStub(tls=True, tokens=TOKENS) as server:
        for seeded in (
            backup("daily-20261123030000", phase="PartiallyFailed", started="2026-11-23T03:00:00Z"),
            backup("daily-20261123020000", started="2026-11-23T02:00:00Z"),
            backup("daily-20261123010000", started="2026-11-23T01:00:00Z"),
            backup("daily-unstarted", started=None),
            backup("daily-20261123040000", phase="InProgress", started="2026-11-23T04:00:00Z"),
            backup("weekly-20261123050000", schedule="weekly", started="2026-11-23T05:00:00Z"),
        ):
            server.add(seeded)
        yield server


@pytest.fixture
def restore(stub: KubeApiStub) -> VeleroRestore:
    return VeleroRestore(KubeClusters(StubLocator(stub)))


def test_schedule_picks_the_newest_completed_backup_before_approval(
    stub: KubeApiStub, restore: VeleroRestore
) -> None:
    check = restore.precondition(aks_target(namespace="shop", schedule="daily"), incident())

    assert check.verdict is Verdict.PROCEED, check.detail
    # The PartiallyFailed 03:00 and the InProgress 04:00 are passed over, as Velero does.
    assert check.found == {"backup": "daily-20261123020000", "started": "2026-11-23T02:00:00Z"}
    assert "daily-20261123020000" in check.detail
    assert "of schedule daily" in check.detail
    [listing] = stub.requests
    assert (listing.method, listing.path) == ("GET", BACKUPS)
    assert listing.query == {"labelSelector": ["velero.io/schedule-name=daily"]}


def test_a_schedule_without_a_completed_backup_is_refused(stub: KubeApiStub, restore: VeleroRestore) -> None:
    stub.add(backup("hourly-1", schedule="hourly", phase="PartiallyFailed"))

    check = restore.precondition(aks_target(namespace="shop", schedule="hourly"), incident())

    assert check.verdict is Verdict.REFUSE
    assert (
        check.detail
        == "no Completed backup of schedule hourly in namespace velero (1 backups, none Completed)"
    )


def test_a_named_backup_is_read_and_must_be_completed(stub: KubeApiStub, restore: VeleroRestore) -> None:
    named = restore.precondition(aks_target(namespace="shop", backup="daily-20261123010000"), incident())
    partial = restore.precondition(aks_target(namespace="shop", backup="daily-20261123030000"), incident())
    missing = restore.precondition(aks_target(namespace="shop", backup="nope"), incident())

    assert named.verdict is Verdict.PROCEED
    assert named.found["backup"] == "daily-20261123010000"
    assert partial.verdict is Verdict.REFUSE
    assert partial.detail == "backup daily-20261123030000 is PartiallyFailed, not Completed"
    assert missing.verdict is Verdict.REFUSE
    assert '404 NotFound: backups.velero.io "nope" not found' in missing.detail
    assert [r.path for r in stub.requests] == [
        f"{BACKUPS}/daily-20261123010000",
        f"{BACKUPS}/daily-20261123030000",
        f"{BACKUPS}/nope",
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"namespace": "shop"},
        {"namespace": "shop", "backup": "b", "schedule": "daily"},
    ],
)
def test_exactly_one_of_backup_and_schedule(
    stub: KubeApiStub, restore: VeleroRestore, params: dict[str, str]
) -> None:
    check = restore.precondition(aks_target(**params), incident())

    assert check.verdict is Verdict.REFUSE
    assert check.detail == "velero.restore needs exactly one of backup and schedule"
    assert stub.requests == []


def test_a_backup_without_the_namespace_is_refused(stub: KubeApiStub, restore: VeleroRestore) -> None:
    stub.add(backup("only-cart", schedule="cart", included=["cart"]))
    stub.add(backup("not-shop", schedule="rest", excluded=["shop"]))

    only = restore.precondition(aks_target(namespace="shop", schedule="cart"), incident())
    excluded = restore.precondition(aks_target(namespace="shop", schedule="rest"), incident())

    assert only.verdict is Verdict.REFUSE
    assert only.detail == "backup only-cart does not include namespace shop (it has cart)"
    assert excluded.verdict is Verdict.REFUSE
    assert excluded.detail == "backup not-shop excludes namespace shop"


def test_execute_creates_one_restore_named_for_the_incident(
    stub: KubeApiStub, restore: VeleroRestore
) -> None:
    target = aks_target(namespace="shop", schedule="daily")
    found = restore.precondition(target, incident()).found
    stub.forget_requests()

    step = restore.execute(target, incident(), found)

    [create] = stub.requests
    assert (create.method, create.path, create.query) == ("POST", RESTORES, {})
    assert create.header("content-type") == "application/json"
    assert create.json == {
        "apiVersion": "velero.io/v1",
        "kind": "Restore",
        "metadata": {
            "name": RESTORE,
            "namespace": "velero",
            "annotations": {"dr-responder/incident": "inc-20261123-0a1b2c3d4e"},
        },
        "spec": {"backupName": "daily-20261123020000", "includedNamespaces": ["shop"]},
    }
    assert step.progress is Progress.PENDING
    assert step.continuation == {"restore": RESTORE, "backup": "daily-20261123020000"}
    assert stub.get("Restore", "velero", RESTORE) is not None


def test_a_retried_execute_finds_its_restore_created_and_does_not_start_another(
    stub: KubeApiStub, restore: VeleroRestore
) -> None:
    target = aks_target(namespace="shop", schedule="daily")
    found = restore.precondition(target, incident()).found
    restore.execute(target, incident(), found)
    stub.forget_requests()

    step = restore.execute(target, incident(), found)

    create, get = stub.requests
    assert (create.method, create.path) == ("POST", RESTORES)
    assert (get.method, get.path) == ("GET", f"{RESTORES}/{RESTORE}")
    assert step.progress is Progress.PENDING
    assert step.detail == f"restore {RESTORE} was created already"
    assert step.continuation == {"restore": RESTORE, "backup": "daily-20261123020000"}


def test_a_restore_of_that_name_from_another_backup_fails_the_action(
    stub: KubeApiStub, restore: VeleroRestore
) -> None:
    target = aks_target(namespace="shop", schedule="daily")
    restore.execute(target, incident(), {"backup": "daily-20261123010000"})

    with pytest.raises(
        ActionFailed, match="exists already, from backup daily-20261123010000, not daily-2026112302"
    ):
        restore.execute(target, incident(), {"backup": "daily-20261123020000"})


def test_a_create_answered_200_is_read_too(stub: KubeApiStub, restore: VeleroRestore) -> None:
    # create_namespaced_custom_object maps only a 201 to a body; the adapter reads the raw answer.
    stub.respond_next(RESTORES, 200, {"apiVersion": "velero.io/v1", "kind": "Restore", "metadata": {}})

    step = restore.execute(aks_target(namespace="shop", schedule="daily"), incident(), {"backup": "b1"})

    assert step.progress is Progress.PENDING


def test_namespace_mapping_from_a_string_or_a_table(stub: KubeApiStub, restore: VeleroRestore) -> None:
    as_text = aks_target(namespace="shop", backup="b1", namespace_mapping="shop:shop-restored, cart:cart-2")
    as_table = aks_target(namespace="cart", backup="b1", namespace_mapping={"cart": "cart-2"})

    restore.execute(as_text, incident(), {"backup": "b1"})
    restore.execute(as_table, incident(), {"backup": "b1"})

    first, second = (r.json["spec"] for r in stub.requests_to(RESTORES, "POST"))
    assert first["namespaceMapping"] == {"shop": "shop-restored", "cart": "cart-2"}
    assert second["namespaceMapping"] == {"cart": "cart-2"}


def test_a_bad_namespace_mapping_is_refused(stub: KubeApiStub, restore: VeleroRestore) -> None:
    check = restore.precondition(
        aks_target(namespace="shop", schedule="daily", namespace_mapping="shop"), incident()
    )

    assert check.verdict is Verdict.REFUSE
    assert 'namespace_mapping must be "old:new[,old2:new2]"' in check.detail


def test_429_on_the_create_is_transient_and_held(stub: KubeApiStub, restore: VeleroRestore) -> None:
    stub.respond_next(RESTORES, 429, headers={"Retry-After": "1"})

    with pytest.raises(Transient) as caught:
        restore.execute(aks_target(namespace="shop", schedule="daily"), incident(), {"backup": "b1"})

    assert caught.value.held is True
    assert caught.value.retry_after == 1.0
    assert len(stub.requests_to(RESTORES, "POST")) == 1


@pytest.mark.parametrize(
    ("status", "progress", "detail"),
    [
        ({}, Progress.PENDING, f"restore {RESTORE} New"),
        ({"phase": "New"}, Progress.PENDING, f"restore {RESTORE} New"),
        (
            {"phase": "InProgress", "progress": {"itemsRestored": 12, "totalItems": 40}},
            Progress.PENDING,
            f"restore {RESTORE} InProgress, 12 of 40 items restored",
        ),
        (
            {"phase": "WaitingForPluginOperations"},
            Progress.PENDING,
            f"restore {RESTORE} WaitingForPluginOperations",
        ),
        (
            {"phase": "Completed", "warnings": 2},
            Progress.DONE,
            f"restore {RESTORE} Completed (0 errors, 2 warnings)",
        ),
        (
            {"phase": "PartiallyFailed", "errors": 3, "warnings": 1},
            Progress.FAILED,
            f"restore {RESTORE} PartiallyFailed (3 errors, 1 warnings); "
            f"see velero restore describe {RESTORE} --details",
        ),
        (
            {"phase": "Failed", "failureReason": "error downloading backup"},
            Progress.FAILED,
            f"restore {RESTORE} Failed (0 errors, 0 warnings): error downloading backup; "
            f"see velero restore describe {RESTORE} --details",
        ),
        (
            {"phase": "FailedValidation", "validationErrors": ["No completed backups found for schedule"]},
            Progress.FAILED,
            f"restore {RESTORE} FailedValidation (0 errors, 0 warnings): "
            f"No completed backups found for schedule; see velero restore describe {RESTORE} --details",
        ),
    ],
)
def test_check_follows_the_restore_phase(
    stub: KubeApiStub, restore: VeleroRestore, status: dict[str, Any], progress: Progress, detail: str
) -> None:
    target = aks_target(namespace="shop", schedule="daily")
    continuation = restore.execute(target, incident(), {"backup": "daily-20261123020000"}).continuation
    if status:
        stub.set_status("Restore", "velero", RESTORE, **status)
    stub.forget_requests()

    step = restore.check(target, incident(), continuation)

    assert (step.progress, step.detail) == (progress, detail)
    [get] = stub.requests
    assert (get.method, get.path) == ("GET", f"{RESTORES}/{RESTORE}")


def test_another_velero_namespace(stub: KubeApiStub, restore: VeleroRestore) -> None:
    stub.add({**backup("b9"), "metadata": {**backup("b9")["metadata"], "namespace": "backup-system"}})

    check = restore.precondition(
        aks_target(namespace="shop", backup="b9", velero_namespace="backup-system"), incident()
    )

    assert check.verdict is Verdict.PROCEED
    assert stub.requests[0].path == "/apis/velero.io/v1/namespaces/backup-system/backups/b9"


def test_restore_names_are_stable_dns_labels() -> None:
    assert restore_name("inc-20261123-0a1b2c3d4e", "shop") == RESTORE
    long = restore_name("inc-20261123-0a1b2c3d4e", "a-namespace-with-a-very-long-name-indeed-x" * 2)
    assert len(long) <= 63
    assert long == restore_name("inc-20261123-0a1b2c3d4e", "a-namespace-with-a-very-long-name-indeed-x" * 2)
    assert restore_name("INC_1", "Shop") == "dr-inc-1-shop"


def test_command_is_the_velero_line(restore: VeleroRestore) -> None:
    assert restore.command(aks_target(namespace="shop", backup="b1")) == (
        "velero restore create --from-backup b1 --include-namespaces shop -n velero --kubecontext aks-shop"
    )
    assert restore.command(
        aks_target(namespace="shop", schedule="daily", namespace_mapping="shop:shop-2")
    ) == (
        "velero restore create --from-schedule daily --include-namespaces shop "
        "--namespace-mappings shop:shop-2 -n velero --kubecontext aks-shop"
    )


def test_a_create_whose_answer_was_lost_is_found_by_its_name_and_not_created_again(
    stub: KubeApiStub, restore: VeleroRestore
) -> None:
    target = aks_target(namespace="shop", schedule="daily")
    found = restore.precondition(target, incident()).found
    before = restore.precondition(target, dataclasses.replace(incident(), started=found))
    stub.lose_answer_next(RESTORES, 504, method="POST")
    with pytest.raises(OutcomeUnknown):
        restore.execute(target, incident(), found)

    again = restore.precondition(target, dataclasses.replace(incident(), started=found))

    assert before.verdict is Verdict.PROCEED, "no Restore of that name yet: a first create"
    assert (again.verdict, again.detail) == (
        Verdict.STARTED,
        f"restore {RESTORE} from backup daily-20261123020000 exists",
    )
    assert again.found == {"restore": RESTORE, "backup": "daily-20261123020000"}
    assert len(stub.requests_to(RESTORES, "POST")) == 1
