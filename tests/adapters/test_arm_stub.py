"""The ARM stub behaves as ARM does for the real azure-core pipeline (azure-mgmt-redis's client over TLS)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stubs.arm import ArmStub, StubCredential

SUB = "00000000-0000-0000-0000-00000000000a"
GROUP = "rg-shop"
REDIS = f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Cache/redis/cache-we"
LINK = f"{REDIS}/linkedServers/cache-ne"
API = "2024-11-01"  # azure-mgmt-redis 14.5.0's


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmStub]:
    with ArmStub() as started:
        started.announce(monkeypatch)
        started.put(
            REDIS,
            {
                "location": "westeurope",
                "properties": {
                    "provisioningState": "Succeeded",
                    "sku": {"name": "Premium", "family": "P", "capacity": 1},
                },
            },
        )
        started.put(LINK, {"properties": {"linkedRedisCacheId": "/x/cache-ne", "serverRole": "Secondary"}})
        yield started


@pytest.fixture
def credential() -> StubCredential:
    return StubCredential()


def client(arm: ArmStub, credential: StubCredential, **kwargs: Any) -> Any:
    from azure.mgmt.redis import RedisManagementClient

    return RedisManagementClient(
        credential,
        SUB,
        base_url=arm.url,
        credential_scopes=[arm.scope],
        polling_interval=0,
        retry_backoff_factor=0,
        **kwargs,
    )


def test_get_answers_the_stored_resource_and_records_what_was_sent(
    arm: ArmStub, credential: StubCredential
) -> None:
    cache = client(arm, credential).redis.get(GROUP, "cache-we")

    assert (cache.name, cache.provisioning_state, cache.sku.name) == ("cache-we", "Succeeded", "Premium")
    [sent] = arm.requests
    assert (sent.method, sent.path, sent.query) == ("GET", REDIS, {"api-version": [API]})
    assert sent.header("Authorization") == "Bearer ***"  # recorded without the token
    assert arm.bearer_tokens() == ["stub-token-1"]
    assert credential.scopes == [(arm.scope,)]


def test_a_missing_resource_is_arms_404_with_its_error_code(arm: ArmStub, credential: StubCredential) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError) as raised:
        client(arm, credential).redis.get(GROUP, "nope")

    assert raised.value.error is not None
    assert raised.value.error.code == "ResourceNotFound"


def test_delete_is_an_lro_that_polls_the_async_operation_then_the_resource_is_gone(
    arm: ArmStub, credential: StubCredential
) -> None:
    arm.polls = 2
    poller = client(arm, credential).linked_server.begin_delete(GROUP, "cache-we", "cache-ne")

    assert arm.get(LINK) is not None  # started, not done: the stub waits for the polls
    poller.result()

    assert arm.get(LINK) is None
    [operation] = arm.operations
    assert (operation.status, operation.reads, operation.api_version) == ("Succeeded", 3, API)
    methods = [(r.method, r.path.rsplit("/", 2)[-2]) for r in arm.requests]
    assert methods[0] == ("DELETE", "linkedServers")
    assert methods[1:4] == [("GET", "operationStatuses")] * 3
    first = arm.requests[0]
    assert first.query == {"api-version": [API]}


def test_a_failed_operation_is_the_sdks_error_with_arms_code_and_message(
    arm: ArmStub, credential: StubCredential
) -> None:
    from azure.core.exceptions import HttpResponseError

    def fail(request: Any, match: Any) -> Any:
        operation = arm.start_operation(request, error=("LinkedServerDeleteFailed", "The link is busy."))
        return arm.accepted(operation)

    arm.on("DELETE", ".*/linkedServers/[^/]+", fail)
    poller = client(arm, credential).linked_server.begin_delete(GROUP, "cache-we", "cache-ne")

    with pytest.raises(HttpResponseError) as raised:
        poller.result()

    assert "LinkedServerDeleteFailed" in str(raised.value)
    assert arm.get(LINK) is not None


def test_a_throttled_post_is_retried_by_the_pipeline_after_retry_after(
    arm: ArmStub, credential: StubCredential
) -> None:
    from azure.mgmt.redis.models import RebootType, RedisRebootParameters

    arm.on("POST", ".*/redis/[^/]+/forceReboot", lambda request, match: _reboot_answer())
    arm.throttle("POST", f"{REDIS}/forceReboot", retry_after="0")

    answer = client(arm, credential).redis.force_reboot(
        GROUP, "cache-we", RedisRebootParameters(reboot_type=RebootType.PRIMARY_NODE)
    )

    assert answer.message == "Reboot started"
    sent = arm.requests_to(f"{REDIS}/forceReboot", "POST")
    assert [r.json for r in sent] == [{"rebootType": "PrimaryNode"}] * 2
    assert arm.api_versions(f"{REDIS}/forceReboot") == [API, API]


def test_a_conflict_is_raised_with_the_arm_error_body(arm: ArmStub, credential: StubCredential) -> None:
    from azure.core.exceptions import ResourceExistsError
    from azure.mgmt.redis.models import RebootType, RedisRebootParameters

    arm.fault("POST", f"{REDIS}/forceReboot", 409, "Conflict", "An operation is in progress on cache-we.")

    with pytest.raises(ResourceExistsError) as raised:
        client(arm, credential).redis.force_reboot(
            GROUP, "cache-we", RedisRebootParameters(reboot_type=RebootType.PRIMARY_NODE)
        )

    assert raised.value.error is not None
    assert (raised.value.error.code, raised.value.error.message) == (
        "Conflict",
        "An operation is in progress on cache-we.",
    )


def test_put_patch_and_a_collection_read_through_the_arm_pipeline(
    arm: ArmStub, credential: StubCredential
) -> None:
    from azure.core.rest import HttpRequest
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

    pipeline = ARMPipelineClient(
        base_url=arm.url, policies=[ARMChallengeAuthenticationPolicy(credential, arm.scope)]
    )
    other = f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Cache/redis/cache-2"
    query = {"api-version": API}

    created = pipeline.send_request(
        HttpRequest("PUT", arm.url + other, params=query, json={"location": "northeurope"})
    )
    patched = pipeline.send_request(
        HttpRequest("PATCH", arm.url + other, params=query, json={"tags": {"team": "shop"}})
    )
    listed = pipeline.send_request(HttpRequest("GET", arm.url + REDIS.rsplit("/", 1)[0], params=query))

    assert (created.status_code, patched.status_code, listed.status_code) == (201, 200, 200)
    assert patched.json()["tags"] == {"team": "shop"}
    assert sorted(r["name"] for r in listed.json()["value"]) == ["cache-2", "cache-we"]


def test_without_a_bearer_token_or_api_version_arm_refuses(arm: ArmStub) -> None:
    context = ssl.create_default_context(cafile=arm.ca_file)

    def status_of(path: str, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(arm.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, context=context) as answered:
                return answered.status, ""
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())["error"]["code"]

    assert status_of(f"{REDIS}?api-version={API}", {}) == (401, "AuthenticationFailed")
    assert status_of(REDIS, {"Authorization": "Bearer t"}) == (400, "MissingApiVersionParameter")


def _reboot_answer() -> Any:
    from tests.stubs.base import Reply

    return Reply(200, {"message": "Reboot started"})


def test_a_keep_alive_stub_serves_a_pooled_connection_until_stopped(
    credential: StubCredential, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.core.exceptions import ServiceRequestError

    with ArmStub(keep_alive=True) as arm:
        arm.announce(monkeypatch)
        arm.put(REDIS, {"location": "westeurope", "properties": {"provisioningState": "Succeeded"}})
        redis = client(arm, credential, retry_total=0)
        assert [redis.redis.get(GROUP, "cache-we").name for _ in range(3)] == ["cache-we"] * 3
        arm.stop()
        # The pooled connection is hung up too: a stopped stub answers nobody, as HTTP/1.0 ones do.
        with pytest.raises(ServiceRequestError):
            redis.redis.get(GROUP, "cache-we")
    assert [r.method for r in arm.requests] == ["GET"] * 3
