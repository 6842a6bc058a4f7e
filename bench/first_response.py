"""First response: 50 Azure caches down at once, each alert's 202 → that cache's first ARM request.

`dr serve` gets tokens from the managed-identity stub and calls the ARM stub (TLS), both in this
process, so the stub's arrival times and the POSTs' answer times are on one clock.
"""

from __future__ import annotations

import time
from typing import Any

from bench.acting import final, serving
from bench.report import BenchFailed, Figure, percentile
from shared.settings import Settings
from tests.alerts import body, metric_alert
from tests.factories import resource
from tests.stubs.arm import ArmStub
from tests.stubs.arm_services import azure_cache, serve_azure_cache
from tests.stubs.base import Recorded, Reply
from tests.stubs.managed_identity import ManagedIdentityStub

CACHES = 50
GOAL_P99 = 2.0  # seconds from the alert's 202 to the action's first ARM call
DONE_SECONDS = 120.0


class TimedArm(ArmStub):
    """The ARM stub, noting when each request arrived (perf_counter, the bench's clock)."""

    def __init__(self) -> None:
        super().__init__(keep_alive=True)
        self.arrivals: list[tuple[float, str, str]] = []  # (when, method, path)

    def answer(self, request: Recorded) -> Reply:
        self.arrivals.append((time.perf_counter(), request.method, request.path.lower()))
        return super().answer(request)


def cache_ids() -> list[str]:
    return [resource("redis", f"redis-amicis-t{i:02d}-prod") for i in range(CACHES)]


def run(profile: bool = False) -> list[Figure]:
    """POST 50 alerts, wait for 50 failovers; BenchFailed unless each cache was rebooted exactly once."""
    del profile  # the server is a child process; --profile is the http bench's
    caches = cache_ids()
    with ManagedIdentityStub() as identity, TimedArm() as arm:
        serve_azure_cache(arm)
        for cache in caches:
            azure_cache(arm, cache)
        env = arm.client_env() | identity.client_env() | {"DR_ARM_URL": arm.url}
        # The default guardrails allow 10 automatic actions an hour: this is 50 caches at once.
        # Checks as often as a deployment makes them: at the bench's usual 0.2 s the first 50
        # actions' checks (250 a second) compete with the later ones' first requests, which is
        # what this bench measures, and which in Azure no check comes near for 15 s.
        with serving(
            env,
            check_seconds=Settings.action_check_seconds,
            max_per_hour=1000,
            max_per_hour_per_tenant=1000,
            max_per_hour_per_region=1000,
        ) as served:
            answered: dict[str, float] = {}
            started = time.perf_counter()
            for i, cache in enumerate(caches):
                alert = metric_alert(rule="redis-down", target=cache, alert_id=f"bench-first-{i:04d}")
                report = served.post_alert(body(alert))
                answered[cache.lower()] = time.perf_counter()
                if report["accepted"] != 1:  # its incident and action follow once intake folds it
                    raise BenchFailed(f"first-response: alert {i}: {report['accepted']} accepted")
            sent = time.perf_counter() - started
            served.wait_for(lambda: len(final(served.actions())) == CACHES, "50 failovers", DONE_SECONDS)
            all_done = time.perf_counter() - started
            actions = served.actions()
        first = _first_requests(arm.arrivals, answered)
        _check(arm, actions, caches, identity)
    waits = sorted(first[c] - answered[c] for c in answered)
    p99 = percentile(waits, 99)
    return [
        Figure("first-response", "202 → first ARM request p50", f"{percentile(waits, 50):.3f} s"),
        Figure(
            "first-response",
            "202 → first ARM request p99",
            f"{p99:.3f} s",
            f"≤ {GOAL_P99:g} s",
            p99 <= GOAL_P99,
        ),
        Figure("first-response", "202 → first ARM request max", f"{waits[-1]:.3f} s"),
        Figure("first-response", "alerts posted", f"{CACHES} in {sent:.2f} s, all 202"),
        Figure("first-response", "all 50 failovers verified", f"{all_done:.1f} s after the first POST"),
        Figure("first-response", "reboots", f"{CACHES} (asserted: one per cache)"),
    ]


def _first_requests(arrivals: list[tuple[float, str, str]], answered: dict[str, float]) -> dict[str, float]:
    """Each cache's first request: its precondition's GET (a request under the cache's id)."""
    first: dict[str, float] = {}
    for when, _, path in arrivals:
        for cache in answered:
            if (path == cache or path.startswith(cache + "/")) and cache not in first:
                first[cache] = when
    missing = sorted(set(answered) - set(first))
    if missing:
        raise BenchFailed(f"first-response: no ARM request for {len(missing)} caches, e.g. {missing[0]}")
    return first


def _check(
    arm: ArmStub, actions: list[dict[str, Any]], caches: list[str], identity: ManagedIdentityStub
) -> None:
    problems = []
    states = [a["state"] for a in actions]
    if states.count("succeeded") != CACHES or len(actions) != CACHES:
        problems.append(f"expected {CACHES} succeeded actions, got {sorted(states)}")
    for cache in caches:
        reboots = arm.requests_to(f"{cache}/forceReboot", "POST")
        if len(reboots) != 1 or reboots[0].json != {"rebootType": "PrimaryNode"}:
            problems.append(f"{cache}: {len(reboots)} reboot POSTs")
            break
    if not identity.issued or set(arm.bearer_tokens()) - set(identity.tokens()):
        problems.append("ARM saw a token the managed-identity stub did not issue")
    if problems:
        raise BenchFailed("first-response: " + "; ".join(problems))
