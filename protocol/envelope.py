"""The signed envelope: how one record travels from an agent to the collector (docs/envelope.md).

Theory of operation
-------------------
Wire payload (``docs/envelope.md`` has the byte-level description and test vectors)::

    "SG1 " key_id " " base64url_nopad(signature) "\\n" signed_bytes

``signed_bytes`` is the RFC 8785 canonical JSON of the envelope object
``{"v","type","agent_id","key_id","seq","created_at","body"}`` and ``signature`` is Ed25519
(RFC 8032 §5.1) over ``DOMAIN + signed_bytes``. The domain prefix keeps these signatures from
ever being valid for another message kind signed by the same key.

The header repeats the key id and carries the signature *outside* the JSON, so a verifier:

1. refuses anything larger than ``max_size`` (cheap, before any work);
2. reads the fixed-shape header (:func:`read_header`), finds the key by id;
3. verifies the signature over the received bytes;
4. only then parses the JSON with msgspec, checks that the bytes are exactly the canonical
   encoding of what was parsed (:func:`protocol.canonical.first_difference`), the exact key
   set and the envelope fields (the JSON key id equals the header's), and finally converts
   the body into its record (:func:`protocol.records.record_from_body`).

Each check in step 4 runs once and says which rule broke: ``malformed`` (not JSON, with the
byte offset), ``not_canonical`` (with the offset of the first byte that differs: whitespace,
member order, a repeated name, an escape, a number written otherwise), then ``bad_field``
naming the field (the key set, the envelope fields, then the body's record schema, which
refuses floats, integers beyond ±(2**53-1) and anything nested where it expects none).

Unauthenticated bytes therefore never reach the JSON parser. Replay and ordering (``seq``) are
the collector's business, not this module's.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .canonical import MAX_SAFE_INT, canonical_dumps, first_difference
from .ed25519 import key_id_for
from .errors import LocalProtocolError, RemoteProtocolError
from .record_fields import valid_envelope_time
from .records import RECORD_TYPES, Record, RecordError, record_from_body

__all__ = [
    "AGENT_ID_RE",
    "DOMAIN",
    "ENVELOPE_VERSION",
    "MAX_ENVELOPE_BYTES",
    "BundleError",
    "Envelope",
    "EnvelopeError",
    "SignedHeader",
    "decode_bundle",
    "encode_bundle",
    "key_id_for",
    "open_envelope",
    "parse_verified",
    "read_header",
    "seal_envelope",
    "verify_and_parse",
    "verify_header_and_parse",
]

ENVELOPE_VERSION = 1
DOMAIN = b"settleguard/v1\n"
MAX_ENVELOPE_BYTES = 65536
AGENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}\Z")  # \Z: "$" would allow a final "\n"
# ``created_at`` is a real UTC time with exactly three fraction digits, e.g.
# ``2026-11-26T12:00:00.000Z``: protocol.record_fields.valid_envelope_time.

_MAGIC = b"SG1 "
_KEY_ID_RE = re.compile(r"k[0-9a-f]{16}\Z")
# "SG1 " + 17-char key id + " " + 86 base64url chars (64 bytes) + "\n" = 109 bytes, always.
_HEADER_RE = re.compile(rb"SG1 (k[0-9a-f]{16}) ([A-Za-z0-9_-]{86})\n")
_HEADER_LEN = 109
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_CANONICAL_LAST = frozenset(b"AQgw")  # base64 digits 0, 16, 32, 48
_FIELDS = frozenset({"v", "type", "agent_id", "key_id", "seq", "created_at", "body"})

Reason = Literal[
    "too_large", "bad_header", "unknown_key", "bad_signature", "malformed", "not_canonical",
    "bad_field",
]  # fmt: skip


class EnvelopeError(RemoteProtocolError):
    """An envelope was refused.

    :param reason: machine-readable cause: ``too_large``, ``bad_header``, ``unknown_key``,
        ``bad_signature``, ``malformed``, ``not_canonical`` or ``bad_field``
    :param message: human-readable detail
    :param offset: byte offset within the whole payload, where meaningful
    :param field: for ``bad_field``, the offending field (``body.buckets[0].sale_amount``)
    """

    def __init__(
        self, reason: Reason, message: str, offset: int | None = None, field: str | None = None
    ) -> None:
        self.reason: Reason = reason
        self.field = field
        super().__init__(f"{reason}: {message}", offset)


@dataclass(frozen=True, slots=True)
class SignedHeader:
    """The header line of a payload, split out by :func:`read_header`."""

    key_id: str
    signature: bytes
    signed_bytes: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified, strictly parsed envelope. ``body`` is a read-only mapping."""

    version: int
    record_type: str
    agent_id: str
    key_id: str
    seq: int
    created_at: str
    body: Mapping[str, Any]
    # The record built while verifying, so that record() does not validate twice (derived
    # from the body, so it takes part in equality harmlessly).
    _record: Record | None = None

    def record(self) -> Record:
        """Return the body as a validated record.

        :raises RecordError: if the body breaks its record schema
        """
        if self._record is not None:
            return self._record
        return record_from_body(self.record_type, self.body)


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _check_local(agent_id: str, seq: int, created_at: str, record_type: str) -> None:
    if not isinstance(agent_id, str) or not AGENT_ID_RE.match(agent_id):
        raise LocalProtocolError(f"agent_id {agent_id!r} does not match {AGENT_ID_RE.pattern}")
    if type(seq) is not int or not 1 <= seq <= MAX_SAFE_INT:
        raise LocalProtocolError("seq must be an integer from 1 to 2**53-1")
    if not valid_envelope_time(created_at):
        raise LocalProtocolError(
            "created_at must be a real UTC time like 2026-11-26T12:00:00.000Z (with ms)"
        )
    if record_type not in RECORD_TYPES:
        raise LocalProtocolError(f"unknown record type {record_type!r}")


