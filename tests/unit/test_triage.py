"""Severity: Azure's baseline, then the policy's rules, always with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.domain.severity import Severity
from shared.triage.assessment import assess
from shared.triage.policy import DEFAULT_POLICY, load_policy
from tests.factories import resource, signal

POLICY = load_policy()


@pytest.mark.parametrize(
    ("azure", "expected"),
    [
        ("Sev0", Severity.SEV1),
        ("Sev1", Severity.SEV2),
        ("Sev2", Severity.SEV3),
        ("Sev3", Severity.SEV4),
        ("Sev4", Severity.SEV4),
    ],
)
def test_baseline_maps_azure_severity(azure: str, expected: Severity) -> None:
    decided = assess(signal(azure_severity=azure, component="acr", rule="plain"), POLICY)
    assert decided.severity == expected
    assert decided.reasons[0] == f"Azure Monitor severity {azure} → {expected.label} (baseline)"
    assert decided.rules == ()


@pytest.mark.parametrize("component", ["cosmosdb", "aks", "redis"])
def test_tier0_unavailable_is_sev1_with_its_reason(component: str) -> None:
    rid = resource(component, f"{component}-amicis-ikea-dev")
    decided = assess(
        signal(
            component=component,
            resource_id=rid,
            kind="Resource Health",
            azure_severity="Sev4",
            facts={"health": "Unavailable"},
        ),
        POLICY,
    )
    assert decided.severity == Severity.SEV1
    assert decided.rules == (f"{component}-unavailable",)
    assert "Unavailable" in decided.reasons[1] and f"{component}-amicis-ikea-dev" in decided.reasons[1]
    # Cosmos DB waits for a person (a forced failover may lose writes), Redis fails over by itself,
    # and a cluster that is down is not something a restore fixes: no action.
    expected = {
        "cosmosdb": [("cosmosdb.failover", "approve")],
        "redis": [("redis.failover", "auto")],
        "aks": [],
    }
    assert [(a.action, a.mode) for a in decided.actions] == expected[component]


def test_service_health_incident_on_a_tier0_service_is_sev1() -> None:
    decided = assess(
        signal(
            kind="ServiceHealth",
            component="",
            resource_id="/subscriptions/x",
            azure_severity="Sev3",
            facts={
                "incident_type": "Incident",
                "impacted_services": ("Azure Cosmos DB", "Azure Synapse Analytics"),
            },
        ),
        POLICY,
    )
    assert decided.severity == Severity.SEV1
    assert "cosmosdb" in decided.reasons[-1]


def test_service_health_maintenance_stays_at_baseline() -> None:
    decided = assess(
        signal(
            kind="ServiceHealth",
            component="",
            resource_id="/subscriptions/x",
            azure_severity="Sev3",
            facts={"incident_type": "Maintenance", "impacted_services": ("Azure Cosmos DB",)},
        ),
        POLICY,
    )
    assert decided.severity == Severity.SEV4


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("Http5xx", Severity.SEV2),
        ("ServerSideLatency", Severity.SEV3),
        ("cachemissrate", Severity.SEV3),
        ("Percentage CPU", Severity.SEV4),
    ],
)
def test_metric_rules(metric: str, expected: Severity) -> None:
    decided = assess(signal(azure_severity="Sev3", facts={"metric": (metric,)}), POLICY)
    assert decided.severity == expected


def test_the_most_severe_matching_rule_wins_and_all_reasons_are_kept() -> None:
    decided = assess(
        signal(
            azure_severity="Sev3",
            kind="Resource Health",
            facts={"health": "Unavailable", "metric": ("Http5xx",)},
        ),
        POLICY,
    )
    assert decided.severity == Severity.SEV1
    assert set(decided.rules) == {"cosmosdb-unavailable", "elevated-errors"}
    assert len(decided.reasons) == 3


def test_a_rule_never_lowers_the_alerts_own_severity_unless_it_says_so() -> None:
    """An availability metric on a Sev0 matches "elevated errors" (sev2): the author's sev1 holds."""
    decided = assess(signal(azure_severity="Sev0", facts={"metric": ("ServiceAvailability",)}), POLICY)
    assert decided.severity == Severity.SEV1
    assert decided.rules == ("elevated-errors",)
    assert decided.reasons[1].endswith(
        "rule elevated-errors says sev2, kept sev1: the alert's own severity is a floor"
    )


