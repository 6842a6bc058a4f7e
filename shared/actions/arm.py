"""What the Azure actions share, in pure code: ARM resource ids and the long operations they start.

An operation ARM runs for long is watched step by step: the adapter that starts it returns a
handle (the `Azure-AsyncOperation` and `Location` URLs ARM answered with; empty when ARM finished
it at once), the action keeps the handle in its continuation, and each `check` polls it once.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.actions.kind import ActionFailed, Progress, Step

# ARM answers with these URLs when it accepts an operation; the continuation keeps them as they are.
OperationHandle = Mapping[str, str]


@dataclass(frozen=True)
class ArmId:
    """/subscriptions/S/resourceGroups/G/providers/NS/type/name[/type/name…], parsed."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> ArmId:
        """Parse a resource id; ActionFailed naming it when it is not one."""
        parts = text.strip().strip("/").split("/")
        lowered = [p.lower() for p in parts]
        shape_ok = (
            len(parts) >= 8
            and lowered[0] == "subscriptions"
            and lowered[2] == "resourcegroups"
            and lowered[4] == "providers"
            and len(parts[6:]) % 2 == 0
            and all(parts)
        )
        if not shape_ok:
            raise ActionFailed(f"{text!r} is not an ARM resource id (/subscriptions/…/providers/…)")
        return cls(parts[1], parts[3], parts[5], tuple(parts[6::2]), tuple(parts[7::2]))

    @property
    def type(self) -> str:
        """`microsoft.cache/redis` (lower case: ARM types compare case-insensitively)."""
        return f"{self.namespace}/{'/'.join(self.types)}".lower()

    @property
    def name(self) -> str:
        """The top-level resource's name (the cache, the account, the cluster)."""
        return self.names[0]

    @property
    def leaf(self) -> str:
        """The last name in the id (the database of a cluster's database id)."""
        return self.names[-1]

    def top(self) -> str:
        """The id of the top-level resource."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/{self.types[0]}/{self.names[0]}"
        )

    def __str__(self) -> str:
        return self.top() + "".join(f"/{t}/{n}" for t, n in zip(self.types[1:], self.names[1:], strict=True))


class OperationStatus(enum.StrEnum):
    """Where an ARM operation stands, as its status URL says."""

    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class OperationState:
    """One look at an ARM operation; `detail` carries ARM's error code and message when it failed."""

    status: OperationStatus
    detail: str = ""


class ArmOperations(Protocol):
    """Polls an operation ARM started, once."""

    def poll(self, handle: OperationHandle) -> OperationState:
        """The operation's state now (Transient when ARM is busy or unreachable)."""
        ...


def watch(
    operations: ArmOperations,
    continuation: Mapping[str, Any],
    what: str,
    keep: Mapping[str, Any],
    check_after: float,
) -> Step | None:
    """Poll the continuation's `operation` once: a PENDING or FAILED step, or None once it succeeded.

    None means the caller verifies (roles swapped, write region moved); `keep` is the rest of the
    continuation, carried into the pending step.
    """
    handle: OperationHandle = continuation.get("operation") or {}
    if not handle:
        return None
    state = operations.poll(handle)
    if state.status is OperationStatus.SUCCEEDED:
        return None
    if state.status is OperationStatus.FAILED:
        return Step(Progress.FAILED, f"{what} failed: {state.detail}")
    return Step(Progress.PENDING, f"{what}: in progress", {**keep, "operation": dict(handle)}, check_after)


def same_region(a: str | None, b: str | None) -> bool:
    """`West Europe` is `westeurope`: ARM writes regions both ways."""
    return a is not None and b is not None and region_key(a) == region_key(b)


def region_key(name: str) -> str:
    """The short form of a region (`westeurope`), as `az` takes it."""
    return "".join(name.split()).lower()
