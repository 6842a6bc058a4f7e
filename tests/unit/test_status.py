"""The status model: built by a pure function from what was read, rendered to fit 100 columns."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from shared.clock import iso
from shared.domain.effects import Effect, EffectKind
from shared.domain.incidents import Incident
from shared.domain.severity import Severity
from shared.outbox import effect_message
from shared.ports import DeadLetter, IncidentHeadline, OpenOverview, OutboxBacklog, QueueCounts
from shared.status.model import ALL_QUEUES, Budget, Status, build_status, describe_dead_letter
from shared.status.render import WIDTH, age, budget, render_dead_letters, render_status
from shared.triage.assessment import assess
from shared.triage.correlation import correlate
from shared.triage.policy import load_policy
from tests.factories import FakeClock, resource, signal

POLICY = load_policy()  # sev1 15 min, sev2 60, sev3 240; Cosmos DB RTO 5 min, Redis 2 h
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
EMPTY_QUEUES = [QueueCounts(q, 0, 0, 0, 0) for q in ALL_QUEUES]


def opened(minutes_ago: float, **changes: object) -> Incident:
    """An incident opened `minutes_ago` before NOW (Azure Sev0: sev1; Cosmos DB unless changed)."""
    at = iso(NOW - timedelta(minutes=minutes_ago))
    s = signal(azure_severity="Sev0", occurred_at=at, rule=f"rule-{minutes_ago}")
    outcome = correlate(None, s, assess(s, POLICY), at, POLICY)
    assert outcome is not None
    return outcome.incident.evolve(**changes)


def status(
    incidents: list[Incident],
    clock: FakeClock | None = None,
    queues: list[QueueCounts] | None = None,
    dead_letters: list[DeadLetter] | None = None,
    outbox: OutboxBacklog | None = None,
    per_group: int = 1000,
    limit: int = 1000,
) -> Status:
    headlines = [IncidentHeadline.of(i) for i in incidents if i.is_open]
    return build_status(
        now=(clock or FakeClock(NOW))(),
        policy=POLICY,
        open_incidents=OpenOverview.of(headlines, per_group, limit),
        queues=queues or EMPTY_QUEUES,
        dead_letters=dead_letters or [],
        outbox=outbox or OutboxBacklog(0, None),
    )


def dead_letter(
    effect: Effect, reason: str = "MaxAttemptsExceeded", description: str = "Slack down"
) -> DeadLetter:
    message = effect_message(effect)
    return DeadLetter(
        queue=message.queue,
        message_id=message.message_id,
        session_id=message.session_id,
        body=message.body,
        reason=reason,
        description=description,
        delivery_count=0,
        dead_lettered_at="2026-11-25T09:59:00+00:00",
    )


def test_budgets_are_age_over_the_policy_targets_and_say_when_over() -> None:
    (group,) = status([opened(12)]).groups
    (incident,) = group.incidents
    assert incident.age_seconds == 12 * 60
    assert incident.response == Budget(15, 720.0) and incident.response.used_percent == 80
    assert not incident.response.over
    assert incident.rto == Budget(5, 720.0) and incident.rto.used_percent == 240 and incident.rto.over


def test_the_response_clock_stops_at_acknowledgement_and_the_rto_clock_runs_on() -> None:
    incident = opened(30)
    acked = incident.evolve(status="acknowledged", acknowledged_at=iso(NOW - timedelta(minutes=24)))
    (view,) = status([acked]).groups[0].incidents
    assert view.response == Budget(15, 360.0, running=False) and view.response.used_percent == 40
    assert view.rto is not None and view.rto.running and view.rto.used_percent == 600


def test_no_target_is_no_budget_not_a_made_up_one() -> None:
    sev4 = opened(5, severity=Severity.SEV4)  # the policy has no sev4 response target
    unknown = opened(5, component="mainframe")
    views = {v.component: v for g in status([sev4, unknown]).groups for v in g.incidents}
    assert views["cosmosdb"].response is None and views["cosmosdb"].rto is not None
    assert views["mainframe"].rto is None and views["mainframe"].response is not None


def test_groups_are_per_component_and_tenant_worst_first() -> None:
    redis = resource("redis", "redis-amicis-hm-dev", "rg-amicis-hm-dev")
    incidents = [
        opened(1, tenant="hm", component="redis", resource_id=redis, severity=Severity.SEV3),
        opened(2),
        opened(3, tenant="hm"),
        opened(4),
    ]
    built = status(incidents)
    assert [(g.component, g.tenant, len(g.incidents)) for g in built.groups] == [
        ("cosmosdb", "hm", 1),
        ("cosmosdb", "ikea", 2),
        ("redis", "hm", 1),
    ]
    ikea = built.groups[1]
    assert [round(i.age_seconds / 60) for i in ikea.incidents] == [4, 2], "oldest first within a severity"
    counts = built.to_dict()["incidents"]
    assert counts["open"] == 4 and counts["by_severity"] == {"sev1": 3, "sev3": 1}


def test_every_group_is_counted_whole_and_shows_only_its_worst_few() -> None:
    redis = resource("redis", "redis-amicis-hm-dev", "rg-amicis-hm-dev")
    ikea = [opened(n, severity=Severity.SEV1 if n % 2 else Severity.SEV3) for n in range(1, 6)]
    built = status([*ikea, opened(9, tenant="hm", component="redis", resource_id=redis)], per_group=2)
    first, second = built.groups
    assert (first.component, first.tenant, first.count, len(first.incidents)) == ("cosmosdb", "ikea", 5, 2)
    assert [round(i.age_seconds / 60) for i in first.incidents] == [5, 3], "the oldest sev1s"
    assert (second.count, len(second.incidents)) == (1, 1)
    data = built.to_dict()["incidents"]
    assert (data["open"], data["shown"], data["by_severity"]) == (6, 3, {"sev1": 4, "sev3": 2})
    group = data["groups"][0]
    assert (group["count"], group["shown"], group["by_severity"]) == (5, 2, {"sev1": 3, "sev3": 2})
    assert "OPEN INCIDENTS  6 (sev1 4 · sev3 2, 3 shown)" in render_status(built)


def test_resolved_incidents_are_not_open() -> None:
    assert status([opened(3, status="resolved")]).groups == ()


def test_queues_dead_letters_outboxes_and_automation() -> None:
    effect = Effect(EffectKind.NOTIFY, "inc-20261125-0123456789", "opened", "sev1", iso(NOW))
    queues = [QueueCounts("pages", 0, 0, 0, 0), QueueCounts("notifications", 1, 2, 1, 3)]
    built = status(
        [],
        queues=queues,
        dead_letters=[dead_letter(effect)],
        outbox=OutboxBacklog(2, iso(NOW - timedelta(seconds=90))),
    )
    data = built.to_dict()
    assert data["queues"]["notifications"] == {"ready": 1, "scheduled": 2, "in_flight": 1, "dead_lettered": 3}
    assert data["dead_letters"]["total"] == 3
    (newest,) = data["dead_letters"]["newest"]
    assert newest["incident_id"] == effect.incident_id and newest["summary"] == "notify opened"
    assert newest["reason"] == "MaxAttemptsExceeded" and newest["message_id"] == effect.message_id
    assert data["outboxes"] == {
        "incidents": 2,
        "oldest_updated_at": iso(NOW - timedelta(seconds=90)),
        "oldest_age_seconds": 90,
    }
    assert data["automation"] == {"paused": False, "setting": "on", "pauses": [], "actions": []}
    assert json.loads(json.dumps(data)) == data, "JSON all the way down"


def test_a_dead_letter_says_what_its_body_was() -> None:
    act = Effect(
        EffectKind.ACT, "inc-1", "redis.failover", "sev1", iso(NOW), target="/subscriptions/1/redis-x"
    )
    assert describe_dead_letter(
        dead_letter(act)
    ).summary == "redis.failover on /subscriptions/1/redis-x".join(["act ", ""])
    poison = DeadLetter(
        "pages", "m-1", "s", b"not json", "PoisonMessage", "not an effect", 1, "2026-11-25T09:00:00+00:00"
    )
    assert (describe_dead_letter(poison).incident_id, describe_dead_letter(poison).summary) == (None, "")
    webhook = json.dumps(
        {"event": {"id": "E1", "event_type": "incident.acknowledged", "data": {"incident_key": "inc-7"}}}
    )
    pd = DeadLetter(
        "pagerduty",
        "w-1",
        "s",
        webhook.encode(),
        "MaxDeliveryCountExceeded",
        "",
        10,
        "2026-11-25T09:00:00+00:00",
    )
    assert (describe_dead_letter(pd).incident_id, describe_dead_letter(pd).summary) == (
        "inc-7",
        "PagerDuty incident.acknowledged",
    )


def test_the_clock_is_the_only_time_the_builder_knows() -> None:
    clock = FakeClock(NOW)
    incidents = [opened(10)]
    before = status(incidents, clock).groups[0].incidents[0]
    clock.advance(minutes=10)
    after = status(incidents, clock).groups[0].incidents[0]
    assert (before.rto and before.rto.used_percent, after.rto and after.rto.used_percent) == (200, 400)


def test_budget_and_age_text() -> None:
    assert [age(s) for s in (5, 125, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == ["5s", "2m", "3h05m", "2d04h"]
    assert budget(Budget(15, 720)) == "80% of 15m"
    assert budget(Budget(5, 720)) == "OVER 240% of 5m"
    assert budget(Budget(60, 1800, running=False)) == "met 50% of 1h"
    assert budget(Budget(15, 1800, running=False)) == "late 200% of 15m"
    assert budget(Budget(5, 10**9)) == "OVER 333333333% o…", "clipped to its column"
    assert budget(None) == "-"


def test_the_rendered_status_fits_100_columns_and_names_what_matters() -> None:
    long_tenant = opened(
        400,
        tenant="averyveryverylongtenantname",
        component="staticwebapp-with-a-long-name",
        title="Cosmos DB unavailable " + "x" * 300,
        all_tenants=True,
        signal_count=12345,
    )
    effect = Effect(EffectKind.NOTIFY, long_tenant.id, "opened", "sev1", iso(NOW))
    text = render_status(
        status(
            [opened(12), long_tenant, *(opened(20 + n) for n in range(118))],
            queues=[QueueCounts("notifications", 1, 2, 3, 1234567)],
            dead_letters=[
                dead_letter(effect, description="Slack chat.postMessage: unreachable " + "y" * 500)
            ],
            outbox=OutboxBacklog(3, iso(NOW - timedelta(minutes=5))),
            per_group=41,
        )
    )
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, max(lines, key=len)
    assert "OPEN INCIDENTS  120 (sev1 120, 42 shown)" in text
    rows = [line for line in lines if line.startswith("sev1  ")]
    assert len(rows) == 30 and all(re.search(r"  inc-\d{8}-[0-9a-f]{10}$", row) for row in rows), "ids whole"
    oldest = rows[0]
    assert "2h17m  OVER 913% of 15m" in oldest and "OVER 2740% of 5m" in oldest, "the oldest sev1 row first"
    assert "… and 90 more: GET /api/incidents?status=open lists them all" in text
    assert effect.message_id in text and "MaxAttemptsExceeded" in text and long_tenant.id in text
    assert "OUTBOXES  3 incidents with effects not yet on a queue; oldest 5m" in text
    assert "AUTOMATION  on\n  no action running or waiting for approval" in text


def test_an_empty_status_reads_as_calm() -> None:
    text = render_status(status([]))
    assert (
        "OPEN INCIDENTS  none" in text and "DEAD LETTERS  none" in text and "OUTBOXES  none waiting" in text
    )
    assert all(len(line) <= WIDTH for line in text.splitlines())


def test_dead_letters_render_with_their_ids_whole() -> None:
    effects = [
        Effect(EffectKind.NOTIFY, f"inc-20261125-00000000{n}", "opened", "sev1", iso(NOW))
        for n in range(10, 13)
    ]
    text = render_dead_letters([describe_dead_letter(dead_letter(e)) for e in effects])
    assert text.startswith("3 dead letters, newest first")
    assert all(f"  id {e.message_id}  (notify opened)" in text for e in effects)
    assert all(len(line) <= WIDTH for line in text.splitlines())
    assert render_dead_letters([]) == "No dead letters.\n"


def test_the_kill_switch_and_the_actions_waiting_are_shown() -> None:
    from shared.domain.actions import ActionRecord, ActionState, Actor, Pause
    from shared.status.model import Automation

    waiting = ActionRecord(
        id="act-1",
        incident_id="inc-1",
        action="redis.failover",
        target=resource("redis", "redis-amicis-ikea-prod"),
        mode="approve",
        state=ActionState.AWAITING_APPROVAL,
        planned_by=Actor("automation", "redis-unavailable"),
        planned_at=iso(NOW),
        updated_at=iso(NOW),
        expires_at=iso(NOW + timedelta(minutes=30)),
    )
    pause = Pause("ikea", "alice via cli", iso(NOW), "maintenance")
    built = build_status(
        now=NOW,
        policy=POLICY,
        open_incidents=OpenOverview((), ()),
        queues=EMPTY_QUEUES,
        dead_letters=[],
        outbox=OutboxBacklog(0, None),
        automation=Automation(True, (pause,), (waiting,)),
    )
    data = built.to_dict()["automation"]
    assert data["paused"] is False  # one tenant only
    assert data["pauses"] == [
        {"tenant": "ikea", "by": "alice via cli", "at": iso(NOW), "reason": "maintenance"}
    ]
    assert [(a["id"], a["state"]) for a in data["actions"]] == [("act-1", "awaiting approval")]
    text = render_status(built)
    assert "paused for tenant ikea by alice via cli at 2026-11-25 10:00:00: maintenance  (dr resume)" in text
    assert "awaiting approval redis.failover on redis-amicis-ikea-prod (inc-1), expires" in text
    assert "dr approve act-1" in text
    off = build_status(
        now=NOW,
        policy=POLICY,
        open_incidents=OpenOverview((), ()),
        queues=EMPTY_QUEUES,
        dead_letters=[],
        outbox=OutboxBacklog(0, None),
        automation=Automation(False),
    )
    assert off.to_dict()["automation"]["paused"] is True
    assert "AUTOMATION  OFF (DR_AUTOMATION=off)" in render_status(off)
