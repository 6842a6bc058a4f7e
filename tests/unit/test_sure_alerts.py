"""The quick check may be stricter than the full parser, never more lenient, and names the same signal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.bootstrap import Services
from shared.errors import BadInput
from shared.intake.admission import intake_message
from shared.intake.azure_monitor import parse_alert
from shared.intake.json_body import decode_json
from shared.localhost.fast_intake import MAX_SURE_BYTES
from shared.localhost.sure_alerts import sure_signal_id
from shared.ports import MAX_MESSAGE_BYTES
from shared.settings import Settings
from tests.json_strategies import JSON_VALUES, one_field_changed

REFDATA = Path(__file__).resolve().parents[3] / "shared" / "refdata" / "azure_monitor"
COMMON = sorted(REFDATA.glob("cas_*.json"))
OTHERS = sorted(p for p in REFDATA.glob("*.json") if not p.name.startswith("cas_"))
DOCUMENTS = [json.loads(p.read_bytes()) for p in COMMON]
OWNER = Services(Settings(data_dir=Path("/nonexistent"))).owner()
# Spellings the full parser folds and the quick check leaves to it.
AWKWARD = st.sampled_from(
    [
        "",
        " ",
        "Fired",
        " Fired",
        "fired",
        "Resolved",
        "Sev1",
        "sev1",
        "Sev1 ",
        "Sev9",
        "2026-12-03T10:00:00Z",
        "2026-13-03T10:00:00Z",
        "not a time",
        "x",
        "\u00e9",
    ]
)


def full_path_id(body: bytes) -> str | None:
    """The signal id the full path gives the body, or None if it refuses it."""
    try:
        return parse_alert(decode_json(body, "application/json"), OWNER).id
    except BadInput:
        return None


def assert_never_more_lenient(body: bytes) -> None:
    quick = sure_signal_id(body)
    if quick is not None:
        assert full_path_id(body) == quick


@pytest.mark.parametrize("path", COMMON, ids=lambda p: p.name)
def test_every_common_schema_reference_payload_is_sure_and_named_alike(path: Path) -> None:
    body = path.read_bytes()
    assert sure_signal_id(body) is not None
    assert sure_signal_id(body) == full_path_id(body)


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: p.name)
def test_other_schemas_take_the_full_path(path: Path) -> None:
    assert sure_signal_id(path.read_bytes()) is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b"\xef\xbb\xbf" + COMMON[0].read_bytes(),  # a BOM: decode_json takes it, the quick check leaves it
        COMMON[0].read_bytes() + b" x",
        COMMON[0].read_bytes().replace(b'"alertId"', b'"alertId": "\\ud800", "x"', 1),
        COMMON[0].read_bytes().replace(b'"alertId"', b'"alertId": "first", "alertId"', 1),
        COMMON[0].read_bytes().replace(b'"alertId"', b'"alertId"', 1).replace(b"{", b"{" * 70, 1),
        COMMON[0].read_bytes().replace(b'"essentials"', b'"n": NaN, "essentials"', 1),
        COMMON[0].read_bytes().replace(b'"essentials"', b'"n": ' + b"9" * 5000 + b', "essentials"', 1),
    ],
    ids=["empty", "null", "array", "bom", "trailing", "surrogate", "duplicate", "deep", "nan", "big-int"],
)
def test_edges_of_json_are_never_more_lenient(body: bytes) -> None:
    assert_never_more_lenient(body)


@settings(max_examples=400, deadline=None)
@given(one_field_changed(DOCUMENTS, JSON_VALUES | AWKWARD))
def test_a_changed_field_anywhere_is_never_more_lenient(document: Any) -> None:
    assert_never_more_lenient(json.dumps(document).encode())


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(DOCUMENTS),
    st.sampled_from(
        [
            "alertId",
            "alertRule",
            "severity",
            "monitorCondition",
            "monitoringService",
            "firedDateTime",
            "resolvedDateTime",
            "signalType",
            "alertTargetIDs",
            "configurationItems",
            "description",
        ]
    ),
    JSON_VALUES | AWKWARD,
)
def test_a_changed_essential_is_never_more_lenient(document: Any, field: str, value: Any) -> None:
    changed = json.loads(json.dumps(document))
    changed["data"]["essentials"][field] = value
    assert_never_more_lenient(json.dumps(changed).encode())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(COMMON), st.data())
def test_cut_or_corrupted_bytes_are_never_more_lenient(path: Path, data: st.DataObject) -> None:
    body = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, len(body) - 1))
    if data.draw(st.booleans()):
        body[at] = data.draw(st.integers(0, 255))
    else:
        del body[at:]
    assert_never_more_lenient(bytes(body))


def test_the_largest_sure_body_makes_a_signal_that_fits_a_queue_message() -> None:
    # The worst case: the resource id (kept whole and as its parts) all non-ASCII, to the size limit.
    document = json.loads(COMMON[0].read_bytes())
    base = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/"
    document["data"]["essentials"]["alertTargetIDs"] = [base + "Microsoft.DocumentDB/databaseAccounts/"]
    room = MAX_SURE_BYTES - len(json.dumps(document, ensure_ascii=False).encode())
    document["data"]["essentials"]["alertTargetIDs"][0] += "\u00e9" * (room // 2)
    body = json.dumps(document, ensure_ascii=False).encode()
    assert MAX_SURE_BYTES - 2 <= len(body) <= MAX_SURE_BYTES

    signal = parse_alert(decode_json(body, "application/json"), OWNER)
    assert sure_signal_id(body) == signal.id
    assert len(intake_message(signal, "key").body) <= MAX_MESSAGE_BYTES
