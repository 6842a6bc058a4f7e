"""A person's /dr action made concrete: the registry's action, its resource and parameters, its incident."""

from __future__ import annotations

import pytest

from shared.actions.manual import Unresolvable, manual_action_id, manual_mode, resolve
from shared.domain.incidents import Incident
from shared.triage.policy import load_policy
from tests.factories import incident, resource

POLICY = load_policy()
AKS = resource("aks", "aks-amicis-ikea-prod", "rg-amicis-ikea-prod")
OTHER_AKS = resource("aks", "aks-amicis-hm-prod", "rg-amicis-hm-prod")
REDIS = resource("redis", "redis-amicis-ikea-prod", "rg-amicis-ikea-prod")


def on(resource_id: str, id: str = "inc-1", rule: str = "bad-deployment") -> Incident:
    return incident(id, resource_id=resource_id, rule=rule)


def test_a_rollback_goes_to_the_only_cluster_with_an_open_incident_with_the_recency_check_off() -> None:
    cluster_incident = on(AKS)
    found = resolve("rollback", "", "shop/cart", 3, None, [on(REDIS, "inc-2"), cluster_incident], POLICY)
    assert (found.action, found.resource, found.incident) == ("kubernetes.rollback", AKS, cluster_incident)
    assert found.params == {"deployment": "shop/cart", "rolled_out_within_minutes": 0, "to_revision": 3}


def test_two_clusters_with_incidents_need_the_cluster_named() -> None:
    open_ = [on(AKS), on(OTHER_AKS, "inc-2")]
    with pytest.raises(
        Unresolvable, match="open AKS incidents are on aks-amicis-hm-prod, aks-amicis-ikea-prod"
    ):
        resolve("restart", "", "shop/cart", None, None, open_, POLICY)
    found = resolve("restart", "", "aks-amicis-hm-prod:shop/cart", None, None, open_, POLICY)
    assert (found.resource, found.params) == (OTHER_AKS, {"deployment": "shop/cart"})
    by_id = resolve("restart", "", f"{AKS}:shop/cart", None, None, [], POLICY)
    assert (by_id.resource, by_id.incident) == (AKS, None)


def test_a_restore_takes_the_backup_given_else_the_policys_schedule() -> None:
    given = resolve("restore", "", "shop", None, "daily-20261125", [on(AKS)], POLICY)
    assert (given.action, given.params) == (
        "velero.restore",
        {"namespace": "shop", "backup": "daily-20261125"},
    )
    newest = resolve("restore", "", "shop", None, None, [on(AKS)], POLICY)
    assert newest.params == {"namespace": "shop", "schedule": "daily"}


def test_a_failover_by_name_takes_the_open_incidents_resource_and_its_incident() -> None:
    redis_incident = on(REDIS, rule="redis-unavailable")
    found = resolve("failover", "redis", "REDIS-amicis-ikea-prod", None, None, [redis_incident], POLICY)
    assert (found.action, found.resource, found.incident) == ("redis.failover", REDIS, redis_incident)
    with pytest.raises(Unresolvable, match="is not a Cosmos DB account ARM id"):
        resolve("failover", "cosmos", REDIS, None, None, [], POLICY)


@pytest.mark.parametrize(
    ("verb", "target", "reason"),
    [
        ("rollback", "Shop/Cart", "namespace"),
        ("rollback", "shop", "namespace"),
        ("restore", "shop/cart", "restore takes"),
        ("restart", "shop/cart", "no open incident is on an AKS cluster"),
    ],
)
def test_what_does_not_resolve_says_why(verb: str, target: str, reason: str) -> None:
    with pytest.raises(Unresolvable, match=reason):
        resolve(verb, "", target, None, None, [], POLICY)


def test_the_mode_is_the_policys_and_a_suggestion_runs_when_a_person_confirms_it() -> None:
    assert manual_mode("cosmosdb.failover", None, POLICY, "auto") == "approve"
    assert manual_mode("velero.restore", on(AKS, rule="namespace-lost"), POLICY, "auto") == "approve"
    assert manual_mode("kubernetes.restart", None, POLICY, "auto") == "auto"  # no rule: the kind's default
    assert manual_mode("kubernetes.restart", None, POLICY, "suggest") == "auto"


def test_one_action_id_per_request() -> None:
    assert manual_action_id("req-1") == manual_action_id("req-1") != manual_action_id("req-2")
    assert manual_action_id("req-1").startswith("act-")
