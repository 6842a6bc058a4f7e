"""Cold start: `import function_app` against `import azure.functions` alone, each in a fresh interpreter."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from bench import REPO
from bench.report import BenchFailed, Figure

RUNS = 15
GOAL_RATIO = 1.5
TOP = 10
OURS = frozenset({"function_app", "responders", "shared"})
APP = "import function_app"
BASELINE = "import azure.functions"
TIMEOUT_SECONDS = 60  # one import; anything near this is a hang


@dataclass
class ImportTime:
    """One line of `-X importtime`: a module, its own and cumulative µs, and the µs beyond the baseline."""

    module: str
    depth: int  # nesting in the import tree, from the line's indentation
    self_us: int
    cumulative_us: int
    beyond_us: int = 0  # own + descendants' self time, counting only modules the baseline does not load

    @property
    def origin(self) -> str:
        """ "ours", "stdlib" or "third-party"."""
        top = self.module.split(".", 1)[0]
        if top in OURS:
            return "ours"
        return "stdlib" if top in sys.stdlib_module_names else "third-party"


def run(profile: bool = False) -> list[Figure]:
    """Median wall time of both imports over interleaved runs, and the app's costliest modules."""
    del profile  # -X importtime is this bench's profile; it is always printed
    env = _clean_env()
    for statement in (APP, BASELINE):  # warm the page cache and write .pyc files, untimed
        _timed(statement, env)
    app: list[float] = []
    base: list[float] = []
    for i in range(RUNS):
        # Alternate which goes first, so neither always runs right after the other's I/O.
        pair = ((APP, app), (BASELINE, base)) if i % 2 == 0 else ((BASELINE, base), (APP, app))
        for statement, samples in pair:
            samples.append(_timed(statement, env))
    app_ms, base_ms = statistics.median(app) * 1000, statistics.median(base) * 1000
    ratio = app_ms / base_ms
    print(f"  import times (ms) function_app: {_spread(app)}; azure.functions: {_spread(base)}")
    print(_beyond_baseline_report(env))
    return [
        Figure("coldstart", "import function_app (median)", f"{app_ms:.1f} ms"),
        Figure("coldstart", "import azure.functions (median)", f"{base_ms:.1f} ms"),
        Figure("coldstart", "ratio", f"{ratio:.2f}x", f"≤ {GOAL_RATIO}", ratio <= GOAL_RATIO),
    ]


def import_times(statement: str, env: dict[str, str]) -> list[ImportTime]:
    """Parse `python -X importtime -c STATEMENT`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise BenchFailed(f"{statement!r} failed:\n{done.stderr[-2000:]}")
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append(ImportTime(name.strip(), depth, int(own), int(cumulative)))
    return rows


def attribute_beyond(rows: list[ImportTime], baseline: set[str]) -> None:
    """Fill `beyond_us`: a module's cost without what the baseline import pays for anyway."""
    # -X importtime prints post-order: a module's line follows those of the modules it imported.
    pending: list[ImportTime] = []
    for row in rows:
        children_us = 0
        while pending and pending[-1].depth > row.depth:
            children_us += pending.pop().beyond_us
        row.beyond_us = children_us + (0 if row.module in baseline else row.self_us)
        pending.append(row)


def _beyond_baseline_report(env: dict[str, str]) -> str:
    """Modules that `import function_app` loads and `import azure.functions` does not."""
    already = {row.module for row in import_times(BASELINE, env)}
    rows = import_times(APP, env)
    attribute_beyond(rows, already)
    extra = [row for row in rows if row.module not in already]
    listed = sorted((r for r in extra if r.origin != "stdlib"), key=lambda r: r.beyond_us, reverse=True)
    stdlib = [r for r in extra if r.origin == "stdlib"]
    lines = [
        f"  -X importtime, top {TOP} of ours and third-party not loaded by {BASELINE!r}",
        "  (cum = own + imports, leaving out modules the baseline loads anyway):",
    ]
    lines += [
        f"    {r.beyond_us / 1000:7.2f} ms cum {r.self_us / 1000:6.2f} ms self  {r.origin:<11} {r.module}"
        for r in listed[:TOP]
    ]
    own_ms = sum(r.self_us for r in extra) / 1000
    std_ms = sum(r.self_us for r in stdlib) / 1000
    heaviest = ", ".join(
        f"{r.module} {r.self_us / 1000:.1f}"
        for r in sorted(stdlib, key=lambda r: r.self_us, reverse=True)[:5]
    )
    lines.append(
        f"  beyond azure.functions: {len(extra)} modules, {own_ms:.1f} ms self in all; of that stdlib "
        f"{len(stdlib)} modules {std_ms:.1f} ms (most self ms: {heaviest or 'none'})"
    )
    return "\n".join(lines)


def _timed(statement: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", statement], cwd=REPO, env=env, capture_output=True, timeout=TIMEOUT_SECONDS
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchFailed(f"{statement!r} failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def _clean_env() -> dict[str, str]:
    # Variables that would change what an import does or costs: keep them out of both sides.
    drop = {"PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE", "PYTHONVERBOSE", "PYTHONDEVMODE"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _spread(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"min {ms[0]:.1f} median {statistics.median(ms):.1f} max {ms[-1]:.1f}"