def test_a_rule_more_severe_than_the_baseline_still_raises_it() -> None:
    decided = assess(signal(azure_severity="Sev3", facts={"metric": ("ServiceAvailability",)}), POLICY)
    assert decided.severity == Severity.SEV2
    assert decided.reasons[1].endswith("→ sev2 (rule elevated-errors)")


def test_a_rule_with_lower_true_lowers_the_alerts_severity(tmp_path: Path) -> None:
    slow_rule = 'severity = "sev3"\nreason = "Slow responses'
    assert slow_rule in DEFAULT_POLICY.read_text()
    text = DEFAULT_POLICY.read_text().replace(slow_rule, slow_rule.replace("\n", "\nlower = true\n", 1))
    path = tmp_path / "policy.toml"
    path.write_text(text)
    policy = load_policy(path)
    slow = signal(azure_severity="Sev0", facts={"metric": ("ServerSideLatency",)})
    decided = assess(slow, policy)
    assert decided.severity == Severity.SEV3
    assert decided.reasons[1].endswith("→ lowered to sev3 by rule slow-queries (lower = true)")
    # a rule that keeps the floor wins over one that lowers
    both = assess(signal(azure_severity="Sev0", facts={"metric": ("ServerSideLatency", "Http5xx")}), policy)
    assert both.severity == Severity.SEV1
    assert "kept sev1" in both.reasons[1] and "lower = true" in both.reasons[2]


def test_routine_and_unknown_events_are_informational() -> None:
    routine = signal(kind="Microsoft.ContainerRegistry.ImagePushed", state="event", azure_severity="")
    unknown = signal(kind="Contoso.Thing.Happened", state="event", azure_severity="", informational=True)
    assert assess(routine, POLICY).informational
    decided = assess(unknown, POLICY)
    assert decided.informational
    assert "Unknown event type Contoso.Thing.Happened" in decided.reasons[-1]


def test_resolved_and_recovered_signals_resolve() -> None:
    assert assess(signal(state="resolved"), POLICY).resolves
    assert assess(signal(kind="Resource Health", facts={"health": "Available"}), POLICY).resolves
    assert not assess(signal(), POLICY).resolves


def test_correlation_key_is_rule_and_resource() -> None:
    a = assess(signal(rule="r1"), POLICY)
    b = assess(signal(rule="r1", azure_severity="Sev0"), POLICY)
    c = assess(signal(rule="r2"), POLICY)
    assert a.correlation_key == b.correlation_key != c.correlation_key


def test_condition_key_ignores_the_tenant() -> None:
    ikea = assess(signal(rule="cosmos-ikea-availability", tenant="ikea"), POLICY)
    hm = assess(signal(rule="cosmos-hm-availability", tenant="hm"), POLICY)
    assert ikea.condition_key == hm.condition_key
    assert ikea.correlation_key != hm.correlation_key


def test_condition_key_blanks_the_tenant_only_as_a_whole_word() -> None:
    ikea = assess(signal(rule="cosmos-ikea-health", tenant="ikea"), POLICY)
    os_ = assess(signal(rule="cosmos-os-health", tenant="os"), POLICY)
    assert ikea.condition_key == os_.condition_key, "'os' is blanked as a word, not inside 'cosmos'"


def test_condition_key_keeps_environments_apart() -> None:
    dev = assess(signal(rule="cosmos-ikea-health", tenant="ikea", environment="dev"), POLICY)
    prod = assess(signal(rule="cosmos-hm-health", tenant="hm", environment="prod"), POLICY)
    assert dev.condition_key != prod.condition_key