def seal_envelope(
    private_key: Ed25519PrivateKey,
    *,
    record_type: str,
    agent_id: str,
    seq: int,
    created_at: str,
    body: Mapping[str, Any],
) -> bytes:
    """Sign a record body and return the wire payload.

    :param private_key: the agent's Ed25519 key
    :param record_type: one of :data:`protocol.records.RECORD_TYPES`
    :param agent_id: the agent's id (:data:`AGENT_ID_RE`)
    :param seq: the agent's next sequence number, 1 or more
    :param created_at: the agent's UTC clock, ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (time is passed in)
    :param body: ``record.to_body()``
    :raises LocalProtocolError: for bad arguments, an invalid body or an oversized result
    """
    _check_local(agent_id, seq, created_at, record_type)
    try:
        record_from_body(record_type, body)
    except RecordError as exc:
        raise LocalProtocolError(f"invalid {record_type} body: {exc}") from None
    key_id = key_id_for(private_key.public_key())
    envelope = {
        "v": ENVELOPE_VERSION,
        "type": record_type,
        "agent_id": agent_id,
        "key_id": key_id,
        "seq": seq,
        "created_at": created_at,
        "body": dict(body),
    }
    signed_bytes = canonical_dumps(envelope)
    signature = private_key.sign(DOMAIN + signed_bytes)
    payload = b"SG1 " + key_id.encode("ascii") + b" " + _b64url(signature) + b"\n" + signed_bytes
    if len(payload) > MAX_ENVELOPE_BYTES:
        raise LocalProtocolError(
            f"envelope is {len(payload)} bytes, over the {MAX_ENVELOPE_BYTES} limit "
            "(send the batch without its journal)"
        )
    return payload


def read_header(payload: bytes) -> SignedHeader:
    """Split a payload into key id, signature and signed bytes, without verifying anything.

    Looks only at the first 109 bytes.

    :param payload: the received bytes
    :raises EnvelopeError: ``bad_header`` with the offset of the first wrong byte
    """
    # The pattern is fixed-length and anchored, so on bytes it reads only the first 109.
    head = payload if type(payload) is bytes else bytes(payload[:_HEADER_LEN])
    match = _HEADER_RE.match(head)
    if match is None:
        head = head[:_HEADER_LEN]
        raise EnvelopeError("bad_header", _header_problem(head), _header_offset(head))
    key_id, signature_text = match.groups()
    # 86 characters carry 516 bits for 512: the last one's low 4 bits must be zero, i.e. it
    # must be A, Q, g or w. Any other would give a second spelling of the same signature.
    if signature_text[85] not in _CANONICAL_LAST:
        raise EnvelopeError("bad_header", "signature base64url is not canonical", 108)
    # = base64.urlsafe_b64decode(); the pattern already admitted only base64url characters.
    signature = binascii.a2b_base64(signature_text.translate(_URLSAFE_TO_STANDARD) + b"==")
    return SignedHeader(key_id.decode("ascii"), signature, bytes(payload[_HEADER_LEN:]))


