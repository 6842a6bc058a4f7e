"""Settings from the environment (app settings in Azure, env vars or local.settings.json locally)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MAX_BODY_BYTES = 1_048_576  # Azure Monitor payloads are a few KiB; anything over 1 MiB is refused


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read once per process."""

    data_dir: Path
    policy_file: str | None
    queue_lock_seconds: float
    queue_max_delivery_count: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read DR_* variables; defaults suit `dr serve` on a laptop."""
        env = os.environ if env is None else env
        return cls(
            data_dir=Path(env.get("DR_DATA_DIR", ".data")),
            policy_file=env.get("DR_POLICY_FILE") or None,
            queue_lock_seconds=float(env.get("DR_QUEUE_LOCK_SECONDS", "30")),
            queue_max_delivery_count=int(env.get("DR_QUEUE_MAX_DELIVERY_COUNT", "10")),
        )
