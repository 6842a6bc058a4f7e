"""The status queries, held alike to the SQLite store and to Table Storage on a real Azurite: every
open incident counted, only the worst few of each component and tenant shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from shared.adapters.azure_tables_store import TableIncidentStore
from shared.adapters.sqlite_store import SqliteIncidentStore
from shared.domain.incidents import ACKNOWLEDGED, RESOLVED, Incident
from shared.domain.severity import Severity
from shared.ports import IncidentHeadline, IncidentStore, OpenCount, StatusQueries
from tests.factories import incident
from tests.servers.azurite import fresh_table


class StatusStore(IncidentStore, StatusQueries, Protocol):
    """An incident store that answers the status queries too."""


@pytest.fixture(params=["sqlite", "azurite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StatusStore]:
    if request.param == "sqlite":
        yield SqliteIncidentStore(tmp_path / "status.sqlite3")
    else:
        yield TableIncidentStore(fresh_table(request.getfixturevalue("azurite")))


def opened(n: int, minute: int, severity: Severity = Severity.SEV2, **changes: object) -> Incident:
    """Incident n on its own key, opened at 10:<minute>."""
    at = f"2026-11-25T10:{minute:02d}:00.000Z"
    return incident(
        id=f"inc-{n:02d}",
        correlation_key=f"rule|resource-{n}",
        resource_id=f"/resource-{n}",
        severity=severity,
        opened_at=at,
        updated_at=at,
        **changes,
    )


def test_every_open_incident_is_counted_and_only_the_worst_few_per_group_are_shown(
    store: StatusStore,
) -> None:
    ikea = [
        opened(1, 1, Severity.SEV3),
        opened(2, 2, Severity.SEV1),
        opened(3, 3, Severity.SEV2),
        opened(4, 4, Severity.SEV1),
        opened(5, 5, Severity.SEV2),
    ]
    hm = [opened(6, 6, Severity.SEV3, tenant="hm"), opened(7, 7, Severity.SEV2, tenant="hm")]
    redis = [opened(8, 8, Severity.SEV4, component="redis")]
    for i in [*ikea, *hm, *redis]:
        store.commit(i, None)
    gone = store.commit(opened(9, 0, Severity.SEV1), None)
    store.commit(opened(9, 0, Severity.SEV1, status=RESOLVED), gone)

    overview = store.open_overview(per_group=2, limit=10)

    assert overview.total == 8, "the resolved one is not counted"
    assert overview.counts == (
        OpenCount("cosmosdb", "hm", "sev2", 1),
        OpenCount("cosmosdb", "hm", "sev3", 1),
        OpenCount("cosmosdb", "ikea", "sev1", 2),
        OpenCount("cosmosdb", "ikea", "sev2", 2),
        OpenCount("cosmosdb", "ikea", "sev3", 1),
        OpenCount("redis", "ikea", "sev4", 1),
    )
    # Two of each component and tenant, the most severe then the oldest; all of them by rank.
    assert [h.id for h in overview.shown] == ["inc-02", "inc-04", "inc-07", "inc-06", "inc-08"]
    assert [h.id for h in store.open_overview(per_group=2, limit=3).shown] == ["inc-02", "inc-04", "inc-07"]
    assert store.open_overview(per_group=2, limit=3).total == 8, "the limit never hides a count"


def test_a_shown_incident_carries_what_the_status_shows_as_it_stands_now(store: StatusStore) -> None:
    first = opened(1, 1, Severity.SEV3, title="Cosmos DB unavailable", all_tenants=True)
    etag = store.commit(first, None)
    later = first.evolve(
        severity=Severity.SEV1,
        status=ACKNOWLEDGED,
        acknowledged_at="2026-11-25T10:05:00.000Z",
        signal_count=7,
        updated_at="2026-11-25T10:05:00.000Z",
    )
    store.commit(later, etag)

    overview = store.open_overview(per_group=3, limit=10)

    assert overview.shown == (IncidentHeadline.of(later),)
    assert overview.counts == (OpenCount("cosmosdb", "ikea", "sev1", 1),), "counted at its severity now"


def test_no_open_incident_is_an_empty_overview(store: StatusStore) -> None:
    overview = store.open_overview(per_group=3, limit=10)
    assert overview.total == 0 and overview.counts == () and overview.shown == ()
