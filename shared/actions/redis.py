"""`redis.failover`: one action, three backends chosen by the target.

- Azure Cache for Redis (`Microsoft.Cache/redis`): in the region, reboot the primary node (per
  shard when clustered) so its replica takes over; the check wants provisioning Succeeded and every
  shard's `is_primary` moved. With `geo = true` (Premium, a linked server): delete the link so the
  secondary becomes a writable cache of its own (its host name differs: clients must switch).
- Azure Managed Redis (`Microsoft.Cache/redisEnterprise`): force-unlink the failed database from
  its active geo-replication group, called on a healthy member of the group.
- Self-hosted Redis behind Sentinel (`sentinels` and `master` in the target's reach):
  `SENTINEL FAILOVER`; done when every Sentinel names the new master and it accepts a write.

`default_mode` is approve (a geo unlink changes the host name clients use; a Sentinel failover
drops connections); the default policy's in-region rule asks for auto.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.actions.arm import ArmId, ArmOperations, OperationHandle, watch
from shared.actions.kind import ActionFailed, Context, Param, Precheck, Progress, Step, Target, Verdict
from shared.errors import Rejected

HEALTHY = "Succeeded"
CACHE = "microsoft.cache/redis"
MANAGED = ("microsoft.cache/redisenterprise", "microsoft.cache/redisenterprise/databases")
MANAGED_API_VERSION = "2025-07-01"  # azure-mgmt-redisenterprise 3.1.0's

# After a start whose answer was lost, only these states read as "that start may be under way"
# (STARTED: watched, not sent again). Any other state that is not Succeeded — Failed, Disabled, a
# resource being created or deleted — says nothing of our start: the precondition answers as it
# would with no start to look for (REFUSE with its reason, so a person is paged now rather than the
# action polling until its time-out). Compared without case, as the SDKs' enums do.
#
# A cache's provisioningState, azure-mgmt-redis 14.5.0 `ProvisioningState`: each of these is an
# operation on a live cache, which a reboot or unlink may be inside or queued behind.
CACHE_UNDER_WAY = frozenset(
    s.lower()
    for s in (
        "Updating",  # a change (a reboot, a patch, a setting) is being applied
        "Scaling",  # a size or shard count change
        "RecoveringScaleFailure",  # the platform undoing a scale that failed
        "Linking",  # a geo-replication link being made
        "Unlinking",  # a geo-replication link being removed (what a geo unlink shows)
        "ConfiguringAAD",  # Entra ID authentication being set up
    )
)
# A linked server's provisioningState: a plain string in the SDK ("Terminal state of the link"),
# no enum. Deleting is ARM's state of a resource under DELETE (our `linked_server.begin_delete`);
# Unlinking is the cache enum's word for the same.
LINK_UNDER_WAY = frozenset(("deleting", "unlinking"))
# A Managed Redis database's provisioningState, azure-mgmt-redisenterprise 3.1.0 `ProvisioningState`
# (Succeeded, Failed, Canceled, Creating, Updating, Deleting): only Updating is an operation on a live
# database. And a member's link state, `LinkState` (Linked, Linking, Unlinking, LinkFailed,
# UnlinkFailed): Unlinking is a force-unlink under way.
MANAGED_UNDER_WAY = frozenset(("updating",))
MEMBER_UNDER_WAY = frozenset(("unlinking",))


def under_way(state: str | None, states: frozenset[str]) -> bool:
    """Whether a provisioning state is one of `states` (lower case): an operation is running."""
    return state is not None and state.lower() in states


# --- Azure Cache for Redis ------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheNode:
    """One instance of `instances[]`: its shard, its place in the list, whether it is primary."""

    shard: int
    index: int
    primary: bool


@dataclass(frozen=True)
class AzureCache:
    """What the failover reads of `redis.get()`."""

    provisioning_state: str | None
    sku: str | None
    shard_count: int | None
    host_name: str | None
    nodes: tuple[CacheNode, ...] = ()

    def primaries(self) -> dict[str, int]:
        """shard → the index of its primary instance (JSON-ready keys)."""
        return {str(n.shard): n.index for n in self.nodes if n.primary}


@dataclass(frozen=True)
class CacheLink:
    """A linked server of a cache; `role` is the linked cache's (Secondary: the other one is)."""

    name: str
    linked_cache_id: str
    role: str
    provisioning_state: str | None = None


