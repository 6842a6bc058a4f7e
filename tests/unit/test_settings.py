"""Settings refuse, at start-up and by name, numbers that would make the responder misbehave."""

from __future__ import annotations

import pytest

from shared.errors import SettingsError
from shared.settings import Settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DR_QUEUE_MAX_DELIVERY_COUNT", "nan"),
        ("DR_QUEUE_MAX_DELIVERY_COUNT", "inf"),
        ("DR_QUEUE_MAX_DELIVERY_COUNT", "0"),  # every message dead-lettered on its first receive
        ("DR_QUEUE_LOCK_SECONDS", "0"),  # a message never really locked: two receivers at once
        ("DR_QUEUE_LOCK_SECONDS", "-1"),
        ("DR_RETRY_BASE_SECONDS", "-5"),  # a page that never gives up, retried in a tight loop
        ("DR_RETRY_BASE_SECONDS", "0"),
        ("DR_RETRY_MAX_SECONDS", "nan"),
    ],
)
def test_a_number_that_would_misbehave_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_the_defaults_are_valid() -> None:
    settings = Settings.from_env({})
    assert (settings.queue_lock_seconds, settings.queue_max_delivery_count) == (30.0, 10)
    assert (settings.retry_base_seconds, settings.retry_max_seconds) == (2.0, 300.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SLACK_ALLOWED_USERS", "u0allow"),  # Slack's ids are upper case: this matches nobody
        ("SLACK_ALLOWED_USERS", "U0ALLOW, @alice"),
        ("SLACK_ALLOWED_GROUPS", "U0NOTAGROUP"),
        ("SLACK_TEAM_IDS", "E0ENTERPRISE"),  # an org's id: commands name the workspace (T…)
    ],
)
def test_a_slack_id_that_could_never_match_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_slack_ids_are_read_as_a_list() -> None:
    settings = Settings.from_env(
        {"SLACK_ALLOWED_USERS": " U0A, W0B ,,", "SLACK_ALLOWED_GROUPS": "S0C", "SLACK_TEAM_IDS": "T0D,T0E"}
    )
    assert (settings.slack_allowed_users, settings.slack_allowed_groups) == (("U0A", "W0B"), ("S0C",))
    assert settings.slack_team_ids == ("T0D", "T0E")
