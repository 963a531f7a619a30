"""Every state-changing action × every role: viewers get 403, anonymous users are sent to
sign in (pages) or get 401 (API), operators and admins get through."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.store import Store
from settleguard.collector.web.tokens import create_token

from tests.collector.web.conftest import csrf_token, seed_world

PAGE_ACTIONS = [
    ("gap.acknowledge", "/gaps/{gap_id}/acknowledge", {}),
    ("gap.resolve", "/gaps/{gap_id}/resolve", {"note": "paid by hand"}),
    ("alert.resend", "/gaps/{gap_id}/resend", {}),
    ("agent.approve", "/agents/ag-1/approve", {}),
    ("agent.revoke", "/agents/ag-1/revoke", {}),
    ("agent.revoke_keys", "/agents/ag-1/revoke-keys", {}),
    ("account.status", "/merchants/M100/accounts/{account_id}", {"status": "active"}),
    ("import.upload", "/imports", {"file": "statement"}),
]
API_ACTIONS = [
    ("gap.acknowledge", "/api/v1/gaps/{gap_id}/acknowledge", {}),
    ("gap.resolve", "/api/v1/gaps/{gap_id}/resolve", {"note": "paid by hand"}),
    ("alert.resend", "/api/v1/gaps/{gap_id}/resend", {}),
    ("agent.approve", "/api/v1/agents/ag-1/approve", {}),
    ("agent.revoke", "/api/v1/agents/ag-1/revoke", {}),
    ("agent.revoke_keys", "/api/v1/agents/ag-1/revoke-keys", {}),
    ("import.upload", "/api/v1/imports", {"file": "statement"}),
]
CSV = b"date,amount,reference\n"  # rejected by the importer: still an audited attempt


def _form(fields: dict[str, str], token: str | None) -> dict[str, object]:
    data: dict[str, object] = {k: v for k, v in fields.items() if k != "file"}
    if "file" in fields:
        data["file"] = (io.BytesIO(CSV), "statement.csv")
    if token is not None:
        data["csrf_token"] = token
    return data


def _audited(db: Store, action: str) -> int:
    row = db.query_one(
        "SELECT COUNT(*) AS n FROM audit_log WHERE action LIKE ?", (action.split(".")[0] + ".%",)
    )
    return int(row["n"]) if row else 0


@pytest.mark.parametrize(("name", "path", "fields"), PAGE_ACTIONS, ids=[a[0] for a in PAGE_ACTIONS])
@pytest.mark.parametrize("role", ["anonymous", "viewer", "operator", "admin"])
def test_page_action_permissions(
    as_role: Callable[[str | None], FlaskClient], db: Store, role: str, name: str, path: str,
    fields: dict[str, str],
) -> None:  # fmt: skip
    ids = seed_world(db)
    client = as_role(None if role == "anonymous" else role)
    before = db.query("SELECT id FROM audit_log")
    response = client.post(path.format(**ids), data=_form(fields, csrf_token(client)),
                           content_type="multipart/form-data")  # fmt: skip
    after = db.query("SELECT id, actor, action, detail FROM audit_log")
    new = after[len(before) :]
    if role == "anonymous":
        assert response.status_code == 302 and "/login" in response.headers["Location"]
        assert new == []
    elif role == "viewer":
        assert response.status_code == 403
        assert new == []
    else:
        assert response.status_code in (200, 302, 422), response.get_data(as_text=True)[:300]
        mine = [r for r in new if r["actor"] == role]
        assert mine, f"{name} by {role} left no audit line"
        assert '"before"' in mine[-1]["detail"] and '"after"' in mine[-1]["detail"]


@pytest.mark.parametrize(("name", "path", "fields"), API_ACTIONS, ids=[a[0] for a in API_ACTIONS])
@pytest.mark.parametrize("role", ["anonymous", "viewer", "operator", "admin"])
def test_api_action_permissions(
    web_app: Flask, db: Store, role: str, name: str, path: str, fields: dict[str, str]
) -> None:
    ids = seed_world(db)
    headers = (
        {}
        if role == "anonymous"
        else {"Authorization": "Bearer " + create_token(db, role, actor="t")}
    )
    client = web_app.test_client()
    if "file" in fields:
        response = client.post(path, data=_form(fields, None), headers=headers,
                               content_type="multipart/form-data")  # fmt: skip
    else:
        response = client.post(
            path.format(**ids), json={k: v for k, v in fields.items()}, headers=headers
        )
    if role == "anonymous":
        assert response.status_code == 401
    elif role == "viewer":
        assert response.status_code == 403
    else:
        assert response.status_code in (200, 422), response.get_json()
        assert _audited(db, name) >= 1


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_controls_shown_only_to_those_who_may_use_them(
    as_role: Callable[[str | None], FlaskClient], db: Store, role: str
) -> None:
    seed_world(db)
    client = as_role(role)
    pages = {
        "/gaps": ["Acknowledge", "Resolve", "Re-send alert"],
        "/merchants/M100": ["Acknowledge", "Activate"],
        "/agents": ["Approve", "Revoke"],
        "/imports": ['type="file"'],
    }
    for path, controls in pages.items():
        html = client.get(path).get_data(as_text=True)
        for control in controls:
            assert (control in html) == (role != "viewer"), (path, control, role)
    users_page = client.get("/users")
    assert users_page.status_code == (200 if role == "admin" else 403)
    export = client.get("/export/users.csv")
    assert export.status_code == (200 if role == "admin" else 403)