def _header_offset(head: bytes) -> int:
    # Longest prefix that still matches the header shape gives the first wrong byte.
    shape = _MAGIC + b"k" + b"h" * 16 + b" " + b"s" * 86 + b"\n"
    for i, expected in enumerate(shape):
        if i >= len(head):
            return i
        byte = head[i]
        ok = {
            ord("h"): byte in b"0123456789abcdef",
            ord("s"): byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        }.get(expected, byte == expected)
        if not ok:
            return i
    return len(head)  # pragma: no cover - a full match never reaches here


def _header_problem(head: bytes) -> str:
    if not head.startswith(_MAGIC[: len(head)]) or len(head) < len(_MAGIC):
        return "payload does not start with 'SG1 '"
    if len(head) < _HEADER_LEN:
        return "payload ends inside the header line"
    return "header must be 'SG1 <key id> <86-char base64url signature>\\n'"


def verify_and_parse(
    payload: bytes, public_key: Ed25519PublicKey, *, max_size: int = MAX_ENVELOPE_BYTES
) -> Envelope:
    """Verify a payload's signature, then parse and validate it strictly.

    :param payload: the received bytes
    :param public_key: the key registered for the header's key id
    :param max_size: refuse payloads longer than this many bytes
    :raises EnvelopeError: with ``reason`` saying which check failed
    """
    if len(payload) > max_size:
        raise EnvelopeError("too_large", f"{len(payload)} bytes, limit is {max_size}")
    return verify_header_and_parse(read_header(payload), public_key, key_id_for(public_key))


def verify_header_and_parse(
    header: SignedHeader, public_key: Ed25519PublicKey, key_id: str
) -> Envelope:
    """:func:`verify_and_parse` for a caller that already split the header and knows the key id.

    A verifier that looks keys up by id has read the header and computed each key's id once
    when it cached the key; this skips doing both again for every message. (The collector
    goes further: it checks a batch's signatures in one call and then uses
    :func:`parse_verified`.)

    :param header: from :func:`read_header` of the received bytes (size already checked)
    :param public_key: the key registered for ``header.key_id``
    :param key_id: ``key_id_for(public_key)``, computed by the caller once per key
    :raises EnvelopeError: as :func:`verify_and_parse`
    """
    if header.key_id != key_id:
        raise EnvelopeError("unknown_key", f"payload is signed by {header.key_id}, not this key", 4)
    try:
        public_key.verify(header.signature, DOMAIN + header.signed_bytes)
    except InvalidSignature:
        raise EnvelopeError("bad_signature", "Ed25519 signature does not verify", 22) from None
    return _parse(header)


def parse_verified(header: SignedHeader) -> Envelope:
    """Step 4 alone, for a caller that verified the signature itself.

    The collector verifies a whole batch of signatures in one call
    (:func:`protocol.ed25519.verify_many` over ``DOMAIN + header.signed_bytes`` with the key
    registered for ``header.key_id``) and only then parses each envelope with this.
    Never call it on bytes whose signature was not verified.

    :raises EnvelopeError: as :func:`verify_and_parse`, for the parsing steps
    """
    return _parse(header)


