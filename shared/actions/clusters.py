"""How an action reaches a Kubernetes cluster: the port between the Kubernetes actions and AKS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from shared.actions.kind import Target


@dataclass(frozen=True)
class ClusterAccess:
    """An API server, the CA that signs it, and a bearer token that is fresh whenever it is asked."""

    server: str  # https://…:443
    ca_pem: str  # PEM text (the kubernetes client wants text, not base64)
    token: Callable[[], str] = field(repr=False)  # refreshed before it expires


class ClusterLocator(Protocol):
    """Finds the cluster of a target (an AKS resource id through ARM, or a kubeconfig context)."""

    def access(self, target: Target) -> ClusterAccess:
        """How to reach the cluster `target.resource` names."""
        ...