class AzureCaches(ArmOperations, Protocol):
    """The calls on Azure Cache for Redis (azure-mgmt-redis in the adapter)."""

    def cache(self, cache_id: str) -> AzureCache:
        """`redis.get()`."""
        ...

    def reboot_primary(self, cache_id: str, shard: int | None) -> str:
        """`redis.force_reboot(RebootType PrimaryNode[, shard_id])`; ARM's message."""
        ...

    def links(self, cache_id: str) -> list[CacheLink]:
        """`linked_server.list()`."""
        ...

    def unlink(self, cache_id: str, link_name: str) -> OperationHandle:
        """Start `linked_server.begin_delete()`."""
        ...


# --- Azure Managed Redis --------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagedDatabase:
    """What the failover reads of `databases.get()`: its state and its geo-replication group."""

    provisioning_state: str | None
    resource_state: str | None
    group: str | None
    linked: tuple[tuple[str, str], ...] = ()  # (database id, link state) of every member

    def links_to(self, database_id: str) -> bool:
        """Whether the group still holds that database."""
        return any(i.lower() == database_id.lower() for i, _ in self.linked)


class ManagedRedis(ArmOperations, Protocol):
    """The calls on Azure Managed Redis (azure-mgmt-redisenterprise in the adapter)."""

    def database(self, database_id: str) -> ManagedDatabase:
        """`databases.get()`."""
        ...

    def force_unlink(self, database_id: str, unlink_ids: Sequence[str]) -> OperationHandle:
        """Start `databases.begin_force_unlink(ForceUnlinkParameters(ids=…))` on a healthy member."""
        ...


# --- Sentinel -------------------------------------------------------------------------------------


class SentinelLook(Protocol):
    """One look at a Sentinel failover (shared.adapters.redis_sentinel.FailoverCheck)."""

    @property
    def done(self) -> bool: ...

    @property
    def reason(self) -> str: ...


class SentinelSet(Protocol):
    """A master behind Sentinels (shared.adapters.redis_sentinel.SentinelRedis)."""

    def master(self) -> tuple[str, int]: ...

    def failover(self) -> tuple[str, int]: ...

    def check(self, old: tuple[str, int]) -> SentinelLook: ...

    def failing_over(self) -> list[tuple[str, int]]: ...

    def close(self) -> None: ...


SentinelFactory = Callable[[Mapping[str, Any]], SentinelSet]  # from the target's reach


# --- the action -----------------------------------------------------------------------------------


class _Backend(Protocol):
    def describe(self, target: Target) -> str: ...
    def command(self, target: Target) -> str: ...
    def precondition(self, target: Target, context: Context) -> Precheck: ...
    def execute(self, target: Target, found: Mapping[str, Any]) -> Step: ...
    def check(self, target: Target, continuation: Mapping[str, Any]) -> Step: ...


class RedisFailover:
    """`redis.failover` on whichever Redis the target is."""

    name = "redis.failover"
    default_mode = "approve"
    timeout_minutes = 30
    params: Mapping[str, Param] = {
        "geo": Param(kind=bool, help="Azure Cache: unlink the geo-replica instead of an in-region reboot"),
        "linked_server": Param(help="Azure Cache geo: the link to delete when the cache has several"),
        "unlink_from": Param(
            help="Managed Redis: the healthy database to force-unlink from (default: found)"
        ),
    }

    def __init__(
        self,
        caches: AzureCaches,
        managed: ManagedRedis,
        sentinels: SentinelFactory,
        check_seconds: float = 15.0,
    ) -> None:
        self._in_region = InRegionReboot(caches, check_seconds)
        self._geo = GeoUnlink(caches, check_seconds)
        self._managed = ManagedUnlink(managed, check_seconds)
        self._sentinel = SentinelFailover(sentinels, check_seconds)

    def backend(self, target: Target) -> _Backend:
        """Which Redis the target is: Sentinel by its reach, else by its ARM resource type."""
        if target.reach.get("sentinels"):
            return self._sentinel
        kind = ArmId.parse(target.resource).type
        if kind in MANAGED:
            return self._managed
        if kind == CACHE:
            return self._geo if target.param("geo") is True else self._in_region
        raise ActionFailed(f"redis.failover cannot act on a {kind} ({target.resource})")

    def describe(self, target: Target) -> str:
        return self.backend(target).describe(target)

    def command(self, target: Target) -> str:
        return self.backend(target).command(target)

    def precondition(self, target: Target, context: Context) -> Precheck:
        return self.backend(target).precondition(target, context)

    def execute(self, target: Target, context: Context, found: Mapping[str, Any]) -> Step:
        return self.backend(target).execute(target, found)

    def check(self, target: Target, context: Context, continuation: Mapping[str, Any]) -> Step:
        return self.backend(target).check(target, continuation)


