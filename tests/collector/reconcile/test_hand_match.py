"""Store level: match by hand, unmatch, split, suggestions; audited, kept across runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from settleguard.collector.reconcile.manual import (
    HandMatchError,
    list_hand_matches,
    match_by_hand,
    split_credit,
    suggest_matches,
    unmatch,
)
from settleguard.collector.reconcile.store import list_gaps, reconcile
from settleguard.collector.store import Store

from tests.collector.reconcile.test_recon_acquirer import ACCOUNT, _credit, _merchant
from tests.collector.reconcile.test_recon_store import add_batch

NOW = datetime(2025, 3, 20, 4, 0, tzinfo=UTC)
NET = 152_300 - 914


def _setup(store: Store, mid: str) -> str:
    _merchant(store, mid)
    with store.transaction() as tx:
        add_batch(tx, mid, "T1", 1, datetime(2025, 3, 12, 12, tzinfo=UTC), 152_300)
    reconcile(store, now=NOW, full=True)
    (gap,) = list_gaps(store, merchant_id=mid)
    return gap["batch_ids"][0]


def _audit(store: Store) -> list[str]:
    return [r["action"] for r in store.query("SELECT action FROM audit_log ORDER BY id")]


def test_hand_match_of_a_friend_named_credit_survives_reruns(store: Store) -> None:
    key = _setup(store, "MH")
    # the acquirer paid through an agent whose name is not configured: the rules refuse it
    _credit(store, "odd", NET, "某某代付有限公司")
    reconcile(store, now=NOW)
    assert [g["category"] for g in list_gaps(store, merchant_id="MH")] == ["MISSING"]
    done = match_by_hand(
        store, "MH", [key], ["odd"], note="拉卡拉客服确认代付", actor="op1", now=NOW
    )
    assert list_gaps(store, merchant_id="MH") == []
    for full in (False, True):
        reconcile(store, now=NOW, full=full)
        rows = store.query("SELECT rule, credit_ids FROM matches WHERE merchant_id = 'MH'")
        assert [(r["rule"], json.loads(r["credit_ids"])) for r in rows] == [("manual", ["odd"])]
    assert _audit(store)[-1] == "match.hand"
    undone = unmatch(store, done["id"], note="wrong credit", actor="op2", now=NOW)
    assert undone["undone_by"] == "op2"
    assert [g["category"] for g in list_gaps(store, merchant_id="MH")] == ["MISSING"]
    assert _audit(store)[-1] == "match.undo"
    with pytest.raises(HandMatchError, match="undone already"):
        unmatch(store, done["id"], note="again", actor="op2", now=NOW)


def test_split_then_match_a_part(store: Store) -> None:
    key = _setup(store, "MS")
    _credit(store, "big", NET + 10_000, "拉卡拉支付股份有限公司")
    with pytest.raises(HandMatchError, match="add up to"):
        split_credit(store, "MS", "big", [NET, 9_999], note="n", actor="op", now=NOW)
    done = split_credit(store, "MS", "big", [NET, 10_000], note="两笔合并", actor="op", now=NOW)
    assert done["parts"] == ["big/1", "big/2"]
    assert list_gaps(store, merchant_id="MS") == []  # the rules matched the part by amount
    match_by_hand(store, "MS", [key], ["big/1"], note="确认", actor="op", now=NOW)
    with pytest.raises(HandMatchError, match="uses a part"):
        unmatch(store, done["id"], note="n", actor="op", now=NOW)
    assert [r["kind"] for r in list_hand_matches(store, "MS")] == ["match", "split"]
    assert _audit(store)[-2:] == ["match.split", "match.hand"]


@pytest.mark.parametrize(
    ("batches", "credits", "note", "message"),
    [
        (["nope"], ["c"], "n", "has no batch"),
        ([], ["c"], "n", "at least one batch"),
        (None, ["missing"], "n", "has no credit"),
        (None, ["c"], "  ", "needs a note"),
    ],
)
def test_bad_hand_matches_are_refused(
    store: Store, batches: list[str] | None, credits: list[str], note: str, message: str
) -> None:
    key = _setup(store, "MX")
    _credit(store, "c", 5, "张三")
    with pytest.raises(HandMatchError, match=message):
        match_by_hand(store, "MX", [key] if batches is None else batches, credits, note=note,
                      actor="op", now=NOW)  # fmt: skip


def test_suggestions_rank_the_acquirer_first(store: Store) -> None:
    _setup(store, "MG")
    _credit(store, "friend", NET, "张三")
    _credit(store, "lkl", NET + 300, "拉卡拉支付股份有限公司")  # ¥3 over: no rule takes it
    reconcile(store, now=NOW)
    (gap,) = list_gaps(store, merchant_id="MG")
    found = suggest_matches(store, gap["id"], now=NOW)
    assert [s["credit_ids"] for s in found][:2] == [["lkl"], ["friend"]]
    assert (found[0]["from_acquirer"], found[0]["difference"]) == (True, 300)
    assert found[1]["from_acquirer"] is False
    assert ACCOUNT not in json.dumps(found)
