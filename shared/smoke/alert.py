"""The smoke test's alert: a common-schema metric alert, labelled as a test wherever a person sees it.

Shaped like Microsoft's metric sample (refdata cas_testaction_metric_static_fired.json). Azure Sev1
makes a sev2 under the default policy: it pages and posts a card. It targets a resource type no
component owns and a metric no rule names, so no rule matches and no first response is planned:
a smoke test must never fail anything over.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "dr-smoke"
RESOURCE_NAME = "dr-smoke-test"
RESOURCE_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.Insights/components/{RESOURCE_NAME}"
)
METRIC = "DrSmokeTest"
AZURE_SEVERITY = "Sev1"  # sev2 by the baseline: the least severe level that pages by default
DESCRIPTION = "DR Responder smoke test (dr smoke): not an outage; the test resolves it itself"


@dataclass(frozen=True)
class SmokeAlert:
    """One smoke run's alert rule and alert instance; `payload` makes its Fired and its Resolved."""

    rule: str
    alert_id: str
    tenant: str = ""

    @classmethod
    def new(cls, tenant: str = "") -> SmokeAlert:
        """A rule name and alert id of its own, so the run finds its incident and nothing else."""
        return cls(
            rule=f"dr-smoke-{secrets.token_hex(4)}",
            alert_id=f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts/{uuid.uuid4()}",
            tenant=tenant,
        )

    def payload(self, fired_at: str, resolved_at: str = "") -> dict[str, Any]:
        """The alert as an action group posts it: Fired, or Resolved when `resolved_at` is given."""
        essentials: dict[str, Any] = {
            "alertId": self.alert_id,
            "alertRule": self.rule,
            "severity": AZURE_SEVERITY,
            "signalType": "Metric",
            "monitorCondition": "Resolved" if resolved_at else "Fired",
            "monitoringService": "Platform",
            "alertTargetIDs": [RESOURCE_ID],
            "configurationItems": [RESOURCE_NAME],
            "originAlertId": f"{SUBSCRIPTION}_{RESOURCE_GROUP}_microsoft.insights_metricAlerts_{self.rule}",
            "firedDateTime": fired_at,
            "description": DESCRIPTION,
            "essentialsVersion": "1.0",
            "alertContextVersion": "1.0",
        }
        if resolved_at:
            essentials["resolvedDateTime"] = resolved_at
        properties = {"purpose": "dr-smoke", **({"tenant": self.tenant} if self.tenant else {})}
        return {
            "schemaId": "azureMonitorCommonAlertSchema",
            "data": {
                "essentials": essentials,
                "alertContext": {
                    "properties": None,
                    "conditionType": "SingleResourceMultipleMetricCriteria",
                    "condition": {
                        "windowSize": "PT5M",
                        "allOf": [
                            {
                                "metricName": METRIC,
                                "metricNamespace": "dr-smoke",
                                "operator": "GreaterThan",
                                "threshold": "0",
                                "timeAggregation": "Total",
                                "dimensions": [],
                                "metricValue": 1,
                                "webTestName": None,
                            }
                        ],
                        "windowStartTime": fired_at,
                        "windowEndTime": fired_at,
                    },
                },
                "customProperties": properties,
            },
        }
