"""ActionRequest as a button's value: compact, ours only, and read back exactly."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.chatops.operations import ActionRequest, OperationRefused
from shared.domain.actions import Actor

REQUESTS = [
    ActionRequest("failover", "redis-amicis-ikea-prod", "redis"),
    ActionRequest("rollback", "aks-1:shop/cart", revision=3),
    ActionRequest("restart", "shop/cart"),
    ActionRequest("restore", "shop", backup="daily-20261125"),
]


@pytest.mark.parametrize("request_", REQUESTS)
def test_a_request_survives_its_button_value(request_: ActionRequest) -> None:
    value = request_.to_value()
    assert len(value) <= 2000 and " " not in value
    assert ActionRequest.from_value(value) == request_


def test_the_command_reads_as_typed() -> None:
    assert [r.command for r in REQUESTS] == [
        "failover redis redis-amicis-ikea-prod",
        "rollback aks-1:shop/cart --to 3",
        "restart shop/cart",
        "restore shop --backup daily-20261125",
    ]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not json",
        "[]",
        '{"verb": "failover", "target": "x", "system": "redis"}',  # not ours: no "dr"
        '{"dr": 1, "verb": "delete", "target": "x"}',
        '{"dr": 1, "verb": "failover", "target": "x"}',  # a failover names its system
        '{"dr": 1, "verb": "restart", "target": "shop/cart", "system": "redis"}',
        '{"dr": 1, "verb": "rollback", "target": "shop/cart", "revision": true}',
        '{"dr": 1, "verb": "restore", "target": "shop", "backup": 7}',
        '{"dr": 1, "verb": "restart", "target": ""}',
    ],
)
def test_a_value_that_is_not_one_of_ours_is_refused_politely(value: str) -> None:
    with pytest.raises(OperationRefused, match="button"):
        ActionRequest.from_value(value)


def test_a_target_too_long_for_a_button_is_refused() -> None:
    with pytest.raises(OperationRefused, match="too long for a button"):
        ActionRequest("restart", "x" * 2000).to_value()


@given(st.text(max_size=300) | st.builds(json.dumps, st.dictionaries(st.text(max_size=10), st.integers())))
def test_any_value_is_read_or_refused_never_crashes(value: str) -> None:
    with contextlib.suppress(OperationRefused):
        ActionRequest.from_value(value)


def test_an_actor_reads_as_who_and_through_what() -> None:
    assert str(Actor("U0ADA", "slack")) == "U0ADA via slack"
