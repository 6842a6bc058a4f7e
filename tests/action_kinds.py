"""An action kind of our own for testing the pipeline: a pretend cache whose primary can move.

It is a fake of our port (`shared.actions.kind.ActionKind`), not of any vendor's client: the vendor
adapters are tested against their wire-protocol stubs. It records every step it was asked to run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.actions.kind import Context, Param, Precheck, Progress, Step, Target, Verdict
from shared.triage.policy import DEFAULT_POLICY


@dataclass
class PretendCache:
    """The world the pretend action changes: which node is primary, and how it answers."""

    primary: str = "node-0"
    healthy_replica: bool = True
    polls_until_done: int = 1  # checks that answer "pending" before the swap shows
    check_after: float = 0  # seconds a "pending" check asks to be checked again after
    errors: dict[str, list[Exception]] = field(default_factory=dict)  # step → errors raised first, in order
    calls: list[tuple[str, str]] = field(default_factory=list)  # (step, resource)
    starts: int = 0  # how often the failover was started: the thing that must never exceed one
    during_execute: Any = None  # a callable run inside execute, before it returns (a crash, say)
    during_precondition: Any = None  # a callable run inside the precondition (another instance acting)
    takes: bool = True  # False: the reboot is accepted but the primary stays (the check fails)

    def fail(self, step: str, *errors: Exception) -> None:
        """The next calls of `step` raise these, in order."""
        self.errors.setdefault(step, []).extend(errors)

    def _maybe_fail(self, step: str) -> None:
        pending = self.errors.get(step)
        if pending:
            raise pending.pop(0)


class PretendFailover:
    """`test.failover`: swap the pretend cache's primary, the way a Redis failover does."""

    name = "test.failover"
    default_mode = "approve"
    params: Mapping[str, Param] = {
        "zone": Param(help="where"),
        "tries": Param(kind=int),
        "part": Param(help="the part of the cache it changes", narrows=True),
    }
    timeout_minutes = 10

    def __init__(self, world: PretendCache) -> None:
        self.world = world

    def describe(self, target: Target) -> str:
        return f"fail over {target.resource} away from {self.world.primary}"

    def command(self, target: Target) -> str:
        return f"pretend failover --name {target.resource.rsplit('/', 1)[-1]}"

    def precondition(self, target: Target, context: Context) -> Precheck:
        self.world.calls.append(("precondition", target.resource))
        self.world._maybe_fail("precondition")
        if self.world.during_precondition is not None:
            self.world.during_precondition()
        if self.world.primary != "node-0":
            return Precheck(Verdict.SKIP, f"the primary is {self.world.primary} already")
        if not self.world.healthy_replica:
            return Precheck(Verdict.REFUSE, "the replica is not healthy")
        return Precheck(Verdict.PROCEED, "replica node-1 healthy", {"old_primary": self.world.primary})

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        self.world.calls.append(("execute", target.resource))
        self.world._maybe_fail("execute")
        self.world.starts += 1
        if self.world.during_execute is not None:
            self.world.during_execute()
        if self.world.takes:
            self.world.primary = "node-1"
        return Step(Progress.PENDING, "reboot of node-0 accepted", {"old": found.get("old_primary", "")}, 0)

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        self.world.calls.append(("check", target.resource))
        self.world._maybe_fail("check")
        if self.world.polls_until_done > 0:
            self.world.polls_until_done -= 1
            return Step(Progress.PENDING, "node-0 rebooting", continuation, self.world.check_after)
        if self.world.primary == continuation.get("old"):
            return Step(Progress.FAILED, "the primary did not move")
        return Step(Progress.DONE, f"primary moved {continuation.get('old')} → {self.world.primary}")


def policy_without_actions(path: Path) -> Path:
    """The default policy with every action taken out (for tests that count cards and thread lines)."""
    path.write_text(re.sub(r"^actions = .*$", "", DEFAULT_POLICY.read_text(), flags=re.M))
    return path


def policy_with(
    path: Path, action: str, guardrails: str = "", targets: str = "", severity: str = "sev2"
) -> Path:
    """The default policy with its actions taken out and one rule that acts on `redis-down*` alerts
    (a Sev2 alert), of that severity (sev3: one that does not page until the action escalates)."""
    text = re.sub(r"^actions = .*$", "", DEFAULT_POLICY.read_text(), flags=re.M)
    rule = f"""
[[rules]]
id = "test-redis-down"
when = {{ rule = "redis-down*" }}
severity = "{severity}"
reason = "Redis {{resource_name}} is down"
actions = [{action}]
"""
    path.write_text(text.replace("# ---- Sev1", rule + "\n# ---- Sev1", 1) + guardrails + targets)
    return path


def acting_policy(path: Path, action: str, *, targets: str = "", **guardrails: int) -> Path:
    """`policy_with`, its [guardrails] values replaced by the ones given (e.g. max_per_hour=100)."""
    policy_with(path, action, targets=targets)
    text = path.read_text()
    for key, value in guardrails.items():
        text, found = re.subn(rf"^{key} = \d+$", f"{key} = {value}", text, count=1, flags=re.M)
        if not found:
            raise KeyError(f"the default policy's [guardrails] has no {key}")
    path.write_text(text)
    return path
