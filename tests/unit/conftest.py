"""The responder's services on the fakes of `tests.fakes`, and delivery of queued messages by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.bootstrap import Services
from shared.settings import Settings
from tests.factories import FakeClock
from tests.fakes import FakeChat, FakePager, FakeQueue, FakeStore

RUNBOOKS = "https://runbooks.example/dr"
CHANNEL, CHANNEL_ID = "#incidents", "C0INCIDENTS"


@pytest.fixture
def clock() -> FakeClock:
    """2026-11-25T10:00Z until a test advances it."""
    return FakeClock()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def queue(clock: FakeClock) -> FakeQueue:
    return FakeQueue(clock)


@pytest.fixture
def pager() -> FakePager:
    return FakePager(route="ikea#fp-ikea")


@pytest.fixture
def chat() -> FakeChat:
    return FakeChat(channel_ids={CHANNEL: CHANNEL_ID})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default policy, a runbook base URL, one Slack channel; retries on the default backoff (2 s → 300 s)."""
    return Settings(data_dir=tmp_path, runbook_base_url=RUNBOOKS, slack_channel=CHANNEL)


@pytest.fixture
def app(
    settings: Settings, clock: FakeClock, store: FakeStore, queue: FakeQueue, pager: FakePager, chat: FakeChat
) -> Services:
    return Services(settings, clock=clock, store=store, queue=queue, pager=pager, chat=chat)
