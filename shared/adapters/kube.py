"""The Kubernetes actions' port on the kubernetes client (37.x), one API client per cluster.

A cluster is reached through a `ClusterAccess` (AKS: server, CA and an Entra ID token from
`shared.adapters.aks`) or a kubeconfig and context named by `[targets."<name>"]`. Objects are read
raw (`_preload_content=False`), so the actions see the JSON the API server sent, not the client's
snake_case models. The client is imported on first use: it costs a cold start a quarter second.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shared.actions.clusters import ClusterAccess, ClusterLocator
from shared.actions.kind import ActionFailed, ActionKind, Target
from shared.actions.kubernetes import VELERO, KubeApi, KubernetesRestart, KubernetesRollback, VeleroRestore
from shared.errors import Transient, retry_after_seconds

JSON = dict[str, Any]
TOKEN_PLACEHOLDER = "set-by-refresh-hook"  # the refresh hook runs only when a key is already there


class KubeClusters:
    """Builds and keeps one `KubeApi` per cluster."""

    def __init__(self, locator: ClusterLocator | None) -> None:
        self.locator = locator
        self._lock = threading.Lock()
        self._apis: dict[tuple[str, str, str], KubeApi] = {}

    def __call__(self, target: Target) -> KubeApi:
        """The API of the cluster the target names."""
        kubeconfig, context = target.reach.get("kubeconfig"), target.reach.get("context")
        key = (target.resource.lower(), str(kubeconfig or ""), str(context or ""))
        with self._lock:
            if key not in self._apis:
                if kubeconfig:
                    client = _from_kubeconfig(str(kubeconfig), str(context) if context else None)
                elif self.locator is not None:
                    client = _from_access(self.locator.access(target))
                else:
                    raise ActionFailed(
                        f"no way to reach cluster {target.resource}: give it kubeconfig and context"
                    )
                self._apis[key] = KubeClientApi(client)
            return self._apis[key]


def _from_kubeconfig(path: str, context: str | None) -> Any:
    from kubernetes import client, config

    with kube_errors(f"kubeconfig {path}"):
        try:
            # A Configuration of its own: the process-wide default is never touched.
            return config.new_client_from_config(path, context, client_configuration=_configuration(client))
        except (OSError, config.ConfigException) as e:
            raise ActionFailed(f"cannot use kubeconfig {path} (context {context}): {e}") from e


def _from_access(access: ClusterAccess) -> Any:
    from kubernetes import client

    configuration = _configuration(client)
    configuration.host = access.server
    configuration.ca_cert_data = access.ca_pem
    configuration.api_key = {"authorization": TOKEN_PLACEHOLDER}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    token: Callable[[], str] = access.token

    def refresh(settings: Any) -> None:
        settings.api_key["authorization"] = token()  # the locator refreshes it before it expires

    configuration.refresh_api_key_hook = refresh
    return client.ApiClient(configuration)


def _configuration(client: Any) -> Any:
    configuration = client.Configuration()
    # No retries inside urllib3 (it would sleep out a 429's Retry-After, or send a POST again): a
    # step that fails says so, and the pipeline decides when to try again.
    configuration.retries = False
    return configuration


class KubeClientApi:
    """`shared.actions.kubernetes.KubeApi` on one kubernetes ApiClient."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def deployment(self, namespace: str, name: str) -> JSON:
        with kube_errors(f"GET deployment {namespace}/{name}"):
            return _raw(self.apps.read_namespaced_deployment(name, namespace, _preload_content=False))

    def replica_sets(self, namespace: str, selector: str) -> list[JSON]:
        with kube_errors(f"LIST replicasets in {namespace}"):
            found = self.apps.list_namespaced_replica_set(
                namespace, label_selector=selector, _preload_content=False
            )
            return list(_raw(found).get("items", []))

    def patch_deployment(self, namespace: str, name: str, body: Any) -> JSON:
        # The client sends a list as application/json-patch+json and a dict as a strategic merge patch.
        with kube_errors(f"PATCH deployment {namespace}/{name}"):
            return _raw(self.apps.patch_namespaced_deployment(name, namespace, body, _preload_content=False))

    def custom_objects(self, namespace: str, plural: str, selector: str = "") -> list[JSON]:
        with kube_errors(f"LIST {plural}.velero.io in {namespace}"):
            found = self.custom.list_namespaced_custom_object(
                *VELERO, namespace, plural, label_selector=selector, _preload_content=False
            )
            return list(_raw(found).get("items", []))

    def custom_object(self, namespace: str, plural: str, name: str) -> JSON:
        with kube_errors(f"GET {plural}.velero.io {namespace}/{name}"):
            return _raw(
                self.custom.get_namespaced_custom_object(
                    *VELERO, namespace, plural, name, _preload_content=False
                )
            )

    def create_custom_object(self, namespace: str, plural: str, body: JSON) -> JSON | None:
        from kubernetes.client.exceptions import ApiException

        try:
            with kube_errors(f"CREATE {plural}.velero.io in {namespace}", passing=(409,)):
                return _raw(
                    self.custom.create_namespaced_custom_object(
                        *VELERO, namespace, plural, body, _preload_content=False
                    )
                )
        except ApiException as e:  # 409 AlreadyExists: this restore was created by an earlier try
            if e.status == 409:
                return None
            raise


def _raw(response: Any) -> JSON:
    data = json.loads(response.data or b"{}")
    return data if isinstance(data, dict) else {}


@contextmanager
def kube_errors(where: str, passing: tuple[int, ...] = ()) -> Iterator[None]:
    """The client's errors as ours: 429/5xx/unreachable are Transient, other refusals ActionFailed."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as e:
        if e.status in passing:
            raise
        said = f"{where}: the API server answered {e.status} {_message(e)}"
        retry_after = retry_after_seconds((e.headers or {}).get("Retry-After"))
        if e.status == 429:
            raise Transient(said, retry_after, held=True) from e
        if e.status is None or e.status >= 500 or e.status == 0:
            raise Transient(said, retry_after) from e
        raise ActionFailed(said) from e
    except HTTPError as e:  # refused, reset, timed out, TLS
        raise Transient(f"{where}: the API server is unreachable ({type(e).__name__}: {e})") from e


def _message(error: Any) -> str:
    try:
        body = json.loads(error.body or "{}")
    except (ValueError, TypeError):
        return str(error.reason or "")
    return (
        f"{body.get('reason', error.reason)}: {body.get('message', '')}"
        if isinstance(body, dict)
        else str(error.reason)
    )


def kube_kinds(locator: ClusterLocator | None, check_seconds: float = 15.0) -> list[ActionKind]:
    """kubernetes.rollback, kubernetes.restart and velero.restore, on clusters found by the locator."""
    clusters = KubeClusters(locator)
    return [
        KubernetesRollback(clusters, check_seconds),
        KubernetesRestart(clusters, check_seconds),
        VeleroRestore(clusters, check_seconds),
    ]
