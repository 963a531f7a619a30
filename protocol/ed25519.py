"""Ed25519 verification of many signatures at once (issue 4: ingest throughput).

Theory of operation
-------------------
:func:`verify_many` answers, for each ``(raw public key, signature, message)``, whether the
signature is valid: Ed25519 as RFC 8032 §5.1.7 defines it, computed by OpenSSL in both
implementations below, so they agree (``tests/protocol/test_ed25519_batch.py`` checks that on
valid, mutated and malformed inputs).

* **Native** (:data:`NATIVE` is true): ``protocol._ed25519_batch``, a small C extension built
  at install time (``setup.py``), loops over the whole list with the GIL released **once**.
  A worker's writer thread then runs its Python while the batch is verified, instead of
  trading the GIL with the verifying thread after every signature (each ``cryptography``
  verify releases and re-takes it).
* **Fallback**: ``cryptography``'s :class:`Ed25519PublicKey`, one call per item. Used when the
  extension was not built (no C compiler or OpenSSL headers on the machine).

This is not "batch verification" in the cryptographic sense (one combined equation for many
signatures): every signature is checked on its own, exactly as a single verify would.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

try:
    from protocol import _ed25519_batch  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - exercised by forcing the fallback in the tests
    _ed25519_batch = None

__all__ = ["NATIVE", "verify_many", "verify_many_fallback"]

#: True when the C extension is built and :func:`verify_many` uses it.
NATIVE: bool = _ed25519_batch is not None


def verify_many_fallback(
    keys: Sequence[bytes], signatures: Sequence[bytes], messages: Sequence[bytes]
) -> bytes:
    """:func:`verify_many` with ``cryptography``, one signature per call."""
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


def verify_many(
    keys: Sequence[bytes], signatures: Sequence[bytes], messages: Sequence[bytes]
) -> bytes:
    """Verify ``signatures[i]`` over ``messages[i]`` by the 32-byte raw key ``keys[i]``.

    :returns: one byte per item: 1 if the signature is valid, else 0 (also for a key or
        signature of the wrong length)
    :raises ValueError: if the three sequences differ in length
    :raises TypeError: if an item is not ``bytes``
    """
    if _ed25519_batch is not None:
        return _ed25519_batch.verify_many(keys, signatures, messages)  # type: ignore[no-any-return]
    return verify_many_fallback(keys, signatures, messages)
