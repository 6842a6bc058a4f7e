"""Hand-built signals and incidents and a settable clock, for tests of the pure parts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.incidents import Incident, IncidentStatus
from shared.domain.resources import parse_resource_id
from shared.domain.severity import Severity
from shared.domain.signals import Signal

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"


def resource(kind: str, name: str, rg: str = "rg-amicis-ikea-dev") -> str:
    """An ARM id for one of the platform's resource kinds."""
    provider = {
        "cosmosdb": "Microsoft.DocumentDB/databaseAccounts",
        "redis": "Microsoft.Cache/Redis",
        "aks": "Microsoft.ContainerService/managedClusters",
        "acr": "Microsoft.ContainerRegistry/registries",
        "keyvault": "Microsoft.KeyVault/vaults",
    }[kind]
    return f"{SUB}/resourceGroups/{rg}/providers/{provider}/{name}"


def signal(
    *,
    rule: str = "cosmos-availability",
    resource_id: str | None = None,
    tenant: str = "ikea",
    component: str = "cosmosdb",
    state: str = "fired",
    azure_severity: str = "Sev2",
    kind: str = "Platform",
    facts: dict[str, Any] | None = None,
    id: str | None = None,
    occurred_at: str = "2026-11-25T10:00:00.000Z",
    **changes: Any,
) -> Signal:
    """A normalized signal with sensible defaults."""
    rid = resource_id or resource(component, f"cosmos-amicis-{tenant}-dev", f"rg-amicis-{tenant}-dev")
    made = Signal(
        id=id or f"sig-{rule}-{rid}-{state}-{occurred_at}",
        source="azure-monitor",
        schema="azureMonitorCommonAlertSchema",
        kind=kind,
        rule=rule,
        state=state,
        azure_severity=azure_severity,
        resource=parse_resource_id(rid),
        title=f"{rule} on {rid.rsplit('/', 1)[-1]}",
        occurred_at=occurred_at,
        tenant=tenant,
        environment="dev",
        component=component,
        facts=facts or {},
    )
    return replace(made, **changes)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, **kwargs: float) -> None:
        """Move forward (seconds, or any timedelta unit)."""
        self.now += timedelta(seconds=seconds, **kwargs)


def incident(id: str = "inc-1", **changes: Any) -> Incident:
    """An open Sev2 incident on one Cosmos DB account, as triage would open it; any field can change."""
    rid = resource("cosmosdb", "cosmos-amicis-ikea-dev")
    made = Incident(
        id=id,
        correlation_key=f"cosmos-availability|{rid.lower()}",
        condition_key="cosmos-availability|cosmosdb|dev",
        title="cosmos-availability on cosmos-amicis-ikea-dev",
        severity=Severity.SEV2,
        status=IncidentStatus.OPEN,
        tenant="ikea",
        environment="dev",
        component="cosmosdb",
        resource_id=rid,
        rule="cosmos-availability",
        kind="Platform",
        signal_count=1,
        opened_at="2026-11-25T10:00:00.000Z",
        updated_at="2026-11-25T10:00:00.000Z",
        last_signal_at="2026-11-25T10:00:00.000Z",
        reasons=("Azure Monitor severity Sev1 → sev2 (baseline)",),
    )
    return made.evolve(**changes)
