"""The Kubernetes actions' `Cluster` port on the kubernetes client (37.x, imported when first used).

One `ApiClient` per cluster, built once and kept: from the `ClusterAccess` a `ClusterLocator`
gives (an AKS cluster: server, CA, an Entra ID token asked for before every request), or from the
`kubeconfig` and `context` of the target's reach. Neither touches the client's global default
configuration. Objects go in and come out as the API server's JSON (`_preload_content=False`):
no pydantic models, no snake_case, and a create answered 200 instead of 201 still reads.

Each call is one HTTP request: urllib3 is told not to retry a status (it would sleep through a
429's Retry-After inside a step); the pipeline retries the step on `Transient` instead. The writes
(the PATCH, the create) are `OutcomeUnknown` where the API server may have applied them although
the answer was lost: a read timeout or a reset after sending, a 500, 502, 504 or 408.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.actions.clusters import ClusterAccess, ClusterLocator
from shared.actions.kind import ActionFailed, ActionKind, Target
from shared.actions.kubernetes import JSON, AlreadyExists, KubernetesRestart, KubernetesRollback, NotFound
from shared.actions.velero import VeleroRestore
from shared.errors import MAYBE_TAKEN, OutcomeUnknown, Transient, retry_after_seconds

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, Configuration

REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read: a step never hangs on a dead API server
PLACEHOLDER = "refreshed-before-each-request"  # the hook runs only when a key is present
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class ApiClients:
    """An `ApiClient` per cluster, cached: by AKS resource id, or by kubeconfig file and context."""

    def __init__(self, locator: ClusterLocator | None) -> None:
        self.locator = locator
        self._clients: dict[tuple[str, ...], ApiClient] = {}
        self._lock = threading.Lock()

    def client(self, target: Target) -> ApiClient:
        """The client for the target's cluster (built on first use)."""
        kubeconfig, context = target.reach.get("kubeconfig"), target.reach.get("context")
        if kubeconfig:
            key: tuple[str, ...] = ("kubeconfig", str(kubeconfig), str(context or ""))
        else:
            key = ("locator", target.resource.lower())
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = self._build(target, str(kubeconfig) if kubeconfig else None, context)
                self._clients[key] = found
            return found

    def _build(self, target: Target, kubeconfig: str | None, context: Any) -> ApiClient:
        from kubernetes.client import ApiClient, Configuration

        configuration = Configuration()  # a fresh one: the global default stays untouched
        if kubeconfig:
            from kubernetes.config import load_kube_config
            from kubernetes.config.config_exception import ConfigException

            try:
                load_kube_config(
                    config_file=kubeconfig,
                    context=str(context) if context else None,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except (ConfigException, OSError, ValueError) as e:
                raise ActionFailed(f"kubeconfig {kubeconfig} (context {context or 'current'}): {e}") from e
        elif self.locator is not None:
            with_access(configuration, self.locator.access(target))
        else:
            raise ActionFailed(
                f"no way to reach cluster {target.resource}: give kubeconfig and context in its "
                "[targets] entry, or run with the AKS locator"
            )
        configuration.retries = _no_status_retries()
        return ApiClient(configuration)


def with_access(configuration: Configuration, access: ClusterAccess) -> None:
    """Point a Configuration at a ClusterAccess: its server, its CA, a bearer token fetched per request."""
    configuration.host = access.server.rstrip("/")
    configuration.ca_cert_data = access.ca_pem
    configuration.verify_ssl = True
    configuration.api_key = {"authorization": PLACEHOLDER}
    configuration.api_key_prefix = {"authorization": "Bearer"}

    def refresh(config: Configuration) -> None:
        config.api_key["authorization"] = access.token()

    # Typed None in the client's stubs, called when set (Configuration.get_api_key_with_prefix).
    configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]


def _no_status_retries() -> Any:
    from urllib3.util.retry import Retry

    # A refused connection is tried once more at once; a status (429, 5xx) never in-process.
    return Retry(total=1, connect=1, read=0, redirect=0, status=0, respect_retry_after_header=False)


