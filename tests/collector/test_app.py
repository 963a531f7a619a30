"""App factory, configuration order and the init-db / keys CLI."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from settleguard.collector.cli import collector
from settleguard.collector.enrollment.keys import (
    KeyFileError,
    account_hmac,
    init_keys,
    load_keys,
    mask_account,
)
from settleguard.collector.store.schema import latest_version
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import close_store


def test_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "collector.toml").write_text('MQTT_PORT = 2000\nMQTT_HOST = "file-host"\n')
    monkeypatch.setenv("SETTLEGUARD_MQTT_PORT", "3000")
    app = create_app({"INSTANCE_PATH": str(instance)})
    assert app.config["MQTT_HOST"] == "file-host"  # instance file beats defaults
    assert app.config["MQTT_PORT"] == 3000  # environment beats the instance file
    assert app.config["DATABASE_URL"] == f"sqlite:///{instance / 'collector.db'}"
    app = create_app({"INSTANCE_PATH": str(instance), "MQTT_PORT": 4000})
    assert app.config["MQTT_PORT"] == 4000


def test_healthz_reports_store(client: FlaskClient, database_url: str) -> None:
    body = client.get("/healthz").get_json()
    assert body["ok"] is True and body["schema_version"] == latest_version()
    assert body["store"] == database_url.split(":")[0]


def test_init_db_twice(runner: FlaskCliRunner) -> None:
    for _ in range(2):
        result = runner.invoke(collector, ["init-db"])
        assert result.exit_code == 0, result.output
        assert f"schema version {latest_version()}" in result.output


def test_init_db_on_fresh_sqlite_file(tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    runner = app.test_cli_runner()
    first = runner.invoke(collector, ["init-db"])
    second = runner.invoke(collector, ["init-db"])
    close_store(app)
    assert "(1," in first.output and "nothing to do" in second.output
    assert (tmp_path / "collector.db").exists()


def test_keys_files_are_private(tmp_path: Path) -> None:
    keys, created = init_keys(tmp_path / "k")
    assert created
    again, created_again = init_keys(tmp_path / "k")
    assert not created_again and again == keys
    for name in ("sealing.key", "hmac.key"):
        assert stat.S_IMODE((tmp_path / "k" / name).stat().st_mode) == 0o600
    assert len(keys.hmac_key) * 8 >= 128
    os.chmod(tmp_path / "k" / "hmac.key", 0o644)
    with pytest.raises(KeyFileError, match="too open"):
        load_keys(tmp_path / "k")


def test_keys_init_cli(runner: FlaskCliRunner) -> None:
    assert "created" in runner.invoke(collector, ["keys", "init"]).output
    assert "already present" in runner.invoke(collector, ["keys", "init"]).output


def test_account_hmac_and_mask() -> None:
    key = b"k" * 32
    assert account_hmac(key, "6222 0212 3456 7890") == account_hmac(key, "6222021234567890")
    assert account_hmac(key, "6222021234567890") != account_hmac(b"j" * 32, "6222021234567890")
    assert mask_account("6222021234567890") == "************7890"
