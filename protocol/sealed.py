"""Sealed tokens: settlement card numbers encrypted to the collector's public key (docs/architecture.md §6).

Theory of operation
-------------------
The agent knows only the collector's X25519 public key; it must be able to encrypt offline
and must never keep the clear number. So each token is an ECIES-style "sealed box":

1. make a fresh ephemeral X25519 key pair ``(e, E)``;
2. ``shared = X25519(e, R)`` with the recipient's public key ``R`` (RFC 7748 §6.1); an
   all-zero result (a low-order ``R``) is refused;
3. ``okm = HKDF-SHA256(ikm=shared, salt=E ‖ R, info=INFO, length=44)`` (RFC 5869), split into a
   32-byte ChaCha20-Poly1305 key and a 12-byte nonce (RFC 8439); the key is unique per token,
   so the derived nonce is never reused;
4. ``ct = ChaCha20-Poly1305(key).encrypt(nonce, plaintext, aad=context)``;
5. ``token = "sg1." + base64url_nopad(E ‖ ct)`` (ct ends with the 16-byte tag).

``context`` binds the token to where it is used (for card changes:
:func:`card_change_context`), so a token copied into another record does not open.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_PLAINTEXT",
    "SEALED_TOKEN_RE",
    "TOKEN_PREFIX",
    "SealedError",
    "card_change_context",
    "generate_keypair",
    "open_sealed",
    "seal",
]

TOKEN_PREFIX = "sg1."  # noqa: S105 - a format tag, not a secret
INFO = b"settleguard/v1 sealed"
#: Largest plaintext we seal: account numbers are tiny; the limit keeps tokens bounded.
MAX_PLAINTEXT = 1024
_KEY_LEN = 32
_TAG_LEN = 16
# 32-byte ephemeral key + at least one byte + 16-byte tag = 49 bytes = 66 base64url chars;
# at most 32 + 1024 + 16 = 1072 bytes = 1430 chars.
SEALED_TOKEN_RE = re.compile(r"sg1\.[A-Za-z0-9_-]{66,1430}")
_RAW = serialization.Encoding.Raw


class SealedError(RemoteProtocolError):
    """A sealed token is malformed, was made for another key or context, or was altered."""


def card_change_context(change_id: str) -> bytes:
    """Return the ``context`` that seals the new account number of card change ``change_id``.

    :param change_id: the :class:`~protocol.records.CardChange` ``change_id``
    """
    return b"settleguard/v1 card_change " + change_id.encode("utf-8")


def generate_keypair() -> tuple[bytes, bytes]:
    """Make a new X25519 key pair for the collector.

    :returns: ``(raw 32-byte private key, raw 32-byte public key)``
    """
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(
        _RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw_private, private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> tuple[bytes, bytes]:
    if shared == bytes(_KEY_LEN):
        raise SealedError("low-order public key (all-zero shared secret)")
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=ephemeral + recipient, info=INFO)
    material = okm.derive(shared)
    return material[:32], material[32:]


def _exchange(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:  # OpenSSL refuses low-order points itself on some versions
        raise SealedError(f"key agreement failed: {exc}") from None


def seal(recipient_public: bytes, plaintext: bytes, *, context: bytes) -> str:
    """Encrypt ``plaintext`` so that only the holder of the recipient's private key reads it.

    :param recipient_public: the collector's raw 32-byte X25519 public key
    :param plaintext: 1 to :data:`MAX_PLAINTEXT` bytes, e.g. an account number in ASCII
    :param context: bytes bound as associated data; the same value is needed to open
    :raises LocalProtocolError: for a bad key length or plaintext size
    :raises SealedError: when the recipient key is a low-order point
    """
    if not isinstance(recipient_public, bytes) or len(recipient_public) != _KEY_LEN:
        raise LocalProtocolError("recipient public key must be 32 raw bytes")
    if not isinstance(plaintext, bytes) or not 1 <= len(plaintext) <= MAX_PLAINTEXT:
        raise LocalProtocolError(f"plaintext must be 1 to {MAX_PLAINTEXT} bytes")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    shared = _exchange(ephemeral, recipient_public)
    key, nonce = _derive(shared, ephemeral_public, recipient_public)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, bytes(context))
    encoded = base64.urlsafe_b64encode(ephemeral_public + ciphertext).rstrip(b"=")
    return TOKEN_PREFIX + encoded.decode("ascii")


def _decode_token(token: str) -> bytes:
    if not isinstance(token, str) or not SEALED_TOKEN_RE.fullmatch(token):
        raise SealedError("not a sealed token (expected sg1.<base64url>, bounded length)")
    text = token[len(TOKEN_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealedError("sealed token is not valid base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise SealedError("sealed token base64url is not canonical")
    if len(raw) < _KEY_LEN + 1 + _TAG_LEN:
        raise SealedError("sealed token too short")
    return raw


def open_sealed(recipient_private: bytes, token: str, *, context: bytes) -> bytes:
    """Decrypt a token made by :func:`seal`.

    :param recipient_private: the collector's raw 32-byte X25519 private key
    :param token: the ``sg1.…`` text
    :param context: the same context bytes given to :func:`seal`
    :raises LocalProtocolError: for a bad private key length
    :raises SealedError: if the token is malformed, for another key or context, or altered
    """
    if not isinstance(recipient_private, bytes) or len(recipient_private) != _KEY_LEN:
        raise LocalProtocolError("recipient private key must be 32 raw bytes")
    raw = _decode_token(token)
    ephemeral_public, ciphertext = raw[:_KEY_LEN], raw[_KEY_LEN:]
    private = X25519PrivateKey.from_private_bytes(recipient_private)
    recipient_public = private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    shared = _exchange(private, ephemeral_public)
    key, nonce = _derive(shared, ephemeral_public, recipient_public)
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, bytes(context))
    except InvalidTag:
        raise SealedError(
            "sealed token does not open: wrong key, wrong context or altered"
        ) from None
