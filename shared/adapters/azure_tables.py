"""The Table Storage stores from settings: a connection string, or an endpoint and managed identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.adapters.azure_tables_actions import TableActionStore
from shared.adapters.azure_tables_client import TableCounter, table_client
from shared.adapters.azure_tables_store import TableIncidentStore

DEFAULT_TABLE = "drresponder"


def table_stores(
    endpoint: str | None,
    connection_string: str | None,
    credential_factory: Callable[[], Any],
    table: str = DEFAULT_TABLE,
    counter: TableCounter | None = None,
) -> tuple[TableIncidentStore, TableActionStore]:
    """The incident store and the action store on one table (created if missing), sharing one client.

    A connection string wins (Azurite, a key); otherwise `endpoint` (https://<account>.table.core.windows.net)
    with the credential the factory builds (managed identity). `counter` counts requests, 409s, 412s.
    """
    credential = None if connection_string else credential_factory()
    client = table_client(
        table, endpoint=endpoint, connection_string=connection_string, credential=credential, counter=counter
    )
    return TableIncidentStore(client, counter), TableActionStore(client, counter)
