"""One Azure credential per process, management clients pointed at DR_ARM_URL, and ARM's errors as ours.

The SDKs are imported inside the functions that build clients: each costs a cold start 0.2–0.45 s.

- `azure_credential(client_id, timeouts)`: `ManagedIdentityCredential(client_id=…)` for a
  user-assigned identity, else `DefaultAzureCredential`; built on first use and kept, so its token
  cache is shared; each token request bounded by the same timeouts as an ARM call.
- `ArmClients(arm_url, credential)`: one client per (SDK, subscription), built on first use with
  `base_url=arm_url` and `credential_scopes=[f"{arm_url}/.default"]` (real ARM's scope is
  `https://management.azure.com/.default`), so DR_ARM_URL points every client elsewhere at once.
- No client retries by itself (`retry_total=0`): azure-core would retry a POST on 500/503/504 or a
  Retry-After, and a failover started twice is a second failover. Every 429, 5xx and unreachable
  endpoint becomes `Transient`, and the action pipeline decides when to try the step again.
- `arm_errors(where, write=True)` is for the one call that changes the target: where ARM may have
  taken it although its answer was lost (a reset or read timeout after sending, 500, 502, 504,
  408) it raises `OutcomeUnknown`, and the pipeline looks before it calls again. Not sent (refused,
  no token) and not taken (429, 503, 409) stay `Transient`.
- Every ARM call, token request and Key Vault call is bounded (`arm_timeouts(lease)`; azure-core's
  defaults are 300 s to connect and 300 s per read): an endpoint that takes the connection and
  never answers is `Transient` well within the action's lease, so another worker never takes over
  a start whose call still waits.
- `started(poller)` / `ArmPolls.poll(handle)`: a long operation is started without waiting (its
  first answer's URLs become the handle) and polled once per check.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.actions.arm import OperationHandle, OperationState, OperationStatus
from shared.actions.kind import ActionFailed
from shared.errors import MAYBE_TAKEN, OutcomeUnknown, Transient, retry_after_seconds

ARM_URL = "https://management.azure.com"
NO_RETRIES: Mapping[str, Any] = {"retry_total": 0}
# ARM answers in seconds (a long operation answers 202 and is polled); these bound a black hole.
ARM_CONNECT_SECONDS = 10.0
ARM_READ_SECONDS = 30.0  # the longest silence while the answer is awaited


@dataclass(frozen=True)
class ArmTimeouts:
    """How long one ARM call may wait: to connect, and for each read of the answer."""

    connect_seconds: float = ARM_CONNECT_SECONDS
    read_seconds: float = ARM_READ_SECONDS

    def keywords(self) -> dict[str, float]:
        """As azure-core's transport takes them: keywords of any client (its ConnectionConfiguration)."""
        return {"connection_timeout": self.connect_seconds, "read_timeout": self.read_seconds}


ARM_TIMEOUTS = ArmTimeouts()


def arm_timeouts(lease_seconds: float) -> ArmTimeouts:
    """The defaults, shortened so one call's worst case (connect + read) is two thirds of the lease at
    most: the lease must outlast it, or a redelivery takes over a start whose call still waits."""
    return ArmTimeouts(min(ARM_CONNECT_SECONDS, lease_seconds / 6), min(ARM_READ_SECONDS, lease_seconds / 2))


# Terminal states of an Azure-AsyncOperation status body (anything else is still running).
_FAILED = {"failed", "canceled", "cancelled"}

T = TypeVar("T")

_credential_lock = threading.Lock()
_credentials: dict[tuple[str | None, ArmTimeouts, bool], Any] = {}
_NO_IDENTITY = (
    "no Azure identity to act with (set AZURE_CLIENT_ID for a managed identity, or sign in with `az login`)"
)


