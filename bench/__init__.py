"""Benchmarks: cold start, an in-process alert storm, and the same storm over HTTP (`python -m bench`)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALERTS = 10_000
KEYS = 100  # correlation keys: the storm must open exactly this many incidents
