"""The policy file: severity rules, correlation, paging and first responses, validated on load."""

from __future__ import annotations

import fnmatch
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from shared.domain.severity import Severity
from shared.domain.signals import KNOWN_FACTS, MATCH_FIELDS
from shared.errors import PolicyError

DEFAULT_POLICY = Path(__file__).with_name("default_policy.toml")
ACTION_MODES = ("auto", "approve", "suggest", "dry-run")
PAGE_WHEN = ("always", "on-failure")
# Keys of an action table that the pipeline reads; every other key is a parameter of the action.
ACTION_KEYS = frozenset(
    {
        "action",
        "mode",
        "resource",
        "approval_minutes",
        "approve_on_ack",
        "settle_minutes",
        "page",
        "cooldown_minutes",
    }
)
# What a `[targets."<name>"]` table may say about how to reach a resource.
REACH_KEYS = {
    "sentinels": list,  # self-hosted Redis: ["host:port", …]
    "master": str,  # its Sentinel master name
    "password_setting": str,  # the app setting that holds its password (never the password)
    "kubeconfig": str,  # a cluster outside AKS
    "context": str,
    "vault_url": str,  # a Key Vault elsewhere than https://NAME.vault.azure.net
    "region": str,  # where the resource lives, for the per-region cap
}
SIGNAL_FIELDS = ("rule", "resource_id", "kind", "tenant", "environment", "component", "resource_type")


@dataclass(frozen=True)
class ActionPlan:
    """A first-response action a rule asks for, how much a person must be involved, and on what."""

    action: str
    mode: str
    rule: str = ""
    where: str = ""  # its place in the policy file, for errors that name it
    resource: str = "{resource_id}"  # template: the resource acted on
    params: Mapping[str, Any] = field(default_factory=dict)  # strings are templates over the signal
    approval_minutes: int = 30
    approve_on_ack: bool = False  # the PagerDuty acknowledgement approves it
    settle_minutes: int = 5  # the alert's condition must stay clear this long after the action
    page: str = "always"  # "on-failure": page only when the automatic action fails or does not recover
    cooldown_minutes: int = 30


@dataclass(frozen=True)
class Guardrails:
    """Limits on what automation may do, whatever the rules ask."""

    cooldown_minutes: int = 30  # per (action, target), unless the rule's action says otherwise
    approval_minutes: int = 30
    settle_minutes: int = 5
    max_per_hour: int = 10  # automatic actions started, all tenants
    max_per_hour_per_tenant: int = 3
    max_per_hour_per_region: int = 5
    breaker_attempts: int = 3  # the same action on the same target this often within the window…
    breaker_window_minutes: int = 60  # …stops automation for that target and pages its owner


@dataclass(frozen=True)
class Rule:
    """One severity rule: when every condition matches, it sets severity, resolves, or marks noise."""

    id: str
    when: Mapping[str, tuple[str, ...]]  # field → lower-case glob patterns, any of which may match
    reason: str
    severity: Severity | None = None
    resolves: bool = False
    informational: bool = False
    lower: bool = False  # may set a severity below the alert's own (its baseline is otherwise a floor)
    actions: tuple[ActionPlan, ...] = ()
    compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One regex per condition, compiled once: rules run against every alert of a storm.
        compiled = tuple(
            (key, re.compile("|".join(fnmatch.translate(p) for p in patterns)))
            for key, patterns in self.when.items()
        )
        object.__setattr__(self, "compiled", compiled)

    def matches(self, lowered: Mapping[str, tuple[str, ...]]) -> bool:
        """Every condition has at least one (lower-cased) value matching one of its patterns."""
        return all(any(regex.match(v) for v in lowered.get(key, ())) for key, regex in self.compiled)


@dataclass(frozen=True)
class Component:
    """A platform component as the DR plan names it."""

    name: str
    types: tuple[str, ...]
    service_names: tuple[str, ...]
    tier: int
    rto_minutes: int
    runbook: str


