"""Signed envelope: published vectors, round trips, and every way a payload can be refused."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.protocol.canonical import (
    JSONError,
    canonical_dumps,
    is_canonical,
    strict_json_loads,
)
from settleguard.protocol.envelope import (
    DOMAIN,
    MAX_ENVELOPE_BYTES,
    BundleError,
    Envelope,
    EnvelopeError,
    decode_bundle,
    encode_bundle,
    key_id_for,
    open_envelope,
    read_header,
    seal_envelope,
    verify_and_parse,
)
from settleguard.protocol.errors import LocalProtocolError
from settleguard.protocol.records import Heartbeat, Record

from tests.protocol.test_records import batch, records

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "envelope_v1.json").read_text(encoding="utf-8")
)
KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTORS["ed25519_private_seed_hex"]))
PUB = KEY.public_key()
OTHER = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
NOW = "2026-11-26T12:00:00.000Z"
HB = Heartbeat(0, None, "connected", "0.1.0", None, "2026-11-26T12:00:00Z")


def seal(record: Record = HB, seq: int = 1, key: Ed25519PrivateKey = KEY) -> bytes:
    return seal_envelope(
        key, record_type=record.RECORD_TYPE, agent_id="shop-0001", seq=seq, created_at=NOW,
        body=record.to_body(),
    )  # fmt: skip


def sign_raw(signed_bytes: bytes, key: Ed25519PrivateKey = KEY, key_id: str | None = None) -> bytes:
    """A correctly signed payload around arbitrary bytes, to reach the checks after the signature."""
    kid = key_id or key_id_for(key.public_key())
    sig = base64.urlsafe_b64encode(key.sign(DOMAIN + signed_bytes)).rstrip(b"=")
    return b"SG1 " + kid.encode() + b" " + sig + b"\n" + signed_bytes


def envelope_obj(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "v": 1, "type": "heartbeat", "agent_id": "shop-0001", "key_id": key_id_for(PUB),
        "seq": 1, "created_at": NOW, "body": HB.to_body(),
    }  # fmt: skip
    obj.update(changes)
    return obj


# --- published vectors -------------------------------------------------------------------------


def test_key_id_vector() -> None:
    raw = bytes.fromhex(VECTORS["ed25519_public_hex"])
    assert key_id_for(PUB) == key_id_for(raw) == VECTORS["key_id"]
    assert VECTORS["key_id"] == "k" + hashlib.sha256(raw).hexdigest()[:16]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vectors_are_reproduced_exactly(vector: dict[str, Any]) -> None:
    payload = seal_envelope(
        KEY, record_type=vector["record_type"], agent_id=vector["agent_id"], seq=vector["seq"],
        created_at=vector["created_at"], body=vector["body"],
    )  # fmt: skip
    assert payload == base64.b64decode(vector["payload_base64"])
    header = read_header(payload)
    assert header.signed_bytes == vector["signed_bytes"].encode("utf-8")
    assert header.signature.hex() == vector["signature_hex"]
    # Independent checks: the reference RFC 8785 encoder and bare Ed25519 agree.
    obj = json.loads(vector["signed_bytes"])
    assert rfc8785.dumps(obj) == header.signed_bytes
    assert obj["body"] == vector["body"]
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(VECTORS["ed25519_public_hex"]))
    pub.verify(bytes.fromhex(vector["signature_hex"]), b"settleguard/v1\n" + header.signed_bytes)
    env = verify_and_parse(payload, pub)
    # An older agent's body omits the fields added since; it reads with their defaults.
    assert env.record().to_body() == vector.get("reads_as", vector["body"])


# --- round trips ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(records, st.integers(1, 2**53 - 1))
def test_round_trip(record: Record, seq: int) -> None:
    payload = seal(record, seq)
    env = verify_and_parse(payload, PUB)
    assert (env.version, env.record_type, env.agent_id, env.seq) == (
        1, record.RECORD_TYPE, "shop-0001", seq,
    )  # fmt: skip
    assert env.key_id == key_id_for(PUB) and env.created_at == NOW
    assert env.record() == record
    assert open_envelope(payload, {key_id_for(PUB): PUB}.get) == env


def test_envelope_body_is_read_only() -> None:
    env = verify_and_parse(seal(), PUB)
    assert isinstance(env, Envelope)
    with pytest.raises(TypeError):
        env.body["outbox_pending"] = 5  # type: ignore[index]


# --- refusals ---------------------------------------------------------------------------------

GOOD = seal(batch())
SIGNED = read_header(GOOD).signed_bytes
HEADER_LEN = len(GOOD) - len(SIGNED)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _edited(old: bytes, new: bytes) -> bytes:
    """The canonical heartbeat envelope with ``old`` replaced by ``new`` (once, by position)."""
    signed = rfc8785.dumps(envelope_obj())
    assert signed.count(old) == 1
    return signed.replace(old, new)


def _with_seq(number: bytes) -> bytes:
    return _edited(b'"seq":1', b'"seq":' + number)


REFUSALS: list[tuple[str, bytes, str]] = [
    ("empty", b"", "bad_header"),
    ("not ours", b"GET / HTTP/1.1\r\n\r\n", "bad_header"),
    ("header truncated", GOOD[:60], "bad_header"),
    ("lowercase magic", b"sg1" + GOOD[3:], "bad_header"),
    ("uppercase key id", GOOD[:5] + GOOD[5:21].upper() + GOOD[21:], "bad_header"),
    ("padded signature", GOOD[:108] + b"==" + GOOD[108:], "bad_header"),
    ("CRLF header", GOOD[:108] + b"\r" + GOOD[108:], "bad_header"),
    ("oversized", GOOD + b" " * MAX_ENVELOPE_BYTES, "too_large"),
    ("other key signed", seal(key=OTHER), "unknown_key"),
    # another base64url character (a bit flip can leave the alphabet: 'Z' ^ 1 is '[')
    (
        "signature changed",
        GOOD[:30] + (b"B" if GOOD[30:31] == b"A" else b"A") + GOOD[31:],
        "bad_signature",
    ),
    ("body bit flip", _flip(GOOD, HEADER_LEN + 40), "bad_signature"),
    ("truncated body", GOOD[:-1], "bad_signature"),
    ("appended byte", GOOD + b"\n", "bad_signature"),
    ("bad utf-8", sign_raw(b'{"agent_id":"\xff"}'), "malformed"),
    # The parser keeps the last of two equal names; the re-encoding then holds it once.
    ("duplicate key", sign_raw(b'{"v":1,"v":1}'), "not_canonical"),
    (
        "duplicate envelope key",
        sign_raw(rfc8785.dumps(envelope_obj()).replace(b'"seq":1', b'"seq":1,"seq":1')),
        "not_canonical",
    ),
    (
        "duplicate body key",
        sign_raw(
            rfc8785.dumps(envelope_obj()).replace(
                b'"disk_alarm":false', b'"disk_alarm":false,"disk_alarm":false'
            )
        ),
        "not_canonical",
    ),
    # 1.0 is how the encoder writes a float, so the field's type refuses it.
    (
        "float",
        sign_raw(rfc8785.dumps(envelope_obj(seq=1)).replace(b'"seq":1', b'"seq":1.0')),
        "bad_field",
    ),
    (
        "float in body",
        sign_raw(
            rfc8785.dumps(envelope_obj()).replace(b'"outbox_pending":0', b'"outbox_pending":0.0')
        ),
        "bad_field",
    ),
    (
        "exponent",
        sign_raw(rfc8785.dumps(envelope_obj(seq=1)).replace(b'"seq":1', b'"seq":1e0')),
        "not_canonical",
    ),
    ("NaN", sign_raw(b'{"seq":NaN}'), "malformed"),
    ("Infinity", sign_raw(b'{"seq":-Infinity}'), "malformed"),
    ("huge int", sign_raw(_with_seq(b"9007199254740992")), "bad_field"),
    ("huge negative int", sign_raw(_with_seq(b"-9007199254740992")), "bad_field"),
    ("int beyond 64 bits", sign_raw(_with_seq(b"1" + b"0" * 30)), "bad_field"),
    ("int of 5000 digits", sign_raw(_with_seq(b"1" * 5000)), "malformed"),
    (
        "huge int in body",
        sign_raw(
            rfc8785.dumps(envelope_obj()).replace(
                b'"outbox_pending":0', b'"outbox_pending":9007199254740992'
            )
        ),
        "bad_field",
    ),
    ("deep nesting", sign_raw(b"[" * 1000 + b"]" * 1000), "malformed"),
    (
        "deep nesting in an object",
        sign_raw(b'{"body":' + b"[" * 5000 + b"]" * 5000 + b"}"),
        "malformed",
    ),
    (
        "deep nesting in the body",
        sign_raw(rfc8785.dumps(envelope_obj(body={**HB.to_body(), "last_error": [[[[["x"]]]]]}))),
        "bad_field",
    ),
    ("bom", sign_raw(b"\xef\xbb\xbf{}"), "malformed"),
    ("lone surrogate", sign_raw(b'{"x":"\\ud800"}'), "malformed"),
    ("lone low surrogate", sign_raw(b'{"x":"\\udc00 "}'), "malformed"),
    ("not an object", sign_raw(b"[1,2]"), "malformed"),
    ("trailing garbage", sign_raw(rfc8785.dumps(envelope_obj()) + b"x"), "malformed"),
    ("whitespace", sign_raw(json.dumps(envelope_obj(), sort_keys=True).encode()), "not_canonical"),
    (
        "key order",
        sign_raw(json.dumps(envelope_obj(), separators=(",", ":")).encode()),
        "not_canonical",
    ),
    (
        "escaped slash",
        sign_raw(rfc8785.dumps(envelope_obj(agent_id="a/b")).replace(b"a/b", b"a\\/b")),
        "not_canonical",
    ),
    ("extra field", sign_raw(rfc8785.dumps({**envelope_obj(), "sig": "x"})), "bad_field"),
    (
        "missing field",
        sign_raw(rfc8785.dumps({k: v for k, v in envelope_obj().items() if k != "seq"})),
        "bad_field",
    ),
    ("version 2", sign_raw(rfc8785.dumps(envelope_obj(v=2))), "bad_field"),
    ("version true", sign_raw(rfc8785.dumps(envelope_obj(v=True))), "bad_field"),
    ("seq zero", sign_raw(rfc8785.dumps(envelope_obj(seq=0))), "bad_field"),
    ("seq string", sign_raw(rfc8785.dumps(envelope_obj(seq="1"))), "bad_field"),
    ("bad agent id", sign_raw(rfc8785.dumps(envelope_obj(agent_id="Shop 1"))), "bad_field"),
    (
        "agent id newline",
        sign_raw(rfc8785.dumps(envelope_obj(agent_id="shop-0001\n"))),
        "bad_field",
    ),
    (
        "key id mismatch",
        sign_raw(rfc8785.dumps(envelope_obj(key_id="k0000000000000000"))),
        "bad_field",
    ),
    *[
        (f"created_at {case}", sign_raw(rfc8785.dumps(envelope_obj(created_at=value))), "bad_field")
        for case, value in [
            ("seconds", "2026-11-26T12:00:00Z"),
            ("not a date", "2026-13-45T99:99:99.999Z"),
            ("29 February of a common year", "2027-02-29T12:00:00.000Z"),
            ("year zero", "0000-01-01T00:00:00.000Z"),
        ]
    ],
    ("unknown type", sign_raw(rfc8785.dumps(envelope_obj(type="refund"))), "bad_field"),
    ("body list", sign_raw(rfc8785.dumps(envelope_obj(body=[]))), "bad_field"),
    (
        "body bad record",
        sign_raw(rfc8785.dumps(envelope_obj(body={**HB.to_body(), "outbox_pending": -1}))),
        "bad_field",
    ),
]


@pytest.mark.parametrize(("case", "payload", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(case: str, payload: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        verify_and_parse(payload, PUB)
    assert info.value.reason == reason, (case, str(info.value))


def test_bad_record_names_the_body_field() -> None:
    body = {**HB.to_body(), "outbox_pending": -1}
    with pytest.raises(EnvelopeError) as info:
        verify_and_parse(sign_raw(rfc8785.dumps(envelope_obj(body=body))), PUB)
    assert info.value.field == "body.outbox_pending"


def _refusal(signed_bytes: bytes) -> EnvelopeError:
    with pytest.raises(EnvelopeError) as info:
        verify_and_parse(sign_raw(signed_bytes), PUB)
    return info.value


def _batch_body(**bucket_changes: Any) -> dict[str, Any]:
    body = batch().to_body()
    body["buckets"] = [{**body["buckets"][0], **bucket_changes}]
    return body


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        # a record's own check, raised while msgspec builds a nested bucket
        (_batch_body(sale_amount=-1), "body.buckets[0].sale_amount", "between 0 and"),
        # the JSON type, checked by msgspec
        (_batch_body(sale_count=True), "body.buckets[0].sale_count", "Expected int, got bool"),
        (_batch_body(name=7), "body.buckets[0].name", "Expected str, got int"),
        ({**batch().to_body(), "buckets": {}}, "body.buckets", "Expected array, got object"),
        ({**batch().to_body(), "buckets": [1]}, "body.buckets[0]", "Expected object, got int"),
        # the key set: unknown fields, and fields with a default that still must be sent
        (_batch_body(x=1), "body.buckets[0].x", "unknown field"),
        ({k: v for k, v in _batch_body().items() if k != "journal"}, "body.journal", "missing"),
        (
            {**batch().to_body(), "buckets": [{"name": "visa", "scheme": None}]},
            "body.buckets[0].sale_count",
            "missing field",
        ),
        ({**batch().to_body(), "extra": 1}, "body.extra", "unknown field"),
        # a check across fields of the record itself
        ({**batch().to_body(), "receipt_end": None}, "body.receipt_end", "go together"),
    ],
)
def test_a_bad_body_names_its_field(body: dict[str, Any], field: str, words: str) -> None:
    error = _refusal(rfc8785.dumps(envelope_obj(type="batch_summary", body=body)))
    assert (error.reason, error.field) == ("bad_field", field), str(error)
    assert words in error.message


def _changed(**changes: Any) -> bytes:
    return canonical_dumps(envelope_obj(**changes))


@pytest.mark.parametrize(
    ("signed", "field", "words"),
    [
        (_changed(v=2), "v", "v must be 1"),
        (_changed(type=["heartbeat"]), "type", "type must be one of"),
        (_changed(agent_id=7), "agent_id", "agent_id must match"),
        (_changed(key_id="K21FE31DFA154A261"), "key_id", "16 lowercase hex"),
        (_changed(key_id="k0000000000000000"), "key_id", "differs from the header"),
        (_with_seq(b"1.5"), "seq", "integer"),
        (_changed(created_at=None), "created_at", "real UTC time"),
        (_changed(body="{}"), "body", "JSON object"),
        (_changed(v=2, seq=0), "v", "v must be 1"),  # the first broken field in §4's order
    ],
)
def test_a_bad_envelope_field_is_named(signed: bytes, field: str, words: str) -> None:
    error = _refusal(signed)
    assert (error.reason, error.field) == ("bad_field", field), str(error)
    assert words in error.message


def test_an_older_body_without_the_added_fields_reads_with_their_defaults() -> None:
    body = batch().to_body()
    del body["source"]
    body["buckets"] = [{k: v for k, v in b.items() if k != "scheme"} for b in body["buckets"]]
    payload = sign_raw(rfc8785.dumps(envelope_obj(type="batch_summary", body=body)))
    assert verify_and_parse(payload, PUB).record() == batch()


def test_not_canonical_points_at_the_first_differing_byte() -> None:
    signed = rfc8785.dumps(envelope_obj()).replace(b'"seq":1', b'"seq":1,"seq":1')
    error = _refusal(signed)
    assert error.reason == "not_canonical"
    # canonical: ...,"seq":1,"type"... ; sent: ...,"seq":1,"seq":1,... (the 's' of the second)
    assert error.offset == HEADER_LEN + signed.index(b',"seq":1,') + len(b',"seq":1,"')
    assert "repeated name" in error.message
    assert _refusal(b'{"v": 1}').offset == HEADER_LEN + 5


@pytest.mark.parametrize(
    ("signed", "offset", "words"),
    [
        (b'{"a":1,}', 7, "trailing comma"),
        (b'{"a":"\xe4\xb8\xad\xff"}', 9, "invalid UTF-8"),
        (b'{"x":"\\ud800"}', None, "lone UTF-16 surrogate"),
        (b'{"x":"\\ud800\\u0041"}', 18, "surrogate"),
        (b'{"x":"\\udc00 "}', 12, "surrogate"),
        (b'{"a":[1,', 8, "ends early"),
        (b"\xef\xbb\xbf{}", 0, "invalid character"),
        (b'{"seq":' + b"9" * 5000 + b"}", None, "out of range"),
        (b"[" * 5000, None, "nested too deeply"),
    ],
)
def test_malformed_says_what_and_where(signed: bytes, offset: int | None, words: str) -> None:
    error = _refusal(signed)
    assert error.reason == "malformed", str(error)
    assert error.offset == (None if offset is None else HEADER_LEN + offset)
    assert words in error.message


def test_offsets_point_into_the_payload() -> None:
    with pytest.raises(EnvelopeError) as info:
        verify_and_parse(GOOD[:5] + b"K" + GOOD[6:], PUB)
    assert info.value.offset == 5
    broken = sign_raw(b'{"a":1,}')
    with pytest.raises(EnvelopeError) as info:
        verify_and_parse(broken, PUB)
    assert info.value.offset == HEADER_LEN + 7


def test_signature_is_checked_before_parsing() -> None:
    # Garbage JSON with a wrong signature must be reported as a bad signature, not malformed.
    forged = sign_raw(b"[" * 5000, key=OTHER, key_id=key_id_for(PUB))
    with pytest.raises(EnvelopeError) as info:
        verify_and_parse(forged, PUB)
    assert info.value.reason == "bad_signature"


def test_open_envelope_unknown_key_and_size_limit() -> None:
    with pytest.raises(EnvelopeError) as info:
        open_envelope(GOOD, lambda key_id: None)
    assert info.value.reason == "unknown_key"
    with pytest.raises(EnvelopeError) as info:
        open_envelope(GOOD, {key_id_for(PUB): PUB}.get, max_size=100)
    assert info.value.reason == "too_large"


@pytest.mark.parametrize(
    "changes",
    [
        {"agent_id": "X"},
        {"seq": 0},
        {"seq": True},
        {"created_at": "2026-11-26T12:00:00Z"},
        {"record_type": "nope"},
        {"body": {**HB.to_body(), "disk_alarm": 0}},
    ],
)
def test_seal_envelope_refuses_bad_arguments(changes: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "record_type": "heartbeat", "agent_id": "shop-0001", "seq": 1, "created_at": NOW,
        "body": HB.to_body(),
    }  # fmt: skip
    args.update(changes)
    with pytest.raises(LocalProtocolError):
        seal_envelope(KEY, **args)


def test_seal_envelope_refuses_oversized_records() -> None:
    from settleguard.protocol.records import JournalEntry

    entry = JournalEntry(1, "sale", 100, "411111******1111", "visa", "2026-11-26T10:00:00")
    with pytest.raises(LocalProtocolError, match="without its journal"):
        seal(batch(journal=(entry,) * 1000))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_garbage_only_raises_envelope_error(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["random", "flip", "truncate", "splice", "signed"]))
    if kind == "random":
        payload = data.draw(st.binary(max_size=400))
    elif kind == "flip":
        index = data.draw(st.integers(0, len(GOOD) - 1))
        payload = (
            GOOD[:index] + bytes([GOOD[index] ^ data.draw(st.integers(1, 255))]) + GOOD[index + 1 :]
        )
    elif kind == "truncate":
        payload = GOOD[: data.draw(st.integers(0, len(GOOD) - 1))]
    elif kind == "splice":
        payload = GOOD[:HEADER_LEN] + data.draw(st.binary(max_size=200))
    else:  # correctly signed garbage reaches the strict parser
        payload = sign_raw(data.draw(st.binary(max_size=300)))
    try:
        verify_and_parse(payload, PUB)
    except EnvelopeError:
        return
    raise AssertionError("garbage was accepted")


# --- strict JSON and the canonical fast path ----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_fast_canonical_check_agrees_with_rfc8785(value: Any) -> None:
    try:
        reference = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        return  # lone surrogates: not encodable, strict_json_loads never yields them
    parsed = strict_json_loads(reference, max_depth=64)
    assert parsed == value
    assert is_canonical(parsed, reference)
    assert not is_canonical(parsed, reference + b" ")


@pytest.mark.parametrize(
    ("data", "offset"),
    [(b"[1,", 3), (b'{"a":1 "b":2}', 7), (b"\xc3(", 0), (b'["\xe4\xb8\xad", x]', 8)],
)
def test_strict_json_offsets_are_bytes(data: bytes, offset: int) -> None:
    with pytest.raises(JSONError) as info:
        strict_json_loads(data)
    assert info.value.offset == offset


def test_depth_limit_counts_only_real_brackets() -> None:
    assert strict_json_loads(b'["[[[[[[[[[[[[[[[[[[[[[[["]') == ["[" * 23]
    with pytest.raises(JSONError, match="nesting deeper than 2"):
        strict_json_loads(b"[[[]]]", max_depth=2)


# --- bundles -------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8))
def test_bundle_round_trip(payloads: list[bytes]) -> None:
    assert decode_bundle(encode_bundle(payloads)) == payloads


def test_bundle_layout_is_as_documented() -> None:
    assert encode_bundle([b"ab", b"c\n"]) == b"SGBUNDLE1 2\n2\nab\n2\nc\n\n"
    assert encode_bundle([]) == b"SGBUNDLE1 0\n"


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"", 0),
        (b"SGBUNDLE2 1\n", 0),
        (b"SGBUNDLE1 01\n", 10),
        (b"SGBUNDLE1 1\n", 12),
        (b"SGBUNDLE1 1\n3\nab", 16),
        (b"SGBUNDLE1 1\n2\nabc", 16),
        (b"SGBUNDLE1 1\n0\n\n", 12),
        (b"SGBUNDLE1 1\n2\nab\nX", 17),
        (b"SGBUNDLE1 1\n-2\nab\n", 12),
    ],
)
def test_bundle_errors_carry_offsets(data: bytes, offset: int) -> None:
    with pytest.raises(BundleError) as info:
        decode_bundle(data)
    assert info.value.offset == offset


@given(st.binary(max_size=200))
def test_bundle_garbage_only_raises_bundle_error(tail: bytes) -> None:
    for data in (tail, b"SGBUNDLE1 " + tail, encode_bundle([GOOD])[: len(tail)] + tail):
        try:
            decode_bundle(data)
        except BundleError:
            pass


def test_bundle_of_real_payloads_verifies_item_by_item() -> None:
    payloads = [seal(HB, seq) for seq in (1, 2, 3)]
    opened = [verify_and_parse(p, PUB) for p in decode_bundle(encode_bundle(payloads))]
    assert [env.seq for env in opened] == [1, 2, 3]


def test_docs_publish_the_same_vectors() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "envelope.md").read_text(encoding="utf-8")
    for key in ("ed25519_private_seed_hex", "ed25519_public_hex", "key_id"):
        assert VECTORS[key] in doc
    for vector in VECTORS["vectors"]:
        assert vector["signed_bytes"] in doc
        assert vector["signature_hex"] in doc
    assert VECTORS["sealed"]["token"] in doc and VECTORS["sealed"]["x25519_private_hex"] in doc


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"9007199254740991", 2**53 - 1),
        (b"-9007199254740991", -(2**53) + 1),
        (b'{"a":"12345678901234567890","b":1}', {"a": "12345678901234567890", "b": 1}),
        (b'"\\ud83d\\ude00"', "\U0001f600"),
        (b'"\xe4\xb8\xad/\\u00e9"', "中/é"),
    ],
)
def test_strict_json_accepts(data: bytes, expected: Any) -> None:
    assert strict_json_loads(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"9007199254740992",
        b"-9007199254740992",
        b"1" * 5000,
        b"[" * 100_000,
        b'{"a":1,"a":1}',
        b"0.5",
        b"1E2",
        b"-Infinity",
        b'"\\udc00"',
        b"",
        b"\xef\xbb\xbf1",
        b"\xed\xa0\x80",
    ],
)
def test_strict_json_refuses(data: bytes) -> None:
    with pytest.raises(JSONError):
        strict_json_loads(data)


@given(st.binary(max_size=200))
def test_strict_json_garbage_only_raises_json_error(data: bytes) -> None:
    try:
        strict_json_loads(data)
    except JSONError:
        pass


def test_record_from_verification_is_reused() -> None:
    env = verify_and_parse(GOOD, PUB)
    assert env.record() is env.record()
    assert env.record() == batch()


def test_a_leap_day_is_a_real_created_at() -> None:
    payload = sign_raw(rfc8785.dumps(envelope_obj(created_at="2028-02-29T23:59:59.999Z")))
    assert verify_and_parse(payload, PUB).created_at == "2028-02-29T23:59:59.999Z"


def test_sealing_refuses_a_created_at_that_is_no_real_time() -> None:
    with pytest.raises(LocalProtocolError, match="real UTC time"):
        seal_envelope(KEY, record_type="heartbeat", agent_id="shop-0001", seq=1,
                      created_at="2026-02-30T12:00:00.000Z", body=HB.to_body())  # fmt: skip


@pytest.mark.parametrize("depth", [300, 600, 900, 2000])
@pytest.mark.parametrize("key", ["é", "\U0001f600"])
def test_deep_nesting_is_refused_at_every_step(depth: int, key: str) -> None:
    # Non-ASCII keys send the canonical check through its key-order walk, which must not let a
    # RecursionError out where the parser still managed the nesting.
    signed = f'{{"{key}":'.encode() + b"[" * depth + b"]" * depth + b"}"
    assert _refusal(signed).reason in ("malformed", "bad_field")
