"""parse_delivery / signal_from_event against every Event Grid reference payload, and against bad input."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.resources import Ownership, ResourceId
from shared.domain.signals import KNOWN_FACTS, FactValue, Signal
from shared.errors import BadInput
from shared.intake.azure_monitor import dedupe_id
from shared.intake.event_grid import Events, Handshake, parse_delivery, signal_from_event
from tests.conftest import REFDATA
from tests.json_strategies import JSON_VALUES, one_field_changed

EG, CE = "EventGridEvent", "CloudEvents"
VALIDATION_REPLY = "eg_SubscriptionValidation_response.json"


class Owner:
    """A simple owner: tenant from the resource group, component from the resource type."""

    def __init__(self) -> None:
        self.calls: list[tuple[ResourceId, dict[str, str]]] = []

    def __call__(self, resource: ResourceId, tags: Mapping[str, str]) -> Ownership:
        self.calls.append((resource, dict(tags)))
        return Ownership(
            tenant=resource.resource_group.lower() or "shared", environment="test", component=resource.type
        )


@dataclass(frozen=True)
class Ev:
    kind: str
    schema: str
    provider: str
    name: str
    resource_group: str
    facts: dict[str, FactValue]
    title: str
    occurred_at: str
    id: str
    absent: tuple[str, ...] = field(default=())


def redis(schema: str, event: str) -> Ev:
    return Ev(
        kind=f"Microsoft.Cache.{event}",
        schema=schema,
        provider="Microsoft.Cache/Redis",
        name="{cache_name}",
        resource_group="{resource_group_name}",
        facts={"subject": event, "status": "Succeeded", "name": event},
        title=f"Redis {{cache_name}}: {event} (Succeeded)",
        occurred_at="2020-12-09T21:50:19.999Z",
        id="eg:9b87886d-21a5-4af5-8e3e-10c4b8dac73b",
    )


def aks_sdkgo(event: str, facts: dict[str, FactValue], detail: str) -> Ev:
    return Ev(
        kind=f"Microsoft.ContainerService.{event}",
        schema=EG,
        provider="Microsoft.ContainerService/managedClusters",
        name="{cluster}",
        resource_group="{resource-group}",
        facts={"subject": "{cluster}", **facts},
        title=f"AKS {{cluster}}: {event} ({detail})",
        occurred_at="2023-03-29T18:00:00.000Z",
        id="eg:1234567890abcdef1234567890abcdef12345678",
    )


def aks_docs(schema: str) -> Ev:
    return Ev(
        kind="Microsoft.ContainerService.NewKubernetesVersionAvailable",
        schema=schema,
        provider="Microsoft.ContainerService/managedClusters",
        name="<cluster>",
        resource_group="<rg>",  # the sample's "resourceGroups<rg>" is read as "resourceGroups/<rg>"
        facts={
            "latest_supported_kubernetes_version": "1.20.7",
            "latest_stable_kubernetes_version": "1.19.11",
            "lowest_minor_kubernetes_version": "1.18.19",
            "latest_preview_kubernetes_version": "1.21.1",
        },
        title="AKS <cluster>: NewKubernetesVersionAvailable (1.20.7)",
        occurred_at="2021-07-01T04:52:57.000Z",
        id="eg:1234567890abcdef1234567890abcdef12345678",
        absent=("kubernetes_version", "node_pool"),
    )


VM_ID = (
    "/subscriptions/{subscription-id}/resourceGroups/{rg-name}"
    "/providers/Microsoft.Compute/virtualMachines/{vm-name}"
)


def health(schema: str, event: str) -> Ev:
    if event == "AvailabilityStatusChanged":
        facts: dict[str, FactValue] = {"health": "Available", "previous_health": "Unavailable"}
        detail, event_id = "Unavailable → Available", "1fb6fa94-d965-4306-abeq-4810f0774e97"
    else:
        facts = {
            "annotation": "VirtualMachineDeallocationInitiated",
            "category": "Not Applicable",
            "reason": "Stopping and deallocating",
            "context": "Customer Initiated",
        }
        detail, event_id = "VirtualMachineDeallocationInitiated", "8945cf9b-e220-496e-ab4f-f3a239318995"
    return Ev(
        kind=f"Microsoft.ResourceNotifications.HealthResources.{event}",
        schema=schema,
        provider="Microsoft.Compute/virtualMachines",  # the target, not …/availabilityStatuses/{event-id}
        name="{vm-name}",
        resource_group="{rg-name}",
        facts={"subject": VM_ID, "target_type": "microsoft.compute/virtualmachines", **facts},
        title=f"{{vm-name}}: {event} ({detail})",
        occurred_at="2023-07-24T19:20:37.924Z",
        id=f"eg:{event_id}",
    )


def key_vault(schema: str) -> Ev:
    return Ev(
        kind="Microsoft.KeyVault.SecretNewVersionCreated",
        schema=schema,
        provider="Microsoft.KeyVault/vaults",
        name="sample-kv",
        resource_group="sample-rg",
        facts={
            "subject": "newsecret",
            "object_type": "Secret",
            "object_name": "newsecret",  # from the key "ObjectName " (trailing space)
            "vault_name": "sample-kv",
            "version": "ee059b2bb5bc48398a53b168c6cdcb10",  # value had a leading space
        },
        title="Key Vault sample-kv: SecretNewVersionCreated (Secret newsecret)",
        occurred_at="2019-07-25T01:08:33.103Z",
        id="eg:00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
    )


def acr_docs2018(event: str, action: str, tag: str, event_id: str, when: str) -> Ev:
    facts: dict[str, FactValue] = {
        "repository": "aci-helloworld",
        "digest": "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5",
        "action": action,
    }
    if tag:
        facts["tag"] = tag
    return Ev(
        kind=f"Microsoft.ContainerRegistry.{event}",  # the sample says just "ImagePushed" / "ImageDeleted"
        schema=EG,
        provider="Microsoft.ContainerRegistry/registries",
        name="<name>",
        resource_group="<resource-group-name>",
        facts=facts,
        title=f"ACR <name>: {event} (aci-helloworld{':' + tag if tag else ''})",
        occurred_at=when,
        id=f"eg:{event_id}",
        absent=() if tag else ("tag",),
    )


def acr_sdkjava(event: str) -> Ev:
    return Ev(
        kind=f"Microsoft.ContainerRegistry.{event}",
        schema=EG,
        provider="MICROSOFT.ContainerRegistry/test1",  # the SDK fixture's topic has no "registries" segment
        name="",
        resource_group="rg",
        facts={
            "subject": "test1",
            "repository": "test",
            "tag": "test",
            "digest": "digest1",
            "action": "testaction",
        },
        title=f"ACR test1: {event} (test:test)",
        occurred_at="2018-01-02T19:17:44.438Z",
        id="eg:56afc886-767b-d359-d59e-0da7877166b2",
    )


def resources_docs(event: str, verb: str, when: str, event_id: str, groups: str) -> Ev:
    uri = (
        f"/subscriptions/{{subscription-id}}/{groups}/{{resource-group}}"
        "/providers/Microsoft.Storage/storageAccounts/{storage-name}"
    )
    return Ev(
        kind=f"Microsoft.Resources.{event}",
        schema=EG,
        provider="Microsoft.Storage/storageAccounts",
        name="{storage-name}",
        resource_group="{resource-group}",
        facts={
            "operation": f"Microsoft.Storage/storageAccounts/{verb}",
            "status": "Succeeded",
            "resource_uri": uri,
            "action": f"Microsoft.Storage/storageAccounts/{verb}",  # authorization is an object here
            "caller": "{user-name}",  # claims is an object here
        },
        title=f"{{storage-name}}: {event} (Microsoft.Storage/storageAccounts/{verb}, Succeeded)",
        occurred_at=when,
        id=f"eg:{event_id}",
    )


def resources_sdkjava(event: str) -> Ev:
    name = "LogicAppdd584bdf-8347-49c9-b9a9-d1f980783501"
    return Ev(
        kind=f"Microsoft.Resources.{event}",
        schema=EG,
        provider="Microsoft.EventGrid/eventSubscriptions",
        name=name,
        resource_group="{resource-group}",
        facts={
            "operation": "Microsoft.EventGrid/eventSubscriptions/write",  # even in the Delete sample
            "status": "Succeeded",
            "action": "actionValue",  # authorization is a JSON string here
        },
        title=f"{name}: {event} (Microsoft.EventGrid/eventSubscriptions/write, Succeeded)",
        occurred_at="2017-08-16T03:54:38.269Z",
        id="eg:25b3b0d0-d79b-44d5-9963-440d4e6a9bba",
        absent=("caller",),
    )


CASES: dict[str, Ev | Handshake | None] = {
    **{f"ce_redis_{e}.json": redis(CE, e) for e in ("ExportRDBCompleted", "ImportRDBCompleted")},
    **{f"ce_redis_{e}.json": redis(CE, e) for e in ("PatchingCompleted", "ScalingCompleted")},
    **{f"eg_redis_{e}.json": redis(EG, e) for e in ("ExportRDBCompleted", "ImportRDBCompleted")},
    **{f"eg_redis_{e}.json": redis(EG, e) for e in ("PatchingCompleted", "ScalingCompleted")},
    "docs2018_eg_acr_ImageDeleted.json": acr_docs2018(
        "ImageDeleted", "delete", "", "f06e3921-301f-42ec-b368-212f7d5354bd", "2018-04-26T17:56:01.821Z"
    ),
    "docs2018_eg_acr_ImagePushed.json": acr_docs2018(
        "ImagePushed", "push", "v1", "831e1650-001e-001b-66ab-eeb76e069631", "2018-04-25T21:39:47.654Z"
    ),
    "sdkjava_eg_ContainerRegistryImageDeletedEvent.json": acr_sdkjava("ImageDeleted"),
    "sdkjava_eg_ContainerRegistryImagePushedEvent.json": acr_sdkjava("ImagePushed"),
    "docs_ce_aks_NewKubernetesVersionAvailable.json": aks_docs(CE),
    "docs_eg_aks_NewKubernetesVersionAvailable.json": aks_docs(EG),
    "sdkgo_eg_aks_ClusterSupportEnded.json": aks_sdkgo(
        "ClusterSupportEnded", {"kubernetes_version": "1.23.15"}, "1.23.15"
    ),
    "sdkgo_eg_aks_ClusterSupportEnding.json": aks_sdkgo(
        "ClusterSupportEnding", {"kubernetes_version": "1.23.15"}, "1.23.15"
    ),
    "sdkgo_eg_aks_NodePoolRollingFailed.json": aks_sdkgo(
        "NodePoolRollingFailed", {"node_pool": "nodepool1"}, "nodepool1"
    ),
    "sdkgo_eg_aks_NodePoolRollingStarted.json": aks_sdkgo(
        "NodePoolRollingStarted", {"node_pool": "nodepool1"}, "nodepool1"
    ),
    "sdkgo_eg_aks_NodePoolRollingSucceeded.json": aks_sdkgo(
        "NodePoolRollingSucceeded", {"node_pool": "nodepool1"}, "nodepool1"
    ),
    "docs_ce_healthresources_AvailabilityStatusChanged.json": health(CE, "AvailabilityStatusChanged"),
    "docs_eg_healthresources_AvailabilityStatusChanged.json": health(EG, "AvailabilityStatusChanged"),
    "docs_ce_healthresources_ResourceAnnotated.json": health(CE, "ResourceAnnotated"),
    "docs_eg_healthresources_ResourceAnnotated.json": health(EG, "ResourceAnnotated"),
    "docs_ce_keyvault_SecretNewVersionCreated.json": key_vault(CE),
    "docs_eg_keyvault_SecretNewVersionCreated.json": key_vault(EG),
    "docs_eg_resources_ResourceDeleteSuccess.json": resources_docs(
        "ResourceDeleteSuccess",
        "delete",
        "2018-07-19T19:24:12.763Z",
        "19a69642-1aad-4a96-a5ab-8d05494513ce",
        "resourceGroups",
    ),
    "docs_eg_resources_ResourceWriteSuccess.json": resources_docs(
        "ResourceWriteSuccess",
        "write",
        "2018-07-19T18:38:04.611Z",
        "4db48cba-50a2-455a-93b4-de41a3b5b7f6",
        "resourcegroups",
    ),
    "sdkjava_eg_ResourceDeleteSuccessEvent.json": resources_sdkjava("ResourceDeleteSuccess"),
    "sdkjava_eg_ResourceWriteSuccessEvent.json": resources_sdkjava("ResourceWriteSuccess"),
    "eg_SubscriptionValidationEvent.json": Handshake("512d38b6-c7b8-40c8-89fe-f46f9e9622b6"),
    VALIDATION_REPLY: None,  # not a delivery: the body we must answer the validation event with
}


def load(name: str) -> Any:
    return json.loads((REFDATA / "event_grid" / name).read_text())


@pytest.fixture
def owner() -> Owner:
    return Owner()


def test_every_reference_file_is_covered(refdata: Path) -> None:
    assert {p.name for p in (refdata / "event_grid").iterdir()} == set(CASES)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if isinstance(c, Ev)))
def test_reference_event_normalizes(owner: Owner, name: str) -> None:
    case = CASES[name]
    assert isinstance(case, Ev)
    delivery = parse_delivery(load(name), owner)
    assert isinstance(delivery, Events)
    assert len(delivery.signals) == 1
    signal = delivery.signals[0]

    raw = load(name)
    raw = raw[0] if isinstance(raw, list) else raw
    topic = str(raw.get("topic") or raw.get("source") or "").strip().lower()
    # Event Grid promises source + id to be unique, not id alone: the dedupe id hashes both.
    expected_id = "eg:" + dedupe_id(topic, case.id.removeprefix("eg:"))
    assert (signal.source, signal.schema, signal.id) == ("event-grid", case.schema, expected_id)
    assert (signal.kind, signal.rule, signal.state, signal.azure_severity) == (
        case.kind,
        case.kind,
        "event",
        "",
    )
    assert (signal.resource.provider, signal.resource.name, signal.resource.resource_group) == (
        case.provider,
        case.name,
        case.resource_group,
    )
    assert (signal.tenant, signal.component) == (
        case.resource_group.lower() or "shared",
        case.provider.lower(),
    )
    assert owner.calls == [(signal.resource, {})]
    assert signal.facts["event_type"] == case.kind
    for key, value in case.facts.items():
        assert signal.facts.get(key) == value, key
    for key in case.absent:
        assert key not in signal.facts
    assert (signal.title, signal.occurred_at) == (case.title, case.occurred_at)
    assert signal.informational is False
    assert signal.description == signal.facts.get("summary", "")
    _assert_well_formed(signal)


def _assert_well_formed(signal: Signal) -> None:
    assert {"event_type", "subject"} <= set(signal.facts)
    for key, value in signal.facts.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key), key
        assert isinstance(value, str) or (isinstance(value, tuple) and all(isinstance(v, str) for v in value))
    assert Signal.from_dict(json.loads(json.dumps(signal.to_dict()))) == signal


def test_subscription_validation_is_a_handshake_answered_as_documented(owner: Owner) -> None:
    delivery = parse_delivery(load("eg_SubscriptionValidationEvent.json"), owner)
    assert delivery == CASES["eg_SubscriptionValidationEvent.json"]
    assert isinstance(delivery, Handshake)
    assert delivery.response() == load(VALIDATION_REPLY)
    assert owner.calls == []


def test_cloudevents_batch(owner: Owner) -> None:
    batch = [
        load(f"ce_redis_{e}.json")[0] for e in ("PatchingCompleted", "ScalingCompleted", "ImportRDBCompleted")
    ]
    delivery = parse_delivery(batch, owner)
    assert isinstance(delivery, Events)
    assert [s.kind for s in delivery.signals] == [
        "Microsoft.Cache.PatchingCompleted",
        "Microsoft.Cache.ScalingCompleted",
        "Microsoft.Cache.ImportRDBCompleted",
    ]
    assert {s.schema for s in delivery.signals} == {CE}


def test_single_cloudevent_object(owner: Owner) -> None:
    delivery = parse_delivery(load("ce_redis_PatchingCompleted.json")[0], owner)
    assert isinstance(delivery, Events)
    assert delivery.signals[0].kind == "Microsoft.Cache.PatchingCompleted"


def test_unknown_event_type_is_informational_not_dropped(owner: Owner) -> None:
    event = {
        "id": "e1",
        "topic": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/st1",
        "subject": "/blobServices/default/containers/c/blobs/b.txt",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2024-05-06T07:08:09.000Z",
        "data": {"api": "PutBlob"},
        "dataVersion": "1",
    }
    signal = signal_from_event(event, owner)
    assert signal.informational is True
    assert (signal.kind, signal.rule, signal.resource.name) == (
        "Microsoft.Storage.BlobCreated",
        "Microsoft.Storage.BlobCreated",
        "st1",
    )
    assert signal.title == "st1: Microsoft.Storage.BlobCreated"
    assert dict(signal.facts) == {"event_type": "Microsoft.Storage.BlobCreated", "subject": event["subject"]}
    event["data"] = "not an object"
    assert signal_from_event(event, owner).informational is True


def test_signal_from_event_accepts_the_trigger_mapping(owner: Owner) -> None:
    raw = load("eg_redis_PatchingCompleted.json")[0]
    expected = signal_from_event(raw, owner)
    delivered = parse_delivery([raw], owner)
    assert isinstance(delivered, Events) and delivered.signals == [expected]
    trigger = {
        "id": raw["id"],
        "topic": raw["topic"],
        "subject": raw["subject"],
        "event_type": raw["eventType"],
        "event_time": datetime(2020, 12, 9, 21, 50, 19, 999566, tzinfo=UTC),
        "data": raw["data"],
        "data_version": raw["dataversion"],
    }
    assert signal_from_event(trigger, owner) == expected
    trigger["event_time"] = raw["eventTime"]
    assert signal_from_event(trigger, owner) == expected


def test_short_acr_names_are_mapped_only_for_a_registry(owner: Owner) -> None:
    event = load("docs2018_eg_acr_ImagePushed.json")[0]
    event["topic"] = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Web/sites/app1"
    signal = signal_from_event(event, owner)
    assert (signal.kind, signal.informational) == ("ImagePushed", True)


def test_resources_claims_as_json_string_or_object_read_alike(owner: Owner) -> None:
    event = load("docs_eg_resources_ResourceWriteSuccess.json")[0]
    as_objects = signal_from_event(event, owner)
    for key in ("authorization", "claims"):
        event["data"][key] = json.dumps(event["data"][key])
    as_strings = signal_from_event(event, owner)
    assert as_strings.facts == as_objects.facts
    event["data"]["claims"] = "{not json"
    event["data"]["authorization"] = 42
    degraded = signal_from_event(event, owner)
    assert "caller" not in degraded.facts and "action" not in degraded.facts
    assert degraded.facts["operation"] == "Microsoft.Storage/storageAccounts/write"


def test_key_vault_camel_case_keys_read_like_pascal_case(owner: Owner) -> None:
    event = load("docs_eg_keyvault_SecretNewVersionCreated.json")[0]
    pascal = signal_from_event(event, owner)
    event["data"] = {"id": event["data"]["Id"], "vaultName": "sample-kv", "objectType": "Secret"} | {
        "objectName": "newsecret",
        "version": "ee059b2bb5bc48398a53b168c6cdcb10",
    }
    assert signal_from_event(event, owner).facts == pascal.facts


def test_health_event_without_target_id_strips_the_health_extension(owner: Owner) -> None:
    event = load("docs_eg_healthresources_AvailabilityStatusChanged.json")
    del event["data"]["resourceInfo"]["properties"]["targetResourceId"]
    signal = signal_from_event(event, owner)
    assert signal.resource.raw == VM_ID
    event["data"] = {}
    assert signal_from_event(event, owner).resource.raw == VM_ID  # from the subject


# --- bad input: every 422 names the element and field ------------------------------------------


def _refused(payload: Any, owner: Owner) -> BadInput:
    with pytest.raises(BadInput) as caught:
        parse_delivery(payload, owner)
    assert caught.value.status == 422
    return caught.value


def test_empty_and_non_event_payloads(owner: Owner) -> None:
    assert _refused([], owner).error == "no_events"
    for payload in (None, 3, "events", True):
        assert _refused(payload, owner).error == "invalid_payload"
    error = _refused([load("eg_redis_PatchingCompleted.json")[0], 1], owner)
    assert (error.error, error.detail.split()[0]) == ("invalid_field", "[1]")


def _eg(index: int) -> dict[str, Any]:
    return dict(load("eg_redis_PatchingCompleted.json")[0], id=f"id-{index}")


def _ce() -> dict[str, Any]:
    return dict(load("ce_redis_PatchingCompleted.json")[0])


@pytest.mark.parametrize(
    ("payload", "error", "path"),
    [
        (
            [_eg(0), _eg(1), {k: v for k, v in _eg(2).items() if k != "eventType"}],
            "missing_field",
            "[2].eventType",
        ),
        ([_eg(0), dict(_eg(1), eventType=7)], "invalid_field", "[1].eventType"),
        ([dict(_eg(0), eventType=" ")], "missing_field", "[0].eventType"),
        ([{k: v for k, v in _eg(0).items() if k != "id"}], "missing_field", "[0].id"),
        ([dict(_eg(0), eventTime=None)], "missing_field", "[0].eventTime"),
        ([dict(_eg(0), eventTime="nope")], "invalid_field", "[0].eventTime"),
        ([_eg(0), dict(_eg(1), eventTime="99999-01-01T00:00:00Z")], "invalid_field", "[1].eventTime"),
        ([dict(_ce(), time="nope")], "invalid_field", "[0].time"),
        (dict(_ce(), time="yesterday"), "invalid_field", "time"),
        ([dict(_eg(0), subject=5)], "invalid_field", "[0].subject"),
        ([dict(_eg(0), topic=["x"])], "invalid_field", "[0].topic"),
        ({k: v for k, v in _eg(0).items() if k != "eventType"}, "missing_field", "eventType"),
        ([{k: v for k, v in _ce().items() if k != "source"}], "missing_field", "[0].source"),
        ([{k: v for k, v in _ce().items() if k != "time"}], "missing_field", "[0].time"),
        ({k: v for k, v in _ce().items() if k != "type"}, "missing_field", "type"),
        ([_ce(), dict(_ce(), specversion=1)], "invalid_field", "[1].specversion"),
        (
            [dict(load("eg_SubscriptionValidationEvent.json")[0], data={})],
            "missing_field",
            "[0].data.validationCode",
        ),
        (
            [dict(load("eg_SubscriptionValidationEvent.json")[0], data="code")],
            "invalid_field",
            "[0].data",
        ),
        ([_eg(0), *load("eg_SubscriptionValidationEvent.json")], "mixed_batch", "[1]"),
        ([*load("eg_SubscriptionValidationEvent.json"), _eg(0), _eg(1)], "mixed_batch", "[0]"),
    ],
)
def test_refusals_name_index_and_field(owner: Owner, payload: Any, error: str, path: str) -> None:
    refused = _refused(payload, owner)
    assert refused.error == error
    assert refused.detail.startswith(path + " "), refused.detail


def test_signal_from_event_refuses_with_field_names(owner: Owner) -> None:
    with pytest.raises(BadInput) as caught:
        signal_from_event({"id": "1", "event_type": "X", "event_time": None}, owner)
    assert caught.value.detail.startswith("event_time ")


# --- fuzzing: anything but a valid delivery is a BadInput, never a crash -----------------------

_JSON = JSON_VALUES
_EVENT_KEYS = st.sampled_from(
    ["id", "eventType", "eventTime", "topic", "subject", "data", "specversion", "type"]
)
_EVENTISH = st.dictionaries(_EVENT_KEYS, st.text(max_size=30) | _JSON, max_size=8)


@settings(max_examples=200, deadline=None)
@given(value=_JSON | _EVENTISH | st.lists(_EVENTISH, max_size=3))
def test_parse_delivery_raises_only_bad_input_on_any_json(value: Any) -> None:
    try:
        parse_delivery(value, Owner())
    except BadInput as e:
        assert e.status == 422


@cache
def _deliveries() -> list[Any]:
    return [load(name) for name in sorted(CASES) if name != VALIDATION_REPLY]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_parse_delivery_survives_any_single_field_replaced(data: st.DataObject) -> None:
    payload = data.draw(one_field_changed(_deliveries(), delete=False))
    try:
        delivery = parse_delivery(payload, Owner())
    except BadInput as e:
        assert e.status == 422
    else:
        for signal in delivery.signals if isinstance(delivery, Events) else []:
            _assert_well_formed(signal)


def test_every_fact_produced_is_known_to_policy_validation() -> None:
    """The policy refuses conditions on unknown facts, so the list must hold every fact we make."""
    produced: set[str] = set()
    for payload in _deliveries():
        delivery = parse_delivery(payload, Owner())
        for signal in delivery.signals if isinstance(delivery, Events) else []:
            produced |= set(signal.facts)
    assert produced <= KNOWN_FACTS, sorted(produced - KNOWN_FACTS)
