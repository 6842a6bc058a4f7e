"""Azure Functions route templates ("incidents/{id}", "files/{*path}") as regular expressions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\??\}")


@dataclass(frozen=True)
class Route:
    """One HTTP-triggered function as the host routes to it."""

    pattern: re.Pattern[str]
    template: str
    methods: frozenset[str]
    auth_level: str  # "anonymous" | "function" | "admin"
    function_name: str
    handler: Any

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters if the path (after /api/) matches."""
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


def compile_template(template: str) -> re.Pattern[str]:
    """ "incidents/{id}" → ^incidents/(?P<id>[^/]+)$, a catch-all {*rest} taking slashes too."""
    out, pos = [], 0
    for param in _PARAM.finditer(template):
        out.append(re.escape(template[pos : param.start()]))
        catch_all, name = param.group(1), param.group(2)
        out.append(f"(?P<{name}>.*)" if catch_all else f"(?P<{name}>[^/]+)")
        pos = param.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out).strip("/") or "", re.IGNORECASE)
