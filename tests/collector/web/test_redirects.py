"""Redirect targets taken from a request lead only to paths on this site."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.store import Store
from settleguard.collector.web.security import same_site_path

from tests.collector.web.conftest import PASSWORD, csrf_token, seed_world

# What a browser would follow off-site, directly or after dropping tabs, newlines and spaces.
EVIL = [
    "//evil.example/x",
    "///evil.example/x",
    "/\t/evil.example/x",
    "/\n/evil.example/x",
    "/\r/evil.example/x",
    "/\t\t/evil.example",
    "/ /evil.example",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x01//evil.example",
    "/\u3000/evil.example",  # ideographic space
    "/\u00a0/evil.example",  # no-break space
    "/\u200b/evil.example",  # zero-width space
    "/\ufeff/evil.example",  # byte-order mark
    "/\\evil.example",
    "/\\/evil.example",
    "\\\\evil.example",
    "/x\\..\\\\evil.example",
    "https://evil.example/x",
    "http:evil.example",
    "HTTPS://evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example/x",
    "//@evil.example",
    "/" + "a" * 3000,
    "",
]
SAME_SITE = ["/", "/gaps?status=open&sort=money", "/merchants/M100", "/%2F%2Fevil.example"]


@pytest.mark.parametrize("target", EVIL, ids=repr)
def test_off_site_targets_are_refused(target: str) -> None:
    assert same_site_path(target) is None


@pytest.mark.parametrize("target", SAME_SITE)
def test_site_paths_are_kept(target: str) -> None:
    assert same_site_path(target) == target


@pytest.mark.parametrize("target", EVIL, ids=repr)
def test_login_never_redirects_off_site(web_app: Flask, target: str) -> None:
    client = web_app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login?next=" + quote(target, safe=""),
        data={"username": "viewer", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login_follows_a_site_path(web_app: Flask) -> None:
    client = web_app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login?next=" + quote("/gaps?status=open", safe=""),
        data={"username": "viewer", "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/gaps?status=open"


@pytest.mark.parametrize("target", ["/\t/evil.example/x", "//evil.example", "/\\evil.example"])
def test_a_forms_next_field_never_leaves_the_site(
    db: Store, as_role: Callable[[str | None], FlaskClient], target: str
) -> None:
    world = seed_world(db)
    client = as_role("operator")
    response = client.post(
        f"/gaps/{world['gap_id']}/acknowledge",
        data={"csrf_token": csrf_token(client), "next": target},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/gaps"