@dataclass(frozen=True)
class Policy:
    """The validated policy."""

    source: str
    naming: re.Pattern[str]
    correlation_key: tuple[str, ...]
    window_minutes: int
    cross_tenant_threshold: int
    paging: frozenset[Severity]
    notify: frozenset[Severity]
    response_minutes: Mapping[str, int]
    components: Mapping[str, Component]
    rules: tuple[Rule, ...]
    component_by_type: Mapping[str, str] = field(default_factory=dict)
    guardrails: Guardrails = field(default_factory=Guardrails)
    targets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by lower-case name
    # A storm repeats the same few signals: remember which rules matched which values.
    _matched: dict[tuple[tuple[str, ...], ...], tuple[Rule, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def component(self, name: str) -> Component | None:
        """A component by name."""
        return self.components.get(name)

    def reach(self, resource: str) -> Mapping[str, Any]:
        """How to reach a resource, from `[targets."<name>"]` (by its name or id); empty means ARM."""
        key = resource.lower()
        return self.targets.get(key) or self.targets.get(key.rstrip("/").rsplit("/", 1)[-1]) or {}

    def actions(self) -> list[ActionPlan]:
        """Every action any rule asks for, in policy order."""
        return [a for rule in self.rules for a in rule.actions]

    @cached_property
    def rule_fields(self) -> tuple[str, ...]:
        """The signal fields any rule looks at; the others cannot change which rules match."""
        return tuple(sorted({key for rule in self.rules for key in rule.when}))

    def matching_rules(self, values: Mapping[str, tuple[str, ...]]) -> tuple[Rule, ...]:
        """The rules whose every condition matches, in policy order."""
        key = tuple(tuple(v.lower() for v in values.get(name, ())) for name in self.rule_fields)
        matched = self._matched.get(key)
        if matched is None:
            lowered = dict(zip(self.rule_fields, key, strict=True))
            matched = tuple(rule for rule in self.rules if rule.matches(lowered))
            if len(self._matched) >= 10_000:  # bounded: distinct signals are few, but be safe
                self._matched.clear()
            self._matched[key] = matched
        return matched


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (the default DR plan when path is None)."""
    path = Path(path) if path else DEFAULT_POLICY
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise PolicyError(f"{path}: cannot read: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"{path}: not valid TOML: {e}") from e
    return _Validator(str(path)).policy(raw)


class _Validator:
    """Turns the raw TOML into a Policy, naming the file and the place of the first problem."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.guardrails = Guardrails()

    def fail(self, where: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.source}: {where}: {problem}")

    def get(self, table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if key not in table:
            raise self.fail(f"{where}.{key}" if where else key, "missing")
        value = table[key]
        # bool is an int in Python; a policy that says `tier = true` is a mistake.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            names = " or ".join(t.__name__ for t in _as_tuple(kind))
            raise self.fail(f"{where}.{key}" if where else key, f"expected {names}, got {value!r}")
        return value

    def severities(self, values: Any, where: str) -> frozenset[Severity]:
        if not isinstance(values, list):
            raise self.fail(where, f"expected a list of severities, got {values!r}")
        return frozenset(self.severity(v, f"{where}[{i}]") for i, v in enumerate(values))

    def severity(self, value: Any, where: str) -> Severity:
        try:
            return Severity.parse(value if isinstance(value, str) else "")
        except ValueError:
            raise self.fail(where, f"{value!r} is not one of sev1, sev2, sev3, sev4") from None

    def policy(self, raw: dict[str, Any]) -> Policy:
        if raw.get("version") != 1:
            raise self.fail("version", f"expected 1, got {raw.get('version')!r}")
        naming = self.get(raw, "naming", dict, "")
        pattern = self.get(naming, "pattern", str, "naming")
        try:
            naming_re = re.compile(pattern)
        except re.error as e:
            raise self.fail("naming.pattern", f"not a valid regular expression: {e}") from e
        if "tenant" not in naming_re.groupindex:
            raise self.fail("naming.pattern", "needs a named group (?P<tenant>…)")

        correlation = self.get(raw, "correlation", dict, "")
        key = self.get(correlation, "key", list, "correlation")
        if not key:
            raise self.fail("correlation.key", "needs at least one field, or every signal joins one incident")
        for i, part in enumerate(key):
            if part not in SIGNAL_FIELDS:
                raise self.fail(f"correlation.key[{i}]", f"{part!r} is not one of {', '.join(SIGNAL_FIELDS)}")
        window = self.get(correlation, "window_minutes", int, "correlation")
        threshold = self.get(correlation, "cross_tenant_threshold", int, "correlation")
        if window < 1 or threshold < 2:
            raise self.fail("correlation", "window_minutes must be ≥ 1 and cross_tenant_threshold ≥ 2")

        self.guardrails = self.limits(raw.get("guardrails", {}))
        targets = {
            name.lower(): self.target(name, table) for name, table in self.table(raw, "targets").items()
        }
        components = {
            name: self.component(name, table) for name, table in self.get(raw, "components", dict, "").items()
        }
        by_type = {t: c.name for c in components.values() for t in c.types}
        rules = tuple(self.rule(i, r) for i, r in enumerate(self.get(raw, "rules", list, "")))
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            if rule.id in seen:
                raise self.fail(f"rules[{i}].id", f"{rule.id!r} is used twice")
            seen.add(rule.id)
        response = self.get(raw, "response_minutes", dict, "")
        for label, minutes in response.items():
            self.severity(label, f"response_minutes.{label}")
            if not isinstance(minutes, int) or minutes < 1:
                raise self.fail(f"response_minutes.{label}", f"expected minutes ≥ 1, got {minutes!r}")
        return Policy(
            source=self.source,
            naming=naming_re,
            correlation_key=tuple(key),
            window_minutes=window,
            cross_tenant_threshold=threshold,
            paging=self.severities(self.get(raw, "paging", dict, "").get("severities"), "paging.severities"),
            notify=self.severities(self.get(raw, "notify", dict, "").get("severities"), "notify.severities"),
            response_minutes=dict(response),
            components=components,
            rules=rules,
            component_by_type=by_type,
            guardrails=self.guardrails,
            targets=targets,
        )

    def table(self, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "expected a table")
        return value

    def limits(self, table: Any) -> Guardrails:
        if not isinstance(table, dict):
            raise self.fail("guardrails", "expected a table")
        known = Guardrails.__dataclass_fields__
        unknown = set(table) - set(known)
        if unknown:
            raise self.fail("guardrails", f"unknown keys {sorted(unknown)}")
        values = {key: self.get(table, key, int, "guardrails") for key in table}
        for key, value in values.items():
            if value < 1:
                raise self.fail(f"guardrails.{key}", f"expected a whole number ≥ 1, got {value!r}")
        return Guardrails(**values)

    def target(self, name: str, table: Any) -> Mapping[str, Any]:
        where = f'targets."{name}"'
        if not isinstance(table, dict):
            raise self.fail(where, "expected a table")
        for key in table:
            kind = REACH_KEYS.get(key)
            if kind is None:
                raise self.fail(f"{where}.{key}", f"not one of {', '.join(REACH_KEYS)}")
            self.get(table, key, kind, where)
        if "sentinels" in table:
            sentinels = self.strings(table["sentinels"], f"{where}.sentinels")
            for i, address in enumerate(sentinels):
                host, _, port = address.rpartition(":")
                if not host or not port.isdigit():
                    raise self.fail(f"{where}.sentinels[{i}]", f"expected host:port, got {address!r}")
            if "master" not in table:
                raise self.fail(where, 'sentinels need master = "<the Sentinel master name>"')
        return dict(table)

    def component(self, name: str, table: Any) -> Component:
        where = f"components.{name}"
        if not isinstance(table, dict):
            raise self.fail(where, "expected a table")
        types = self.strings(self.get(table, "types", list, where), f"{where}.types")
        return Component(
            name=name,
            types=tuple(t.lower() for t in types),
            service_names=self.strings(table.get("service_names", []), f"{where}.service_names"),
            tier=self.get(table, "tier", int, where),
            rto_minutes=self.get(table, "rto_minutes", int, where),
            runbook=self.get(table, "runbook", str, where),
        )

    def rule(self, index: int, table: Any) -> Rule:
        where = f"rules[{index}]"
        if not isinstance(table, dict):
            raise self.fail(where, "expected a table")
        rule_id = self.get(table, "id", str, where)
        where = f"rules[{index}] ({rule_id})"
        known = {"id", "when", "reason", "severity", "lower", "resolves", "informational", "actions"}
        unknown = set(table) - known
        if unknown:
            raise self.fail(where, f"unknown keys {sorted(unknown)}")
        when = self.get(table, "when", dict, where)
        if not when:
            raise self.fail(f"{where}.when", "needs at least one condition")
        for key in when:
            if key not in MATCH_FIELDS and key not in KNOWN_FACTS:
                raise self.fail(
                    f"{where}.when.{key}", "no signal has this field or fact (see `dr explain FILE`)"
                )
        conditions = {
            key: tuple(p.lower() for p in self.strings(value, f"{where}.when.{key}"))
            for key, value in when.items()
        }
        severity = self.severity(table["severity"], f"{where}.severity") if "severity" in table else None
        resolves = bool(table.get("resolves", False))
        informational = bool(table.get("informational", False))
        if [severity is not None, resolves, informational].count(True) != 1:
            raise self.fail(where, "needs exactly one of severity, resolves = true, informational = true")
        lower = self.get(table, "lower", bool, where) if "lower" in table else False
        if lower and severity is None:
            raise self.fail(f"{where}.lower", "lower = true needs a severity to lower to")
        actions = tuple(
            self.action(a, f"{where}.actions[{i}]", rule_id) for i, a in enumerate(table.get("actions", []))
        )
        if actions and severity is None:
            raise self.fail(f"{where}.actions", "only a rule that sets a severity may act")
        return Rule(
            id=rule_id,
            when=conditions,
            reason=self.reason(self.get(table, "reason", str, where), f"{where}.reason"),
            severity=severity,
            lower=lower,
            resolves=resolves,
            informational=informational,
            actions=actions,
        )

    def reason(self, text: str, where: str) -> str:
        """Placeholders must name known fields, plainly: a format spec would fail on a string value."""
        for name in self.placeholders(text, where):
            if name not in MATCH_FIELDS and name not in KNOWN_FACTS:
                raise self.fail(where, f"{{{name}}} names no signal field or fact")
        return text

    def placeholders(self, text: str, where: str) -> list[str]:
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as e:
            raise self.fail(where, f"not a valid template: {e}") from e
        names = []
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if not name.replace(".", "_").replace("-", "_").isidentifier():
                raise self.fail(where, f"{{{name}}} is not a field name")
            if spec or conversion:
                raise self.fail(where, f"{{{name}}} may not have a format spec or conversion")
            names.append(name)
        return names

    def action(self, table: Any, where: str, rule_id: str) -> ActionPlan:
        if not isinstance(table, dict):
            raise self.fail(where, 'expected a table like { action = "redis.failover", mode = "approve" }')
        mode = self.get(table, "mode", str, where)
        if mode not in ACTION_MODES:
            raise self.fail(f"{where}.mode", f"{mode!r} is not one of {', '.join(ACTION_MODES)}")
        page = table.get("page", "always")
        if page not in PAGE_WHEN:
            raise self.fail(f"{where}.page", f"{page!r} is not one of {', '.join(PAGE_WHEN)}")
        if page == "on-failure" and mode != "auto":
            raise self.fail(
                f"{where}.page", 'page = "on-failure" needs mode = "auto": only automation can fail'
            )
        resource = table.get("resource", "{resource_id}")
        if not isinstance(resource, str) or not resource.strip():
            raise self.fail(f"{where}.resource", f"expected a template string, got {resource!r}")
        self.placeholders(resource, f"{where}.resource")
        params = {key: value for key, value in table.items() if key not in ACTION_KEYS}
        for key, value in params.items():
            if isinstance(value, str):
                self.placeholders(value, f"{where}.{key}")
        minutes = {
            key: self.minutes(table, key, where, getattr(self.guardrails, key))
            for key in ("approval_minutes", "settle_minutes", "cooldown_minutes")
        }
        on_ack = self.get(table, "approve_on_ack", bool, where) if "approve_on_ack" in table else False
        if on_ack and mode != "approve":
            raise self.fail(f"{where}.approve_on_ack", 'approve_on_ack needs mode = "approve"')
        return ActionPlan(
            action=self.get(table, "action", str, where),
            mode=mode,
            rule=rule_id,
            where=where,
            resource=resource,
            params=params,
            approve_on_ack=on_ack,
            page=page,
            **minutes,
        )

    def minutes(self, table: Mapping[str, Any], key: str, where: str, default: int) -> int:
        if key not in table:
            return default
        value = self.get(table, key, int, where)
        if value < 0:
            raise self.fail(f"{where}.{key}", f"expected minutes ≥ 0, got {value!r}")
        return int(value)

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) for v in values):
            raise self.fail(where, f"expected a string or a list of strings, got {value!r}")
        return tuple(values)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
