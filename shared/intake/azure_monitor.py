"""Azure Monitor alert webhooks → Signal.

Normalized:

- the common alert schema (`azureMonitorCommonAlertSchema`), every monitoringService, Fired and Resolved;
- `AzureMonitorMetricAlert` (non-common metric alerts): kind "Platform", severity "3" → "Sev3";
- `Microsoft.Insights/activityLogs` (non-common activity-log, Resource Health and Service Health alerts):
  always fired; the payload names no alert rule, so `rule` is the operationName; severity comes from the
  event level (Critical → Sev1, Error → Sev2, Warning → Sev3, anything else → Sev4), never Sev0, because a
  single activity-log event says nothing about the scale of an outage; policy raises it on facts (`health`);
- the classic metric alert webhook (no schemaId, `status` + `context`): kind "Platform", severity Sev3.

Refused with 422 "unsupported_schema": any other schemaId (including `Microsoft.Insights/LogAlert`, the
non-common log search alert, for which no reference payload exists to test against), and classic alerts
whose conditionType is not "Metric" (classic event alerts: retired, and no metric or resource to act on).

Essentials are validated strictly (422 naming the field); the alertContext is read leniently: a context
field of an unexpected type is left out of `facts`, because refusing the whole alert would lose it.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from shared.clock import iso, parse_iso
from shared.domain.resources import Owner, ResourceId, parse_resource_id
from shared.domain.signals import FactValue, Signal
from shared.errors import BadInput
from shared.intake.json_body import as_object, dig, optional, require, text

COMMON_SCHEMA = "azureMonitorCommonAlertSchema"
METRIC_ALERT_SCHEMA = "AzureMonitorMetricAlert"
ACTIVITY_LOG_SCHEMA = "Microsoft.Insights/activityLogs"
CLASSIC_SCHEMA = "classicMetricAlert"  # our name: the classic webhook carries no schemaId
SEVERITIES = ("Sev0", "Sev1", "Sev2", "Sev3", "Sev4")

_SOURCE = "azure-monitor"
_TITLE_MAX = 250
_COMMUNICATION_MAX = 500
_SQUASH = re.compile(r"[\s_-]+")
# Only real HTML tags: Microsoft's samples hold placeholders such as "<MESSAGE>" that must survive.
_TAG = re.compile(
    r"</?(?:a|b|br|code|div|em|font|h[1-6]|hr|i|li|ol|p|pre|span|strong|sub|sup|table|tbody|td|th|thead|tr|u|ul)"
    r"\b[^<>]*>",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")
# Spellings seen in Microsoft's samples and docs, folded to the form policy files use.
_SERVICES = {
    "platform": "Platform",
    "logalertsv2": "Log Alerts V2",
    "loganalytics": "Log Analytics",
    "applicationinsights": "Application Insights",
    "resourcehealth": "Resource Health",
    "servicehealth": "ServiceHealth",
    "smartdetector": "SmartDetector",
    "activitylogadministrative": "Activity Log - Administrative",
    "activitylogpolicy": "Activity Log - Policy",
    "activitylogautoscale": "Activity Log - Autoscale",
    "activitylogsecurity": "Activity Log - Security",
    "activitylogrecommendation": "Activity Log - Recommendation",
}
_LEVELS = {"critical": "Sev1", "error": "Sev2", "warning": "Sev3"}
_METRIC_CONDITIONS = frozenset(
    {
        "singleresourcemultiplemetriccriteria",
        "multipleresourcemultiplemetriccriteria",
        "dynamicthresholdcriteria",
        "webtestlocationavailabilitycriteria",
    }
)

Facts = dict[str, FactValue]


def parse_alert(payload: Any, owner: Owner) -> Signal:
    """Normalize one Azure Monitor alert payload; BadInput (422) names what is missing or unsupported."""
    if not isinstance(payload, dict):
        kind = "null" if payload is None else type(payload).__name__
        raise BadInput("invalid_payload", f"an alert must be a JSON object, got {kind}", 422)
    schema_id = optional(payload, "schemaId", str)
    if schema_id is None:
        if "context" in payload or "status" in payload:
            return _classic(payload, owner)
        raise BadInput("missing_field", "schemaId is required (a string)", 422)
    folded = schema_id.strip().lower()
    if folded == COMMON_SCHEMA.lower():
        return _common(payload, owner)
    if folded == METRIC_ALERT_SCHEMA.lower():
        return _metric_alert(payload, owner)
    if folded == ACTIVITY_LOG_SCHEMA.lower():
        return _activity_log(payload, owner)
    raise BadInput(
        "unsupported_schema",
        f"schemaId {schema_id[:100]!r} is not supported; enable the common alert schema on the action group",
        422,
    )


def timestamp(value: str, where: str) -> str:
    """An ISO 8601 date-time as UTC with a "Z"; 422 invalid_field naming `where` when it is not one."""
    parsed = parse_iso(value)
    if parsed is None:
        raise BadInput("invalid_field", f"{where} must be an ISO 8601 date-time, got {value[:50]!r}", 422)
    return iso(parsed)  # one format everywhere, so stored times compare as strings


def dedupe_id(*parts: str) -> str:
    """A stable id from the parts that identify one notification."""
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _common(payload: dict[str, Any], owner: Owner) -> Signal:
    at = "data.essentials"
    ess = require(payload, at, dict)
    alert_id = require(ess, "alertId", str, at=at, nonempty=True)
    rule = require(ess, "alertRule", str, at=at, nonempty=True)
    severity = _severity(require(ess, "severity", str, at=at), f"{at}.severity")
    condition = require(ess, "monitorCondition", str, at=at, nonempty=True)
    state = _state(condition, {"fired": "fired", "resolved": "resolved"}, f"{at}.monitorCondition")
    service = require(ess, "monitoringService", str, at=at, nonempty=True)
    signal_type = optional(ess, "signalType", str, at=at) or ""
    targets = _strings(ess, "alertTargetIDs", at)
    items = _strings(ess, "configurationItems", at)
    # The id is made of the times as sent (so a redelivery matches); the signal carries them in UTC.
    fired = require(ess, "firedDateTime", str, at=at, nonempty=True)
    fired_at = timestamp(fired, f"{at}.firedDateTime")
    resolved = optional(ess, "resolvedDateTime", str, at=at) or ""
    resolved_at = timestamp(resolved, f"{at}.resolvedDateTime") if resolved.strip() else ""
    description = (optional(ess, "description", str, at=at) or "").strip()
    context = optional(payload, "data.alertContext", dict) or {}
    tags = _tags(optional(payload, "data.customProperties", dict))

    kind = _service(service)
    resource = parse_resource_id(targets[0] if targets else "")
    if not resource.raw and kind == "ServiceHealth":
        subscription = parse_resource_id(alert_id).subscription
        resource = parse_resource_id(f"/subscriptions/{subscription}" if subscription else "")
    facts: Facts = {
        "monitor_condition": condition.strip(),
        "signal_type": _signal_type(signal_type),
        "alert_id": alert_id,
        "configuration_items": tuple(items),
    }
    _put(facts, "target_type", resource.type)
    facts.update(_context_facts(kind, context))
    return _signal(
        id=dedupe_id(alert_id, condition.strip(), fired, resolved),
        schema=COMMON_SCHEMA,
        kind=kind,
        rule=rule,
        state=state,
        severity=severity,
        resource=resource,
        title=_title(rule, resource, items, kind, facts, description),
        occurred_at=resolved_at if state == "resolved" and resolved_at else fired_at,
        description=description,
        facts=facts,
        owner=owner,
        tags=tags,
    )


def _metric_alert(payload: dict[str, Any], owner: Owner) -> Signal:
    data = require(payload, "data", dict)
    status = require(data, "status", str, at="data", nonempty=True)
    state = _state(
        status, {"activated": "fired", "resolved": "resolved", "deactivated": "resolved"}, "data.status"
    )
    at = "data.context"
    ctx = require(data, "context", dict, at="data")
    alert_id = require(ctx, "id", str, at=at, nonempty=True)
    rule = require(ctx, "name", str, at=at, nonempty=True)
    severity = _numbered_severity(require(ctx, "severity", object, at=at), f"{at}.severity")
    sent_at = require(ctx, "timestamp", str, at=at, nonempty=True)
    occurred_at = timestamp(sent_at, f"{at}.timestamp")
    description = (optional(ctx, "description", str, at=at) or "").strip()
    resource = parse_resource_id(optional(ctx, "resourceId", str, at=at) or "")
    items = [n for n in [text(ctx.get("resourceName")) or resource.name] if n]
    condition = "Fired" if state == "fired" else "Resolved"
    facts: Facts = {
        "monitor_condition": condition,
        "signal_type": "Metric",
        "alert_id": alert_id,
        "configuration_items": tuple(items),
    }
    _put(facts, "target_type", resource.type)
    facts.update(_metric_facts(ctx))
    return _signal(
        id=dedupe_id(alert_id, condition, sent_at, ""),
        schema=METRIC_ALERT_SCHEMA,
        kind="Platform",
        rule=rule,
        state=state,
        severity=severity,
        resource=resource,
        title=_title(rule, resource, items, "Platform", facts, description),
        occurred_at=occurred_at,
        description=description,
        facts=facts,
        owner=owner,
        tags=_tags(optional(data, "properties", dict, at="data")),
    )


def _activity_log(payload: dict[str, Any], owner: Owner) -> Signal:
    data = require(payload, "data", dict)
    status = require(data, "status", str, at="data", nonempty=True)
    state = _state(status, {"activated": "fired", "resolved": "resolved"}, "data.status")
    at = "data.context.activityLog"
    log = require(data, "context.activityLog", dict, at="data")
    operation = require(log, "operationName", str, at=at, nonempty=True)
    sent_at = require(log, "eventTimestamp", str, at=at, nonempty=True)
    occurred_at = timestamp(sent_at, f"{at}.eventTimestamp")
    event_id = text(log.get("eventDataId")) or text(log.get("correlationId")) or text(log.get("operationId"))
    kind = _activity_kind(text(log.get("eventSource")))
    raw_resource = (
        text(log.get("resourceId"))
        or text(dig(log, "authorization.scope"))
        or (f"/subscriptions/{text(log.get('subscriptionId'))}" if text(log.get("subscriptionId")) else "")
    )
    resource = parse_resource_id(raw_resource)
    items = [resource.name] if resource.name else []
    condition = "Fired" if state == "fired" else "Resolved"
    facts: Facts = {
        "monitor_condition": condition,
        "signal_type": "Activity Log",
        "alert_id": event_id,
        "configuration_items": tuple(items),
    }
    _put(facts, "target_type", resource.type)
    facts.update(_context_facts(kind, log))
    description = text(log.get("description")) or text(dig(log, "properties.title"))
    return _signal(
        id=dedupe_id(event_id or operation, condition, sent_at, ""),
        schema=ACTIVITY_LOG_SCHEMA,
        kind=kind,
        rule=operation,
        state=state,
        severity=_LEVELS.get(text(log.get("level")).lower(), "Sev4"),
        resource=resource,
        title=_title(operation, resource, items, kind, facts, description),
        occurred_at=occurred_at,
        description=description,
        facts=facts,
        owner=owner,
        tags=_tags(optional(data, "properties", dict, at="data")),
    )


def _classic(payload: dict[str, Any], owner: Owner) -> Signal:
    status = require(payload, "status", str, nonempty=True)
    state = _state(status, {"activated": "fired", "resolved": "resolved"}, "status")
    ctx = require(payload, "context", dict)
    condition_type = optional(ctx, "conditionType", str, at="context") or "Metric"
    if condition_type.strip().lower() != "metric":
        raise BadInput(
            "unsupported_schema",
            f"classic alert with context.conditionType {condition_type[:50]!r}: only Metric is supported",
            422,
        )
    alert_id = require(ctx, "id", str, at="context", nonempty=True)
    rule = require(ctx, "name", str, at="context", nonempty=True)
    sent_at = require(ctx, "timestamp", str, at="context", nonempty=True)
    occurred_at = timestamp(sent_at, "context.timestamp")
    description = (optional(ctx, "description", str, at="context") or "").strip()
    resource = parse_resource_id(optional(ctx, "resourceId", str, at="context") or "")
    items = [n for n in [text(ctx.get("resourceName")) or resource.name] if n]
    condition = "Fired" if state == "fired" else "Resolved"
    facts: Facts = {
        "monitor_condition": condition,
        "signal_type": "Metric",
        "alert_id": alert_id,
        "configuration_items": tuple(items),
    }
    _put(facts, "target_type", resource.type)
    cond = as_object(ctx.get("condition"))
    _put(facts, "metric", tuple(n for n in [text(cond.get("metricName"))] if n))
    for key, field in (
        ("operator", "operator"),
        ("threshold", "threshold"),
        ("metric_value", "metricValue"),
        ("metric_unit", "metricUnit"),
        ("time_aggregation", "timeAggregation"),
        ("window_size", "windowSize"),
    ):
        _put(facts, key, text(cond.get(field)))
    return _signal(
        id=dedupe_id(alert_id, condition, sent_at, ""),
        schema=CLASSIC_SCHEMA,
        kind="Platform",
        rule=rule,
        state=state,
        severity="Sev3",
        resource=resource,
        title=_title(rule, resource, items, "Platform", facts, description),
        occurred_at=occurred_at,
        description=description,
        facts=facts,
        owner=owner,
        tags=_tags(optional(payload, "properties", dict)),
    )


def _signal(
    *,
    id: str,
    schema: str,
    kind: str,
    rule: str,
    state: str,
    severity: str,
    resource: ResourceId,
    title: str,
    occurred_at: str,
    description: str,
    facts: Facts,
    owner: Owner,
    tags: dict[str, str],
) -> Signal:
    owned = owner(resource, tags)
    if tags:  # customProperties: what an action's target template may name ({namespace}, {deployment})
        facts = {**facts, "properties": tuple(f"{k}={v}" for k, v in sorted(tags.items()))}
    return Signal(
        id=id,
        source=_SOURCE,
        schema=schema,
        kind=kind,
        rule=rule.strip(),
        state=state,
        azure_severity=severity,
        resource=resource,
        title=title,
        occurred_at=occurred_at,
        description=description,
        tenant=owned.tenant,
        environment=owned.environment,
        component=owned.component,
        facts=facts,
    )


def _context_facts(kind: str, context: dict[str, Any]) -> Facts:
    condition_type = text(context.get("conditionType")).lower()
    if kind == "Resource Health":
        return _resource_health_facts(context)
    if kind == "ServiceHealth":
        return _service_health_facts(context)
    if kind.startswith("Activity Log"):
        return _activity_facts(context)
    if kind == "SmartDetector":
        return _smart_detector_facts(context)
    if kind == "Log Alerts V2" or condition_type == "logquerycriteria":
        return _log_facts(context)
    if kind == "Platform" or condition_type in _METRIC_CONDITIONS:
        return _metric_facts(context)
    return {}


def _conditions(context: dict[str, Any]) -> list[dict[str, Any]]:
    all_of = dig(context, "condition.allOf")
    return [c for c in all_of if isinstance(c, dict)] if isinstance(all_of, list) else []


def _metric_facts(context: dict[str, Any]) -> Facts:
    conditions = _conditions(context)
    first = conditions[0] if conditions else {}
    facts: Facts = {}
    _put(facts, "metric", tuple(n for n in (text(c.get("metricName")) for c in conditions) if n))
    for key, field in (
        ("metric_namespace", "metricNamespace"),
        ("operator", "operator"),
        ("threshold", "threshold"),
        ("metric_value", "metricValue"),
        ("time_aggregation", "timeAggregation"),
        ("alert_sensitivity", "alertSensitivity"),
        ("web_test_name", "webTestName"),
    ):
        _put(facts, key, text(first.get(field)))
    _put(facts, "dimensions", _dimensions(first))
    _put(facts, "condition_type", text(context.get("conditionType")))
    _put(facts, "window_size", text(dig(context, "condition.windowSize")))
    return facts


def _log_facts(context: dict[str, Any]) -> Facts:
    conditions = _conditions(context)
    first = conditions[0] if conditions else {}
    facts: Facts = {}
    _put(facts, "search_query", text(first.get("searchQuery")))
    _put(facts, "metric", tuple(n for n in [text(first.get("metricMeasureColumn"))] if n))
    for key, field in (
        ("operator", "operator"),
        ("threshold", "threshold"),
        ("metric_value", "metricValue"),
        ("time_aggregation", "timeAggregation"),
    ):
        _put(facts, key, text(first.get(field)))
    if text(first.get("timeAggregation")).lower() == "count":
        _put(facts, "log_count", text(first.get("metricValue")))
    _put(facts, "dimensions", _dimensions(first))
    _put(facts, "condition_type", text(context.get("conditionType")))
    _put(facts, "window_size", text(dig(context, "condition.windowSize")))
    return facts


def _activity_facts(context: dict[str, Any]) -> Facts:
    facts: Facts = {}
    _put(facts, "operation", text(context.get("operationName")))
    _put(
        facts, "category", text(dig(context, "properties.eventCategory")) or text(context.get("eventSource"))
    )
    _put(facts, "status", text(context.get("status")))
    _put(facts, "caller", text(context.get("caller")))
    _put(facts, "level", text(context.get("level")))
    return facts


def _resource_health_facts(context: dict[str, Any]) -> Facts:
    props = as_object(context.get("properties"))
    facts: Facts = {}
    _put(facts, "health", text(props.get("currentHealthStatus")))
    _put(facts, "previous_health", text(props.get("previousHealthStatus")))
    _put(facts, "cause", text(props.get("cause")))
    _put(facts, "category", text(props.get("category")) or text(props.get("type")))
    _put(facts, "status", text(context.get("status")))
    _put(facts, "operation", text(context.get("operationName")))
    return facts


def _service_health_facts(context: dict[str, Any]) -> Facts:
    props = as_object(context.get("properties"))
    services, regions = _impacted(props.get("impactedServices"))
    if not services and text(props.get("service")):
        services = [text(props.get("service"))]
    if not regions:
        regions = [r.strip() for r in text(props.get("region")).split(",") if r.strip()]
    facts: Facts = {}
    _put(facts, "incident_type", text(props.get("incidentType")))
    _put(facts, "impacted_services", tuple(dict.fromkeys(services)))
    _put(facts, "regions", tuple(dict.fromkeys(regions)))
    _put(facts, "tracking_id", text(props.get("trackingId")))
    _put(facts, "stage", text(props.get("stage")))
    _put(facts, "status", text(context.get("status")))
    _put(facts, "service_health_title", text(props.get("title")))
    _put(facts, "communication", _communication(text(props.get("communication"))))
    _put(facts, "operation", text(context.get("operationName")))
    return facts


def _smart_detector_facts(context: dict[str, Any]) -> Facts:
    facts: Facts = {}
    _put(facts, "detector", text(context.get("SmartDetectorName")) or text(context.get("SmartDetectorId")))
    _put(facts, "detector_id", text(context.get("SmartDetectorId")))
    _put(facts, "detection_summary", text(context.get("DetectionSummary")))
    _put(facts, "detected_value", text(context.get("DetectedValue")))
    _put(facts, "normal_value", text(context.get("NormalValue")))
    return facts


def _impacted(raw: Any) -> tuple[list[str], list[str]]:
    # Service Health sends impactedServices as a JSON string in some payloads and as an array in others.
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return [], []
    services: list[str] = []
    regions: list[str] = []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, dict):
            continue
        if name := text(entry.get("ServiceName")):
            services.append(name)
        impacted = entry.get("ImpactedRegions")
        for region in impacted if isinstance(impacted, list) else []:
            if isinstance(region, dict) and (region_name := text(region.get("RegionName"))):
                regions.append(region_name)
    return services, regions


def _communication(raw: str) -> str:
    import html  # only Service Health needs it; keeps the module cheap to import

    plain = _SPACES.sub(" ", html.unescape(_TAG.sub(" ", raw))).strip()
    return plain[:_COMMUNICATION_MAX]


def _dimensions(condition: dict[str, Any]) -> tuple[str, ...]:
    dims = condition.get("dimensions")
    pairs = []
    for dim in dims if isinstance(dims, list) else []:
        if isinstance(dim, dict) and (name := text(dim.get("name"))):
            pairs.append(f"{name}={text(dim.get('value'))}")
    return tuple(pairs)


def _title(
    rule: str, resource: ResourceId, items: list[str], kind: str, facts: Facts, description: str
) -> str:
    rule = rule.strip()
    name = resource.name or (items[0] if items else "")
    if kind == "ServiceHealth" and facts.get("service_health_title"):
        title = f"{rule}: {facts['service_health_title']}"
    elif kind == "Resource Health" and name and facts.get("health"):
        title = f"{rule}: {name} {facts['health']}"
    elif name:
        title = f"{rule}: {name}"
    elif description:
        title = f"{rule}: {description}"
    else:
        title = rule
    title = _SPACES.sub(" ", title).strip()
    return title if len(title) <= _TITLE_MAX else title[: _TITLE_MAX - 1] + "…"


def _service(service: str) -> str:
    return _SERVICES.get(_SQUASH.sub("", service.lower()), service.strip())


def _activity_kind(event_source: str) -> str:
    if not event_source:
        return "Activity Log"
    service = _service(event_source)
    if service in ("Resource Health", "ServiceHealth"):
        return service
    return _service(f"Activity Log - {event_source}")


def _signal_type(signal_type: str) -> str:
    # "ActivityLog" (Service Health test action) and "Activity Log" (everything else) are one type.
    return "Activity Log" if _SQUASH.sub("", signal_type.lower()) == "activitylog" else signal_type.strip()


def _severity(value: str, where: str) -> str:
    for severity in SEVERITIES:
        if value.strip().lower() == severity.lower():
            return severity
    raise BadInput(
        "invalid_field", f"{where} must be one of {', '.join(SEVERITIES)}, got {value[:50]!r}", 422
    )


def _numbered_severity(value: Any, where: str) -> str:
    digits = text(value).lower().removeprefix("sev") if isinstance(value, str | int) else ""
    if digits in {"0", "1", "2", "3", "4"}:
        return f"Sev{digits}"
    raise BadInput("invalid_field", f"{where} must be a severity 0 to 4, got {text(value)[:50]!r}", 422)


def _state(value: str, states: dict[str, str], where: str) -> str:
    state = states.get(value.strip().lower())
    if state is None:
        allowed = ", ".join(s.capitalize() for s in states)
        raise BadInput("invalid_field", f"{where} must be one of {allowed}, got {value[:50]!r}", 422)
    return state


def _strings(obj: dict[str, Any], key: str, at: str) -> list[str]:
    values = optional(obj, key, list, at=at) or []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise BadInput("invalid_field", f"{at}.{key}[{index}] must be a string", 422)
    return [v.strip() for v in values if v.strip()]


def _tags(raw: dict[str, Any] | None) -> dict[str, str]:
    return {k: text(v) for k, v in (raw or {}).items() if isinstance(v, str | int | float | bool)}


def _put(facts: Facts, key: str, value: FactValue) -> None:
    if value:
        facts[key] = value
