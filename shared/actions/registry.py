"""The registered actions by name, and what the policy validator asks of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.actions.kind import ActionKind
from shared.errors import PolicyError
from shared.triage.policy import Policy


class Registry:
    """name → ActionKind; the policy may name only what is registered here."""

    def __init__(self, kinds: Iterable[ActionKind] = ()) -> None:
        self._kinds: dict[str, ActionKind] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"action {kind.name!r} is registered twice")
            self._kinds[kind.name] = kind

    def get(self, name: str) -> ActionKind | None:
        """The action of that name, if registered."""
        return self._kinds.get(name)

    def names(self) -> tuple[str, ...]:
        """Every registered name, sorted."""
        return tuple(sorted(self._kinds))

    @property
    def kinds(self) -> Mapping[str, ActionKind]:
        """Read-only view by name."""
        return dict(self._kinds)


def validate_actions(policy: Policy, registry: Registry) -> None:
    """Refuse a policy that names an action, or gives it a parameter, the registry does not know."""
    for plan in policy.actions():
        kind = registry.get(plan.action)
        if kind is None:
            known = ", ".join(registry.names()) or "none"
            raise PolicyError(
                f"{policy.source}: {plan.where}.action: {plan.action!r} is not an action (known: {known})"
            )
        for name, value in plan.params.items():
            param = kind.params.get(name)
            if param is None:
                known = ", ".join(sorted(kind.params)) or "none"
                raise PolicyError(
                    f"{policy.source}: {plan.where}.{name}: {plan.action} has no parameter {name!r}"
                    f" (it has: {known})"
                )
            if not isinstance(value, param.kind) or (isinstance(value, bool) and param.kind is not bool):
                raise PolicyError(
                    f"{policy.source}: {plan.where}.{name}: expected {param.kind.__name__}, got {value!r}"
                )
        for name, param in kind.params.items():
            if param.required and name not in plan.params:
                raise PolicyError(f"{policy.source}: {plan.where}: {plan.action} needs {name} ({param.help})")
