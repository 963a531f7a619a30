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

SAMPLE = (Path(__file__).parent / "fixtures" / "mt940_rdrc.sta").read_bytes()


def edit(old: str, new: str) -> bytes:
    text = SAMPLE.decode()
    assert old in text
    return text.replace(old, new, 1).encode()


def test_marks_narratives_and_balances() -> None:
    p = parse_statement(SAMPLE, filename="icbc.sta")
    assert detect_format(SAMPLE, "icbc.sta") == "mt940"
    assert p.format == "mt940" and p.currency == "CNY"
    assert p.account_number == "ICBKCNBJ/1001234509000012345"
    assert p.opening_balance == Balance(date(2024, 3, 1), 2000000)
    assert p.closing_balance == Balance(date(2024, 3, 4), 2000000)
    marks = [(e.line, e.direction, e.reversal, e.amount) for e in p.entries]
    assert marks == [
        (6, "credit", False, 351240),
        (9, "debit", False, 20000),
        (11, "debit", True, 351240),  # RC: reversal of a credit
        (13, "credit", True, 20000),  # RD: reversal of a debit
    ]
    first = p.entries[0]
    assert first.reference == "ICBC0301000123"
    assert first.end_to_end_id == "UPS0229MID1023"
    assert first.remittance == "/PT/FT/PY/银联商务 POS结算 102300001 20240229"
    assert p.entries[1].end_to_end_id is None  # NONREF
    assert p.entries[3].booking_date == date(2024, 3, 2)  # entry date 0302
    assert p.entries[3].value_date == date(2024, 3, 4)
    assert not p.balance_mismatch
    s = summarize(p)
    assert (s["credits"], s["debits"], s["reversals"]) == (1, 1, 2)


def test_crlf_same_result() -> None:
    crlf = SAMPLE.replace(b"\n", b"\r\n")
    assert parse_statement(crlf).entries == parse_statement(SAMPLE).entries


def test_balance_chain_mismatch_flagged() -> None:
    p = parse_statement(edit(":62F:C240304CNY20000,00", ":62F:C240304CNY20000,01"))
    assert p.balance_mismatch
    assert "20000.01" in p.warnings[0]


@pytest.mark.parametrize(
    ("old", "new", "line", "text"),
    [
        (":61:2403020302D200,00NCHG", ":61:2403020302X200,00NCHG", 9, "does not match"),
        (":61:2403020302D200,00NCHG", ":61:2403020302D200.00NCHG", 9, "does not match"),
        (":61:2403010301C3512,40", ":61:2413010301C3512,40", 6, "not a valid YYMMDD"),
        (":61:2403040302RD200,00", ":61:2403041399RD200,00", 13, "not a valid MMDD"),
        (":60F:C240301CNY20000,00", ":60F:C240301CNY20000,001", 5, "more decimals"),
        (":62F:C240304CNY20000,00", ":62F:C240304CN20000,00", 15, "balance"),
    ],
)
def test_malformed_fields_name_their_line(old: str, new: str, line: int, text: str) -> None:
    with pytest.raises(StatementError) as info:
        parse_statement(edit(old, new), filename="icbc.sta")
    assert info.value.line == line
    assert str(info.value).startswith(f"icbc.sta line {line}: ")
    assert text in str(info.value)


def test_missing_closing_balance() -> None:
    with pytest.raises(StatementError, match="closing balance"):
        parse_statement(edit(":62F:C240304CNY20000,00\n", ""), fmt="mt940")


def test_text_before_first_tag() -> None:
    with pytest.raises(StatementError, match="line 1: text outside"):
        parse_statement(b"hello\n:20:X\n:60F:C240301CNY1,00\n:62F:C240301CNY1,00\n", fmt="mt940")


def test_two_statements_chain() -> None:
    second = (
        ":20:940S240305\n:25:ICBKCNBJ/1001234509000012345\n:28C:65/1\n"
        ":60F:C240304CNY20000,00\n:61:2403050305C10,00NTRFNONREF//X1\n:86:TEST\n"
        ":62F:C240305CNY20010,00\n-}\n"
    )
    p = parse_statement(SAMPLE + second.encode())
    assert len(p.entries) == 5 and not p.balance_mismatch
    assert p.closing_balance == Balance(date(2024, 3, 5), 2001000)
    broken = second.replace(
        ":60F:C240304CNY20000,00", ":60F:C240304CNY20000,00".replace("20000", "19000")
    )
    broken = broken.replace("20010,00", "19010,00")
    assert parse_statement(SAMPLE + broken.encode()).balance_mismatch
