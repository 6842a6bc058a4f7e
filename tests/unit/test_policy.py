"""The policy file: the default loads, and every mistake is named with file and place."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.domain.severity import Severity
from shared.errors import PolicyError
from shared.triage.policy import DEFAULT_POLICY, load_policy


def test_default_policy_encodes_the_dr_plan() -> None:
    policy = load_policy()
    assert policy.paging == {Severity.SEV1, Severity.SEV2}
    rto = {name: c.rto_minutes for name, c in policy.components.items()}
    assert rto == {"cosmosdb": 5, "aks": 240, "redis": 120, "acr": 60, "keyvault": 60, "staticwebapp": 30}
    assert dict(policy.response_minutes) == {"sev1": 15, "sev2": 60, "sev3": 240}
    assert {c.name for c in policy.components.values() if c.tier == 0} == {"cosmosdb", "aks", "redis"}
    assert policy.correlation_key == ("rule", "resource_id")


def _broken(tmp_path: Path, old: str, new: str) -> str:
    text = DEFAULT_POLICY.read_text()
    assert old in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    return message


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ('severity = "sev1"', 'severity = "sev5"', ["rules[0] (cosmosdb-unavailable).severity", "sev5"]),
        ('mode = "approve"', 'mode = "yolo"', ["rules[0] (cosmosdb-unavailable).actions[0].mode", "yolo"]),
        ("window_minutes = 60", "window_minutes = 'soon'", ["correlation.window_minutes", "expected int"]),
        ('key = ["rule", "resource_id"]', 'key = ["rule", "colour"]', ["correlation.key[1]", "colour"]),
        ("(?P<tenant>", "(?P<tenantx>", ["naming.pattern", "tenant"]),
        ("tier = 0", "tier = true", ["components.cosmosdb.tier", "expected int"]),
        ('id = "aks-unavailable"', 'id = "cosmosdb-unavailable"', ["rules[1].id", "used twice"]),
        ('severity = "sev1"', 'severity = "sev1"\ninformational = true', ["exactly one of"]),
        ("version = 1", "version = 2", ["version", "expected 1"]),
        ("[paging]", "[paging\n", ["not valid TOML"]),
        (
            'when = { component = "cosmosdb", health',
            'when = { component = "cosmosdb", helth',
            ["when.helth", "no signal"],
        ),
        ('reason = "Cosmos DB {resource_name}', 'reason = "Cosmos DB {resource_name:.0f}', ["format spec"]),
        ('reason = "Cosmos DB {resource_name}', 'reason = "Cosmos DB {resource_nam}', ["{resource_nam}"]),
        ('key = ["rule", "resource_id"]', "key = []", ["correlation.key", "at least one"]),
        ('severity = "sev1"', 'severity = "sev1"\nlower = "yes"', ["(cosmosdb-unavailable).lower", "bool"]),
        ("resolves = true", "resolves = true\nlower = true", ["(health-recovered).lower", "a severity"]),
        ('severity = "sev1"', 'severity = "sev1"\nlowr = true', ["unknown keys ['lowr']"]),
        (
            'mode = "auto", page = "on-failure"',
            'mode = "approve", page = "on-failure"',
            ["(redis-unavailable).actions[0].page", 'needs mode = "auto"'],
        ),
        ('page = "on-failure"', 'page = "sometimes"', ["actions[0].page", "'sometimes'"]),
        ("settle_minutes = 5 }", "settle_minutes = -1 }", ["actions[0]", "settle_minutes", "≥ 0"]),
        ('namespace = "{namespace}"', 'namespace = "{namespace"', ["(namespace-lost).actions[0].namespace"]),
        (
            'mode = "approve", namespace',
            'mode = "auto", approve_on_ack = true, namespace',
            ["approve_on_ack"],
        ),
        ("max_per_hour = 10", "max_per_hour = 0", ["guardrails.max_per_hour", "≥ 1"]),
        ("max_per_hour = 10", "max_per_hour = 10\nmax_per_day = 1", ["guardrails", "max_per_day"]),
        (
            "# ---- Sev1: full outage",
            '[targets."r1"]\nsentinels = ["10.0.0.4"]\nmaster = "m"\n# ---- Sev1: full outage',
            ['targets."r1".sentinels[0]', "host:port"],
        ),
        (
            "# ---- Sev1: full outage",
            '[targets."r1"]\nsentinels = ["10.0.0.4:26379"]\n# ---- Sev1: full outage',
            ['targets."r1"', "master"],
        ),
        (
            "# ---- Sev1: full outage",
            '[targets."r1"]\nkubecfg = "x"\n# ---- Sev1: full outage',
            ['targets."r1".kubecfg', "not one of"],
        ),
    ],
)
def test_policy_errors_name_the_file_and_the_place(
    tmp_path: Path, old: str, new: str, names: list[str]
) -> None:
    message = _broken(tmp_path, old, new)
    for name in names:
        assert name in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nowhere\.toml: cannot read"):
        load_policy(tmp_path / "nowhere.toml")


def test_the_registry_refuses_an_action_or_parameter_it_does_not_know(tmp_path: Path) -> None:
    from shared.actions.registry import Registry, validate_actions
    from tests.action_kinds import PretendCache, PretendFailover, policy_with

    registry = Registry([PretendFailover(PretendCache())])
    cases = [
        (
            '{ action = "test.failovr", mode = "auto" }',
            ["actions[0].action", "'test.failovr' is not an action", "test.failover"],
        ),
        (
            '{ action = "test.failover", mode = "auto", colour = "red" }',
            ["actions[0].colour", "no parameter 'colour'", "tries, zone"],
        ),
        ('{ action = "test.failover", mode = "auto", tries = "3" }', ["actions[0].tries", "expected int"]),
    ]
    for action, names in cases:
        policy = load_policy(policy_with(tmp_path / "policy.toml", action))
        with pytest.raises(PolicyError) as caught:
            validate_actions(policy, registry)
        message = str(caught.value)
        assert message.startswith(str(tmp_path / "policy.toml")) and "(test-redis-down)" in message
        for name in names:
            assert name in message, message
    validate_actions(
        load_policy(
            policy_with(tmp_path / "ok.toml", '{ action = "test.failover", mode = "auto", tries = 3 }')
        ),
        registry,
    )


def test_actions_carry_their_rule_templates_and_guardrail_defaults() -> None:
    policy = load_policy()
    redis = next(a for a in policy.actions() if a.action == "redis.failover")
    assert (redis.rule, redis.mode, redis.page, redis.settle_minutes, redis.resource) == (
        "redis-unavailable",
        "auto",
        "on-failure",
        5,
        "{resource_id}",
    )
    rollback = next(a for a in policy.actions() if a.action == "kubernetes.rollback")
    assert rollback.params == {"deployment": "{namespace}/{controller}", "rolled_out_within_minutes": 60}
    assert rollback.cooldown_minutes == policy.guardrails.cooldown_minutes == 30
    assert not any(
        a.action == "kubernetes.rollback"
        for r in policy.rules
        if r.id == "aks-node-pool-rolling-failed"
        for a in r.actions
    )
