"""``settleguard collector match …`` through click (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskCliRunner
from settleguard.collector.cli import collector
from settleguard.collector.reconcile.store import list_gaps, reconcile
from settleguard.collector.web.db import get_store

from tests.collector.reconcile.test_recon_acquirer import _credit, _merchant
from tests.collector.reconcile.test_recon_store import add_batch

NET = 152_300 - 914


def test_add_suggest_split_list_undo(runner: FlaskCliRunner, app: Flask) -> None:
    store = get_store(app)
    _merchant(store, "MC")
    with store.transaction() as tx:
        add_batch(tx, "MC", "T1", 1, datetime(2025, 3, 12, 12, tzinfo=UTC), 152_300)
    _credit(store, "pair", NET + 5_000, "拉卡拉支付股份有限公司")
    reconcile(store, full=True)
    (gap,) = list_gaps(store, merchant_id="MC")
    key = gap["batch_ids"][0]

    suggested = runner.invoke(collector, ["match", "suggest", str(gap["id"]), "--json"])
    assert suggested.exit_code == 0, suggested.output
    assert json.loads(suggested.stdout)[0]["credit_ids"] == ["pair"]

    bad = runner.invoke(
        collector, ["match", "split", "--merchant", "MC", "--credit", "pair",
                    "--amounts", "1514.86,50.001", "--note", "x"],
    )  # fmt: skip
    assert bad.exit_code == 1
    assert "--amounts" in bad.output

    split = runner.invoke(
        collector, ["match", "split", "--merchant", "MC", "--credit", "pair",
                    "--amounts", "1513.86,50.00", "--note", "两笔合并入账", "--json"],
    )  # fmt: skip
    assert split.exit_code == 0, split.output
    assert json.loads(split.stdout)["parts"] == ["pair/1", "pair/2"]

    added = runner.invoke(
        collector, ["match", "add", "--merchant", "MC", "--batch", key, "--credit", "pair/1",
                    "--note", "客服确认", "--actor", "op1", "--json"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    hand_id = json.loads(added.stdout)["id"]
    rows = store.query("SELECT rule FROM matches WHERE merchant_id = 'MC'")
    assert [r["rule"] for r in rows] == ["manual"]

    listed = runner.invoke(collector, ["match", "list", "--merchant", "MC"])
    assert "客服确认" in listed.output and "in force" in listed.output

    again = runner.invoke(collector, ["match", "undo", str(hand_id), "--note", "wrong"])
    assert again.exit_code == 0, again.output
    twice = runner.invoke(collector, ["match", "undo", str(hand_id), "--note", "wrong"])
    assert twice.exit_code == 1
    assert "undone already" in twice.output