class InRegionReboot:
    """Azure Cache: reboot the primary of every shard whose primary has not moved yet."""

    def __init__(self, caches: AzureCaches, check_seconds: float) -> None:
        self.caches = caches
        self.check_seconds = check_seconds

    def describe(self, target: Target) -> str:
        name = ArmId.parse(target.resource).name
        return f"Fail Azure Cache {name} over in its region: reboot the primary node"

    def command(self, target: Target) -> str:
        arm_id = ArmId.parse(target.resource)
        return (
            f"az redis force-reboot --name {arm_id.name} --resource-group {arm_id.resource_group} "
            "--reboot-type PrimaryNode"
        )

    def precondition(self, target: Target, context: Context) -> Precheck:
        cache = self.caches.cache(target.resource)
        if context.started is not None and (started := self._started(cache, context.started)):
            return started
        if (cache.sku or "").lower() == "basic":
            return Precheck(
                Verdict.REFUSE, "a Basic cache has no replica to take over: a reboot is an outage"
            )
        if cache.provisioning_state != HEALTHY:
            return Precheck(
                Verdict.REFUSE,
                f"the cache is {cache.provisioning_state}: a reboot now would race the platform",
            )
        primaries = cache.primaries()
        if not primaries:
            return Precheck(
                Verdict.REFUSE, "ARM lists no primary instance of the cache: cannot tell a failover"
            )
        shards = f"{len(primaries)} shards" if cache.shard_count else "the primary"
        return Precheck(
            Verdict.PROCEED,
            f"reboot {shards} of {cache.host_name}: the replica takes over, connections drop once",
            {"primaries": primaries, "clustered": bool(cache.shard_count)},
        )

    def _started(self, cache: AzureCache, started: Mapping[str, Any]) -> Precheck | None:
        """A reboot whose outcome is unknown shows as the platform busy (`CACHE_UNDER_WAY`) or, on
        a healthy cache, every primary moved.

        Else None: the precondition decides as before (a cache in another state is refused), and
        execute reboots only the shards whose primary has not moved.
        """
        recorded = {str(k): int(v) for k, v in (started.get("primaries") or {}).items()}
        keep = {"primaries": recorded}
        if under_way(cache.provisioning_state, CACHE_UNDER_WAY):
            why = f"the cache is {cache.provisioning_state}: the reboot may be under way; not rebooted again"
            return Precheck(Verdict.STARTED, why, keep)
        if cache.provisioning_state != HEALTHY:  # Failed, Disabled, …: refused with its reason
            return None
        now = cache.primaries()
        if recorded and all(now.get(shard, index) != index for shard, index in recorded.items()):
            moves = ", ".join(f"shard {s}: instance {recorded[s]} → {now[s]}" for s in sorted(recorded))
            return Precheck(Verdict.STARTED, f"the primary moved already ({moves})", keep)
        return None

    def execute(self, target: Target, found: Mapping[str, Any]) -> Step:
        recorded: dict[str, int] = {str(k): int(v) for k, v in found["primaries"].items()}
        now = self.caches.cache(target.resource).primaries()
        # Only shards whose primary is still the recorded one: a try whose answer was lost has
        # moved some already, and a second reboot there would move the primary back.
        pending = [shard for shard, index in recorded.items() if now.get(shard) == index]
        for shard in pending:
            self.caches.reboot_primary(target.resource, int(shard) if found.get("clustered") else None)
        detail = (
            f"rebooted the primary of shard(s) {', '.join(pending)}" if pending else "primaries already moved"
        )
        return Step(Progress.PENDING, detail, {"primaries": recorded}, self.check_seconds)

    def check(self, target: Target, continuation: Mapping[str, Any]) -> Step:
        recorded = {str(k): int(v) for k, v in continuation["primaries"].items()}
        cache = self.caches.cache(target.resource)
        now = cache.primaries()
        stuck = [s for s, index in recorded.items() if now.get(s, index) == index]
        if cache.provisioning_state != HEALTHY or stuck:
            shards = ", ".join(stuck) or "-"
            why = f"provisioning {cache.provisioning_state}; primary not moved yet on shard(s) {shards}"
            return Step(Progress.PENDING, why, {"primaries": recorded}, self.check_seconds)
        moves = ", ".join(f"shard {s}: instance {recorded[s]} → {now[s]}" for s in sorted(recorded))
        return Step(Progress.DONE, f"primary moved ({moves}); provisioning Succeeded")


