"""Signal: one alert or event, normalized from whatever schema it arrived in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from shared.domain.resources import ResourceId

FactValue = str | tuple[str, ...]

# The facts the intake parsers produce (a test holds them to it), so a policy's rules can be
# checked against real names: a misspelt condition would otherwise load and never match.
KNOWN_FACTS = frozenset(
    [
        "action",
        "alert_id",
        "alert_sensitivity",
        "annotation",
        "caller",
        "category",
        "cause",
        "communication",
        "condition_type",
        "configuration_items",
        "context",
        "detected_value",
        "detection_summary",
        "detector",
        "detector_id",
        "digest",
        "dimensions",
        "event_type",
        "health",
        "impacted_services",
        "incident_type",
        "kubernetes_version",
        "latest_preview_kubernetes_version",
        "latest_stable_kubernetes_version",
        "latest_supported_kubernetes_version",
        "level",
        "log_count",
        "lowest_minor_kubernetes_version",
        "media_type",
        "metric",
        "metric_namespace",
        "metric_unit",
        "metric_value",
        "monitor_condition",
        "name",
        "node_pool",
        "normal_value",
        "object_id",
        "object_name",
        "object_type",
        "operation",
        "operator",
        "previous_health",
        "properties",
        "reason",
        "reason_chronicity",
        "reason_type",
        "detailed_status",
        "regions",
        "repository",
        "resource_provider",
        "resource_uri",
        "search_query",
        "service_health_title",
        "signal_type",
        "stage",
        "status",
        "subject",
        "summary",
        "tag",
        "target_type",
        "threshold",
        "time_aggregation",
        "title",
        "tracking_id",
        "vault_name",
        "version",
        "web_test_name",
        "window_size",
    ]
)
# Signal fields a rule may name besides its facts (what shared.triage.assessment.match_values provides).
MATCH_FIELDS = frozenset(
    [
        "kind",
        "rule",
        "state",
        "source",
        "schema",
        "azure_severity",
        "tenant",
        "environment",
        "component",
        "tier",
        "resource_type",
        "resource_name",
        "resource_id",
        "impacted_components",
    ]
)


@dataclass(frozen=True)
class Signal:
    """What intake hands to triage; built by the parsers in `shared.intake`."""

    id: str  # stable across redeliveries of the same alert or event: the dedupe key
    source: str  # "azure-monitor" | "event-grid"
    schema: str  # the schema it arrived in, e.g. "azureMonitorCommonAlertSchema", "CloudEvents"
    kind: str  # monitoringService ("Platform", "Resource Health", …) or the Event Grid event type
    rule: str  # alert rule name; for Event Grid the event type
    state: str  # "fired" | "resolved" | "event"
    azure_severity: str  # "Sev0" … "Sev4"; "" for events
    resource: ResourceId
    title: str
    occurred_at: str  # ISO 8601, UTC
    description: str = ""
    tenant: str = ""
    environment: str = ""
    component: str = ""
    # Specifics that policy rules match on (health, metric, impacted_services, operation, …).
    facts: Mapping[str, FactValue] = field(default_factory=dict)
    informational: bool = False  # recorded, never opens an incident (e.g. an unknown event type)

    @property
    def resource_id(self) -> str:
        """The target resource's ARM id ("" when the signal has none)."""
        return self.resource.raw

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (shallow on purpose: it runs for every alert of a storm)."""
        data = {name: getattr(self, name) for name in _SIGNAL_FIELDS}
        data["resource"] = {name: getattr(self.resource, name) for name in _RESOURCE_FIELDS}
        data["facts"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.facts.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signal:
        """Inverse of `to_dict`."""
        fields = dict(data)
        fields["resource"] = ResourceId(**fields["resource"])
        fields["facts"] = {k: tuple(v) if isinstance(v, list) else v for k, v in fields["facts"].items()}
        return cls(**fields)


_SIGNAL_FIELDS = tuple(f.name for f in fields(Signal))
_RESOURCE_FIELDS = tuple(f.name for f in fields(ResourceId))
