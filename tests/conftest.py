"""Shared fixtures: where the reference payloads are, and a fresh data dir per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.azurite import running_azurite

ROOT = Path(__file__).resolve().parents[1]
# ../shared/refdata beside the checkout (CI lays a copy there too); DR_REFDATA overrides.
REFDATA = Path(os.environ.get("DR_REFDATA", ROOT.parent / "shared" / "refdata"))


@pytest.fixture
def refdata() -> Path:
    """The reference payloads from Microsoft, PagerDuty and Slack."""
    assert REFDATA.is_dir(), f"reference data not found at {REFDATA}; set DR_REFDATA"
    return REFDATA


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """A real Azurite Table service for the whole session: its connection string."""
    with running_azurite() as connection:
        yield connection