class KubeCluster:
    """The `Cluster` port on one ApiClient."""

    def __init__(self, client: ApiClient, name: str) -> None:
        self.client = client
        self.name = name  # for messages: the cluster's resource id or target name

    def deployment(self, namespace: str, name: str) -> JSON:
        """GET apps/v1 deployments/NAME."""
        apps = self._apps()
        return self._call(
            f"GET deployment {namespace}/{name}",
            lambda: apps.read_namespaced_deployment(name, namespace, **_RAW),
        )

    def replica_sets(self, namespace: str, label_selector: str) -> list[JSON]:
        """LIST apps/v1 replicasets by labelSelector."""
        apps = self._apps()
        found = self._call(
            f"LIST replicasets in {namespace} ({label_selector})",
            lambda: apps.list_namespaced_replica_set(namespace, label_selector=label_selector, **_RAW),
        )
        return list(found.get("items") or [])

    def patch_deployment(
        self, namespace: str, name: str, patch: list[JSON] | JSON, field_manager: str | None = None
    ) -> JSON:
        """PATCH: a list as application/json-patch+json, a dict as a strategic merge patch."""
        apps = self._apps()
        content_type = (
            "application/json-patch+json"
            if isinstance(patch, list)
            else "application/strategic-merge-patch+json"
        )
        return self._call(
            f"PATCH deployment {namespace}/{name}",
            lambda: apps.patch_namespaced_deployment(
                name, namespace, patch, field_manager=field_manager, _content_type=content_type, **_RAW
            ),
            write=True,
        )

    def custom_objects(
        self, group: str, version: str, namespace: str, plural: str, label_selector: str
    ) -> list[JSON]:
        """LIST a custom resource by labelSelector."""
        custom = self._custom()
        found = self._call(
            f"LIST {plural}.{group} in {namespace} ({label_selector})",
            lambda: custom.list_namespaced_custom_object(
                group, version, namespace, plural, label_selector=label_selector, **_RAW
            ),
        )
        return list(found.get("items") or [])

    def custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> JSON:
        """GET one custom object."""
        custom = self._custom()
        return self._call(
            f"GET {plural}.{group} {namespace}/{name}",
            lambda: custom.get_namespaced_custom_object(group, version, namespace, plural, name, **_RAW),
        )

    def create_custom_object(self, group: str, version: str, namespace: str, plural: str, body: JSON) -> JSON:
        """POST a custom object."""
        custom = self._custom()
        name = body.get("metadata", {}).get("name", "")
        return self._call(
            f"CREATE {plural}.{group} {namespace}/{name}",
            # 37.x sends this create without a Content-Type and ignores _content_type (the API
            # server would assume JSON): the header says it.
            lambda: custom.create_namespaced_custom_object(
                group, version, namespace, plural, body, _headers={"Content-Type": "application/json"}, **_RAW
            ),
            write=True,
        )

    def _apps(self) -> Any:
        from kubernetes.client import AppsV1Api

        return AppsV1Api(self.client)

    def _custom(self) -> Any:
        from kubernetes.client import CustomObjectsApi

        return CustomObjectsApi(self.client)

    def _call(self, what: str, send: Callable[[], Any], *, write: bool = False) -> JSON:
        """One request; its JSON answer, or the error translated (`write`: it changes the cluster)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, MaxRetryError, ProtocolError, ReadTimeoutError

        try:
            response = send()
        except ApiException as e:
            raise translate(e, f"{what} on {self.name}", write=write) from e
        except HTTPError as e:  # refused, reset, timed out: the cluster is unreachable for now
            cause = e.reason if isinstance(e, MaxRetryError) else e
            if write and isinstance(cause, (ReadTimeoutError, ProtocolError)):  # after sending
                raise OutcomeUnknown(
                    f"{what} on {self.name}: the answer was lost ({type(e).__name__}: {e})"
                ) from e
            raise Transient(f"{what} on {self.name}: unreachable ({type(e).__name__}: {e})") from e
        data = response.data
        found = json.loads(data) if data else {}
        if not isinstance(found, dict):
            raise ActionFailed(f"{what} on {self.name}: the answer is not a JSON object")
        return found


# Raw JSON in and out; a deadline on every request.
_RAW: dict[str, Any] = {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}


def translate(error: Any, what: str, *, write: bool = False) -> Exception:
    """An ApiException as the pipeline's errors: Transient for 429/5xx/other 409s, else ActionFailed.

    `write`: a 500, 502, 504 or 408 to a write may have been applied: OutcomeUnknown.
    """
    code = int(error.status or 0)
    body = _status_body(error.body)
    reason = str(body.get("reason") or error.reason or "")
    message = str(body.get("message") or "").strip()
    text = f"{what}: {code} {reason}" + (f": {message}" if message else "")
    headers = error.headers or {}
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if code == 0:  # the client's own failure (a TLS handshake refused): names the problem
        return ActionFailed(f"{what}: {error.reason}")
    if code == 429:
        return Transient(text, retry_after, held=True)
    if write and code in MAYBE_TAKEN:
        return OutcomeUnknown(f"{text} (it may have been applied)", retry_after)
    if code >= 500:
        return Transient(text, retry_after)
    if code == 404:
        return NotFound(text)
    if code == 409 and reason == "AlreadyExists":
        return AlreadyExists(text)
    if code == 409:  # a write conflict: read again and try again
        return Transient(text, retry_after)
    return ActionFailed(text)


def _status_body(body: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


class KubeClusters:
    """The `Clusters` port: a KubeCluster on the cached client of the target's cluster."""

    def __init__(self, locator: ClusterLocator | None) -> None:
        self.clients = ApiClients(locator)

    def cluster(self, target: Target) -> KubeCluster:
        """The cluster `target` names."""
        return KubeCluster(self.clients.client(target), target.resource)


def kube_kinds(locator: ClusterLocator | None) -> list[ActionKind]:
    """kubernetes.rollback, kubernetes.restart and velero.restore on the real kubernetes client."""
    clusters = KubeClusters(locator)
    return [KubernetesRollback(clusters), KubernetesRestart(clusters), VeleroRestore(clusters)]
