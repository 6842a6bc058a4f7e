"""Correlation: open, repeat, raise, resolve, cross-tenant, and the effects each decides."""

from __future__ import annotations

from shared.domain.effects import Change, EffectKind
from shared.domain.incidents import Incident
from shared.domain.severity import Severity
from shared.domain.signals import Signal
from shared.outbox import effect_message
from shared.triage.assessment import assess
from shared.triage.correlation import MAX_INSTANCES, MAX_PLANNED, correlate, escalate_for_peers
from shared.triage.policy import load_policy
from tests.factories import resource, signal

POLICY = load_policy()
NOW = "2026-11-25T10:00:00.000Z"


def test_first_signal_opens_an_incident_that_pages_and_notifies() -> None:
    s = signal(azure_severity="Sev1")
    outcome = correlate(None, s, assess(s, POLICY), NOW, POLICY)
    assert outcome is not None
    incident = outcome.incident
    assert (incident.status, incident.severity, incident.signal_count, incident.tenant) == (
        "open",
        Severity.SEV2,
        1,
        "ikea",
    )
    assert [(e.kind, e.event) for e in outcome.effects] == [("notify", "opened"), ("page", "trigger")]
    assert incident.paged and len(outcome.staged().outbox) == 2
    assert outcome.timeline[0].kind == "opened"


def test_sev3_opens_without_a_page() -> None:
    s = signal(azure_severity="Sev2")
    outcome = correlate(None, s, assess(s, POLICY), NOW, POLICY)
    assert outcome is not None
    assert [e.kind for e in outcome.effects] == ["notify"]


def test_repeats_only_count_until_a_milestone() -> None:
    s = signal(azure_severity="Sev1")
    outcome = correlate(None, s, assess(s, POLICY), NOW, POLICY)
    assert outcome is not None
    incident = outcome.incident.evolve(outbox=())
    effects_seen = []
    for _ in range(9):
        nxt = correlate(incident, s, assess(s, POLICY), NOW, POLICY)
        assert nxt is not None
        incident = nxt.incident
        effects_seen += [e.event for e in nxt.effects]
    assert incident.signal_count == 10
    assert effects_seen == ["count-10"]


def test_a_more_severe_repeat_raises_and_pages_again() -> None:
    low = signal(azure_severity="Sev2")
    opened = correlate(None, low, assess(low, POLICY), NOW, POLICY)
    assert opened is not None
    high = signal(azure_severity="Sev0", id="other")
    raised = correlate(opened.incident, high, assess(high, POLICY), NOW, POLICY)
    assert raised is not None
    assert raised.incident.severity == Severity.SEV1
    assert [(e.kind, e.event, e.severity) for e in raised.effects] == [
        ("notify", "severity", "sev1"),
        ("page", "trigger", "sev1"),
    ]


def test_resolved_signal_resolves_and_resolves_the_page() -> None:
    fired = signal(azure_severity="Sev1")
    opened = correlate(None, fired, assess(fired, POLICY), NOW, POLICY)
    assert opened is not None
    resolved = signal(azure_severity="Sev1", state="resolved")
    outcome = correlate(opened.incident, resolved, assess(resolved, POLICY), NOW, POLICY)
    assert outcome is not None
    assert outcome.incident.status == "resolved" and outcome.incident.resolved_at == NOW
    assert outcome.incident.time_to_resolve_seconds == 0.0
    assert [(e.kind, e.event) for e in outcome.effects] == [("notify", "resolved"), ("page", "resolve")]


def test_resolve_with_nothing_open_is_none() -> None:
    resolved = signal(state="resolved")
    assert correlate(None, resolved, assess(resolved, POLICY), NOW, POLICY) is None


def test_a_more_severe_repeat_brings_its_reasons_and_first_response() -> None:
    degraded = signal(kind="Resource Health", azure_severity="Sev4", facts={"health": "Degraded"})
    opened = correlate(None, degraded, assess(degraded, POLICY), NOW, POLICY)
    assert opened is not None and opened.incident.severity == Severity.SEV2
    assert opened.incident.planned_actions == ()
    down = signal(kind="Resource Health", azure_severity="Sev1", facts={"health": "Unavailable"}, id="down")
    raised = correlate(opened.incident, down, assess(down, POLICY), NOW, POLICY)
    assert raised is not None
    incident = raised.incident
    assert incident.severity == Severity.SEV1
    assert incident.reasons[0] == "Azure Monitor severity Sev1 → sev2 (baseline)", (
        "the new baseline replaces the old"
    )
    assert any("rule resource-degraded" in r for r in incident.reasons)
    assert any("rule cosmosdb-unavailable" in r for r in incident.reasons)
    assert incident.planned_actions == ("cosmosdb.failover (approve)",)
    assert [(e.kind, e.event) for e in raised.effects] == [
        ("notify", "severity"),
        ("page", "trigger"),
        ("act", "cosmosdb.failover"),
    ]
    assert "rule cosmosdb-unavailable" in raised.timeline[0].text


