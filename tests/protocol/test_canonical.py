"""The canonical encoder and check in :mod:`protocol.canonical` against ``rfc8785``.

:func:`canonical_dumps` and :func:`is_canonical` encode with msgspec. These tests draw values
from the whole space our parsers admit (msgspec's for envelopes, :func:`strict_json_loads` for
acks), with strings biased towards the
characters where JSON encoders disagree: controls, quotes, backslash, slash, DEL,
U+2028/U+2029, the top of the BMP (U+E000-U+FFFF) and characters above U+FFFF.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st
from settleguard.protocol.canonical import (
    canonical_dumps,
    first_difference,
    is_canonical,
    strict_json_loads,
)
from settleguard.protocol.errors import LocalProtocolError

tricky_chars = st.sampled_from(
    ["\x00", "\x08", "\x0c", "\n", "\r", "\t", "\x1f", '"', "\\", "/", "\x7f", "\u2028",
     "\u2029", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0001f600", "\U0010ffff", "a", "é"]
)  # fmt: skip
tricky_text = st.lists(tricky_chars | st.characters(exclude_categories=["Cs"]), max_size=6).map(
    "".join
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400)
@given(json_values)
@example({"\ue000": 1, "\U0001f600": 2})  # the one place code-point and UTF-16 order differ
@example({"a": [{"\uffff": None, "\U00010000": "\U0010ffff"}]})
def test_canonical_dumps_equals_rfc8785(value: Any) -> None:
    assert canonical_dumps(value) == rfc8785.dumps(value)


def _strict(data: bytes) -> Any:
    return strict_json_loads(data, max_depth=64)


PARSERS = pytest.mark.parametrize(
    "parse", [msgspec.json.decode, _strict], ids=["msgspec", "strict"]
)


@PARSERS
@settings(max_examples=300)
@given(value=json_values)
@example(value={"\ue000": 1, "\U0001f600": 2})
def test_is_canonical_matches_rfc8785(parse: Any, value: Any) -> None:
    reference = rfc8785.dumps(value)
    parsed = parse(reference)
    assert parsed == value
    assert is_canonical(parsed, reference)
    assert not is_canonical(parsed, reference + b" ")
    # Python's own sorted encoding is canonical exactly when it equals the RFC 8785 bytes.
    python_sorted = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert is_canonical(parsed, python_sorted.encode()) == (python_sorted.encode() == reference)


def test_non_bmp_keys_sort_by_utf16_code_units() -> None:
    value = {"\ue000": 1, "\U0001f600": 2}
    encoded = canonical_dumps(value)
    assert encoded.index("\U0001f600".encode()) < encoded.index("\ue000".encode())
    assert is_canonical(value, encoded)
    code_point_order = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert not is_canonical(value, code_point_order.encode())


def test_escaped_text_is_never_canonical() -> None:
    data = b'{"k":"\\u00e9"}'  # RFC 8785 writes the raw UTF-8, not the escape
    assert not is_canonical(strict_json_loads(data), data)


def test_a_repeated_key_is_never_canonical() -> None:
    assert not is_canonical({"a": 1}, b'{"a":1,"a":1}')
    data = b'{"a":1,"a":2,"b":3}'
    assert first_difference(msgspec.json.decode(data), data) == 5  # '{"a":2,"b":3}'


def test_first_difference_is_the_offset_of_the_first_differing_byte() -> None:
    assert first_difference({"a": 1}, b'{"a":1}') is None
    assert first_difference({"a": 1}, b'{"a": 1}') == 5
    assert first_difference({"a": 1}, b'{"a":1}\n') == 7
    assert first_difference({"a": 1, "b": 2}, b'{"b":2,"a":1}') == 2


@pytest.mark.parametrize(
    ("member", "canonical"),
    [(b"-0", False), (b"0", True), (b"-1", True), (b"123456789012345", True),
     (b'"\\u0041"', False), (b'"A"', True), (b'"\\\\"', True), (b'"\\/"', False),
     (b'"/"', True), (b'"\\n"', True), (b'"\\u000a"', False), (b'"\\u001f"', True),
     (b'"\\u001F"', False), (b'"\x7f"', True), (b'"\\u007f"', False), (b'"\xc3\xa9"', True),
     (b'"\xe2\x80\xa8"', True), (b'"\\u2028"', False), (b'"\xf0\x9f\x98\x80"', True),
     (b'"\\ud83d\\ude00"', False), (b"true", True), (b"[]", True), (b"{}", True),
     (b"[ ]", False)],
)  # fmt: skip
@PARSERS
def test_canonical_near_misses(parse: Any, member: bytes, canonical: bool) -> None:
    data = b'{"a":' + member + b',"b":1}'
    assert is_canonical(parse(data), data) == canonical


@pytest.mark.parametrize(
    ("member", "canonical"), [(b"1.0", True), (b"1e0", False), (b"1.50", False)]
)
def test_floats_msgspec_writes_back_pass_the_check(member: bytes, canonical: bool) -> None:
    # Documented: no field admits a float, so the record schema refuses what passes here.
    data = b'{"a":' + member + b"}"
    assert is_canonical(msgspec.json.decode(data), data) == canonical


@pytest.mark.parametrize(
    "value",
    [1.0, float("nan"), 2**53, -(2**53), {1: 2}, {"a": b"x"}, "\ud800", {"\udc00": 1}, object()],
)
def test_canonical_dumps_refuses_what_json_we_admit_cannot_hold(value: Any) -> None:
    with pytest.raises(LocalProtocolError):
        canonical_dumps(value)


def test_canonical_dumps_writes_tuples_as_arrays() -> None:
    assert canonical_dumps({"b": (1, 2), "a": None}) == b'{"a":null,"b":[1,2]}'
