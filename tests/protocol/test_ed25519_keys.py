"""Public keys that must never be registered: small-order points and non-canonical encodings."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from settleguard.protocol.ed25519 import _SMALL_ORDER_Y, public_key_problem, verify_many

P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
IDENTITY = (0, 1)


def _x_of(y: int, sign: int) -> int:
    """x for y on edwards25519 (RFC 8032 §5.1.3 steps 2-4), with the given sign bit."""
    xx = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    assert (x * x - xx) % P == 0
    return P - x if x and (x & 1) != sign else x


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2
    return ((x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P,
            (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)  # fmt: skip


def _order(point: tuple[int, int]) -> int:
    total, n = point, 1
    while total != IDENTITY:
        total, n = _add(total, point), n + 1
        assert n <= 8, "not a small-order point"
    return n


def _encode(y: int, sign: int) -> bytes:
    return (y | sign << 255).to_bytes(32, "little")


SMALL_ORDER = [_encode(y, s) for y in sorted(_SMALL_ORDER_Y) for s in (0, 1)]
NON_CANONICAL = [_encode(y, s) for y in range(P, 2**255) for s in (0, 1)]


def test_the_listed_y_values_are_the_eight_small_order_points() -> None:
    points = {(_x_of(y, s), y) for y in _SMALL_ORDER_Y for s in (0, 1)}
    assert len(points) == 8  # x = 0 for y = ±1: both signs give the same point
    assert sorted(_order(p) for p in points) == [1, 2, 4, 4, 8, 8, 8, 8]


@pytest.mark.parametrize("raw", SMALL_ORDER, ids=lambda r: r.hex()[:8] + r.hex()[-2:])
def test_small_order_keys_are_refused(raw: bytes) -> None:
    assert "small order" in (public_key_problem(raw) or "")


@pytest.mark.parametrize("raw", NON_CANONICAL, ids=lambda r: r.hex()[:4] + r.hex()[-2:])
def test_non_canonical_keys_are_refused(raw: bytes) -> None:
    assert "non-canonical" in (public_key_problem(raw) or "")


def test_real_keys_and_lengths() -> None:
    for _ in range(50):
        raw = (
            Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        assert public_key_problem(raw) is None
    assert public_key_problem(b"\x01" * 31) == "must be 32 bytes, not 31"


def test_why_it_matters_a_forged_signature_verifies_under_the_identity_key() -> None:
    identity = _encode(1, 0)
    forged = identity + bytes(32)  # R = identity, S = 0
    messages = [b"any record", b"another record"]
    assert verify_many([identity] * 2, [forged] * 2, messages) == b"\x01\x01"
