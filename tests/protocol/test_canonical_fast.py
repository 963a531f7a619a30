"""The fast canonical check in :func:`protocol.canonical.is_canonical` against ``rfc8785``.

The fast path encodes with :mod:`json` (sorted keys, compact, raw UTF-8) and is only taken
when every object key is in the Basic Multilingual Plane. These tests draw values from the
whole space :func:`strict_json_loads` admits, with strings biased towards the characters where
the two encoders could disagree: controls, quotes, backslash, DEL, U+2028/U+2029, the top of
the BMP (U+E000-U+FFFF) and characters above U+FFFF.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocol import canonical
from protocol.canonical import (
    CANONICAL_SCALAR,
    UNDECIDED,
    JSONError,
    canonical_object_pattern,
    is_canonical,
    loads_if_canonical,
    strict_json_loads,
)
from protocol.errors import LocalProtocolError

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
def test_is_canonical_matches_rfc8785(value: Any) -> None:
    reference = rfc8785.dumps(value)
    parsed = strict_json_loads(reference, max_depth=64)
    assert parsed == value
    assert is_canonical(parsed, reference)
    # Python's own sorted encoding is canonical exactly when it equals the RFC 8785 bytes.
    python_sorted = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert is_canonical(parsed, python_sorted.encode()) == (python_sorted.encode() == reference)


@settings(max_examples=300)
@given(json_values)
def test_fast_encoder_equals_rfc8785_whenever_keys_are_bmp(value: Any) -> None:
    if canonical._all_keys_bmp(value):
        assert canonical._SORTED_COMPACT.encode(value).encode() == rfc8785.dumps(value)


def test_non_bmp_keys_take_the_reference_path() -> None:
    value = {"\ue000": 1, "\U0001f600": 2}
    reference = rfc8785.dumps(value)
    assert reference.index("\U0001f600".encode()) < reference.index("\ue000".encode())
    assert not canonical._all_keys_bmp(value)
    assert is_canonical(value, reference)
    assert not is_canonical(value, json.dumps(value, sort_keys=True, ensure_ascii=False,
                                              separators=(",", ":")).encode())  # fmt: skip


def test_escaped_text_is_never_canonical() -> None:
    data = b'{"k":"\\u00e9"}'  # RFC 8785 writes the raw UTF-8, not the escape
    assert not is_canonical(strict_json_loads(data), data)


# --- loads_if_canonical: the shortcut for strict_json_loads() + is_canonical() ----------------


def assert_decides_like_the_full_path(
    data: bytes, shape: re.Pattern[bytes] | None = None, max_depth: int = 16
) -> Any:
    """Return the shortcut's answer after checking it against the full path."""
    fast = loads_if_canonical(data, max_depth=max_depth, shape=shape)
    if fast is UNDECIDED:
        return fast
    slow = strict_json_loads(data, max_depth=max_depth)  # must not raise
    assert is_canonical(slow, data)
    assert repr(fast) == repr(slow)  # repr tells True from 1 and shows key order
    return fast


