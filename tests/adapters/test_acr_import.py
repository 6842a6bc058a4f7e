"""acr.import with the real azure-mgmt-containerregistry client against the ARM stub (TLS, LROs by step)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.actions.acr import AcrImport
from shared.actions.kind import ActionFailed, Context, Progress, Step, Target, Verdict
from shared.adapters.acr import acr_kinds
from shared.errors import OutcomeUnknown, Transient
from tests.stubs.acr import AcrImages, container_registry, serve_acr
from tests.stubs.arm import ArmStub, StubCredential
from tests.stubs.base import Reply

SUB = "00000000-0000-0000-0000-00000000000a"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-shop/providers/Microsoft.ContainerRegistry/registries"
REGISTRY = f"{GROUP}/acrshopwe"
PEER = f"{GROUP}/acrshopne"
IMPORT = f"{REGISTRY}/importImage"
ACR_API = "2025-11-01"  # azure-mgmt-containerregistry 15.0.0's
IMAGE = "shop/cart:1.4.2"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CONTEXT = Context("inc-1", NOW, NOW)


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmStub]:
    with ArmStub() as started:
        started.announce(monkeypatch)
        container_registry(started, REGISTRY, "westeurope")
        container_registry(started, PEER, "northeurope")
        yield started


@pytest.fixture
def images(arm: ArmStub) -> AcrImages:
    served = serve_acr(arm)
    served.push(PEER, IMAGE)
    return served


@pytest.fixture
def credential() -> StubCredential:
    return StubCredential()


@pytest.fixture
def kind(arm: ArmStub, credential: StubCredential) -> AcrImport:
    [built] = acr_kinds(arm.url, credential)
    assert isinstance(built, AcrImport)
    return built


def target(**params: Any) -> Target:
    return Target(REGISTRY, {"image": IMAGE, "source_registry": PEER} | params)


def run_to_end(kind: AcrImport, tgt: Target, step: Step) -> Step:
    for _ in range(10):
        if step.progress is not Progress.PENDING:
            return step
        step = kind.check(tgt, CONTEXT, step.continuation)
    raise AssertionError(f"still pending: {step.detail}")


# --- precondition ----------------------------------------------------------------------------------


def test_both_registries_ready_proceeds_naming_the_peer(
    arm: ArmStub, kind: AcrImport, credential: StubCredential
) -> None:
    check = kind.precondition(target(), CONTEXT)

    assert check.verdict is Verdict.PROCEED
    assert check.detail == (
        f"import {IMAGE} from acrshopne (acrshopne.azurecr.io, northeurope: Succeeded) into acrshopwe "
        f"as {IMAGE}, mode NoForce (an existing target tag fails the import; force = true overwrites)"
    )
    assert [(r.method, r.path) for r in arm.requests] == [("GET", REGISTRY), ("GET", PEER)]
    assert arm.api_versions(f"{GROUP}/*") == [ACR_API, ACR_API]
    assert credential.scopes == [(arm.scope,)]  # one token, from the scope DR_ARM_URL gives


def test_a_missing_source_registry_is_refused(arm: ArmStub, kind: AcrImport) -> None:
    arm.remove(PEER)

    check = kind.precondition(target(), CONTEXT)

    assert check.verdict is Verdict.REFUSE
    assert check.detail == "source registry acrshopne does not exist"


@pytest.mark.parametrize("state", ["Updating", "Failed"])
def test_a_source_registry_not_succeeded_is_refused(arm: ArmStub, kind: AcrImport, state: str) -> None:
    container_registry(arm, PEER, "northeurope", state=state)

    check = kind.precondition(target(), CONTEXT)

    assert check.verdict is Verdict.REFUSE
    assert check.detail == f"source registry acrshopne is {state}, not Succeeded"


def test_a_missing_target_registry_is_refused_before_the_source_is_read(
    arm: ArmStub, kind: AcrImport
) -> None:
    arm.remove(REGISTRY)

    check = kind.precondition(target(), CONTEXT)

    assert check.verdict is Verdict.REFUSE
    assert [r.path for r in arm.requests] == [REGISTRY]


def test_a_login_server_source_is_not_read_through_arm(arm: ArmStub, kind: AcrImport) -> None:
    tgt = Target(REGISTRY, {"image": "library/nginx:1.27", "source_login_server": "docker.io"})

    check = kind.precondition(tgt, CONTEXT)

    assert check.verdict is Verdict.PROCEED
    assert "from docker.io (not an ARM resource: not checked)" in check.detail
    assert [r.path for r in arm.requests] == [REGISTRY]


# --- execute and check -----------------------------------------------------------------------------


def test_execute_posts_the_import_once_and_keeps_the_polling_urls(
    arm: ArmStub, images: AcrImages, kind: AcrImport
) -> None:
    step = kind.execute(target(), CONTEXT, {})

    assert step.progress is Progress.PENDING
    [post] = arm.requests
    assert (post.method, post.path, post.query["api-version"]) == ("POST", IMPORT, [ACR_API])
    assert post.json == {
        "source": {"resourceId": PEER, "sourceImage": IMAGE},
        "targetTags": [IMAGE],
        "mode": "NoForce",
    }
    [operation] = arm.operations
    at = f"{arm.url}/providers/Stub.Operations"
    assert step.continuation == {
        "operation": {
            "status_url": f"{at}/operationStatuses/{operation.id}?api-version={ACR_API}",
            "location_url": f"{at}/operationResults/{operation.id}?api-version={ACR_API}",
        }
    }
    assert operation.reads == 0  # execute did not wait
    assert images.tags(REGISTRY) == {}


def test_check_polls_the_operation_until_it_succeeded(
    arm: ArmStub, images: AcrImages, kind: AcrImport
) -> None:
    arm.polls = 2
    tgt = target()
    step = kind.execute(tgt, CONTEXT, {})

    first = kind.check(tgt, CONTEXT, step.continuation)
    done = run_to_end(kind, tgt, first)

    assert first.progress is Progress.PENDING and first.continuation == step.continuation
    assert done.progress is Progress.DONE
    assert done.detail == f"import of {IMAGE} into acrshopwe: succeeded"
    assert images.tags(REGISTRY) == {IMAGE: images.tags(PEER)[IMAGE]}
    polls = arm.requests_to("/providers/Stub.Operations/operationStatuses/*", "GET")
    assert len(polls) == 3 and len(arm.requests_to(IMPORT, "POST")) == 1


def test_force_and_a_target_tag_are_sent(arm: ArmStub, images: AcrImages, kind: AcrImport) -> None:
    images.push(REGISTRY, "shop/cart:stable")
    tgt = target(target="shop/cart:stable", force=True)

    done = run_to_end(kind, tgt, kind.execute(tgt, CONTEXT, {}))

    assert done.progress is Progress.DONE
    [post] = arm.requests_to(IMPORT, "POST")
    assert post.json["mode"] == "Force" and post.json["targetTags"] == ["shop/cart:stable"]
    assert images.tags(REGISTRY)["shop/cart:stable"] == images.tags(PEER)[IMAGE]


def test_a_digest_is_copied_untagged(arm: ArmStub, images: AcrImages, kind: AcrImport) -> None:
    digest = images.tags(PEER)[IMAGE]
    tgt = target(image=f"shop/cart@{digest}")

    done = run_to_end(kind, tgt, kind.execute(tgt, CONTEXT, {}))

    assert done.progress is Progress.DONE
    [post] = arm.requests_to(IMPORT, "POST")
    assert post.json == {
        "source": {"resourceId": PEER, "sourceImage": f"shop/cart@{digest}"},
        "untaggedTargetRepositories": ["shop/cart"],
        "mode": "NoForce",
    }


def test_a_login_server_source_is_sent_as_registry_uri(
    arm: ArmStub, images: AcrImages, kind: AcrImport
) -> None:
    images.push("docker.io", "library/nginx:1.27")
    tgt = Target(
        REGISTRY, {"image": "library/nginx:1.27", "source_login_server": "docker.io", "target": "nginx:1.27"}
    )

    done = run_to_end(kind, tgt, kind.execute(tgt, CONTEXT, {}))

    assert done.progress is Progress.DONE
    [post] = arm.requests_to(IMPORT, "POST")
    assert post.json["source"] == {"registryUri": "docker.io", "sourceImage": "library/nginx:1.27"}
    assert "nginx:1.27" in images.tags(REGISTRY)


def test_an_existing_tag_under_noforce_fails_the_operation_with_arms_words(
    arm: ArmStub, images: AcrImages, kind: AcrImport
) -> None:
    images.push(REGISTRY, IMAGE)
    tgt = target()

    failed = run_to_end(kind, tgt, kind.execute(tgt, CONTEXT, {}))

    assert failed.progress is Progress.FAILED
    assert f"Conflict: Tag {IMAGE} already exists in target registry." in failed.detail


def test_an_image_missing_from_the_source_fails_the_operation(
    arm: ArmStub, images: AcrImages, kind: AcrImport
) -> None:
    tgt = target(image="shop/cart:9.9.9")

    failed = run_to_end(kind, tgt, kind.execute(tgt, CONTEXT, {}))

    assert failed.progress is Progress.FAILED
    assert "ImageNotFound: Image 'shop/cart:9.9.9' not found" in failed.detail


# --- the start is never repeated by the SDK -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "held"),
    [(429, "TooManyRequests", True), (500, "InternalServerError", False), (503, "ServiceUnavailable", False)],
)
def test_a_refused_start_is_transient_after_exactly_one_post(
    arm: ArmStub, images: AcrImages, kind: AcrImport, status: int, code: str, held: bool
) -> None:
    # azure-core would retry a POST on 500/503/504 or whenever Retry-After is present: not here.
    arm.fault("POST", IMPORT, status, code, "try again later", retry_after="1")

    with pytest.raises(Transient) as caught:
        kind.execute(target(), CONTEXT, {})

    assert caught.value.held is held and caught.value.retry_after == 1.0
    assert f"ARM answered {status} {code}: try again later" in str(caught.value)
    assert len(arm.requests_to(IMPORT, "POST")) == 1
    assert arm.operations == []


def test_a_409_another_operation_is_transient(arm: ArmStub, images: AcrImages, kind: AcrImport) -> None:
    arm.fault("POST", IMPORT, 409, "Conflict", "Another operation is in progress on the registry.")

    with pytest.raises(Transient, match="409 Conflict"):
        kind.execute(target(), CONTEXT, {})

    assert len(arm.requests_to(IMPORT, "POST")) == 1


def test_a_403_fails_with_the_arm_code_and_message(arm: ArmStub, images: AcrImages, kind: AcrImport) -> None:
    message = (
        "The client 'dr-responder' does not have authorization to perform action "
        "'Microsoft.ContainerRegistry/registries/importImage/action' over scope '/subscriptions/…'."
    )
    arm.fault("POST", IMPORT, 403, "AuthorizationFailed", message)

    with pytest.raises(ActionFailed) as caught:
        kind.execute(target(), CONTEXT, {})

    assert f"403 AuthorizationFailed: {message}" in str(caught.value)


def test_a_bad_request_fails_with_the_arm_error(arm: ArmStub, images: AcrImages, kind: AcrImport) -> None:
    arm.fault("POST", IMPORT, 400, "InvalidParameters", "The source image is invalid.")

    with pytest.raises(ActionFailed, match="400 InvalidParameters: The source image is invalid"):
        kind.execute(target(), CONTEXT, {})


def test_a_throttled_poll_is_transient_and_the_next_check_goes_on(
    arm: ArmStub, images: AcrImages, kind: AcrImport
) -> None:
    tgt = target()
    step = kind.execute(tgt, CONTEXT, {})
    # Scripted ahead of the stub's routes: ARM throttles status reads like any other request.
    arm.respond_next(
        "/providers/Stub.Operations/operationStatuses/*",
        429,
        {"error": {"code": "TooManyRequests", "message": "The request was throttled."}},
        {"Retry-After": "1"},
    )

    with pytest.raises(Transient) as caught:
        kind.check(tgt, CONTEXT, step.continuation)

    assert caught.value.held
    assert run_to_end(kind, tgt, step).progress is Progress.DONE


def test_a_finished_at_once_import_is_done_in_execute(arm: ArmStub, kind: AcrImport) -> None:
    arm.on("POST", IMPORT.replace(".", r"\."), lambda request, match: Reply(200, b""))

    step = kind.execute(target(), CONTEXT, {})

    assert step.progress is Progress.DONE
    assert step.detail == f"import of {IMAGE} into acrshopwe: finished at once"


# --- what a person reads, and bad params ---------------------------------------------------------


def test_command_and_describe(kind: AcrImport) -> None:
    assert kind.command(target()) == (
        f"az acr import --name acrshopwe --source {IMAGE} --registry {PEER} --image {IMAGE}"
    )
    hub = Target(
        REGISTRY, {"image": "library/nginx:1.27", "source_login_server": "docker.io", "force": "true"}
    )
    assert kind.command(hub) == (
        "az acr import --name acrshopwe --source docker.io/library/nginx:1.27"
        " --image library/nginx:1.27 --force"
    )
    digest = "sha256:" + "a" * 64
    assert kind.command(target(image=f"shop/cart@{digest}")).endswith(
        f"--source shop/cart@{digest} --registry {PEER} --repository shop/cart"
    )
    assert kind.describe(target()) == (
        f"Import {IMAGE} from acrshopne into ACR acrshopwe as {IMAGE} (NoForce)"
    )
    assert (kind.name, kind.default_mode) == ("acr.import", "approve")
    assert kind.params["image"].required and kind.params["force"].kind is bool


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"image": IMAGE}, "exactly one of source_registry"),
        ({"image": IMAGE, "source_registry": PEER, "source_login_server": "docker.io"}, "exactly one"),
        ({"image": "Shop/Cart", "source_registry": PEER}, "not repo:tag"),
        ({"image": IMAGE, "source_registry": PEER, "target": "x@sha256:" + "b" * 64}, "names a digest"),
        (
            {
                "image": IMAGE,
                "source_registry": f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.Cache/redis/r",
            },
            "not a container registry",
        ),
        ({"image": IMAGE, "source_registry": PEER, "force": "maybe"}, "force must be true or false"),
        ({"image": IMAGE, "source_login_server": "not a host"}, "not a registry host name"),
    ],
)
def test_bad_params_fail_before_any_request(
    arm: ArmStub, kind: AcrImport, params: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ActionFailed, match=problem):
        kind.precondition(Target(REGISTRY, params), CONTEXT)

    assert arm.requests == []


def test_an_import_whose_answer_was_lost_is_refused_on_a_takeover_naming_what_to_look_at(
    arm: ArmStub, kind: AcrImport, images: AcrImages
) -> None:
    arm.lose_answer_next(IMPORT, 502, method="POST")
    with pytest.raises(OutcomeUnknown):
        kind.execute(target(), CONTEXT, {})

    again = kind.precondition(target(), Context("inc-1", NOW, NOW, "act-1", {}))

    assert (again.verdict, again.detail) == (
        Verdict.REFUSE,
        f"the answer to the import of {IMAGE} into acrshopwe was lost (or its worker stopped) and I "
        f"cannot tell whether it took effect: look at {IMAGE} (`az acr repository show-tags --name "
        "acrshopwe --repository shop/cart`) and the registry's activity log, then import it by hand "
        "if it is missing",
    )
    assert len(arm.requests_to(IMPORT, "POST")) == 1
