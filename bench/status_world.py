"""A store as it looks after months of use: 10,000 incidents of which 1,000 are open, over six tenants
and the six components, with signals, timelines, a few actions, outboxes and dead letters."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.clock import iso
from shared.domain.actions import ActionRecord, ActionState, Actor, Pause
from shared.domain.effects import Effect, EffectKind
from shared.domain.incidents import ACKNOWLEDGED, OPEN, RESOLVED, Incident, TimelineEntry
from shared.domain.resources import parse_resource_id
from shared.domain.severity import Severity
from shared.domain.signals import Signal
from shared.ports import ActionBook, EffectQueue, IncidentRepository, QueueMessage

INCIDENTS = 10_000
OPEN_INCIDENTS = 1_000
KEYS = OPEN_INCIDENTS  # each key: nine resolved incidents, then the open one
TENANTS = ("ikea", "hm", "volvo", "lego", "maersk", "novo")
COMPONENTS = {
    "cosmosdb": ("Microsoft.DocumentDB/databaseAccounts", "cosmos", "cosmos-availability"),
    "redis": ("Microsoft.Cache/Redis", "redis", "redis-server-load"),
    "aks": ("Microsoft.ContainerService/managedClusters", "aks", "aks-node-not-ready"),
    "acr": ("Microsoft.ContainerRegistry/registries", "acr", "acr-pull-failures"),
    "staticwebapp": ("Microsoft.Web/staticSites", "swa", "swa-5xx"),
    "keyvault": ("Microsoft.KeyVault/vaults", "kv", "keyvault-availability"),
}
SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
DEAD_LETTERS = 25
OUTBOXES = 5
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seeded:
    """One incident as intake would have written it, with its signals and timeline lines."""

    incident: Incident
    signals: tuple[Signal, ...]
    timeline: tuple[TimelineEntry, ...]


def world() -> list[Seeded]:
    """The incidents, deterministic: the same store every run."""
    seeded = []
    for n in range(INCIDENTS):
        key, generation = n % KEYS, n // KEYS  # generation 9 is the open one
        seeded.append(_incident(key, generation, is_open=generation == INCIDENTS // KEYS - 1))
    return seeded


def _incident(key: int, generation: int, is_open: bool) -> Seeded:
    component = list(COMPONENTS)[key % len(COMPONENTS)]
    tenant = TENANTS[(key // len(COMPONENTS)) % len(TENANTS)]
    provider, prefix, rule = COMPONENTS[component]
    name = f"{prefix}-amicis-{tenant}-{key:04d}"
    rid = f"{SUB}/resourceGroups/rg-amicis-{tenant}-prod/providers/{provider}/{name}"
    # Resolved ones over the past 90 days; open ones over the past two days.
    if is_open:
        opened = NOW - timedelta(minutes=3 + (key * 37) % 2880)
    else:
        opened = NOW - timedelta(days=90) + timedelta(hours=generation * 200 + key % 190)
    severity = (Severity.SEV1, Severity.SEV2, Severity.SEV2, Severity.SEV3, Severity.SEV3)[
        (key + generation) % 5
    ]
    opened_at = iso(opened)
    count = 1 + (key + generation) % 3
    signals = tuple(
        Signal(
            id=f"sig-{key}-{generation}-{s}",
            source="azure-monitor",
            schema="azureMonitorCommonAlertSchema",
            kind="Platform",
            rule=rule,
            state="fired",
            azure_severity=f"Sev{severity.value}",
            resource=parse_resource_id(rid),
            title=f"{rule} on {name}",
            occurred_at=iso(opened + timedelta(seconds=30 * s)),
            tenant=tenant,
            environment="prod",
            component=component,
            facts={"metric": "Availability", "value": 97.5 - s},
        )
        for s in range(count)
    )
    last = signals[-1].occurred_at
    lines = [TimelineEntry(opened_at, "opened", f"opened {severity.label}: {rule} on {name}")]
    lines += [TimelineEntry(s.occurred_at, "signal", f"signal {s.id}") for s in signals[1:]]
    status, acknowledged_at, resolved_at = OPEN, None, None
    if is_open and key % 4 == 0:
        status, acknowledged_at = ACKNOWLEDGED, iso(opened + timedelta(minutes=4))
        lines.append(
            TimelineEntry(acknowledged_at, "acknowledged", "acknowledged by ana@example.com via slack")
        )
    if not is_open:
        status, resolved_at = RESOLVED, iso(opened + timedelta(minutes=20 + key % 100))
        lines.append(TimelineEntry(resolved_at, "resolved", "resolved: the alert cleared"))
    incident_id = f"inc-{opened_at[:10].replace('-', '')}-{key:04d}{generation}"
    outbox: tuple[dict[str, Any], ...] = ()
    if is_open and key < OUTBOXES:  # effects decided, not yet confirmed on the queue
        # The incident's own id: `dr serve` relays them, and an effect for no incident is dead-lettered.
        outbox = (_effect(incident_id, severity.label, last).to_dict(),)
    incident = Incident(
        id=incident_id,
        correlation_key=f"{rule}|{rid.lower()}",
        condition_key=f"{rule}|{component}|prod",
        title=f"{rule} on {name}",
        severity=severity,
        status=status,
        tenant=tenant,
        environment="prod",
        component=component,
        resource_id=rid,
        rule=rule,
        kind="Platform",
        signal_count=count,
        opened_at=opened_at,
        updated_at=resolved_at or last,
        last_signal_at=last,
        reasons=(f"Azure Monitor severity Sev{severity.value} → {severity.label} (baseline)",),
        resolved_at=resolved_at,
        acknowledged_at=acknowledged_at,
        acknowledged_by="ana@example.com" if acknowledged_at else None,
        paged=severity <= Severity.SEV2,
        outbox=outbox,
    )
    return Seeded(incident, signals, tuple(lines))


def _effect(incident_id: str, severity: str, at: str) -> Effect:
    return Effect(EffectKind.NOTIFY, incident_id, "opened", severity, at)


def seed_sqlite(store: IncidentRepository, seeded: Sequence[Seeded]) -> None:
    """Each incident in one commit, as intake writes it (SQLite commits locally in microseconds)."""
    for s in seeded:
        store.commit(s.incident, None, s.signals, s.timeline)


def seed_tables(store: Any, seeded: Sequence[Seeded], threads: int = 8) -> int:
    """The entities a commit writes, built by the store itself, but batched: one transaction per key
    partition (its ten incidents), the index partitions 100 rows a transaction. Returns transactions."""
    from shared.adapters.azure_tables_client import escape_key, etag_of
    from shared.adapters.azure_tables_store import CLAIMS, IDS, SIGNAL_ROWS, key_partition
    from shared.adapters.azure_tables_store import _listed as listed

    by_partition: dict[str, list[Seeded]] = defaultdict(list)
    for s in seeded:
        by_partition[key_partition(s.incident.correlation_key)].append(s)

    def write_key(pk: str) -> list[tuple[Incident, str]]:
        operations: list[tuple[Any, ...]] = []
        rows: list[tuple[Incident, int]] = []
        for s in by_partition[pk]:
            ops = store._operations(s.incident, None, False, pk, s.signals, s.timeline)
            rows.append((s.incident, len(operations) + len(s.signals)))
            operations += ops
        results = _submit_twice(store.client, operations)
        return [(incident, etag_of(results[at])) for incident, at in rows]

    index_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in seeded:
        i = s.incident
        index_rows[IDS].append({"PartitionKey": IDS, "RowKey": escape_key(i.id), "key": i.correlation_key})
        index_rows["list"].append(listed(i))
        pk = key_partition(i.correlation_key)
        for signal in s.signals:
            index_rows[CLAIMS].append(
                {
                    "PartitionKey": CLAIMS,
                    "RowKey": escape_key(signal.id),
                    "pk": pk,
                    "rk": SIGNAL_ROWS + escape_key(signal.id),
                }
            )
    with ThreadPoolExecutor(threads) as pool:
        written = [pair for pairs in pool.map(write_key, by_partition) for pair in pairs]
        for incident, etag in written:
            if incident.is_open or incident.outbox:
                index_rows["status"].append(
                    store._status_entity(incident, confirmed=True, incident_etag=etag)
                )
        batches = [
            [("upsert", row) for row in rows[start : start + 100]]
            for rows in index_rows.values()
            for start in range(0, len(rows), 100)
        ]
        list(pool.map(lambda ops: _submit_twice(store.client, ops), batches))
    return len(by_partition) + len(batches)


def _submit_twice(client: Any, operations: list[tuple[Any, ...]]) -> list[Any]:
    """One transaction; if the connection drops before its answer (azure-core does not retry a POST),
    once more as upserts of the same rows, so that it does not matter whether the first landed."""
    from shared.adapters.azure_tables_client import submit
    from shared.errors import Transient

    try:
        return submit(client, operations)
    except Transient:
        return submit(client, [("upsert", op[1]) for op in operations])


def seed_actions(book: ActionBook, seeded: Sequence[Seeded]) -> None:
    """A few actions (running, awaiting approval, approved, done) and one tenant paused."""
    open_ones = [s.incident for s in seeded if s.incident.is_open]
    states = [ActionState.RUNNING] * 2 + [ActionState.AWAITING_APPROVAL] * 3 + [ActionState.APPROVED]
    states += [ActionState.SUCCEEDED] * 6 + [ActionState.FAILED] * 2
    for n, state in enumerate(states):
        incident = open_ones[n * 7]
        at = iso(NOW - timedelta(minutes=n))
        record = ActionRecord(
            id=f"act-{n:03d}",
            incident_id=incident.id,
            action="redis.failover" if incident.component == "redis" else "kubernetes.restart",
            target=incident.resource_id,
            mode="approve" if state == ActionState.AWAITING_APPROVAL else "auto",
            state=state,
            planned_by=Actor("automation", incident.rule),
            planned_at=at,
            updated_at=at,
            rule=incident.rule,
            tenant=incident.tenant,
            expires_at=iso(NOW + timedelta(minutes=30)) if state == ActionState.AWAITING_APPROVAL else "",
        )
        book.create_action(record, [TimelineEntry(at, "action", f"{record.action} {state.value}")])
    book.pause(Pause(tenant="lego", by="ana@example.com via slack", at=iso(NOW), reason="maintenance"))


def seed_dead_letters(queue: EffectQueue, seeded: Sequence[Seeded]) -> None:
    """Effects that gave up, spread over the queues."""
    open_ones = [s.incident for s in seeded if s.incident.is_open]
    for n in range(DEAD_LETTERS):
        incident = open_ones[n * 11]
        effect = _effect(incident.id, incident.severity.label, incident.opened_at)
        kind = (EffectKind.NOTIFY, EffectKind.PAGE)[n % 2]
        effect = Effect(
            kind,
            effect.incident_id,
            "trigger" if kind == EffectKind.PAGE else "opened",
            effect.severity,
            effect.at,
        )
        queue.dead_letter_message(
            QueueMessage(effect.queue, json.dumps(effect.to_dict()).encode(), f"dl-{n}"),
            "MaxDeliveryCountExceeded",
            "Slack answered 500 five times",
        )
