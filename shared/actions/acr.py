"""Container image import: `acr.import` copies an image into a registry from another one, server side.

The usual DR use: the primary region's registry is down or lost an image, and a peer registry (or
a public one) still holds it. `importImage` is an ARM long operation: `execute` starts it and keeps
its polling URLs in the continuation, and each `check` polls them once. With mode NoForce (the
default) an existing target tag fails the import before anything is copied; `force = true` overwrites.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.actions.arm import ArmId, ArmOperations, OperationHandle, watch
from shared.actions.kind import ActionFailed, Context, Param, Precheck, Progress, Step, Target, Verdict

REGISTRY_TYPE = "microsoft.containerregistry/registries"
READY = "Succeeded"  # a registry's provisioningState while it serves
# repo[/path]:tag or repo[/path]@sha256:<64 hex>, as the distribution spec names them.
_REPOSITORY = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_IMAGE = re.compile(rf"({_REPOSITORY})(?::([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})|@(sha256:[0-9a-f]{{64}}))\Z")
_LOGIN_SERVER = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?\Z")


@dataclass(frozen=True)
class Image:
    """`repo:tag` or `repo@sha256:…`, parsed."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, what: str = "image") -> Image:
        """Parse an image reference; ActionFailed naming it when it is not `repo:tag` or `repo@sha256:…`."""
        m = _IMAGE.match(text.strip())
        if not m:
            raise ActionFailed(f"{what} {text!r} is not repo:tag or repo@sha256:<digest>")
        return cls(m[1], m[2], m[3])

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}" if self.digest else f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Registry:
    """What the import reads of `registries.get()`."""

    name: str
    provisioning_state: str | None
    login_server: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class ImageImport:
    """One `importImage` request: where from, and the tags (or untagged repositories) it writes."""

    source_image: str  # repo:tag or repo@digest, in the source registry
    source_registry_id: str | None  # an ACR by ARM id (ImportSource.resource_id) …
    source_login_server: str | None  # … or any registry by host (ImportSource.registry_uri)
    target_tags: tuple[str, ...]
    untagged_repositories: tuple[str, ...]
    force: bool

    @property
    def mode(self) -> str:
        """ImportMode as ARM spells it."""
        return "Force" if self.force else "NoForce"


class Registries(ArmOperations, Protocol):
    """The few calls the import makes (azure-mgmt-containerregistry in the adapter)."""

    def registry(self, registry_id: str) -> Registry | None:
        """`registries.get()`; None when ARM has no such registry."""
        ...

    def import_image(self, registry_id: str, request: ImageImport) -> OperationHandle:
        """Start `registries.begin_import_image` once; the handle is empty when ARM finished at once."""
        ...


def plan_import(target: Target) -> tuple[ArmId, ImageImport]:
    """The registry `target.resource` names and the import its params ask for."""
    registry = _registry_id(target.resource, "the target registry")
    source = Image.parse(str(target.param("image") or ""))
    source_id = str(target.param("source_registry") or "").strip() or None
    login_server = str(target.param("source_login_server") or "").strip().lower() or None
    if (source_id is None) == (login_server is None):
        raise ActionFailed(
            "acr.import needs exactly one of source_registry (an ARM id) or source_login_server"
        )
    if source_id is not None:
        source_id = str(_registry_id(source_id, "source_registry"))
    if login_server is not None and not _LOGIN_SERVER.match(login_server):
        raise ActionFailed(f"source_login_server {login_server!r} is not a registry host name")
    wanted = str(target.param("target") or "").strip()
    written = Image.parse(wanted, "target") if wanted else source
    if written.digest:
        if wanted:
            raise ActionFailed(f"target {wanted!r} names a digest: give a tag, or leave target out")
        tags: tuple[str, ...] = ()
        untagged: tuple[str, ...] = (source.repository,)  # a digest copies the manifest, untagged
    else:
        tags, untagged = (str(written),), ()
    request = ImageImport(
        source_image=str(source),
        source_registry_id=source_id,
        source_login_server=login_server,
        target_tags=tags,
        untagged_repositories=untagged,
        force=_flag(target.param("force", False)),
    )
    return registry, request


