"""The image import's port on azure-mgmt-containerregistry 15.x (TypeSpec models: nested fields read flat).

The import is started with no retries at all: the client is built with `retry_total=0` and the call
passes it again, because azure-core retries a POST on 500/503/504 or on any answer carrying
Retry-After, and each retry would be a second copy (with Force, a second overwrite). A start ARM
turned away becomes `Transient`, and the action pipeline, which claimed the action first, decides
when to retry; one whose answer was lost (it may have been taken) is `OutcomeUnknown`.
"""

from __future__ import annotations

from typing import Any

from shared.actions.acr import AcrImport, ImageImport, Registry
from shared.actions.arm import ArmId, OperationHandle, OperationState
from shared.actions.kind import ActionKind
from shared.adapters.azure_clients import (
    ARM_TIMEOUTS,
    NO_RETRIES,
    ArmClients,
    ArmPolls,
    ArmTimeouts,
    FirstAnswer,
    arm_errors,
    wire_text,
)


class ArmRegistries:
    """`Registries` through ARM."""

    def __init__(self, clients: ArmClients) -> None:
        self.clients = clients
        self._polls = ArmPolls(clients)

    def registry(self, registry_id: str) -> Registry | None:
        from azure.core.exceptions import ResourceNotFoundError

        arm_id = ArmId.parse(registry_id)
        with arm_errors(f"reading container registry {arm_id.name}"):
            try:
                got = self._client(arm_id).registries.get(arm_id.resource_group, arm_id.name)
            except ResourceNotFoundError:
                return None
        return Registry(
            name=str(got.name or arm_id.name),
            provisioning_state=wire_text(got.provisioning_state) or None,
            login_server=got.login_server,
            location=got.location,
        )

    def import_image(self, registry_id: str, request: ImageImport) -> OperationHandle:
        from azure.mgmt.containerregistry.models import ImportImageParameters, ImportSource

        arm_id = ArmId.parse(registry_id)
        body = ImportImageParameters(
            source=ImportSource(
                resource_id=request.source_registry_id,
                registry_uri=request.source_login_server,
                source_image=request.source_image,
            ),
            target_tags=list(request.target_tags) or None,
            untagged_target_repositories=list(request.untagged_repositories) or None,
            mode=request.mode,
        )
        first = FirstAnswer()
        with arm_errors(
            f"importing {request.source_image} into container registry {arm_id.name}", write=True
        ):
            self._client(arm_id).registries.begin_import_image(
                arm_id.resource_group, arm_id.name, body, polling=first, **NO_RETRIES
            )
        return first.handle()

    def poll(self, handle: OperationHandle) -> OperationState:
        return self._polls.poll(handle)

    def _client(self, arm_id: ArmId) -> Any:
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        return self.clients.client(ContainerRegistryManagementClient, arm_id.subscription)


def acr_kinds(
    arm_url: str, credential: Any, check_seconds: float = 15.0, timeouts: ArmTimeouts = ARM_TIMEOUTS
) -> list[ActionKind]:
    """`acr.import`, through the ARM endpoint at arm_url (DR_ARM_URL)."""
    return [AcrImport(ArmRegistries(ArmClients(arm_url, credential, timeouts)), check_seconds)]
