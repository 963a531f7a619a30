"""The operator dashboard and JSON API, attached to the collector app.

``register_web(app)`` adds: settings defaults, Flask-WTF CSRF protection on every
state-changing request (:func:`check_csrf`), the
TLS-aware session cookie, security headers on every response, the user loader, template
helpers (``_`` for zh-CN/en, ``money``, ``can``), and the blueprints: ``auth`` (sign-in),
``pages`` (dashboard), ``api`` (``/api/v1``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from settleguard.collector.money import format_money
from settleguard.collector.settings import WEB_DEFAULTS
from settleguard.collector.web import api, api_match, auth, pages, pages_match, wording
from settleguard.collector.web.i18n import current_lang, translate
from settleguard.collector.web.security import (
    CSRF_EXEMPT,
    STATE_CHANGING,
    TlsAwareSessionInterface,
    add_security_headers,
)
from werkzeug.exceptions import HTTPException

_FLASK_DEFAULTS = dict(Flask.default_config)
csrf = CSRFProtect()


def check_csrf() -> None:
    """``before_request`` for every view: a state-changing request needs the CSRF token, the
    form's ``csrf_token`` field or the ``X-CSRFToken`` header (400 without).

    Exempt: the endpoints in :data:`~collector.web.security.CSRF_EXEMPT` (machine callers
    with their own proof), and API calls not made with the session cookie: an API token
    (``Authorization: Bearer``) is no ambient credential another site could ride on, and a
    caller with neither is refused by the view's role check (401).
    """
    if request.method not in STATE_CHANGING or request.endpoint in CSRF_EXEMPT:
        return
    if request.path.startswith("/api/") and g.get("auth") != "session":
        return
    csrf.protect()


def register_web(app: Flask) -> None:
    """Attach the dashboard and API to ``app`` (called by ``create_app``)."""
    for key, value in WEB_DEFAULTS.items():
        # Flask pre-fills its own keys (SameSite=None, 31-day sessions): ours win over those
        # defaults, but a value the operator set in the instance file or environment stays.
        if key not in app.config or app.config[key] == _FLASK_DEFAULTS.get(key):
            app.config[key] = value
    app.session_interface = TlsAwareSessionInterface()
    csrf.init_app(app)
    app.before_request(auth.load_user)
    app.before_request(check_csrf)
    app.after_request(add_security_headers)
    app.register_blueprint(auth.bp)
    # api_match and pages_match add the hand-matching routes to these two blueprints
    assert api_match.bp is api.bp and pages_match.bp is pages.bp
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.jinja_env.globals.update(_=translate, can=auth.can, lang=current_lang)
    app.jinja_env.filters["money"] = format_money
    wording.register(app)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        if request.path.startswith("/api/"):
            return jsonify({"error": f"CSRF check failed: {exc.description}"}), 400
        return render_template("error.html", code=400, message=exc.description), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        if request.path.startswith("/api/"):
            return jsonify({"error": exc.description or exc.name}), code
        return render_template("error.html", code=code, message=exc.description), code
