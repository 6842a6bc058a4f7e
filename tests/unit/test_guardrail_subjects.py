"""Which actions hold each other: the same subject, or one inside the other, never a mere prefix."""

from __future__ import annotations

import pytest

from shared.actions.guardrails import overlap

CLUSTER = "/subscriptions/s/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/aks-1"


@pytest.mark.parametrize(
    ("subject", "other", "held"),
    [
        (CLUSTER + "/shop/cart", CLUSTER + "/shop/cart", True),  # one Deployment, twice
        (CLUSTER + "/shop/cart", CLUSTER + "/shop", True),  # a Deployment in a namespace being restored
        (CLUSTER, CLUSTER + "/shop/cart", True),  # the whole cluster and a Deployment in it
        (CLUSTER + "/shop/cart", CLUSTER + "/shop/checkout", False),  # two Deployments
        (CLUSTER + "/shop", CLUSTER + "/shopping", False),  # a prefix of a name is not a part
        (CLUSTER, CLUSTER + "-2", False),  # another cluster
    ],
)
def test_overlap(subject: str, other: str, held: bool) -> None:
    assert overlap(subject, other) is held
    assert overlap(other, subject) is held
