"""Dashboard fixtures: users of each role, a signed-in client, CSRF tokens, a small world."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.enrollment.keys import init_keys
from settleguard.collector.store import Store
from settleguard.collector.web.db import get_store
from settleguard.collector.web.users import hash_password

ROLES = ("viewer", "operator", "admin")
PASSWORD = "correct horse battery"
# One Argon2 hash for every test user: hashing is deliberately slow, and tests of
# add_user/authenticate themselves live in test_users.py.
_HASH = hash_password(PASSWORD)
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@pytest.fixture
def web_app(app: Flask) -> Flask:
    """The collector app with one user per role and collector keys initialised."""
    store = get_store(app)
    with store.transaction() as tx:
        for role in ROLES:
            tx.insert("users", {"username": role, "password_hash": _HASH, "role": role})
    init_keys(Path(app.config["KEYS_DIR"]))
    return app


@pytest.fixture
def db(web_app: Flask) -> Store:
    return get_store(web_app)


def csrf_token(client: FlaskClient) -> str:
    """A CSRF token for the client's session, read from a rendered form."""
    html = client.get("/login").get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, "no csrf_token in the login form"
    return match.group(1) or match.group(2)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> object:
    """Sign in through the real form (CSRF token included)."""
    token = csrf_token(client)
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


@pytest.fixture
def as_role(web_app: Flask, db: Store) -> Callable[[str | None], FlaskClient]:
    """``as_role('operator')``: a client whose session belongs to that user (None: anonymous)."""

    def make(role: str | None) -> FlaskClient:
        client = web_app.test_client()
        if role is not None:
            row = db.query_one("SELECT id FROM users WHERE username = ?", (role,))
            assert row is not None
            with client.session_transaction() as session:
                session["uid"] = row["id"]
        return client

    return make


def seed_world(store: Store) -> dict[str, int]:
    """Two merchants, a pending agent, an open gap with evidence and an SMS for it."""
    with store.transaction() as tx:
        tx.insert(
            "merchants",
            {"merchant_id": "M100", "name": "Noodle House", "phones": json.dumps(["13800001234"])},
            returning="merchant_id",
        )
        tx.insert("merchants", {"merchant_id": "M200", "name": "Tea Shop"}, returning="merchant_id")
        tx.insert(
            "agents",
            {"agent_id": "ag-1", "merchant_id": "M100", "status": "pending", "key_id": "k1",
             "public_key": b"\x00" * 32},
            returning="agent_id",
        )  # fmt: skip
        gap_id = tx.insert(
            "gaps",
            {"dedupe_key": "M100:MISSING:b1", "merchant_id": "M100", "category": "MISSING",
             "amount": 123456, "currency": "156", "status": "open", "since": "2024-05-02",
             "reason": "no credit on the account in force",
             "evidence": json.dumps({"expected": 123456, "due_date": "2024-05-02",
                                     "account_in_force": "6222****1234", "rule": "due_unpaid"})},
        )  # fmt: skip
        tx.insert(
            "alerts",
            {"dedupe_key": f"gap:{gap_id}:first", "gap_id": gap_id, "merchant_id": "M100",
             "phone": "13800001234", "locale": "zh-CN", "text": "您的结算款未到账", "state": "delivered"},
        )  # fmt: skip
        account_id = tx.insert(
            "settlement_accounts",
            {"merchant_id": "M100", "account_masked": "6222****5678", "account_hmac": "h" * 64,
             "status": "under_review", "requested_at": "2024-05-01T08:00:00Z"},
        )  # fmt: skip
    return {"gap_id": int(gap_id), "account_id": int(account_id)}
