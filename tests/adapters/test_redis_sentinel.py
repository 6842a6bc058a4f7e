"""SentinelRedis with the real redis-py against real redis-server and redis-sentinel processes.

One set of processes for the module (tests/servers/redis_sentinel.py); each test starts from a
whole set (`heal`: whatever a test killed is restarted, and the roles may have swapped since a
failover), and reads the real state straight from the processes to check what the adapter said.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.redis_sentinel import PROBE_KEY, PROBE_TTL_MS, SentinelRedis, show
from shared.errors import OutcomeUnknown, Rejected, Transient
from tests.servers.cutting_proxy import CuttingProxy
from tests.servers.redis_sentinel import (
    MASTER_NAME,
    PASSWORD,
    MissingBinary,
    SentinelSet,
    binary,
    running_sentinels,
    wait_for,
)

FAILOVER_SECONDS = 20.0  # a failover here takes 1–4 s; the bound only stops a hung test


@pytest.fixture(scope="module")
def processes() -> Iterator[SentinelSet]:
    with running_sentinels("dr-sentinel-") as cluster:
        yield cluster


@pytest.fixture
def cluster(processes: SentinelSet) -> SentinelSet:
    processes.heal()
    return processes


@pytest.fixture
def redis(cluster: SentinelSet) -> Iterator[SentinelRedis]:
    adapter = SentinelRedis(
        cluster.sentinel_addresses, MASTER_NAME, password=PASSWORD, connect_timeout=0.5, command_timeout=1.0
    )
    yield adapter
    adapter.close()


def roles(cluster: SentinelSet) -> tuple[tuple[str, int], tuple[str, int]]:
    """(master, replica) as the data nodes themselves say."""
    if cluster.role(cluster.primary.address) == "master":
        return cluster.primary.address, cluster.replica.address
    return cluster.replica.address, cluster.primary.address


def test_importing_the_adapter_leaves_redis_py_unimported() -> None:
    """Cold start: only a call into the adapter pays for redis-py."""
    code = (
        "import sys, function_app, shared.adapters.redis_sentinel; "
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))"
    )
    root = Path(__file__).resolve().parents[2]
    ran = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)

    assert ran.stdout.strip() == "[]"


def test_a_missing_binary_fails_naming_the_packages_to_install() -> None:
    with pytest.raises(MissingBinary) as missing:
        binary("redis-server-not-installed")

    assert str(missing.value).startswith(
        "redis-server-not-installed not found on PATH: install the Debian packages redis-server and "
        "redis-sentinel (scripts/system-deps.sh does, as root"
    )


def test_master_is_the_address_every_sentinel_names(cluster: SentinelSet, redis: SentinelRedis) -> None:
    master, _ = roles(cluster)

    assert redis.master() == master
    assert [(r.sentinel, r.master, r.error) for r in redis.reports()] == [
        (s.address, master, None) for s in cluster.sentinels
    ]
    assert {cluster.said_by(s) for s in cluster.sentinels} == {master}


def test_failover_promotes_the_replica_and_check_says_done_once_all_agree_and_it_takes_a_write(
    cluster: SentinelSet, redis: SentinelRedis, caplog: pytest.LogCaptureFixture
) -> None:
    master, replica = roles(cluster)
    caplog.set_level(logging.INFO, logger="shared.adapters.redis_sentinel")

    old = redis.failover()
    first = redis.check(old)
    result = redis.verify(old, within=FAILOVER_SECONDS, interval=0.1)

    assert old == master
    first_sentinel = show(cluster.sentinels[0].address)
    assert f"SENTINEL FAILOVER {MASTER_NAME} at {first_sentinel}: sent; the master was {show(master)}" in (
        caplog.messages
    )
    assert not first.done  # Sentinel needs a second or so to promote: the first look is pending
    assert first.reason
    assert result.done and result.master == replica
    assert result.reason == f"{show(replica)} is the master and accepted a write"
    assert [r.master for r in result.reports] == [replica] * 3
    # The real state: every Sentinel names the former replica, which is master and holds the probe.
    assert [cluster.said_by(s) for s in cluster.sentinels] == [replica] * 3
    assert cluster.role(replica) == "master"
    assert 0 < cluster.client(replica).pttl(PROBE_KEY) <= PROBE_TTL_MS


def test_a_second_failover_while_one_runs_is_rejected_and_not_repeated(
    cluster: SentinelSet, redis: SentinelRedis
) -> None:
    master, replica = roles(cluster)

    old = redis.failover()
    with pytest.raises(Rejected) as refused:
        redis.failover()
    done = redis.verify(old, within=FAILOVER_SECONDS, interval=0.1)

    assert str(refused.value) == (
        f"SENTINEL FAILOVER {MASTER_NAME} at {show(cluster.sentinels[0].address)}: a failover of "
        f"'{MASTER_NAME}' is already in progress; not repeated (watch master() instead) "
        "(INPROG Failover already in progress)"
    )
    # Only the first one happened: the master moved once, to the replica, and not back.
    assert old == master and done.master == replica
    assert [cluster.said_by(s) for s in cluster.sentinels] == [replica] * 3


def test_failing_over_names_the_sentinel_running_the_failover_until_it_is_done(
    cluster: SentinelSet, redis: SentinelRedis
) -> None:
    before = redis.failing_over()

    old = redis.failover()
    running = redis.failing_over()  # at once: Sentinel promotes the replica for a second or so
    redis.verify(old, within=FAILOVER_SECONDS, interval=0.1)
    wait_for("the failover to end", lambda: not redis.failing_over(), FAILOVER_SECONDS, cluster.logs)

    assert before == []
    assert running == [cluster.sentinels[0].address]  # only the one that took the command says so


def test_failover_with_the_replica_down_is_rejected_and_the_master_stays(
    cluster: SentinelSet, redis: SentinelRedis
) -> None:
    master, replica = roles(cluster)
    cluster.node(replica).kill()
    wait_for(
        "sentinel-0 to see the replica gone",
        lambda: all(
            r["is_disconnected"] or r["is_sdown"] for r in cluster.replicas_seen_by(cluster.sentinels[0])
        ),
        10,
        cluster.logs,
    )

    with pytest.raises(Rejected) as refused:
        redis.failover()

    assert str(refused.value) == (
        f"SENTINEL FAILOVER {MASTER_NAME} at {show(cluster.sentinels[0].address)}: Sentinel has no "
        f"replica of '{MASTER_NAME}' fit to promote (down, disconnected or lagging) "
        "(NOGOODSLAVE No suitable replica to promote)"
    )
    assert redis.master() == master
    assert cluster.role(master) == "master"
    assert [cluster.said_by(s) for s in cluster.sentinels] == [master] * 3


def test_with_one_sentinel_down_the_others_answer_and_a_failover_goes_through_them(
    cluster: SentinelSet, redis: SentinelRedis, caplog: pytest.LogCaptureFixture
) -> None:
    master, replica = roles(cluster)
    down = cluster.sentinels[0]
    down.kill()
    caplog.set_level(logging.INFO, logger="shared.adapters.redis_sentinel")

    reports = redis.reports()
    answered = redis.master()
    old = redis.failover()
    done = redis.verify(old, within=FAILOVER_SECONDS, interval=0.1)

    assert answered == master
    assert reports[0].master is None and reports[0].error is not None
    assert reports[0].error.startswith(f"Sentinel {show(down.address)}: unreachable (ConnectionError: ")
    assert [(r.master, r.error) for r in reports[1:]] == [(master, None), (master, None)]
    # The command went to the next Sentinel; the two that answer agree on the new master.
    next_one = show(cluster.sentinels[1].address)
    assert f"SENTINEL FAILOVER {MASTER_NAME} at {next_one}: sent; the master was {show(master)}" in (
        caplog.messages
    )
    assert old == master and done.done and done.master == replica
    assert [r.master for r in done.reports] == [None, replica, replica]
    assert [cluster.said_by(s) for s in cluster.sentinels[1:]] == [replica, replica]


def test_a_failover_whose_answer_is_lost_is_outcome_unknown_and_did_happen(cluster: SentinelSet) -> None:
    master, replica = roles(cluster)
    first, *others = cluster.sentinel_addresses
    with CuttingProxy(first, b"FAILOVER") as proxy:
        redis = SentinelRedis(
            [proxy.address, *others], MASTER_NAME, password=PASSWORD, connect_timeout=0.5, command_timeout=1.0
        )
        try:
            with pytest.raises(OutcomeUnknown) as lost:
                redis.failover()
            done = redis.verify(master, within=FAILOVER_SECONDS, interval=0.1)
        finally:
            redis.close()

    said = str(lost.value)
    assert said.startswith(f"SENTINEL FAILOVER {MASTER_NAME} at {show(proxy.address)}: the answer was lost (")
    assert said.endswith("; it may have started: look at master() before trying again")
    assert proxy.cut == 1
    # Sentinel got it and did it: sending it again would have failed the master back.
    assert done.done and done.master == replica
    assert [cluster.said_by(s) for s in cluster.sentinels] == [replica] * 3


def config_epoch(cluster: SentinelSet, sentinel: int) -> int:
    """The master's config epoch as one Sentinel has it: one more after each failover."""
    state = cluster.client(cluster.sentinels[sentinel].address, data=False).execute_command(
        "SENTINEL MASTER", MASTER_NAME
    )
    return int(state["config-epoch"])