class GeoUnlink:
    """Azure Cache geo-replication: delete the link; the secondary becomes writable on its own host name."""

    def __init__(self, caches: AzureCaches, check_seconds: float) -> None:
        self.caches = caches
        self.check_seconds = check_seconds

    def describe(self, target: Target) -> str:
        name = ArmId.parse(target.resource).name
        return f"Unlink the geo-replica of Azure Cache {name}: the secondary becomes writable (new host name)"

    def command(self, target: Target) -> str:
        arm_id = ArmId.parse(target.resource)
        link = target.param("linked_server") or "<linked server>"
        return (
            f"az redis server-link delete --name {arm_id.name} --resource-group {arm_id.resource_group} "
            f"--linked-server-name {link}"
        )

    def precondition(self, target: Target, context: Context) -> Precheck:
        links = self.caches.links(target.resource)
        if context.started is not None and (started := _unlinking(links, context.started)):
            return started
        wanted = target.param("linked_server")
        chosen = [link for link in links if wanted is None or link.name.lower() == str(wanted).lower()]
        if not chosen:
            return Precheck(
                Verdict.SKIP, f"no geo-replication link{f' {wanted}' if wanted else ''}: already unlinked"
            )
        if len(chosen) > 1:
            names = ", ".join(link.name for link in chosen)
            return Precheck(
                Verdict.REFUSE, f"the cache has several links ({names}): name one as linked_server"
            )
        link = chosen[0]
        # The cache the link names as Secondary is the one that becomes writable; if the link names
        # its partner Primary, the target itself is the secondary.
        writable = link.linked_cache_id if link.role.lower() == "secondary" else target.resource
        cache = self.caches.cache(writable)
        name = ArmId.parse(writable).name
        if cache.provisioning_state != HEALTHY:
            return Precheck(
                Verdict.REFUSE, f"the secondary {name} is {cache.provisioning_state}, not Succeeded"
            )
        detail = (
            f"delete link {link.name}: {name} ({cache.host_name}) becomes writable; clients must switch to it"
        )
        return Precheck(
            Verdict.PROCEED, detail, {"link": link.name, "writable": name, "host_name": cache.host_name}
        )

    def execute(self, target: Target, found: Mapping[str, Any]) -> Step:
        link = str(found["link"])
        keep = {k: found[k] for k in ("link", "writable", "host_name")}
        if not self._linked(target, link):
            return Step(Progress.DONE, f"link {link} already gone: {found['writable']} is writable")
        handle = self.caches.unlink(target.resource, link)
        return Step(
            Progress.PENDING, f"deleting link {link}", {**keep, "operation": dict(handle)}, self.check_seconds
        )

    def check(self, target: Target, continuation: Mapping[str, Any]) -> Step:
        link = str(continuation["link"])
        keep = {k: continuation[k] for k in ("link", "writable", "host_name")}
        step = watch(self.caches, continuation, f"deleting link {link}", keep, self.check_seconds)
        if step is not None:
            return step
        if self._linked(target, link):
            return Step(Progress.PENDING, f"link {link} still listed", keep, self.check_seconds)
        return Step(
            Progress.DONE,
            f"unlinked: {keep['writable']} ({keep['host_name']}) is writable; clients must switch host name",
        )

    def _linked(self, target: Target, link: str) -> bool:
        return any(found.name.lower() == link.lower() for found in self.caches.links(target.resource))


