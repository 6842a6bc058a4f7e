"""Each test gets the Function App pointed at a fresh data dir, with a clock it moves by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.bootstrap import Services
from shared.settings import Settings
from tests.action_kinds import PretendCache
from tests.factories import FakeClock
from tests.fakes import FakeChat, FakePager


@pytest.fixture
def clock() -> FakeClock:
    """The app's clock: 2026-11-25T10:00Z until a test advances it."""
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """DR_DATA_DIR of the app under test."""
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def app(data_dir: Path, clock: FakeClock) -> Iterator[Services]:
    """The services every registered function reaches through `services()`."""
    replacement = Services(
        Settings.from_env({"DR_DATA_DIR": str(data_dir), "DR_QUEUE_MAX_DELIVERY_COUNT": "3"}), clock=clock
    )
    bootstrap.reset(replacement)
    yield replacement
    bootstrap.reset()


@pytest.fixture
def world() -> PretendCache:
    """What the pretend failover of `tests.action_kinds` acts on."""
    return PretendCache()


@pytest.fixture
def pager() -> FakePager:
    """The pager an action test's app pages through."""
    return FakePager()


@pytest.fixture
def chat() -> FakeChat:
    """The chat an action test's app posts to."""
    return FakeChat()


@pytest.fixture
def acting(
    data_dir: Path, clock: FakeClock, world: PretendCache, pager: FakePager, chat: FakeChat
) -> Iterator[Callable[..., Services]]:
    """Builds (and installs) the app with the pretend failover under a policy the test chooses."""
    from tests.functions.action_harness import AUTO, services_for, use

    def build(action: str = AUTO, **options: Any) -> Services:
        return use(services_for(data_dir, clock, world, pager, chat, action, **options))

    yield build
    bootstrap.reset()
