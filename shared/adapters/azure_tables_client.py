"""Azure Table Storage plumbing shared by the table stores: clients, keys, large bodies, errors.

azure.data.tables is imported inside the functions that need it (a cold start on the HTTP path
pays for it only when the table store is configured). See azure_tables.md for the partitions.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from shared.domain.incidents import TimelineEntry
from shared.errors import Conflict, PreconditionFailed, Rejected, Transient

# A string property holds 64 KiB of UTF-16: 32 K characters. Bodies longer than this are cut
# across properties body, body_1, body_2, … (an entity holds 1 MiB: Azurite does not enforce it).
PROPERTY_CHARS = 32_000
MAX_BODY_CHARS = 15 * PROPERTY_CHARS
# A transaction: one partition, at most 100 operations and 4 MiB.
MAX_TRANSACTION_OPS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
# PartitionKey and RowKey forbid / \ # ? and control characters; "|" and "%" are ours (separator,
# escape). A key may be 1 KiB: a longer one keeps a readable head and a digest of the whole.
_FORBIDDEN = re.compile(r"[%/\\#?|\x00-\x1f\x7f-\x9f]")
MAX_KEY_CHARS = 400


def escape_key(text: str) -> str:
    """Text safe inside a PartitionKey or RowKey, distinct for distinct text, order kept for plain text."""
    escaped = _FORBIDDEN.sub(lambda m: f"%{ord(m.group()):02X}", text)
    if len(escaped) <= MAX_KEY_CHARS:
        return escaped
    return escaped[: MAX_KEY_CHARS - 65] + "~" + hashlib.sha256(text.encode()).hexdigest()


_INVERT = str.maketrans("0123456789", "9876543210")


def inverted(timestamp: str) -> str:
    """A fixed-format timestamp whose ascending order is the original's descending (newest first)."""
    return timestamp.translate(_INVERT)


class Sequencer:
    """Increasing, sortable write sequence numbers: nanoseconds, never repeated within a process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{self._last:020d}"


# ---------------------------------------------------------------------------------------- bodies


def body_properties(value: Any, name: str = "body") -> dict[str, str]:
    """JSON of `value` across as many string properties as it needs."""
    text = json.dumps(value, separators=(",", ":"))
    if len(text) > MAX_BODY_CHARS:
        raise ValueError(f"a stored body of {len(text)} characters exceeds {MAX_BODY_CHARS}")
    parts = [text[i : i + PROPERTY_CHARS] for i in range(0, len(text), PROPERTY_CHARS)] or [""]
    props = {name: parts[0]}
    props.update({f"{name}_{n}": part for n, part in enumerate(parts[1:], 1)})
    return props


def read_body(entity: Mapping[str, Any], name: str = "body") -> Any:
    """Inverse of `body_properties`."""
    parts = [entity[name]]
    for n in itertools.count(1):
        part = entity.get(f"{name}_{n}")
        if part is None:
            break
        parts.append(part)
    return json.loads("".join(parts))


def etag_of(entity_or_result: Any) -> str:
    """The ETag of a read entity or of a write's response metadata."""
    metadata = getattr(entity_or_result, "metadata", None)
    if metadata is not None:
        return str(metadata["etag"])
    return str(entity_or_result["etag"])


def if_match(etag: str) -> dict[str, Any]:
    """A transaction's update options: replace the entity only if it still has this ETag."""
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}


def entity_bytes(entity: Mapping[str, Any]) -> int:
    """Roughly what an entity costs in a request body (its properties as JSON)."""
    return sum(len(str(k)) + len(str(v).encode()) + 8 for k, v in entity.items())


# ---------------------------------------------------------------------------------------- counting


@dataclass
class TableCounter:
    """What the adapter asked of Table Storage: HTTP requests sent (a transaction is one, a retry
    another), and the conditional writes it lost: 409 (created meanwhile) and 412 (changed)."""

    requests: int = 0
    conflicts: int = 0  # 409
    preconditions_failed: int = 0  # 412
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def response_hook(self, response: Any) -> None:
        """For azure-core's `raw_response_hook`: runs once per HTTP response."""
        with self._lock:
            self.requests += 1

    def lost(self, status: int) -> None:
        with self._lock:
            if status == 409:
                self.conflicts += 1
            elif status == 412:
                self.preconditions_failed += 1


# ---------------------------------------------------------------------------------------- clients


def table_client(
    table: str,
    *,
    endpoint: str | None = None,
    connection_string: str | None = None,
    credential: Any = None,
    counter: TableCounter | None = None,
) -> Any:
    """A TableClient (creating the table if needed) from a connection string, or an endpoint with a
    credential (managed identity). Retries are azure-core's, kept short: a caller retries the rest."""
    from azure.data.tables import TableServiceClient

    options: dict[str, Any] = {"retry_total": 3, "retry_backoff_factor": 0.2}
    if counter is not None:
        options["raw_response_hook"] = counter.response_hook
    if connection_string:
        service = TableServiceClient.from_connection_string(connection_string, **options)
    elif endpoint:
        service = TableServiceClient(endpoint=endpoint, credential=credential, **options)
    else:
        raise ValueError("a Table Storage endpoint or connection string is needed")
    with translated_errors(counter):
        return service.create_table_if_not_exists(table)


