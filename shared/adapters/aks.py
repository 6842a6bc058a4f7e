"""AKS cluster access for the Kubernetes actions, without kubelogin.

`list_cluster_user_credentials` gives a kubeconfig whose user runs kubelogin (an Entra ID
cluster); only its cluster half is used: the API server and `certificate-authority-data`
(base64 → PEM text, as the kubernetes client wants it). The bearer token comes from the
responder's own credential, for the AKS AAD server application
(`6dae42f8-4368-4678-94ff-3960e28e3630/.default`), kept and refreshed when under 5 minutes remain.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.actions.arm import ArmId
from shared.actions.clusters import ClusterAccess
from shared.actions.kind import ActionFailed, Target
from shared.adapters.azure_clients import NO_RETRIES, ArmClients, arm_errors
from shared.errors import Transient

AKS_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
REFRESH_BEFORE_SECONDS = 300.0
MANAGED_CLUSTER = "microsoft.containerservice/managedclusters"


class BearerToken:
    """A token for one scope, fetched when first asked and again when it has under 5 minutes left."""

    def __init__(
        self,
        credential: Any,
        scope: str = AKS_SCOPE,
        *,
        refresh_before: float = REFRESH_BEFORE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credential = credential
        self.scope = scope
        self.refresh_before = refresh_before
        self.clock = clock
        self._lock = threading.Lock()
        self._token: Any = None

    def __call__(self) -> str:
        """The token's text, fresh enough for the next request."""
        with self._lock:
            if self._token is None or self._token.expires_on - self.clock() < self.refresh_before:
                self._token = self._fetch()
            return str(self._token.token)

    def _fetch(self) -> Any:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            return self.credential.get_token(self.scope)
        except ClientAuthenticationError as e:
            raise Transient(f"no token for AKS ({self.scope}): {e.message}") from e


@dataclass(frozen=True)
class KubeCluster:
    """The cluster half of a kubeconfig."""

    server: str
    ca_pem: str


def cluster_of(kubeconfig: str | bytes) -> KubeCluster:
    """The current context's cluster (else the only one): its server and CA as PEM text."""
    import yaml

    config = yaml.safe_load(kubeconfig)
    if not isinstance(config, dict):
        raise ActionFailed("the AKS kubeconfig is not a YAML mapping")
    clusters = {
        c.get("name"): c.get("cluster") or {} for c in config.get("clusters") or [] if isinstance(c, dict)
    }
    contexts = {
        c.get("name"): c.get("context") or {} for c in config.get("contexts") or [] if isinstance(c, dict)
    }
    wanted = contexts.get(config.get("current-context"), {}).get("cluster")
    cluster = clusters.get(wanted) or (next(iter(clusters.values())) if len(clusters) == 1 else None)
    if not cluster or not cluster.get("server"):
        raise ActionFailed("the AKS kubeconfig names no cluster with a server")
    try:
        ca_pem = base64.b64decode(cluster.get("certificate-authority-data") or "", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as e:
        raise ActionFailed(f"the AKS kubeconfig's certificate-authority-data is not base64 PEM: {e}") from e
    if "-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise ActionFailed("the AKS kubeconfig has no CA certificate (certificate-authority-data)")
    return KubeCluster(str(cluster["server"]), ca_pem)


class AksClusters:
    """`ClusterLocator` for AKS resource ids; the cluster half is kept, the token shared and refreshed."""

    def __init__(
        self, clients: ArmClients, credential: Any, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.clients = clients
        self.token = BearerToken(credential, clock=clock)
        self._lock = threading.Lock()
        self._clusters: dict[str, KubeCluster] = {}

    def access(self, target: Target) -> ClusterAccess:
        arm_id = ArmId.parse(target.resource)
        if arm_id.type != MANAGED_CLUSTER:
            raise ActionFailed(
                f"{target.resource} is not an AKS cluster (Microsoft.ContainerService/managedClusters)"
            )
        key = str(arm_id).lower()
        with self._lock:
            cluster = self._clusters.get(key)
        if cluster is None:
            cluster = self._read(arm_id)
            with self._lock:
                self._clusters[key] = cluster
        return ClusterAccess(cluster.server, cluster.ca_pem, self.token)

    def forget(self, target: Target) -> None:
        """Drop what is kept of a cluster (its CA rotated, its API server moved)."""
        with self._lock:
            self._clusters.pop(str(ArmId.parse(target.resource)).lower(), None)

    def _read(self, arm_id: ArmId) -> KubeCluster:
        client = self.clients.containers(arm_id.subscription)
        with arm_errors(f"reading the user credentials of AKS cluster {arm_id.name}"):
            found = client.managed_clusters.list_cluster_user_credentials(
                arm_id.resource_group, arm_id.name, **NO_RETRIES
            )
        configs = [c.value for c in found.kubeconfigs or () if c.value]
        if not configs:
            raise ActionFailed(f"ARM returned no kubeconfig for AKS cluster {arm_id.name}")
        return cluster_of(configs[0])
