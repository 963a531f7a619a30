"""Strict JSON parsing and RFC 8785 canonical encoding.

Everything that crosses the wire between agent and collector is JSON in the RFC 8785
("JSON Canonicalization Scheme", JCS) form, so that the signed bytes are reproducible by any
implementation. Parsing is deliberately stricter than :func:`json.loads`:

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
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import rfc8785

from protocol.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CANONICAL_PLAIN_STRING",
    "CANONICAL_SCALAR",
    "CANONICAL_SMALL_INT",
    "MAX_SAFE_INT",
    "UNDECIDED",
    "JSONError",
    "canonical_dumps",
    "canonical_object_pattern",
    "is_canonical",
    "loads_if_canonical",
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
    # Only a run of 16+ digits can be an integer beyond 2**53-1; otherwise skip the per-integer
    # Python hook (a third of the parse time for a typical envelope).
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


# No object_pairs_hook: duplicate keys are caught by the canonical comparison instead (see
# loads_if_canonical), which saves a Python call per object.
_DECODER_PLAIN = json.JSONDecoder(parse_float=_parse_float, parse_constant=_parse_constant)
# JSONDecoder.__init__ sets scan_once (the C scanner) on every decoder; typeshed omits it.
_SCAN_PLAIN: Callable[[str, int], tuple[Any, int]] = _DECODER_PLAIN.scan_once  # type: ignore[attr-defined]
#: What :func:`loads_if_canonical` returns when it cannot decide on its own.
UNDECIDED: Any = object()


def loads_if_canonical(
    data: bytes, *, max_depth: int = 16, shape: re.Pattern[bytes] | None = None
) -> Any:
    """Parse ``data`` if it is strict JSON in RFC 8785 canonical form; else say "undecided".

    A shortcut for ``strict_json_loads(data, max_depth=max_depth)`` followed by
    ``is_canonical(value, data)``: it returns the same value whenever it returns at all, and
    :data:`UNDECIDED` for everything those two would refuse and for some canonical inputs it
    does not handle (non-ASCII bytes off the shape, a run of 16+ digits, more than
    ``max_depth`` brackets). The caller then runs the full checks, which word the error. It
    never raises.

    Two ways to say yes (``tests/protocol/test_canonical_fast.py`` checks both against the full
    path with hypothesis):

    1. ``shape`` (built with :func:`canonical_object_pattern`, nesting at most ``max_depth``)
       matches and the bytes are UTF-8: by construction the text is then canonical JSON
       without duplicate keys, floats, escapes or integers beyond 15 digits, so every strict
       rule holds, and only the C decoder runs.
    2. Otherwise, for ASCII bytes, the text equals the sorted compact encoding of what the
       plain C decoder made of it:

       * UTF-8 validity and "no byte order mark" hold for any ASCII bytes;
       * depth: at most ``max_depth`` brackets in all is the full check's own first shortcut;
       * integers: without a 16-digit run none can exceed 2**53-1, and the full check then
         uses the same decoder hooks for floats and ``NaN``/``Infinity``;
       * duplicate keys: the encoding of a dict has none, so neither has a text equal to it;
       * lone surrogates: the encoder writes them raw (``ensure_ascii=False``), so an encoding
         holding one is not ASCII and cannot equal the text;
       * canonical form: for ASCII data :func:`is_canonical` is exactly this comparison.

    :param data: the raw bytes
    :param max_depth: deepest allowed nesting of arrays and objects
    :param shape: a compiled :func:`canonical_object_pattern` for the expected messages
    """
    if type(data) is not bytes:
        return UNDECIDED
    if shape is not None and shape.fullmatch(data) is not None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # the full check words it
            return UNDECIDED
        return _scan_whole(text)
    if (
        not data.isascii()
        or data.count(b"[") + data.count(b"{") > max_depth
        or _SIXTEEN_DIGITS in data.translate(_DIGITS_ONLY)
    ):
        return UNDECIDED
    text = data.decode("ascii")
    value = _scan_whole(text)
    if value is UNDECIDED or _SORTED_COMPACT.encode(value) != text:
        return UNDECIDED
    return value


def _scan_whole(text: str) -> Any:
    # The C scanner itself, without JSONDecoder.decode()'s two whitespace regex matches and
    # Python frames: canonical text has no whitespace around the value, so a text that is
    # not exactly one value from start to end is undecided.
    try:
        value, end = _SCAN_PLAIN(text, 0)
    except (_Rejected, ValueError, StopIteration, RecursionError):  # JSONDecodeError: ValueError
        return UNDECIDED
    return value if end == len(text) else UNDECIDED


#: Regex source for the canonical encoding of a string that needs no escape: printable ASCII
#: except ``"`` and ``\\``, DEL, and non-ASCII bytes (the caller must check they are UTF-8).
CANONICAL_PLAIN_STRING = rb'"[\x20\x21\x23-\x5b\x5d-\xff]*"'
#: Regex source for the canonical encoding of an integer of at most 15 digits (so within
#: ±(2**53-1)): no ``-0``, no leading zeros, no fraction or exponent.
CANONICAL_SMALL_INT = rb"(?:-?[1-9][0-9]{0,14}|0)"
#: Either of the two above, or ``null``/``true``/``false``.
CANONICAL_SCALAR = (
    rb"(?:null|true|false|" + CANONICAL_SMALL_INT + rb"|" + CANONICAL_PLAIN_STRING + rb")"
)


def canonical_object_pattern(members: Mapping[str, bytes]) -> bytes:
    """Regex source matching the canonical encoding of an object with exactly these keys.

    A shape pattern for the common case: bytes it matches are the RFC 8785 encoding of what
    they parse to, provided every value pattern only matches canonical encodings (build them
    from :data:`CANONICAL_SCALAR`, this function and arrays of those). The keys appear once
    each, in RFC 8785 order, with no whitespace anywhere, so the text has no duplicate keys.

    :param members: key -> regex source of its value
    :raises LocalProtocolError: for a key that is not plain ASCII (its order or escaping
        would need more care than this function takes)
    """
    parts = []
    for key in sorted(members):  # code-point order = UTF-16 order for ASCII keys
        if not re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]*", key):
            raise LocalProtocolError(f"shape key {key!r} must be printable ASCII without escapes")
        parts.append(re.escape(f'"{key}":').encode("ascii") + members[key])
    return rb"\{" + b",".join(parts) + rb"\}"


def canonical_dumps(value: Any) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON.

    Only ``dict`` (with ``str`` keys), ``list``/``tuple``, ``str``, ``int`` within ±(2**53−1),
    ``bool`` and ``None`` are accepted; floats are refused because our formats never use them.

    :param value: a JSON-ready value
    :raises LocalProtocolError: for floats, out-of-range integers or other unencodable values
    """
    _reject_floats(value, depth=0)
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise LocalProtocolError(f"cannot encode as canonical JSON: {exc}") from None


