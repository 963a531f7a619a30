"""Agent keys at the collector: weak keys refused, retired keys bounded, rotate-and-revoke."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from collector import enrollment
from collector.app import get_store
from collector.enrollment import rotation_message

P = 2**255 - 19
ORDER_8_Y = 0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7
WEAK_KEYS = {
    "identity": (1).to_bytes(32, "little"),
    "order 2": (P - 1).to_bytes(32, "little"),
    "order 4": bytes(32),
    "order 8": ORDER_8_Y.to_bytes(32, "little"),
    "order 8, other x": (ORDER_8_Y | 1 << 255).to_bytes(32, "little"),
    "identity, non-canonical (p + 1)": (P + 1).to_bytes(32, "little"),
    "non-canonical (2^255 - 1)": (2**255 - 1).to_bytes(32, "little"),
}


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("name", WEAK_KEYS)
def test_enrollment_refuses_small_order_and_non_canonical_keys(
    app: Flask, client: FlaskClient, name: str
) -> None:
    token = enrollment.issue_token(get_store(app), "M100", ttl_s=600)
    body = {"token": token, "agent_id": "agent-w", "public_key": _b64(WEAK_KEYS[name])}
    response = client.post("/api/v1/enroll", json=body)
    assert response.status_code == 400, response.get_json()
    assert "public key refused" in response.get_json()["error"]
    assert get_store(app).count("agents") == 0


@pytest.mark.parametrize("name", WEAK_KEYS)
def test_rotation_refuses_small_order_and_non_canonical_keys(
    app: Flask, client: FlaskClient, name: str
) -> None:
    store = get_store(app)
    old = Ed25519PrivateKey.generate()
    token = enrollment.issue_token(store, "M100", ttl_s=600)
    enrollment.enroll(store, token=token, public_key=_raw(old), agent_id="agent-r")
    enrollment.approve(store, "agent-r", actor="test")
    weak = WEAK_KEYS[name]
    body = {
        "public_key": _b64(weak),
        "signature": _b64(old.sign(rotation_message("agent-r", weak))),
    }
    response = client.post("/api/v1/agents/agent-r/rotate", json=body)
    assert response.status_code == 400, response.get_json()
    assert "public key refused" in response.get_json()["error"]
    assert store.query("SELECT key_id, status FROM agent_keys") == [
        {"key_id": enrollment.key_id_of(_raw(old)), "status": "active"}
    ]
