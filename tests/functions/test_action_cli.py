"""`dr actions`, `dr approve|deny`, `dr pause|resume` as real processes on the data dir the in-process
app writes: what a person does at the command line reaches the pipeline, and says who did it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.bootstrap import Services
from shared.domain.actions import ActionState, Actor
from tests.action_kinds import PretendCache
from tests.e2e.conftest import DR
from tests.factories import FakeClock
from tests.functions.action_harness import (
    CACHE,
    OTHER_CACHE,
    automation,
    only_action,
    open_incident,
    run_queues,
    timeline,
)
from tests.functions.harness import json_body

Acting = Callable[..., Services]
APPROVE = '{ action = "test.failover", mode = "approve" }'


@pytest.fixture
def clock() -> FakeClock:
    """Starts at the real time: the `dr` process stamps what it does with the real clock."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


def dr(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `dr` on the data dir, away from any local.settings.json."""
    return subprocess.run(
        [str(DR), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=data_dir.parent,
        env={"DR_DATA_DIR": str(data_dir)},
        check=False,
    )


def awaiting(acting: Acting) -> tuple[Services, str, str]:
    app = acting(APPROVE)
    incident_id = open_incident()
    run_queues(app, until=lambda: only_action(app, incident_id).state is not ActionState.PLANNED)
    record = only_action(app, incident_id)
    assert record.state is ActionState.AWAITING_APPROVAL
    return app, incident_id, record.id


def test_dr_actions_lists_them_filtered_and_as_json(acting: Acting, data_dir: Path) -> None:
    app, incident_id, action_id = awaiting(acting)
    done = dr(data_dir, "actions")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{action_id}  awaiting approval approve  test.failover on {CACHE}"
    assert lines[1].startswith(f"    incident {incident_id}, planned ") and lines[1].endswith(
        "by automation (rule test-redis-down)"
    )
    assert lines[2] == f"    {only_action(app, incident_id).request}"
    as_json = dr(data_dir, "actions", "--json", "--status", "awaiting approval", "--incident", incident_id)
    assert as_json.returncode == 0, as_json.stderr
    found = json.loads(as_json.stdout)
    assert found["count"] == 1 and found["actions"][0]["id"] == action_id
    assert dr(data_dir, "actions", "--status", "running").stdout == "no actions\n"
    bad = dr(data_dir, "actions", "--status", "done")
    assert bad.returncode == 1 and bad.stderr.startswith("dr actions: --status must be one of planned,")


def test_dr_approve_by_alice_runs_it_once_and_names_her_via_cli(
    acting: Acting, data_dir: Path, world: PretendCache
) -> None:
    app, incident_id, action_id = awaiting(acting)
    done = dr(data_dir, "approve", action_id, "--by", "alice")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{action_id}: approved by alice via cli",
        "  it runs as soon as `dr serve` (or the Function App) takes its message",
    ]
    run_queues(app)
    record = only_action(app, incident_id)
    assert record.state is ActionState.SUCCEEDED and record.approved_by == Actor("alice", "cli")
    assert f"test.failover on {CACHE}: running by alice via cli: started" in timeline(app, incident_id)
    assert world.starts == 1
    again = dr(data_dir, "approve", action_id, "--by", "bob")
    assert again.returncode == 1 and "is succeeded, cannot be approved" in again.stderr
    unknown = dr(data_dir, "deny", "act-0000000000000000", "--by", "bob")
    assert unknown.returncode == 1 and unknown.stderr == "dr deny: no action act-0000000000000000\n"
    assert world.starts == 1


def test_dr_deny_never_runs_it(acting: Acting, data_dir: Path, world: PretendCache) -> None:
    app, incident_id, action_id = awaiting(acting)
    done = dr(data_dir, "deny", action_id, "--by", "bob")
    assert done.returncode == 0 and done.stdout == f"{action_id}: denied by bob via cli\n", done.stderr
    run_queues(app)
    assert only_action(app, incident_id).state is ActionState.DENIED
    assert world.starts == 0


def test_dr_pause_a_tenant_then_all_and_dr_resume(
    acting: Acting, data_dir: Path, world: PretendCache
) -> None:
    app = acting()
    app.action_store  # noqa: B018  # the data dir exists, as under `dr serve`
    done = dr(data_dir, "pause", "--tenant", "ikea", "--by", "carol", "--reason", "migration")
    assert (done.returncode, done.stdout) == (0, "automation paused for tenant ikea by carol via cli\n")
    ikea = open_incident(CACHE)
    hm = open_incident(OTHER_CACHE, alert_id="2")
    run_queues(app)
    assert only_action(app, ikea).state is ActionState.REFUSED
    assert only_action(app, ikea).result.startswith(
        "kill switch: automation is paused for tenant ikea (by carol via cli at "
    )
    assert only_action(app, ikea).result.endswith(": migration)")
    assert only_action(app, hm).state is ActionState.SUCCEEDED
    assert (
        dr(data_dir, "pause", "--by", "carol").stdout
        == "automation paused for all tenants by carol via cli\n"
    )
    assert json_body(automation())["paused"] is True
    assert (
        dr(data_dir, "resume", "--by", "dave").stdout
        == "automation resumed for all tenants by dave via cli\n"
    )
    assert dr(data_dir, "resume", "--by", "dave").stdout == "automation was not paused for all tenants\n"
    state = json_body(automation())
    assert state["paused"] is False and [p["tenant"] for p in state["pauses"]] == ["ikea"]
    assert dr(data_dir, "resume", "--tenant", "ikea", "--by", "dave").returncode == 0
    assert json_body(automation())["pauses"] == []
    assert world.starts == 1
