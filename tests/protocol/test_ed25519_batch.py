"""protocol.ed25519.verify_many: the C extension and the cryptography fallback agree with
cryptography's own verify on valid, mutated and malformed signatures."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import ed25519

KEYS = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in range(1, 4)]
RAW = [k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
       for k in KEYS]  # fmt: skip
L = 2**252 + 27742317777372353535851937790883648493  # the group order (RFC 8032 §5.1)
P = 2**255 - 19

IMPLEMENTATIONS = [ed25519.verify_many_fallback]
if ed25519.NATIVE:
    IMPLEMENTATIONS.append(ed25519.verify_many)


def reference(key: bytes, signature: bytes, message: bytes) -> int:
    """cryptography's answer for one item (what the ingest path used before)."""
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return 0
    return 1


def test_the_extension_is_built_where_it_can_be() -> None:
    # CI and the dev machines have a C compiler and OpenSSL's headers (scripts/system-deps.sh):
    # a silently missing extension would hide a slower ingest behind the fallback.
    can_build = shutil.which("cc") is not None and Path("/usr/include/openssl/evp.h").exists()
    if not can_build:
        pytest.skip("no C compiler or OpenSSL headers: the fallback is in use")
    assert ed25519.NATIVE, "protocol/_ed25519_batch.c was not built (pip install -e . failed?)"


@pytest.mark.parametrize("verify", IMPLEMENTATIONS)
def test_valid_and_invalid_in_one_batch(verify: object) -> None:
    messages = [b"", b"a", os.urandom(600), b"settleguard/v1\n{}", os.urandom(5000)]
    keys, sigs, msgs, expected = [], [], [], []
    for i, message in enumerate(messages):
        key = KEYS[i % 3]
        signature = key.sign(message)
        keys += [RAW[i % 3], RAW[(i + 1) % 3], RAW[i % 3], RAW[i % 3]]
        sigs += [signature, signature, signature, signature[:63] + bytes([signature[63] ^ 0x10])]
        msgs += [message, message, message + b"x", message]
        expected += [1, 0, 0, 0]
    assert list(verify(keys, sigs, msgs)) == expected  # type: ignore[operator]


@pytest.mark.parametrize("verify", IMPLEMENTATIONS)
def test_malformed_items_are_invalid_not_errors(verify: object) -> None:
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
    got = verify(keys, sigs, [b"m"] * len(cases))  # type: ignore[operator]
    assert list(got) == [reference(k, s, b"m") for k, s in cases]
    assert list(got) == [0] * len(cases)


@pytest.mark.parametrize("verify", IMPLEMENTATIONS)
def test_bad_arguments(verify: object) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        verify([RAW[0]], [], [b""])  # type: ignore[operator]
    with pytest.raises(TypeError, match="messages"):
        verify([RAW[0]], [b"\0" * 64], ["text"])  # type: ignore[operator]
    assert verify([], [], []) == b""  # type: ignore[operator]


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
    for verify in IMPLEMENTATIONS:
        assert list(verify(keys, sigs, msgs)) == expected


@pytest.mark.skipif(not ed25519.NATIVE, reason="the C extension is not built")
def test_native_call_lets_other_threads_run() -> None:
    # The whole point of the extension: the GIL is free while a batch is verified. A thread
    # that needs the GIL must finish while one long native call is still running.
    message = os.urandom(200)
    signature = KEYS[0].sign(message)
    n = 4000
    started, other_done = threading.Event(), threading.Event()
    finished_first: list[str] = []

    def other() -> None:
        started.wait(10)
        sum(range(1000))  # needs the GIL
        finished_first.append("other")
        other_done.set()

    thread = threading.Thread(target=other)
    thread.start()
    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)  # no forced switches: only a released GIL lets "other" run
    try:
        started.set()
        result = ed25519.verify_many([RAW[0]] * n, [signature] * n, [message] * n)
        finished_first.append("batch")
    finally:
        sys.setswitchinterval(old)
    thread.join(10)
    assert result == b"\x01" * n
    assert other_done.is_set()
    assert finished_first[0] == "other"
