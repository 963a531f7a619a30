"""The demo's bank exports go through the normal importers and read back what was written."""

from __future__ import annotations

from datetime import date

import pytest
from settleguard.collector.statements import parse_statement
from settleguard.collector.statements.model import ParsedStatement

from settleguard.demo import files

CREDITS = [
    files.BankCredit(date(2026, 3, 2), 152300, "R1", "LKL20260302001", payer="拉卡拉支付股份有限公司",
                     payer_account="31050161373700008899"),
    files.BankCredit(date(2026, 3, 2), 8800, "R2", "房租", payer="王小明",
                     payer_account="6222021001198765432", debit=True),
    files.BankCredit(date(2026, 3, 3), 1234567, "R3", "UMS20260303007"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("account", "name", "profile"),
    [
        ("6217001230011000114", "交易明细_0114.xls", "ccb"),
        ("6222021230012000225", "历史明细_0225.csv", "icbc"),
        ("6214831230013000336", "CMB_0336.csv", "cmb"),
    ],
)
def test_each_demo_export_reads_back_through_the_importer(
    account: str, name: str, profile: str
) -> None:
    written, data = files.bank_export(
        account, owner="王小明", opening=500000, start=date(2026, 3, 1), end=date(2026, 3, 3),
        credits=CREDITS, message_id="M1",
    )  # fmt: skip
    assert written == name
    parsed = parse_statement(data, filename=name)
    assert isinstance(parsed, ParsedStatement) and parsed.profile == profile
    assert parsed.account_number == f"{account[:4]}****{account[-4:]}"
    got = sorted((e.booking_date, e.amount, e.direction) for e in parsed.entries)
    assert got == sorted(
        (c.booking_date, c.amount, "debit" if c.debit else "credit") for c in CREDITS
    )
    assert (
        parsed.closing_balance and parsed.closing_balance.amount == 500000 + 152300 - 8800 + 1234567
    )
    assert not parsed.balance_mismatch and not parsed.rejects
    assert account not in data.decode("latin-1") and "31050161373700008899" not in data.decode(
        "latin-1"
    )
    references = [e.remittance or "" for e in parsed.entries]
    assert any("LKL20260302001" in r for r in references)


def test_bank_masked_name_keeps_what_ccb_shows() -> None:
    assert files.bank_masked_name("拉卡拉支付股份有限公司") == "拉***付股份有限公司"
    assert files.bank_masked_name("张三") == "张*"
    assert files.bank_masked_name("王小明") == "王*明"
