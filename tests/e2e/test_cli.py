"""The `dr` command: explain a payload without state; refuse to serve on an invalid policy or settings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import REFDATA, ROOT
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


def serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """`dr serve` on a free port and a data dir of the test's: for the settings it must refuse."""
    return run_dr(
        "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), cwd=tmp_path, env=env
    )


def text(done: subprocess.CompletedProcess[bytes]) -> tuple[str, str]:
    """(stdout, stderr) as text."""
    return done.stdout.decode(), done.stderr.decode()


def test_explain_shows_signal_rules_severity_reasons_and_effects(tmp_path: Path) -> None:
    done = run_dr(
        "explain", str(UNAVAILABLE), "--json", cwd=tmp_path, env={"DR_DATA_DIR": str(tmp_path / "data")}
    )
    out, err = text(done)
    assert done.returncode == 0, err
    explained = json.loads(out)
    assert (explained["endpoint"], explained["notes"]) == ("POST /api/alerts", [])
    decision = explained["signals"][0]
    assert decision["signal"]["component"] == "cosmosdb" and decision["signal"]["tenant"] == "ikea"
    assert decision["rules_matched"] == ["cosmosdb-unavailable"]
    assert decision["severity"] == "sev1"
    assert decision["reasons"][0].startswith("Azure Monitor severity Sev1")
    assert [(e["kind"], e["event"]) for e in decision["planned_effects"]] == [
        ("notify", "opened"),
        ("page", "trigger"),
        ("act", "cosmosdb.failover"),
    ]
    assert [p.name for p in tmp_path.iterdir()] == [], "explain touches no state"


def test_explain_summarises_for_a_person_first(tmp_path: Path) -> None:
    done = run_dr("explain", str(UNAVAILABLE), cwd=tmp_path, env={"DR_DATA_DIR": str(tmp_path / "data")})
    out, err = text(done)
    assert done.returncode == 0, err
    assert out.splitlines()[0] == "An Azure Monitor alert: it belongs to POST /api/alerts"
    for line in (
        "  severity   sev1 (rule cosmosdb-unavailable)",
        "  why        Azure Monitor severity Sev1 → sev2 (baseline)",
        "  owner      tenant ikea · component cosmosdb · environment dev",
        "  page       PagerDuty trigger at sev1",
        "  card       Slack card: opened",
        "  action     cosmosdb.failover on cosmos-amicis-ikea-dev (mode approve)",
        "The full structure: dr explain FILE --json",
    ):
        assert line in out.splitlines(), line
    assert "inc-" not in out, "no invented incident id"
    assert not any(line.rstrip().endswith(":") for line in out.splitlines()), "no empty fields"


def test_explain_reads_stdin_and_says_when_it_was_meant_for_the_other_endpoint(tmp_path: Path) -> None:
    env = {"DR_DATA_DIR": str(tmp_path / "data")}
    alert = run_dr(
        "explain", "-", "--endpoint", "eventgrid", cwd=tmp_path, env=env, stdin=UNAVAILABLE.read_bytes()
    )
    out, err = text(alert)
    assert alert.returncode == 0, err
    assert "note: this is an Azure Monitor alert: send it to POST /api/alerts, not POST /api/eventgrid" in out
    event = (REFDATA / "event_grid" / "eg_redis_PatchingCompleted.json").read_bytes()
    events = run_dr("explain", "-", "--endpoint", "alerts", "--json", cwd=tmp_path, env=env, stdin=event)
    explained = json.loads(text(events)[0])
    assert explained["endpoint"] == "POST /api/eventgrid"
    assert explained["notes"][0].startswith(
        "this is an Event Grid delivery: send it to POST /api/eventgrid, not POST /api/alerts"
        " (which answers 422"
    )


def test_explain_says_when_an_event_carries_an_alert_or_only_parses_as_the_other_kind(tmp_path: Path) -> None:
    alert = json.loads(UNAVAILABLE.read_text())
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(
        json.dumps(
            {
                "specversion": "1.0",
                "id": "ce-1",
                "type": "Contoso.Monitoring.AlertForwarded",
                "source": "/contoso/forwarder",
                "time": "2026-11-25T10:00:00Z",
                "data": alert["data"],  # the alert's data part: it looks like an alert, and is an event
            }
        )
    )
    done = run_dr("explain", str(wrapped), "--json", cwd=tmp_path, env={"DR_DATA_DIR": str(tmp_path / "d")})
    explained = json.loads(text(done)[0])
    assert explained["endpoint"] == "POST /api/eventgrid"
    failed_as_alert, carries = explained["notes"]
    assert failed_as_alert.startswith(
        "it looks like an Azure Monitor alert but does not parse as one (missing_field"
    )
    assert failed_as_alert.endswith("it parses as an Event Grid delivery")
    assert carries.startswith("the data of event ce-1 is an Azure Monitor alert")

    inside = tmp_path / "inside.json"
    inside.write_text(
        json.dumps({"schemaId": "azureMonitorCommonAlertSchema", "data": [{"eventType": "X", "id": "1"}]})
    )
    refused = run_dr("explain", str(inside), cwd=tmp_path, env={"DR_DATA_DIR": str(tmp_path / "d")})
    assert refused.returncode == 1
    assert "its data holds Event Grid events" in text(refused)[1]


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
    done = serve(tmp_path, {"DR_POLICY_FILE": str(policy)})
    assert done.returncode == 2
    assert f"{policy}: rules[0] (cosmosdb-unavailable).severity: 'sev9'" in text(done)[1]


def test_serve_refuses_invalid_settings_without_echoing_a_secret(tmp_path: Path) -> None:
    secret = "e93facc04764012d7bfb002500d5d1a6"
    done = serve(tmp_path, {"PAGERDUTY_ROUTING_KEYS": f"ikea={secret},{secret}"})
    out, err = text(done)
    assert done.returncode == 2
    assert "PAGERDUTY_ROUTING_KEYS: item 2 is not selector=value" in err
    assert secret not in err + out


def test_serve_refuses_a_malformed_local_settings_file_without_echoing_it(tmp_path: Path) -> None:
    secret = "xoxb-secret-in-a-broken-file"
    (tmp_path / "local.settings.json").write_text('{"Values": {"SLACK_BOT_TOKEN": "' + secret + '",,}}')
    done = serve(tmp_path, {})
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


def test_serve_refuses_the_service_bus_queue_in_one_line(tmp_path: Path) -> None:
    """In Azure the Functions host receives from Service Bus; dr serve cannot, and says so."""
    key = "c2VjcmV0LXNhcy1rZXk="
    connection = f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={key}"
    done = serve(tmp_path, {"ServiceBusConnection": connection})
    out, err = text(done)
    assert done.returncode == 2, err
    assert err.startswith("dr: invalid settings: the queue is Service Bus (ServiceBusConnection is set)")
    assert "Traceback" not in err and key not in err + out


def test_a_store_that_refuses_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    key = "notbase64!!"
    connection = (
        f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={key};EndpointSuffix=core.windows.net"
    )
    done = run_dr(
        "status",
        "--data-dir",
        str(tmp_path / "data"),
        cwd=tmp_path,
        env={"DR_TABLES_CONNECTION_STRING": connection},
    )
    out, err = text(done)
    assert done.returncode == 1, err
    assert err.startswith("dr status: table storage refused the request") and "Traceback" not in err
    assert key not in err + out