def _parse(header: SignedHeader) -> Envelope:
    data = header.signed_bytes
    try:
        obj = _JSON.decode(data)
        difference = first_difference(obj, data) if type(obj) is dict else None
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        message, offset = _malformed(exc, data)
        raise EnvelopeError(
            "malformed", message, None if offset is None else offset + _HEADER_LEN
        ) from None
    if type(obj) is not dict:
        raise EnvelopeError("malformed", "envelope must be a JSON object", _HEADER_LEN)
    if difference is not None:
        raise EnvelopeError(
            "not_canonical",
            "JSON is not in RFC 8785 canonical form (look for whitespace, member order, "
            "a repeated name or an escape there)",
            difference + _HEADER_LEN,
        )
    if obj.keys() != _FIELDS:
        extra = sorted(obj.keys() - _FIELDS)[:3]
        missing = sorted(_FIELDS - obj.keys())
        raise EnvelopeError("bad_field", f"wrong fields: extra {extra}, missing {missing}")
    return _validated(obj, header.key_id)


# One decoder for any JSON value: the canonical check needs the value as sent, duplicates
# and all, before the record schema sees it.
_JSON = msgspec.json.Decoder()
_AT_BYTE_RE = re.compile(r"(.*) \(byte ([0-9]+)\)\Z", re.DOTALL)
# msgspec says "truncated" for a high surrogate escape without its low half.
_LONE_HIGH_SURROGATE_RE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")


def _malformed(exc: Exception, data: bytes) -> tuple[str, int | None]:
    """Word msgspec's refusal of ``data``: (message, byte offset into ``data`` if known)."""
    if isinstance(exc, RecursionError):  # deeper than the interpreter's recursion limit
        return "JSON is nested too deeply", None
    text = str(exc)
    match = _AT_BYTE_RE.match(text)
    if match is not None:
        return match.group(1), int(match.group(2))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as utf8:
        return f"invalid UTF-8 ({utf8.reason})", utf8.start
    if isinstance(exc, msgspec.ValidationError):  # an integer literal beyond 64 bits
        return f"JSON is malformed: {text.lower()}", None
    if _LONE_HIGH_SURROGATE_RE.search(data):
        return "JSON is malformed: a string holds a lone UTF-16 surrogate escape", None
    return "JSON is malformed: it ends early", len(data)


def _validated(obj: dict[str, Any], header_key_id: str) -> Envelope:
    _check_fields(obj, header_key_id)
    body = obj["body"]
    try:
        record = record_from_body(obj["type"], body)
    except RecordError as exc:
        field = "body" if exc.field is None else f"body.{exc.field}"
        raise EnvelopeError("bad_field", exc.message, field=field) from None
    return Envelope(
        version=obj["v"],
        record_type=obj["type"],
        agent_id=obj["agent_id"],
        key_id=obj["key_id"],
        seq=obj["seq"],
        created_at=obj["created_at"],
        body=MappingProxyType(body),
        _record=record,
    )


_TYPE_RULE = f"type must be one of {', '.join(RECORD_TYPES)}"
_AGENT_ID_RULE = f"agent_id must match {AGENT_ID_RE.pattern}"
_KEY_ID_RULE = "key_id must be k + 16 lowercase hex digits"
_CREATED_AT_RULE = "created_at must be a real UTC time with ms"


def _check_fields(obj: dict[str, Any], header_key_id: str) -> None:
    """The envelope fields of §4, in the order of its table; the first broken one is named."""
    version, seq, key_id = obj["v"], obj["seq"], obj["key_id"]
    if type(version) is not int or version != ENVELOPE_VERSION:
        raise _bad_field("v", "v must be 1")
    if obj["type"] not in RECORD_TYPES:
        raise _bad_field("type", _TYPE_RULE)
    if not _matches(AGENT_ID_RE, obj["agent_id"]):
        raise _bad_field("agent_id", _AGENT_ID_RULE)
    # The header's key id has the pattern already, so an equal one has it too.
    if key_id != header_key_id:
        if not _matches(_KEY_ID_RE, key_id):
            raise _bad_field("key_id", _KEY_ID_RULE)
        raise _bad_field("key_id", "key_id differs from the header's key id")
    if type(seq) is not int or not 1 <= seq <= MAX_SAFE_INT:
        raise _bad_field("seq", "seq must be an integer >= 1")
    if not valid_envelope_time(obj["created_at"]):
        raise _bad_field("created_at", _CREATED_AT_RULE)
    if type(obj["body"]) is not dict:
        raise _bad_field("body", "body must be a JSON object")


