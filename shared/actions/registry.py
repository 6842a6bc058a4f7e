"""The registered actions by name, and what the policy validator asks of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.actions.kind import ActionKind


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
