"""The collector's Flask application factory, built like Flask's tutorial app (flaskr).

``create_app()`` reads the configuration (:mod:`collector.settings`), opens the store named by
``DATABASE_URL`` once per process and registers one blueprint per area. Views get the store
with :func:`get_db`; domain logic lives in plain functions elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from settleguard.collector.settings import load_config
from settleguard.collector.web.db import get_db


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

    from settleguard.collector.web.enroll import bp as enroll_bp

    app.register_blueprint(enroll_bp)
    from settleguard.collector.web import register_web  # dashboard + JSON API

    register_web(app)
    from settleguard.collector.web import callbacks

    callbacks.register(app)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        store = get_db()
        return {"ok": True, "store": store.dialect, "schema_version": store.schema_version()}

    return app