def _reject_floats(value: Any, depth: int) -> None:
    if depth > 64:
        raise LocalProtocolError("value nested too deeply to encode")
    if isinstance(value, float):
        raise LocalProtocolError("floats are not allowed; use integer minor units")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_floats(item, depth + 1)


# One encoder built once: json.dumps() with non-default arguments builds a new JSONEncoder on
# every call, a measurable share of checking a 500-byte envelope.
_SORTED_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_BMP_END = "\U00010000"


def _all_keys_bmp(value: Any) -> bool:
    if isinstance(value, dict):
        return all(
            (k.isascii() or max(k) < _BMP_END) and _all_keys_bmp(v) for k, v in value.items()
        )
    if isinstance(value, list):
        return all(_all_keys_bmp(item) for item in value)
    return True


def is_canonical(value: Any, data: bytes) -> bool:
    """Tell whether ``data`` is exactly the RFC 8785 encoding of ``value``.

    ``value`` must come from :func:`strict_json_loads` (no floats, integers within ±(2**53-1),
    no lone surrogates). For such values the C-accelerated :mod:`json` encoder with sorted keys,
    no spaces and ``ensure_ascii=False`` writes the same bytes as RFC 8785, provided every object
    key lies in the Basic Multilingual Plane:

    * literals and integers: ``null``/``true``/``false`` and plain decimal integers are the same
      in both (RFC 8785 §3.2.2.3 prints integers in this range exactly as ``str(int)``);
    * strings (§3.2.2.2): both escape exactly ``"``, ``\\\\``, ``\\b \\f \\n \\r \\t`` with their
      short forms and the other controls below U+0020 as lowercase ``\\u00xx``, and write every
      other character, including U+007F and U+2028/U+2029, as raw UTF-8;
    * key order (§3.2.3): RFC 8785 compares keys as UTF-16 code units, Python as code points.
      The two orders differ only when a key holds a character above U+FFFF (a surrogate pair,
      which sorts below U+E000-U+FFFF in UTF-16); with BMP-only keys they are identical.

    Otherwise (a non-BMP key somewhere) the reference encoder decides. The fast path is about
    six times faster; ``tests/protocol/test_canonical_fast.py`` checks the equivalence against
    the ``rfc8785`` package with hypothesis.

    :param value: the parsed value
    :param data: the bytes it was parsed from
    """
    if data.isascii() or _all_keys_bmp(value):
        return _SORTED_COMPACT.encode(value).encode("utf-8") == data
    try:
        return bool(rfc8785.dumps(value) == data)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return False
