"""The Terraform under infra/, read with python-hcl2 into plain dicts (quotes and ${} unwrapped)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import hcl2

INFRA = Path(__file__).resolve().parents[2] / "infra"


def tf_files() -> list[Path]:
    """Every .tf file of the configuration (one module, no subdirectories)."""
    return sorted(INFRA.glob("*.tf"))


def plain(value: Any) -> Any:
    """python-hcl2 8 keeps HCL's quotes on labels and strings and wraps expressions in ${}: drop both."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if k not in ("__comments__", "__is_block__")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
    return value


@cache
def configuration() -> dict[str, Any]:
    """All files merged: {"resource": {type: {name: body}}, "variable": {...}, "locals": {...}, ...}."""
    merged: dict[str, Any] = {}
    for path in tf_files():
        with path.open() as f:
            document = plain(hcl2.load(f))
        for kind, blocks in document.items():
            if kind == "locals":
                for block in blocks:
                    merged.setdefault("locals", {}).update(block)
                continue
            for block in blocks:
                for label, body in block.items():
                    target = merged.setdefault(kind, {})
                    if kind in ("resource", "data"):
                        for name, content in body.items():
                            target.setdefault(label, {})[name] = content
                    else:
                        target[label] = body
    return merged


def resource(kind: str, name: str) -> dict[str, Any]:
    """One resource block's body."""
    return configuration()["resource"][kind][name]
