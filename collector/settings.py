"""Collector settings: defaults, then the instance file, then ``SETTLEGUARD_*`` environment.

The instance file is ``<instance folder>/collector.toml`` (keys as below, e.g.
``DATABASE_URL = "postgresql://…"``). Each environment variable ``SETTLEGUARD_<KEY>`` overrides
``<KEY>``; values that parse as JSON (numbers, ``true``) are taken as such, anything else as a
string, which is Flask's ``from_prefixed_env`` rule.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from settleguard.collector.enrollment.keys import load_or_create_secret_key
from settleguard.collector.enrollment.service import DEFAULT_RETIRED_KEY_GRACE_S

INSTANCE_FILE = "collector.toml"

#: ``collector serve`` refuses a SECRET_KEY shorter than this (characters or bytes).
MIN_SECRET_KEY_LENGTH = 32
#: The development default of earlier releases: public, so never accepted for serving.
FORMER_DEFAULT_SECRET_KEY = "dev"  # noqa: S105 - refused, not used

DEFAULTS: dict[str, Any] = {
    # Flask session signing. None: the instance's own random key, <instance>/secret_key (0600),
    # made on first use (collector/enrollment/keys.py). SETTLEGUARD_SECRET_KEY overrides it.
    "SECRET_KEY": None,
    # None -> sqlite:///<instance>/collector.db
    "DATABASE_URL": None,
    # Collector key pair (sealed card numbers) and HMAC key: directory, files mode 0600.
    "KEYS_DIR": None,
    # Where `broker-config` writes mosquitto.conf, passwd and acl; approve/revoke rewrite the
    # password file there and SIGHUP the broker whose pid is in BROKER_PID_FILE (if unset: the
    # pid_file named in BROKER_DIR/mosquitto.conf).
    "BROKER_DIR": None,
    "BROKER_PID_FILE": None,
    "MQTT_HOST": "127.0.0.1",
    "MQTT_PORT": 1883,
    "MQTT_USERNAME": "collector",
    "MQTT_PASSWORD": None,
    # "5" (shared subscription $share/ingest/…) or "3.1.1" (one subscriber, plain filter).
    "MQTT_PROTOCOL": "5",
    "MQTT_SHARE_GROUP": "ingest",
    # TLS to the broker (mqtts): the CA that signed the broker's certificate, and optionally the
    # collector's own certificate and key when the listener requires client certificates.
    "MQTT_TLS_CA_FILE": None,
    "MQTT_TLS_CERT_FILE": None,
    "MQTT_TLS_KEY_FILE": None,
    # Ingest commits at most this many messages per transaction, and waits at most this long
    # to fill a batch before committing what it has.
    "INGEST_BATCH_SIZE": 256,
    "INGEST_BATCH_WAIT_S": 0.02,
    # MQTT v5 Receive Maximum of each worker: unacknowledged messages the broker may have in
    # flight to it. None: 6 x INGEST_BATCH_SIZE, so a batch is always waiting in the socket.
    "INGEST_RECEIVE_MAXIMUM": None,
    "ENROLL_TOKEN_TTL_S": 7 * 24 * 3600,
    # After a key rotation the retired key still signs records beyond the last seq seen under
    # it for this long (the agent's outbox may hold some); `agents revoke-key` ends it at once.
    "RETIRED_KEY_GRACE_S": DEFAULT_RETIRED_KEY_GRACE_S,
}


def secret_key_problem(value: object) -> str | None:
    """Why ``value`` must not sign sessions of a served dashboard, or ``None`` when it may.

    Anyone who knows the key can sign a session cookie for any user id, admin included.
    """
    if not isinstance(value, str | bytes) or not value:
        return "SECRET_KEY is not set"
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if text.strip() == FORMER_DEFAULT_SECRET_KEY:
        return "SECRET_KEY is the former development default 'dev'"
    if len(value) < MIN_SECRET_KEY_LENGTH:
        return f"SECRET_KEY is {len(value)} characters; use at least {MIN_SECRET_KEY_LENGTH}"
    return None


#: The dashboard's settings (sessions, sign-in throttling, language, display time zone).
WEB_DEFAULTS: dict[str, Any] = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "sg_session",
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
    # Checked by collector.web.check_csrf for every state-changing request instead (see its comment).
    "WTF_CSRF_CHECK_DEFAULT": False,
    "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
    "LOGIN_MAX_FAILURES_USER": 5,
    "LOGIN_MAX_FAILURES_ADDRESS": 20,
    "LOGIN_WINDOW_S": 300,
    "AGENT_SILENT_AFTER_S": 6 * 3600,
    "DASHBOARD_DEFAULT_LANG": "en",
    # Times outside a merchant's own pages (imports, alerts, audit, agents) are shown here.
    "DASHBOARD_TIMEZONE": "Asia/Shanghai",
}


def load_config(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config``: defaults → instance file → environment → ``overrides``.

    :param app: the application whose ``instance_path`` holds ``collector.toml``
    :param overrides: explicit settings (tests pass these), applied last
    :raises tomllib.TOMLDecodeError: when the instance file is not valid TOML
    """
    app.config.from_mapping(DEFAULTS)
    instance_file = Path(app.instance_path) / INSTANCE_FILE
    if instance_file.exists():
        app.config.from_file(str(instance_file), load=tomllib.load, text=False)
    app.config.from_prefixed_env("SETTLEGUARD")
    if overrides:
        app.config.from_mapping(overrides)
    instance = Path(app.instance_path)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'collector.db'}"
    if not app.config["KEYS_DIR"]:
        app.config["KEYS_DIR"] = str(instance / "keys")
    if not app.config["BROKER_DIR"]:
        app.config["BROKER_DIR"] = str(instance / "broker")
    if not app.config["SECRET_KEY"] and instance.is_dir():
        app.config["SECRET_KEY"] = load_or_create_secret_key(instance)
    app.config["MQTT_PROTOCOL"] = str(app.config["MQTT_PROTOCOL"])


