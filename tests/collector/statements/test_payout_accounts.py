from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from settleguard.collector.account_numbers import account_hmac, mask_account, normalize_account
from settleguard.collector.statements import (
    ParsedPayoutFile,
    StatementError,
    parse_statement,
    summarize,
)

PAYOUT = (Path(__file__).parent / "fixtures" / "payout.csv").read_bytes()


def test_payout_records() -> None:
    p = parse_statement(PAYOUT, filename="payout.csv")
    assert isinstance(p, ParsedPayoutFile) and p.profile == "payout"
    statuses = [(r.merchant_id, r.status, r.reason) for r in p.records]
    assert statuses == [
        ("102300001", "paid", None),
        ("102300001", "paid", None),
        ("102300002", "returned", "户名不符"),
        ("102300003", "held", "账户冻结"),
        ("102300004", "failed", "账户已销户"),
    ]
    first = p.records[0]
    assert (first.gross, first.fees, first.net) == (298308, 1790, 296518)
    assert first.settlement_date == date(2024, 3, 1) and first.line == 4
    assert first.target_account_masked == "****0123"
    assert p.records[3].target_account_masked == "****4321"
    assert p.records[1].batch_refs == ("T29001234-000124", "T29001234-000125")
    assert first.reference == "STL20240301000001"
    s = summarize(p)
    assert (s["credits"], s["credit_total"], s["reversals"], s["pending"], s["failed"]) == (
        2,
        606940,
        1,
        1,
        1,
    )


def payout_with(old: str, new: str) -> bytes:
    text = PAYOUT.decode()
    assert old in text
    return text.replace(old, new, 1).encode()


def test_gross_minus_fees_must_equal_net() -> None:
    p = parse_statement(payout_with('"2,983.08",17.90', '"2,983.08",17.91'))
    assert len(p.records) == 4
    assert p.rejects[0].line_or_element == "line 4" and "≠ net" in p.rejects[0].reason


def test_unknown_status_word_rejected() -> None:
    p = parse_statement(payout_with(",冻结,", ",处理中,"))
    assert p.rejects[0].line_or_element == "line 7" and "处理中" in p.rejects[0].reason


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ('2024-03-02,"1,000.00"', '2024-03-32,"1,000.00"', "p.csv line 6 column 结算日期"),
        ("6.00,994.00", "6.00,九九四", "p.csv line 6 column 结算金额"),
        ("102300004,浦东", ",浦东", "p.csv line 8 column 商户编号"),
    ],
)
def test_bad_payout_cells(old: str, new: str, where: str) -> None:
    with pytest.raises(StatementError) as info:
        parse_statement(payout_with(old, new), filename="p.csv")
    assert str(info.value).startswith(where)


def test_profile_kind_mismatch() -> None:
    icbc = (Path(__file__).parent / "fixtures" / "icbc_bom.csv").read_bytes()
    with pytest.raises(StatementError, match="is for bank statements"):
        parse_statement(icbc, fmt="payout", profile="icbc_legacy")
    with pytest.raises(StatementError, match="is for payout files"):
        parse_statement(PAYOUT, fmt="csv", profile="payout")


@pytest.mark.parametrize(
    ("raw", "normal", "masked"),
    [
        ("6217 0012-3456 7890 123", "6217001234567890123", "****0123"),
        ("de89 3704 0044 0532 0130 00", "DE89370400440532013000", "****3000"),
        ("6217****1234", "6217****1234", "****1234"),
        ("123", "123", "****"),
        ("****4321", "****4321", "****4321"),
    ],
)
def test_account_numbers(raw: str, normal: str, masked: str) -> None:
    assert normalize_account(raw) == normal
    assert mask_account(raw) == masked


def test_account_hmac_is_keyed_and_layout_free() -> None:
    key = bytes(range(32))
    a = account_hmac(key, "6217 0012 3456 7890 123")
    assert a == account_hmac(key, "6217-0012-3456-7890-123")
    assert a != account_hmac(bytes(32), "6217001234567890123")
    assert len(a) == 64 and "6217" not in a
    with pytest.raises(ValueError, match="128 bits"):
        account_hmac(b"short", "1")
