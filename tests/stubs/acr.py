"""Container registries on the ARM stub: registries by id, the images they hold, and importImage as an LRO.

    images = serve_acr(arm)                          # the POST …/registries/R/importImage handler
    container_registry(arm, TARGET_ID, "westeurope")
    container_registry(arm, SOURCE_ID, "northeurope")
    images.push(SOURCE_ID, "shop/cart:1.4.2")

importImage as ARM answers it: 404 `ResourceNotFound` for an unknown registry, 400
`InvalidParameters` for a body without `source.sourceImage` or with both or neither of
`resourceId` and `registryUri`; otherwise 202 with Azure-AsyncOperation and Location. The operation
then fails with `ImageNotFound` when the source has no such image, or `Conflict` when mode is
NoForce and a target tag exists already (before anything is copied); else it copies the image's
digest to each target tag once it succeeds.
"""

from __future__ import annotations

import hashlib
import re
import threading

from tests.stubs.arm import JSON, ArmStub, arm_error
from tests.stubs.base import Recorded, Reply

_REGISTRIES = (
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/registries/[^/]+"
)


def container_registry(
    arm: ArmStub, registry_id: str, location: str, *, state: str = "Succeeded", sku: str = "Premium"
) -> JSON:
    """A registry as `registries.get()` returns it."""
    name = registry_id.rstrip("/").rsplit("/", 1)[-1]
    return arm.put(
        registry_id,
        {
            "location": location,
            "sku": {"name": sku, "tier": sku},
            "properties": {
                "loginServer": f"{name.lower()}.azurecr.io",
                "provisioningState": state,
                "adminUserEnabled": False,
                "publicNetworkAccess": "Enabled",
            },
        },
    )


class AcrImages:
    """Which tags point at which digests, per registry id or login server (lower case)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tags: dict[str, dict[str, str]] = {}

    def push(self, registry: str, image: str) -> str:
        """Put `repo:tag` in a registry (by ARM id or login server); returns its digest."""
        digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
        with self._lock:
            self._tags.setdefault(registry.lower(), {})[image] = digest
        return digest

    def tags(self, registry: str) -> dict[str, str]:
        """`repo:tag` → digest, in a registry."""
        with self._lock:
            return dict(self._tags.get(registry.lower(), {}))

    def find(self, registry: str, image: str) -> str | None:
        """The digest of `repo:tag` or `repo@digest` in a registry, or None."""
        tags = self.tags(registry)
        if "@" in image:
            return image.split("@", 1)[1] if image.split("@", 1)[1] in tags.values() else None
        return tags.get(image)

    def tag(self, registry: str, image: str, digest: str) -> None:
        """Point a tag at a digest."""
        with self._lock:
            self._tags.setdefault(registry.lower(), {})[image] = digest


def serve_acr(arm: ArmStub) -> AcrImages:
    """Answer importImage on the stub; returns the images model it copies between."""
    images = AcrImages()

    def import_image(request: Recorded, match: re.Match[str]) -> Reply:
        registry_id = request.path.rsplit("/", 1)[0]
        if arm.get(registry_id) is None:
            name = registry_id.rsplit("/", 1)[-1]
            return arm_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.ContainerRegistry/registries/{name}' was not found.",
            )
        body: JSON = request.json if isinstance(request.json, dict) else {}
        source: JSON = body.get("source") or {}
        image = source.get("sourceImage")
        origins = [o for o in (source.get("resourceId"), source.get("registryUri")) if o]
        if not image or len(origins) != 1:
            return arm_error(
                400,
                "InvalidParameters",
                "sourceImage and exactly one of source.resourceId and source.registryUri are required.",
            )
        origin = str(origins[0])
        tags: list[str] = body.get("targetTags") or []
        written = tags + (body.get("untaggedTargetRepositories") or [])
        digest = images.find(origin, str(image))
        error: tuple[str, str] | None = None
        existing = [t for t in tags if t in images.tags(registry_id)]
        if digest is None:
            error = ("ImageNotFound", f"Image '{image}' not found in source registry '{origin}'.")
        elif body.get("mode", "NoForce") == "NoForce" and existing:
            error = ("Conflict", f"Tag {existing[0]} already exists in target registry.")

        def effect() -> None:
            for target in written:
                images.tag(registry_id, target if ":" in target else f"{target}@{digest}", str(digest))

        return arm.accepted(arm.start_operation(request, effect=effect, error=error))

    arm.on("POST", _REGISTRIES + "/importImage", import_image)
    return images