def _bad_field(name: str, message: str) -> EnvelopeError:
    return EnvelopeError("bad_field", message, field=name)


def _matches(pattern: re.Pattern[str], value: Any) -> bool:
    return isinstance(value, str) and pattern.match(value) is not None


def open_envelope(
    payload: bytes,
    lookup_key: Callable[[str], Ed25519PublicKey | None],
    *,
    max_size: int = MAX_ENVELOPE_BYTES,
) -> Envelope:
    """Verify and parse a payload, finding the public key by the header's key id.

    :param payload: the received bytes
    :param lookup_key: returns the registered key for a key id, or ``None`` if unknown/revoked
    :param max_size: refuse payloads longer than this many bytes
    :raises EnvelopeError: ``unknown_key`` if ``lookup_key`` returns ``None``; else as
        :func:`verify_and_parse`
    """
    if len(payload) > max_size:
        raise EnvelopeError("too_large", f"{len(payload)} bytes, limit is {max_size}")
    key_id = read_header(payload).key_id
    public_key = lookup_key(key_id)
    if public_key is None:
        raise EnvelopeError("unknown_key", f"no registered key with id {key_id}", 4)
    return verify_and_parse(payload, public_key, max_size=max_size)


# --- bundle: many payloads in one file, for offline export -------------------------------

_BUNDLE_MAGIC = b"SGBUNDLE1 "
_DECIMAL_RE = re.compile(rb"(0|[1-9][0-9]{0,8})\n")


class BundleError(RemoteProtocolError):
    """A bundle file is not well formed. ``offset`` is the byte offset in the file."""


def encode_bundle(payloads: Sequence[bytes]) -> bytes:
    """Pack signed payloads into one bundle: ``SGBUNDLE1 <count>\\n`` then per payload
    ``<length>\\n<payload>\\n`` (decimal ASCII numbers).

    The bundle adds no signature of its own: every payload inside is signed and is verified
    on its own by the importer.

    :param payloads: wire payloads as made by :func:`seal_envelope`
    :raises LocalProtocolError: for an empty or oversized payload
    """
    parts = [_BUNDLE_MAGIC, str(len(payloads)).encode("ascii"), b"\n"]
    for i, payload in enumerate(payloads):
        if not isinstance(payload, bytes) or not 1 <= len(payload) <= MAX_ENVELOPE_BYTES:
            raise LocalProtocolError(f"payload {i} must be 1 to {MAX_ENVELOPE_BYTES} bytes")
        parts += [str(len(payload)).encode("ascii"), b"\n", payload, b"\n"]
    return b"".join(parts)


def _read_decimal(data: bytes, offset: int, what: str) -> tuple[int, int]:
    match = _DECIMAL_RE.match(data, offset)
    if match is None:
        raise BundleError(f"expected {what} as a decimal number and a newline", offset)
    return int(match.group(1)), match.end()


def decode_bundle(data: bytes) -> list[bytes]:
    """Split a bundle made by :func:`encode_bundle` back into payloads (not verified here).

    :param data: the whole bundle file
    :raises BundleError: for any deviation from the format, with its byte offset
    """
    data = bytes(data)
    if not data.startswith(_BUNDLE_MAGIC):
        raise BundleError("not a settleguard bundle (expected 'SGBUNDLE1 ')", 0)
    count, offset = _read_decimal(data, len(_BUNDLE_MAGIC), "the payload count")
    payloads: list[bytes] = []
    for i in range(count):
        length, start = _read_decimal(data, offset, f"the length of payload {i}")
        if not 1 <= length <= MAX_ENVELOPE_BYTES:
            raise BundleError(f"payload {i} length must be 1 to {MAX_ENVELOPE_BYTES}", offset)
        end = start + length
        if end + 1 > len(data):
            raise BundleError(f"bundle ends inside payload {i}", len(data))
        if data[end : end + 1] != b"\n":
            raise BundleError(f"payload {i} is not followed by a newline", end)
        payloads.append(data[start:end])
        offset = end + 1
    if offset != len(data):
        raise BundleError(f"{len(data) - offset} unexpected bytes after the last payload", offset)
    return payloads
