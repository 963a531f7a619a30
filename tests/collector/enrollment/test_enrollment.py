"""Enrollment over HTTP, the agents CLI, and key rotation signed by the previous key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from settleguard.collector.cli import collector
from settleguard.collector.enrollment import broker
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.keys import init_keys
from settleguard.collector.enrollment.service import rotation_message
from settleguard.collector.ingest.verify import IncomingMessage, Keyring, ingest_batch
from settleguard.collector.web.db import get_store
from settleguard.collector.web.tokens import create_token
from settleguard.protocol.enroll_token import key_fingerprint, token_fingerprint

from tests.helpers.records import TestAgent, batch, make_agent


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _basic(username: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def _token(runner: FlaskCliRunner) -> str:
    result = runner.invoke(collector, ["agents", "token", "--merchant", "M100"])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _enroll(client: FlaskClient, token: str, key: Ed25519PrivateKey, agent_id: str):  # type: ignore[no-untyped-def]
    body = {
        "token": token,
        "agent_id": agent_id,
        "public_key": base64.b64encode(_raw(key)).decode(),
    }
    return client.post("/api/v1/enroll", json=body)


def test_enroll_approve_list_revoke(client: FlaskClient, runner: FlaskCliRunner) -> None:
    key = Ed25519PrivateKey.generate()
    token = _token(runner)
    response = _enroll(client, token, key, "agent-a")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "pending" and body["mqtt"]["username"] == "agent-a"
    assert len(base64.b64decode(body["collector_public_key"])) == 32
    again = _enroll(client, token, Ed25519PrivateKey.generate(), "agent-b")
    assert again.status_code == 400 and "already used" in again.get_json()["error"]
    approved = runner.invoke(collector, ["agents", "approve", "agent-a"])
    assert approved.exit_code == 2  # no broker-config output: stored, broker not updated
    assert "approved agent-a in the database only" in approved.output
    assert "broker-config --out DIR" in approved.output
    listed = json.loads(runner.invoke(collector, ["agents", "list", "--json"]).stdout)["agents"]
    assert [(r["agent_id"], r["status"]) for r in listed] == [("agent-a", "approved")]
    own = _basic("agent-a", body["mqtt"]["password"])
    status = client.get("/api/v1/agents/agent-a/status", headers=own)
    assert status.get_json()["status"] == "approved"
    assert runner.invoke(collector, ["agents", "revoke", "agent-a"]).exit_code == 2
    status = client.get("/api/v1/agents/agent-a/status", headers=own)
    assert status.get_json()["status"] == "revoked"
    missing = runner.invoke(collector, ["agents", "approve", "nobody"])
    assert missing.exit_code == 1 and "no agent" in missing.output
    lines = get_store(client.application).query(
        "SELECT action, target, detail FROM audit_log WHERE action IN"
        " ('agent.approved', 'agent.revoked') ORDER BY id"
    )
    assert [(r["action"], r["target"]) for r in lines] == [
        ("agent.approved", "agent:agent-a"), ("agent.revoked", "agent:agent-a")]  # fmt: skip
    changes = [json.loads(r["detail"]) for r in lines]
    assert [(c["before"]["status"], c["after"]["status"]) for c in changes] == [
        ("pending", "approved"), ("approved", "revoked")]  # fmt: skip


def test_bad_requests_say_why(client: FlaskClient, runner: FlaskCliRunner) -> None:
    assert "JSON object" in client.post("/api/v1/enroll", data=b"x").get_json()["error"]
    bad_key = client.post("/api/v1/enroll", json={"token": _token(runner), "public_key": "AAAA"})
    assert "32-byte" in bad_key.get_json()["error"]
    bad_id = _enroll(client, _token(runner), Ed25519PrivateKey.generate(), "Collector!")
    assert "not allowed" in bad_id.get_json()["error"]


def test_rotation_needs_the_previous_key(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    old, new, thief = (Ed25519PrivateKey.generate() for _ in range(3))
    _enroll(client, _token(runner), old, "agent-a")
    runner.invoke(collector, ["agents", "approve", "agent-a"])
    message = rotation_message("agent-a", _raw(new))
    forged = {"public_key": base64.b64encode(_raw(new)).decode(),
              "signature": base64.b64encode(thief.sign(message)).decode()}  # fmt: skip
    assert client.post("/api/v1/agents/agent-a/rotate", json=forged).status_code == 400
    good = dict(forged, signature=base64.b64encode(old.sign(message)).decode())
    response = client.post("/api/v1/agents/agent-a/rotate", json=good)
    assert response.status_code == 200, response.get_json()
    store = get_store(app)
    acks = ingest_batch(
        store,
        Keyring(store),
        [
            IncomingMessage("sg/v1/a/agent-a/rec", TestAgent("agent-a", old, "").seal(batch(), 1)),
            IncomingMessage("sg/v1/a/agent-a/rec",
                            TestAgent("agent-a", new, "").seal(batch(batch_no=2), 2)),
        ],
    )  # fmt: skip
    # records the old key signed before rotating (still in the outbox) remain valid
    assert [a.status for _, a in acks] == ["accepted", "accepted"]


def test_collector_broker_user_name_is_reserved(app: Flask, client: FlaskClient) -> None:
    app.config["MQTT_USERNAME"] = "ingest-svc"
    store = get_store(app)
    for name in ("ingest-svc", "collector"):
        token = enrollment.issue_token(store, "M100", ttl_s=600)
        answer = _enroll(client, token, Ed25519PrivateKey.generate(), name)
        assert answer.status_code == 400 and "reserved" in answer.get_json()["error"]
    assert store.query("SELECT agent_id FROM agents") == []


def test_password_file_never_lets_an_agent_shadow_the_collector(tmp_path: Path, app: Flask) -> None:
    """An approved agent stored under the collector's user name (e.g. enrolled before the
    name was reserved) is left out; the collector's own line survives the rewrite."""
    store = get_store(app)
    files = broker.write_broker_config(
        tmp_path / "b", collector_user="ingest-svc",
        collector_password_hash=broker.hash_password("collector-pw"),
    )  # fmt: skip
    make_agent(store, "agent-a")
    thief = make_agent(store, "ingest-svc")  # enrolled while the collector used another name
    update = enrollment.sync_broker_passwords(
        store, files.password_file, collector_user="ingest-svc"
    )
    lines = dict(line.split(":", 1) for line in files.password_file.read_text().splitlines())
    assert sorted(lines) == ["agent-a", "ingest-svc"] and update.written
    assert broker.verify_password("collector-pw", lines["ingest-svc"])
    assert not broker.verify_password(thief.password, lines["ingest-svc"])
    with pytest.raises(ValueError, match="collector's broker user name"):
        broker.write_password_file(files.password_file, ("c", "$7$x"), {"c": "$7$y"})


