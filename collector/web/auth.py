"""Sign-in, sign-out, who is asking, and what their role lets them do.

A request is authenticated by the signed session cookie (the dashboard, and API calls from
it) or by ``Authorization: Bearer sgt_…`` (API tokens, :mod:`collector.web.tokens`). The user is
re-read from the store on every request, so disabling someone takes effect at once.
Pages without a user redirect to the sign-in page; the API answers 401. A role too low for an
action answers 403, and templates hide the controls (``can('operator')``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from settleguard.collector.web.db import get_db
from settleguard.collector.web.i18n import translate
from settleguard.collector.web.security import LoginThrottle, client_address, same_site_path
from settleguard.collector.web.tokens import authenticate_token
from settleguard.collector.web.users import authenticate, role_at_least
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])


class LoginForm(FlaskForm):
    """The sign-in form; Flask-WTF adds the ``csrf_token`` field."""

    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


def load_user() -> None:
    """``before_app_request``: set ``g.user`` (dict or None) and ``g.auth`` (session/token)."""
    g.user = None
    g.auth = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and request.path.startswith("/api/"):
        g.user = authenticate_token(get_db(), header.removeprefix("Bearer ").strip())
        g.auth = "token" if g.user else None
        return
    user_id = session.get("uid")
    if user_id is None:
        return
    row = get_db().query_one(
        "SELECT id, username, role FROM users WHERE id = ? AND disabled = 0", (user_id,)
    )
    if row is None:
        session.clear()
        return
    g.user = row
    g.auth = "session"


def can(role: str) -> bool:
    """Whether the current user has at least ``role`` (templates use it to hide controls)."""
    user = g.get("user")
    return bool(user) and role_at_least(user["role"], role)


def actor() -> str:
    """The current user's name for the audit log."""
    user = g.get("user")
    return str(user["username"]) if user else "anonymous"


def _unauthenticated() -> Response:
    if request.path.startswith("/api/"):
        response = jsonify({"error": "authentication required"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="settleguard"'
        return response
    return redirect(url_for("auth.login", next=request.full_path))


def role_required(role: str) -> Callable[[F], F]:
    """Decorator: the view needs a signed-in user with at least ``role``."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.get("user") is None:
                return _unauthenticated()
            if not can(role):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]  # read by the route audit test
        return wrapped  # type: ignore[return-value]

    return decorate


def _throttles() -> tuple[LoginThrottle, LoginThrottle]:
    ext = current_app.extensions
    if "settleguard.throttle" not in ext:
        window = float(current_app.config["LOGIN_WINDOW_S"])
        ext["settleguard.throttle"] = (
            LoginThrottle(int(current_app.config["LOGIN_MAX_FAILURES_USER"]), window),
            LoginThrottle(int(current_app.config["LOGIN_MAX_FAILURES_ADDRESS"]), window),
        )
    throttles: tuple[LoginThrottle, LoginThrottle] = ext["settleguard.throttle"]
    return throttles


def _safe_next(target: str | None) -> str:
    return same_site_path(target) or url_for("pages.overview")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the sign-in form; on POST check the password, throttled per user and address."""
    form = LoginForm()
    if request.method == "POST" and form.validate_on_submit():
        per_user, per_address = _throttles()
        name = form.username.data or ""
        user_key, addr_key = f"user:{name.lower()}", f"addr:{client_address(request)}"
        wait = max(per_user.retry_after(user_key), per_address.retry_after(addr_key))
        if wait:
            page = render_template(
                "login.html", form=form, error=translate("Too many attempts; try again later.")
            )
            return page, 429, {"Retry-After": str(wait)}
        user = authenticate(get_db(), name, form.password.data or "")
        if user is None:
            per_user.failed(user_key)
            per_address.failed(addr_key)
            error = translate("Invalid username or password.")
            return render_template("login.html", form=form, error=error), 401
        per_user.succeeded(user_key)
        lang = session.get("lang")
        session.clear()  # a fresh session on sign-in: no fixation
        session["uid"] = user["id"]
        session.permanent = True
        if lang:
            session["lang"] = lang
        get_db().audit(user["username"], "auth.login", user["username"])
        return redirect(_safe_next(request.args.get("next")))
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form, error=None), status


@bp.post("/logout")
@role_required("viewer")
def logout() -> Any:
    """Sign out (POST, with CSRF token, so a link on another site cannot do it)."""
    get_db().audit(actor(), "auth.logout", actor())
    session.clear()
    flash(translate("Done."))
    return redirect(url_for("auth.login"))
