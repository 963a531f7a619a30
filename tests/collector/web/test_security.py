"""Sign-in, CSRF, throttling, headers and cookies."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.store import Store
from settleguard.collector.web.security import LoginThrottle
from settleguard.collector.web.users import authenticate

from tests.collector.web.conftest import PASSWORD, csrf_token, sign_in


def test_sign_in_sets_a_hardened_cookie_and_audits(web_app: Flask, db: Store) -> None:
    client = web_app.test_client()
    response = sign_in(client, "operator")
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/").status_code == 200
    assert db.query_one("SELECT actor FROM audit_log WHERE action = 'auth.login'") == {
        "actor": "operator"
    }


def test_cookie_is_secure_over_tls(web_app: Flask) -> None:
    client = web_app.test_client()
    html = client.get("/login", base_url="https://dash.example").get_data(as_text=True)
    token = html.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/login", base_url="https://dash.example", headers={"Referer": "https://dash.example/login"},
        data={"username": "viewer", "password": PASSWORD, "csrf_token": token},
    )  # fmt: skip
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers


def test_post_without_csrf_token_is_400(
    web_app: Flask, as_role: Callable[[str | None], FlaskClient]
) -> None:
    client = web_app.test_client()
    assert (
        client.post("/login", data={"username": "viewer", "password": PASSWORD}).status_code == 400
    )
    operator = as_role("operator")
    assert operator.post("/gaps/1/acknowledge", data={}).status_code == 400
    assert operator.post("/gaps/1/acknowledge", data={"csrf_token": "forged"}).status_code == 400


def test_session_api_post_needs_the_csrf_header(
    as_role: Callable[[str | None], FlaskClient],
) -> None:
    client = as_role("operator")
    assert client.post("/api/v1/gaps/999/acknowledge").status_code == 400
    token = csrf_token(client)
    response = client.post("/api/v1/gaps/999/acknowledge", headers={"X-CSRFToken": token})
    assert response.status_code == 404


def test_wrong_password_then_throttled_per_user(web_app: Flask) -> None:
    client = web_app.test_client()
    for _ in range(web_app.config["LOGIN_MAX_FAILURES_USER"]):
        assert sign_in(client, "admin", "wrong password!").status_code == 401
    response = sign_in(client, "admin", PASSWORD)  # right password, but throttled
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert sign_in(client, "operator").status_code == 302  # another user is not locked out


def test_throttled_per_address_across_usernames(web_app: Flask) -> None:
    web_app.config["LOGIN_MAX_FAILURES_ADDRESS"] = 3
    client = web_app.test_client()
    for name in ("a1", "a2", "a3"):
        assert sign_in(client, name, "nope nope nope").status_code == 401
    assert sign_in(client, "viewer").status_code == 429


def test_throttle_window_moves_on() -> None:
    now = [0.0]
    throttle = LoginThrottle(2, 60, clock=lambda: now[0])
    throttle.failed("k")
    throttle.failed("k")
    assert throttle.retry_after("k") == 61
    now[0] = 60.5
    assert throttle.retry_after("k") == 0


def test_security_headers_on_every_response(
    web_app: Flask, as_role: Callable[[str | None], FlaskClient]
) -> None:
    client = as_role("viewer")
    for path in ("/login", "/", "/gaps", "/api/v1/gaps", "/no-such-page", "/static/dashboard.css"):
        response = client.get(path)
        response.close()  # the static file is streamed from an open file
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_scripts(as_role: Callable[[str | None], FlaskClient]) -> None:
    client = as_role("admin")
    for path in ("/", "/merchants", "/gaps", "/agents", "/imports", "/alerts", "/audit", "/users"):
        html = client.get(path).get_data(as_text=True).lower()
        assert "<script" not in html and "onclick=" not in html and "style=" not in html, path


def test_anonymous_redirected_and_api_401(web_app: Flask) -> None:
    client = web_app.test_client()
    response = client.get("/gaps")
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]
    assert client.get("/api/v1/gaps").status_code == 401
    assert (
        client.get("/api/v1/gaps", headers={"Authorization": "Bearer sgt_bad"}).status_code == 401
    )


def test_next_is_never_an_open_redirect(web_app: Flask) -> None:
    client = web_app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login?next=//evil.example/x",
        data={"username": "viewer", "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_disabled_user_loses_access_at_once(
    db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    from settleguard.collector.web.users import disable_user

    client = as_role("operator")
    assert client.get("/").status_code == 200
    disable_user(db, "operator", actor="admin")
    assert client.get("/").status_code == 302
    assert authenticate(db, "operator", PASSWORD) is None
