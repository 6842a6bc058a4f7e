"""parse_alert against every Azure Monitor reference payload, and against bad input."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.clock import utc_iso
from shared.domain.resources import Ownership, ResourceId
from shared.domain.signals import KNOWN_FACTS, FactValue, Signal
from shared.errors import BadInput
from shared.intake.azure_monitor import parse_alert
from tests.conftest import REFDATA
from tests.json_strategies import JSON_VALUES, one_field_changed

COMMON = "azureMonitorCommonAlertSchema"
SUB = "00000000-0000-0000-0000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-app-1"
STORAGE = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/stapp1"
APPINSIGHTS = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/microsoft.insights/components/ai-app"
WORKSPACE = (
    f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.OperationalInsights/workspaces/law-app"
)
ALWAYS = ("monitor_condition", "signal_type", "alert_id", "configuration_items")


class Owner:
    """A simple owner: tenant from the first custom property, component from the resource type."""

    def __init__(self) -> None:
        self.calls: list[tuple[ResourceId, dict[str, str]]] = []

    def __call__(self, resource: ResourceId, tags: Mapping[str, str]) -> Ownership:
        self.calls.append((resource, dict(tags)))
        lowered = {k.lower(): v for k, v in tags.items()}
        tenant = lowered.get("customkey1") or lowered.get("key1") or "untagged"
        return Ownership(tenant=tenant, environment="test", component=resource.type)


@dataclass(frozen=True)
class Wrap:
    """How a ctx_*.json alertContext is put into a full common-schema envelope."""

    service: str
    signal_type: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    kind: str
    rule: str
    state: str
    severity: str
    target_type: str
    name: str
    facts: dict[str, FactValue]
    tenant: str = "untagged"
    tags: dict[str, str] = field(default_factory=dict)
    schema: str = COMMON
    absent: tuple[str, ...] = ()
    title: str = ""
    occurred_at: str = ""
    wrap: Wrap | None = None


CASES: dict[str, Case] = {
    "cas_log_alerts_v2_fired_full_logwebhookdoc.json": Case(
        kind="Log Alerts V2",
        rule="AcmeRule",
        state="fired",
        severity="Sev4",
        target_type="microsoft.compute/virtualmachines",
        name="testvm",
        facts={
            "monitor_condition": "Fired",
            "signal_type": "Log",
            "configuration_items": (),
            "search_query": "Heartbeat",
            "metric": ("CounterValue",),
            "operator": "LowerThan",
            "threshold": "1",
            "metric_value": "0.0",
            "log_count": "0.0",
            "dimensions": (
                "ResourceId=/subscriptions/12345a-1234b-123c-123d-12345678e/resourceGroups/TEST"
                "/providers/Microsoft.Compute/virtualMachines/testvm",
            ),
        },
        title="AcmeRule: testvm",
        occurred_at="2020-07-09T14:04:49.996Z",
    ),
    "cas_metric_static_resolved_full.json": Case(
        kind="Platform",
        rule="WCUS-R2-Gen2",
        state="resolved",
        severity="Sev3",
        target_type="microsoft.compute/virtualmachines",
        name="wcus-r2-gen2",
        facts={
            "monitor_condition": "Resolved",
            "signal_type": "Metric",
            "target_type": "microsoft.compute/virtualmachines",
            "configuration_items": ("wcus-r2-gen2",),
            "metric": ("Percentage CPU",),
            "metric_namespace": "Microsoft.Compute/virtualMachines",
            "operator": "GreaterThan",
            "threshold": "25",
            "metric_value": "7.727",
            "alert_id": "/subscriptions/<subscription ID>/providers/Microsoft.AlertsManagement/alerts/"
            "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
        },
        title="WCUS-R2-Gen2: wcus-r2-gen2",
        occurred_at="2019-03-22T14:03:16.224Z",  # the resolvedDateTime
    ),
    "cas_metric_static_resolved_with_customProperties.json": Case(
        kind="Platform",
        rule="WCUS-R2-Gen2",
        state="resolved",
        severity="Sev3",
        target_type="microsoft.compute/virtualmachines",
        name="wcus-r2-gen2",
        facts={"metric": ("Percentage CPU",), "metric_value": "7.727", "threshold": "25"},
        tenant="Value1",
        tags={"Key1": "Value1", "Key2": "Value2"},
    ),
    "cas_testaction_activity_log_administrative_fired.json": Case(
        kind="Activity Log - Administrative",
        rule="test-activityLogAlertRule",
        state="fired",
        severity="Sev4",
        target_type="microsoft.compute/virtualmachines",
        name="test-VM",
        facts={
            "signal_type": "Activity Log",
            "operation": "Microsoft.Compute/virtualMachines/restart/action",
            "category": "Administrative",
            "status": "Succeeded",
            "caller": "user-email@domain.com",
            "configuration_items": ("test-VM",),
        },
        title="test-activityLogAlertRule: test-VM",
        occurred_at="2025-04-15T11:26:21.386Z",
    ),
    "cas_testaction_log_alert_v2_fired.json": Case(
        kind="Log Alerts V2",
        rule="test-logAlertRule-v2",
        state="fired",
        severity="Sev4",
        target_type="microsoft.operationalinsights/workspaces",
        name="test-logAnalyticsWorkspace",
        facts={
            "search_query": "Heartbeat",
            "metric_value": "3.0",
            "log_count": "3.0",
            "operator": "GreaterThan",
            "threshold": "0",
            "dimensions": ("Computer=test-computer",),
            "configuration_items": ("test-computer",),
        },
        absent=("metric",),  # metricMeasureColumn is null
    ),
    "cas_testaction_metric_dynamic_fired.json": Case(
        kind="Platform",
        rule="test-dynamicMetricAlertRule",
        state="fired",
        severity="Sev4",
        target_type="microsoft.storage/storageaccounts",
        name="test-storageAccount",
        facts={
            "metric": ("Transactions",),
            "metric_namespace": "Microsoft.Storage/storageAccounts",
            "operator": "GreaterThan",
            "threshold": "0.3",
            "metric_value": "78.09",
            "alert_sensitivity": "Low",
            "condition_type": "DynamicThresholdCriteria",
        },
        tenant="value1",
        tags={"customKey1": "value1", "customKey2": "value2"},
    ),
    "cas_testaction_metric_static_fired.json": Case(
        kind="Platform",
        rule="test-metricAlertRule",
        state="fired",
        severity="Sev4",
        target_type="microsoft.storage/storageaccounts",
        name="test-storageAccount",
        facts={
            "metric": ("Transactions",),
            "threshold": "0",
            "metric_value": "100",
            "dimensions": ("ApiName=GetBlob",),
        },
        tenant="value1",
        tags={"customKey1": "value1", "customKey2": "value2"},
    ),
    "cas_testaction_resource_health_fired.json": Case(
        kind="Resource Health",
        rule="test-ResourceHealthAlertRule",
        state="fired",
        severity="Sev4",
        target_type="microsoft.compute/virtualmachines",
        name="test-VM",
        facts={
            "signal_type": "Activity Log",
            "health": "Unavailable",
            "previous_health": "Available",
            "cause": "UserInitiated",
            "category": "Downtime",
            "status": "Active",
        },
        title="test-ResourceHealthAlertRule: test-VM Unavailable",
    ),
    "cas_testaction_service_health_fired.json": Case(
        kind="ServiceHealth",
        rule="test-ServiceHealthAlertRule",
        state="fired",
        severity="Sev4",
        target_type="microsoft.resources/subscriptions",
        name="11111111-1111-1111-1111-111111111111",
        facts={
            "signal_type": "Activity Log",  # sent as "ActivityLog"
            "configuration_items": (),
            "incident_type": "Incident",
            "impacted_services": ("AzureServiceName",),  # impactedServices is an array here
            "regions": ("Global",),
            "tracking_id": "TEST-TTT",
            "stage": "Resolved",
            "status": "Resolved",
            "communication": "ThisisatestfromServiceHealthAlert",
        },
        title="test-ServiceHealthAlertRule: TestActionGroup-TestServiceHealthAlert",
    ),
    "cas_testaction_smart_detector_fired.json": Case(
        kind="SmartDetector",
        rule="test-SmartAlertRule",
        state="fired",
        severity="Sev4",
        target_type="microsoft.insights/components",
        name="test-applicationInsights",
        facts={
            "signal_type": "Log",
            "detector": "Dependency Performance Degradation Detector",
            "detector_id": "DependencyPerformanceDegradationDetector",
            "detected_value": "0.45 sec",
            "normal_value": "0.27 sec (over the last 7 days)",
        },
        occurred_at="2021-10-28T19:09:09.111Z",
    ),
    "ctx_metric_static_platform.json": Case(
        kind="Platform",
        rule="rule-ctx_metric_static_platform",
        state="fired",
        severity="Sev2",
        target_type="microsoft.compute/virtualmachines",
        name="vm-app-1",
        facts={
            "metric": ("Percentage CPU",),
            "metric_namespace": "Microsoft.Compute/virtualMachines",
            "operator": "GreaterThan",
            "threshold": "25",
            "metric_value": "31.1105",
            "time_aggregation": "Average",
        },
        wrap=Wrap("Platform", "Metric", (VM,)),
    ),
    "ctx_metric_dynamic_platform.json": Case(
        kind="Platform",
        rule="rule-ctx_metric_dynamic_platform",
        state="fired",
        severity="Sev2",
        target_type="microsoft.storage/storageaccounts",
        name="stapp1",
        facts={
            "metric": ("Egress",),
            "metric_namespace": "microsoft.storage/storageaccounts",
            "threshold": "47658",
            "metric_value": "50101",
            "alert_sensitivity": "High",
        },
        wrap=Wrap("Platform", "Metric", (STORAGE,)),
    ),
    "ctx_metric_availability_test.json": Case(
        kind="Platform",
        rule="rule-ctx_metric_availability_test",
        state="fired",
        severity="Sev2",
        target_type="microsoft.insights/components",
        name="ai-app",
        facts={
            "metric": ("Failed Location",),
            "threshold": "2",
            "metric_value": "5",
            "web_test_name": "myAvailabilityTest-myApplication",
            "condition_type": "WebtestLocationAvailabilityCriteria",
        },
        absent=("metric_namespace", "dimensions"),  # null and empty in the sample
        wrap=Wrap("Platform", "Metric", (APPINSIGHTS,)),
    ),
    "ctx_log_alerts_v2.json": Case(
        kind="Log Alerts V2",
        rule="rule-ctx_log_alerts_v2",
        state="fired",
        severity="Sev2",
        target_type="microsoft.operationalinsights/workspaces",
        name="law-app",
        facts={
            "search_query": "Heartbeat",
            "metric": ("CounterValue",),
            "metric_value": "0.0",
            "log_count": "0.0",
            "dimensions": ("Computer=TestComputer",),
        },
        wrap=Wrap("Log Alerts V2", "Log", (WORKSPACE,)),
    ),
    "ctx_activity_log_administrative.json": Case(
        kind="Activity Log - Administrative",
        rule="rule-ctx_activity_log_administrative",
        state="fired",
        severity="Sev2",
        target_type="microsoft.compute/virtualmachines",
        name="vm-app-1",
        facts={
            "operation": "Microsoft.Compute/virtualMachines/restart/action",
            "category": "Administrative",  # no properties.eventCategory here: from eventSource
            "status": "Succeeded",
            "caller": "22223333-cccc-4444-dddd-5555eeee6666",
        },
        wrap=Wrap("Activity Log - Administrative", "Activity Log", (VM,)),
    ),
    "ctx_activity_log_servicehealth.json": Case(
        kind="ServiceHealth",
        rule="rule-ctx_activity_log_servicehealth",
        state="fired",
        severity="Sev2",
        target_type="microsoft.resources/subscriptions",
        name=SUB,  # no alertTargetIDs: the subscription comes from the alert id
        facts={
            "signal_type": "Activity Log",
            "incident_type": "Maintenance",
            "impacted_services": ("Azure Synapse Analytics",),  # impactedServices is a JSON string here
            "regions": ("East US",),
            "tracking_id": "<GUID>",
            "stage": "Planned",
            "communication": "<MESSAGE>",
        },
        title="rule-ctx_activity_log_servicehealth: Azure Synapse Analytics Scheduled Maintenance Pending",
        wrap=Wrap("ServiceHealth", "ActivityLog", ()),
    ),
    "ctx_activity_log_resourcehealth.json": Case(
        kind="Resource Health",  # the doc's heading spells it "ResourceHealth"
        rule="rule-ctx_activity_log_resourcehealth",
        state="fired",
        severity="Sev2",
        target_type="microsoft.compute/virtualmachines",
        name="vm-app-1",
        facts={
            "health": "Unavailable",
            "previous_health": "Available",
            "cause": "UserInitiated",
            "category": "Downtime",
        },
        title="rule-ctx_activity_log_resourcehealth: vm-app-1 Unavailable",
        wrap=Wrap("ResourceHealth", "Activity Log", (VM,)),
    ),
    "legacy_classic_metric_alert_webhook.json": Case(
        kind="Platform",
        rule="ruleName1",
        state="fired",
        severity="Sev3",
        target_type="microsoft.foo/sites",
        name="mysite1",
        schema="classicMetricAlert",
        facts={
            "monitor_condition": "Fired",
            "signal_type": "Metric",
            "alert_id": "/subscriptions/s1/resourceGroups/useast/providers/microsoft.insights/alertrules"
            "/ruleName1",
            "configuration_items": ("mysite1",),
            "metric": ("Requests",),
            "metric_value": "10",
            "threshold": "10",
            "operator": "GreaterThanOrEqual",
            "metric_unit": "Count",
        },
        tenant="value1",
        tags={"key1": "value1", "key2": "value2"},
        title="ruleName1: mysite1",
        occurred_at="2015-08-14T22:26:41.997Z",
    ),
    "noncommon_activitylog_administrative.json": Case(
        kind="Activity Log - Administrative",
        rule="Microsoft.Compute/virtualMachines/restart/action",
        state="fired",
        severity="Sev4",  # level Informational
        target_type="microsoft.compute/virtualmachines",
        name="test-VM",
        schema="Microsoft.Insights/activityLogs",
        facts={
            "monitor_condition": "Fired",
            "signal_type": "Activity Log",
            "alert_id": "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb",
            "operation": "Microsoft.Compute/virtualMachines/restart/action",
            "category": "Administrative",
            "status": "Succeeded",
            "caller": "user-email@domain.com",
        },
        tenant="value1",
        tags={"customKey1": "value1", "customKey2": "value2"},
        occurred_at="2021-11-16T08:27:36.183Z",
    ),
    "noncommon_activitylog_resourcehealth.json": Case(
        kind="Resource Health",
        rule="Microsoft.Resourcehealth/healthevent/Activated/action",
        state="fired",
        severity="Sev4",
        target_type="microsoft.compute/virtualmachines",
        name="test-VM",
        schema="Microsoft.Insights/activityLogs",
        facts={"health": "Unavailable", "previous_health": "Available", "cause": "UserInitiated"},
        tenant="value1",
        tags={"customKey1": "value1", "customKey2": "value2"},
    ),
    "noncommon_metric_dynamic_AzureMonitorMetricAlert.json": Case(
        kind="Platform",
        rule="test-metricAlertRule",
        state="fired",
        severity="Sev3",  # "severity": "3"
        target_type="microsoft.storage/storageaccounts",
        name="test-storageAccount",
        schema="AzureMonitorMetricAlert",
        facts={
            "monitor_condition": "Fired",
            "signal_type": "Metric",
            "metric": ("Transactions",),
            "threshold": "0.3",
            "metric_value": "78.09",
            "configuration_items": ("test-storageAccount",),
        },
        tenant="value1",
        tags={"customKey1": "value1", "customKey2": "value2"},
    ),
    "noncommon_metric_static_AzureMonitorMetricAlert.json": Case(
        kind="Platform",
        rule="test-metricAlertRule",
        state="fired",
        severity="Sev3",
        target_type="microsoft.storage/storageaccounts",
        name="test-storageAccount",
        schema="AzureMonitorMetricAlert",
        facts={"metric": ("Transactions",), "threshold": "0", "metric_value": "100"},
        tenant="value1",
        tags={"customKey1": "value1", "customKey2": "value2"},
        occurred_at="2021-11-15T09:35:12.970Z",
    ),
}


def envelope(context: dict[str, Any], wrap: Wrap, rule: str, condition: str = "Fired") -> dict[str, Any]:
    """A full common-schema alert around an alertContext sample."""
    return {
        "schemaId": COMMON,
        "data": {
            "essentials": {
                "alertId": f"/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts/{rule}",
                "alertRule": rule,
                "severity": "Sev2",
                "signalType": wrap.signal_type,
                "monitorCondition": condition,
                "monitoringService": wrap.service,
                "alertTargetIDs": list(wrap.targets),
                "configurationItems": [t.rsplit("/", 1)[-1] for t in wrap.targets],
                "originAlertId": "origin",
                "firedDateTime": "2024-01-02T03:04:05.678Z",
                "description": "",
                "essentialsVersion": "1.0",
                "alertContextVersion": "1.0",
            },
            "alertContext": context,
            "customProperties": None,
        },
    }


def load(refdata: Path, name: str) -> Any:
    """A reference payload, wrapped into a full alert when it is only an alertContext."""
    payload = json.loads((refdata / "azure_monitor" / name).read_text())
    case = CASES[name]
    if case.wrap is not None:
        return envelope(payload["alertContext"], case.wrap, case.rule)
    return payload


@pytest.fixture
def owner() -> Owner:
    return Owner()


def test_every_reference_file_is_covered(refdata: Path) -> None:
    assert {p.name for p in (refdata / "azure_monitor").iterdir()} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_payload_normalizes(refdata: Path, owner: Owner, name: str) -> None:
    case = CASES[name]
    signal = parse_alert(load(refdata, name), owner)

    assert (signal.source, signal.schema) == ("azure-monitor", case.schema)
    assert (signal.kind, signal.rule, signal.state, signal.azure_severity) == (
        case.kind,
        case.rule,
        case.state,
        case.severity,
    )
    assert (signal.resource.type, signal.resource.name) == (case.target_type, case.name)
    assert (signal.tenant, signal.environment, signal.component) == (case.tenant, "test", case.target_type)
    assert owner.calls == [(signal.resource, case.tags)]
    for key, value in case.facts.items():
        assert signal.facts.get(key) == value, key
    for key in case.absent:
        assert key not in signal.facts
    for key in ALWAYS:
        assert key in signal.facts
    assert signal.facts.get("target_type") == case.target_type
    if case.title:
        assert signal.title == case.title
    else:
        assert signal.title.startswith(f"{case.rule}: ")
    if case.occurred_at:
        assert signal.occurred_at == case.occurred_at
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", signal.occurred_at)
    assert re.fullmatch(r"[0-9a-f]{32}", signal.id)
    assert signal.informational is False
    _assert_well_formed(signal)


def _assert_well_formed(signal: Signal) -> None:
    for key, value in signal.facts.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key), key
        assert isinstance(value, str) or (isinstance(value, tuple) and all(isinstance(v, str) for v in value))
    assert Signal.from_dict(json.loads(json.dumps(signal.to_dict()))) == signal


def test_dedupe_id_is_stable_and_separates_fired_from_resolved(refdata: Path, owner: Owner) -> None:
    payload = load(refdata, "cas_metric_static_resolved_full.json")
    resolved = parse_alert(payload, owner)
    assert parse_alert(copy.deepcopy(payload), owner).id == resolved.id
    fired_payload = copy.deepcopy(payload)
    fired_payload["data"]["essentials"]["monitorCondition"] = "Fired"
    del fired_payload["data"]["essentials"]["resolvedDateTime"]
    fired = parse_alert(fired_payload, owner)
    assert fired.state == "fired"
    assert fired.occurred_at == "2019-03-22T13:58:24.371Z"
    assert fired.id != resolved.id
    # The same file with customProperties is the same alert.
    assert (
        parse_alert(load(refdata, "cas_metric_static_resolved_with_customProperties.json"), owner).id
        == resolved.id
    )


def test_impacted_services_string_and_array_read_alike(refdata: Path, owner: Owner) -> None:
    payload = load(refdata, "cas_testaction_service_health_fired.json")
    props = payload["data"]["alertContext"]["properties"]
    as_array = parse_alert(payload, owner)
    props["impactedServices"] = json.dumps(props["impactedServices"])
    as_string = parse_alert(payload, owner)
    assert (
        as_string.facts["impacted_services"] == as_array.facts["impacted_services"] == ("AzureServiceName",)
    )
    assert as_string.facts["regions"] == ("Global",)
    props["impactedServices"] = "not json ["
    fallback = parse_alert(payload, owner)
    assert (fallback.facts["impacted_services"], fallback.facts["regions"]) == (
        ("AzureServiceName",),
        ("Global",),
    )


def test_service_health_communication_is_plain_trimmed_and_capped(refdata: Path, owner: Owner) -> None:
    payload = load(refdata, "cas_testaction_service_health_fired.json")
    long_text = "word " * 300
    payload["data"]["alertContext"]["properties"]["communication"] = f"  <p>A &amp; B</p><br/>{long_text}"
    communication = parse_alert(payload, owner).facts["communication"]
    assert isinstance(communication, str)
    assert communication.startswith("A & B word")
    assert len(communication) == 500


def test_service_health_without_targets_or_subscription_has_no_resource(refdata: Path, owner: Owner) -> None:
    payload = load(refdata, "cas_testaction_service_health_fired.json")
    payload["data"]["essentials"]["alertTargetIDs"] = []
    assert parse_alert(payload, owner).resource.raw == "/subscriptions/11111111-1111-1111-1111-111111111111"
    payload["data"]["essentials"]["alertId"] = "not-an-arm-id"
    signal = parse_alert(payload, owner)
    assert signal.resource == ResourceId(raw="")
    assert "target_type" not in signal.facts


def test_lenient_spellings(refdata: Path, owner: Owner) -> None:
    payload = load(refdata, "cas_testaction_metric_static_fired.json")
    ess = payload["data"]["essentials"]
    ess.update(
        monitorCondition="resolved",
        severity="sev1",
        firedDateTime="2025-04-15T20:17:12.851+02:00",
        monitoringService="Custom X",
    )
    signal = parse_alert(payload, owner)
    assert (signal.state, signal.azure_severity, signal.occurred_at, signal.kind) == (
        "resolved",
        "Sev1",
        "2025-04-15T18:17:12.851Z",
        "Custom X",
    )
    # An unknown monitoringService is tolerated: the metric context still reads as a metric alert.
    assert signal.facts["metric"] == ("Transactions",)


def test_mistyped_context_fields_are_left_out_not_refused(refdata: Path, owner: Owner) -> None:
    payload = load(refdata, "cas_testaction_metric_static_fired.json")
    payload["data"]["alertContext"]["condition"]["allOf"][0]["metricName"] = {"odd": 1}
    payload["data"]["alertContext"]["condition"]["allOf"].append("junk")
    payload["data"]["customProperties"] = {"ok": "v", "n": 3, "bad": [1]}
    signal = parse_alert(payload, owner)
    assert "metric" not in signal.facts
    assert signal.facts["metric_value"] == "100"
    assert owner.calls[-1][1] == {"ok": "v", "n": "3"}


@pytest.mark.parametrize(
    ("level", "severity"), [("Critical", "Sev1"), ("Error", "Sev2"), ("Warning", "Sev3"), ("Verbose", "Sev4")]
)
def test_noncommon_activity_log_severity_from_level(
    refdata: Path, owner: Owner, level: str, severity: str
) -> None:
    payload = load(refdata, "noncommon_activitylog_administrative.json")
    payload["data"]["context"]["activityLog"]["level"] = level
    assert parse_alert(payload, owner).azure_severity == severity


def test_noncommon_metric_alert_resolved(refdata: Path, owner: Owner) -> None:
    payload = load(refdata, "noncommon_metric_static_AzureMonitorMetricAlert.json")
    fired = parse_alert(payload, owner)
    payload["data"]["status"] = "Resolved"
    resolved = parse_alert(payload, owner)
    assert (resolved.state, resolved.facts["monitor_condition"]) == ("resolved", "Resolved")
    assert resolved.id != fired.id


def test_utc_iso() -> None:
    assert utc_iso("2019-06-24T11:31:19.0312699+00:00") == "2019-06-24T11:31:19.031Z"
    assert utc_iso("2021-07-01T04:52:57.0000000Z") == "2021-07-01T04:52:57.000Z"
    assert utc_iso("2018-06-20T12:00:33.6125843-07:00") == "2018-06-20T19:00:33.612Z"
    assert utc_iso("2024-01-02T03:04:05") == "2024-01-02T03:04:05.000Z"
    assert utc_iso("0001-01-01T00:00:00+01:00") == "0001-01-01T00:00:00+01:00"
    assert utc_iso(" soon ") == "soon"


# --- bad input: every 422 names the field -------------------------------------------------------


@pytest.mark.parametrize("payload", [None, [], [{}], 3, "alert", True])
def test_non_object_payload(owner: Owner, payload: Any) -> None:
    error = _refused(payload, owner)
    assert error.error == "invalid_payload"


def test_unknown_or_missing_schema(owner: Owner) -> None:
    error = _refused({"schemaId": "Microsoft.Insights/LogAlert", "data": {}}, owner)
    assert (error.error, "'Microsoft.Insights/LogAlert'" in error.detail) == ("unsupported_schema", True)
    assert _refused({"schemaId": "somethingElse"}, owner).error == "unsupported_schema"
    error = _refused({"data": {}}, owner)
    assert (error.error, error.detail.split()[0]) == ("missing_field", "schemaId")
    error = _refused({"schemaId": 7}, owner)
    assert (error.error, error.detail.split()[0]) == ("invalid_field", "schemaId")


@pytest.mark.parametrize(
    ("mutate", "error", "path"),
    [
        (lambda p: p.pop("data"), "missing_field", "data.essentials"),
        (lambda p: p["data"].update(essentials=[]), "invalid_field", "data.essentials"),
        (lambda p: p["data"].update(essentials="x"), "invalid_field", "data.essentials"),
        (lambda p: p["data"]["essentials"].pop("alertId"), "missing_field", "data.essentials.alertId"),
        (lambda p: p["data"]["essentials"].pop("alertRule"), "missing_field", "data.essentials.alertRule"),
        (
            lambda p: p["data"]["essentials"].update(alertRule=""),
            "missing_field",
            "data.essentials.alertRule",
        ),
        (lambda p: p["data"]["essentials"].update(alertRule=5), "invalid_field", "data.essentials.alertRule"),
        (lambda p: p["data"]["essentials"].pop("severity"), "missing_field", "data.essentials.severity"),
        (
            lambda p: p["data"]["essentials"].update(severity="Sev5"),
            "invalid_field",
            "data.essentials.severity",
        ),
        (lambda p: p["data"]["essentials"].update(severity=3), "invalid_field", "data.essentials.severity"),
        (
            lambda p: p["data"]["essentials"].update(monitorCondition="Paused"),
            "invalid_field",
            "data.essentials.monitorCondition",
        ),
        (
            lambda p: p["data"]["essentials"].pop("monitorCondition"),
            "missing_field",
            "data.essentials.monitorCondition",
        ),
        (
            lambda p: p["data"]["essentials"].update(monitoringService=None),
            "missing_field",
            "data.essentials.monitoringService",
        ),
        (
            lambda p: p["data"]["essentials"].pop("firedDateTime"),
            "missing_field",
            "data.essentials.firedDateTime",
        ),
        (
            lambda p: p["data"]["essentials"].update(alertTargetIDs="/subscriptions/x"),
            "invalid_field",
            "data.essentials.alertTargetIDs",
        ),
        (
            lambda p: p["data"]["essentials"].update(alertTargetIDs=[None]),
            "invalid_field",
            "data.essentials.alertTargetIDs[0]",
        ),
        (
            lambda p: p["data"]["essentials"].update(configurationItems=[1]),
            "invalid_field",
            "data.essentials.configurationItems[0]",
        ),
        (lambda p: p["data"].update(alertContext=[]), "invalid_field", "data.alertContext"),
        (lambda p: p["data"].update(customProperties="k=v"), "invalid_field", "data.customProperties"),
    ],
)
def test_common_schema_refusals_name_the_field(
    refdata: Path, owner: Owner, mutate: Any, error: str, path: str
) -> None:
    payload = load(refdata, "cas_metric_static_resolved_full.json")
    mutate(payload)
    refused = _refused(payload, owner)
    assert refused.error == error
    assert refused.detail.startswith(path + " ") or refused.detail.startswith(path + ":"), refused.detail


@pytest.mark.parametrize(
    ("name", "place", "value"),
    [
        ("cas_metric_static_resolved_full.json", "data.essentials.firedDateTime", "yesterday"),
        ("cas_metric_static_resolved_full.json", "data.essentials.firedDateTime", "99999-01-01T00:00:00Z"),
        ("cas_metric_static_resolved_full.json", "data.essentials.firedDateTime", "2025-02-30T10:00:00Z"),
        ("cas_metric_static_resolved_full.json", "data.essentials.firedDateTime", "2025-04-15"),
        ("cas_metric_static_resolved_full.json", "data.essentials.resolvedDateTime", "nope"),
        ("noncommon_metric_static_AzureMonitorMetricAlert.json", "data.context.timestamp", "nope"),
        ("noncommon_activitylog_administrative.json", "data.context.activityLog.eventTimestamp", "nope"),
        ("legacy_classic_metric_alert_webhook.json", "context.timestamp", "nope"),
    ],
)
def test_a_timestamp_that_is_no_date_time_is_refused_naming_its_path(
    refdata: Path, owner: Owner, name: str, place: str, value: str
) -> None:
    payload = load(refdata, name)
    parent = payload
    *steps, last = place.split(".")
    for step in steps:
        parent = parent[step]
    parent[last] = value
    refused = _refused(payload, owner)
    assert refused.error == "invalid_field" and refused.status == 422
    assert refused.detail.startswith(f"{place} must be an ISO 8601 date-time"), refused.detail


def test_severity_refusal_lists_allowed_values(refdata: Path, owner: Owner) -> None:
    payload = load(refdata, "cas_metric_static_resolved_full.json")
    payload["data"]["essentials"]["severity"] = "Critical"
    detail = _refused(payload, owner).detail
    assert "data.essentials.severity" in detail
    assert "Sev0, Sev1, Sev2, Sev3, Sev4" in detail
    assert "'Critical'" in detail


@pytest.mark.parametrize(
    ("name", "mutate", "error", "path"),
    [
        (
            "noncommon_metric_static_AzureMonitorMetricAlert.json",
            lambda p: p["data"]["context"].update(severity="high"),
            "invalid_field",
            "data.context.severity",
        ),
        (
            "noncommon_metric_static_AzureMonitorMetricAlert.json",
            lambda p: p["data"]["context"].pop("name"),
            "missing_field",
            "data.context.name",
        ),
        (
            "noncommon_metric_static_AzureMonitorMetricAlert.json",
            lambda p: p["data"].update(status="Weird"),
            "invalid_field",
            "data.status",
        ),
        (
            "noncommon_activitylog_administrative.json",
            lambda p: p["data"]["context"]["activityLog"].pop("operationName"),
            "missing_field",
            "data.context.activityLog.operationName",
        ),
        (
            "noncommon_activitylog_administrative.json",
            lambda p: p["data"].update(context=None),
            "missing_field",
            "data.context.activityLog",
        ),
        (
            "legacy_classic_metric_alert_webhook.json",
            lambda p: p["context"].pop("name"),
            "missing_field",
            "context.name",
        ),
        (
            "legacy_classic_metric_alert_webhook.json",
            lambda p: p.update(status=1),
            "invalid_field",
            "status",
        ),
    ],
)
def test_noncommon_refusals_name_the_field(
    refdata: Path, owner: Owner, name: str, mutate: Any, error: str, path: str
) -> None:
    payload = load(refdata, name)
    mutate(payload)
    refused = _refused(payload, owner)
    assert refused.error == error
    assert refused.detail.startswith(path + " ") or refused.detail.startswith(path + ":"), refused.detail


def test_classic_event_alert_is_unsupported(refdata: Path, owner: Owner) -> None:
    payload = load(refdata, "legacy_classic_metric_alert_webhook.json")
    payload["context"]["conditionType"] = "Event"
    refused = _refused(payload, owner)
    assert refused.error == "unsupported_schema"
    assert "'Event'" in refused.detail


def _refused(payload: Any, owner: Owner) -> BadInput:
    with pytest.raises(BadInput) as caught:
        parse_alert(payload, owner)
    assert caught.value.status == 422
    return caught.value


# --- fuzzing: anything but a valid alert is a BadInput, never a crash --------------------------

_JSON = JSON_VALUES
_ALERT_KEYS = st.sampled_from(
    ["schemaId", "data", "essentials", "alertContext", "status", "context", "severity", "alertTargetIDs"]
)


@settings(max_examples=200, deadline=None)
@given(value=_JSON | st.dictionaries(_ALERT_KEYS, _JSON, max_size=5))
def test_parse_alert_raises_only_bad_input_on_any_json(value: Any) -> None:
    try:
        parse_alert(value, Owner())
    except BadInput as e:
        assert e.status == 422


@cache
def _payloads() -> list[Any]:
    return [
        envelope(json.loads((REFDATA / "azure_monitor" / n).read_text())["alertContext"], c.wrap, c.rule)
        if c.wrap
        else json.loads((REFDATA / "azure_monitor" / n).read_text())
        for n, c in sorted(CASES.items())
    ]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_parse_alert_survives_any_single_field_replaced(data: st.DataObject) -> None:
    payload = data.draw(one_field_changed(_payloads(), delete=False))
    try:
        signal = parse_alert(payload, Owner())
    except BadInput as e:
        assert e.status == 422
    else:
        _assert_well_formed(signal)


def test_every_fact_produced_is_known_to_policy_validation() -> None:
    """The policy refuses conditions on unknown facts, so the list must hold every fact we make."""
    produced = {key for payload in _payloads() for key in parse_alert(payload, Owner()).facts}
    assert produced <= KNOWN_FACTS, sorted(produced - KNOWN_FACTS)
