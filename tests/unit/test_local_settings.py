"""local.settings.json read as the Functions Core Tools read it, and said where each setting came from."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from shared.errors import SettingsError
from shared.localhost.local_settings import (
    DEFAULTS,
    HOST_SETTINGS,
    apply_local_settings,
    banner_lines,
    non_default_settings,
)
from shared.settings import Settings
from tests.conftest import ROOT

SECRET = "xoxb-a-secret-that-must-never-be-shown"


def _write(directory: Path, document: object) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    (directory / "local.settings.json").write_text(text)


def test_the_defaults_are_the_sample_files_names_and_what_settings_reads() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert set(sample) - HOST_SETTINGS == set(DEFAULTS)
    baseline = Settings.from_env({})
    for name, default in DEFAULTS.items():
        # A default written out explicitly reads the same as no setting at all.
        assert Settings.from_env({name: default}) == baseline, name


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "IsEncrypted": False,
            "Values": {"SLACK_BOT_TOKEN": SECRET, "SLACK_CHANNEL": "C0FILE", "DR_RETRY_BASE_SECONDS": 1},
        },
    )
    environ = {"SLACK_CHANNEL": "C0ENV"}
    local = apply_local_settings(tmp_path, environ)
    assert environ == {"SLACK_CHANNEL": "C0ENV", "SLACK_BOT_TOKEN": SECRET, "DR_RETRY_BASE_SECONDS": "1"}
    assert local.applied == {"SLACK_BOT_TOKEN", "DR_RETRY_BASE_SECONDS"}
    assert (local.source("SLACK_BOT_TOKEN"), local.source("SLACK_CHANNEL")) == (
        "local.settings.json",
        "environment",
    )


def test_no_file_changes_nothing(tmp_path: Path) -> None:
    environ = {"X": "1"}
    local = apply_local_settings(tmp_path, environ)
    assert (local.path, local.applied, environ) == (None, frozenset(), {"X": "1"})


def test_the_banner_names_sources_of_non_defaults_and_never_a_value(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "Values": {
                "FUNCTIONS_WORKER_RUNTIME": "python",
                "SLACK_BOT_TOKEN": SECRET,
                "DR_QUEUE_LOCK_SECONDS": "30.0",  # the default, written differently
                "DR_LOG_LEVEL": "info",
                "DR_TABLES_CONNECTION_STRING": "AccountKey=tables-secret",  # Azurite, say
                "SLACK_BOT_TOKN": "typo",
            }
        },
    )
    environ = {"PAGERDUTY_ROUTING_KEY": "e93facc04764012d7bfb002500d5d1a6", "PATH": "/bin"}
    local = apply_local_settings(tmp_path, environ)
    assert non_default_settings(environ) == [
        "DR_TABLES_CONNECTION_STRING",
        "PAGERDUTY_ROUTING_KEY",
        "SLACK_BOT_TOKEN",
    ]
    lines = banner_lines(local, {**environ, "DR_DATA_DIR": "/srv/dr"}, {"DR_DATA_DIR": "--data-dir"})
    text = "\n".join(lines)
    assert "    DR_DATA_DIR                  --data-dir" in lines
    assert "    PAGERDUTY_ROUTING_KEY        environment" in lines
    assert "    SLACK_BOT_TOKEN              local.settings.json" in lines
    assert "    DR_TABLES_CONNECTION_STRING  local.settings.json" in lines
    assert "not settings of the responder: SLACK_BOT_TOKN" in text
    assert (
        "tables-secret" not in text
        and SECRET not in text
        and "e93facc" not in text
        and "/srv/dr" not in text
        and "typo" not in text
    )


def test_all_defaults_say_so(tmp_path: Path) -> None:
    local = apply_local_settings(tmp_path, {})
    assert banner_lines(local, {"DR_DATA_DIR": ".data"}) == ["  settings: all at their defaults"]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ('{"Values": {"SLACK_BOT_TOKEN": "' + SECRET + '",}', "not valid JSON: Expecting property name"),
        ("[]", "expected a JSON object with a Values object"),
        ({"Values": ["SLACK_BOT_TOKEN"]}, "Values must be an object"),
        ({"Values": {"SLACK_CHANNELS": {"ikea": "C1"}}}, "Values.SLACK_CHANNELS must be a string"),
        ({"Values": {"DR_SQLITE_SYNCHRONOUS": True}}, "Values.DR_SQLITE_SYNCHRONOUS must be a string"),
        ({"IsEncrypted": True, "Values": {"SLACK_BOT_TOKEN": SECRET}}, "IsEncrypted is true"),
        (b"\xff\xfe".decode("latin-1"), "not valid JSON"),
    ],
)
def test_a_malformed_file_is_named_without_its_values(tmp_path: Path, document: object, problem: str) -> None:
    _write(tmp_path, document)
    with pytest.raises(SettingsError) as raised:
        apply_local_settings(tmp_path, {})
    assert problem in str(raised.value) and "local.settings.json" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_null_values_are_skipped_as_core_tools_does(tmp_path: Path) -> None:
    _write(tmp_path, {"Values": {"SLACK_CHANNEL": None}})
    environ: dict[str, str] = {}
    assert apply_local_settings(tmp_path, environ).applied == frozenset() and environ == {}


def test_settings_read_the_applied_values(tmp_path: Path) -> None:
    _write(tmp_path, {"Values": {"DR_RETRY_BASE_SECONDS": "0.5", "SLACK_CHANNEL": "C0FILE"}})
    environ: dict[str, str] = {}
    apply_local_settings(tmp_path, environ)
    assert Settings.from_env(environ) == replace(
        Settings.from_env({}), retry_base_seconds=0.5, slack_channel="C0FILE"
    )
