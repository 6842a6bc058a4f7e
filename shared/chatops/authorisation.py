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

from shared.chatops.plain import one_line
from shared.ports import OnCall

log = logging.getLogger(__name__)

EMAIL_TTL_SECONDS = 600.0  # a person's address rarely changes
GROUP_TTL_SECONDS = 60.0  # membership changes when someone joins the rota
# A source that failed is not asked again for this long: a stranger pressing buttons while PagerDuty
# hangs must cost one time-out, not one per press, and never hold up the channel's queue.
FAILED_TTL_SECONDS = 30.0
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
    unchecked: str = ""  # refused because a source could not answer: which, and why


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
        self._rota: dict[str, tuple[float, list[OnCall]]] = {}  # only its failures are remembered here
        self._failed: dict[tuple[int, str], tuple[float, Exception]] = {}

    def check(self, user_id: str) -> Verdict:
        """Allowed, and by what. A source that cannot answer (Slack or PagerDuty down, a missing scope)
        is skipped and the others still asked; if none allows, the answer is no and says which
        could not be asked: fail closed, at once, never a retry that holds up the channel."""
        if user_id in self.users:
            return Verdict(True, "on SLACK_ALLOWED_USERS")
        people = self._people
        if people is None:
            return Verdict(False, "not on the allowlist (no Slack token to look further)")
        unchecked = []
        for group in self.groups:
            try:
                if user_id in self._group(people, group):
                    return Verdict(True, f"in user group {group}")
            except Exception as e:
                unchecked.append(f"user group {group}: {_reason(e)}")
        if self._on_call is not None:
            try:
                match = self._on_call_match(people, user_id)
            except Exception as e:
                unchecked.append(f"PagerDuty on-call: {_reason(e)}")
            else:
                if match is not None:
                    return Verdict(True, f"on call in PagerDuty ({match.name})")
        if unchecked:
            log.error("authorising %s: could not check %s", one_line(user_id), "; ".join(unchecked))
            because = "; ".join(unchecked)
            return Verdict(False, f"could not be checked ({because})", because)
        return Verdict(False, "not on the allowlist, in an allowed group, or on call")

    def _on_call_match(self, people: People, user_id: str) -> OnCall | None:
        on_call = self._remembered(self._rota, "on-call", 0.0, lambda _: self._on_call_now())
        if not on_call:
            return None
        email = self._email(people, user_id)
        return next((p for p in on_call if email and p.email.strip().lower() == email), None)

    def _on_call_now(self) -> list[OnCall]:
        assert self._on_call is not None
        return self._on_call.on_call()  # cached there for a minute

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
        """The cached answer while younger than ttl, else a fresh look-up (remembered); a look-up that
        failed raises its error again for FAILED_TTL_SECONDS without asking."""
        failure_key = (id(cache), key)
        with self._lock:
            found = cache.get(key)
            failed = self._failed.get(failure_key)
        if found is not None and self._monotonic() - found[0] < ttl:
            return found[1]
        if failed is not None and self._monotonic() - failed[0] < FAILED_TTL_SECONDS:
            raise failed[1]
        try:
            value = look_up(key)
        except Exception as e:
            with self._lock:
                self._failed[failure_key] = (self._monotonic(), e)
            raise
        with self._lock:
            cache[key] = (self._monotonic(), value)
            self._failed.pop(failure_key, None)
        return value


def _reason(error: Exception) -> str:
    """What failed, short; the adapters' errors name the service and never carry a token."""
    return str(error)[:200] or type(error).__name__
