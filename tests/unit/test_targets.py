"""Targets: the rule's templates filled in from the signal, or a reason why there is no target."""

from __future__ import annotations

from shared.domain.resources import parse_resource_id
from shared.triage.policy import ActionPlan
from shared.triage.targets import resolve_target
from tests.factories import signal

AKS = "/subscriptions/1/resourceGroups/rg-shop/providers/Microsoft.ContainerService/managedClusters/aks-shop"


def plan(**params: object) -> ActionPlan:
    return ActionPlan("kubernetes.rollback", "auto", rule="bad-deployment", params=params)


def test_dimensions_and_custom_properties_fill_the_templates() -> None:
    found = signal(
        resource_id=AKS,
        component="aks",
        facts={"dimensions": ("namespace=shop", "controller=cart"), "properties": ("team=payments",)},
    )
    target = resolve_target(plan(deployment="{namespace}/{controller}", to_revision=3, team="{team}"), found)
    assert (target.resource, dict(target.params), target.problem) == (
        AKS,
        {"deployment": "shop/cart", "to_revision": 3, "team": "payments"},
        "",
    )


def test_the_resource_template_may_name_signal_fields() -> None:
    found = signal(resource_id=AKS, component="aks")
    target = resolve_target(
        ActionPlan("x", "auto", resource="{resource_group}/{resource_name}", params={}), found
    )
    assert target.resource == "rg-shop/aks-shop"


def test_a_placeholder_nothing_fills_is_no_target() -> None:
    target = resolve_target(plan(deployment="{namespace}/{controller}"), signal(resource_id=AKS))
    assert target.resource == "" and target.params == {}
    assert (
        target.problem
        == "deployment = '{namespace}/{controller}': the signal has no {namespace}, so there is no target"
    )


def test_a_placeholder_two_values_fill_is_more_than_one_resource() -> None:
    found = signal(
        resource_id=AKS, facts={"dimensions": ("namespace=shop", "namespace=cart", "controller=x")}
    )
    target = resolve_target(plan(deployment="{namespace}/{controller}"), found)
    assert target.resource == ""
    assert "{namespace} is more than one resource (cart, shop)" in target.problem


def test_a_signal_without_a_resource_has_no_target() -> None:
    found = signal(facts={}, resource=parse_resource_id(""))
    target = resolve_target(ActionPlan("redis.failover", "auto"), found)
    assert target.problem.startswith("resource = '{resource_id}': the signal has no {resource_id}")
