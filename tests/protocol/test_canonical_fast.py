"""The fast canonical check in :func:`protocol.canonical.is_canonical` against ``rfc8785``.

The fast path encodes with :mod:`json` (sorted keys, compact, raw UTF-8) and is only taken
when every object key is in the Basic Multilingual Plane. These tests draw values from the
whole space :func:`strict_json_loads` admits, with strings biased towards the characters where
the two encoders could disagree: controls, quotes, backslash, DEL, U+2028/U+2029, the top of
the BMP (U+E000-U+FFFF) and characters above U+FFFF.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocol import canonical
from protocol.canonical import is_canonical, strict_json_loads

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
