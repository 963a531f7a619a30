"""Reviewing a card change: requested -> under_review -> active/rejected, audited, re-reconciled."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from settleguard.collector.cli import collector
from settleguard.collector.merchants import AccountTransitionError, set_account_status
from settleguard.collector.reconcile.store import reconcile
from settleguard.collector.store import Store
from settleguard.collector.web.db import get_store
from settleguard.collector.web.tokens import create_token

from tests.collector.reconcile.test_recon_acquirer import _merchant
from tests.collector.reconcile.test_recon_store import add_batch, hasher
from tests.collector.web.conftest import csrf_token


def _requested(store: Store, mid: str) -> int:
    with store.transaction() as tx:
        return tx.insert(
            "settlement_accounts",
            {"merchant_id": mid, "account_masked": "****9999", "account_hmac": hasher("62229999"),
             "status": "requested", "requested_at": "2025-03-01T00:00:00Z"},
        )  # fmt: skip


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (["under_review", "active", "retired"], True),
        (["under_review", "rejected", "under_review", "active"], True),
        (["rejected", "active"], False),  # a rejected change goes back to review first
        (["active", "under_review"], False),
        (["under_review", "under_review"], False),
    ],
)
def test_review_transitions(store: Store, path: list[str], allowed: bool) -> None:
    _merchant(store, "MT")
    account = _requested(store, "MT")
    try:
        for status in path:
            set_account_status(store, account, status, actor="op", reference="LKL-CHG-1")
    except AccountTransitionError:
        assert not allowed
    else:
        assert allowed


def test_cli_review_records_reference_date_and_reconciles(
    runner: FlaskCliRunner, app: Flask
) -> None:
    store = get_store(app)
    _merchant(store, "MR")
    account = _requested(store, "MR")
    with store.transaction() as tx:
        add_batch(tx, "MR", "T1", 1, datetime(2025, 3, 12, 12, tzinfo=UTC), 10_000)
    reconcile(store, full=True)
    listed = runner.invoke(collector, ["accounts", "list", "--merchant", "MR", "--json"])
    assert [r["status"] for r in json.loads(listed.stdout)] == ["active", "requested"]
    review = ["accounts", "review", str(account), "--status", "under_review",
              "--reference", "LKL-CHG-7", "--date", "2025-03-02", "--actor", "op1"]  # fmt: skip
    done = runner.invoke(collector, [*review, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["status"] == "under_review"
    history = store.query(
        "SELECT status, reference, changed_at, actor FROM settlement_account_history"
        " WHERE account_id = ? ORDER BY id",
        (account,),
    )
    assert history[-1] == {"status": "under_review", "reference": "LKL-CHG-7",
                           "changed_at": "2025-03-02T00:00:00Z", "actor": "op1"}  # fmt: skip
    (line,) = store.query("SELECT detail FROM audit_log WHERE action = 'account.status'")
    detail = json.loads(line["detail"])
    assert detail["reference"] == "LKL-CHG-7" and detail["after"]["status"] == "under_review"
    # reconciled at once: nothing is left queued for the merchant
    assert store.query("SELECT merchant_id FROM recon_dirty WHERE merchant_id = 'MR'") == []
    again = runner.invoke(collector, review)
    assert again.exit_code == 1 and "cannot become under_review" in again.output


def test_api_review(web_app: Flask) -> None:
    store = get_store(web_app)
    _merchant(store, "MP")
    account = _requested(store, "MP")
    client = web_app.test_client()
    operator = {"Authorization": "Bearer " + create_token(store, "operator", actor="t")}
    viewer = {"Authorization": "Bearer " + create_token(store, "viewer", actor="t")}
    path = f"/api/v1/accounts/{account}/status"
    body = {"status": "rejected", "reference": "LKL-R-2", "date": "2025-03-03", "note": "户名不符"}
    assert client.post(path, json=body, headers=viewer).status_code == 403
    assert client.post(path, json={**body, "date": "3/3/25"}, headers=operator).status_code == 400
    done = client.post(path, json=body, headers=operator)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "rejected"
    assert client.post(path, json={"status": "active"}, headers=operator).status_code == 409
    assert (
        client.post("/api/v1/accounts/99999/status", json=body, headers=operator).status_code == 404
    )


def test_dashboard_review_buttons(web_app: Flask, as_role: Any) -> None:
    store = get_store(web_app)
    _merchant(store, "MW")
    account = _requested(store, "MW")
    operator = as_role("operator")
    page = operator.get("/merchants/MW").get_data(as_text=True)
    assert 'value="under_review"' in page and 'name="reference"' in page
    form = {"csrf_token": csrf_token(operator), "status": "under_review",
            "reference": "LKL-D-5", "date": "2025-03-04"}  # fmt: skip
    assert operator.post(f"/merchants/MW/accounts/{account}", data=form).status_code == 302
    row = store.query_one(
        "SELECT reference, changed_at FROM settlement_account_history WHERE account_id = ?"
        " ORDER BY id DESC",
        (account,),
    )
    assert row == {"reference": "LKL-D-5", "changed_at": "2025-03-04T00:00:00Z"}


def test_acquirer_review_file(runner: FlaskCliRunner, app: Flask, tmp_path: Any) -> None:
    store = get_store(app)
    _merchant(store, "MF")
    account = _requested(store, "MF")
    rows = [
        "结算账户变更审核结果",
        "商户编号,新结算账号,审核状态,申请编号,审核日期,审核意见",
        "MF,6222****9999,审核中,LKL-CHG-9,2025-03-02,",
        "MX,6222****1111,审核通过,LKL-CHG-10,2025-03-02,",
    ]
    path = tmp_path / "reviews.csv"
    path.write_bytes("\n".join(rows).encode("gbk"))
    done = runner.invoke(collector, ["accounts", "import-reviews", str(path), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"applied": 1, "skipped": 0, "unknown": 1, "errors": {}}
    again = runner.invoke(collector, ["accounts", "import-reviews", str(path), "--json"])
    assert json.loads(again.stdout)["skipped"] == 1  # the same file twice changes nothing
    row = store.query_one(
        "SELECT status, reference, actor FROM settlement_account_history WHERE account_id = ?"
        " ORDER BY id DESC",
        (account,),
    )
    assert row == {"status": "under_review", "reference": "LKL-CHG-9", "actor": "acquirer-file"}
    path.write_bytes("\n".join([*rows[:2], "MF,6222****9999,不知道,X,2025-03-02,"]).encode())
    bad = runner.invoke(collector, ["accounts", "import-reviews", str(path)])
    assert bad.exit_code == 1 and "line 3 column 审核状态" in bad.output
