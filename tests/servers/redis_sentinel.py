"""Real redis-server and redis-sentinel processes for the Sentinel adapter's tests.

One primary, one replica (`replicaof`), three Sentinels monitoring it (quorum 2, down after 1 s,
failover timeout 3 s), all on 127.0.0.1, on free ports (never 6379 or 26379, where a system Redis
the Debian package started may listen), in a temporary dir, with a password on the data nodes.
Readiness is polled, never slept for. `stop()` kills every process; call it in a `finally`.

The binaries come from the Debian packages `redis-server` and `redis-sentinel`, which
`scripts/system-deps.sh` installs; without them `start()` raises `MissingBinary` saying so (the
tests fail on it; they are never skipped).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.servers.lifetime import dies_with_test_run

MASTER_NAME = "dr-test"
PASSWORD = "s3cret-data-pw"
HOST = "127.0.0.1"
RESERVED_PORTS = {6379, 26379}
READY_SECONDS = 20.0
QUICKER_TIMERS = ("info-period", "1000", "publish-period", "500")


class MissingBinary(RuntimeError):
    """redis-server or redis-sentinel is not installed."""


class NotReady(RuntimeError):
    """A process or the whole set did not become ready in time; the message has the log tails."""


def binary(name: str) -> str:
    """The path of a binary, or MissingBinary naming the package to install."""
    path = shutil.which(name)
    if path is None:
        raise MissingBinary(
            f"{name} not found on PATH: install the Debian packages redis-server and redis-sentinel "
            f"(scripts/system-deps.sh does, as root; or: sudo apt-get install redis-server redis-sentinel)"
        )
    return path


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all different, none of Redis's defaults."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
            port = s.getsockname()[1]
            if port not in RESERVED_PORTS:
                ports.append(port)
    finally:
        for s in sockets:
            s.close()
    return ports


def wait_for(what: str, ready: Callable[[], bool], seconds: float, logs: Callable[[], str]) -> None:
    """Poll `ready` every 50 ms until it is true; NotReady with the logs when time is up."""
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if ready():
                return
            last = None
        except Exception as e:  # not up yet: connection refused, loading, …
            last = e
        time.sleep(0.05)
    raise NotReady(f"{what} not ready after {seconds:g} s (last error: {last!r})\n{logs()}")


@dataclass
class Process:
    """One redis-server or redis-sentinel with its config file and log in its own dir."""

    name: str
    kind: str  # "redis-server" | "redis-sentinel"
    port: int
    dir: Path
    config: str
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    @property
    def log(self) -> Path:
        return self.dir / "log.txt"

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "redis.conf").write_text(self.config)

    def start(self) -> None:
        if self.running:
            return
        self.popen = subprocess.Popen(
            dies_with_test_run([binary(self.kind), str(self.dir / "redis.conf")]),
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL and reap: a crash, not a shutdown."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)
        self.popen = None

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        return f"--- {self.name} ({self.kind} on {self.port}) ---\n" + "\n".join(text.splitlines()[-lines:])


class SentinelSet:
    """A primary, a replica and three Sentinels; `start()`, `heal()`, `stop()`."""

    def __init__(self, root: Path) -> None:
        ports = free_ports(5)
        self.root = root
        data = (
            'bind 127.0.0.1\nprotected-mode no\ndaemonize no\nsave ""\nappendonly no\n'
            f"requirepass {PASSWORD}\nmasterauth {PASSWORD}\nlogfile log.txt\ndir .\n"
            "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n"
        )
        self.primary = Process(
            "primary", "redis-server", ports[0], root / "primary", f"port {ports[0]}\n{data}"
        )
        self.replica = Process(
            "replica",
            "redis-server",
            ports[1],
            root / "replica",
            f"port {ports[1]}\n{data}replicaof {HOST} {ports[0]}\n",
        )
        self.sentinels = [
            Process(
                f"sentinel-{i}",
                "redis-sentinel",
                port,
                root / f"sentinel-{i}",
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nlogfile log.txt\ndir .\n"
                f"sentinel monitor {MASTER_NAME} {HOST} {ports[0]} 2\n"
                f"sentinel auth-pass {MASTER_NAME} {PASSWORD}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 3000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n",
            )
            for i, port in enumerate(ports[2:])
        ]
        self._clients: dict[tuple[str, int], Any] = {}

    @property
    def processes(self) -> list[Process]:
        return [self.primary, self.replica, *self.sentinels]

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [s.address for s in self.sentinels]

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    def start(self) -> None:
        binary("redis-server")
        binary("redis-sentinel")
        for p in self.processes:
            p.write_config()
        try:
            self.heal()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        for p in self.processes:
            p.kill()

    def heal(self, seconds: float = READY_SECONDS) -> None:
        """Start whatever is not running and wait until the set is whole again (see `healthy`).

        The data nodes first, replicating, then the Sentinels: a Sentinel learns of replicas from
        the master's INFO, which it reads every 10 s, so one started early would wait that long.
        """
        deadline = time.monotonic() + seconds
        self.primary.start()
        self.replica.start()
        wait_for("replication", self.replicating, seconds, self.logs)
        for s in self.sentinels:
            s.start()
        wait_for("the Sentinels", self.quicken, seconds, self.logs)
        wait_for("the Sentinel set", self.healthy, max(0.1, deadline - time.monotonic()), self.logs)

    def quicken(self) -> bool:
        """Shorten each Sentinel's timers (`SENTINEL DEBUG`, Redis 7): INFO every 1 s instead of 10 s,
        hello every 0.5 s instead of 2 s. Only the timing changes: a Sentinel still converts a former
        master to a replica, or learns the new configuration from the others, as it does in production,
        but the suite waits seconds for it instead of tens. Not persisted: set again after a restart."""
        for s in self.sentinels:
            self.client(s.address, data=False).execute_command("SENTINEL DEBUG", *QUICKER_TIMERS)
        return True

    # -- reading the real state, for readiness and for the tests' assertions ----------------------

    def client(self, address: tuple[str, int], *, data: bool = True) -> Any:
        """A plain redis-py client (one attempt, short timeouts) for a node or a Sentinel."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        key = (address[0], address[1] if data else -address[1])
        if key not in self._clients:
            self._clients[key] = redis.Redis(
                host=address[0],
                port=address[1],
                password=PASSWORD if data else None,
                socket_connect_timeout=0.5,
                socket_timeout=1.0,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
        return self._clients[key]

    def node(self, address: tuple[str, int]) -> Process:
        return next(p for p in (self.primary, self.replica) if p.address == tuple(address))

    def said_by(self, sentinel: Process) -> tuple[str, int] | None:
        """What one Sentinel answers to GET-MASTER-ADDR-BY-NAME, asked directly."""
        answer = self.client(sentinel.address, data=False).execute_command(
            "SENTINEL GET-MASTER-ADDR-BY-NAME", MASTER_NAME
        )
        return (answer[0], int(answer[1])) if answer else None

    def role(self, address: tuple[str, int]) -> str:
        return str(self.client(address).execute_command("ROLE")[0])

    def replicas_seen_by(self, sentinel: Process) -> list[dict[str, Any]]:
        return list(self.client(sentinel.address, data=False).execute_command("SENTINEL SLAVES", MASTER_NAME))

    def replicating(self) -> bool:
        """One data node is a replica of the other, with its link up."""
        for node, other in ((self.replica, self.primary), (self.primary, self.replica)):
            link = self.client(node.address).info("replication")
            if link.get("master_link_status") == "up" and int(link.get("master_port", 0)) == other.port:
                return self.role(other.address) == "master"
        return False

    def healthy(self) -> bool:
        """Every process answers; every Sentinel names the same master, sees the other two Sentinels
        and one replica that is up; the master has that replica online and its link is up."""
        if not all(p.running for p in self.processes):
            dead = [p.name for p in self.processes if not p.running]
            raise NotReady(f"exited: {dead}\n{self.logs()}")
        named = {self.said_by(s) for s in self.sentinels}
        if len(named) != 1 or None in named:
            return False
        (master,) = named
        assert master is not None
        other = self.replica.address if master == self.primary.address else self.primary.address
        if self.role(master) != "master" or self.role(other) != "slave":
            return False
        link = self.client(other).info("replication")
        if link.get("master_link_status") != "up" or int(link.get("master_port", 0)) != master[1]:
            return False
        for s in self.sentinels:
            state = self.client(s.address, data=False).execute_command("SENTINEL MASTER", MASTER_NAME)
            if state.get("flags") != "master" or int(state.get("num-other-sentinels", 0)) != 2:
                return False
            replicas = self.replicas_seen_by(s)
            up = [
                r
                for r in replicas
                if r.get("flags") == "slave"
                and r.get("master-link-status") == "ok"
                and int(r.get("port", 0)) == other[1]
            ]
            if len(up) != 1:
                return False
        return True


@contextmanager
def running_sentinels(prefix: str) -> Iterator[SentinelSet]:
    """A primary, a replica and three Sentinels in a temporary directory, stopped afterwards.

    A missing redis-server or redis-sentinel fails the test naming the packages, never skips it.
    """
    import pytest

    with tempfile.TemporaryDirectory(prefix=prefix) as root:
        cluster = SentinelSet(Path(root))
        try:
            cluster.start()
        except MissingBinary as e:
            pytest.fail(str(e), pytrace=False)
        try:
            yield cluster
        finally:
            cluster.stop()
