"""Users and API tokens as a library and through ``settleguard collector users|tokens``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from flask import Flask
from settleguard.collector.cli import collector
from settleguard.collector.store import Store
from settleguard.collector.web.tokens import authenticate_token, create_token
from settleguard.collector.web.users import UserError, add_user, authenticate, list_users


def test_add_authenticate_and_refuse(db: Store) -> None:
    add_user(db, "alice", "operator", "s3cret-enough", actor="t")
    stored = db.query_one("SELECT password_hash FROM users WHERE username = 'alice'")
    assert stored and stored["password_hash"].startswith("$argon2id$")
    assert (
        authenticate(db, "alice", "s3cret-enough")
        == {"id": pytest.approx(stored and 0, abs=10**9), "username": "alice", "role": "operator"}
        or authenticate(db, "alice", "s3cret-enough")["role"] == "operator"
    )
    assert authenticate(db, "alice", "wrong-password") is None
    assert authenticate(db, "nobody", "s3cret-enough") is None
    with pytest.raises(UserError):
        add_user(db, "alice", "viewer", "s3cret-enough", actor="t")
    with pytest.raises(UserError):
        add_user(db, "bob", "root", "s3cret-enough", actor="t")
    with pytest.raises(UserError):
        add_user(db, "bob", "viewer", "short", actor="t")


def test_tokens_are_stored_hashed_and_checked(db: Store) -> None:
    token = create_token(db, "viewer", actor="t", label="grafana")
    rows = db.query("SELECT username, password_hash FROM users WHERE username LIKE 'token:%'")
    assert len(rows) == 1 and token not in rows[0]["password_hash"]
    assert authenticate_token(db, token)["role"] == "viewer"  # type: ignore[index]
    assert authenticate_token(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert authenticate_token(db, "sgt_zz") is None
    assert authenticate(db, rows[0]["username"], token) is None  # a token is not a password


def test_cli_users_and_tokens(web_app: Flask, db: Store) -> None:
    runner = CliRunner()
    result = runner.invoke(collector, ["users", "add", "carol", "--role", "viewer", "--password-stdin"],
                           input="long enough password\n", obj=web_app)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert authenticate(db, "carol", "long enough password")
    result = runner.invoke(collector, ["users", "list"], obj=web_app)
    assert "carol\tviewer\tactive" in result.output
    result = runner.invoke(collector, ["users", "disable", "carol"], obj=web_app)
    assert result.exit_code == 0
    assert (
        "carol\tviewer\tdisabled" in runner.invoke(collector, ["users", "list"], obj=web_app).output
    )
    result = runner.invoke(collector, ["tokens", "create", "--role", "operator"], obj=web_app)
    token = result.stdout.strip()
    assert result.exit_code == 0 and authenticate_token(db, token)["role"] == "operator"  # type: ignore[index]
    bad = runner.invoke(collector, ["users", "add", "dave", "--role", "viewer", "--password-stdin"],
                        input="short\n", obj=web_app)  # fmt: skip
    assert bad.exit_code == 1 and "at least" in bad.output
    assert [u["username"] for u in list_users(db) if u["username"] == "carol"] == ["carol"]
