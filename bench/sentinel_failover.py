"""Sentinel failover: an alert POSTed to `dr serve` → the master the Sentinels name takes a write.

Real redis-server and redis-sentinel processes (tests/servers/redis_sentinel.py: down-after 1 s,
failover-timeout 3 s, Sentinel timers quickened as the tests do). The clock starts when the POST
is sent and stops when every Sentinel names the same new master and a SET on it succeeds.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.acting import final, serving
from bench.report import BenchFailed, Figure
from tests.alerts import body, metric_alert
from tests.factories import resource
from tests.servers.redis_sentinel import MASTER_NAME, PASSWORD, MissingBinary, SentinelSet

GOAL_SECONDS = 15.0
NAME = "redis-amicis-bench-prod"
WAIT_SECONDS = 60.0


def run(profile: bool = False) -> list[Figure]:
    """One failover through `dr serve`; BenchFailed unless the Sentinels moved the master exactly once."""
    del profile
    with tempfile.TemporaryDirectory(prefix="dr-bench-sentinel-") as root:
        cluster = SentinelSet(Path(root))
        try:
            cluster.start()
        except MissingBinary as e:
            raise BenchFailed(f"sentinel: {e}") from e
        try:
            return _measure(cluster)
        finally:
            cluster.stop()


def _measure(cluster: SentinelSet) -> list[Figure]:
    old = cluster.said_by(cluster.sentinels[0])
    epoch = _epoch(cluster)
    listed = ", ".join(f'"{host}:{port}"' for host, port in cluster.sentinel_addresses)
    targets = (
        f'\n[targets."{NAME}"]\nsentinels = [{listed}]\nmaster = "{MASTER_NAME}"\n'
        'password_setting = "BENCH_REDIS_PASSWORD"\n'
    )
    with serving({"BENCH_REDIS_PASSWORD": PASSWORD}, targets) as served:
        alert = body(
            metric_alert(rule="redis-down", target=resource("redis", NAME), alert_id="bench-sentinel")
        )
        started = time.perf_counter()
        served.post_alert(alert)
        answered = time.perf_counter() - started
        served.wait_for(
            lambda: _new_master_writable(cluster, old), "a new master taking writes", WAIT_SECONDS
        )
        writable = time.perf_counter() - started
        served.wait_for(lambda: bool(final(served.actions())), "the action to finish", WAIT_SECONDS)
        recorded = time.perf_counter() - started
        [action] = served.actions()
    if action["state"] != "succeeded":
        raise BenchFailed(f"sentinel: the action is {action['state']}: {action.get('result')}")
    if _epoch(cluster) != epoch + 1:
        raise BenchFailed(f"sentinel: config epoch {epoch} → {_epoch(cluster)}: not exactly one failover")
    return [
        Figure(
            "sentinel",
            "POST → new master takes a write",
            f"{writable:.2f} s",
            f"≤ {GOAL_SECONDS:g} s",
            writable <= GOAL_SECONDS,
        ),
        Figure("sentinel", "POST → action recorded succeeded", f"{recorded:.2f} s"),
        Figure("sentinel", "POST answered (202)", f"{answered * 1000:.0f} ms"),
        Figure("sentinel", "failovers", "1 (asserted: config epoch +1)"),
    ]


def _new_master_writable(cluster: SentinelSet, old: tuple[str, int] | None) -> bool:
    try:
        named = {cluster.said_by(s) for s in cluster.sentinels}
        if len(named) != 1 or old in named or None in named:
            return False
        (master,) = named
        assert master is not None
        return bool(cluster.client(master).set("dr-bench-write", "after-failover"))
    except Exception:  # a node answering READONLY or refusing while roles change: not yet
        return False


def _epoch(cluster: SentinelSet) -> int:
    state = cluster.client(cluster.sentinels[0].address, data=False).execute_command(
        "SENTINEL MASTER", MASTER_NAME
    )
    return int(state.get("config-epoch", 0))
