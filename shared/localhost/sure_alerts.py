"""Alerts that `parse_alert` is sure to accept, told in microseconds, so `dr serve` can answer first.

`sure_signal_id(body)` decodes the common schema's essentials with msgspec (in C, about 2 µs where
`json.loads` alone takes 9) and returns the id that `parse_alert` would give the signal, or None
whenever it cannot be sure: another schema, a spelling the full parser folds (" fired", "sev1"), or
a body `decode_json` might refuse (nested deeper than its limit, an integer too long for
`json.loads`, bytes that are not UTF-8; msgspec itself refuses a lone surrogate escape, NaN and a
BOM). None is not a refusal: the request then takes the full path, which answers as it always has.
So the quick check may be stricter than the full parser, never more lenient, and a property test
holds it to that (`tests/unit/test_sure_alerts.py`).
"""

from __future__ import annotations

import re
import sys
from typing import Any

import msgspec

from shared.clock import parse_iso
from shared.intake.azure_monitor import COMMON_SCHEMA, SEVERITIES, dedupe_id
from shared.intake.json_body import MAX_DEPTH

_CONDITIONS = frozenset({"Fired", "Resolved"})
_SEVERITIES = frozenset(SEVERITIES)
# json.loads refuses an integer longer than this (CVE-2020-10735); msgspec skips unknown fields unread.
_MAX_DIGITS = sys.get_int_max_str_digits()
_TOO_LONG_NUMBER = re.compile(rb"\d{%d}" % (_MAX_DIGITS + 1)) if _MAX_DIGITS else None


class _Essentials(msgspec.Struct):
    """What `parse_alert` requires or type-checks in `data.essentials`; the rest it reads leniently."""

    alertId: str
    alertRule: str
    severity: str
    monitorCondition: str
    monitoringService: str
    firedDateTime: str
    signalType: str | None = None
    alertTargetIDs: list[str] | None = None
    configurationItems: list[str] | None = None
    resolvedDateTime: str | None = None
    description: str | None = None


class _Data(msgspec.Struct):
    essentials: _Essentials
    alertContext: dict[str, Any] | None = None
    customProperties: dict[str, Any] | None = None


class _Alert(msgspec.Struct):
    schemaId: str
    data: _Data


_decode = msgspec.json.Decoder(_Alert).decode


def sure_signal_id(body: bytes) -> str | None:
    """The signal id `parse_alert` would give this body, if it is sure to accept it; else None."""
    # decode_json's depth limit, checked as cheaply as it checks it: msgspec's own is deeper.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        return None
    if _TOO_LONG_NUMBER and len(body) > _MAX_DIGITS and _TOO_LONG_NUMBER.search(body):
        return None
    if not body.isascii() and not _is_utf8(body):  # msgspec does not check the bytes it skips
        return None
    try:
        alert = _decode(body)
    except msgspec.MsgspecError:  # not JSON, or not the schema (ValidationError is one)
        return None
    essentials = alert.data.essentials
    if not (
        alert.schemaId == COMMON_SCHEMA
        and essentials.severity in _SEVERITIES
        and essentials.monitorCondition in _CONDITIONS
        and essentials.alertId.strip()
        and essentials.alertRule.strip()
        and essentials.monitoringService.strip()
        and essentials.firedDateTime.strip()
        and parse_iso(essentials.firedDateTime) is not None
    ):
        return None
    resolved = essentials.resolvedDateTime or ""
    if resolved.strip() and parse_iso(resolved) is None:
        return None
    return dedupe_id(essentials.alertId, essentials.monitorCondition, essentials.firedDateTime, resolved)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
