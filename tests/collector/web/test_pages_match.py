"""Hand matching in the dashboard: suggestions, confirm with one click, undo; roles and CSRF."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.reconcile.store import list_gaps, reconcile
from settleguard.collector.store import Store

from tests.collector.reconcile.test_recon_acquirer import _credit, _merchant
from tests.collector.reconcile.test_recon_store import add_batch
from tests.collector.web.conftest import csrf_token

NET = 152_300 - 914


def test_confirm_suggestion_then_undo(
    web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    _merchant(db, "MD")
    with db.transaction() as tx:
        add_batch(tx, "MD", "T1", 1, datetime(2025, 3, 12, 12, tzinfo=UTC), 152_300)
    _credit(db, "friend", NET, "张三")
    reconcile(db, full=True)
    (gap,) = list_gaps(db, merchant_id="MD")
    page_path = f"/gaps/{gap['id']}/match"

    viewer = as_role("viewer")
    html = viewer.get(page_path).get_data(as_text=True)
    assert "friend" in html and "not from the acquirer" in html
    assert 'id="hand-match"' not in html  # viewers see, operators act
    merchant_page = viewer.get("/merchants/MD").get_data(as_text=True)
    assert page_path in merchant_page

    operator = as_role("operator")
    token = csrf_token(operator)
    form = {"csrf_token": token, "credit_ids": "friend", "note": "商户确认是收单机构代付"}
    assert operator.post(f"{page_path}/match", data={**form, "csrf_token": ""}).status_code == 400
    done = operator.post(f"{page_path}/match", data=form)
    assert done.status_code == 302
    assert list_gaps(db, merchant_id="MD") == []
    (row,) = db.query("SELECT id FROM hand_matches WHERE merchant_id = 'MD'")
    undo = {"csrf_token": token, "hand_id": str(row["id"]), "note": "弄错了"}
    assert operator.post(f"{page_path}/undo", data=undo).status_code == 302
    assert [g["category"] for g in list_gaps(db, merchant_id="MD")] == ["MISSING"]
    own = {**undo, "csrf_token": csrf_token(viewer)}
    assert viewer.post(f"{page_path}/undo", data=own).status_code == 403


def test_gap_explains_the_payer_and_the_return_reason(
    web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    _merchant(db, "ME")
    with db.transaction() as tx:
        add_batch(tx, "ME", "T1", 1, datetime(2025, 3, 12, 12, tzinfo=UTC), 152_300)
    _credit(db, "friend", NET, "张三")
    reconcile(db, full=True)
    html = as_role("viewer").get("/merchants/ME?lang=zh-CN").get_data(as_text=True)
    assert "非收单机构付款" in html and "张三" in html
