"""redis.failover's Sentinel backend against real redis-server and redis-sentinel processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.actions.kind import ActionFailed, Context, Progress, Step, Target, Verdict
from shared.actions.redis import RedisFailover
from shared.adapters.azure_actions import azure_kinds
from shared.errors import OutcomeUnknown
from tests.servers.cutting_proxy import CuttingProxy
from tests.servers.redis_sentinel import MASTER_NAME, PASSWORD, SentinelSet, running_sentinels
from tests.stubs.arm import StubCredential

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CONTEXT = Context("inc-1", NOW, NOW)
FAILOVER_SECONDS = 20.0  # a failover here takes 1–4 s; the bound only stops a hung test


@pytest.fixture(scope="module")
def processes() -> Iterator[SentinelSet]:
    with running_sentinels("dr-sentinel-kind-") as cluster:
        yield cluster


@pytest.fixture
def cluster(processes: SentinelSet, monkeypatch: pytest.MonkeyPatch) -> SentinelSet:
    processes.heal()
    monkeypatch.setenv("SHOP_REDIS_PASSWORD", PASSWORD)
    return processes


@pytest.fixture
def kind() -> RedisFailover:
    # No ARM is called for a Sentinel target: the URL is never dialled.
    [redis] = [k for k in azure_kinds("https://127.0.0.1:9", StubCredential()) if k.name == "redis.failover"]
    assert isinstance(redis, RedisFailover)
    return redis


def target_of(cluster: SentinelSet, master: str = MASTER_NAME) -> Target:
    sentinels = [f"{host}:{port}" for host, port in cluster.sentinel_addresses]
    return Target(
        "redis-shop",
        reach={"sentinels": sentinels, "master": master, "password_setting": "SHOP_REDIS_PASSWORD"},
    )


def master_of(cluster: SentinelSet) -> tuple[str, int]:
    """The master as the first Sentinel names it (a demoted master says ROLE master for a while)."""
    said = cluster.said_by(cluster.sentinels[0])
    assert said is not None
    return said


def until_done(kind: RedisFailover, target: Target, step: Step) -> Step:
    deadline = time.monotonic() + FAILOVER_SECONDS
    while step.progress is Progress.PENDING and time.monotonic() < deadline:
        time.sleep(0.1)
        step = kind.check(target, CONTEXT, step.continuation)
    return step


def start_and_lose_its_answer(
    cluster: SentinelSet, kind: RedisFailover, proxy: CuttingProxy
) -> tuple[Target, dict[str, Any]]:
    """The target with `proxy` in place of the first Sentinel, and the precondition's `found`, once
    execute's SENTINEL FAILOVER went through the proxy and its answer was cut."""
    plain = target_of(cluster)
    _, *others = plain.reach["sentinels"]
    host, port = proxy.address
    target = Target(plain.resource, reach={**plain.reach, "sentinels": [f"{host}:{port}", *others]})
    found = dict(kind.precondition(target, CONTEXT).found)
    with pytest.raises(OutcomeUnknown, match="it may have started"):
        kind.execute(target, CONTEXT, found)
    return target, found


def test_sentinel_failover_records_the_old_master_and_is_done_when_all_agree_on_a_writable_new_one(
    cluster: SentinelSet, kind: RedisFailover
) -> None:
    old = master_of(cluster)
    target = target_of(cluster)

    found = kind.precondition(target, CONTEXT)
    assert found.verdict is Verdict.PROCEED
    assert found.found == {"old_master": [old[0], old[1]]}
    started = kind.execute(target, CONTEXT, found.found)
    assert started.progress is Progress.PENDING
    done = until_done(kind, target, started)

    assert done.progress is Progress.DONE, done.detail
    new = master_of(cluster)
    assert new != old
    assert done.detail == f"{new[0]}:{new[1]} is the master and accepted a write"
    assert {cluster.said_by(s) for s in cluster.sentinels} == {new}
    assert cluster.role(new) == "master"


