"""Fuzz the statement importers: camt.053/054, MT940, bank CSV, acquirer payout files.

Each format gets its own property over mutations of a real fixture file (plus pure random
bytes), parsed both with the format forced and with detection (``auto``): only
:class:`collector.statements.StatementError` may come out.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from settleguard.collector.statements import StatementError, parse_statement

from tests.collector.statements import examples
from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import bytes_or_mutation

FIX = Path(__file__).resolve().parents[1] / "collector" / "statements" / "fixtures"
XML_TOKENS = (b"<", b">", b"</Ntry>", b"<Amt Ccy=\"EUR\">", b"&", b"&#0;", b"<!DOCTYPE x [",
              b"CRDT", b"DBIT", b"1.5", b"-1", b"\xff")  # fmt: skip
MT940_TOKENS = (b":61:", b":86:", b":60F:", b":62F:", b"\r\n", b"C", b"D", b"RC", b",", b"-}")
CSV_TOKENS = (b",", b'"', b"\n", b"\r\n", b"\xef\xbb\xbf", b"-", b"1,234.56", b"\xff\xfe", b";")


def _only_statement_error(data: bytes, fmt: str) -> None:
    for forced in (fmt, "auto"):
        try:
            parse_statement(data, filename="fuzz", fmt=forced)
        except StatementError as exc:
            assert str(exc)  # says what and where


def _seeds(*names: str) -> list[bytes]:
    return [(FIX / n).read_bytes() for n in names]


@FUZZ
@given(bytes_or_mutation(_seeds("camt053_v02.xml", "camt053_v08.xml"), XML_TOKENS))
def test_camt053(data: bytes) -> None:
    _only_statement_error(data, "camt053")


@FUZZ
@given(bytes_or_mutation(_seeds("camt054_v06.xml"), XML_TOKENS))
def test_camt054(data: bytes) -> None:
    _only_statement_error(data, "camt054")


@FUZZ
@given(bytes_or_mutation(_seeds("mt940_rdrc.sta"), MT940_TOKENS))
def test_mt940(data: bytes) -> None:
    _only_statement_error(data, "mt940")


@FUZZ
@given(bytes_or_mutation(_seeds("ccb_gbk.csv", "icbc_bom.csv"), CSV_TOKENS))
def test_bank_csv(data: bytes) -> None:
    _only_statement_error(data, "csv")


@FUZZ
@given(bytes_or_mutation(_seeds("payout.csv"), CSV_TOKENS))
def test_payout_file(data: bytes) -> None:
    _only_statement_error(data, "payout")


# -- Chinese banks' own exports: one property per reader, seeded with our example files ---------

BANK_TOKENS = (*CSV_TOKENS, b"\t", b"#", "人民币合计".encode(), "# 收入合计: ".encode(),
               "收入".encode("gbk"), b"+2766.40", b"****", b"0")  # fmt: skip
BIFF_TOKENS = (b"\x00", b"\xff", b"\x09\x08", b"\x2f\x00", b"\xd0\xcf\x11\xe0", b"\xfe\xff")
ZIP_TOKENS = (b"\x00", b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"<row", b"\xff")


@FUZZ
@given(bytes_or_mutation([examples.icbc_csv()], BANK_TOKENS))
def test_icbc_history_csv(data: bytes) -> None:
    _only_statement_error(data, "csv")


@FUZZ
@given(bytes_or_mutation([examples.ccb_xls()], BIFF_TOKENS))
def test_ccb_xls(data: bytes) -> None:
    _only_statement_error(data, "csv")


@FUZZ
@given(bytes_or_mutation([examples.cmb_csv(), examples.cmb_csv(encoding="gbk")], BANK_TOKENS))
def test_cmb_csv(data: bytes) -> None:
    _only_statement_error(data, "csv")


@FUZZ
@given(bytes_or_mutation([examples.abc_xlsx()], ZIP_TOKENS))
def test_abc_xlsx(data: bytes) -> None:
    _only_statement_error(data, "csv")


@FUZZ
@given(bytes_or_mutation([examples.boc_csv(), examples.bocom_csv()], BANK_TOKENS))
def test_boc_and_bocom_csv(data: bytes) -> None:
    _only_statement_error(data, "csv")
