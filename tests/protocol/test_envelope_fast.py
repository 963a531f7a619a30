"""The shortcuts in the envelope verifier decide exactly as the checks they replace.

``envelope._parse`` takes :func:`protocol.canonical.loads_if_canonical` with the envelope's
shape pattern and falls back to ``_parse_strictly`` (the full path): on any bytes, both must
accept with the same envelope and record, or refuse with the same reason, message and offset.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import envelope
from protocol.envelope import (
    _CANONICAL_LAST,
    EnvelopeError,
    SignedHeader,
    key_id_for,
    read_header,
    seal_envelope,
)
from protocol.records import Heartbeat, Record
from tests.protocol.test_records import batch, records

B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
KEY_ID = b"k0123456789abcdef"
KEY = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
KEY_ID_STR = key_id_for(KEY.public_key())
HB_RECORD = Heartbeat(0, None, "connected", "0.1.0", None, "2026-11-26T12:00:00Z")


@pytest.mark.parametrize("last", list(B64URL))
def test_last_signature_character_rule_equals_reencoding(last: int) -> None:
    text = base64.urlsafe_b64encode(bytes(range(64))).rstrip(b"=")[:85] + bytes([last])
    round_trips = base64.urlsafe_b64encode(base64.urlsafe_b64decode(text + b"==")).rstrip(b"=")
    canonical = round_trips == text
    assert (last in _CANONICAL_LAST) == canonical
    payload = b"SG1 " + KEY_ID + b" " + text + b"\n{}"
    if canonical:
        assert read_header(payload).signature == base64.urlsafe_b64decode(text + b"==")
    else:
        with pytest.raises(EnvelopeError, match="not canonical"):
            read_header(payload)


# --- read_header on any bytes-like payload ------------------------------------------------------


@settings(max_examples=300)
@given(st.data())
def test_read_header_is_the_same_for_bytes_and_other_buffers(data: st.DataObject) -> None:
    good = seal(HB_RECORD)
    kind = data.draw(st.sampled_from(["good", "flip", "cut", "random"]))
    payload = good
    if kind == "flip":
        i = data.draw(st.integers(0, 120))
        payload = good[:i] + bytes([good[i] ^ data.draw(st.integers(1, 255))]) + good[i + 1 :]
    elif kind == "cut":
        payload = good[: data.draw(st.integers(0, 130))]
    elif kind == "random":
        payload = data.draw(st.binary(max_size=200))

    def outcome(buffer: Any) -> Any:
        try:
            return read_header(buffer)
        except EnvelopeError as exc:
            return (exc.reason, str(exc), exc.offset)

    expected = outcome(payload)
    assert outcome(bytearray(payload)) == expected
    assert outcome(memoryview(payload)) == expected
    if isinstance(expected, SignedHeader):
        assert type(expected.signed_bytes) is bytes
        assert expected.signature == base64.urlsafe_b64decode(payload[22:108] + b"==")


# --- the envelope parser's shortcut against the full path ---------------------------------------


def seal(record: Record, seq: int = 1) -> bytes:
    return seal_envelope(
        KEY, record_type=record.RECORD_TYPE, agent_id="shop-0001", seq=seq,
        created_at="2026-11-26T12:00:00.000Z", body=record.to_body(),
    )  # fmt: skip


def outcome(parse: Any, signed_bytes: bytes) -> Any:
    """What a parser makes of ``signed_bytes``, comparable across parsers."""
    header = SignedHeader(KEY_ID_STR, b"", signed_bytes)
    try:
        env = parse(header)
    except EnvelopeError as exc:
        return ("refused", exc.reason, str(exc), exc.offset, exc.field)
    fields = (env.version, env.record_type, env.agent_id, env.key_id, env.seq, env.created_at)
    return ("accepted", fields, dict(env.body), repr(env.record()))


noise = st.sampled_from(
    [b" ", b'"', b"\\", b",", b":", b"{", b"}", b"[", b"]", b"0", b"1", b"-", b".", b"e",
     b"\x00", b"\x7f", b"\xc3\xa9", b"\xff", b"null", b"true", b"-0", b'"v":1,', b"\\u0041",
     b"9999999999999999", b"2", b"9", b"T", b"Z", b"x", b"\n"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(records, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3), noise), max_size=3))
def test_shortcut_parses_like_the_full_path(
    record: Record, edits: list[tuple[int, int, bytes]]
) -> None:
    data = read_header(seal(record)).signed_bytes
    for position, deleted, inserted in edits:
        position %= len(data) + 1
        data = data[:position] + inserted + data[position + deleted :]
    assert outcome(envelope._parse, data) == outcome(envelope._parse_strictly, data)


@pytest.mark.parametrize(
    ("old", "new"),
    [(b'"v":1', b'"v":2'), (b'"seq":1', b'"seq":0'), (b'"seq":1', b'"seq":-0'),
     (b'"seq":1', b'"seq":9007199254740992'), (b'"type":"', b'"type":"x'),
     (b'"agent_id":"', b'"agent_id":"-'), (b'"batch_no":42', b'"batch_no":-42'),
     (b'"closed_at":"2026-11-26', b'"closed_at":"2026-02-29'),
     (b'"closed_at":"2026-11-26', b'"closed_at":"2024-02-29'), (b'"name":"girocard"', b'"name":"x"'),
     (b'"name":"visa"', b'"name":"girocard"'), (b'"currency":"978"', b'"currency":null'),
     (b'"host_reconciled":true', b'"host_reconciled":1'), (b'"journal":[]', b'"journal":{}'),
     (b'"receipt_end":116', b'"receipt_end":null'), (b'"key_id":"k', b'"key_id":"j'),
     (b'"buckets":[', b'"buckets":[{},'), (b"", b"")],
)  # fmt: skip
def test_shortcut_refuses_like_the_full_path(old: bytes, new: bytes) -> None:
    data = read_header(seal(batch())).signed_bytes
    assert old in data
    data = data.replace(old, new, 1)
    assert outcome(envelope._parse, data) == outcome(envelope._parse_strictly, data)


def test_typical_envelopes_take_the_shape_path() -> None:
    for record in (batch(), batch(journal=()), HB_RECORD):
        data = read_header(seal(record)).signed_bytes
        assert envelope._CANONICAL_SHAPE.fullmatch(data)
        parsed = envelope._parse(SignedHeader(KEY_ID_STR, b"", data))
        # the msgspec route: the body stays bytes until read, and reads like the strict path's
        assert isinstance(parsed.body, envelope.LazyBody)
        assert parsed.record() == record
        assert parsed.body == record.to_body()
        with pytest.raises(TypeError):
            parsed.body["x"] = 1  # type: ignore[index]


def test_shape_route_still_runs_the_record_validation() -> None:
    # 2026-02-29 does not exist: only the record's __post_init__ can tell, not the shape
    data = read_header(seal(batch())).signed_bytes.replace(b'"2026-11-26', b'"2026-02-29', 1)
    assert envelope._CANONICAL_SHAPE.fullmatch(data)
    assert envelope._parse_shaped(data, KEY_ID_STR) is None
    with pytest.raises(envelope.EnvelopeError) as refused:
        envelope._parse(SignedHeader(KEY_ID_STR, b"", data))
    assert refused.value.reason == "bad_field"


@pytest.mark.parametrize("inserted", [b" ", b"\n", b",", b"-", b"0", b"9", b'"', b"\\", b"\xa9"])
def test_shortcut_with_a_byte_inserted_anywhere(inserted: bytes) -> None:
    data = read_header(seal(batch())).signed_bytes
    for position in range(len(data) + 1):
        changed = data[:position] + inserted + data[position:]
        assert outcome(envelope._parse, changed) == outcome(envelope._parse_strictly, changed)
