"""Security promises end to end.

What other suites already prove is referenced in docs/reliability.md, not repeated here:
anonymous/wrong-password MQTT refused, agent A cannot publish as B or read B's acks, revoked
agent cut off at the broker (tests/collector/enrollment/test_broker.py); viewer 403 / anonymous 401 on the
listed actions (tests/collector/web/test_permissions.py); SMPP password never logged
(tests/collector/alerts/test_smpp_gateway.py). This file adds the end-to-end and
whole-surface versions.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from settleguard.agent.cli import agent as agent_cli
from settleguard.agent.config import SyncSettings
from settleguard.agent.home import agent_home
from settleguard.agent.keys import load_or_create_key
from settleguard.agent.outbox import Outbox
from settleguard.agent.recorder import append_record
from settleguard.agent.sync import BrokerTarget, SyncLink
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.broker import mosquitto_binary
from settleguard.collector.enrollment.keys import init_keys
from settleguard.collector.ingest.verify import IncomingMessage, Keyring, ingest_batch
from settleguard.collector.ingest.worker import IngestWorker
from settleguard.collector.store import Store, open_store
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import close_store, get_store
from settleguard.collector.web.users import hash_password
from settleguard.protocol.envelope import seal_envelope

from tests.helpers.mosquitto import running_broker
from tests.helpers.records import batch, make_agent


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    db.migrate()
    return db


def _reasons(store: Store) -> list[str]:
    return [r["reason"] for r in store.query("SELECT reason FROM rejected_messages ORDER BY id")]


# --- MQTT + agent: revoked key refused, the agent learns why, and no secret is logged ---------


@pytest.mark.mosquitto
@pytest.mark.timeout(90)
def test_revoked_key_refused_agent_status_says_why_and_no_secret_logged(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed")
    caplog.set_level(logging.DEBUG)
    home = agent_home(tmp_path / "agent")
    key = load_or_create_key(home)
    keys, _ = init_keys(tmp_path / "collector-keys")
    token = enrollment.issue_token(store, "M100", ttl_s=600)
    enrolled = enrollment.enroll(store, token=token, public_key=key.public_raw,
                                 agent_id=key.agent_id)  # fmt: skip
    enrollment.approve(store, key.agent_id, actor="test")
    password = enrolled.broker_password
    with running_broker(tmp_path / "broker", {key.agent_id: password}) as b:
        worker = IngestWorker(store, {"host": "127.0.0.1", "port": b.port,
                                      "username": b.collector[0], "password": b.collector[1]},
                              keys=keys)  # fmt: skip
        worker.start()
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        box = Outbox(home.outbox_path)
        target = BrokerTarget.from_url(f"mqtt://127.0.0.1:{b.port}", username=key.agent_id,
                                       password=password)  # fmt: skip
        settings = SyncSettings(window=5, ack_timeout_s=1)
        append_record(box, key, batch(batch_no=1))
        assert SyncLink(box, key, target, settings).flush(20).complete
        # revoked while its broker session still works (the reload may not drop it at once)
        enrollment.revoke(store, key.agent_id, actor="test")
        worker.keyring.forget()
        append_record(box, key, batch(batch_no=2))
        result = SyncLink(box, key, target, settings).flush(20)
        stop.set()
        thread.join(5)
        worker.stop()
        box.close()
        broker_log = (tmp_path / "broker" / "mosquitto.log").read_text(errors="replace")
        collector_password = b.collector[1]
    assert result.rejected == 1 and result.pending == 0
    assert store.count("received_records") == 1
    assert "revoked" in _reasons(store)
    out = CliRunner().invoke(agent_cli, ["status", "--home", str(home.root), "--json"])
    info = json.loads(out.output)
    assert [(r["seq"], r["status"], r["reason"]) for r in info["rejected"]] == [
        (2, "rejected", "revoked")
    ]
    text = CliRunner().invoke(agent_cli, ["status", "--home", str(home.root)]).output
    assert "revoked" in text
    # secrets never appear in logs (DEBUG, every logger), the broker log or status output
    logged = caplog.text + broker_log + out.output + text
    private_raw = key.private_key.private_bytes_raw()
    for secret in (password, collector_password, private_raw.hex()):
        assert secret not in logged
    for encoded in (
        base64.b64encode(private_raw).decode(),
        base64.urlsafe_b64encode(private_raw).decode(),
    ):
        assert encoded.rstrip("=") not in logged


# --- ingest: replayed, reordered, tampered, oversized -----------------------------------------


def test_replay_reorder_tamper_oversize_are_decided_and_recorded(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    keyring = Keyring(store)

    def send(*payloads: bytes) -> list[tuple[str, str, str | None]]:
        acks = ingest_batch(store, keyring, [IncomingMessage(agent.topic, p) for p in payloads])
        return [(a.status, str(a.seq), a.reason) for _, a in acks]

    one, two, three = (agent.seal(batch(batch_no=n, amount=100 * n), n) for n in (1, 2, 3))
    # reordered: 3 before 1 and 2 is accepted (seq only orders, resends may overtake)
    assert [s for s, _, _ in send(three, one)] == ["accepted", "accepted"]
    # replayed: the same bytes again are a no-op duplicate, stored once
    assert [s for s, _, _ in send(one, three)] == ["duplicate", "duplicate"]
    assert send(two)[0][0] == "accepted"
    assert store.count("received_records") == 3
    # a different record under an already used seq: a conflict, recorded, not stored
    forged_replay = agent.seal(batch(batch_no=9, amount=1), 2)
    assert send(forged_replay)[0][0] == "conflict"
    assert store.count("conflicts") == 1 and store.count("received_records") == 3
    # tampered: one changed byte in the signed part
    tampered = bytearray(agent.seal(batch(batch_no=4), 4))
    tampered[tampered.index(b'"batch_no":4') + 11] = ord("5")
    status, _, reason = send(bytes(tampered))[0]
    assert (status, reason) == ("rejected", "bad_signature")
    # oversized: refused before parsing, still recorded
    big = agent.seal(batch(batch_no=5), 5) + b" " * 70_000
    assert send(big) == [] or send(big)[0][2] == "too_large"
    assert {"bad_signature", "too_large"} <= set(_reasons(store))
    assert store.count("received_records") == 3


def _at(created_at: str, agent: object, seq: int) -> bytes:
    record = batch(batch_no=seq)
    return seal_envelope(agent.key, record_type=record.RECORD_TYPE, agent_id=agent.agent_id,  # type: ignore[attr-defined]
                         seq=seq, created_at=created_at, body=record.to_body())  # fmt: skip


def test_clock_skew_within_limits_is_tolerated(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    keyring = Keyring(store)
    from datetime import UTC, datetime, timedelta

    slightly_ahead = (datetime.now(UTC) + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    acks = ingest_batch(
        store, keyring, [IncomingMessage(agent.topic, _at(slightly_ahead, agent, 1))]
    )
    assert acks[0][1].status == "accepted"


def test_clock_skew_beyond_limits_is_flagged_not_rejected(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    keyring = Keyring(store)
    acks = ingest_batch(
        store, keyring, [IncomingMessage(agent.topic, _at("2031-01-01T00:00:00.000Z", agent, 1))]
    )
    assert acks[0][1].status == "accepted"  # a wrong clock does not make a batch less real
    (flag,) = store.query("SELECT agent_id, seq, kind, detail, skew_s FROM ingest_flags")
    assert (flag["agent_id"], flag["seq"], flag["kind"]) == ("agent-a", 1, "clock_skew")
    assert "ahead" in flag["detail"] and flag["skew_s"] > 3600 * 24 * 365


def test_a_late_record_is_not_skew_but_a_late_heartbeat_is() -> None:
    from datetime import UTC, datetime

    from settleguard.collector.ingest.verify import clock_skew

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    week_old = "2026-11-19T12:00:00.000Z"
    assert clock_skew("batch_summary", week_old, now) is None  # an offline agent, catching up
    assert clock_skew("heartbeat", week_old, now) is not None  # heartbeats are sent live
    assert clock_skew("heartbeat", "2026-11-26T11:55:00.000Z", now) is None


# --- dashboard: every POST route refuses viewers; admin pages refuse operators ----------------


@pytest.fixture
def web(tmp_path: Path) -> Flask:
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}"})  # fmt: skip
    db = get_store(app)
    db.migrate()
    hashed = hash_password("pw-123456789")
    with db.transaction() as tx:
        for role in ("viewer", "operator", "admin"):
            tx.insert("users", {"username": role, "password_hash": hashed, "role": role})
    init_keys(Path(app.config["KEYS_DIR"]))
    yield app
    close_store(app)


def _client(app: Flask, role: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    row = get_store(app).query_one("SELECT id FROM users WHERE username = ?", (role,))
    with client.session_transaction() as session:
        session["uid"] = row["id"]  # type: ignore[index]
    return client


def _post_rules(app: Flask) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if "POST" in (rule.methods or set()) and not rule.rule.startswith(("/login", "/logout")):
            path = rule.rule
            for arg in rule.arguments:
                path = path.replace(f"<{arg}>", "1").replace(f"<int:{arg}>", "1")
            paths.append(path.replace("<path:", "<").replace("<", "").replace(">", ""))
    return sorted(set(paths))


def test_viewer_gets_403_on_every_post_route(web: Flask) -> None:
    client = _client(web, "viewer")
    html = client.get("/imports").get_data(as_text=True)
    import re

    match = re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"', html
    )
    token = (match.group(1) or match.group(2)) if match else ""
    # provider receipts (signature-checked), agent enrollment (one-time token) and key rotation
    # (signed by the old key) are not user actions
    routes = [
        p
        for p in _post_rules(web)
        if not any(x in p for x in ("/callbacks/", "/sms/", "/enroll", "/rotate"))
    ]
    assert len(routes) >= 6, routes
    before = get_store(web).count("audit_log")
    for path in routes:
        response = client.post(path, data={"csrf_token": token, "note": "x", "status": "active"})
        assert response.status_code == 403, (path, response.status_code)
    assert get_store(web).count("audit_log") == before


def test_operator_cannot_reach_admin_pages(web: Flask) -> None:
    assert _client(web, "operator").get("/users").status_code == 403
    assert _client(web, "viewer").get("/users").status_code == 403
    assert _client(web, "admin").get("/users").status_code == 200
