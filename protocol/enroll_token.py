"""Enrollment tokens bound to the collector's sealing key, and which hosts count as loopback.

A token is ``<secret>.<fingerprint>``: the secret is what the collector checks (only its hash is
stored); the fingerprint names the X25519 sealing public key the collector holds. The agent
compares it with the key in the enrollment answer, so a party between the agent and the
collector cannot hand the agent its own sealing key without the agent noticing.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress

SEPARATOR = "."
FINGERPRINT_DOMAIN = b"settleguard/v1 sealing key\n"


def key_fingerprint(sealing_public: bytes) -> str:
    """A short name for a sealing public key: 96 bits of SHA-256, base64url, 16 characters."""
    digest = hashlib.sha256(FINGERPRINT_DOMAIN + sealing_public).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def bind_token(secret: str, sealing_public: bytes) -> str:
    """The token a technician types: ``secret`` with the key's fingerprint appended."""
    if SEPARATOR in secret:
        raise ValueError("a token secret must not contain '.'")
    return f"{secret}{SEPARATOR}{key_fingerprint(sealing_public)}"


def token_fingerprint(token: str) -> str | None:
    """The fingerprint a token carries, or ``None`` for a token without one."""
    _, separator, fingerprint = token.rpartition(SEPARATOR)
    return fingerprint if separator and len(fingerprint) == 16 else None


def is_loopback(host: str) -> bool:
    """``True`` for ``localhost`` and addresses in 127.0.0.0/8 or ``::1`` (brackets allowed).

    Plain http to the collector and a plain-TCP broker listener are acceptable only there.
    """
    bare = host.strip("[]").lower()
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False
