"""RFC 8785 canonical encoding and its check, and strict JSON parsing for acks.

Everything that crosses the wire between agent and collector is JSON in the RFC 8785
("JSON Canonicalization Scheme", JCS) form, so that the signed bytes are reproducible by any
implementation. Envelopes are parsed with msgspec and then checked to be the canonical
encoding of what was parsed (:func:`first_difference`), which refuses repeated keys too; their
record schemas refuse floats and unsafe integers (:mod:`protocol.envelope`). Acks are not
signed and need not be canonical, so :func:`strict_json_loads` is deliberately stricter than
:func:`json.loads` on its own:

* the input must be valid UTF-8 (RFC 8259 §8.1);
* no object may repeat a key (RFC 8259 §4 leaves this undefined; we reject it);
* no numbers with a fraction or exponent (amounts are integer minor units; RFC 8785 §3.2.2.3
  float formatting is a source of interoperability bugs we do not need);
* no ``NaN``/``Infinity`` (not JSON at all, but Python accepts them);
* integers within ±(2**53 − 1), the range every JSON implementation represents exactly
  (RFC 8785 §3.2.2.3, I-JSON RFC 7493 §2.2);
* nesting at most ``max_depth`` arrays/objects deep, checked *before* the recursive parser runs
  so a hostile ``[[[[…`` cannot exhaust the stack;
* no lone UTF-16 surrogates in ``\\u`` escapes (they cannot be re-encoded as UTF-8).

All failures raise :class:`JSONError` (a :class:`~protocol.errors.RemoteProtocolError`) with
the byte offset where the problem was found, when it is known.

Encoding (:func:`canonical_dumps`) and the canonical check (:func:`first_difference`, which
encodes the parsed value again and compares) share one encoder, msgspec's; ``docs/envelope.md`` says
why its output is RFC 8785 for every value we admit, and the tests compare it with the
``rfc8785`` reference implementation.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_SAFE_INT",
    "JSONError",
    "canonical_dumps",
    "first_difference",
    "is_canonical",
    "strict_json_loads",
]

#: Largest integer magnitude allowed anywhere in our JSON (I-JSON, RFC 7493 §2.2).
MAX_SAFE_INT = 2**53 - 1

# Tokens that matter for nesting depth: whole strings (skipped, since brackets inside them do
# not count) and the four bracket characters. Scanning with a regex visits only these tokens,
# which is much cheaper than a Python loop over every byte.
_DEPTH_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
# Every digit becomes "0" and every other byte " ", so "16 digits in a row" is a substring test
# (memchr-fast) instead of a regex tried at every position.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_SIXTEEN_DIGITS = b"0" * 16
# A \uD800-\uDFFF escape: only then can a lone surrogate appear in the parsed value.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JSONError(RemoteProtocolError):
    """The bytes are not JSON that our strict rules accept.

    :param message: what is wrong
    :param offset: byte offset into the parsed bytes, if known
    """


class _Rejected(Exception):
    """Internal: raised from json hooks, converted to :class:`JSONError` by the caller."""


def _check_depth(data: bytes, max_depth: int) -> None:
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return  # cannot possibly be deeper than allowed
    depth = 0
    for match in _DEPTH_TOKEN.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise JSONError(f"nesting deeper than {max_depth} levels", match.start())
        elif token in (b"]", b"}"):
            depth -= 1


def _parse_int(text: str) -> int:
    # Checked on the digits first: int() of a 100,000-digit string is slow (and Python caps it).
    if len(text.lstrip("-")) > 16:
        raise _Rejected(f"integer {text[:24]!r} is outside ±(2**53-1)")
    value = int(text)
    if abs(value) > MAX_SAFE_INT:
        raise _Rejected(f"integer {text!r} is outside ±(2**53-1)")
    return value


def _parse_float(text: str) -> Any:
    raise _Rejected(f"number {text[:24]!r} has a fraction or exponent; only integers are allowed")


def _parse_constant(text: str) -> Any:
    raise _Rejected(f"{text} is not allowed in JSON")


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Rejected(f"duplicate key {key[:64]!r} in an object")
            seen.add(key)
    return result


def _check_surrogates(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise JSONError("string contains a lone UTF-16 surrogate escape") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_surrogates(key)
            _check_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _check_surrogates(item)


def _byte_offset(text: str, char_pos: int) -> int:
    return len(text[:char_pos].encode("utf-8"))


# Built once: json.loads() with hooks constructs a new JSONDecoder on every call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs_hook, parse_float=_parse_float, parse_constant=_parse_constant
)
_DECODER_CHECKING_INTS = json.JSONDecoder(
    object_pairs_hook=_pairs_hook,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
)


def strict_json_loads(data: bytes, *, max_depth: int = 16) -> Any:
    """Parse ``data`` as strict JSON (rules in the module docstring).

    :param data: the raw bytes, UTF-8 without a byte order mark
    :param max_depth: deepest allowed nesting of arrays and objects
    :raises JSONError: on any violation, with the byte offset when known
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise LocalProtocolError("strict_json_loads() needs bytes")
    data = bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONError(f"invalid UTF-8 ({exc.reason})", exc.start) from None
    if text.startswith("\ufeff"):
        raise JSONError("byte order mark is not allowed", 0)
    _check_depth(data, max_depth)
    # Only a run of 16+ digits can be an integer beyond 2**53-1; otherwise the decoder without
    # a per-integer Python hook is enough.
    long_digits = _SIXTEEN_DIGITS in data.translate(_DIGITS_ONLY)
    decoder = _DECODER_CHECKING_INTS if long_digits else _DECODER
    try:
        value = decoder.decode(text)
    except _Rejected as exc:
        raise JSONError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise JSONError(f"invalid JSON: {exc.msg}", _byte_offset(text, exc.pos)) from None
    except RecursionError:  # pragma: no cover - _check_depth keeps nesting far below the limit
        raise JSONError("nesting too deep") from None
    if b"\\u" in data and _SURROGATE_ESCAPE.search(data):
        _check_surrogates(value)
    return value


