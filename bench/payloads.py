"""The storm: Azure Monitor common-schema alerts generated from Microsoft's reference payload."""

from __future__ import annotations

import copy
import json
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import ALERTS, KEYS, REPO

# Same place the tests read reference payloads from (CI lays a copy there); DR_REFDATA overrides.
REFDATA = Path(os.environ.get("DR_REFDATA", REPO.parent / "shared" / "refdata"))
TEMPLATE = "azure_monitor/cas_testaction_metric_static_fired.json"
SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
FIRST_FIRED = datetime(2025, 4, 15, 18, 17, 12, 851000, tzinfo=UTC)
SEED = 20250415  # fixed, so every run sends the same storm

# (resource provider, name prefix, metric): a mix the default policy classifies
# differently (no rule, slow-queries sev3, elevated-errors sev2, cache-misses sev3, …).
TARGETS = (
    ("Microsoft.Storage/storageAccounts", "st", "Transactions"),
    ("Microsoft.DocumentDB/databaseAccounts", "cosmos", "ServerSideLatency"),
    ("Microsoft.Cache/Redis", "redis", "CacheMissRate"),
    ("Microsoft.ContainerService/managedClusters", "aks", "node_cpu_usage_percentage"),
    ("Microsoft.Web/staticSites", "swa", "Http5xx"),
)
SEVERITIES = ("Sev0", "Sev1", "Sev2", "Sev3", "Sev4")


def template() -> dict[str, Any]:
    """Microsoft's sample metric alert (common schema, static threshold, fired)."""
    path = REFDATA / TEMPLATE
    if not path.is_file():
        raise SystemExit(f"bench: reference payload not found at {path}; set DR_REFDATA")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def storm(alerts: int = ALERTS, keys: int = KEYS) -> list[bytes]:
    """`alerts` JSON bodies over `keys` (rule, target) pairs, each key equally often, in shuffled order.

    Every alert has its own alertId and firing time, so none is a duplicate of another.
    """
    base = template()
    rng = random.Random(SEED)
    order = [n % keys for n in range(alerts)]
    rng.shuffle(order)  # a storm interleaves its sources; opens are spread over the run
    bodies = []
    for n, key in enumerate(order):
        fired = FIRST_FIRED + timedelta(milliseconds=50 * n)
        alert_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        bodies.append(json.dumps(_alert(base, key, n, fired, alert_id)).encode())
    return bodies


def _alert(base: dict[str, Any], key: int, n: int, fired: datetime, alert_id: uuid.UUID) -> dict[str, Any]:
    provider, prefix, metric = TARGETS[key % len(TARGETS)]
    name = f"{prefix}-amicis-t{key:03d}-prod"  # the policy's naming convention: tenant t000…t099
    group = f"rg-amicis-t{key:03d}-prod"
    rule = f"{prefix}-{metric.lower()}-high-{key:03d}"
    at = fired.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload = copy.deepcopy(base)
    ess = payload["data"]["essentials"]
    ess["alertId"] = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts/{alert_id}"
    ess["alertRule"] = rule
    ess["severity"] = SEVERITIES[(key // len(TARGETS)) % len(SEVERITIES)]
    ess["alertTargetIDs"] = [
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups/{group}/providers/{provider.lower()}/{name}"
    ]
    ess["configurationItems"] = [name]
    ess["originAlertId"] = f"{SUBSCRIPTION}_{group}_microsoft.insights_metricAlerts_{rule}_{n}"
    ess["firedDateTime"] = at
    ess["description"] = f"{metric} above threshold on {name}"
    condition = payload["data"]["alertContext"]["condition"]
    criterion = condition["allOf"][0]
    criterion["metricName"] = metric
    criterion["metricNamespace"] = provider
    criterion["metricValue"] = 100 + n % 900
    condition["windowStartTime"] = at
    condition["windowEndTime"] = at
    return payload
