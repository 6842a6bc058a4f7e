"""decode_json and the typed field access used by the intake parsers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import BadInput
from shared.intake.json_body import MAX_DEPTH, decode_json, dig, optional, require, text


def _bad(body: bytes, content_type: str | None = "application/json", **kwargs: Any) -> BadInput:
    with pytest.raises(BadInput) as caught:
        decode_json(body, content_type, **kwargs)
    return caught.value


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/cloudevents+json",
        "application/cloudevents-batch+json; charset=utf-8",
        "text/json",
        "application/vnd.pagerduty+json",
        None,
        "",
    ],
)
def test_accepts_json_content_types(content_type: str | None) -> None:
    assert decode_json(b'{"a": [1, 2.5, "x", null, true]}', content_type) == {"a": [1, 2.5, "x", None, True]}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", "json", "+json"]
)
def test_rejects_other_content_types_with_415(content_type: str) -> None:
    error = _bad(b"{}", content_type)
    assert (error.status, error.error) == (415, "unsupported_media_type")
    assert repr(content_type) in error.detail


@pytest.mark.parametrize("body", [b"", b"  \r\n\t ", b"\xef\xbb\xbf"])
def test_empty_body_is_400(body: bytes) -> None:
    error = _bad(body)
    assert (error.status, error.error) == (400, "empty_body")


def test_body_over_the_limit_is_413_naming_the_limit() -> None:
    assert decode_json(b'"' + b"x" * 98 + b'"', "application/json", max_bytes=100) == "x" * 98
    error = _bad(b'"' + b"x" * 99 + b'"', max_bytes=100)
    assert (error.status, error.error) == (413, "body_too_large")
    assert "100 bytes" in error.detail


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{", "line 1 column 2"),
        (b'{"a": }', "line 1 column 7"),
        (b'{\n  "a": 1,\n  "b": 2,\n}', "line 4 column 1"),
        (b"[1] [2]", "line 1 column 5"),
        (b"{'a': 1}", "line 1 column 2"),
    ],
)
def test_malformed_json_is_400_with_line_and_column(body: bytes, where: str) -> None:
    error = _bad(body)
    assert (error.status, error.error) == (400, "malformed_json")
    assert where in error.detail


def test_invalid_utf8_is_400_with_line_and_column() -> None:
    error = _bad(b'{\n "a": "\xff"}')
    assert (error.status, error.error) == (400, "malformed_json")
    assert "UTF-8" in error.detail
    assert "line 2 column 8" in error.detail


@pytest.mark.parametrize("body", [b"NaN", b'{"a": Infinity}', b"[-Infinity]"])
def test_nan_and_infinity_are_not_json(body: bytes) -> None:
    assert _bad(body).error == "malformed_json"


def test_integer_beyond_python_digit_limit_is_400_not_valueerror() -> None:
    assert _bad(b"1" * 5000).error == "malformed_json"


def test_utf8_bom_is_tolerated() -> None:
    assert decode_json(b'\xef\xbb\xbf{"a": 1}', "application/json") == {"a": 1}


def test_nesting_limit() -> None:
    assert decode_json(_nested(MAX_DEPTH), None) is not None
    deep_objects = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert decode_json(deep_objects, None) is not None
    for depth in (MAX_DEPTH + 1, 900, 100_000):
        error = _bad(_nested(depth))
        assert (error.status, error.error) == (400, "malformed_json")
        assert "nested" in error.detail


def test_many_brackets_but_shallow_is_fine() -> None:
    assert decode_json(b"[" + b",".join([b"[]"] * 500) + b"]", None) == [[]] * 500


def test_every_reference_payload_decodes(refdata: Path) -> None:
    files = sorted((refdata / "azure_monitor").glob("*.json")) + sorted(
        (refdata / "event_grid").glob("*.json")
    )
    assert len(files) > 40
    for path in files:
        raw = path.read_bytes()
        assert decode_json(raw, "application/json; charset=utf-8") == json.loads(raw), path.name


DOC = {
    "data": {"essentials": {"alertRule": "r", "n": 3, "flag": True, "none": None, "list": ["a", {"b": 1}]}}
}


def _field_error(fn: Any, *args: Any, **kwargs: Any) -> BadInput:
    with pytest.raises(BadInput) as caught:
        fn(*args, **kwargs)
    assert caught.value.status == 422
    return caught.value


def test_require_returns_typed_values() -> None:
    assert require(DOC, "data.essentials.alertRule", str) == "r"
    assert require(DOC, "data.essentials.n", int) == 3
    assert require(DOC, "data.essentials.n", float) == 3
    assert require(DOC, "data.essentials.flag", bool) is True
    assert require(DOC, "data.essentials", dict)["alertRule"] == "r"
    assert require(DOC, "data.essentials.list[1].b", int) == 1
    assert require(DOC, "data.essentials.list", list) == ["a", {"b": 1}]


@pytest.mark.parametrize(
    "path",
    ["data.essentials.missing", "data.essentials.none", "data.nothing.deeper", "data.essentials.list[5]"],
)
def test_require_missing_names_the_path(path: str) -> None:
    error = _field_error(require, DOC, path, str)
    assert error.error == "missing_field"
    assert path in error.detail
    assert "a string" in error.detail


@pytest.mark.parametrize(
    ("path", "kind", "expected"),
    [
        ("data.essentials.alertRule", int, "data.essentials.alertRule must be an integer, got a string"),
        ("data.essentials.flag", int, "data.essentials.flag must be an integer, got a boolean"),
        ("data.essentials.n", str, "data.essentials.n must be a string, got a number"),
        ("data.essentials.list", dict, "data.essentials.list must be an object, got an array"),
        ("data.essentials.alertRule.x", str, "data.essentials.alertRule must be an object"),
        ("data.essentials.list.x", str, "data.essentials.list must be an object"),
        ("data.essentials[0]", str, "data.essentials must be an array"),
    ],
)
def test_require_wrong_type_names_path_and_expected_type(path: str, kind: type, expected: str) -> None:
    error = _field_error(require, DOC, path, kind)
    assert error.error == "invalid_field"
    assert expected in error.detail


def test_require_with_a_prefix_names_the_element() -> None:
    error = _field_error(require, {"id": "1"}, "eventType", str, at="[2]")
    assert error.detail.startswith("[2].eventType")
    error = _field_error(require, {"data": 5}, "data.validationCode", str, at="[0]")
    assert "[0].data must be an object" in error.detail


def test_require_nonempty() -> None:
    error = _field_error(require, {"a": "  "}, "a", str, nonempty=True)
    assert (error.error, error.detail.split()[0]) == ("missing_field", "a")
    assert require({"a": ""}, "a", str) == ""


def test_optional() -> None:
    assert optional(DOC, "data.essentials.missing", str) is None
    assert optional(DOC, "data.essentials.none", str) is None
    assert optional(DOC, "data.essentials.alertRule", str) == "r"
    assert optional(None, "a.b", str) is None
    error = _field_error(optional, DOC, "data.essentials.n", str, at="x")
    assert error.error == "invalid_field"
    assert "x.data.essentials.n" in error.detail


def test_dig_and_text_never_raise() -> None:
    assert dig(DOC, "data.essentials.list[1].b") == 1
    assert dig(DOC, "data.essentials.alertRule.x") is None
    assert dig(DOC, "data.essentials.list[9]") is None
    assert dig("str", "a[0]") is None
    values: tuple[Any, ...] = (" a ", 1, 2.5, 0.0, True, None, [], {})
    assert [text(v) for v in values] == [
        "a",
        "1",
        "2.5",
        "0.0",
        "true",
        "",
        "",
        "",
    ]


_CONTENT_TYPES = st.sampled_from([None, "", "application/json", "text/plain", "application/cloudevents+json"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), content_type=_CONTENT_TYPES)
def test_decode_json_raises_only_bad_input_on_any_bytes(body: bytes, content_type: str | None) -> None:
    try:
        decode_json(body, content_type, max_bytes=200)
    except BadInput as e:
        assert e.status in (400, 413, 415)


@settings(max_examples=200, deadline=None)
@given(value=_JSON)
def test_decode_json_round_trips_any_json_value(value: Any) -> None:
    assert decode_json(json.dumps(value).encode(), "application/json") == value


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate", "identity, gzip", "x-gzip"])
def test_a_compressed_body_is_415_naming_the_content_encoding(encoding: str) -> None:
    with pytest.raises(BadInput) as caught:
        decode_json(b'{"a": 1}', "application/json", content_encoding=encoding)
    assert (caught.value.status, caught.value.error) == (415, "unsupported_media_type")
    assert "content-encoding" in caught.value.detail and encoding in caught.value.detail


@pytest.mark.parametrize("encoding", [None, "", "identity", "Identity"])
def test_no_content_encoding_or_identity_is_read(encoding: str | None) -> None:
    assert decode_json(b'{"a": 1}', "application/json", content_encoding=encoding) == {"a": 1}
