"""The `dr` command: explain a payload without state; refuse to serve on an invalid policy or settings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.e2e.conftest import DR, free_port

UNAVAILABLE = ROOT / "samples" / "cosmos-unavailable.json"


def run_dr(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed `dr` script (in a directory of the test's, away from any local.settings.json)."""
    return subprocess.run(
        [str(DR), *args],
        capture_output=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
        input=stdin,
    )


def text(done: subprocess.CompletedProcess[bytes]) -> tuple[str, str]:
    """(stdout, stderr) as text."""
    return done.stdout.decode(), done.stderr.decode()


def test_explain_shows_signal_rules_severity_reasons_and_effects(tmp_path: Path) -> None:
    done = run_dr("explain", str(UNAVAILABLE), cwd=tmp_path, env={"DR_DATA_DIR": str(tmp_path / "data")})
    out, err = text(done)
    assert done.returncode == 0, err
    decision = json.loads(out)["signals"][0]
    assert decision["signal"]["component"] == "cosmosdb" and decision["signal"]["tenant"] == "ikea"
    assert decision["rules_matched"] == ["cosmosdb-unavailable"]
    assert decision["severity"] == "sev1"
    assert decision["reasons"][0].startswith("Azure Monitor severity Sev1")
    assert [(e["kind"], e["event"]) for e in decision["planned_effects"]] == [
        ("notify", "opened"),
        ("page", "trigger"),
        ("act", "cosmosdb.regional_failover"),
    ]
    assert [p.name for p in tmp_path.iterdir()] == [], "explain touches no state"


def test_explain_names_bad_input(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"schemaId": "contoso"}')
    done = run_dr("explain", str(broken), cwd=tmp_path, env={"DR_DATA_DIR": str(tmp_path / "data")})
    _, err = text(done)
    assert done.returncode == 1
    assert "unsupported_schema" in err and "contoso" in err


def test_serve_refuses_an_invalid_policy_naming_the_place(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        (ROOT / "shared" / "triage" / "default_policy.toml")
        .read_text()
        .replace('severity = "sev1"', 'severity = "sev9"', 1)
    )
    done = run_dr(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        cwd=tmp_path,
        env={"DR_POLICY_FILE": str(policy)},
    )
    assert done.returncode == 2
    assert f"{policy}: rules[0] (cosmosdb-unavailable).severity: 'sev9'" in text(done)[1]


def test_serve_refuses_invalid_settings_without_echoing_a_secret(tmp_path: Path) -> None:
    secret = "e93facc04764012d7bfb002500d5d1a6"
    done = run_dr(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        cwd=tmp_path,
        env={"PAGERDUTY_ROUTING_KEYS": f"ikea={secret},{secret}"},
    )
    out, err = text(done)
    assert done.returncode == 2
    assert "PAGERDUTY_ROUTING_KEYS: item 2 is not selector=value" in err
    assert secret not in err + out


def test_serve_refuses_a_malformed_local_settings_file_without_echoing_it(tmp_path: Path) -> None:
    secret = "xoxb-secret-in-a-broken-file"
    (tmp_path / "local.settings.json").write_text('{"Values": {"SLACK_BOT_TOKEN": "' + secret + '",,}}')
    done = run_dr(
        "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), cwd=tmp_path, env={}
    )
    out, err = text(done)
    assert done.returncode == 2
    assert err.startswith("dr: invalid settings: ") and "local.settings.json: not valid JSON" in err
    assert "line 1 column" in err and secret not in err + out


def test_the_operator_commands_refuse_a_data_dir_that_is_not_there(tmp_path: Path) -> None:
    for command in (["status"], ["dead-letters"], ["replay", "abc"]):
        done = run_dr(*command, "--data-dir", str(tmp_path / "nowhere"), cwd=tmp_path, env={})
        assert done.returncode == 1, command
        assert f"no data dir at {tmp_path / 'nowhere'}" in text(done)[1]
    assert not (tmp_path / "nowhere").exists(), "and do not make one"
