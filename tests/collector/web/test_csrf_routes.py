"""Every state-changing route needs the CSRF token and a role, unless listed as exempt.

The walk covers ``app.url_map`` as registered, so a route added later without
``role_required`` (or a new machine endpoint not listed in ``CSRF_EXEMPT``) fails here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.store import Store
from settleguard.collector.web.security import CSRF_EXEMPT, NO_ROLE, STATE_CHANGING
from settleguard.collector.web.tokens import create_token

from tests.collector.web.conftest import csrf_token, seed_world


def _state_changing(app: Flask) -> list[tuple[str, str, str]]:
    """``(endpoint, method, a URL for it)`` for every state-changing route."""
    adapter = app.url_map.bind("localhost")
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & STATE_CHANGING):
            values = dict.fromkeys(rule.arguments, 1)
            routes.append(
                (rule.endpoint, method, adapter.build(rule.endpoint, values, method=method))
            )
    return routes


def route_problems(app: Flask, client: FlaskClient) -> list[str]:
    """What is wrong with the app's state-changing routes; ``client`` is signed in as admin.

    A route must answer 400 to a signed-in caller without the CSRF token (before its view
    runs), and its view must be wrapped in ``role_required``, unless it is listed in
    :data:`CSRF_EXEMPT` / :data:`NO_ROLE` with the reason.
    """
    problems = []
    for endpoint, method, url in _state_changing(app):
        view = app.view_functions[endpoint]
        if endpoint not in NO_ROLE and not getattr(view, "required_role", None):
            problems.append(f"{method} {url} ({endpoint}) has no role check")
        if endpoint in CSRF_EXEMPT:
            continue
        response = client.open(url, method=method, data={})
        if response.status_code != 400 or "CSRF" not in response.get_data(as_text=True):
            problems.append(f"{method} {url} ({endpoint}) ran without a CSRF token "
                            f"({response.status_code})")  # fmt: skip
    return problems


def test_every_state_changing_route_needs_csrf_and_a_role(
    web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    seed_world(db)
    before = db.query("SELECT id FROM audit_log")
    assert route_problems(web_app, as_role("admin")) == []
    assert db.query("SELECT id FROM audit_log") == before  # no view ran
    assert len(_state_changing(web_app)) >= 15  # the walk saw the whole app


def test_exemptions_name_real_endpoints_with_a_reason(web_app: Flask) -> None:
    endpoints = {endpoint for endpoint, _, _ in _state_changing(web_app)}
    for listed in (CSRF_EXEMPT, NO_ROLE):
        for endpoint, reason in listed.items():
            assert endpoint in endpoints and reason.strip(), endpoint


def test_a_new_route_without_protection_is_found(
    web_app: Flask, as_role: Callable[[str | None], FlaskClient]
) -> None:
    from settleguard.collector.web.auth import role_required

    changed: list[str] = []

    def careless() -> str:
        changed.append("careless")
        return "changed"

    def forgetful() -> str:  # a role check, but no CSRF call of its own: protected by default
        changed.append("forgetful")
        return "changed"

    web_app.add_url_rule("/api/v1/careless", "careless", careless, methods=["POST"])
    web_app.add_url_rule("/api/v1/forgetful/<int:n>", "forgetful",
                         role_required("operator")(forgetful), methods=["DELETE"])  # fmt: skip
    problems = route_problems(web_app, as_role("admin"))
    assert problems == ["POST /api/v1/careless (careless) has no role check"]
    assert changed == []


def test_session_api_calls_need_the_token_and_bearer_calls_do_not(
    web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    ids = seed_world(db)
    path = f"/api/v1/gaps/{ids['gap_id']}/acknowledge"
    session = as_role("operator")
    assert session.post(path).status_code == 400
    assert session.post(path, headers={"X-CSRFToken": "forged"}).status_code == 400
    assert session.post(path, headers={"X-CSRFToken": csrf_token(session)}).status_code == 200
    bearer = {"Authorization": "Bearer " + create_token(db, "operator", actor="t")}
    again = web_app.test_client().post(path, headers=bearer)
    assert again.status_code == 409  # past the CSRF check: the gap is acknowledged already
    assert web_app.test_client().post(path).status_code == 401  # no credentials: role check


@pytest.mark.parametrize("endpoint", sorted(CSRF_EXEMPT))
def test_exempt_machine_endpoints_still_refuse_without_their_proof(
    web_app: Flask, as_role: Callable[[str | None], FlaskClient], endpoint: str
) -> None:
    """A signed-in browser gains nothing there: each still wants its own proof."""
    [(_, _, url)] = [r for r in _state_changing(web_app) if r[0] == endpoint]
    response = as_role("admin").post(url, json={})
    assert response.status_code in (400, 403, 404), (url, response.status_code)
