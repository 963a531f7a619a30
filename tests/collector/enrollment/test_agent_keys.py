"""Agent keys at the collector: weak keys refused, retired keys bounded, rotate-and-revoke."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from settleguard.collector.cli import collector
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.service import rotation_message
from settleguard.collector.ingest.verify import IncomingMessage, Keyring, ingest_batch
from settleguard.collector.store import Store
from settleguard.collector.web.db import get_store

from tests.helpers.records import TestAgent, batch

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


# --- a retired key is bounded: its last seq at rotation, a grace period, revocation ----------


def _ingest(store: Store, *signed: tuple[Ed25519PrivateKey, int]) -> list[tuple[str, str | None]]:
    """Ingest one batch record per ``(key, seq)`` from agent-a; each ack's status and reason."""
    messages = [
        IncomingMessage(
            "sg/v1/a/agent-a/rec", TestAgent("agent-a", key, "").seal(batch(batch_no=seq), seq)
        )
        for key, seq in signed
    ]
    return [(a.status, a.reason) for _, a in ingest_batch(store, Keyring(store), messages)]


def _approved_agent(store: Store) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    token = enrollment.issue_token(store, "M100", ttl_s=600)
    enrollment.enroll(store, token=token, public_key=_raw(key), agent_id="agent-a")
    enrollment.approve(store, "agent-a", actor="test")
    return key


def _rotate(store: Store, old: Ed25519PrivateKey, *, grace_s: int) -> Ed25519PrivateKey:
    new = Ed25519PrivateKey.generate()
    signature = old.sign(rotation_message("agent-a", _raw(new)))
    enrollment.rotate_key(store, "agent-a", _raw(new), signature, grace_s=grace_s)
    return new


def test_a_retired_key_signs_nothing_beyond_the_last_seq_seen_at_rotation(store: Store) -> None:
    old = _approved_agent(store)
    assert _ingest(store, (old, 1), (old, 2), (old, 3)) == [("accepted", None)] * 3
    new = _rotate(store, old, grace_s=0)
    acks = _ingest(store, (old, 3), (old, 4), (old, 10**6), (new, 4))
    assert acks[0] == ("duplicate", None)  # a re-sent record it signed before: still verifies
    assert [a[0] for a in acks[1:3]] == ["rejected", "rejected"]
    assert all("retired" in (a[1] or "") for a in acks[1:3])
    assert acks[3] == ("accepted", None)
    refused = store.query("SELECT reason, detail FROM rejected_messages ORDER BY id")
    assert [r["reason"] for r in refused] == ["retired_key", "retired_key"]
    assert "no seq above 3" in refused[0]["detail"]


def test_grace_period_takes_the_outbox_then_revoke_key_ends_it(
    app: Flask, runner: FlaskCliRunner
) -> None:
    store = get_store(app)
    old = _approved_agent(store)
    assert _ingest(store, (old, 1)) == [("accepted", None)]
    new = _rotate(store, old, grace_s=3600)
    # records the agent signed before rotating, still in its outbox: inside the grace period
    assert _ingest(store, (old, 2), (new, 3)) == [("accepted", None)] * 2
    result = runner.invoke(collector, ["agents", "revoke-key", "agent-a"])
    assert result.exit_code == 0, result.output
    assert f"revoked {enrollment.key_id_of(_raw(old))} of agent-a" in result.output
    assert [a[0] for a in _ingest(store, (old, 4), (new, 5))] == ["rejected", "accepted"]
    assert _ingest(store, (old, 1)) == [("duplicate", None)]
    again = runner.invoke(collector, ["agents", "revoke-key", "agent-a"])
    assert again.exit_code == 1 and again.output.startswith("error: ")
    audit = store.query("SELECT actor, action FROM audit_log WHERE action = 'agent.revoke_keys'")
    assert len(audit) == 2 and audit[0]["actor"] == "cli"


def test_rotation_over_http_uses_the_configured_grace_period(
    app: Flask, client: FlaskClient
) -> None:
    store = get_store(app)
    old = _approved_agent(store)
    app.config["RETIRED_KEY_GRACE_S"] = 0
    new = Ed25519PrivateKey.generate()
    body = {"public_key": _b64(_raw(new)),
            "signature": _b64(old.sign(rotation_message("agent-a", _raw(new))))}  # fmt: skip
    assert client.post("/api/v1/agents/agent-a/rotate", json=body).status_code == 200
    assert [a[0] for a in _ingest(store, (old, 1), (new, 1))] == ["rejected", "accepted"]


def test_upgrade_caps_keys_retired_before_at_the_agents_last_seq(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from settleguard.collector.store import open_store, schema

    store = open_store(empty_database_url)
    try:
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:6])
        store.migrate()
        with store.transaction() as tx:
            tx.insert("merchants", {"merchant_id": "M1"}, returning="merchant_id")
            tx.insert("agents", {"agent_id": "agent-u", "merchant_id": "M1", "status": "approved",
                                 "key_id": "k2", "public_key": b"2", "last_seq": 41},
                      returning="agent_id")  # fmt: skip
            for key_id, status in (("k1", "retired"), ("k2", "active")):
                tx.insert("agent_keys", {"key_id": key_id, "agent_id": "agent-u",
                                         "public_key": key_id.encode(), "status": status},
                          returning="key_id")  # fmt: skip
        monkeypatch.undo()
        assert 7 in store.migrate()
        rows = store.query("SELECT key_id, max_seq, grace_until FROM agent_keys ORDER BY key_id")
        assert rows == [{"key_id": "k1", "max_seq": 41, "grace_until": None},
                        {"key_id": "k2", "max_seq": None, "grace_until": None}]  # fmt: skip
    finally:
        store.close()
