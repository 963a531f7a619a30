"""Hand matching over the JSON API: suggestions, confirm, split, undo, roles, audit."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from settleguard.collector.reconcile.store import list_gaps, reconcile
from settleguard.collector.store import Store
from settleguard.collector.web.tokens import create_token

from tests.collector.reconcile.test_recon_acquirer import _credit, _merchant
from tests.collector.reconcile.test_recon_store import add_batch

NET = 152_300 - 914


def test_confirm_a_suggestion_split_and_undo(web_app: Flask, db: Store) -> None:
    _merchant(db, "MA")
    with db.transaction() as tx:
        add_batch(tx, "MA", "T1", 1, datetime(2025, 3, 12, 12, tzinfo=UTC), 152_300)
    _credit(db, "c1", NET + 200, "拉卡拉支付股份有限公司")
    reconcile(db, full=True)
    (gap,) = list_gaps(db, merchant_id="MA")
    client = web_app.test_client()
    viewer = {"Authorization": "Bearer " + create_token(db, "viewer", actor="t")}
    operator = {"Authorization": "Bearer " + create_token(db, "operator", actor="t")}
    path = f"/api/v1/gaps/{gap['id']}"

    suggestions = client.get(f"{path}/suggestions", headers=viewer).get_json()["items"]
    assert suggestions[0]["credit_ids"] == ["c1"]
    assert suggestions[0]["difference"] == 200
    body = {"credit_ids": ["c1"], "note": "acquirer added a refund of ¥2"}
    assert client.post(f"{path}/match", json=body, headers=viewer).status_code == 403
    assert (
        client.post(f"{path}/match", json={"credit_ids": ["c1"]}, headers=operator).status_code
        == 400
    )
    done = client.post(f"{path}/match", json=body, headers=operator)
    assert done.status_code == 200, done.get_data(as_text=True)
    hand_id = done.get_json()["id"]
    assert list_gaps(db, merchant_id="MA") == []
    again = client.post(f"{path}/match", json=body, headers=operator)
    assert again.status_code == 409

    listed = client.get("/api/v1/merchants/MA/hand-matches", headers=viewer).get_json()["items"]
    assert [(r["id"], r["kind"]) for r in listed] == [(hand_id, "match")]

    split = {"merchant_id": "MA", "credit_id": "c1", "amounts": [NET, 200], "note": "split"}
    busy = client.post("/api/v1/credits/split", json=split, headers=operator)
    assert busy.status_code == 409  # the credit is in a hand match
    undo = client.post(f"/api/v1/matches/{hand_id}/undo", json={"note": "wrong"}, headers=operator)
    assert undo.get_json()["undone_at"] is not None
    parts = client.post("/api/v1/credits/split", json=split, headers=operator).get_json()
    assert parts["parts"] == ["c1/1", "c1/2"]
    actions = [r["action"] for r in db.query("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-3:] == ["match.hand", "match.undo", "match.split"]
    unknown = client.post(
        "/api/v1/matches",
        json={"merchant_id": "MA", "batch_keys": ["nope"], "credit_ids": ["c1/2"], "note": "n"},
        headers=operator,
    )
    assert unknown.status_code == 404