def azure_credential(
    client_id: str | None = None, timeouts: ArmTimeouts = ARM_TIMEOUTS, retries: bool = True
) -> Any:
    """This process's credential for the identity (user-assigned when client_id is given), its token
    requests bounded as ARM calls are: azure-core's 300 s would let a start's token outlast its lease.
    Without `retries`, one try per token: azure-identity's own retries would multiply the bound."""
    key = (client_id, timeouts, retries)
    with _credential_lock:
        if key not in _credentials:
            bounded: dict[str, Any] = dict(timeouts.keywords())
            if not retries:
                bounded["retry_total"] = 0
            if client_id:
                from azure.identity import ManagedIdentityCredential

                _credentials[key] = ManagedIdentityCredential(client_id=client_id, **bounded)
            else:
                from azure.identity import DefaultAzureCredential

                # Off Azure (a laptop, CI) the managed-identity probe would wait on an endpoint that is
                # not there: only try it where the platform says it has one.
                _credentials[key] = DefaultAzureCredential(
                    exclude_managed_identity_credential=not _in_azure(),
                    exclude_interactive_browser_credential=True,
                    **bounded,
                )
        return _credentials[key]


def _in_azure() -> bool:
    """Whether the platform announces a managed-identity endpoint (App Service, Functions, Arc…)."""
    return bool(os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("MSI_ENDPOINT"))


class LazyCredential:
    """The process's credential, built on the first token asked for: loading azure-identity costs
    a cold start time it need not pay before an action runs."""

    retries = True

    def __init__(self, client_id: str | None = None, timeouts: ArmTimeouts = ARM_TIMEOUTS) -> None:
        self.client_id = client_id
        self.timeouts = timeouts

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """As the real credential answers."""
        return self._credential().get_token(*scopes, **kwargs)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        """As the real credential answers (azure-core prefers this when a credential has it)."""
        return self._credential().get_token_info(*scopes, **kwargs)

    def _credential(self) -> Any:
        return azure_credential(self.client_id, self.timeouts, self.retries)

    def close(self) -> None:
        """Nothing to close until the real credential exists; it lives as long as the process."""


class ActionsCredential(LazyCredential):
    """The actions' credential: one bounded try per token, and a token it cannot get is its own error.

    Inside an ARM or Key Vault call azure-core's error for the token request would read as the
    call's: a read timeout at the identity endpoint as a lost answer (OutcomeUnknown, though nothing
    was sent), a managed identity that failed once as "no identity configured" (ActionFailed). Here
    it is Transient, the step tried again later; ActionFailed only when no credential could try.
    """

    retries = False

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """A token, or Transient / ActionFailed saying why there is none."""
        try:
            return super().get_token(*scopes, **kwargs)
        except Exception as e:
            raise token_failure(e) from e

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        """As get_token."""
        try:
            return super().get_token_info(*scopes, **kwargs)
        except Exception as e:
            raise token_failure(e) from e


def token_failure(error: Exception) -> Exception:
    """A failed token request as the pipeline's error: never sent anything, so never a lost answer."""
    message = str(getattr(error, "message", None) or error).strip().splitlines()
    said = (
        f"no token for the actions' identity ({type(error).__name__}: {message[0][:300] if message else ''})"
    )
    no_credential = type(error).__name__ == "CredentialUnavailableError"
    nothing_tried = (
        "failed to retrieve a token from the included credentials" in str(error) and not _in_azure()
    )
    return ActionFailed(_NO_IDENTITY) if no_credential or nothing_tried else Transient(said)


def arm_scope(arm_url: str) -> str:
    """The token scope for an ARM endpoint: `https://management.azure.com/.default` for Azure's."""
    return f"{arm_url.rstrip('/')}/.default"


