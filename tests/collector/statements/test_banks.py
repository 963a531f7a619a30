"""Each bank's export, in its real layout, parsed to exact counts and totals in fen."""

from __future__ import annotations

import pytest
from settleguard.collector.statements import (
    StatementError,
    detect_format,
    parse_statement,
    summarize,
)
from settleguard.collector.statements.model import ParsedStatement
from settleguard.collector.statements.sheets import OLE2_MAGIC, ZIP_MAGIC

from tests.collector.statements import examples
from tests.collector.statements.examples import EXPECTED


def parse(data: bytes, filename: str = "export", **kwargs: object) -> ParsedStatement:
    parsed = parse_statement(data, filename=filename, **kwargs)  # type: ignore[arg-type]
    assert isinstance(parsed, ParsedStatement)
    return parsed


def totals(p: ParsedStatement) -> tuple[int, int, int, int]:
    credits = [e.amount for e in p.entries if e.direction == "credit"]
    debits = [e.amount for e in p.entries if e.direction == "debit"]
    return len(credits), sum(credits), len(debits), sum(debits)


@pytest.mark.parametrize("bank", sorted(EXPECTED))
def test_each_bank_parses_to_exact_counts_and_totals(bank: str) -> None:
    data = examples.BUILDERS[bank]()
    assert detect_format(data, bank) == "csv"
    p = parse(data, bank)
    assert p.profile == bank
    assert totals(p) == EXPECTED[bank]
    assert not p.rejects and not p.balance_mismatch
    assert [e.booking_date for e in p.entries] == sorted(e.booking_date for e in p.entries)


@pytest.mark.parametrize(
    ("bank", "account", "holder", "sheet", "opening", "closing"),
    [
        ("icbc", "6217****0122", None, None, 1000000, 2228067),
        ("ccb", "6217****0122", None, "交易明细", 1000000, 1348751),
        ("cmb", "6214****5678", "陈*", None, 1000000, 1307840),
        ("abc", "6228****7788", "李*华", "账户明细", 1000000, 1367840),
        ("boc", None, None, None, 500000, 915000),
    ],
)
def test_own_account_is_kept_as_printed(
    bank: str,
    account: str | None,
    holder: str | None,
    sheet: str | None,
    opening: int,
    closing: int,
) -> None:
    p = parse(examples.BUILDERS[bank]())
    assert (p.account_number, p.account_holder, p.sheet) == (account, holder, sheet)
    assert p.account_masked_by_bank is (account is not None)
    assert p.opening_balance and p.opening_balance.amount == opening
    assert p.closing_balance and p.closing_balance.amount == closing
    assert summarize(p)["account_as_printed"] == account


def test_payers_are_kept_as_printed_masked_names_included() -> None:
    ccb = parse(examples.ccb_xls())
    first = ccb.entries[0]
    assert (first.direction, first.amount) == ("credit", 152300)
    assert (first.payer_name, first.payer_account) == ("拉***付股份有限公司", "3100****8899")
    icbc = parse(examples.icbc_csv())
    payers = {(e.payer_name, e.payer_account) for e in icbc.entries if e.direction == "credit"}
    assert payers == {
        ("拉卡拉支付股份有限公司", "3100****8899"),
        ("银联商务股份有限公司", "3101****6787"),
        ("张三", "6222****4455"),
    }
    # CMB's 一卡通 export has no counterparty column: nothing is invented
    assert all(e.payer_name is None for e in parse(examples.cmb_csv()).entries)


def test_cmb_older_gbk_download_reads_the_same() -> None:
    assert examples.cmb_csv(encoding="gbk")[:3] != b"\xef\xbb\xbf"
    p = parse(examples.cmb_csv(encoding="gbk"))
    assert totals(p) == EXPECTED["cmb"] and p.account_holder == "陈*"


def test_ccb_unused_amount_cell_holding_zero_is_not_a_second_amount() -> None:
    p = parse(examples.ccb_xls())
    assert [(e.direction, e.amount) for e in p.entries] == [
        ("credit", 152300), ("debit", 3550), ("credit", 200000), ("credit", 1),
    ]  # fmt: skip


def test_icbc_trailer_total_that_does_not_add_up_refuses_the_file() -> None:
    with pytest.raises(StatementError) as info:
        parse(examples.icbc_csv(credit_total="14,368.68"), "icbc.csv")
    message = str(info.value)
    assert message.startswith("icbc.csv line 14: the trailer's 收入 (credit) total 14368.68 CNY")
    assert "rows' sum 14368.67 CNY" in message


def test_cmb_trailer_total_that_does_not_add_up_refuses_the_file() -> None:
    with pytest.raises(StatementError, match=r"cmb.csv line 12: the trailer's 收入"):
        parse(examples.cmb_csv(credit_total="3,266.40"), "cmb.csv")


def test_ccb_bad_cell_names_sheet_row_and_column_without_echoing_it() -> None:
    rows = [list(r) for r in examples.CCB_ROWS]
    rows[1][1] = "2026年13月45日 附言" + "6" * 19
    with pytest.raises(StatementError) as info:
        parse(examples.ccb_xls(rows=rows), "ccb.xls")
    message = str(info.value)
    assert message.startswith("ccb.xls sheet '交易明细' row 8 column 交易日期: ")
    assert "6" * 12 not in message and "(33 characters)" in message


def test_several_filled_sheets_are_refused_with_their_names() -> None:
    with pytest.raises(StatementError, match=r"2 filled sheets \('交易明细', 'Sheet2'\)"):
        parse(examples.ccb_xls(sheets=2), "ccb.xls")


