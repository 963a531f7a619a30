"""Fuzz the envelope family: signed envelopes, bundles, acks, strict JSON, sealed tokens."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.acks import Ack, decode_acks, encode_acks
from settleguard.protocol.canonical import strict_json_loads
from settleguard.protocol.envelope import (
    decode_bundle,
    encode_bundle,
    open_envelope,
    read_header,
    seal_envelope,
    verify_and_parse,
)
from settleguard.protocol.errors import ProtocolError
from settleguard.protocol.sealed import card_change_context, generate_keypair, open_sealed, seal

from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import bytes_or_mutation
from tests.helpers.records import batch, heartbeat

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()
GOOD = [
    seal_envelope(KEY, record_type=r.RECORD_TYPE, agent_id="agent-a", seq=n,
                  created_at="2026-03-01T10:00:00.000Z", body=r.to_body())
    for n, r in enumerate([batch(), heartbeat(), batch(batch_no=7, amount=0)], start=1)
]  # fmt: skip
TOKENS = (b"{", b"}", b'"', b"\n", b".", b"e9", b"\\u0000", b"NaN", b"-0", b'"seq":', b",")
SECRET, RECIPIENT = generate_keypair()


@FUZZ
@given(bytes_or_mutation(GOOD, TOKENS))
def test_envelope_verify_and_parse(data: bytes) -> None:
    try:
        envelope = verify_and_parse(data, PUBLIC)
    except ProtocolError:
        return
    envelope.record()  # a verified envelope always has a valid body: no error allowed here
    assert data in GOOD  # a mutation that still verifies would be a forgery


@FUZZ
@given(bytes_or_mutation(GOOD, TOKENS))
def test_envelope_header_and_key_lookup(data: bytes) -> None:
    for call in (read_header, lambda d: open_envelope(d, lambda _kid: PUBLIC)):
        try:
            call(data)
        except ProtocolError:
            pass


@FUZZ
@given(bytes_or_mutation([encode_bundle(GOOD), encode_bundle([])], (b"\n", b"SGBUNDLE1 ", b"9")))
def test_bundle(data: bytes) -> None:
    try:
        decode_bundle(data)
    except ProtocolError:
        pass


@FUZZ
@given(bytes_or_mutation([encode_acks("agent-a", [Ack(1, "accepted", None),
                                                  Ack(2, "rejected", "revoked")])], TOKENS))  # fmt: skip
def test_acks(data: bytes) -> None:
    try:
        decode_acks(data)
    except ProtocolError:
        pass


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                 bytes_or_mutation([read_header(g).signed_bytes for g in GOOD], TOKENS)))  # fmt: skip
def test_strict_json(data: bytes) -> None:
    try:
        strict_json_loads(data)
    except ProtocolError:
        pass


@FUZZ
@given(st.one_of(st.text(max_size=300),
                 bytes_or_mutation([seal(RECIPIENT, b"6222021234567890", context=card_change_context("c1")).encode()],
                                   (b".", b"=", b"-", b"_")).map(lambda b: b.decode("latin-1"))))  # fmt: skip
def test_sealed_token(token: str) -> None:
    try:
        open_sealed(SECRET, token, context=card_change_context("c1"))
    except ProtocolError:
        pass