# ---------------------------------------------------------------------------------------- errors


class TransactionFailed(Exception):
    """A transaction was refused at one operation: its index and HTTP status."""

    def __init__(self, index: int, status: int, message: str) -> None:
        super().__init__(f"operation {index}: {status} {message}")
        self.index = index
        self.status = status


@contextmanager
def translated_errors(counter: TableCounter | None = None, what: str = "table storage") -> Iterator[None]:
    """Vendor errors as the project's: 409 Conflict, 412 PreconditionFailed, 429/5xx/timeouts Transient."""
    from azure.core.exceptions import (
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as e:
        raise Transient(f"{what} unreachable: {e}") from e
    except HttpResponseError as e:
        status = int(e.status_code or 0)
        if counter is not None:
            counter.lost(status)
        if status == 409:
            raise Conflict(f"{what}: the entity exists") from e
        if status == 412:
            raise PreconditionFailed(f"{what}: the entity changed") from e
        if status in (408, 429, 500, 502, 503, 504):
            raise Transient(f"{what} busy ({status})", held=status == 429) from e
        raise Rejected(f"{what} refused the request ({status}): {e.message}") from e


def submit(
    client: Any, operations: Sequence[tuple[Any, ...]], counter: TableCounter | None = None
) -> list[Mapping[str, Any]]:
    """One transaction; TransactionFailed(index, status) when one operation is refused."""
    from azure.data.tables import TableTransactionError

    if len(operations) > MAX_TRANSACTION_OPS:
        raise ValueError(f"a transaction of {len(operations)} operations exceeds {MAX_TRANSACTION_OPS}")
    size = sum(entity_bytes(op[1]) for op in operations)
    if size > MAX_TRANSACTION_BYTES - 256 * 1024:  # room for the multipart envelope
        raise ValueError(f"a transaction of about {size} bytes exceeds 4 MiB")
    with translated_errors(counter):
        try:
            return list(client.submit_transaction(list(operations)))
        except TableTransactionError as e:
            if e.status_code in (404, 409, 412):
                if counter is not None:
                    counter.lost(int(e.status_code))
                raise TransactionFailed(int(e.index), int(e.status_code), str(e.message)) from e
            raise


def get_entity(client: Any, pk: str, rk: str, counter: TableCounter | None = None) -> Any | None:
    """One entity, or None."""
    from azure.core.exceptions import ResourceNotFoundError

    with translated_errors(counter):
        try:
            return client.get_entity(pk, rk)
        except ResourceNotFoundError:
            return None


def query(
    client: Any,
    where: str,
    parameters: Mapping[str, Any],
    counter: TableCounter | None = None,
    select: Sequence[str] | None = None,
    top: int | None = None,
) -> list[Any]:
    """Entities matching an OData filter (parameters quoted by the SDK), every page, or `top` of them."""
    with translated_errors(counter):
        pages = client.query_entities(
            where, parameters=dict(parameters), select=list(select) if select else None, results_per_page=top
        )
        if top is None:
            return list(pages)
        return list(itertools.islice(pages, top))


def delete_entity(
    client: Any, pk: str, rk: str, etag: str | None = None, counter: TableCounter | None = None
) -> bool:
    """Delete (if still at `etag`, when given); False when it was not there or had changed."""
    from azure.core import MatchConditions

    try:
        with translated_errors(counter):
            if etag is None:
                client.delete_entity(pk, rk)  # a missing entity is no error for the SDK
            else:
                client.delete_entity(pk, rk, etag=etag, match_condition=MatchConditions.IfNotModified)
    except (PreconditionFailed, Rejected):
        return False
    return True


def prefix_range(prefix: str) -> tuple[str, str]:
    """RowKey bounds [low, high) of the keys that start with `prefix`."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def best_effort(action: Callable[[], Any], log: Any, what: str) -> None:
    """Run a write a reader tolerates missing (a sweep repairs it); log instead of failing the caller."""
    try:
        action()
    except Exception:
        log.warning("%s not written; readers tolerate it and repair() fixes it", what, exc_info=True)


# ---------------------------------------------------------------------------------------- timeline


def line_entities(
    pk: str, rk_prefix: str, entries: Sequence[TimelineEntry], sequencer: Sequencer
) -> list[dict[str, Any]]:
    """Timeline lines as few entities as their size allows (one, almost always): a commit of 40
    signals and their lines must stay one transaction of at most 100 operations."""
    chunks: list[list[list[str]]] = []
    size = MAX_BODY_CHARS
    for e in entries:
        line = [e.at, e.kind, e.text]
        cost = len(json.dumps(line)) + 1
        if size + cost > MAX_BODY_CHARS - 2:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += cost
    return [
        {"PartitionKey": pk, "RowKey": rk_prefix + sequencer.next(), **body_properties(c)} for c in chunks
    ]


def timeline_of(entities: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, int, TimelineEntry]]:
    """(at, write sequence, place, line) for each line the entities hold, to be sorted with others."""
    found = []
    for entity in entities:
        seq = str(entity["RowKey"]).rsplit("|", 1)[-1]
        for n, (at, kind, text) in enumerate(read_body(entity)):
            found.append((at, seq, n, TimelineEntry(at, kind, text)))
    return found
