"""Azure resource ids, and the tenant / environment / component a resource belongs to."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)"
    r"(?:/resourceGroups/(?P<rg>[^/]+))?"
    r"(?:/providers/(?P<ns>[^/]+)/(?P<rest>.+))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ResourceId:
    """A parsed ARM resource id; parts are "" where the id does not have them."""

    raw: str
    subscription: str = ""
    resource_group: str = ""
    provider: str = ""  # e.g. "Microsoft.DocumentDB/databaseAccounts" (child types joined with "/")
    name: str = ""  # the last name in the id

    @property
    def type(self) -> str:
        """Provider type in lower case, the form policy files use."""
        return self.provider.lower()


def parse_resource_id(raw: str) -> ResourceId:
    """Parse an ARM id; a string that is not one keeps only `raw`."""
    text = (raw or "").strip().rstrip("/")
    match = _ID.match(text)
    if not match:
        return ResourceId(raw=text)
    provider, name = match["ns"] or "", ""
    if match["rest"]:
        parts = match["rest"].split("/")
        types, names = parts[0::2], parts[1::2]
        provider = "/".join([match["ns"], *types])
        name = names[-1] if names else ""
    elif match["rg"]:
        provider, name = "Microsoft.Resources/resourceGroups", match["rg"]
    else:
        provider, name = "Microsoft.Resources/subscriptions", match["sub"]
    return ResourceId(
        raw=text,
        subscription=match["sub"],
        resource_group=match["rg"] or "",
        provider=provider,
        name=name,
    )


@dataclass(frozen=True)
class Ownership:
    """Who a resource belongs to; "" where unknown."""

    tenant: str = ""
    environment: str = ""
    component: str = ""


# Tells intake who owns a resource, from its id and its tags (built from the policy in bootstrap).
Owner = Callable[[ResourceId, Mapping[str, str]], Ownership]


def ownership(
    resource: ResourceId,
    tags: Mapping[str, str],
    naming: re.Pattern[str],
    components_by_type: dict[str, str],
) -> Ownership:
    """Tags win; else the naming convention on the resource name, then on its resource group."""
    lowered = {k.lower(): v for k, v in tags.items() if isinstance(v, str)}
    named = _from_name(resource.name, naming) or _from_name(resource.resource_group, naming) or {}
    component = lowered.get("component") or components_by_type.get(resource.type, "")
    return Ownership(
        tenant=(lowered.get("tenant") or named.get("tenant", "")).lower(),
        environment=(lowered.get("environment") or lowered.get("env") or named.get("env", "")).lower(),
        component=component.lower(),
    )


def _from_name(name: str, naming: re.Pattern[str]) -> dict[str, str] | None:
    match = naming.match(name.lower()) if name else None
    return {k: v for k, v in match.groupdict().items() if v} if match else None
