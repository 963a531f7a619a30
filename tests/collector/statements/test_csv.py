from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from settleguard.collector.statements import (
    StatementError,
    detect_format,
    parse_statement,
    summarize,
)
from settleguard.collector.statements.model import Balance

FIX = Path(__file__).parent / "fixtures"
CCB = (FIX / "ccb_gbk.csv").read_bytes()
ICBC = (FIX / "icbc_bom.csv").read_bytes()


def test_ccb_gbk_with_preamble_and_trailer() -> None:
    assert CCB.decode("gbk")  # really GBK, not UTF-8
    assert detect_format(CCB, "ccb.csv") == "csv"
    p = parse_statement(CCB, filename="ccb.csv")
    assert p.profile == "ccb_legacy"
    assert p.account_number == "6217001234567890123"
    assert p.opening_balance == Balance(date(2024, 3, 1), 1234567)
    assert p.closing_balance == Balance(date(2024, 3, 4), 1926652)
    assert [e.line for e in p.entries] == [7, 8, 9, 10, 11]
    first = p.entries[0]
    assert (first.amount, first.direction, first.currency) == (296518, "credit", "CNY")
    assert first.counterparty == "****9876/银联商务股份有限公司"  # full number masked
    assert p.entries[1].counterparty == "****9999/国网上海市电力公司"  # ="…" unwrapped
    assert p.entries[3].reversal and p.entries[3].direction == "debit"
    assert not p.balance_mismatch
    assert summarize(p)["credit_total"] == 706940


def test_icbc_bom_split_columns() -> None:
    p = parse_statement(ICBC, filename="icbc.csv")
    assert p.profile == "icbc_legacy" and p.account_number == "6222021001123456789"
    assert [(e.amount, e.direction) for e in p.entries] == [
        (876602, "credit"),
        (150000, "debit"),
        (643050, "credit"),
        (87, "credit"),
    ]
    assert p.entries[1].counterparty == "王小明 ****5432"  # account masked
    assert p.entries[0].booking_date == date(2024, 3, 1)
    assert p.entries[0].reference == "ICBC0301000001"
    assert p.opening_balance == Balance(date(2024, 3, 1), 200000)


def test_same_content_in_gb18030_and_utf8_parses_alike() -> None:
    utf8 = CCB.decode("gbk").encode("utf-8")
    assert parse_statement(utf8).entries == parse_statement(CCB).entries


def test_newest_first_export_balance_chain() -> None:
    lines = ICBC.decode("utf-8-sig").split("\r\n")
    reordered = lines[:3] + lines[3:7][::-1] + lines[7:]
    p = parse_statement("\r\n".join(reordered).encode("utf-8"))
    assert not p.balance_mismatch and p.opening_balance.amount == 200000


def test_running_balance_break_is_flagged() -> None:
    data = ICBC.decode("utf-8-sig").replace('"9,266.02"', '"9,266.03"').encode()
    p = parse_statement(data)
    assert p.balance_mismatch and "line 5" in p.warnings[0]


def icbc_with(old: str, new: str) -> bytes:
    text = ICBC.decode("utf-8-sig")
    assert old in text
    return text.replace(old, new, 1).encode("utf-8-sig")


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ('"6,430.50"', '"6.430,50"', "icbc.csv line 6 column 收入: amount '6.430,50'"),
        ("2024-03-02 09:10:11", "2024-13-02 09:10:11", "icbc.csv line 6 column 交易时间"),
        (",人民币,王小明", ",比特币,王小明", "icbc.csv line 5 column 币种: unknown currency"),
    ],
)
def test_bad_cells_say_line_and_column(old: str, new: str, where: str) -> None:
    with pytest.raises(StatementError) as info:
        parse_statement(icbc_with(old, new), filename="icbc.csv")
    assert str(info.value).startswith(where)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (',"1,500.00","9,266.02"', '1.00,"1,500.00","9,266.02"', "both credit and debit"),
        (',"1,500.00","9,266.02"', ',,"9,266.02"', "neither credit nor debit"),
        ("0.87,", "0.875,", "more decimals"),
    ],
)
def test_unacceptable_rows_are_rejects(old: str, new: str, reason: str) -> None:
    p = parse_statement(icbc_with(old, new))
    assert len(p.rejects) == 1 and reason in p.rejects[0].reason
    assert p.rejects[0].line_or_element.startswith("line ")


def test_ambiguous_header_asks_for_profile(tmp_path: Path) -> None:
    (tmp_path / "icbc_copy.toml").write_text(
        (Path(__file__).parents[3] / "collector/statements/profiles/icbc_legacy.toml")
        .read_text(encoding="utf-8")
        .replace('name = "icbc_legacy"', 'name = "icbc_copy"'),
        encoding="utf-8",
    )
    with pytest.raises(StatementError, match="--profile: icbc_copy, icbc_legacy"):
        parse_statement(ICBC, profile_dir=tmp_path)
    assert parse_statement(ICBC, profile="icbc_copy", profile_dir=tmp_path).profile == "icbc_copy"


def test_unknown_layout_lists_candidates() -> None:
    with pytest.raises(
        StatementError,
        match="use --profile with one of: abc, boc, bocom, ccb, ccb_legacy, cmb, cmb_detail, generic, icbc, icbc_legacy",
    ):
        parse_statement(b"foo,bar\n1,2\n", filename="x.csv")


def test_generic_profile_and_user_profile_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b'Date,Amount,Currency,Reference,Description\n2024-03-01,"1,234.56",EUR,R1,PAYOUT\n2024-03-02,-3.10,EUR,R2,FEE\n'
    p = parse_statement(data)
    assert p.profile == "generic"
    assert [(e.amount, e.direction, e.currency) for e in p.entries] == [
        (123456, "credit", "EUR"),
        (310, "debit", "EUR"),
    ]
    (tmp_path / "mybank.toml").write_text(
        'name = "mybank"\ndetect = ["Buchungstag", "Umsatz"]\n'
        '[columns]\nbooking_date = "Buchungstag"\namount = "Umsatz"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SETTLEGUARD_PROFILE_DIR", str(tmp_path))
    p = parse_statement(b"Buchungstag,Umsatz\n20240301,5.00\n")
    assert p.profile == "mybank" and p.entries[0].amount == 500


def test_broken_profile_file_is_profile_error(tmp_path: Path) -> None:
    from settleguard.collector.statements import ProfileError

    (tmp_path / "bad.toml").write_text("kind = 'bank'\n[columns]\nfoo = 'x'\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="unknown column fields"):
        parse_statement(ICBC, profile_dir=tmp_path)


def test_not_text() -> None:
    with pytest.raises(StatementError, match="line 2: text is neither UTF-8 nor GBK"):
        parse_statement(b"a,b\n\xff\xff\xff\n", fmt="csv")
