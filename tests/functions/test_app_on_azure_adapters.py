"""The Function App with its production store: Table Storage (a real Azurite) chosen by settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import bootstrap
from shared.adapters.azure_tables_actions import TableActionStore
from shared.adapters.azure_tables_store import TableIncidentStore
from shared.bootstrap import Services
from shared.settings import Settings
from tests.alerts import body, metric_alert
from tests.factories import FakeClock
from tests.functions.harness import function, json_body, post


@pytest.fixture
def on_tables(azurite: str, data_dir: Path, clock: FakeClock) -> Iterator[Services]:
    settings = Settings.from_env(
        {
            "DR_DATA_DIR": str(data_dir),
            "DR_TABLES_CONNECTION_STRING": azurite,
            "DR_TABLES_TABLE": f"t{uuid.uuid4().hex[:16]}",
        }
    )
    app = Services(settings, clock=clock)
    bootstrap.reset(app)
    yield app
    bootstrap.reset()


def test_settings_choose_table_storage_for_incidents_and_actions(on_tables: Services) -> None:
    assert isinstance(on_tables.store, TableIncidentStore)
    assert isinstance(on_tables.action_store, TableActionStore)
    # DR_TABLES_TABLE names the table both stores use (it was once read and then ignored).
    assert on_tables.store.client.table_name == on_tables.settings.tables_table
    assert on_tables.action_store.client.table_name == on_tables.settings.tables_table
    assert "AccountKey" not in repr(on_tables.settings), "the connection string is a secret"


def test_an_alert_is_folded_into_an_incident_on_table_storage(on_tables: Services) -> None:
    answers = [post("alerts", body(metric_alert(alert_id=f"a-{n}"))) for n in range(3)]
    assert [json_body(a)["accepted"] for a in answers] == [1, 1, 1]
    (incident,) = on_tables.store.list_incidents(None, None, 10)
    assert incident.signal_count == 3
    assert len(on_tables.store.signals(incident.id, 10)) == 3
    assert [e.kind for e in on_tables.store.timeline(incident.id)][:1] == ["opened"]
    function("sweep_outbox")(None)  # the sweep with the repair of half-written index rows runs
    function("sweep_actions")(None)  # and the wakes' sweep, on the actions' partition