class ArmClients:
    """Management clients by SDK and subscription, built on first use and kept."""

    def __init__(self, arm_url: str, credential: Any, timeouts: ArmTimeouts = ARM_TIMEOUTS) -> None:
        self.arm_url = arm_url.rstrip("/")
        self.credential = credential
        self.timeouts = timeouts
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, factory: Callable[..., T], subscription_id: str) -> T:
        """`factory(credential, subscription_id, base_url=…, credential_scopes=[…])`, cached."""
        key = (f"{factory.__module__}.{factory.__qualname__}", subscription_id)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = factory(
                    self.credential,
                    subscription_id,
                    base_url=self.arm_url,
                    credential_scopes=[arm_scope(self.arm_url)],
                    retry_total=0,
                    **self.timeouts.keywords(),
                )
            return self._clients[key]

    def pipeline(self) -> Any:
        """A bare ARM pipeline (token, no retries) for the URLs ARM hands out: operation status."""
        from azure.core.pipeline import policies
        from azure.mgmt.core import ARMPipelineClient
        from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

        with self._lock:
            if ("pipeline", "") not in self._clients:
                self._clients[("pipeline", "")] = ARMPipelineClient(
                    base_url=self.arm_url,
                    policies=[
                        policies.RequestIdPolicy(),
                        policies.UserAgentPolicy(sdk_moniker="dr-responder"),
                        policies.ContentDecodePolicy(),
                        policies.RetryPolicy(retry_total=0),
                        ARMChallengeAuthenticationPolicy(self.credential, arm_scope(self.arm_url)),
                        ARMHttpLoggingPolicy(),
                    ],
                    **self.timeouts.keywords(),
                )
            return self._clients[("pipeline", "")]

    def cosmos(self, subscription_id: str) -> Any:
        """azure-mgmt-cosmosdb's client."""
        from azure.mgmt.cosmosdb import CosmosDBManagementClient

        return self.client(CosmosDBManagementClient, subscription_id)

    def redis(self, subscription_id: str) -> Any:
        """azure-mgmt-redis's client (Azure Cache for Redis)."""
        from azure.mgmt.redis import RedisManagementClient

        return self.client(RedisManagementClient, subscription_id)

    def redis_enterprise(self, subscription_id: str) -> Any:
        """azure-mgmt-redisenterprise's client (Azure Managed Redis)."""
        from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient

        return self.client(RedisEnterpriseManagementClient, subscription_id)

    def containers(self, subscription_id: str) -> Any:
        """azure-mgmt-containerservice's client (AKS)."""
        from azure.mgmt.containerservice import ContainerServiceClient

        return self.client(ContainerServiceClient, subscription_id)


def wire_text(value: Any) -> str:
    """An SDK enum's wire value (`BoundedStaleness`, `Secondary`), or the string as it came ("" for None)."""
    return "" if value is None else str(getattr(value, "value", value))


# --- errors ---------------------------------------------------------------------------------------