def test_a_sentinel_gone_between_the_question_and_the_command_is_passed_over_at_once(
    cluster: SentinelSet, caplog: pytest.LogCaptureFixture
) -> None:
    master, replica = roles(cluster)
    first, *others = cluster.sentinel_addresses
    epoch = config_epoch(cluster, 1)
    caplog.set_level(logging.INFO, logger="shared.adapters.redis_sentinel")
    # The first Sentinel names the master, then dies: its port refuses the command's connection.
    with CuttingProxy(first, b"GET-MASTER-ADDR-BY-NAME", vanish=True) as proxy:
        redis = SentinelRedis(
            [proxy.address, *others], MASTER_NAME, password=PASSWORD, connect_timeout=0.5, command_timeout=1.0
        )
        try:
            old = redis.failover()  # neither OutcomeUnknown nor Transient: the next Sentinel took it
            done = redis.verify(old, within=FAILOVER_SECONDS, interval=0.1)
        finally:
            redis.close()

    assert proxy.gone and old == master
    assert f"SENTINEL FAILOVER {MASTER_NAME} at {show(others[0])}: sent; the master was {show(master)}" in (
        caplog.messages
    )
    assert done.done and done.master == replica

    # verify could not ask the first Sentinel (behind the vanished proxy): it hears of the new master
    # from the others' hello messages, a moment later.
    def told() -> bool:
        return [cluster.said_by(s) for s in cluster.sentinels] == [replica] * 3

    wait_for("every Sentinel to name the new master", told, FAILOVER_SECONDS, cluster.logs)
    assert config_epoch(cluster, 1) == epoch + 1  # one failover, not two