def test_cli_token_names_the_collectors_sealing_key(app: Flask, runner: FlaskCliRunner) -> None:
    token = _token(runner)
    keys, _ = init_keys(Path(app.config["KEYS_DIR"]))
    assert token_fingerprint(token) == key_fingerprint(keys.sealing_public)


def test_dashboard_approval_reports_the_broker_step(app: Flask) -> None:
    from settleguard.collector.web.actions import set_agent_status

    store = get_store(app)
    make_agent(store, "agent-w", approve=False)
    answer = set_agent_status(app, store, "agent-w", "approved", actor="alice")
    assert answer["status"] == "approved"
    assert answer["broker"]["written"] is False and answer["broker"]["reloaded"] is False
    assert "broker-config --out DIR" in answer["broker"]["missing"]


def test_agent_status_is_shown_only_to_the_agent_and_signed_in_users(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    """Unknown ids and ids the caller may not see get the same answer: no enumeration."""
    body_a = _enroll(client, _token(runner), Ed25519PrivateKey.generate(), "agent-a").get_json()
    body_b = _enroll(client, _token(runner), Ed25519PrivateKey.generate(), "agent-b").get_json()
    store = get_store(client.application)
    viewer = {"Authorization": "Bearer " + create_token(store, "viewer", actor="t")}
    allowed = [_basic("agent-a", body_a["mqtt"]["password"]), viewer]
    for headers in allowed:
        answer = client.get("/api/v1/agents/agent-a/status", headers=headers)
        assert answer.status_code == 200 and answer.get_json()["status"] == "pending"
    unknown = client.get("/api/v1/agents/agent-z/status", headers=allowed[0])
    assert unknown.status_code == 404
    refused = [
        {},
        _basic("agent-a", "wrong"),
        _basic("agent-a", ""),
        _basic("agent-b", body_b["mqtt"]["password"]),  # another agent's own credentials
        _basic("agent-z", body_a["mqtt"]["password"]),
        {"Authorization": "Bearer sgt_bad"},
        {"Authorization": "Basic !!!"},
    ]
    for headers in refused:
        for agent_id in ("agent-a", "agent-z"):
            answer = client.get(f"/api/v1/agents/{agent_id}/status", headers=headers)
            assert (answer.status_code, answer.get_data()) == (404, unknown.get_data()), headers


def test_a_pending_agent_learns_its_approval_from_the_collector_over_http(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    """The agent's status poll, authenticated with its broker password, against the real app."""
    from settleguard.agent import enroll as agent_enroll
    from settleguard.agent.home import agent_home

    from settleguard.demo.services import start_web

    web = start_web(app)
    try:
        home = agent_home(tmp_path / "agent-home")
        state = agent_enroll.enroll(home, web.url, _token(runner))
        assert state["status"] == "pending"
        assert agent_enroll.retry_pending(home)["status"] == "pending"  # type: ignore[index]
        result = runner.invoke(collector, ["agents", "approve", state["agent_id"]])
        assert result.exit_code == 2, result.output  # approved; no broker files in this app
        assert agent_enroll.retry_pending(home)["status"] == "approved"  # type: ignore[index]
    finally:
        web.stop()