@contextmanager
def arm_errors(where: str, *, write: bool = False) -> Iterator[None]:
    """azure-core's errors as ours, each `from` the original, ARM's code and message in the text.

    `write`: the call changes the target, so an answer lost after sending is `OutcomeUnknown`.
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except HttpResponseError as e:
        answer: Any = e.response
        # No identity configured (nothing in DefaultAzureCredential's chain could even try): waiting
        # cannot help.
        chain_empty = "failed to retrieve a token from the included credentials" in str(e.message)
        if type(e).__name__ == "CredentialUnavailableError" or (answer is None and chain_empty):
            raise ActionFailed(f"{where}: {_NO_IDENTITY}") from e
        if answer is None and write and not isinstance(e, ClientAuthenticationError):
            # An answer cut off in its body (IncompleteReadError): the request had gone out.
            raise OutcomeUnknown(f"{where}: ARM's answer was lost ({type(e).__name__}: {e.message})") from e
        if answer is None:  # the credential's own ClientAuthenticationError: no token, ARM not asked
            raise Transient(f"{where}: no token ({type(e).__name__}: {e.message})") from e
        raise failure(where, int(answer.status_code), _error_body(e), answer.headers, write=write) from e
    except ServiceResponseError as e:  # sent, then reset or timed out: ARM may have taken it
        said = f"{where}: ARM's answer was lost ({type(e).__name__}: {e.message})"
        raise (OutcomeUnknown(said) if write else Transient(said)) from e
    except ServiceRequestError as e:  # refused, DNS, connect timeout: never sent
        raise Transient(f"{where}: ARM unreachable ({type(e).__name__}: {e.message})") from e


def failure(
    where: str, status: int, body: Any, headers: Mapping[str, str], *, write: bool = False
) -> Exception:
    """The error for one ARM answer that is not a success: Transient (OutcomeUnknown) or ActionFailed."""
    code, message = _code_and_message(body)
    said = f"{where}: ARM answered {status} {code}: {message}"
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if status == 429:
        return Transient(said, retry_after, held=True)
    if write and status in MAYBE_TAKEN:
        return OutcomeUnknown(f"{said} (it may have been taken)", retry_after)
    if status >= 500 or status in (408, 409):  # 409: another operation on the resource runs now
        return Transient(said, retry_after)
    return ActionFailed(said)


def _error_body(error: Any) -> Any:
    try:
        return json.loads(error.response.text())
    except (ValueError, TypeError, AttributeError):
        return None


def _code_and_message(body: Any) -> tuple[str, str]:
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict):
        return str(inner.get("code") or "-"), str(inner.get("message") or "-")
    return "-", "no ARM error body"


# --- long operations, step by step ----------------------------------------------------------------


class FirstAnswer:
    """A polling method for `begin_*(polling=…)` that polls nothing: it keeps ARM's first answer.

    The SDK checks that first answer's status (e.g. 202/204 for a failover priority change) and
    raises on an error; the URLs it carries become the handle a later check polls.
    """

    def __init__(self) -> None:
        self.response: Any = None

    def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
        self.response = initial_response.http_response

    def run(self) -> None:
        return None

    def status(self) -> str:
        return "Started"

    def finished(self) -> bool:
        return True

    def resource(self) -> None:
        return None

    def handle(self) -> OperationHandle:
        """The URLs to poll; empty when ARM answered the operation finished (200/204, no URLs)."""
        headers = self.response.headers
        found = {
            "status_url": headers.get("Azure-AsyncOperation"),
            "location_url": headers.get("Location") if self.response.status_code in (201, 202) else None,
        }
        return {k: v for k, v in found.items() if v}


class ArmPolls:
    """Polls an operation's handle once (the URLs are absolute: any subscription's pipeline will do)."""

    def __init__(self, clients: ArmClients) -> None:
        self._clients = clients

    def poll(self, handle: OperationHandle) -> OperationState:
        """Azure-AsyncOperation first (body `status`), else Location (202 = still running)."""
        from azure.core.rest import HttpRequest

        url = handle.get("status_url") or handle.get("location_url")
        if not url:
            return OperationState(OperationStatus.SUCCEEDED)
        with arm_errors("polling the operation"):
            answer = self._clients.pipeline().send_request(HttpRequest("GET", url))
        body = _json(answer)
        if answer.status_code >= 400:
            error = failure("polling the operation", answer.status_code, body, answer.headers)
            if isinstance(error, Transient) or "status_url" in handle:
                raise error
            return OperationState(OperationStatus.FAILED, str(error))  # the Location URL's own failure
        if "status_url" not in handle:
            running = answer.status_code == 202
            return OperationState(OperationStatus.IN_PROGRESS if running else OperationStatus.SUCCEEDED)
        status = str(body.get("status", "")).lower() if isinstance(body, dict) else ""
        if status == "succeeded":
            return OperationState(OperationStatus.SUCCEEDED)
        if status in _FAILED:
            code, message = _code_and_message(body)
            return OperationState(OperationStatus.FAILED, f"{status}: {code}: {message}")
        return OperationState(OperationStatus.IN_PROGRESS)


def _json(answer: Any) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None
