"""The instance's own secrets: the session key, private file modes, and keys loaded per process."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from settleguard.collector.cli import collector
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.keys import KeyFileError, init_keys, load_keys
from settleguard.collector.web import actions
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import close_store, get_store
from settleguard.collector.web.users import hash_password

ACCOUNT_CSV = b"date,amount,reference\n2026-11-27,100.00,x\n"


@pytest.fixture(autouse=True)
def _no_secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SETTLEGUARD_SECRET_KEY", raising=False)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, under which files would be created 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _app(instance: Path, **config: object) -> Flask:
    return create_app({"TESTING": True, "INSTANCE_PATH": str(instance), **config})


# --- the session secret --------------------------------------------------------------------


def _first_request(app: Flask) -> bytes:
    """The secret the app signs sessions with once a first request has opened one."""
    app.test_client().get("/login")
    key: bytes = app.config["SECRET_KEY"]
    return key


def test_an_instance_makes_its_own_random_secret_and_keeps_it(tmp_path: Path) -> None:
    first = _app(tmp_path / "a")
    assert first.config["SECRET_KEY"] is None  # building the app alone makes nothing
    key = _first_request(first)
    assert isinstance(key, bytes) and len(key) == 32 and key != b"dev"
    secret_file = tmp_path / "a" / "secret_key"
    assert _mode(secret_file) == 0o600
    assert base64.b64decode(secret_file.read_bytes().strip()) == key
    assert _app(tmp_path / "a").config["SECRET_KEY"] == key  # a restart keeps sessions
    assert _first_request(_app(tmp_path / "b")) != key


def test_a_cookie_signed_with_dev_opens_no_admin_page(tmp_path: Path) -> None:
    app = _app(tmp_path / "i", DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}")
    store = get_store(app)
    store.migrate()
    with store.transaction() as tx:
        tx.insert("users", {"username": "root", "password_hash": hash_password("x" * 12),
                            "role": "admin"})  # fmt: skip
    forger = Flask("forger")
    forger.secret_key = "dev"
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    client = app.test_client()
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], serializer.dumps({"uid": 1}))
    response = client.get("/users")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    close_store(app)


@pytest.mark.parametrize(
    ("secret", "why"),
    [("dev", "former development default"), ("x" * 31, "31 characters"), (b"k" * 16, "16")],
)
def test_serve_refuses_the_default_or_a_short_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str | bytes, why: str
) -> None:
    served: list[object] = []
    monkeypatch.setattr(
        "settleguard.collector.web.serve.serve", lambda app, **kw: served.append(kw)
    )
    app = _app(tmp_path / "i", SECRET_KEY=secret, DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}")
    result = CliRunner().invoke(collector, ["serve", "--port", "0"], obj=app)
    assert result.exit_code == 1 and served == []
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and why in lines[0], lines


def test_serve_starts_with_the_instance_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[object] = []
    monkeypatch.setattr(
        "settleguard.collector.web.serve.serve", lambda app, **kw: served.append(kw)
    )
    app = _app(tmp_path / "i", DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}")
    result = CliRunner().invoke(collector, ["serve", "--port", "0"], obj=app)
    assert result.exit_code == 0, result.output
    assert len(served) == 1


def test_serve_process_with_dev_key_exits_with_one_error_line(tmp_path: Path) -> None:
    env = {**os.environ, "SETTLEGUARD_SECRET_KEY": "dev",
           "SETTLEGUARD_INSTANCE_PATH": str(tmp_path / "i")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "settleguard.cli", "collector", "serve", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: SECRET_KEY"), done.stderr


# --- file modes ----------------------------------------------------------------------------


@pytest.mark.usefixtures("umask_022")
def test_instance_folder_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    app = _app(instance)
    store = get_store(app)
    store.migrate()
    enrollment.issue_token(store, "M1", ttl_s=60)  # a write: the WAL and shared memory exist
    init_keys(Path(app.config["KEYS_DIR"]))
    _first_request(app)  # the session secret
    assert _mode(instance) == 0o700
    assert _mode(instance / "keys") == 0o700
    names = ["collector.db", "collector.db-wal", "collector.db-shm", "secret_key",
             "keys/sealing.key", "keys/sealing.pub", "keys/hmac.key"]  # fmt: skip
    assert {n: oct(_mode(instance / n)) for n in names} == {n: "0o600" for n in names}
    close_store(app)


# --- each process loads only the keys it uses ----------------------------------------------


def test_the_web_process_never_reads_the_private_sealing_key(tmp_path: Path) -> None:
    app = _app(tmp_path / "i", DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}")
    store = get_store(app)
    store.migrate()
    keys_dir = Path(app.config["KEYS_DIR"])
    full, _ = init_keys(keys_dir)
    (keys_dir / "sealing.key").unlink()  # whatever needs it now fails loudly
    client = app.test_client()
    public = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    body = {"token": enrollment.issue_token(store, "M1", ttl_s=60), "agent_id": "agent-k",
            "public_key": base64.b64encode(public).decode()}  # fmt: skip
    response = client.post("/api/v1/enroll", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert base64.b64decode(response.get_json()["collector_public_key"]) == full.sealing_public
    assert client.get("/api/v1/collector-key").status_code == 200
    outcome = actions.upload_statement(app, store, ACCOUNT_CSV, filename="s.csv", actor="t")
    assert "import_id" in outcome
    statement = tmp_path / "s.csv"
    statement.write_bytes(ACCOUNT_CSV)
    result = CliRunner().invoke(collector, ["import", str(statement)], obj=app)
    assert "sealing.key" not in result.output, result.output
    close_store(app)


def test_keys_without_the_private_key_cannot_open_card_changes(tmp_path: Path) -> None:
    init_keys(tmp_path / "keys")
    public_only = load_keys(tmp_path / "keys", sealing_private=False)
    assert public_only.sealing_private is None and len(public_only.hmac_key) == 32
    with pytest.raises(KeyFileError, match=r"did not load sealing\.key"):
        public_only.open_card_change("c1", "token")
    assert load_keys(tmp_path / "keys").sealing_private is not None