def test_escalating_a_sev1_marks_all_tenants_without_a_new_page() -> None:
    s = signal(azure_severity="Sev0")
    opened = correlate(None, s, assess(s, POLICY), NOW, POLICY)
    assert opened is not None and opened.incident.severity == Severity.SEV1
    escalated = escalate_for_peers(opened.incident, ["hm", "ikea"], NOW, POLICY)
    assert escalated is not None and escalated.incident.all_tenants
    assert "already sev1" in escalated.incident.reasons[-1]
    assert [(e.kind, e.event) for e in escalated.effects] == [("notify", "all-tenants")]


def test_an_all_tenants_incident_keeps_its_extra_level() -> None:
    s = signal(azure_severity="Sev2")
    opened = correlate(None, s, assess(s, POLICY), NOW, POLICY)
    assert opened is not None
    escalated = escalate_for_peers(opened.incident, ["hm", "ikea"], NOW, POLICY)
    assert escalated is not None and escalated.incident.severity == Severity.SEV2
    worse = signal(azure_severity="Sev1", id="worse")
    raised = correlate(escalated.incident, worse, assess(worse, POLICY), NOW, POLICY)
    assert raised is not None and raised.incident.severity == Severity.SEV1


def test_escalating_a_peer_happens_once() -> None:
    ikea = signal(azure_severity="Sev1")
    opened = correlate(None, ikea, assess(ikea, POLICY), NOW, POLICY)
    assert opened is not None
    escalated = escalate_for_peers(opened.incident, ["hm", "ikea"], NOW, POLICY)
    assert escalated is not None and escalated.incident.all_tenants
    assert escalated.incident.severity == Severity.SEV1
    assert escalate_for_peers(escalated.incident, ["hm", "ikea"], NOW, POLICY) is None


def test_effect_message_ids_are_stable() -> None:
    s = signal(azure_severity="Sev1")
    one = correlate(None, s, assess(s, POLICY), NOW, POLICY)
    two = correlate(None, s, assess(s, POLICY), NOW, POLICY)
    assert one is not None and two is not None
    assert [e.message_id for e in one.effects] == [e.message_id for e in two.effects]
    page = effect_message(one.effects[1])
    assert (page.queue, page.session_id) == ("pages", one.incident.id)


def _instance(alert_id: str, state: str = "fired", **facts: object) -> Signal:
    return signal(
        azure_severity="Sev1",
        state=state,
        id=f"{alert_id}-{state}-{facts}",
        facts={"alert_id": alert_id, "signal_type": "Metric", **facts},
    )


def _run(incident: Incident | None, s: Signal) -> Change:
    outcome = correlate(incident, s, assess(s, POLICY), NOW, POLICY)
    assert outcome is not None
    return outcome


def test_a_resolved_instance_leaves_the_incident_open_while_another_still_fires() -> None:
    opened = _run(None, _instance("alert-a"))
    merged = _run(opened.incident, _instance("alert-b"))
    partly = _run(merged.incident, _instance("alert-a", "resolved"))
    assert partly.incident.status == "open" and partly.incident.resolved_at is None
    assert partly.incident.signal_count == 3
    (line,) = partly.timeline
    assert line.text == "1 of 2 instances resolved (1 still firing): azure-monitor: " + partly.incident.title
    (tell,) = partly.effects  # the page stays triggered: only a line in the card's thread
    assert (tell.kind, tell.detail) == (EffectKind.NOTIFY, line.text)
    resolved = _run(partly.incident, _instance("alert-b", "resolved"))
    assert resolved.incident.status == "resolved"
    assert [(e.kind, e.event) for e in resolved.effects] == [("notify", "resolved"), ("page", "resolve")]


def test_instances_of_one_alert_id_are_told_apart_by_their_dimensions() -> None:
    """The non-common metric schema names the rule, not the instance: dimensions tell them apart."""
    opened = _run(None, _instance("rule-1", dimensions=("ApiName=GetBlob",)))
    merged = _run(opened.incident, _instance("rule-1", dimensions=("ApiName=PutBlob",)))
    partly = _run(merged.incident, _instance("rule-1", "resolved", dimensions=("ApiName=GetBlob",)))
    assert partly.incident.is_open
    assert _run(
        partly.incident, _instance("rule-1", "resolved", dimensions=("ApiName=PutBlob",))
    ).incident.status == ("resolved")


