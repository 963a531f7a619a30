"""protocol.ed25519.verify_many agrees with cryptography's own single verify on valid, mutated
and malformed signatures."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.protocol.ed25519 import verify_many

KEYS = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in range(1, 4)]
RAW = [k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
       for k in KEYS]  # fmt: skip
L = 2**252 + 27742317777372353535851937790883648493  # the group order (RFC 8032 §5.1)
P = 2**255 - 19


def reference(key: bytes, signature: bytes, message: bytes) -> int:
    """cryptography's answer for one item (what the ingest path used before)."""
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return 0
    return 1


def test_valid_and_invalid_in_one_batch() -> None:
    messages = [b"", b"a", os.urandom(600), b"settleguard/v1\n{}", os.urandom(5000)]
    keys, sigs, msgs, expected = [], [], [], []
    for i, message in enumerate(messages):
        key = KEYS[i % 3]
        signature = key.sign(message)
        keys += [RAW[i % 3], RAW[(i + 1) % 3], RAW[i % 3], RAW[i % 3]]
        sigs += [signature, signature, signature, signature[:63] + bytes([signature[63] ^ 0x10])]
        msgs += [message, message, message + b"x", message]
        expected += [1, 0, 0, 0]
    assert list(verify_many(keys, sigs, msgs)) == expected


def test_malformed_items_are_invalid_not_errors() -> None:
    signature = KEYS[0].sign(b"m")
    s_plus_l = (int.from_bytes(signature[32:], "little") + L).to_bytes(32, "little")
    cases = [
        (RAW[0][:31], signature),  # short key
        (RAW[0] + b"\0", signature),  # long key
        (RAW[0], signature[:63]),  # short signature
        (RAW[0], signature + b"\0"),  # long signature
        (RAW[0], signature[:32] + s_plus_l),  # S not reduced: the same signature, malleated
        (b"\0" * 32, signature),  # a small-order key
        ((P + 1).to_bytes(32, "little"), signature),  # a non-canonical y coordinate
        (b"\xff" * 32, signature),  # not a point at all
        (RAW[0], b"\0" * 64),
    ]
    keys = [k for k, _ in cases]
    sigs = [s for _, s in cases]
    got = verify_many(keys, sigs, [b"m"] * len(cases))
    assert list(got) == [reference(k, s, b"m") for k, s in cases]
    assert list(got) == [0] * len(cases)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        verify_many([RAW[0]], [], [b""])
    with pytest.raises(TypeError, match="messages"):
        verify_many([RAW[0]], [b"\0" * 64], ["text"])  # type: ignore[list-item]
    assert verify_many([], [], []) == b""


# signer, message, mutation, bit to flip, key claimed
ITEM = st.tuples(st.integers(0, 2), st.binary(max_size=300), st.integers(0, 4),
                 st.integers(0, 8 * 64 - 1), st.integers(0, 2))  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(ITEM, min_size=1, max_size=12))
def test_agrees_with_cryptography_on_mutations(
    items: list[tuple[int, bytes, int, int, int]],
) -> None:
    keys, sigs, msgs = [], [], []
    for signer, message, kind, bit, claimed in items:
        signature = KEYS[signer].sign(message)
        key = RAW[claimed]
        if kind == 1:  # one bit of the signature flipped
            signature = bytearray(signature)
            signature[bit // 8] ^= 1 << (bit % 8)
            signature = bytes(signature)
        elif kind == 2 and message:  # the message changed
            message = message[:-1] + bytes([message[-1] ^ 1])
        elif kind == 3:  # one bit of the key flipped
            key = bytearray(key)
            key[(bit // 8) % 32] ^= 1 << (bit % 8)
            key = bytes(key)
        keys.append(key)
        sigs.append(signature)
        msgs.append(message)
    expected = [reference(k, s, m) for k, s, m in zip(keys, sigs, msgs, strict=True)]
    assert list(verify_many(keys, sigs, msgs)) == expected