def test_truncated_xlsx_is_refused_as_a_damaged_zip() -> None:
    data = examples.abc_xlsx(truncate=900)
    assert data.startswith(ZIP_MAGIC)
    with pytest.raises(StatementError, match=r"abc.xlsx: the .xlsx file is damaged or cut short"):
        parse(data, "abc.xlsx")


def test_password_protected_ooxml_is_refused() -> None:
    data = bytearray(examples.ccb_xls())
    name = "Workbook".encode("utf-16-le")
    at = data.index(name)
    encrypted = "EncryptedPackage".encode("utf-16-le") + b"\0\0"
    data[at : at + 64] = encrypted.ljust(64, b"\0")
    data[at + 64 : at + 66] = len(encrypted).to_bytes(2, "little")
    with pytest.raises(StatementError, match=r"x.xlsx: the workbook is password-protected"):
        parse(bytes(data), "x.xlsx")


def test_password_protected_biff8_is_refused() -> None:
    data = bytearray(examples.ccb_xls())
    bof = data.index(b"\x09\x08\x10\x00\x00\x06\x05\x00", 512)
    first = bof + 4 + 16  # the record after the 16-byte BOF
    data[first : first + 2] = (0x002F).to_bytes(2, "little")  # FILEPASS
    assert bytes(data[:8]) == OLE2_MAGIC
    with pytest.raises(StatementError, match=r"ccb.xls: the .xls workbook is password-protected"):
        parse(bytes(data), "ccb.xls")


def test_spreadsheet_given_as_csv_is_read_as_a_spreadsheet() -> None:
    p = parse(examples.abc_xlsx(), "abc.csv", fmt="csv")
    assert totals(p) == EXPECTED["abc"]


def test_unknown_bank_is_refused_listing_the_profiles() -> None:
    data = "日期时间,发生额,结余\n2026-03-01,1.00,2.00\n".encode()
    with pytest.raises(StatementError, match=r"x.csv: no header row for any known profile"):
        parse(data, "x.csv")


def test_unknown_workbook_layout_names_the_sheet() -> None:
    data = examples.ccb_xls().replace(
        "账户余额".encode("utf-16-le"), "帐户余额".encode("utf-16-le")
    )
    assert data != examples.ccb_xls()
    with pytest.raises(StatementError, match=r"x.xls sheet '交易明细': no header row"):
        parse(data, "x.xls")


def test_pdf_is_refused_with_what_to_do() -> None:
    with pytest.raises(StatementError, match=r"x.pdf: this is a PDF document; export"):
        parse(b"%PDF-1.7\n...", "x.pdf")


def test_xls_whose_cell_address_asks_for_gigabytes_is_refused_and_we_survive() -> None:
    data = bytearray(examples.ccb_xls())
    labelsst = data.index(b"\xfd\x00\x0a\x00")  # a LABELSST cell record: row, column, ...
    data[labelsst + 4 : labelsst + 8] = b"\xfe\xff\xfe\xff"  # row and column 65534
    with pytest.raises(StatementError, match=r"ccb.xls: the workbook (reader gave up|claims)"):
        parse(bytes(data), "ccb.xls")


def test_sheet_claiming_millions_of_cells_is_refused() -> None:
    rows = [list(r) for r in examples.CCB_ROWS]
    rows.extend([[] for _ in range(40000)])
    rows.append([""] * 255 + ["x"])
    with pytest.raises(StatementError, match=r"claims a sheet of 40\d\d\d × 256 cells"):
        parse(examples.ccb_xls(rows=rows), "ccb.xls")


def test_acquirer_disbursement_records_as_xlsx() -> None:
    from settleguard.collector.statements.model import ParsedPayoutFile

    data = examples.payout_xlsx()
    assert detect_format(data, "出款记录.xlsx") == "payout"
    p = parse_statement(data, filename="出款记录.xlsx", fmt="payout", profile="payout_disbursement")
    assert isinstance(p, ParsedPayoutFile) and p.profile == "payout_disbursement"
    assert [(r.merchant_id, r.net, r.status, r.batch_refs) for r in p.records] == [
        ("822100000001", 152300, "paid", ("000123", "000124")),
        ("822100000001", 200000, "returned", ("000125",)),
        ("822100000002", 29850, "held", ("000031",)),
    ]
    assert [r.target_account_masked for r in p.records] == ["****0122", "****0122", "****7788"]
    summary = summarize(p)
    assert (summary["credits"], summary["credit_total"], summary["reversals"], summary["pending"]) == (
        1, 152300, 1, 1,
    )  # fmt: skip


def test_remittance_joins_every_filled_text_column_the_profile_lists() -> None:
    boc = parse(examples.boc_csv())
    assert [e.remittance for e in boc.entries] == ["银联入账 / 结算", "网上快捷支付 / 支付宝-某某",
                                                   "跨行转账 / 货款"]  # fmt: skip
    assert parse(examples.bocom_csv()).entries[2].remittance == "存款利息"


@pytest.mark.parametrize(
    ("bank", "start", "end"),
    [("cmb", "2026-03-01", "2026-03-05"), ("abc", "2026-03-01", "2026-03-05"),
     ("icbc", "2026-03-02", "2026-03-05")],
)  # fmt: skip
def test_period_is_the_stated_one_when_the_export_states_it(
    bank: str, start: str, end: str
) -> None:
    p = parse(examples.BUILDERS[bank]())
    assert (str(p.period_start), str(p.period_end)) == (start, end)
