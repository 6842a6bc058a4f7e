"""Alert payloads for tests: Microsoft's common-schema metric sample, retargeted at our resources."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from tests.conftest import REFDATA
from tests.factories import resource


@cache
def _metric_sample() -> dict[str, Any]:
    path = REFDATA / "azure_monitor" / "cas_testaction_metric_static_fired.json"
    return dict(json.loads(path.read_text()))


def metric_alert(
    rule: str = "cosmos-errors",
    target: str | None = None,
    alert_id: str = "00000000-0000-0000-0000-000000000001",
    condition: str = "Fired",
    severity: str = "Sev1",
    metric: str | None = None,
) -> dict[str, Any]:
    """A common-schema metric alert as Azure Monitor posts it."""
    payload = copy.deepcopy(_metric_sample())
    essentials = payload["data"]["essentials"]
    essentials["alertRule"] = rule
    essentials["alertId"] = (
        f"/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.AlertsManagement/alerts/{alert_id}"
    )
    essentials["alertTargetIDs"] = [target or resource("cosmosdb", "cosmos-amicis-ikea-dev")]
    essentials["configurationItems"] = [essentials["alertTargetIDs"][0].rsplit("/", 1)[-1]]
    essentials["severity"] = severity
    essentials["monitorCondition"] = condition
    if metric is not None:
        payload["data"]["alertContext"]["condition"]["allOf"][0]["metricName"] = metric
    if condition == "Resolved":
        essentials["resolvedDateTime"] = "2025-04-15T18:30:00.000Z"
    return payload


def body(payload: Any) -> bytes:
    """As sent on the wire."""
    return json.dumps(payload).encode()
