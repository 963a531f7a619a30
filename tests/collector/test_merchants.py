"""Merchants CSV import and settlement-account history, on SQLite and PostgreSQL.

Fee cells parse into the engine's schedule; every bad cell is named by line and column and
nothing is stored; an account change is an operator edit in the history (old one retired,
masked + HMAC only); operator decisions on card changes mark the merchant for reconciliation.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.collector.account_numbers import account_hmac
from settleguard.collector.merchants import (
    MerchantFileError,
    fee_schedule_from_json,
    import_merchants,
    parse_fees,
    parse_merchants_csv,
    set_account_status,
)
from settleguard.collector.reconcile.model import FeeRule
from settleguard.collector.store import Store

KEY = b"merchant-test-key-0123456789abcd"
HEADER = "merchant_id,name,phones,locale,cycle,cutoff,timezone,fees,account,account_effective_at"


def hasher(number: str) -> str:
    return account_hmac(KEY, number)


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def test_parse_fees_items_default_and_errors() -> None:
    doc = parse_fees("UPI=60/2000; VISA=125//30 ;*=55")
    assert doc["rules"] == [
        {"card_type": "UPI", "rate_bp": 60, "cap": 2000, "fixed": 0},
        {"card_type": "VISA", "rate_bp": 125, "cap": None, "fixed": 30},
    ]
    assert doc["default"] == {"card_type": "*", "rate_bp": 55, "cap": None, "fixed": 0}
    assert parse_fees("")["default"]["rate_bp"] == 0
    schedule = fee_schedule_from_json(json.dumps(doc))
    assert schedule.rules[0] == FeeRule("UPI", 60, 2000, 0)
    assert schedule.default == FeeRule("*", 55, None, 0)
    for bad, message in [
        ("UPI", "is not CARD=rate_bp"),
        ("UPI=1/2/3/4", "is not CARD=rate_bp"),
        ("=60", "is not CARD=rate_bp"),
        ("UPI=0.6", "integers in minor units"),
        ("UPI=/100", "has no rate"),
        ("UPI=60;UPI=70", "listed twice"),
        ("UPI=10001", "rate_bp must be 0..10000"),
        ("UPI=60/-1", "cap must be >= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_fees(bad)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_parse_fees_garbage_only_raises_value_error(text: str) -> None:
    try:
        doc = parse_fees(text)
    except ValueError:
        return
    fee_schedule_from_json(json.dumps(doc))  # whatever parses is usable


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_merchants_csv_garbage_only_raises_our_error(data: bytes) -> None:
    try:
        parse_merchants_csv(b"merchant_id,fees,cutoff,timezone,account\n" + data)
    except MerchantFileError:
        pass


@pytest.mark.parametrize(
    ("row", "line", "column", "message"),
    [
        (",Shop,,,,,,,,", 3, "merchant_id", "merchant id is empty"),
        ("M2,Shop,,,T+2,,,,,", 3, "cycle", r"is not one of T\+1, T0, D\+1, D0, S0"),
        ("M2,Shop,,,,7pm,,,,", 3, "cutoff", "not HH:MM"),
        ("M2,Shop,,,,,Asia/Nowhere,,,", 3, "timezone", "unknown time zone"),
        ("M2,Shop,,,,,,UPI=x,,", 3, "fees", "integers in minor units"),
        ("M2,Shop,,,,,,,1234-567,", 3, "account", "at least 8 digits"),
        ("M2,Shop,,,,,,,62170000111122223,3/4/2024", 3, "account_effective_at", "ISO date"),
        ("M1,Again,,,,,,,,", 3, "merchant_id", "already on line 2"),
        ("M2,Shop,,,,,,,,,extra", 3, "#11", "11 cells but the header has 10"),
    ],
)
def test_bad_cell_names_line_and_column_and_stores_nothing(
    store: Store, row: str, line: int, column: str, message: str
) -> None:
    data = csv("M1,First,138,zh-CN,T+1,23:00,Asia/Shanghai,*=60,6217000011112222333,", row)
    with pytest.raises(MerchantFileError, match=message) as caught:
        import_merchants(store, data, account_hmac=hasher)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert str(caught.value).startswith(f"line {line} column {column}: ")
    for table in ("merchants", "settlement_accounts", "settlement_account_history", "recon_dirty"):
        assert store.count(table) == 0, table


@pytest.mark.parametrize(
    ("data", "line", "column", "message"),
    [
        (b"name\nShop\n", 1, None, "no merchant_id column"),
        (b"merchant_id,colour\nM1,red\n", 1, "colour", "unknown column"),
        (b"merchant_id\n\xff\xfe\n", None, None, r"not UTF-8 \(byte 12\)"),
        (b'merchant_id,name\nM1,"unterminated\n', 2, None, "bad CSV"),
    ],
)
def test_bad_file_is_refused_whole(
    data: bytes, line: int | None, column: str | None, message: str
) -> None:
    with pytest.raises(MerchantFileError, match=message) as caught:
        parse_merchants_csv(data)
    assert (caught.value.line, caught.value.column) == (line, column)


def test_import_creates_updates_and_keeps_account_history(store: Store) -> None:
    first = csv(
        "M1,Shop one,138 0000 0001;139,en,D0,22:30,Europe/Berlin,UPI=60/2000;*=55,"
        "6217 0000 1111 2222 333,2024-01-01",
        "M2,Shop two,,,,,,,,",
    )
    assert import_merchants(store, b"\xef\xbb\xbf" + first, account_hmac=hasher, actor="ops") == {
        "merchants": 2,
        "accounts": 1,
    }
    m1 = store.query_one("SELECT * FROM merchants WHERE merchant_id = 'M1'")
    assert m1 is not None
    assert (m1["name"], m1["settlement_cycle"], m1["cutoff_local"], m1["timezone"]) == (
        "Shop one", "D0", "22:30", "Europe/Berlin",
    )  # fmt: skip
    assert m1["locale"] == "en" and m1["phones"] == '["138 0000 0001", "139"]'
    m2 = store.query_one("SELECT * FROM merchants WHERE merchant_id = 'M2'")
    assert m2 is not None and (m2["settlement_cycle"], m2["timezone"]) == ("T+1", "Asia/Shanghai")
    (account,) = store.query("SELECT * FROM settlement_accounts")
    assert account["account_masked"] == "****2333"
    assert account["account_hmac"] == hasher("6217000011112222333")
    assert account["status"] == "active" and account["effective_at"] == "2024-01-01T00:00:00Z"
    assert {r["merchant_id"] for r in store.query("SELECT merchant_id FROM recon_dirty")} == {
        "M1",
        "M2",
    }
    # the same account in another layout is no change; a new one retires the old
    same = csv("M1,Shop one,,,,,,*=60,6217-0000-1111-2222-333,2024-02-01")
    assert import_merchants(store, same, account_hmac=hasher)["accounts"] == 0
    new = csv("M1,Shop 1,,,,,,*=60,6222 0210 0112 3456 789,2024-03-01T10:00:00+08:00")
    assert import_merchants(store, new, account_hmac=hasher, actor="ops")["accounts"] == 1
    rows = store.query(
        "SELECT id, status, retired_at, effective_at FROM settlement_accounts ORDER BY id"
    )
    assert [(r["status"], r["retired_at"]) for r in rows] == [
        ("retired", "2024-03-01T02:00:00Z"),
        ("active", None),
    ]
    assert rows[1]["effective_at"] == "2024-03-01T02:00:00Z"
    history = store.query(
        "SELECT account_id, status, actor FROM settlement_account_history ORDER BY id"
    )
    assert [(h["account_id"], h["status"], h["actor"]) for h in history] == [
        (rows[0]["id"], "active", "ops"),
        (rows[0]["id"], "retired", "ops"),
        (rows[1]["id"], "active", "ops"),
    ]
    updated = store.query_one("SELECT name, fee_schedule FROM merchants WHERE merchant_id = 'M1'")
    assert updated is not None and updated["name"] == "Shop 1"
    assert fee_schedule_from_json(updated["fee_schedule"]).default.rate_bp == 60
    for row in store.iter_rows("settlement_accounts"):
        assert "6222021001123456789" not in repr(row) and "6217000011112222333" not in repr(row)


def test_set_account_status_decides_a_change(store: Store) -> None:
    import_merchants(
        store, csv("M1,Shop,,,,,,,6217000011112222333,2024-01-01"), account_hmac=hasher
    )
    with store.transaction() as tx:
        tx.execute("DELETE FROM recon_dirty")
        pending = tx.insert(
            "settlement_accounts",
            {"merchant_id": "M1", "account_masked": "****9999", "account_hmac": hasher("62229999"),
             "status": "under_review", "requested_at": "2024-03-01T00:00:00Z"},
        )  # fmt: skip
    at = datetime(2024, 3, 5, 8, 0, tzinfo=UTC)
    set_account_status(store, pending, "active", actor="alice", at=at, note="approved by bank")
    row = store.query_one(
        "SELECT status, effective_at FROM settlement_accounts WHERE id = ?", (pending,)
    )
    assert row == {"status": "active", "effective_at": "2024-03-05T08:00:00Z"}
    last = store.query_one(
        "SELECT status, actor, note, changed_at FROM settlement_account_history"
        " WHERE account_id = ? ORDER BY id DESC",
        (pending,),
    )
    assert last == {"status": "active", "actor": "alice", "note": "approved by bank",
                    "changed_at": "2024-03-05T08:00:00Z"}  # fmt: skip
    assert [r["merchant_id"] for r in store.query("SELECT merchant_id FROM recon_dirty")] == ["M1"]
    set_account_status(store, pending, "retired", actor="alice", at=at)
    row = store.query_one(
        "SELECT status, retired_at FROM settlement_accounts WHERE id = ?", (pending,)
    )
    assert row == {"status": "retired", "retired_at": "2024-03-05T08:00:00Z"}
    with pytest.raises(ValueError, match="unknown account status"):
        set_account_status(store, pending, "approved", actor="alice")
    with pytest.raises(ValueError, match="no settlement account 999"):
        set_account_status(store, 999, "rejected", actor="alice")
