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
