"""How the Kubernetes action tests reach the API stub: an AKS-like locator with rotating tokens, a context."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from shared.actions.clusters import ClusterAccess
from shared.actions.kind import Context, Target
from tests.stubs.kube_api import KubeApiStub

AKS_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-shop"
    "/providers/Microsoft.ContainerService/managedClusters/aks-shop"
)
TOKENS = tuple(f"entra-token-{i}" for i in range(1, 200))
OPENED = datetime(2026, 11, 23, 10, 20, tzinfo=UTC)  # 20 minutes after revision 3's ReplicaSet
NOW = datetime(2026, 11, 23, 10, 25, 7, tzinfo=UTC)


class StubLocator:
    """A ClusterLocator for the stub: its server and CA, and a new token each time one is asked for."""

    def __init__(self, stub: KubeApiStub) -> None:
        self.stub = stub
        self.located: list[str] = []
        self._tokens = itertools.cycle(TOKENS)

    def access(self, target: Target) -> ClusterAccess:
        self.located.append(target.resource)
        return ClusterAccess(self.stub.url, self.stub.ca_pem, lambda: next(self._tokens))


def incident(opened: datetime = OPENED, now: datetime = NOW) -> Context:
    """The incident the action runs for."""
    return Context("inc-20261123-0a1b2c3d4e", opened, now)


def aks_target(**params: Any) -> Target:
    """A target on the AKS cluster (reached through the locator)."""
    return Target(AKS_ID, params)


def bearer_tokens(stub: KubeApiStub) -> list[str | None]:
    """The bearer token of each request the stub received."""
    out: list[str | None] = []
    for request in stub.requests:
        value = request.header("authorization") or ""
        out.append(value.removeprefix("Bearer ") if value.startswith("Bearer ") else None)
    return out
