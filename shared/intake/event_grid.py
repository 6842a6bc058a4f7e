"""Event Grid deliveries (EventGridEvent or CloudEvents 1.0 schema) → a handshake or Signals.

Accepted: an array of EventGridEvents, a single EventGridEvent (the AKS docs sample is one), a single
CloudEvent or an array of them (batch), and the mapping the Functions Event Grid trigger gives
(id, topic, subject, event_type, event_time, data). Event types outside the namespaces this responder
knows still become Signals, marked `informational` so they are recorded, never silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.resources import Owner, ResourceId, parse_resource_id
from shared.domain.signals import FactValue, Signal
from shared.errors import BadInput
from shared.intake.azure_monitor import dedupe_id, timestamp
from shared.intake.json_body import as_object, dig, join_path, optional, require, text

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
KNOWN_NAMESPACES = (
    "Microsoft.Cache.",
    "Microsoft.ContainerRegistry.",
    "Microsoft.Resources.",
    "Microsoft.KeyVault.",
    "Microsoft.ContainerService.",
    "Microsoft.ResourceNotifications.HealthResources.",
)
EVENT_GRID_SCHEMA = "EventGridEvent"
CLOUD_EVENTS_SCHEMA = "CloudEvents"

_SOURCE = "event-grid"
_TITLE_MAX = 250
# The 2018 Container Registry docs used short event types; the service and SDKs use the full names.
_SHORT_ACR_TYPES = frozenset({"ImagePushed", "ImageDeleted", "ChartPushed", "ChartDeleted"})
_MISSING_SLASH = re.compile(r"/resourceGroups(?=[^/])", re.IGNORECASE)
_HEALTH_EXTENSION = re.compile(r"/providers/Microsoft\.ResourceHealth/.*$", re.IGNORECASE)
_AKS_DATA = {
    "kubernetesVersion": "kubernetes_version",
    "nodePoolName": "node_pool",
    "latestSupportedKubernetesVersion": "latest_supported_kubernetes_version",
    "latestStableKubernetesVersion": "latest_stable_kubernetes_version",
    "lowestMinorKubernetesVersion": "lowest_minor_kubernetes_version",
    "latestPreviewKubernetesVersion": "latest_preview_kubernetes_version",
}
_CALLER_CLAIMS = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "appid",
)

Facts = dict[str, FactValue]


@dataclass(frozen=True)
class Handshake:
    """A subscription validation request: answer 200 with `response()`."""

    validation_code: str

    def response(self) -> dict[str, str]:
        """The body Event Grid expects back."""
        return {"validationResponse": self.validation_code}


@dataclass(frozen=True)
class Events:
    """A delivery of one or more events."""

    signals: list[Signal]


Delivery = Handshake | Events


@dataclass(frozen=True)
class _Envelope:
    schema: str
    id: str
    type: str
    topic: str  # EventGridEvent topic or CloudEvents source
    subject: str
    time: str
    data: Any


def parse_delivery(payload: Any, owner: Owner) -> Delivery:
    """Parse a webhook delivery; BadInput (422) names the element and field, e.g. "[2].eventType"."""
    if isinstance(payload, dict):
        items, prefixes = [payload], [""]
    elif isinstance(payload, list):
        if not payload:
            raise BadInput("no_events", "the delivery is an empty array; expected at least one event", 422)
        items, prefixes = payload, [f"[{i}]" for i in range(len(payload))]
    else:
        kind = "null" if payload is None else type(payload).__name__
        raise BadInput("invalid_payload", f"expected an event object or an array of events, got {kind}", 422)
    envelopes = [_envelope(item, at) for item, at in zip(items, prefixes, strict=True)]
    for envelope, at in zip(envelopes, prefixes, strict=True):
        if envelope.type != VALIDATION_EVENT:
            continue
        # Event Grid sends the handshake alone. Answering it for a batch would drop the other events
        # without a word, and storing them would half-process a handshake: neither, the sender is told.
        if len(envelopes) > 1:
            raise BadInput(
                "mixed_batch",
                f"{at} is a {VALIDATION_EVENT}, which comes alone; this batch has"
                f" {len(envelopes) - 1} other event(s): send the handshake by itself and the events apart",
                422,
            )
        code = require(envelope.data, "validationCode", str, at=join_path(at, "data"), nonempty=True)
        return Handshake(validation_code=code.strip())
    return Events(signals=[_signal(envelope, owner) for envelope in envelopes])


def signal_from_event(event: Mapping[str, Any], owner: Owner) -> Signal:
    """One event as a Signal: EventGridEvent, CloudEvent, or the Functions trigger's snake_case mapping."""
    return _signal(_envelope(event, ""), owner)


