"""Self-hosted Redis behind Sentinel, through redis-py: who the master is, `SENTINEL FAILOVER`, and the
check that a failover is done (issue 7 §4).

redis-py is imported inside the methods that use it, never at module level: a Function App pays
for every import at cold start, and most invocations never touch Redis.

What counts, as the runbook says it:
- `master()`: the address the Sentinels agree on. Every Sentinel that answers must name the same
  address, and at least a quorum (a majority unless told) must answer; otherwise Transient, with
  what each one said.
- `failover()`: `SENTINEL FAILOVER <master>` to the first Sentinel that answers; returns the master
  it had before. The command goes on a connection of its own, opened (and PINGed) first: a Sentinel
  that refuses it or does not answer in time never got the command, so the next Sentinel is asked at
  once; only a connection lost once the command went out is OutcomeUnknown. Sentinel refuses a
  second failover while one runs (`INPROG`) and a failover with no replica fit to promote
  (`NOGOODSLAVE`): both are Rejected, because repeating the command later would start a failover
  nobody asked for (after an `INPROG` one finished, it would swing the master back) or cannot find
  a replica a person has not restarted yet.
- `failing_over()`: the Sentinels running a failover of the master now (`SENTINEL MASTER` flags
  `failover_in_progress`; only the Sentinel that took the command says so, until it is done).
- `check(old)`: one look, no waiting: done when every Sentinel that answers (a quorum at least)
  names a master other than `old`, that master says `ROLE` master, and it accepts a write of a
  probe key with a TTL. Else pending, with the reason. `verify(old, within)` polls `check` until
  done or the caller's time is up.

Passwords (of the data nodes and of the Sentinels, both optional) never appear in an error or a log
line: every message is scrubbed of them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shared.errors import OutcomeUnknown, Rejected, Transient

log = logging.getLogger(__name__)

Address = tuple[str, int]

PROBE_KEY = "dr-responder:failover-probe"
PROBE_TTL_MS = 60_000
# Sentinel's refusals that no retry fixes (see the module docstring). redis-py keeps the code at the
# start of a reply it has no class for; those it has a class for (READONLY, NOAUTH, …) are matched
# by class in `_translated`.
REJECTED_REPLIES = {
    "INPROG": "a failover of {master} is already in progress; not repeated (watch master() instead)",
    "NOGOODSLAVE": "Sentinel has no replica of {master} fit to promote (down, disconnected or lagging)",
    "IDONTKNOW": "Sentinel does not monitor a master named {master}",
}
TRANSIENT_REPLIES = {"BUSY"}
# A new master that refuses the probe write is not done yet: it has too few replicas back
# (min-replicas-to-write), cannot persist, or is still read-only.
PROBE_PENDING_REPLIES = {"NOREPLICAS", "MISCONF"}


def show(address: Address) -> str:
    """host:port, as a person reads it."""
    return f"{address[0]}:{address[1]}"


@dataclass(frozen=True)
class SentinelReport:
    """What one Sentinel said about the master: its address, or nothing and why."""

    sentinel: Address
    master: Address | None
    error: str | None = None  # None when it answered (master None then: it does not monitor it)

    def describe(self) -> str:
        """`127.0.0.1:26380 says 127.0.0.1:6380`, as the errors and reasons list them."""
        if self.error is not None:
            return self.error  # it names the Sentinel already
        if self.master is None:
            return f"{show(self.sentinel)}: does not know the master"
        return f"{show(self.sentinel)} says {show(self.master)}"


@dataclass(frozen=True)
class FailoverCheck:
    """One look at a failover: done, or pending with the reason."""

    done: bool
    reason: str
    master: Address | None = None  # the master the Sentinels agree on, when they do
    reports: tuple[SentinelReport, ...] = ()


class SentinelRedis:
    """A Redis master behind a set of Sentinels."""

    def __init__(
        self,
        sentinels: Sequence[Address],
        master: str,
        *,
        password: str | None = None,
        sentinel_password: str | None = None,
        connect_timeout: float = 1.0,
        command_timeout: float = 2.0,
        quorum: int | None = None,
    ) -> None:
        if not sentinels:
            raise ValueError("at least one Sentinel is needed")
        self.sentinels = [(str(host), int(port)) for host, port in sentinels]
        self.name = master
        self.quorum = quorum if quorum is not None else len(self.sentinels) // 2 + 1
        if not 1 <= self.quorum <= len(self.sentinels):
            raise ValueError(f"quorum {self.quorum} is not between 1 and {len(self.sentinels)}")
        self._password = password
        self._sentinel_password = sentinel_password
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._clients = {address: self._client(address, sentinel_password) for address in self.sentinels}

    def close(self) -> None:
        """Close the connections to the Sentinels."""
        for client in self._clients.values():
            client.close()

    # -- who the master is ---------------------------------------------------------------------

    def reports(self) -> list[SentinelReport]:
        """Ask every Sentinel for the master's address; what each said, in the order configured."""
        return [self._ask(address) for address in self.sentinels]

    def master(self) -> Address:
        """The master's address, as a quorum of Sentinels and every one that answers agree."""
        return self._agreed(self.reports())

    def _agreed(self, reports: Sequence[SentinelReport]) -> Address:
        answered = [r for r in reports if r.error is None]
        said = "; ".join(r.describe() for r in reports)
        if answered and all(r.master is None for r in answered):
            raise Rejected(f"no Sentinel monitors a master named {self.name!r} ({said})")
        named = {r.master for r in answered}
        if len(named) > 1:
            raise Transient(f"Sentinels disagree on the master of {self.name!r}: {said}")
        if len(answered) < self.quorum:
            raise Transient(
                f"only {len(answered)} of {len(reports)} Sentinels answered for {self.name!r}, "
                f"{self.quorum} needed: {said}"
            )
        (address,) = named
        assert address is not None  # every answer naming none was Rejected above
        return address

    def _ask(self, sentinel: Address) -> SentinelReport:
        try:
            with self._translated(f"Sentinel {show(sentinel)}"):
                answer = self._clients[sentinel].execute_command(
                    "SENTINEL GET-MASTER-ADDR-BY-NAME", self.name
                )
        except Transient as e:
            return SentinelReport(sentinel, None, str(e))
        if not answer:
            return SentinelReport(sentinel, None)
        host, port = answer
        return SentinelReport(sentinel, (_text(host), int(port)))

    # -- failover ------------------------------------------------------------------------------

    def failover(self) -> Address:
        """Send `SENTINEL FAILOVER` to the first Sentinel that answers; return the master it had.

        Transient if no Sentinel answers (a Sentinel whose connection for the command is refused or
        times out never got it: the next one is asked) or the one asked answers "not now" (BUSY);
        OutcomeUnknown if it was lost after the command went out (it may have started: look at
        master() before trying again). Rejected if Sentinel refuses.
        """
        unreachable: list[str] = []
        for sentinel in self.sentinels:
            report = self._ask(sentinel)
            if report.error is not None:
                unreachable.append(report.describe())
                continue
            if report.master is None:
                raise Rejected(f"Sentinel {show(sentinel)} does not monitor a master named {self.name!r}")
            where = f"SENTINEL FAILOVER {self.name} at {show(sentinel)}"
            client = self._client(sentinel, self._sentinel_password)
            try:
                try:
                    connection = self._connected(client, where)
                except Transient as e:  # the command was never sent: the next Sentinel is asked
                    unreachable.append(str(e))
                    continue
                with self._translated(where, replies=True, write=True):
                    connection.send_command("SENTINEL FAILOVER", self.name)
                    connection.read_response()
            finally:
                client.close()  # and its connection with it
            log.info("%s: sent; the master was %s", where, show(report.master))
            return report.master
        raise Transient(f"no Sentinel answered for {self.name!r}: {'; '.join(unreachable)}")

    def _connected(self, client: Any, where: str) -> Any:
        """A new connection of `client`, open and answering PING. What fails here (refused, connect
        or PING timed out, closed) fails before the command is sent: Transient, never a lost answer."""
        with self._translated(where):
            connection = client.connection_pool.get_connection()  # connects (and reads the handshake)
            connection.send_command("PING")
            connection.read_response()
        return connection

    def failing_over(self) -> list[Address]:
        """The Sentinels that say they run a failover of the master now; those that do not answer are
        left out. Only the Sentinel that took `SENTINEL FAILOVER` says so, from the command until the
        failover is done or aborted."""
        running = []
        for sentinel in self.sentinels:
            try:
                with self._translated(f"Sentinel {show(sentinel)}"):
                    state = self._clients[sentinel].execute_command("SENTINEL MASTER", self.name)
            except (Transient, Rejected):
                continue
            if "failover_in_progress" in str(state.get("flags", "")).split(","):
                running.append(sentinel)
        return running

    # -- is it done? ---------------------------------------------------------------------------

    def check(self, old: Address) -> FailoverCheck:
        """One look, without waiting: is the failover away from `old` done? (See the module docstring.)"""
        reports = tuple(self.reports())
        try:
            master = self._agreed(reports)
        except Transient as e:
            return FailoverCheck(False, str(e), None, reports)
        if master == tuple(old):
            said = "; ".join(r.describe() for r in reports)
            return FailoverCheck(False, f"the Sentinels still name the old master: {said}", master, reports)
        try:
            self._probe(master)
        except Transient as e:
            return FailoverCheck(False, str(e), master, reports)
        return FailoverCheck(True, f"{show(master)} is the master and accepted a write", master, reports)

    def verify(
        self,
        old: Address,
        within: float,
        *,
        interval: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> FailoverCheck:
        """Check until done, at most `within` seconds; Transient with the last reason when time is up."""
        deadline = monotonic() + within
        while True:
            result = self.check(old)
            if result.done:
                return result
            left = deadline - monotonic()
            if left <= 0:
                raise Transient(f"failover of {self.name!r} not done after {within:g} s: {result.reason}")
            sleep(min(interval, left))

    def _probe(self, master: Address) -> None:
        """ROLE says master, and a probe key with a TTL is written; Transient (pending) otherwise."""
        client = self._client(master, self._password)
        where = f"the new master {show(master)}"
        try:
            with self._translated(where, probe=True):
                role = client.execute_command("ROLE")
                said = _text(role[0]) if role else "nothing"
                if said != "master":
                    raise Transient(f"{where} says ROLE {said}, not master")
                client.execute_command("SET", PROBE_KEY, uuid.uuid4().hex, "PX", PROBE_TTL_MS)
        finally:
            client.close()

    # -- redis-py --------------------------------------------------------------------------------

    def _client(self, address: Address, password: str | None) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            host=address[0],
            port=address[1],
            password=password,
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=self._command_timeout,
            retry=Retry(NoBackoff(), 0),  # retries go through the action pipeline's schedule
            decode_responses=True,
            health_check_interval=0,
            protocol=2,  # RESP2: every Redis a self-hosted set may run answers it (HELLO came in 6)
        )

    @contextmanager
    def _translated(
        self, where: str, *, replies: bool = False, probe: bool = False, write: bool = False
    ) -> Iterator[None]:
        """redis-py's errors as ours, scrubbed of the passwords, each `from` the original.

        `write`: the command changes the set, so a connection lost once it went out is OutcomeUnknown.
        Use it only around sending the command and reading its answer, on a connection already
        open (`_connected`): a refused connection or a connect time-out is never a lost answer.
        """
        from redis import exceptions

        try:
            yield
        except exceptions.AuthenticationError as e:  # NOAUTH, WRONGPASS; a ConnectionError: first
            raise Rejected(f"{where}: {self._scrub(e)}") from e
        except exceptions.BusyLoadingError as e:  # LOADING; a ConnectionError too
            raise Transient(f"{where}: still loading its data ({self._scrub(e)})") from e
        except (exceptions.ConnectionError, exceptions.TimeoutError, OSError) as e:
            if write:  # sending or after: the command may have reached Sentinel
                raise OutcomeUnknown(
                    f"{where}: the answer was lost ({type(e).__name__}: {self._scrub(e)}); it may have "
                    "started: look at master() before trying again"
                ) from e
            raise Transient(f"{where}: unreachable ({type(e).__name__}: {self._scrub(e)})") from e
        except (exceptions.TryAgainError, exceptions.MasterDownError) as e:
            raise Transient(f"{where}: {type(e).__name__}: {self._scrub(e)}") from e
        except (exceptions.ReadOnlyError, exceptions.OutOfMemoryError) as e:
            if probe:
                raise Transient(f"{where} refused the write ({type(e).__name__}: {self._scrub(e)})") from e
            raise Rejected(f"{where} refused: {type(e).__name__}: {self._scrub(e)}") from e
        except exceptions.ResponseError as e:
            text = self._scrub(e)
            code = text.split(" ", 1)[0]
            if probe and code in PROBE_PENDING_REPLIES:
                raise Transient(f"{where} refused the write ({text})") from e
            if code in TRANSIENT_REPLIES:
                raise Transient(f"{where}: {text}") from e
            if replies and code in REJECTED_REPLIES:
                why = REJECTED_REPLIES[code].format(master=repr(self.name))
                raise Rejected(f"{where}: {why} ({text})") from e
            raise Rejected(f"{where} refused: {type(e).__name__}: {text}") from e
        except exceptions.RedisError as e:
            raise Transient(f"{where}: {type(e).__name__}: {self._scrub(e)}") from e

    def _scrub(self, error: BaseException) -> str:
        text = str(error)
        for secret in (self._password, self._sentinel_password):
            if secret:
                text = text.replace(secret, "***")
        return text


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