def canonical_dumps(value: Any) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON.

    Only ``dict`` (with ``str`` keys), ``list``/``tuple``, ``str`` (without lone surrogates),
    ``int`` within ±(2**53−1), ``bool`` and ``None`` are accepted; floats are refused because
    our formats never use them.

    :param value: a JSON-ready value
    :raises LocalProtocolError: for floats, out-of-range integers or other unencodable values
    """
    _check_encodable(value, depth=0)
    return _encode(value)


def _check_encodable(value: Any, depth: int) -> None:
    if depth > 64:
        raise LocalProtocolError("value nested too deeply to encode")
    if value is None or value is True or value is False:
        return
    if type(value) is int:
        if abs(value) > MAX_SAFE_INT:
            raise LocalProtocolError(
                f"cannot encode as canonical JSON: {value} is outside ±(2**53-1)"
            )
    elif isinstance(value, float):
        raise LocalProtocolError("floats are not allowed; use integer minor units")
    elif isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise LocalProtocolError(
                    f"cannot encode as canonical JSON: key {key!r} is not a string"
                )
            _check_text(key)
            _check_encodable(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_encodable(item, depth + 1)
    else:
        raise LocalProtocolError(f"cannot encode {type(value).__name__} as canonical JSON")


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError(
            "cannot encode a lone UTF-16 surrogate as canonical JSON"
        ) from None


# msgspec writes every value we admit as RFC 8785 does (docs/envelope.md, "Canonical JSON"):
# null/true/false and integers as plain decimals; strings with exactly the short escapes
# \b \f \n \r \t \" \\, the other controls below U+0020 as lowercase \u00xx and every other
# character, U+007F and U+2028/U+2029 included, as raw UTF-8; no whitespace. Its "sorted"
# order compares keys by code point, RFC 8785 §3.2.3 by UTF-16 code unit: the two differ only
# between a key above U+FFFF and one in U+E000-U+FFFF, so only values holding such keys are
# reordered first (see _utf16_ordered) and written in the order given.
_SORTED = msgspec.json.Encoder(order="sorted")
_AS_GIVEN = msgspec.json.Encoder()
_BMP_END = "\U00010000"


def _encode(value: Any) -> bytes:
    encoded = _SORTED.encode(value)
    if encoded.isascii() or _all_keys_bmp(value):
        return encoded
    return _AS_GIVEN.encode(_utf16_ordered(value))


def _all_keys_bmp(value: Any) -> bool:
    if isinstance(value, dict):
        return all(
            (k.isascii() or max(k, default="") < _BMP_END) and _all_keys_bmp(v)
            for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return all(_all_keys_bmp(item) for item in value)
    return True


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def _utf16_ordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _utf16_ordered(value[k]) for k in sorted(value, key=_utf16_key)}
    if isinstance(value, list | tuple):
        return [_utf16_ordered(item) for item in value]
    return value


def is_canonical(value: Any, data: bytes) -> bool:
    """Tell whether ``data`` is exactly the RFC 8785 encoding of ``value``.

    :param value: the value parsed from ``data``
    :param data: the bytes it was parsed from
    """
    return first_difference(value, data) is None


def first_difference(value: Any, data: bytes) -> int | None:
    """Return where ``data`` first differs from the RFC 8785 encoding of ``value``, or None.

    ``value`` is what a JSON parser made of ``data``: the bytes are canonical if encoding the
    value again gives them back. A repeated key in ``data`` is therefore never canonical (the
    value holds it once), nor is insignificant whitespace or an escape RFC 8785 does not use.
    For values with floats the answer is msgspec's float formatting, not RFC 8785's: the
    callers refuse floats in any case.

    :param value: the value parsed from ``data``
    :param data: the bytes it was parsed from
    :returns: None if ``data`` is canonical, else the offset of the first differing byte
    """
    encoded = _encode(value)
    if encoded == data:
        return None
    for i, (a, b) in enumerate(zip(encoded, data, strict=False)):
        if a != b:
            return i
    return min(len(encoded), len(data))
