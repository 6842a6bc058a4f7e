"""Settings from the environment (app settings in Azure, env vars or local.settings.json locally).

Secrets (routing keys, tokens, webhook secrets) are kept out of repr, so logging a Settings never
shows them. In Azure they come from Key Vault references in the app settings.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import SettingsError

MAX_BODY_BYTES = 1_048_576  # Azure Monitor payloads are a few KiB; anything over 1 MiB is refused


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read once per process."""

    data_dir: Path
    policy_file: str | None = None
    function_key: str | None = field(default=None, repr=False)  # `dr serve`; else DATA_DIR/function-key
    log_level: str = "INFO"
    sqlite_synchronous: str = "NORMAL"
    queue_lock_seconds: float = 30.0
    # A start whose outcome is unknown (its answer lost, its worker gone) is looked at after this.
    lost_answer_seconds: float = 120.0
    queue_max_delivery_count: int = 10
    pagerduty_routing_key: str | None = field(default=None, repr=False)
    pagerduty_routing_keys: str | None = field(default=None, repr=False)  # "ikea=KEY,*/sev1=KEY,…"
    pagerduty_events_url: str = "https://events.pagerduty.com"
    pagerduty_api_token: str | None = field(default=None, repr=False)
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_service_id: str | None = None
    pagerduty_from_email: str | None = None
    pagerduty_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    slack_channel: str | None = None
    slack_channels: str | None = None  # "ikea=C0123,hm/sev1=C0456,…"
    slack_signing_secret: str | None = field(default=None, repr=False)  # /dr and buttons are refused without
    slack_allowed_users: tuple[str, ...] = ()  # user ids that may run destructive commands
    slack_allowed_groups: tuple[str, ...] = ()  # user-group ids whose members may
    slack_team_ids: tuple[str, ...] = ()  # workspaces served; empty: any the signing secret signs for
    runbook_base_url: str = ""
    retry_base_seconds: float = 2.0  # first retry of a failed page or card; doubles up to the cap
    retry_max_seconds: float = 300.0
    automation: str = "on"  # DR_AUTOMATION=off: nothing runs by itself (suggest and dry-run still record)
    arm_url: str = "https://management.azure.com"  # DR_ARM_URL: where the Azure SDK clients go
    managed_identity_client_id: str | None = None  # AZURE_CLIENT_ID: the user-assigned identity
    action_check_seconds: float = 15.0  # how often a long operation is checked (kept within 10–30 s)
    # Service Bus (the Functions host's trigger connection, read the host's way): a namespace with the
    # managed identity, or a connection string; neither means the embedded SQLite queue.
    service_bus_namespace: str | None = None
    service_bus_connection: str | None = field(default=None, repr=False)
    service_bus_client_id: str | None = None
    # Table Storage: an endpoint with the managed identity, or a connection string (Azurite locally).
    tables_endpoint: str | None = None
    tables_connection: str | None = field(default=None, repr=False)
    tables_table: str = "drresponder"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the variables listed in local.settings.sample.json; defaults suit `dr serve` on a laptop."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        def number(name: str, default: float, low: float) -> float:
            text = get(name)
            try:
                value = float(text) if text else default
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {text!r}") from None
            # nan and inf parse as floats; 0 or less would spin retries or never lock a message.
            if not (math.isfinite(value) and value >= low):
                raise SettingsError(f"{name} must be a finite number of at least {low:g}, got {text!r}")
            return value

        return cls(
            data_dir=Path(get("DR_DATA_DIR") or ".data"),
            policy_file=get("DR_POLICY_FILE"),
            function_key=get("DR_FUNCTION_KEY"),
            log_level=(get("DR_LOG_LEVEL") or "INFO").upper(),
            sqlite_synchronous=(get("DR_SQLITE_SYNCHRONOUS") or "NORMAL").upper(),
            queue_lock_seconds=number("DR_QUEUE_LOCK_SECONDS", 30, low=1),
            lost_answer_seconds=number("DR_LOST_ANSWER_SECONDS", 120, low=1),
            queue_max_delivery_count=int(number("DR_QUEUE_MAX_DELIVERY_COUNT", 10, low=1)),
            pagerduty_routing_key=get("PAGERDUTY_ROUTING_KEY"),
            pagerduty_routing_keys=get("PAGERDUTY_ROUTING_KEYS"),
            pagerduty_events_url=get("PAGERDUTY_EVENTS_URL") or cls.pagerduty_events_url,
            pagerduty_api_token=get("PAGERDUTY_API_TOKEN"),
            pagerduty_api_url=get("PAGERDUTY_API_URL") or cls.pagerduty_api_url,
            pagerduty_service_id=get("PAGERDUTY_SERVICE_ID"),
            pagerduty_from_email=get("PAGERDUTY_FROM_EMAIL"),
            pagerduty_webhook_secrets=tuple(
                s.strip() for s in (get("PAGERDUTY_WEBHOOK_SECRETS") or "").split(",") if s.strip()
            ),
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_api_url=get("SLACK_API_URL") or cls.slack_api_url,
            slack_channel=get("SLACK_CHANNEL"),
            slack_channels=get("SLACK_CHANNELS"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_allowed_users=_ids(get("SLACK_ALLOWED_USERS")),
            slack_allowed_groups=_ids(get("SLACK_ALLOWED_GROUPS")),
            slack_team_ids=_ids(get("SLACK_TEAM_IDS")),
            runbook_base_url=get("DR_RUNBOOK_BASE_URL") or "",
            retry_base_seconds=number("DR_RETRY_BASE_SECONDS", 2, low=0.01),
            retry_max_seconds=number("DR_RETRY_MAX_SECONDS", 300, low=0.01),
            automation=(get("DR_AUTOMATION") or "on").lower(),
            arm_url=(get("DR_ARM_URL") or cls.arm_url).rstrip("/"),
            managed_identity_client_id=get("AZURE_CLIENT_ID"),
            action_check_seconds=number("DR_ACTION_CHECK_SECONDS", 15, low=0.01),
            service_bus_namespace=get("ServiceBusConnection__fullyQualifiedNamespace"),
            service_bus_connection=get("ServiceBusConnection"),
            service_bus_client_id=get("ServiceBusConnection__clientId"),
            tables_endpoint=get("DR_TABLES_ENDPOINT"),
            tables_connection=get("DR_TABLES_CONNECTION_STRING"),
            tables_table=get("DR_TABLES_TABLE") or cls.tables_table,
        )

    def __post_init__(self) -> None:
        # Fail at start-up, naming the setting, rather than on every page or card.
        from shared.paging.routing import RoutingTable

        if self.sqlite_synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise SettingsError("DR_SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise SettingsError("DR_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")

        if self.automation not in ("on", "off"):
            raise SettingsError("DR_AUTOMATION must be on or off")
        if self.tables_endpoint and not self.tables_endpoint.startswith("https://"):
            raise SettingsError("DR_TABLES_ENDPOINT must be an https:// URL (tokens go over TLS only)")
        if not self.arm_url.startswith("https://"):
            raise SettingsError("DR_ARM_URL must be an https:// URL (the SDK sends tokens over TLS only)")
        RoutingTable.parse(self.pagerduty_routing_key, self.pagerduty_routing_keys, "PAGERDUTY_ROUTING_KEYS")
        RoutingTable.parse(self.slack_channel, self.slack_channels, "SLACK_CHANNELS")
        # Slack's ids are upper case: "u0abc" never matches anyone, and nobody would notice why.
        for name, ids, shape, what in (
            ("SLACK_ALLOWED_USERS", self.slack_allowed_users, _SLACK_USER, "user id (U… or W…)"),
            ("SLACK_ALLOWED_GROUPS", self.slack_allowed_groups, _SLACK_GROUP, "user-group id (S…)"),
            ("SLACK_TEAM_IDS", self.slack_team_ids, _SLACK_TEAM, "workspace id (T…)"),
        ):
            wrong = [i for i in ids if not shape.fullmatch(i)]
            if wrong:
                raise SettingsError(
                    f"{name}: {', '.join(repr(w[:40]) for w in wrong[:5])} is not a Slack {what}"
                )
        for name, url in (
            ("PAGERDUTY_EVENTS_URL", self.pagerduty_events_url),
            ("PAGERDUTY_API_URL", self.pagerduty_api_url),
        ):
            if not url.startswith("https://"):
                raise SettingsError(f"{name} must be an https:// URL (PagerDuty's client takes nothing else)")

    @property
    def pages_for_real(self) -> bool:
        """A routing key is set: pages go to PagerDuty (else they are dry-run)."""
        return bool(self.pagerduty_routing_key or self.pagerduty_routing_keys)

    @property
    def posts_for_real(self) -> bool:
        """A bot token is set: cards go to Slack (else they are dry-run)."""
        return bool(self.slack_bot_token)


_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}")
_SLACK_GROUP = re.compile(r"S[A-Z0-9]{2,30}")
_SLACK_TEAM = re.compile(r"T[A-Z0-9]{2,30}")


def _ids(text: str | None) -> tuple[str, ...]:
    """ "U1, U2" → ("U1", "U2"): Slack ids in a comma-separated setting."""
    return tuple(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))