def test_with_every_sentinel_down_master_and_failover_are_transient_and_check_pending(
    cluster: SentinelSet, redis: SentinelRedis
) -> None:
    master, _ = roles(cluster)
    for s in cluster.sentinels:
        s.kill()

    with pytest.raises(Transient) as no_master:
        redis.master()
    with pytest.raises(Transient) as no_failover:
        redis.failover()
    pending = redis.check(master)

    said = str(no_master.value)
    head, each = said.split(" needed: ", 1)
    assert head == f"only 0 of 3 Sentinels answered for '{MASTER_NAME}', 2"
    for part, s in zip(each.split("; "), cluster.sentinels, strict=True):
        assert part.startswith(f"Sentinel {show(s.address)}: unreachable (ConnectionError: Error 111 ")
    assert str(no_failover.value).startswith(f"no Sentinel answered for '{MASTER_NAME}': ")
    assert not isinstance(no_failover.value, OutcomeUnknown), "nothing was sent: it may be sent again"
    assert not pending.done and pending.master is None and pending.reason == said
    assert cluster.role(master) == "master"  # nothing was sent anywhere else


def test_a_check_before_any_failover_is_pending_and_verify_gives_up_at_its_deadline(
    cluster: SentinelSet, redis: SentinelRedis
) -> None:
    master, _ = roles(cluster)
    cluster.client(master).delete(PROBE_KEY)

    pending = redis.check(master)
    with pytest.raises(Transient) as late:
        redis.verify(master, within=0.3, interval=0.1)

    assert not pending.done and pending.master == master
    assert pending.reason.startswith("the Sentinels still name the old master: ")
    assert str(late.value).startswith(f"failover of '{MASTER_NAME}' not done after 0.3 s: the Sentinels")
    assert cluster.client(master).exists(PROBE_KEY) == 0  # a pending check writes nothing


def test_a_master_that_refuses_the_probe_write_keeps_the_check_pending(
    cluster: SentinelSet, redis: SentinelRedis
) -> None:
    master, replica = roles(cluster)
    cluster.client(master).delete(PROBE_KEY)
    cluster.client(master).config_set("min-replicas-to-write", 2)  # it has one: writes are refused
    try:
        pending = redis.check(replica)  # as if `replica` were the old master: the check probes `master`
    finally:
        cluster.client(master).config_set("min-replicas-to-write", 0)
    done = redis.check(replica)

    assert not pending.done and pending.master == master
    assert pending.reason == (
        f"the new master {show(master)} refused the write (NOREPLICAS Not enough good replicas to write.)"
    )
    assert done.done and done.master == master
    assert 0 < cluster.client(master).pttl(PROBE_KEY) <= PROBE_TTL_MS


def test_a_wrong_password_is_rejected_and_never_shown(cluster: SentinelSet) -> None:
    master, replica = roles(cluster)
    wrong = SentinelRedis(cluster.sentinel_addresses, MASTER_NAME, password="wrong-pw-0451")
    missing = SentinelRedis(cluster.sentinel_addresses, MASTER_NAME)

    with pytest.raises(Rejected) as refused:
        wrong.check(replica)  # the Sentinels name `master`, not `replica`: so it probes `master`
    with pytest.raises(Rejected) as unasked:
        missing.check(replica)

    assert str(refused.value).startswith(f"the new master {show(master)}: ")
    assert "wrong-pw-0451" not in str(refused.value) and PASSWORD not in str(refused.value)
    assert str(unasked.value).startswith(f"the new master {show(master)}")
    assert "NOAUTH" in str(unasked.value) or "Authentication required" in str(unasked.value)


def test_a_master_name_no_sentinel_monitors_is_rejected(cluster: SentinelSet) -> None:
    unknown = SentinelRedis(cluster.sentinel_addresses, "no-such-master")

    with pytest.raises(Rejected) as no_master:
        unknown.master()
    with pytest.raises(Rejected) as no_failover:
        unknown.failover()

    assert str(no_master.value).startswith("no Sentinel monitors a master named 'no-such-master' (")
    assert "does not know the master" in str(no_master.value)
    assert str(no_failover.value) == (
        f"Sentinel {show(cluster.sentinels[0].address)} does not monitor a master named 'no-such-master'"
    )