class AcrImport:
    """Import an image into a container registry from a peer registry (server side, no docker pull)."""

    name = "acr.import"
    default_mode = "approve"
    timeout_minutes = 30  # a large multi-arch image takes minutes to copy across regions
    params: Mapping[str, Param] = {
        "image": Param(required=True, help="the source image, repo:tag or repo@sha256:… (template)"),
        "source_registry": Param(help="the source registry's ARM id (a geo peer, another ACR)"),
        "source_login_server": Param(help="or the source registry's host (docker.io, x.azurecr.io)"),
        "target": Param(help="the repo:tag written (template); default: the source image's"),
        "force": Param(kind=bool, help="overwrite an existing target tag (mode Force); default false"),
    }

    def __init__(self, registries: Registries, check_seconds: float = 15.0) -> None:
        self.registries = registries
        self.check_seconds = check_seconds

    def describe(self, target: Target) -> str:
        registry, request = plan_import(target)
        written = ", ".join(request.target_tags or request.untagged_repositories)
        return (
            f"Import {request.source_image} from {_source_name(request)} into ACR {registry.name} "
            f"as {written} ({request.mode})"
        )

    def command(self, target: Target) -> str:
        registry, request = plan_import(target)
        words = ["az acr import", f"--name {registry.name}"]
        if request.source_registry_id:
            words += [f"--source {request.source_image}", f"--registry {request.source_registry_id}"]
        else:
            words.append(f"--source {request.source_login_server}/{request.source_image}")
        words += [f"--image {tag}" for tag in request.target_tags]
        words += [f"--repository {repo}" for repo in request.untagged_repositories]
        if request.force:
            words.append("--force")
        return " ".join(words)

    def precondition(self, target: Target, context: Context) -> Precheck:
        registry_id, request = plan_import(target)
        if context.started is not None:
            # Nothing ARM shows tells an import under way or done from one never taken (the tags
            # are data-plane), and a second import on a maybe is never sent.
            written = ", ".join(request.target_tags or request.untagged_repositories)
            tags = [Image.parse(tag).repository for tag in request.target_tags]
            repository = (tags or list(request.untagged_repositories))[0]
            return Precheck(
                Verdict.REFUSE,
                f"the answer to the import of {request.source_image} into {registry_id.name} was lost "
                f"(or its worker stopped) and I cannot tell whether it took effect: look at {written} "
                f"(`az acr repository show-tags --name {registry_id.name} --repository {repository}`) "
                "and the registry's activity log, then import it by hand if it is missing",
            )
        registry = self.registries.registry(str(registry_id))
        if unready := _unready("target", registry_id.name, registry):
            return Precheck(Verdict.REFUSE, unready)
        assert registry is not None
        source = f"from {request.source_login_server} (not an ARM resource: not checked)"
        if request.source_registry_id:
            peer = self.registries.registry(request.source_registry_id)
            if unready := _unready("source", _source_name(request), peer):
                return Precheck(Verdict.REFUSE, unready)
            assert peer is not None
            source = f"from {peer.name} ({peer.login_server}, {peer.location}: {peer.provisioning_state})"
        written = ", ".join(request.target_tags or request.untagged_repositories)
        detail = (
            f"import {request.source_image} {source} into {registry.name} as {written}, mode {request.mode}"
        )
        if not request.force:
            detail += " (an existing target tag fails the import; force = true overwrites)"
        return Precheck(Verdict.PROCEED, detail)

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        registry_id, request = plan_import(target)
        handle = self.registries.import_image(str(registry_id), request)
        what = f"import of {request.source_image} into {registry_id.name}"
        if not handle:
            return Step(Progress.DONE, f"{what}: finished at once")
        return Step(Progress.PENDING, f"{what}: started", {"operation": dict(handle)}, self.check_seconds)

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        registry_id, request = plan_import(target)
        what = f"import of {request.source_image} into {registry_id.name}"
        step = watch(self.registries, continuation, what, {}, self.check_seconds)
        return step if step is not None else Step(Progress.DONE, f"{what}: succeeded")


def _unready(role: str, name: str, registry: Registry | None) -> str | None:
    """Why a registry cannot take part in an import, or None when it can."""
    if registry is None:
        return f"{role} registry {name} does not exist"
    if registry.provisioning_state != READY:
        return f"{role} registry {registry.name} is {registry.provisioning_state}, not {READY}"
    return None


def _registry_id(text: str, what: str) -> ArmId:
    arm_id = ArmId.parse(text)
    if arm_id.type != REGISTRY_TYPE:
        raise ActionFailed(f"{what} {text!r} is a {arm_id.type}, not a container registry")
    return arm_id


def _flag(value: Any) -> bool:
    """A bool param (a literal; "true"/"false" accepted from a template)."""
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "false"):
        return str(value).strip().lower() == "true"
    raise ActionFailed(f"force must be true or false, not {value!r}")


def _source_name(request: ImageImport) -> str:
    if request.source_registry_id:
        return ArmId.parse(request.source_registry_id).name
    return str(request.source_login_server)
