"""The action record's state machine: only the transitions the issue names, each with its actor and line."""

from __future__ import annotations

import pytest

from shared.domain.actions import AUTOMATION, ActionRecord, ActionState, Actor, InvalidTransition, action_id

NOW = "2026-12-01T10:00:00.000Z"
LATER = "2026-12-01T10:02:00.000Z"
RULE = Actor(AUTOMATION, "redis-unavailable")
ADA = Actor("ada@example.com", "slack")


def planned(mode: str = "approve") -> ActionRecord:
    return ActionRecord(
        id=action_id("inc-1", "redis.failover", "/subscriptions/s/redis/cache-1"),
        incident_id="inc-1",
        action="redis.failover",
        target="/subscriptions/s/redis/cache-1",
        mode=mode,
        state=ActionState.PLANNED,
        planned_by=RULE,
        planned_at=NOW,
        updated_at=NOW,
    )


def test_an_approved_action_runs_once_and_says_who_did_what() -> None:
    waiting, asked = planned().moved(ActionState.AWAITING_APPROVAL, RULE, NOW)
    approved, yes = waiting.moved(ActionState.APPROVED, ADA, LATER)
    running, _ = approved.moved(ActionState.RUNNING, RULE, LATER)
    done, line = running.moved(ActionState.SUCCEEDED, RULE, LATER, "replica took over in 41 s")
    assert (done.state, done.approved_by, done.attempts, done.result) == (
        ActionState.SUCCEEDED,
        ADA,
        1,
        "replica took over in 41 s",
    )
    assert (
        yes.text == "redis.failover on /subscriptions/s/redis/cache-1: approved by ada@example.com via slack"
    )
    assert asked.text.endswith("awaiting approval by automation (rule redis-unavailable)")
    assert (line.at, line.kind) == (LATER, "action") and done.state.final


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([ActionState.RUNNING, ActionState.SUCCEEDED], ActionState.RUNNING),  # a failover never runs twice
        ([ActionState.AWAITING_APPROVAL, ActionState.DENIED], ActionState.APPROVED),  # denied stays denied
        ([ActionState.AWAITING_APPROVAL, ActionState.EXPIRED], ActionState.APPROVED),
        ([ActionState.AWAITING_APPROVAL], ActionState.RUNNING),  # no running before approval
        ([ActionState.RUNNING], ActionState.REFUSED),  # a guardrail speaks before, not during
    ],
)
def test_a_transition_the_machine_does_not_have_is_refused(
    path: list[ActionState], refused: ActionState
) -> None:
    record = planned()
    for state in path:
        record, _ = record.moved(state, RULE, NOW)
    with pytest.raises(InvalidTransition, match=f"is {record.state}, cannot be {refused}"):
        record.moved(refused, ADA, LATER)


def test_final_states_are_final_and_the_others_are_not() -> None:
    final = {s for s in ActionState if s.final}
    assert final == {
        ActionState.SUCCEEDED,
        ActionState.FAILED,
        ActionState.SKIPPED,
        ActionState.REFUSED,
        ActionState.EXPIRED,
        ActionState.DENIED,
    }


def test_the_id_is_stable_for_one_action_on_one_target_of_one_incident() -> None:
    assert action_id("inc-1", "redis.failover", "/S/R") == action_id("inc-1", "redis.failover", "/s/r")
    assert action_id("inc-1", "redis.failover", "/s/r") != action_id("inc-2", "redis.failover", "/s/r")


@pytest.mark.parametrize(
    ("planner", "approver", "same"),
    [
        ("ada (U0ADA)", "ada (U0ADA) via slack", True),
        ("bob (42) (U0BOB)", "bob (U0BOB)", True),  # a name with parentheses of its own
        ("zed (42) (U0ZED)", "amy (42) (U0AMY)", False),
        ("eve (U0BOB) (U0EVE)", "bob (U0BOB)", False),  # a name that holds someone else's id
        ("alice@example.com", "alice@example.com via api", True),
    ],
)
def test_four_eyes_know_a_person_by_the_id_the_desk_appends(planner: str, approver: str, same: bool) -> None:
    assert Actor(planner, "slack").is_person(approver) is same
