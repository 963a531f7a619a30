"""One enrollment token enrolls one agent, even when many requests race for it."""

from __future__ import annotations

import base64
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.web.db import get_store

RACERS = 8
ROUNDS = 4


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _race_for(app: Flask, token: str, round_no: int) -> list[int]:
    """``RACERS`` clients post the same token at once; the status code each one got."""
    start = threading.Barrier(RACERS)
    codes: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        body = {
            "token": token,
            "agent_id": f"racer-{round_no}-{i}",
            "public_key": base64.b64encode(_raw(Ed25519PrivateKey.generate())).decode(),
        }
        client = app.test_client()
        start.wait(timeout=10)
        code = client.post("/api/v1/enroll", json=body).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "an enrollment request hung"
    return codes


def test_concurrent_enrollments_with_one_token_enroll_one_agent(app: Flask) -> None:
    store = get_store(app)
    for round_no in range(ROUNDS):
        token = enrollment.issue_token(store, f"M{round_no}", ttl_s=600)
        codes = _race_for(app, token, round_no)
        assert sorted(codes) == [201] + [400] * (RACERS - 1), (round_no, codes)
        enrolled = store.query(
            "SELECT agent_id FROM agents WHERE merchant_id = ?", (f"M{round_no}",)
        )
        assert len(enrolled) == 1, enrolled
        burnt = store.query_one(
            "SELECT agent_id FROM enrollment_tokens WHERE merchant_id = ?", (f"M{round_no}",)
        )
        assert burnt == {"agent_id": enrolled[0]["agent_id"]}
