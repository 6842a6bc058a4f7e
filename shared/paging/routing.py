"""Where a page or a card goes: PagerDuty routing keys and Slack channels by tenant and severity."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import SettingsError

DEFAULT = "default"


@dataclass(frozen=True)
class RoutingTable:
    """Selectors to targets; the most specific selector that fits wins.

    Selectors: "ikea/sev1" (tenant and severity), "ikea" (tenant), "*/sev1" (severity), "default".
    """

    targets: Mapping[str, str]

    @classmethod
    def parse(cls, default: str | None, spec: str | None, setting: str) -> RoutingTable:
        """From a default and "selector=target,selector=target"; ValueError names the setting."""
        targets = {DEFAULT: default} if default else {}
        for position, item in enumerate((spec or "").split(","), start=1):
            if not item.strip():
                continue
            selector, sep, target = item.partition("=")
            if not sep or not selector.strip() or not target.strip():
                # The value may be a routing key: name the place, never echo it.
                raise SettingsError(f"{setting}: item {position} is not selector=value")
            targets[selector.strip().lower()] = target.strip()
        return cls(targets)

    def route(self, tenant: str, severity: str) -> str | None:
        """The selector that fits a tenant and severity, or None when nothing is configured."""
        for selector in (f"{tenant}/{severity}", tenant, f"*/{severity}", DEFAULT):
            if selector in self.targets:
                return selector
        return None

    def target(self, selector: str) -> str | None:
        """The target (routing key, channel) of a selector."""
        return self.targets.get(selector)

    def with_fingerprint(self, fingerprint: str) -> str | None:
        """The target whose fingerprint this is, whatever selector it now has."""
        return next((t for t in self.targets.values() if target_fingerprint(t) == fingerprint), None)

    def __bool__(self) -> bool:
        return bool(self.targets)

    def __repr__(self) -> str:
        # Routing keys are secrets: show the selectors only.
        return f"RoutingTable(selectors={sorted(self.targets)})"


def target_fingerprint(target: str) -> str:
    """A short, one-way name for a target: stored with an incident instead of a routing key."""
    return hashlib.sha256(target.encode()).hexdigest()[:12]
