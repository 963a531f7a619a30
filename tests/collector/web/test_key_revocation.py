"""Rotate-and-revoke from the dashboard and the API: an agent's retired keys revoked at once."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.store import Store
from settleguard.collector.web.tokens import create_token

from tests.collector.web.conftest import csrf_token


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _rotated_agent(db: Store, agent_id: str) -> str:
    """An approved agent that rotated once; the retired key's id."""
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    token = enrollment.issue_token(db, "M100", ttl_s=600)
    enrollment.enroll(db, token=token, public_key=_raw(old), agent_id=agent_id)
    enrollment.approve(db, agent_id, actor="test")
    signature = old.sign(enrollment.rotation_message(agent_id, _raw(new)))
    enrollment.rotate_key(db, agent_id, _raw(new), signature)
    return enrollment.key_id_of(_raw(old))


def _revoked_at(db: Store, key_id: str) -> object:
    row = db.query_one("SELECT revoked_at FROM agent_keys WHERE key_id = ?", (key_id,))
    assert row is not None
    return row["revoked_at"]


def test_dashboard_offers_and_runs_revoke_retired_keys(
    as_role: Callable[[str | None], FlaskClient], db: Store
) -> None:
    old_key = _rotated_agent(db, "agent-d")
    client = as_role("operator")
    page = client.get("/agents").get_data(as_text=True)
    assert "/agents/agent-d/revoke-keys" in page
    response = client.post("/agents/agent-d/revoke-keys", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert _revoked_at(db, old_key) is not None
    assert "/agents/agent-d/revoke-keys" not in client.get("/agents").get_data(as_text=True)


def test_api_revoke_keys_with_a_token(web_app: Flask, db: Store) -> None:
    old_key = _rotated_agent(db, "agent-e")
    operator = {"Authorization": "Bearer " + create_token(db, "operator", actor="t")}
    viewer = {"Authorization": "Bearer " + create_token(db, "viewer", actor="t")}
    client = web_app.test_client()
    assert client.post("/api/v1/agents/agent-e/revoke-keys", headers=viewer).status_code == 403
    assert _revoked_at(db, old_key) is None
    answer = client.post("/api/v1/agents/agent-e/revoke-keys", headers=operator).get_json()
    assert answer["revoked_keys"] == [old_key] and answer["agent_id"] == "agent-e"
    assert _revoked_at(db, old_key) is not None
    missing = client.post("/api/v1/agents/nobody/revoke-keys", headers=operator)
    assert missing.status_code == 404