def _envelope(event: Any, at: str) -> _Envelope:
    if not isinstance(event, Mapping):
        raise BadInput("invalid_field", f"{at or '(root)'} must be an event object", 422)
    event = dict(event)
    if "specversion" in event:
        require(event, "specversion", str, at=at, nonempty=True)
        source = require(event, "source", str, at=at, nonempty=True)
        event_type = require(event, "type", str, at=at, nonempty=True)
        # One docs sample says "eventTime" where CloudEvents says "time".
        time_key = "eventTime" if event.get("time") is None and event.get("eventTime") is not None else "time"
        schema, topic = CLOUD_EVENTS_SCHEMA, source
    elif "event_type" in event:
        topic = optional(event, "topic", str, at=at) or ""
        event_type = require(event, "event_type", str, at=at, nonempty=True)
        time_key, schema = "event_time", EVENT_GRID_SCHEMA
        if isinstance(event.get("event_time"), datetime):
            event["event_time"] = event["event_time"].isoformat()
    else:
        topic = optional(event, "topic", str, at=at) or ""
        event_type = require(event, "eventType", str, at=at, nonempty=True)
        time_key, schema = "eventTime", EVENT_GRID_SCHEMA
    event_id = require(event, "id", str, at=at, nonempty=True)
    time = timestamp(require(event, time_key, str, at=at, nonempty=True), join_path(at, time_key))
    subject = optional(event, "subject", str, at=at) or ""
    event_type = event_type.strip()
    if event_type in _SHORT_ACR_TYPES and "microsoft.containerregistry" in topic.lower():
        event_type = f"Microsoft.ContainerRegistry.{event_type}"
    return _Envelope(
        schema, event_id.strip(), event_type, topic.strip(), subject.strip(), time, event.get("data")
    )


def _signal(env: _Envelope, owner: Owner) -> Signal:
    data = as_object(env.data)
    resource = _resource(env, data)
    short = env.type.rsplit(".", 1)[-1]
    name = resource.name or env.subject or env.topic
    facts: Facts = {"event_type": env.type, "subject": env.subject}
    namespace = next((ns for ns in KNOWN_NAMESPACES if env.type.startswith(ns)), "")
    if namespace == "Microsoft.Cache.":
        facts.update(_put(status=text(data.get("status")), name=text(data.get("name"))))
        title = _title(f"Redis {name}", short, facts.get("status"))
    elif namespace == "Microsoft.ContainerRegistry.":
        facts.update(_acr_facts(data))
        image = f"{facts.get('repository', '')}:{facts['tag']}" if "tag" in facts else facts.get("repository")
        title = _title(f"ACR {name}", short, image)
    elif namespace == "Microsoft.Resources.":
        facts.update(_resources_facts(data))
        title = _title(
            name, short, ", ".join(_str(facts.get(k)) for k in ("operation", "status") if k in facts)
        )
    elif namespace == "Microsoft.KeyVault.":
        facts.update(_key_vault_facts(data))
        vault = _str(facts.get("vault_name")) or name
        obj = " ".join(_str(facts.get(k)) for k in ("object_type", "object_name") if k in facts)
        title = _title(f"Key Vault {vault}", short, obj)
    elif namespace == "Microsoft.ContainerService.":
        facts.update(_put(**{key: text(data.get(field)) for field, key in _AKS_DATA.items()}))
        detail = facts.get("kubernetes_version") or facts.get("node_pool")
        title = _title(f"AKS {name}", short, detail or facts.get("latest_supported_kubernetes_version"))
    elif namespace == "Microsoft.ResourceNotifications.HealthResources.":
        facts.update(_health_facts(data))
        if "health" in facts:
            change = f"{_str(facts.get('previous_health')) or '?'} → {facts['health']}"
            title = _title(name, short, change if "previous_health" in facts else facts["health"])
        else:
            title = _title(name, short, facts.get("annotation"))
    else:
        title = _title(name, env.type, None)
    owned = owner(resource, {})
    return Signal(
        # Event Grid promises uniqueness of source + id, not of id alone (CloudEvents 1.0).
        id="eg:" + dedupe_id(env.topic.lower(), env.id),
        source=_SOURCE,
        schema=env.schema,
        kind=env.type,
        rule=env.type,
        state="event",
        azure_severity="",
        resource=resource,
        title=title,
        occurred_at=env.time,
        description=_str(facts.get("summary")),
        tenant=owned.tenant,
        environment=owned.environment,
        component=owned.component,
        facts={k: v for k, v in facts.items() if v or k in ("event_type", "subject")},
        informational=not namespace,
    )