def _variants(value: Any) -> list[bytes]:
    """Encodings of ``value``: canonical, and spelled in ways RFC 8785 does not allow."""
    out = [rfc8785.dumps(value)]
    for options in (
        {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": True},
        {"sort_keys": False, "separators": (",", ":"), "ensure_ascii": False},
        {"sort_keys": True, "separators": (", ", ": "), "ensure_ascii": False},
        {"sort_keys": True, "indent": 1, "ensure_ascii": False},
    ):
        out.append(json.dumps(value, **options).encode("utf-8", "surrogatepass"))  # type: ignore[arg-type]
    text = out[0]
    out += [
        b" " + text, text + b"\n", b"\xef\xbb\xbf" + text, text.replace(b"1", b"1.0", 1),
        text.replace(b"0", b"-0", 1), text.replace(b"1", b"1e0", 1),
        text.replace(b"1", b"12345678901234567", 1), text.replace(b"{", b'{"a":1,"a":1,', 1),
        text.replace(b"{", b'{"":0,', 1), text.replace(b"}", b',"~":0}', 1),
        text.replace(b"a", b"\\u0061", 1), text.replace(b"/", b"\\/", 1),
        text.replace(b'"', b'"\\ud800', 1), text.replace(b"null", b"NaN", 1),
    ]  # fmt: skip
    return out


@settings(max_examples=400)
@given(json_values)
def test_loads_if_canonical_decides_like_the_full_path(value: Any) -> None:
    variants = _variants(value)
    for data in variants:
        assert_decides_like_the_full_path(data)
        assert_decides_like_the_full_path(data, max_depth=2)
    reference = variants[0]
    if reference.isascii() and b"0" * 16 not in reference.translate(canonical._DIGITS_ONLY):
        assert loads_if_canonical(reference, max_depth=64) == value  # decided, not UNDECIDED


@settings(max_examples=400)
@given(st.binary(max_size=64) | st.text(max_size=40).map(str.encode))
def test_loads_if_canonical_never_raises_on_garbage(data: bytes) -> None:
    assert_decides_like_the_full_path(data)


# A shape with every kind of member: scalars, a nested object, an array of objects.
_ITEM = canonical_object_pattern({"n": CANONICAL_SCALAR, "z": CANONICAL_SCALAR})
SHAPE = re.compile(
    canonical_object_pattern(
        {
            "b": CANONICAL_SCALAR,
            "a": CANONICAL_SCALAR,
            "obj": _ITEM,
            "list": rb"\[(?:" + _ITEM + rb"(?:," + _ITEM + rb")*)?\]",
        }
    )
)
scalars = st.none() | st.booleans() | st.integers(-(10**16), 10**16) | tricky_text
items = st.fixed_dictionaries({"n": scalars, "z": scalars})
shaped = st.fixed_dictionaries(
    {"b": scalars, "a": scalars, "obj": items, "list": st.lists(items, max_size=3)}
)
noise = st.sampled_from(
    [b" ", b'"', b"\\", b",", b":", b"{", b"}", b"[", b"]", b"0", b"-", b".", b"e", b"\x00",
     b"\x7f", b"\xc3", b"\xa9", b"\xff", b"\xed\xa0\x80", b'"a":1,', b"-0", b"null", b"\n"]
)  # fmt: skip


def _plain_scalar(value: Any) -> bool:
    """Encoded without escapes and within 15 digits: what the shape patterns take."""
    if isinstance(value, str):
        return '"' not in value and "\\" not in value and min(value, default="a") >= " "
    return type(value) is not int or abs(value) < 10**15


@settings(max_examples=500)
@given(shaped, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), noise), max_size=3))
def test_shape_decides_like_the_full_path(value: Any, edits: list[tuple[int, int, bytes]]) -> None:
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    members = [value["a"], value["b"], *value["obj"].values()]
    members += [x for item in value["list"] for x in item.values()]
    if not edits and all(_plain_scalar(v) for v in members):
        assert SHAPE.fullmatch(data), data
    for position, deleted, inserted in edits:
        position %= len(data) + 1
        data = data[:position] + inserted + data[position + deleted :]
    assert_decides_like_the_full_path(data, shape=SHAPE)


def test_shape_keys_must_be_plain_ascii() -> None:
    for key in ("é", 'a"b', "a\\b", "\n"):
        with pytest.raises(LocalProtocolError):
            canonical_object_pattern({key: CANONICAL_SCALAR})
    assert canonical_object_pattern({"b": b"1", "a": b"2"}) == rb'\{"a":2,"b":1\}'


def test_shape_with_invalid_utf8_is_left_to_the_full_path() -> None:
    data = b'{"a":"\xff","b":1,"list":[],"obj":{"n":1,"z":2}}'
    assert SHAPE.fullmatch(data)
    assert loads_if_canonical(data, shape=SHAPE) is UNDECIDED
    with pytest.raises(JSONError, match="invalid UTF-8"):
        strict_json_loads(data)


@pytest.mark.parametrize(
    "member",
    [b"-0", b"0", b"-1", b"9999999999999999", b"123456789012345", b"-123456789012345", b"01",
     b"1.0", b"1e2", b'"\\u0041"', b'"\\\\"', b'"\\/"', b'"\\n"', b'"\\u001f"', b'"\x00"',
     b'"\x7f"', b'"\xc3\xa9"', b'"\xed\xa0\x80"', b'"\\ud800"', b'"\xf0\x9f\x98\x80"', b"true",
     b"True", b"nul", b" 1", b"1 ", b"[]", b"{}", b'""', b'"a":1,"a"'],
)  # fmt: skip
def test_shape_near_misses(member: bytes) -> None:
    data = b'{"a":' + member + b',"b":1,"list":[],"obj":{"n":1,"z":2}}'
    decided = assert_decides_like_the_full_path(data, shape=SHAPE)
    # Canonical: off the shape (escapes) the ASCII comparison still decides them.
    canonical_member = member in (b"0", b"-1", b"123456789012345", b"-123456789012345", b"true",
                                  b'""', b'"\x7f"', b'"\xc3\xa9"', b'"\xf0\x9f\x98\x80"',
                                  b'"\\\\"', b'"\\n"', b'"\\u001f"', b"[]", b"{}")  # fmt: skip
    assert (decided is not UNDECIDED) == canonical_member


@pytest.mark.parametrize("inserted", [b" ", b"\n", b",", b"-", b"0", b'"', b"\\", b"\xa9"])
def test_shape_with_a_byte_inserted_anywhere(inserted: bytes) -> None:
    data = b'{"a":"x:1","b":-10,"list":[{"n":null,"z":true}],"obj":{"n":"","z":false}}'
    assert loads_if_canonical(data, shape=SHAPE) is not UNDECIDED
    for position in range(len(data) + 1):
        assert_decides_like_the_full_path(data[:position] + inserted + data[position:], SHAPE)
