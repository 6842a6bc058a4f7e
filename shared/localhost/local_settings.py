"""local.settings.json as the Functions Core Tools read it: `Values` become environment variables,
except where the environment already has one (the environment wins). Nothing here logs a value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from shared.errors import SettingsError

FILE_NAME = "local.settings.json"
ENVIRONMENT = "environment"

# The responder's settings with their built-in defaults ("" = unset), as Settings.from_env reads
# them and local.settings.sample.json lists them (tests hold the three together).
DEFAULTS: Mapping[str, str] = {
    "DR_DATA_DIR": ".data",
    "DR_TABLES_ENDPOINT": "",
    "DR_TABLES_CONNECTION_STRING": "",
    "DR_TABLES_TABLE": "drresponder",
    "DR_POLICY_FILE": "",
    "DR_FUNCTION_KEY": "",
    "DR_QUEUE_LOCK_SECONDS": "30",
    "DR_LOST_ANSWER_SECONDS": "120",
    "DR_QUEUE_MAX_DELIVERY_COUNT": "10",
    "DR_SQLITE_SYNCHRONOUS": "NORMAL",
    "DR_RETRY_BASE_SECONDS": "2",
    "DR_RETRY_MAX_SECONDS": "300",
    "DR_RUNBOOK_BASE_URL": "",
    "DR_LOG_LEVEL": "INFO",
    "DR_AUTOMATION": "on",
    "DR_ARM_URL": "https://management.azure.com",
    "DR_ACTION_CHECK_SECONDS": "15",
    "AZURE_CLIENT_ID": "",
    "PAGERDUTY_ROUTING_KEY": "",
    "PAGERDUTY_ROUTING_KEYS": "",
    "PAGERDUTY_EVENTS_URL": "https://events.pagerduty.com",
    "PAGERDUTY_API_TOKEN": "",
    "PAGERDUTY_API_URL": "https://api.pagerduty.com",
    "PAGERDUTY_SERVICE_ID": "",
    "PAGERDUTY_FROM_EMAIL": "",
    "PAGERDUTY_WEBHOOK_SECRETS": "",
    "SLACK_BOT_TOKEN": "",
    "SLACK_API_URL": "https://slack.com/api/",
    "SLACK_CHANNEL": "",
    "SLACK_CHANNELS": "",
    "SLACK_SIGNING_SECRET": "",
    "SLACK_ALLOWED_USERS": "",
    "SLACK_ALLOWED_GROUPS": "",
    "SLACK_TEAM_IDS": "",
}
# The Functions host's own settings: expected in the file, not read by the responder.
# (ServiceBusConnection and its identity-based forms also tell the responder which queue to use.)
HOST_SETTINGS = frozenset(
    {
        "FUNCTIONS_WORKER_RUNTIME",
        "AzureWebJobsStorage",
        "ServiceBusConnection",
        "ServiceBusConnection__fullyQualifiedNamespace",
        "ServiceBusConnection__clientId",
    }
)


@dataclass(frozen=True)
class LocalSettings:
    """What local.settings.json added to the environment, and what in it nothing reads."""

    path: Path | None  # None: there is no file
    applied: frozenset[str]  # names taken from the file (the environment did not have them)
    unknown: tuple[str, ...]  # names in the file that are neither ours nor the host's

    def source(self, name: str) -> str:
        """Where a setting's value came from."""
        return FILE_NAME if name in self.applied else ENVIRONMENT


def read_values(path: Path) -> dict[str, str]:
    """The file's `Values`; SettingsError naming the problem (never a value: they may be secrets)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SettingsError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        # The message and position only: the document (e.doc) may hold secrets.
        raise SettingsError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a JSON object with a Values object")
    if raw.get("IsEncrypted") is True:
        raise SettingsError(f"{path}: IsEncrypted is true; decrypt it first (func settings decrypt)")
    values = raw.get("Values", {})
    if not isinstance(values, dict):
        raise SettingsError(f"{path}: Values must be an object of names to strings")
    found = {}
    for name, value in values.items():
        if value is None:
            continue  # Core Tools skips a null value too
        # Core Tools reads numbers as their text; an object, array or true/false is a mistake.
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SettingsError(f"{path}: Values.{name} must be a string")
        found[str(name)] = value if isinstance(value, str) else json.dumps(value)
    return found


def apply_local_settings(directory: Path, environ: MutableMapping[str, str]) -> LocalSettings:
    """Put the file's values into `environ` where it has none; what was taken, and from where."""
    path = directory / FILE_NAME
    if not path.exists():
        return LocalSettings(None, frozenset(), ())
    values = read_values(path)
    applied = set()
    for name, value in values.items():
        if name not in environ:
            environ[name] = value
            applied.add(name)
    unknown = tuple(sorted(n for n in values if n not in DEFAULTS and n not in HOST_SETTINGS))
    return LocalSettings(path, frozenset(applied), unknown)


def non_default_settings(environ: Mapping[str, str]) -> list[str]:
    """The responder's settings whose value is not the built-in default, in DEFAULTS order."""
    return [name for name, default in DEFAULTS.items() if not _same(environ.get(name, ""), default)]


def banner_lines(
    local: LocalSettings, environ: Mapping[str, str], options: Mapping[str, str] | None = None
) -> list[str]:
    """Where each setting not at its default came from, for `dr serve`'s banner; never a value.

    `options` names the settings a command-line option set ({"DR_DATA_DIR": "--data-dir"}).
    """
    options = options or {}
    names = non_default_settings(environ)
    lines = []
    if local.path is not None:
        lines.append(f"  settings file: {local.path} ({len(local.applied)} taken; the environment wins)")
    if names:
        lines.append("  settings not at their defaults, and where from (values are never shown):")
        width = max(len(n) for n in names)
        lines += [f"    {name:<{width}}  {options.get(name) or local.source(name)}" for name in names]
    else:
        lines.append("  settings: all at their defaults")
    if local.unknown:
        lines.append(f"  {FILE_NAME}: not settings of the responder: {', '.join(local.unknown)}")
    return lines


def _same(value: str, default: str) -> bool:
    value = value.strip()
    if not value or value == default:
        return True
    if default in ("NORMAL", "INFO"):
        return value.upper() == default  # read in any case
    try:
        return float(value) == float(default)  # "30.0" is the default 30
    except ValueError:
        return False