class ManagedUnlink:
    """Azure Managed Redis: force-unlink the failed database from its geo-replication group."""

    def __init__(self, managed: ManagedRedis, check_seconds: float) -> None:
        self.managed = managed
        self.check_seconds = check_seconds

    def describe(self, target: Target) -> str:
        return f"Force-unlink {_database_id(target)} from its geo-replication group"

    def command(self, target: Target) -> str:
        peer = target.param("unlink_from") or "<healthy database id>"
        body = json.dumps({"ids": [_database_id(target)]})
        url = f"https://management.azure.com{peer}/forceUnlink?api-version={MANAGED_API_VERSION}"
        return f"az rest --method post --url '{url}' --body '{body}'"

    def precondition(self, target: Target, context: Context) -> Precheck:
        if context.started is not None and (started := self._started(context.started)):
            return started
        failed = _database_id(target)
        peer = target.param("unlink_from")
        group = self.managed.database(str(peer) if peer else failed)
        if not group.links_to(failed):
            return Precheck(Verdict.SKIP, f"{failed} is no longer in the geo-replication group")
        if not peer:
            peer = self._healthy_peer(group, failed)
            if peer is None:
                said = ", ".join(f"{i} ({state})" for i, state in group.linked) or "none"
                return Precheck(Verdict.REFUSE, f"no healthy database left in group {group.group}: {said}")
        else:
            state = self.managed.database(str(peer))
            if state.provisioning_state != HEALTHY or (state.resource_state or "Running") != "Running":
                return Precheck(
                    Verdict.REFUSE, f"{peer} is {state.provisioning_state}/{state.resource_state}"
                )
        detail = (
            f"force-unlink {failed} from group {group.group} on {peer}; relinking it later discards its data"
        )
        return Precheck(Verdict.PROCEED, detail, {"database": failed, "peer": str(peer)})

    def execute(self, target: Target, found: Mapping[str, Any]) -> Step:
        failed, peer = str(found["database"]), str(found["peer"])
        keep = {"database": failed, "peer": peer}
        if not self.managed.database(peer).links_to(failed):
            return Step(Progress.DONE, f"{failed} already unlinked")
        handle = self.managed.force_unlink(peer, [failed])
        return Step(
            Progress.PENDING,
            f"force-unlinking {failed}",
            {**keep, "operation": dict(handle)},
            self.check_seconds,
        )

    def check(self, target: Target, continuation: Mapping[str, Any]) -> Step:
        failed, peer = str(continuation["database"]), str(continuation["peer"])
        keep = {"database": failed, "peer": peer}
        step = watch(self.managed, continuation, f"force-unlinking {failed}", keep, self.check_seconds)
        if step is not None:
            return step
        if self.managed.database(peer).links_to(failed):
            return Step(
                Progress.PENDING, f"{peer} still lists {failed} in its group", keep, self.check_seconds
            )
        return Step(Progress.DONE, f"{failed} unlinked; {peer} serves on its own")

    def _started(self, started: Mapping[str, Any]) -> Precheck | None:
        """A force-unlink whose outcome is unknown shows on the peer: the database gone from its
        group, the database's link Unlinking, or the peer Updating. Else None (a peer Failed or
        Canceled too): the precondition decides as before."""
        failed, peer = str(started.get("database", "")), str(started.get("peer", ""))
        if not failed or not peer:
            return None
        keep = {"database": failed, "peer": peer}
        state = self.managed.database(peer)
        if not state.links_to(failed):
            return Precheck(Verdict.STARTED, f"{peer} no longer lists {failed} in its group", keep)
        link = next((s for i, s in state.linked if i.lower() == failed.lower()), None)
        if under_way(link, MEMBER_UNDER_WAY):
            why = f"{peer} lists {failed} as {link}: the force-unlink is under way; not sent again"
            return Precheck(Verdict.STARTED, why, keep)
        if under_way(state.provisioning_state, MANAGED_UNDER_WAY):
            why = f"{peer} is {state.provisioning_state}: the force-unlink may be under way; not sent again"
            return Precheck(Verdict.STARTED, why, keep)
        return None

    def _healthy_peer(self, group: ManagedDatabase, failed: str) -> str | None:
        for member, state in group.linked:
            if member.lower() == failed.lower() or state != "Linked":
                continue
            found = self.managed.database(member)
            if found.provisioning_state == HEALTHY and (found.resource_state or "Running") == "Running":
                return member
        return None


