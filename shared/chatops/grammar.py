"""The /dr grammar: text → a Command, or the help for the nearest command (difflib) when it is not one."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from shared.domain.severity import Severity


@dataclass(frozen=True)
class Usage:
    """One command as help shows it."""

    verb: str
    syntax: str
    summary: str
    changes: bool  # changes something, so only authorised people may run it


USAGES = (
    Usage("status", "/dr status", "open incidents per component and tenant, actions, queues, pauses", False),
    Usage(
        "incidents",
        "/dr incidents [tenant] [sev1-4]",
        "the newest incidents, optionally of one tenant or severity",
        False,
    ),
    Usage("show", "/dr show <incident>", "one incident and its timeline", False),
    Usage("ack", "/dr ack <incident>", "acknowledge an incident, here and in PagerDuty", True),
    Usage("resolve", "/dr resolve <incident>", "resolve an incident, here and in PagerDuty", True),
    Usage(
        "failover",
        "/dr failover redis|cosmos <target>",
        "fail a cache or Cosmos DB account over (after a confirmation)",
        True,
    ),
    Usage(
        "rollback",
        "/dr rollback [<cluster>:]<namespace>/<deployment> [--to N]",
        "roll a Deployment back (after a confirmation); the cluster by name or ARM id",
        True,
    ),
    Usage(
        "restart",
        "/dr restart [<cluster>:]<namespace>/<deployment>",
        "restart a Deployment's pods (after a confirmation)",
        True,
    ),
    Usage(
        "restore",
        "/dr restore [<cluster>:]<namespace> [--backup B]",
        "restore a namespace from Velero (after a confirmation)",
        True,
    ),
    Usage("approve", "/dr approve <action>", "approve an action waiting for a person", True),
    Usage("deny", "/dr deny <action>", "deny an action waiting for a person", True),
    Usage("pause", "/dr pause [tenant|*] [reason…]", "stop automation everywhere or for one tenant", True),
    Usage("resume", "/dr resume [tenant|*]", "let automation run again", True),
    Usage("help", "/dr help [command]", "this list, or one command's help", False),
)
BY_VERB = {u.verb: u for u in USAGES}
CONFIRMED = ("failover", "rollback", "restart", "restore")  # shown first, done after Confirm

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# A cluster is named as Operations resolves it: its name, or its ARM id (which holds no ":").
_CLUSTER = r"(?:[A-Za-z0-9][A-Za-z0-9._-]{0,62}|/[A-Za-z0-9._()/-]{1,1023}):"
_WORKLOAD = re.compile(rf"(?:{_CLUSTER})?[a-z0-9][a-z0-9.-]{{0,62}}/[a-z0-9][a-z0-9.-]{{0,252}}")
_PLACE = re.compile(rf"(?:{_CLUSTER})?[a-z0-9][a-z0-9-]{{0,62}}")
_TARGET = re.compile(r"[A-Za-z0-9/][A-Za-z0-9._/()-]{0,1023}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Command:
    """A well-formed command; the fields a verb does not take stay empty."""

    verb: str
    subject: str = ""  # the incident, action, target, workload, namespace or tenant
    system: str = ""  # failover: redis | cosmos
    tenant: str = ""
    severity: str = ""
    revision: int | None = None
    backup: str | None = None
    reason: str = ""

    @property
    def usage(self) -> Usage:
        """Its line of help."""
        return BY_VERB[self.verb]


@dataclass(frozen=True)
class NotACommand:
    """Text that is no command: why, and the help to show (one command's, or all of them)."""

    problem: str
    nearest: Usage | None


def parse(text: str) -> Command | NotACommand:
    """The command the text spells, or what is wrong with it and the nearest command's help."""
    words = text.split()
    if not words:
        return Command("help")
    verb, args = words[0].lower(), words[1:]
    if verb not in BY_VERB:
        near = difflib.get_close_matches(verb, list(BY_VERB), n=1, cutoff=0.5)
        nearest = BY_VERB[near[0]] if near else None
        hint = f"; did you mean `{near[0]}`?" if near else ""
        return NotACommand(f"`{_clip(words[0])}` is not a /dr command{hint}", nearest)
    try:
        return _PARSERS[verb](args)
    except _Malformed as e:
        return NotACommand(str(e), BY_VERB[verb])


_Parser = Callable[[list[str]], Command]


class _Malformed(ValueError):
    """The verb is known but its arguments are not what it takes."""


def _none(verb: str) -> _Parser:
    def parser(args: list[str]) -> Command:
        if args:
            raise _Malformed(f"`{verb}` takes no arguments")
        return Command(verb)

    return parser


def _help(args: list[str]) -> Command:
    if len(args) > 1:
        raise _Malformed("`help` takes at most one command name")
    return Command("help", subject=args[0].lower() if args else "")


def _incidents(args: list[str]) -> Command:
    tenant = severity = ""
    if len(args) > 2:
        raise _Malformed("`incidents` takes at most a tenant and a severity")
    for arg in args:
        try:
            label = Severity.parse(arg).label
        except ValueError:
            label = ""
        if label and not severity:
            severity = label
        elif not tenant and _TENANT.fullmatch(arg) and not arg.lower().startswith("sev"):
            tenant = arg
        else:
            raise _Malformed(f"`{_clip(arg)}` is neither a tenant nor a severity (sev1 to sev4)")
    return Command("incidents", tenant=tenant, severity=severity)


def _one_id(verb: str, what: str) -> _Parser:
    def parser(args: list[str]) -> Command:
        if len(args) != 1:
            raise _Malformed(f"`{verb}` takes one {what} id")
        if not _ID.fullmatch(args[0]):
            raise _Malformed(f"`{_clip(args[0])}` is not a {what} id")
        return Command(verb, subject=args[0])

    return parser


def _failover(args: list[str]) -> Command:
    if len(args) != 2 or args[0].lower() not in ("redis", "cosmos"):
        raise _Malformed("`failover` takes redis or cosmos, then the cache or account (name or ARM id)")
    if not _TARGET.fullmatch(args[1]):
        raise _Malformed(f"`{_clip(args[1])}` is not a resource name or ARM id")
    return Command("failover", subject=args[1], system=args[0].lower())


def _workload(verb: str, *, revision: bool) -> _Parser:
    def parser(args: list[str]) -> Command:
        options = _options(args[1:], {"--to"} if revision else set(), verb)
        if not args or not _WORKLOAD.fullmatch(args[0]):
            raise _Malformed(
                f"`{verb}` takes <namespace>/<deployment> (optionally <cluster>:<namespace>/<deployment>)"
            )
        to = options.get("--to")
        if to is not None and not (to.isascii() and to.isdigit() and 0 < int(to) < 1_000_000):
            raise _Malformed("`--to` takes a revision number (1 or more)")
        return Command(verb, subject=args[0], revision=int(to) if to is not None else None)

    return parser


def _restore(args: list[str]) -> Command:
    options = _options(args[1:], {"--backup"}, "restore")
    if not args or not _PLACE.fullmatch(args[0]):
        raise _Malformed("`restore` takes a namespace (optionally <cluster>:<namespace>)")
    backup = options.get("--backup")
    if backup is not None and not _ID.fullmatch(backup):
        raise _Malformed(f"`{_clip(backup)}` is not a backup name")
    return Command("restore", subject=args[0], backup=backup)


def _pause(args: list[str]) -> Command:
    tenant = _scope(args[:1], "pause")
    return Command("pause", tenant=tenant, reason=" ".join(args[1:])[:500])


def _resume(args: list[str]) -> Command:
    if len(args) > 1:
        raise _Malformed("`resume` takes at most a tenant")
    return Command("resume", tenant=_scope(args, "resume"))


def _scope(args: list[str], verb: str) -> str:
    if not args or args[0] == "*":
        return ""
    if not _TENANT.fullmatch(args[0]):
        raise _Malformed(f"`{_clip(args[0])}` is not a tenant (or * for every tenant)")
    return args[0]


def _options(args: list[str], allowed: set[str], verb: str) -> dict[str, str]:
    """`--name value` pairs after the positional argument."""
    found: dict[str, str] = {}
    for i in range(0, len(args), 2):
        name = args[i]
        if name not in allowed or i + 1 >= len(args) or name in found:
            takes = " or ".join(sorted(allowed)) if allowed else "no options"
            raise _Malformed(f"`{verb}` takes {takes} after its target, not `{_clip(name)}`")
        found[name] = args[i + 1]
    return found


def _clip(text: str) -> str:
    """Echo at most 40 characters of what a person typed, and no backticks (they would end the code span)."""
    text = text.replace("`", "'")
    return text if len(text) <= 40 else text[:39] + "…"


_PARSERS: dict[str, Callable[[list[str]], Command]] = {
    "status": _none("status"),
    "incidents": _incidents,
    "show": _one_id("show", "incident"),
    "ack": _one_id("ack", "incident"),
    "resolve": _one_id("resolve", "incident"),
    "failover": _failover,
    "rollback": _workload("rollback", revision=True),
    "restart": _workload("restart", revision=False),
    "restore": _restore,
    "approve": _one_id("approve", "action"),
    "deny": _one_id("deny", "action"),
    "pause": _pause,
    "resume": _resume,
    "help": _help,
}
