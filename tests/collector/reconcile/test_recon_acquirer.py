"""Store level: a merchant's acquirer gives default terms and the payers of its payouts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from settleguard.collector.merchants import import_merchants
from settleguard.collector.reconcile.store import list_gaps, load_inputs, reconcile
from settleguard.collector.store import Store

from tests.collector.reconcile.test_recon_store import add_batch, hasher

NOW = datetime(2025, 3, 20, 4, 0, tzinfo=UTC)
ACCOUNT = "6217000011112222333"


def _merchant(store: Store, mid: str) -> None:
    csv = (
        "merchant_id,name,cycle,cutoff,fees,account,account_effective_at,acquirer\n"
        f"{mid},面馆,,,,{ACCOUNT},2025-01-01,lakala\n"
    ).encode()
    import_merchants(store, csv, account_hmac=hasher)


def _credit(store: Store, entry: str, amount: int, payer: str, column: str = "payer_name") -> None:
    """A booked credit whose payer is in ``column``: ``payer_name`` as a Chinese bank export
    prints it (对方户名), or ``counterparty`` as camt.053 gives it."""
    with store.transaction() as tx:
        tx.insert(
            "imports",
            {"kind": "statement", "filename": f"{entry}.csv", "file_sha256": entry,
             "status": "done", "account_hmac": hasher(ACCOUNT), "period_start": "2025-03-01",
             "period_end": "2025-03-31", "balance_ok": 1},
        )  # fmt: skip
        tx.insert(
            "credits",
            {"account_hmac": hasher(ACCOUNT), "account_masked": "6217****2333",
             "booked_at": "2025-03-13", "value_date": "2025-03-13", "amount": amount,
             "currency": "CNY", "kind": "credit", "reference": "", column: payer,
             "entry_id": entry, "status": "booked"},
        )  # fmt: skip


def test_acquirer_defaults_fill_what_the_contract_leaves_blank(store: Store) -> None:
    _merchant(store, "MA")
    row = store.query(
        "SELECT settlement_cycle, cutoff_local, fee_schedule, acquirer FROM merchants"
    )[0]
    assert (row["settlement_cycle"], row["cutoff_local"], row["acquirer"]) == (
        "T+1",
        "23:00",
        "lakala",
    )
    fees = json.loads(row["fee_schedule"])
    debit = next(r for r in fees["rules"] if r["card_type"] == "domestic_debit")
    assert (debit["rate_bp"], debit["cap"]) == (60, 2000)
    with store.transaction() as tx:
        (inputs,) = load_inputs(tx, ["MA"])
    assert "拉卡拉支付股份有限公司" in inputs.merchant.payers


@pytest.mark.parametrize("column", ["payer_name", "counterparty"])
def test_transfer_from_someone_else_is_not_matched(store: Store, column: str) -> None:
    _merchant(store, "MB")
    with store.transaction() as tx:
        add_batch(tx, "MB", "T1", 1, datetime(2025, 3, 12, 12, tzinfo=UTC), 152_300)
    net = 152_300 - 914  # 0.60 % by the profile's default for "UPI" (the "*" rule)
    _credit(store, "friend", net, "张三", column)
    reconcile(store, now=NOW, full=True)
    gaps = list_gaps(store, merchant_id="MB")
    assert [g["category"] for g in gaps] == ["MISSING"]
    evidence = gaps[0]["evidence"]
    evidence = json.loads(evidence) if isinstance(evidence, str) else evidence
    assert evidence["not_from_acquirer"][0]["credit_id"] == "friend"
    _credit(store, "lkl", net, "拉***付股份有限公司", column)
    reconcile(store, now=NOW)
    assert list_gaps(store, merchant_id="MB") == []
    assert store.query("SELECT COUNT(*) AS n FROM matches WHERE merchant_id = 'MB'")[0]["n"] == 1
