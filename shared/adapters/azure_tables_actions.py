"""ActionStore and AutomationSwitch on Azure Table Storage, in the incident store's table.

Every action record lives in one partition ("actions") beside the timeline lines its transitions
write, so a transition and its lines are one ETag-conditional transaction, and the lists a
guardrail asks for (by resource since a time, started since a time, by state) are one partition
query each, filtered on the server. Actions are few (one per incident and target), so one
partition holds them; the incident store reads the lines back into the incident's timeline.
A start also moves the starts gate in that partition, and so does a pause, so neither another
instance's start nor a pause can come between the guardrails a start read and its write.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from shared.adapters.azure_tables_client import (
    Sequencer,
    TableCounter,
    TransactionFailed,
    body_properties,
    escape_key,
    etag_of,
    get_entity,
    if_match,
    line_entities,
    prefix_range,
    query,
    read_body,
    submit,
    translated_errors,
)
from shared.adapters.azure_tables_store import NOTES, note_rows
from shared.domain.actions import ActionRecord, Pause
from shared.domain.incidents import TimelineEntry
from shared.errors import PreconditionFailed, StartRefused, StoreContention
from shared.ports import VersionedAction

ACTION_ROWS = "action|"
PAUSES = "pauses"
# Every start moves this entity, in the actions' partition, in the transaction that starts it, and
# so does every pause: its ETag is what serialises the guardrails a start reads (the pauses, the
# starts of the last hour) with other instances' starts and pauses.
GATE_ROW = "action-starts"
GATE_TRIES = 50  # each try is a read, a query and a transaction: 50 starts at once all get through


def _entity(record: ActionRecord, version: int) -> dict[str, Any]:
    return {
        "PartitionKey": NOTES,
        "RowKey": ACTION_ROWS + escape_key(record.id),
        "incident_id": record.incident_id,
        "resource": record.target.lower(),
        "state": record.state.value,
        "planned_at": record.planned_at,
        "started_at": record.started_at,
        "wake_at": record.wake_at,  # "" when no message is awaited; rows written before it lack it
        "version": version,
        **body_properties(record.to_dict()),
    }


def _gate_move(gate: Any | None) -> tuple[Any, ...]:
    """The starts gate's next value, conditional on the ETag read (or on its absence, the first time)."""
    starts = int(gate.get("starts") or 0) + 1 if gate is not None else 1  # a pause moves it too
    entity = {"PartitionKey": NOTES, "RowKey": GATE_ROW, "starts": starts}
    if gate is None:
        return ("create", entity)
    return ("update", entity, if_match(etag_of(gate)))


