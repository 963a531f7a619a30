"""Bank statement and acquirer payout parsers: bytes in, plain dataclasses out.

Library first (the ``settleguard collector import`` command wraps it)::

    parsed = parse_statement(data, filename="march.xml")
    summary = summarize(parsed)

Formats: ``camt053``, ``camt054`` (ISO 20022), ``mt940`` (SWIFT), ``csv`` (bank exports as
CSV, .xls or .xlsx, through a profile) and ``payout`` (acquirer settlement detail, CSV or
.xlsx, through a profile). Every
parser raises only :class:`StatementError` on bad input, with the line, column or
element at fault. See ``docs/statements.md``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from settleguard.collector.account_numbers import mask_account
from settleguard.collector.statements.bank_csv import parse_bank_csv
from settleguard.collector.statements.camt import detect_camt, parse_camt
from settleguard.collector.statements.errors import ProfileError, StatementError
from settleguard.collector.statements.model import (
    Balance,
    ParsedPayoutFile,
    ParsedStatement,
    PayoutRecord,
    Reject,
    StatementEntry,
)
from settleguard.collector.statements.payout import parse_payout
from settleguard.collector.statements.profiles import Profile, load_profiles
from settleguard.collector.statements.sheets import container_of, read_table
from settleguard.collector.statements.swift_mt940 import detect_mt940, parse_mt940
from settleguard.collector.statements.tabular import find_header

__all__ = [
    "FORMATS",
    "MAX_FILE_BYTES",
    "Balance",
    "ParsedPayoutFile",
    "ParsedStatement",
    "PayoutRecord",
    "Profile",
    "ProfileError",
    "Reject",
    "StatementEntry",
    "StatementError",
    "detect_format",
    "load_profiles",
    "parse_statement",
    "summarize",
]

FORMATS = ("camt053", "camt054", "mt940", "csv", "payout")
#: Larger uploads are refused before parsing; a month of a busy account is a few MiB.
MAX_FILE_BYTES = 64 * 1024 * 1024


def detect_format(
    data: bytes,
    filename: str = "<upload>",
    *,
    profile_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Tell which format ``data`` is in, from its content (the name is only a hint).

    :param data: the file's bytes
    :param filename: used in error messages
    :param profile_dir: extra profile directory (a payout profile's header means ``payout``)
    :returns: one of :data:`FORMATS`
    :raises StatementError: XML that is not camt.053/054, undecodable text, or a workbook
        that cannot be read
    """
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    text = container_of(data) == "text"
    if text and head.startswith(b"<"):
        kind = detect_camt(data)
        if kind is None:
            raise StatementError("XML but not a camt.053 or camt.054 message", filename=filename)
        return kind
    if (
        text
        and re.search(rb"(?m)^(\{1:|:20:)", data[:8192])
        and detect_mt940(data[:8192].decode("latin-1"))
    ):
        return "mt940"
    rows = read_table(data, filename).rows
    try:
        header = find_header(rows, load_profiles(profile_dir), None, None, filename)
    except StatementError:
        return "csv"  # parse_statement then asks for --profile with the candidates
    return "payout" if header.profile.kind == "payout" else "csv"


def parse_statement(
    data: bytes,
    *,
    filename: str = "<upload>",
    fmt: str = "auto",
    profile: str | None = None,
    profile_dir: str | os.PathLike[str] | None = None,
) -> ParsedStatement | ParsedPayoutFile:
    """Parse one uploaded file.

    :param data: the file's bytes
    :param filename: the name shown in error messages
    :param fmt: ``auto`` or one of :data:`FORMATS`
    :param profile: CSV/payout profile name (None: detect from the header)
    :param profile_dir: extra directory of user profiles (besides ``$SETTLEGUARD_PROFILE_DIR``)
    :raises StatementError: on any bad input, saying where
    """
    if len(data) > MAX_FILE_BYTES:
        raise StatementError(f"file larger than {MAX_FILE_BYTES} bytes", filename=filename)
    if not data.strip():
        raise StatementError("empty file", filename=filename)
    if fmt == "auto":
        fmt = detect_format(data, filename, profile_dir=profile_dir)
    if fmt in ("camt053", "camt054"):
        parsed = parse_camt(data, filename=filename)
        if parsed.format != fmt:
            raise StatementError(
                f"asked for {fmt} but the file is {parsed.format}", filename=filename
            )
        return parsed
    if fmt == "mt940":
        return parse_mt940(data, filename=filename)
    if fmt == "csv":
        return parse_bank_csv(data, filename=filename, profile=profile, profile_dir=profile_dir)
    if fmt == "payout":
        return parse_payout(data, filename=filename, profile=profile, profile_dir=profile_dir)
    raise StatementError(
        f"unknown format {fmt!r}; use auto or one of {', '.join(FORMATS)}", filename=filename
    )


def summarize(parsed: ParsedStatement | ParsedPayoutFile) -> dict[str, Any]:
    """Return the import summary fields of ``settleguard collector import --json``.

    For statements: ``credits``/``credit_total`` count booked, non-reversed credits;
    ``debits`` booked non-reversed debits; ``reversals`` booked reversals; ``pending``
    pending entries. For payout files ``credits``/``credit_total`` are the paid
    records and their net, ``reversals`` the returned ones and ``pending`` the held ones.
    The caller adds ``duplicate``.
    """
    if isinstance(parsed, ParsedPayoutFile):
        paid = [r for r in parsed.records if r.status == "paid"]
        return {
            "format": parsed.format,
            "account": None,
            "profile": parsed.profile,
            "credits": len(paid),
            "credit_total": sum(r.net for r in paid),
            "debits": 0,
            "reversals": sum(r.status == "returned" for r in parsed.records),
            "pending": sum(r.status == "held" for r in parsed.records),
            "failed": sum(r.status == "failed" for r in parsed.records),
            "rejected": len(parsed.rejects),
            "balance_mismatch": False,
        }
    booked = [e for e in parsed.entries if e.status == "booked"]
    credits = [e for e in booked if e.direction == "credit" and not e.reversal]
    return {
        "format": parsed.format,
        "account": mask_account(parsed.account_number) if parsed.account_number else None,
        "account_as_printed": _as_printed(parsed.account_number),
        "holder_as_printed": parsed.account_holder,
        "sheet": parsed.sheet,
        "profile": parsed.profile,
        "credits": len(credits),
        "credit_total": sum(e.amount for e in credits),
        "debits": sum(e.direction == "debit" and not e.reversal for e in booked),
        "reversals": sum(e.reversal for e in booked),
        "pending": sum(e.status == "pending" for e in parsed.entries),
        "rejected": len(parsed.rejects),
        "balance_mismatch": parsed.balance_mismatch,
    }


def _as_printed(number: str | None) -> str | None:
    """The own account as the bank printed it when it is masked there; else masked by us."""
    if number is None:
        return None
    return number if "*" in number else mask_account(number)