def _resource(env: _Envelope, data: dict[str, Any]) -> ResourceId:
    candidates: list[str] = []
    if env.type.startswith("Microsoft.Resources."):
        candidates.append(text(data.get("resourceUri")))
    elif env.type.startswith("Microsoft.ResourceNotifications.HealthResources."):
        # resourceInfo.id names the health record (…/providers/Microsoft.ResourceHealth/…), not the resource.
        candidates.append(text(dig(data, "resourceInfo.properties.targetResourceId")))
        candidates.append(_HEALTH_EXTENSION.sub("", text(dig(data, "resourceInfo.id"))))
        candidates.append(env.subject if env.subject.lower().startswith("/subscriptions/") else "")
    candidates.append(env.topic)
    raw = next((c for c in candidates if c), "")
    resource = parse_resource_id(raw)
    if not resource.provider and _MISSING_SLASH.search(raw):
        # The AKS docs sample says "resourceGroups<rg>": read it as the id it was meant to be.
        repaired = parse_resource_id(_MISSING_SLASH.sub("/resourceGroups/", raw))
        if repaired.provider:
            return repaired
    return resource


def _acr_facts(data: dict[str, Any]) -> Facts:
    target = as_object(data.get("target"))
    return _put(
        repository=text(target.get("repository")),
        tag=text(target.get("tag")),
        digest=text(target.get("digest")),
        action=text(data.get("action")),
        media_type=text(target.get("mediaType")),
    )


def _resources_facts(data: dict[str, Any]) -> Facts:
    # authorization / claims / httpRequest are JSON strings in some payloads and objects in others.
    authorization = _object_or_json(data.get("authorization"))
    claims = _object_or_json(data.get("claims"))
    return _put(
        operation=text(data.get("operationName")),
        status=text(data.get("status")),
        resource_uri=text(data.get("resourceUri")),
        resource_provider=text(data.get("resourceProvider")),
        action=text(authorization.get("action")),
        caller=next((text(claims.get(c)) for c in _CALLER_CLAIMS if text(claims.get(c))), ""),
    )


def _key_vault_facts(data: dict[str, Any]) -> Facts:
    # Keys are PascalCase in the current docs and camelCase in older ones; one sample has "ObjectName ".
    fields = {str(k).strip().lower(): v for k, v in data.items()}
    return _put(
        object_type=text(fields.get("objecttype")),
        object_name=text(fields.get("objectname")),
        vault_name=text(fields.get("vaultname")),
        version=text(fields.get("version")),
        object_id=text(fields.get("id")),
    )


def _health_facts(data: dict[str, Any]) -> Facts:
    props = as_object(dig(data, "resourceInfo.properties"))
    return _put(
        health=text(props.get("availabilityState")),
        previous_health=text(props.get("previousAvailabilityState")),
        reason_type=text(props.get("reasonType")),
        reason_chronicity=text(props.get("reasonChronicity")),
        detailed_status=text(props.get("detailedStatus")),
        annotation=text(props.get("annotationName")),
        category=text(props.get("category")),
        reason=text(props.get("reason")),
        summary=text(props.get("summary")),
        context=text(props.get("context")),
        title=text(props.get("title")),
        target_type=text(props.get("targetResourceType")).lower(),
    )


def _object_or_json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {}
    return as_object(value)


def _put(**values: str) -> Facts:
    return {k: v for k, v in values.items() if v}


def _str(value: FactValue | None) -> str:
    return value if isinstance(value, str) else ""


def _title(subject: str, short: str, detail: FactValue | None) -> str:
    head = f"{subject}: {short}" if short else subject
    title = f"{head} ({detail})" if isinstance(detail, str) and detail else head
    title = " ".join(title.split())
    return title if len(title) <= _TITLE_MAX else title[: _TITLE_MAX - 1] + "…"