def test_a_retried_execute_after_the_master_moved_sends_no_second_failover(
    cluster: SentinelSet, kind: RedisFailover
) -> None:
    target = target_of(cluster)
    found = kind.precondition(target, CONTEXT).found
    until_done(kind, target, kind.execute(target, CONTEXT, found))
    moved = master_of(cluster)

    again = kind.execute(target, CONTEXT, found)

    assert again.detail == f"master already moved to {moved[0]}:{moved[1]}"
    assert until_done(kind, target, again).progress is Progress.DONE
    assert master_of(cluster) == moved  # not swung back


def test_an_unknown_master_name_is_refused(cluster: SentinelSet, kind: RedisFailover) -> None:
    found = kind.precondition(target_of(cluster, master="no-such-master"), CONTEXT)

    assert found.verdict is Verdict.REFUSE
    assert "no Sentinel monitors a master named 'no-such-master'" in found.detail


def test_sentinel_refusing_the_failover_fails_the_action(cluster: SentinelSet, kind: RedisFailover) -> None:
    target = target_of(cluster)
    found = kind.precondition(target, CONTEXT).found
    started = kind.execute(target, CONTEXT, found)

    with pytest.raises(ActionFailed, match="already in progress"):
        # A second SENTINEL FAILOVER while the first runs: the master has not moved yet.
        kind.execute(target, CONTEXT, found)
    assert until_done(kind, target, started).progress is Progress.DONE


def test_a_failover_whose_answer_was_lost_is_found_by_the_new_master_and_not_sent_again(
    cluster: SentinelSet, kind: RedisFailover
) -> None:
    old = master_of(cluster)
    with CuttingProxy(cluster.sentinel_addresses[0], b"FAILOVER") as proxy:
        target, found = start_and_lose_its_answer(cluster, kind, proxy)
        deadline = time.monotonic() + FAILOVER_SECONDS
        said = {cluster.said_by(s) for s in cluster.sentinels}
        while time.monotonic() < deadline and (len(said) != 1 or old in said):
            time.sleep(0.1)  # until every Sentinel names the new master: the pipeline waits longer
            said = {cluster.said_by(s) for s in cluster.sentinels}

        again = kind.precondition(target, Context("inc-1", NOW, NOW, "act-1", found))

    new = master_of(cluster)
    assert new != old and proxy.cut == 1
    assert (again.verdict, again.detail) == (
        Verdict.STARTED,
        f"the Sentinels name {new[0]}:{new[1]} now, not {old[0]}:{old[1]}",
    )
    assert (
        until_done(kind, target_of(cluster), Step(Progress.PENDING, "", again.found)).progress
        is Progress.DONE
    )
    assert master_of(cluster) == new  # not swung back


def test_a_lost_failover_still_running_when_looked_at_again_is_watched_not_sent_again(
    cluster: SentinelSet, kind: RedisFailover
) -> None:
    old = master_of(cluster)
    with CuttingProxy(cluster.sentinel_addresses[0], b"FAILOVER") as proxy:
        target, found = start_and_lose_its_answer(cluster, kind, proxy)

        # At once, while Sentinel still promotes the replica: every Sentinel names the old master,
        # and a second SENTINEL FAILOVER would be refused (INPROG) and fail the action.
        again = kind.precondition(target, Context("inc-1", NOW, NOW, "act-1", found))
        done = until_done(kind, target, Step(Progress.PENDING, "", again.found))

    assert (again.verdict, again.detail) == (
        Verdict.STARTED,
        f"Sentinel {proxy.address[0]}:{proxy.address[1]} is failing {old[0]}:{old[1]} over now",
    )
    assert done.progress is Progress.DONE, done.detail
    new = master_of(cluster)
    assert new != old and proxy.cut == 1
    assert {cluster.said_by(s) for s in cluster.sentinels} == {new}  # moved once, not swung back
