"""Sealed tokens for settlement card numbers (docs/architecture.md §6)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.protocol.errors import LocalProtocolError
from settleguard.protocol.sealed import (
    MAX_PLAINTEXT,
    SEALED_TOKEN_RE,
    SealedError,
    card_change_context,
    generate_keypair,
    open_sealed,
    seal,
)

PRIVATE, PUBLIC = generate_keypair()
CONTEXT = card_change_context("chg-1")
VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "envelope_v1.json").read_text(encoding="utf-8")
)


def test_published_vector_opens() -> None:
    vector = VECTORS["sealed"]
    plaintext = open_sealed(
        bytes.fromhex(vector["x25519_private_hex"]),
        vector["token"],
        context=vector["context_utf8"].encode("utf-8"),
    )
    assert plaintext == vector["plaintext_utf8"].encode("ascii")
    assert card_change_context("chg-20261126-01") == vector["context_utf8"].encode("utf-8")


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=MAX_PLAINTEXT), st.binary(max_size=64))
def test_round_trip(plaintext: bytes, context: bytes) -> None:
    token = seal(PUBLIC, plaintext, context=context)
    assert SEALED_TOKEN_RE.fullmatch(token)
    assert open_sealed(PRIVATE, token, context=context) == plaintext


def test_tokens_are_randomised_and_hide_the_number() -> None:
    number = b"6222021234567890128"  # Luhn-valid on purpose
    first, second = (seal(PUBLIC, number, context=CONTEXT) for _ in range(2))
    assert first != second
    assert number.decode() not in first and number.decode() not in second


def test_wrong_context_key_or_tampering_fails() -> None:
    token = seal(PUBLIC, b"6222021234567890123", context=CONTEXT)
    with pytest.raises(SealedError):
        open_sealed(PRIVATE, token, context=card_change_context("chg-2"))
    other_private, _ = generate_keypair()
    with pytest.raises(SealedError):
        open_sealed(other_private, token, context=CONTEXT)
    raw = bytearray(base64.urlsafe_b64decode(token[4:] + "=="))
    for index in (0, 40, len(raw) - 1):  # ephemeral key, ciphertext, tag
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        text = "sg1." + base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode()
        with pytest.raises(SealedError):
            open_sealed(PRIVATE, text, context=CONTEXT)


@pytest.mark.parametrize(
    "token",
    ["", "sg1.", "sg2." + "A" * 80, "sg1." + "A" * 65, "sg1." + "!" * 80, "sg1." + "A" * 2000],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(SealedError):
        open_sealed(PRIVATE, token, context=CONTEXT)


def test_non_canonical_base64_is_refused() -> None:
    token = seal(PUBLIC, b"12", context=CONTEXT)  # 32+2+16 = 50 bytes: 67 chars, 2 spare bits
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 0x01]
    with pytest.raises(SealedError, match="canonical"):
        open_sealed(PRIVATE, token[:-1] + sibling, context=CONTEXT)


def test_low_order_recipient_key_is_refused() -> None:
    with pytest.raises(SealedError):
        seal(bytes(32), b"1234", context=CONTEXT)


@pytest.mark.parametrize(
    ("public", "plaintext"),
    [(b"short", b"1234"), (PUBLIC, b""), (PUBLIC, b"x" * (MAX_PLAINTEXT + 1))],
)
def test_bad_arguments_are_local_errors(public: bytes, plaintext: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        seal(public, plaintext, context=CONTEXT)
    with pytest.raises(LocalProtocolError):
        open_sealed(b"short", "sg1." + "A" * 80, context=CONTEXT)


@given(st.text(max_size=120))
def test_garbage_only_raises_sealed_error(token: str) -> None:
    with pytest.raises(SealedError):
        open_sealed(PRIVATE, token, context=CONTEXT)


@given(st.from_regex(r"sg1\.[A-Za-z0-9_-]{66,200}", fullmatch=True))
def test_well_shaped_garbage_only_raises_sealed_error(token: str) -> None:
    with pytest.raises(SealedError):
        open_sealed(PRIVATE, token, context=CONTEXT)
