"""Who may change things from Slack: the allowlist, its user groups, or whoever is on call now.

Read-only commands are anyone's. Everything that changes something asks `Authorisation.check`:
SLACK_ALLOWED_USERS first (no call at all), then the members of SLACK_ALLOWED_GROUPS, then the
person PagerDuty has on call for the service, matched by the e-mail Slack's users.info gives.
Lookups are cached: a storm's worth of button presses must not become a storm of API calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from shared.errors import Rejected
from shared.ports import OnCall

log = logging.getLogger(__name__)

EMAIL_TTL_SECONDS = 600.0  # a person's address rarely changes
GROUP_TTL_SECONDS = 60.0  # membership changes when someone joins the rota
T = TypeVar("T")


class People(Protocol):
    """Slack's directory (users.info, usergroups.users.list)."""

    def email(self, user_id: str) -> str | None:
        """The user's e-mail address, if known."""
        ...

    def group_members(self, group_id: str) -> frozenset[str]:
        """The user ids in a user group."""
        ...


@runtime_checkable
class OnCallLookup(Protocol):
    """PagerDuty's on-call people for the service (`PagerDutyRest.on_call`, cached there for a minute)."""

    def on_call(self) -> list[OnCall]:
        """Who is on call now."""
        ...


@dataclass(frozen=True)
class Verdict:
    """Whether the user may, and why (for the audit line)."""

    allowed: bool
    because: str


class Authorisation:
    """Checks a Slack user against the allowlist, its groups and PagerDuty's on-call."""

    def __init__(
        self,
        users: Sequence[str],
        groups: Sequence[str],
        people: People | None,
        on_call: OnCallLookup | None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = frozenset(users)
        self.groups = tuple(groups)
        self._people = people
        self._on_call = on_call
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._emails: dict[str, tuple[float, str | None]] = {}
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    def check(self, user_id: str) -> Verdict:
        """Allowed, and by what; raises Transient when Slack or PagerDuty cannot say right now."""
        try:
            return self._check(user_id)
        except Rejected as e:  # a missing scope, a revoked token: refuse, and say what to fix
            log.error("authorising %s: %s", user_id, e)
            return Verdict(False, f"could not be checked ({e})")

    def _check(self, user_id: str) -> Verdict:
        if user_id in self.users:
            return Verdict(True, "on SLACK_ALLOWED_USERS")
        people = self._people
        if people is not None:
            for group in self.groups:
                if user_id in self._group(people, group):
                    return Verdict(True, f"in user group {group}")
            if self._on_call is not None:
                on_call = self._on_call.on_call()
                if on_call:
                    email = self._email(people, user_id)
                    match = next((p for p in on_call if email and p.email.strip().lower() == email), None)
                    if match is not None:
                        return Verdict(True, f"on call in PagerDuty ({match.name})")
        return Verdict(False, "not on the allowlist, in an allowed group, or on call")

    def who_may(self) -> str:
        """The polite sentence saying who may, for a refusal."""
        may = []
        if self.users:
            may.append(", ".join(f"<@{u}>" for u in sorted(self.users)))
        if self.groups and self._people is not None:
            may.append("members of " + ", ".join(f"<!subteam^{g}>" for g in self.groups))
        if self._on_call is not None and self._people is not None:
            may.append("whoever is on call now in PagerDuty")
        if not may:
            return "Nobody may yet: set SLACK_ALLOWED_USERS or SLACK_ALLOWED_GROUPS, or connect PagerDuty."
        return "Only " + "; ".join(may) + " may do this."

    def _email(self, people: People, user_id: str) -> str | None:
        return self._remembered(self._emails, user_id, EMAIL_TTL_SECONDS, people.email)

    def _group(self, people: People, group_id: str) -> frozenset[str]:
        return self._remembered(self._members, group_id, GROUP_TTL_SECONDS, people.group_members)

    def _remembered(
        self, cache: dict[str, tuple[float, T]], key: str, ttl: float, look_up: Callable[[str], T]
    ) -> T:
        """The cached answer while younger than ttl, else a fresh look-up (remembered)."""
        with self._lock:
            found = cache.get(key)
        if found is not None and self._monotonic() - found[0] < ttl:
            return found[1]
        value = look_up(key)
        with self._lock:
            cache[key] = (self._monotonic(), value)
        return value
