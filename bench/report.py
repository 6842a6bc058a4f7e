"""Figures, the summary table, and profiler hotspots as file:line."""

from __future__ import annotations

import pstats
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bench import REPO

_LIB = re.compile(r"^.*/lib/python3\.\d+/(?:site-packages/)?")


@dataclass(frozen=True)
class Figure:
    """One measured figure; `met` is None when it has no goal."""

    bench: str
    name: str
    value: str
    goal: str = ""
    met: bool | None = None


class BenchFailed(Exception):
    """A correctness check failed (wrong incident count, a non-202 answer): the figures are void."""


def show(figures: Sequence[Figure]) -> None:
    """Print figures as they come, one per line."""
    for f in figures:
        goal = f"  (goal {f.goal}: {'met' if f.met else 'NOT MET'})" if f.met is not None else ""
        print(f"  {f.name}: {f.value}{goal}", flush=True)


def table(figures: Sequence[Figure]) -> str:
    """The summary table of every figure."""
    rows = [("bench", "figure", "value", "goal", "")]
    rows += [
        (f.bench, f.name, f.value, f.goal, "" if f.met is None else ("ok" if f.met else "BELOW GOAL"))
        for f in figures
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def hotspots(stats: pstats.Stats, limit: int = 15) -> str:
    """The top functions by own time, then by cumulative time within our code, as file:line."""
    entries = stats.stats  # type: ignore[attr-defined]  # pstats keeps its table untyped
    total = sum(tt for _, _, tt, _, _ in entries.values()) or 1.0
    rows = [(tt, ct, nc, func) for func, (_, nc, tt, ct, _) in entries.items()]
    own = sorted(rows, key=lambda r: r[0], reverse=True)[:limit]
    ours = sorted((r for r in rows if _is_ours(r[3][0])), key=lambda r: r[1], reverse=True)[:limit]
    out = [f"  by own time (total profiled {total:.2f} s):"]
    out += [_line(r, total) for r in own]
    out.append("  our functions by cumulative time:")
    out += [_line(r, total) for r in ours]
    return "\n".join(out)


def _line(row: tuple[float, float, int, tuple[str, int, str]], total: float) -> str:
    tt, ct, nc, (path, line, name) = row
    where = f"{_short(path)}:{line}({name})" if line else f"{path}({name})"
    return f"    {tt:7.3f}s own {100 * tt / total:5.1f}%  {ct:7.3f}s cum  {nc:>8} calls  {where}"


def _is_ours(path: str) -> bool:
    return path.startswith(str(REPO)) and "/.venv/" not in path and "/bench/" not in path


def _short(path: str) -> str:
    if path.startswith(str(REPO) + "/") and "/site-packages/" not in path:
        return path.removeprefix(str(REPO) + "/")
    return _LIB.sub("", path)  # stdlib and site-packages paths: the module path is what matters
