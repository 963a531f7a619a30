"""Ed25519: verify many signatures at once, and check a public key before it is registered.

:func:`verify_many` answers, for each ``(raw public key, signature, message)``, whether the
signature is valid: Ed25519 as RFC 8032 §5.1.7 defines it, computed by OpenSSL through
``cryptography``. Every signature is checked on its own, exactly as a single verify would;
this is not "batch verification" in the cryptographic sense (one combined equation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import LocalProtocolError

__all__ = ["key_id_for", "public_key_problem", "verify_many"]


def verify_many(
    keys: Sequence[bytes], signatures: Sequence[bytes], messages: Sequence[bytes]
) -> bytes:
    """Verify ``signatures[i]`` over ``messages[i]`` by the 32-byte raw key ``keys[i]``.

    Each distinct key is parsed once per call.

    :returns: one byte per item: 1 if the signature is valid, else 0 (also for a key or
        signature of the wrong length, or a key that is not a point)
    :raises ValueError: if the three sequences differ in length
    :raises TypeError: if an item is not ``bytes``
    """
    if not len(keys) == len(signatures) == len(messages):
        raise ValueError("keys, signatures and messages differ in length")
    parsed: dict[bytes, Ed25519PublicKey | None] = {}
    out = bytearray(len(keys))
    for i, (key, signature, message) in enumerate(zip(keys, signatures, messages, strict=True)):
        for name, value in (("keys", key), ("signatures", signature), ("messages", message)):
            if type(value) is not bytes:
                raise TypeError(f"{name}[{i}] must be bytes, not {type(value).__name__}")
        if key in parsed:
            public = parsed[key]
        else:
            try:
                public = Ed25519PublicKey.from_public_bytes(key)
            except ValueError:
                public = None
            parsed[key] = public
        if public is None or len(signature) != 64:
            continue
        try:
            public.verify(signature, message)
        except InvalidSignature:
            continue
        out[i] = 1
    return bytes(out)


#: The field prime of Curve25519/Ed25519, 2^255 - 19 (RFC 8032 §5.1).
_P = 2**255 - 19

#: The y coordinates of the eight points of small order (1, 2, 4 and 8) on edwards25519: the
#: identity (y = 1), the point of order 2 (y = -1), the two points of order 4 (y = 0, x = ±√-1)
#: and the four points of order 8 (two values of y, each with both signs of x). The same eight
#: points are listed in Chalkias, Garillot and Nikolaenko, "Taming the many EdDSAs" (SSR 2020)
#: and refused by libsodium's ``ge25519_has_small_order``; each y below was checked to give a
#: point whose multiple by its order is the identity (tests/protocol/test_ed25519_keys.py).
_SMALL_ORDER_Y = frozenset(
    {
        1,
        _P - 1,
        0,
        0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,
        _P - 0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,
    }
)


def public_key_problem(raw: bytes) -> str | None:
    """Why a raw Ed25519 public key must not be registered, or ``None`` when it is fine.

    Refused: a length other than 32, a non-canonical encoding (y >= p, which RFC 8032 §5.1.3
    step 1 rejects but some verifiers reduce mod p) and any encoding of a point of small order.
    Under a small-order key ``[S]B = R + [k]A`` holds for forged signatures whatever the
    message: with the identity as key, ``R`` = identity and ``S`` = 0 verify for every message.
    Both signs of x are refused for each small-order y (x = 0 with the sign bit set is itself
    a non-canonical encoding).

    :param raw: the 32 bytes as the agent sent them
    """
    if len(raw) != 32:
        return f"must be 32 bytes, not {len(raw)}"
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        return "non-canonical encoding (y >= 2^255 - 19)"
    if y in _SMALL_ORDER_Y:
        return "a point of small order (a signature under it can be forged)"
    return None


def key_id_for(public_key: Ed25519PublicKey | bytes) -> str:
    """Return the key id: ``"k"`` + the first 16 hex digits of SHA-256(raw public key).

    :param public_key: an Ed25519 public key object or its raw 32 bytes
    :raises LocalProtocolError: if raw bytes are not 32 long
    """
    if isinstance(public_key, Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = bytes(public_key)
        if len(raw) != 32:
            raise LocalProtocolError("an Ed25519 public key is 32 raw bytes")
    return "k" + hashlib.sha256(raw).hexdigest()[:16]