def test_signals_without_an_instance_resolve_as_before() -> None:
    """Health recovery (an activity-log alert) and signals with no alert id resolve the incident outright."""
    down = signal(kind="Resource Health", azure_severity="Sev1", facts={"health": "Unavailable"}, id="d1")
    down2 = signal(kind="Resource Health", azure_severity="Sev1", facts={"health": "Unavailable"}, id="d2")
    up_facts = {"health": "Available", "alert_id": "up", "signal_type": "Activity Log"}
    up = signal(kind="Resource Health", azure_severity="Sev1", facts=up_facts, id="u")
    assert _run(_run(_run(None, down).incident, down2).incident, up).incident.status == "resolved"
    plain = _run(_run(None, signal(id="p1")).incident, signal(id="p2"))
    assert _run(plain.incident, signal(state="resolved", id="p3")).incident.status == "resolved"


def test_an_incident_stored_before_instances_were_tracked_resolves_on_a_resolved() -> None:
    opened = _run(None, _instance("alert-a"))
    record = opened.incident.to_record()
    del record["firing_instances"]
    old = Incident.from_record(record)
    assert old.firing_instances == ()
    assert _run(old, _instance("alert-a", "resolved")).incident.status == "resolved"


def test_the_tracked_instances_are_bounded() -> None:
    incident = _run(None, _instance("alert-0")).incident
    for n in range(1, MAX_INSTANCES + 10):
        incident = _run(incident, _instance(f"alert-{n}")).incident
    assert len(incident.firing_instances) == MAX_INSTANCES


def test_a_resolved_instance_that_was_never_tracked_leaves_the_tracked_ones_firing() -> None:
    """An incident stored before instances were tracked, opened by A, then B fired: A's Resolved."""
    opened = _run(None, _instance("alert-a")).incident.evolve(firing_instances=())
    merged = _run(opened, _instance("alert-b"))
    partly = _run(merged.incident, _instance("alert-a", "resolved"))
    assert partly.incident.is_open
    assert partly.timeline[0].text.startswith("An untracked instance resolved (1 still firing)")


def test_each_partly_resolved_instance_gets_its_own_thread_line() -> None:
    # A, B, C fire; C resolves; D fires and resolves: two lines of the same words, two messages.
    incident = None
    for name in ("alert-a", "alert-b", "alert-c"):
        incident = _run(incident, _instance(name)).incident
    first = _run(incident, _instance("alert-c", "resolved"))
    later = _run(_run(first.incident, _instance("alert-d")).incident, _instance("alert-d", "resolved"))
    (one,), (two,) = first.effects, later.effects
    assert one.detail == two.detail, "the same words"
    assert one.message_id != two.message_id, "the queue's duplicate detection must not drop the second"


def test_records_stay_readable_across_releases() -> None:
    opened = _run(None, signal(rule="no-instances", facts={})).incident
    record = opened.to_record()
    assert "firing_instances" not in record, "left out when empty: an older release can read it"
    assert "part_signals" not in record
    newer = {**record, "a_field_of_a_later_release": 1}
    assert Incident.from_record(newer) == opened, "a field this release does not know is ignored"


AKS = resource("aks", "aks-amicis-ikea-dev", "rg-amicis-ikea-dev")


def _deployment_errors(controller: str, n: int) -> Signal:
    """The default policy's bad-deployment rule: one alert rule, a Deployment per dimension value."""
    dimensions = ("namespace=shop", f"controller={controller}")
    return signal(
        component="aks",
        resource_id=AKS,
        rule="aks-5xx",
        id=f"errors-{n}",
        facts={"metric": "Http5xx", "dimensions": dimensions},
    )


def test_a_second_deployment_under_the_same_alert_rule_gets_its_own_rollback() -> None:
    opened = _run(None, _deployment_errors("cart", 1))
    assert opened.incident.planned_actions == ("kubernetes.rollback (auto) deployment=shop/cart",)
    second = _run(opened.incident, _deployment_errors("checkout", 2))
    assert second.incident.id == opened.incident.id
    assert second.incident.planned_actions == (
        "kubernetes.rollback (auto) deployment=shop/cart",
        "kubernetes.rollback (auto) deployment=shop/checkout",
    )
    assert [(e.kind, e.event, e.params) for e in second.effects] == [
        (
            EffectKind.ACT,
            "kubernetes.rollback",
            '{"deployment":"shop/checkout","rolled_out_within_minutes":60}',
        )
    ]
    again = _run(second.incident, _deployment_errors("cart", 3))
    assert again.effects == () and again.incident.planned_actions == second.incident.planned_actions
    # Each part's newest signal is kept for settling its action, and survives the stored form.
    cart, checkout = again.incident.planned_actions
    assert set(again.incident.part_signals) == {cart, checkout}
    assert Incident.from_record(again.incident.to_record()).part_signals == again.incident.part_signals


def test_the_actions_planned_for_one_incident_are_bounded() -> None:
    incident = _run(None, _deployment_errors("d0", 0)).incident
    for n in range(1, MAX_PLANNED + 10):
        incident = _run(incident, _deployment_errors(f"d{n}", n)).incident
    assert len(incident.planned_actions) == MAX_PLANNED
