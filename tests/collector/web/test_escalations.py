"""The escalation queue: SMS that need a person, and the operator's "went out / send again"."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.store import Store
from settleguard.collector.web.tokens import create_token

from tests.collector.web.conftest import csrf_token, seed_world


def _stuck_alert(db: Store, gap_id: int, state: str = "sending") -> int:
    """An SMS whose send was interrupted (or failed): escalated, waiting for an operator."""
    with db.transaction() as tx:
        alert_id = tx.insert(
            "alerts",
            {"dedupe_key": f"gap:{gap_id}:stuck:{state}", "gap_id": gap_id, "merchant_id": "M100",
             "phone": "13800001234", "locale": "zh-CN", "text": "您的结算款未到账", "state": state,
             "attempts": 1, "stage": "first", "escalated_at": "2024-05-03T02:00:00Z",
             "escalation_reason": "interrupted while sending"},
        )  # fmt: skip
    return int(alert_id)


def _alert(db: Store, alert_id: int) -> dict[str, object]:
    row = db.query_one("SELECT state, escalated_at, sent_at FROM alerts WHERE id = ?", (alert_id,))
    assert row is not None
    return row


@pytest.mark.parametrize("decision", ["went_out", "send_again"])
@pytest.mark.parametrize("role", ["anonymous", "viewer", "operator", "admin"])
def test_decision_permissions_and_audit(
    as_role: Callable[[str | None], FlaskClient], db: Store, role: str, decision: str
) -> None:
    alert_id = _stuck_alert(db, seed_world(db)["gap_id"])
    client = as_role(None if role == "anonymous" else role)
    response = client.post(
        f"/alerts/{alert_id}/decide", data={"decision": decision, "csrf_token": csrf_token(client)}
    )
    audit = db.query(
        "SELECT actor, action, target, detail FROM audit_log WHERE action LIKE 'alert.%'"
    )
    if role == "anonymous":
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    elif role == "viewer":
        assert response.status_code == 403
    if role in ("anonymous", "viewer"):
        assert audit == [] and _alert(db, alert_id)["state"] == "sending"
        return
    assert response.status_code == 302
    after = _alert(db, alert_id)
    assert after["escalated_at"] is None
    assert after["state"] == ("sent" if decision == "went_out" else "queued")
    (line,) = audit
    assert line["actor"] == role and line["action"] == f"alert.{decision}"
    assert line["target"] == f"alert:{alert_id}"
    assert '"before"' in line["detail"] and '"sending"' in line["detail"]


def test_decision_without_csrf_token_is_refused(
    as_role: Callable[[str | None], FlaskClient], db: Store
) -> None:
    alert_id = _stuck_alert(db, seed_world(db)["gap_id"])
    response = as_role("operator").post(f"/alerts/{alert_id}/decide", data={"decision": "went_out"})
    assert response.status_code == 400
    assert _alert(db, alert_id)["state"] == "sending"


def test_queue_page_overview_count_and_controls(
    as_role: Callable[[str | None], FlaskClient], db: Store
) -> None:
    gap_id = seed_world(db)["gap_id"]
    stuck, failed = _stuck_alert(db, gap_id), _stuck_alert(db, gap_id, state="failed")
    for role in ("viewer", "operator"):
        client = as_role(role)
        overview = client.get("/").get_data(as_text=True)
        assert 'id="escalations">2<' in overview
        page = client.get("/escalations").get_data(as_text=True)
        assert f'id="alert-{stuck}"' in page and f'id="alert-{failed}"' in page
        assert "interrupted while sending" in page and "***1234" in page
        assert "13800001234" not in page
        # only the interrupted send offers the decision, and only to operators
        assert page.count('value="went_out"') == (1 if role == "operator" else 0)
    client = as_role("operator")
    client.post(
        f"/alerts/{stuck}/decide", data={"decision": "went_out", "csrf_token": csrf_token(client)}
    )
    assert 'id="escalations">1<' in client.get("/").get_data(as_text=True)


def test_second_decision_and_unknown_ones_change_nothing(
    as_role: Callable[[str | None], FlaskClient], db: Store
) -> None:
    alert_id = _stuck_alert(db, seed_world(db)["gap_id"])
    client = as_role("operator")
    token = csrf_token(client)
    client.post(f"/alerts/{alert_id}/decide", data={"decision": "send_again", "csrf_token": token})
    again = client.post(
        f"/alerts/{alert_id}/decide", data={"decision": "went_out", "csrf_token": token},
        follow_redirects=True,
    )  # fmt: skip
    assert "not sending" in again.get_data(as_text=True)
    client.post(f"/alerts/{alert_id}/decide", data={"decision": "maybe", "csrf_token": token})
    assert _alert(db, alert_id)["state"] == "queued"
    actions = [r["action"] for r in db.query("SELECT action FROM audit_log")]
    assert actions == ["alert.send_again"]


@pytest.mark.parametrize("role", ["anonymous", "viewer", "operator"])
def test_api_escalations_and_decision(web_app: Flask, db: Store, role: str) -> None:
    alert_id = _stuck_alert(db, seed_world(db)["gap_id"])
    headers = (
        {}
        if role == "anonymous"
        else {"Authorization": "Bearer " + create_token(db, role, actor="t")}
    )
    client = web_app.test_client()
    listing = client.get("/api/v1/escalations", headers=headers)
    decided = client.post(f"/api/v1/alerts/{alert_id}/went_out", headers=headers)
    if role == "anonymous":
        assert listing.status_code == decided.status_code == 401
        return
    body = listing.get_json()
    assert body["count"] == 1 and body["items"][0]["id"] == alert_id
    assert body["items"][0]["phone"].endswith("1234") and "13800001234" not in str(body)
    if role == "viewer":
        assert decided.status_code == 403 and _alert(db, alert_id)["state"] == "sending"
    else:
        assert decided.status_code == 200, decided.get_json()
        assert decided.get_json()["state"] == "sent"
        assert client.get("/api/v1/escalations", headers=headers).get_json()["count"] == 0
        assert (
            client.post(f"/api/v1/alerts/{alert_id}/went_out", headers=headers).status_code == 409
        )