class TableActionStore:
    """Implements `shared.ports.ActionStore` and `AutomationSwitch` on the incident store's table."""

    def __init__(self, client: Any, counter: TableCounter | None = None) -> None:
        self.client = client
        self.counter = counter
        self.sequencer = Sequencer()
        self._etags: dict[tuple[str, int], str] = {}  # (id, version) → ETag, so a save needs no read
        self._lock = threading.Lock()

    def create_action(
        self, record: ActionRecord, timeline: Sequence[TimelineEntry]
    ) -> VersionedAction | None:
        """Insert at version 1 with its lines in one transaction; None when the id exists."""
        operations = [("create", _entity(record, 1)), *self._lines(record, timeline)]
        try:
            results = submit(self.client, operations, self.counter)
        except TransactionFailed as failed:
            if failed.index == 0 and failed.status == 409:
                return None
            raise
        self._remember(record.id, 1, etag_of(results[0]))
        return VersionedAction(record, 1)

    def get_action(self, action_id: str) -> VersionedAction | None:
        """A point read."""
        entity = get_entity(self.client, NOTES, ACTION_ROWS + escape_key(action_id), self.counter)
        if entity is None:
            return None
        version = int(entity["version"])
        self._remember(action_id, version, etag_of(entity))
        return VersionedAction(ActionRecord.from_dict(read_body(entity)), version)

    def save_action(
        self, record: ActionRecord, version: int, timeline: Sequence[TimelineEntry]
    ) -> VersionedAction:
        """Replace the record if it is still at `version` (its ETag), with its lines."""
        operations = [self._replace(record, version), *self._lines(record, timeline)]
        try:
            results = submit(self.client, operations, self.counter)
        except TransactionFailed as failed:
            if failed.index == 0:
                raise PreconditionFailed(f"action {record.id} changed since version {version}") from failed
            raise
        self._remember(record.id, version + 1, etag_of(results[0]))
        return VersionedAction(record, version + 1)

    def start_action(
        self,
        record: ActionRecord,
        version: int,
        timeline: Sequence[TimelineEntry],
        since: str,
        admit: Callable[[Sequence[ActionRecord]], str | None],
    ) -> VersionedAction:
        """Count, then start in a transaction that also moves the starts gate on the ETag read before
        the count: a start that came between fails it at the gate, and the count is taken again."""
        for _ in range(GATE_TRIES):
            gate = get_entity(self.client, NOTES, GATE_ROW, self.counter)
            if why := admit(self.started_since(since)):
                raise StartRefused(why)
            operations = [self._replace(record, version), _gate_move(gate), *self._lines(record, timeline)]
            try:
                results = submit(self.client, operations, self.counter)
            except TransactionFailed as failed:
                if failed.index == 0:
                    raise PreconditionFailed(
                        f"action {record.id} changed since version {version}"
                    ) from failed
                if failed.index == 1:
                    continue  # another start moved the gate after our count
                raise
            self._remember(record.id, version + 1, etag_of(results[0]))
            return VersionedAction(record, version + 1)
        raise StoreContention(
            f"action {record.id}: {GATE_TRIES} other starts came between its count and its start"
        )

    def list_actions(self, state: str | None, incident_id: str | None, limit: int) -> list[ActionRecord]:
        """Newest first (planned_at, then id), filtered on the server."""
        where, params = [], {}
        if state:
            where.append("state eq @state")
            params["state"] = state
        if incident_id:
            where.append("incident_id eq @incident")
            params["incident"] = incident_id
        rows = self._actions(where, params)
        rows.sort(key=lambda r: r["RowKey"])
        rows.sort(key=lambda r: r["planned_at"], reverse=True)
        return [ActionRecord.from_dict(read_body(r)) for r in rows[:limit]]

    def actions_in(self, states: Sequence[str], limit: int) -> list[ActionRecord]:
        """Newest first, in any of these states: one query of the partition."""
        params = {f"s{n}": state for n, state in enumerate(states)}
        # The SDK substitutes a parameter only where it stands between spaces: "( … )".
        rows = self._actions(["( " + " or ".join(f"state eq @{name}" for name in params) + " )"], params)
        rows.sort(key=lambda r: r["RowKey"])
        rows.sort(key=lambda r: r["planned_at"], reverse=True)
        return [ActionRecord.from_dict(read_body(r)) for r in rows[:limit]]

    def actions_due(self, before: str, limit: int) -> list[VersionedAction]:
        """Whose wake was due by `before` (a final one's: its pending escalation), oldest due first:
        one query of the partition (a row without the property matches neither comparison)."""
        rows = self._actions(["wake_at ne ''", "wake_at le @before"], {"before": before})
        rows.sort(key=lambda r: r["RowKey"])
        rows.sort(key=lambda r: r["wake_at"])
        found = []
        for row in rows[:limit]:
            record, version = ActionRecord.from_dict(read_body(row)), int(row["version"])
            self._remember(record.id, version, etag_of(row))
            found.append(VersionedAction(record, version))
        return found

    def actions_on(self, resource: str, since: str) -> list[ActionRecord]:
        """On one resource, planned since a time, oldest first."""
        rows = self._actions(
            ["resource eq @resource", "planned_at ge @since"], {"resource": resource.lower(), "since": since}
        )
        rows.sort(key=lambda r: r["planned_at"])
        return [ActionRecord.from_dict(read_body(r)) for r in rows]

    def started_since(self, since: str) -> list[ActionRecord]:
        """Started since a time."""
        rows = self._actions(["started_at ne ''", "started_at ge @since"], {"since": since})
        return [ActionRecord.from_dict(read_body(r)) for r in rows]

    # --- AutomationSwitch -----------------------------------------------------------------------

    def pauses(self) -> list[Pause]:
        """Every paused scope, by tenant."""
        rows = query(self.client, "PartitionKey eq @pk", {"pk": PAUSES}, self.counter)
        found = [Pause(**json.loads(r["body"])) for r in rows]
        return sorted(found, key=lambda p: p.tenant)

    def pause(self, pause: Pause) -> None:
        """Insert or replace the scope's pause."""
        from azure.data.tables import UpdateMode

        body = json.dumps({"tenant": pause.tenant, "by": pause.by, "at": pause.at, "reason": pause.reason})
        entity = {"PartitionKey": PAUSES, "RowKey": "t|" + escape_key(pause.tenant), "body": body}
        with translated_errors(self.counter):
            self.client.upsert_entity(entity, mode=UpdateMode.REPLACE)
            # Then the gate: a start that read the pauses before this one fails at the gate and
            # reads them again, so none commits after pause() returns.
            self.client.upsert_entity({"PartitionKey": NOTES, "RowKey": GATE_ROW}, mode=UpdateMode.MERGE)

    def resume(self, tenant: str) -> bool:
        """Delete the scope's pause; a transaction, so a missing one answers 404 instead of nothing."""
        try:
            submit(
                self.client,
                [("delete", {"PartitionKey": PAUSES, "RowKey": "t|" + escape_key(tenant)})],
                self.counter,
            )
        except TransactionFailed as failed:
            if failed.status == 404:
                return False
            raise
        return True

    # --- internals ------------------------------------------------------------------------------

    def _actions(self, where: list[str], params: dict[str, Any]) -> list[Any]:
        low, high = prefix_range(ACTION_ROWS)
        clauses = ["PartitionKey eq @pk", "RowKey ge @low", "RowKey lt @high", *where]
        return query(
            self.client,
            " and ".join(clauses),
            {"pk": NOTES, "low": low, "high": high, **params},
            self.counter,
        )

    def _replace(self, record: ActionRecord, version: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The update of the record at `version`, conditional on its ETag (remembered, else read)."""
        with self._lock:
            etag = self._etags.get((record.id, version))
        if etag is None:
            found = get_entity(self.client, NOTES, ACTION_ROWS + escape_key(record.id), self.counter)
            if found is None or int(found["version"]) != version:
                raise PreconditionFailed(f"action {record.id} changed since version {version}")
            etag = etag_of(found)
        return ("update", _entity(record, version + 1), if_match(etag))

    def _lines(self, record: ActionRecord, timeline: Sequence[TimelineEntry]) -> list[tuple[str, Any]]:
        return [
            ("create", e)
            for e in line_entities(NOTES, note_rows(record.incident_id), timeline, self.sequencer)
        ]

    def _remember(self, action_id: str, version: int, etag: str) -> None:
        with self._lock:
            if len(self._etags) > 4096:
                self._etags.clear()
            self._etags[(action_id, version)] = etag