def _unlinking(links: Sequence[CacheLink], started: Mapping[str, Any]) -> Precheck | None:
    """An unlink whose outcome is unknown shows in the links: its link gone, or being deleted
    (`LINK_UNDER_WAY`). Else None (a Failed link too): the precondition decides as before."""
    name = str(started.get("link", ""))
    if not name:
        return None
    keep = {k: started[k] for k in ("link", "writable", "host_name") if k in started}
    link = next((found for found in links if found.name.lower() == name.lower()), None)
    if link is None:
        return Precheck(Verdict.STARTED, f"link {name} is gone", keep)
    if under_way(link.provisioning_state, LINK_UNDER_WAY):
        why = f"link {name} is {link.provisioning_state}: the unlink may be under way; not sent again"
        return Precheck(Verdict.STARTED, why, keep)
    return None


def _database_id(target: Target) -> str:
    """The target's database id (a cluster id means its `default` database)."""
    arm_id = ArmId.parse(target.resource)
    if arm_id.type == MANAGED[0]:
        return f"{arm_id.top()}/databases/default"
    return str(arm_id)


class SentinelFailover:
    """Self-hosted Redis: `SENTINEL FAILOVER`, checked on every Sentinel and by a probe write."""

    def __init__(self, sentinels: SentinelFactory, check_seconds: float) -> None:
        self.sentinels = sentinels
        self.check_seconds = check_seconds

    def describe(self, target: Target) -> str:
        return f"Fail Redis master {target.reach.get('master')!r} over through its Sentinels"

    def command(self, target: Target) -> str:
        first = str(next(iter(target.reach.get("sentinels") or ["<sentinel>:<port>"])))
        host, _, port = first.rpartition(":")
        return f"redis-cli -h {host} -p {port} SENTINEL FAILOVER {target.reach.get('master')}"

    def precondition(self, target: Target, context: Context) -> Precheck:
        recorded = (context.started or {}).get("old_master")  # set after a start's answer was lost
        try:
            # Then also who runs a failover now: a second SENTINEL FAILOVER while the first one runs
            # would be refused (INPROG) and fail an action that is under way.
            old, running = self._with(target, lambda s: (s.master(), s.failing_over() if recorded else []))
        except Rejected as e:
            return Precheck(Verdict.REFUSE, str(e))
        if recorded:
            before = _address(recorded)
            keep = {"old_master": list(before)}
            if old != before:  # moved (this failover, or Sentinel's own): checked, not sent again
                said = f"the Sentinels name {old[0]}:{old[1]} now, not {before[0]}:{before[1]}"
                return Precheck(Verdict.STARTED, said, keep)
            if running:  # the failover that was sent, most likely: checked, not sent again
                who = ", ".join(f"{host}:{port}" for host, port in running)
                said = f"Sentinel {who} is failing {before[0]}:{before[1]} over now"
                return Precheck(Verdict.STARTED, said, keep)
        detail = (
            f"the Sentinels agree the master is {old[0]}:{old[1]}; a replica is promoted, clients reconnect"
        )
        return Precheck(Verdict.PROCEED, detail, {"old_master": [old[0], old[1]]})

    def execute(self, target: Target, found: Mapping[str, Any]) -> Step:
        old = _address(found["old_master"])
        keep = {"old_master": list(old)}
        try:
            now = self._with(target, lambda s: s.master())
            if now != old:  # an earlier try went through although its answer was lost
                return Step(
                    Progress.PENDING, f"master already moved to {now[0]}:{now[1]}", keep, self.check_seconds
                )
            self._with(target, lambda s: s.failover())
        except Rejected as e:
            raise ActionFailed(str(e)) from e
        return Step(
            Progress.PENDING,
            f"SENTINEL FAILOVER sent; the master was {old[0]}:{old[1]}",
            keep,
            self.check_seconds,
        )

    def check(self, target: Target, continuation: Mapping[str, Any]) -> Step:
        old = _address(continuation["old_master"])
        look = self._with(target, lambda s: s.check(old))
        if look.done:
            return Step(Progress.DONE, look.reason)
        return Step(Progress.PENDING, look.reason, {"old_master": list(old)}, self.check_seconds)

    def _with(self, target: Target, call: Callable[[SentinelSet], Any]) -> Any:
        sentinels = self.sentinels(target.reach)
        try:
            return call(sentinels)
        finally:
            sentinels.close()


def _address(value: Any) -> tuple[str, int]:
    host, port = value
    return str(host), int(port)
