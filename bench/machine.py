"""What the figures were measured on: CPU model, cores and Python."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return platform.processor() or "unknown"
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def cores() -> str:
    """Cores this process may run on, and the machine's total when they differ."""
    total = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    return f"{usable}" if usable == total else f"{usable} usable of {total}"


def describe() -> str:
    """One line naming the machine and interpreter."""
    version = platform.python_version()
    return f"machine: {cpu_model()}, {cores()} cores, Python {version} ({sys.executable})"