def ensure_secret_key(app: Flask) -> None:
    """Give ``app`` its instance's session secret unless one is set: ``<instance>/secret_key``,
    created (0600, in a 0700 folder) on first use. Called before the first request and by
    ``serve``; commands that only read never create the instance folder for it."""
    if not app.config["SECRET_KEY"]:
        instance = Path(app.instance_path)
        instance.mkdir(parents=True, exist_ok=True, mode=0o700)
        app.config["SECRET_KEY"] = load_or_create_secret_key(instance)


# SETTLEGUARD_* variables read outside app.config (by the modules named) or by the test suite.
OTHER_VARIABLES = frozenset(
    {
        "INSTANCE_PATH",  # collector.web.app
        "SMS_URL",
        "SMS_CALLBACK_TOKEN",
        "SMS_SIGN_NAME",
        "SMS_SIGN_NAME_EN",
        "SMS_ACQUIRER",
        "SMS_TEMPLATE_CODES",  # collector.alerts.settings
        "ACQUIRERS",  # collector.reconcile.acquirers
        "CALENDAR",  # collector.reconcile.calendar
        "RECON_PROCESSES",  # collector.reconcile.runner
        "PROFILE_DIR",  # collector.statements.profiles
        "AGENT_HOME",  # agent.home
        "UPDATE_SCREENSHOT",
        "TEST_PG_ADMIN_URL",
        "FUZZ_EXAMPLES",  # tests
    }
)


def known_settings() -> set[str]:
    """Every ``SETTLEGUARD_*`` name (without the prefix) that some part of settleguard reads."""
    return set(DEFAULTS) | set(WEB_DEFAULTS) | set(Flask.default_config) | OTHER_VARIABLES


def unknown_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per ``SETTLEGUARD_*`` variable nothing reads, naming the likely intended one.

    :param environ: the environment to check (default: ``os.environ``)
    """
    known = known_settings()
    found = []
    for name in sorted(os.environ if environ is None else environ):
        key = name.removeprefix("SETTLEGUARD_")
        if not name.startswith("SETTLEGUARD_") or key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        hint = f" (did you mean SETTLEGUARD_{close[0]}?)" if close else ""
        found.append(f"{name} is not a settleguard setting and is ignored{hint}")
    return found
