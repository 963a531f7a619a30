"""The collector's Flask application factory, built like Flask's tutorial app (flaskr).

``create_app()`` reads the configuration (:mod:`collector.config`), opens the store named by
``DATABASE_URL`` once per process and registers one blueprint per area. Views get the store
with :func:`get_db`; domain logic lives in plain functions elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, g

from collector.config import load_config
from collector.store import Store, open_store

_STORE_KEY = "settleguard.store"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the collector application.

    :param config: settings applied after defaults, instance file and environment (tests)
    """
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get(
        "SETTLEGUARD_INSTANCE_PATH"
    )
    # The folder is not created here: a read-only command must not leave one behind; the
    # stores and key files create what they write.
    app = Flask("collector", instance_relative_config=True, instance_path=instance_path)
    load_config(app, config)

    from collector.api_enroll import bp as enroll_bp

    app.register_blueprint(enroll_bp)
    from collector.web import register_web  # dashboard + JSON API (issue 7)

    register_web(app)
    __import__("collector.alerts.callbacks").alerts.callbacks.register(app)  # issue 6

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        store = get_db()
        return {"ok": True, "store": store.dialect, "schema_version": store.schema_version()}

    return app


def get_store(app: Flask) -> Store:
    """The process-wide store of ``app`` (opened on first use, shared by threads)."""
    store: Store | None = app.extensions.get(_STORE_KEY)
    if store is None:
        store = open_store(app.config["DATABASE_URL"])
        app.extensions[_STORE_KEY] = store
    return store


def get_db() -> Store:
    """The store for the current request (flaskr's ``get_db``)."""
    if "db" not in g:
        g.db = get_store(current_app)
    store: Store = g.db
    return store


def close_store(app: Flask) -> None:
    """Close the store of ``app`` if it was opened (tests, CLI shutdown)."""
    store: Store | None = app.extensions.pop(_STORE_KEY, None)
    if store is not None:
        store.close()
