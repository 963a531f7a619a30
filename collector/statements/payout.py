"""Acquirer payout / settlement-detail files (CSV or .xlsx through a ``kind = "payout"`` profile).

This is the acquirer's own account of what it paid, to which account, and what failed,
so a gap can be placed at the acquirer (failed, returned, held) or at the bank (paid
but never credited). Each row must satisfy gross − fees = net; a row that does not, or
whose status word the profile does not know, is rejected with its line number.
Target account numbers are masked on reading: only the last four digits are kept.
"""

from __future__ import annotations

import os
import re

from settleguard.collector.account_numbers import mask_account
from settleguard.collector.statements.amounts import AmountError, parse_decimal, to_minor_units
from settleguard.collector.statements.errors import StatementError
from settleguard.collector.statements.model import (
    ParsedPayoutFile,
    PayoutRecord,
    PayoutStatus,
    Reject,
)
from settleguard.collector.statements.profiles import load_profiles
from settleguard.collector.statements.sheets import read_table
from settleguard.collector.statements.tabular import (
    Header,
    Row,
    excerpt,
    find_header,
    parse_date,
    strip_money,
)


class _RowReject(Exception):
    pass


def _cell(header: Header, row: Row, name: str) -> str:
    index = header.mapping.get(name)
    return row.cells[index] if index is not None and index < len(row.cells) else ""


def _error(header: Header, row: Row, name: str, reason: str, filename: str) -> StatementError:
    return StatementError(
        reason, filename=filename, line=row.line, column=header.names[header.mapping[name]]
    )


def _with_sheet(exc: StatementError, sheet: str | None) -> StatementError:
    if sheet is None or exc.sheet is not None:
        return exc
    return type(exc)(
        exc.reason, filename=exc.filename, line=exc.line, column=exc.column, sheet=sheet
    )


def _money(header: Header, row: Row, name: str, currency: str, filename: str) -> int:
    raw = strip_money(_cell(header, row, name))
    try:
        value = parse_decimal(raw or "0", thousands=True)
    except AmountError as exc:
        raise _error(
            header, row, name, f"amount {excerpt(raw)} is not a decimal", filename
        ) from exc
    try:
        return to_minor_units(value, currency)
    except AmountError as exc:
        raise _RowReject(str(exc)) from exc


def _record(header: Header, row: Row, filename: str) -> PayoutRecord:
    profile = header.profile
    raw_ccy = _cell(header, row, "currency")
    currency = profile.currency_map.get(raw_ccy, raw_ccy.upper()) if raw_ccy else profile.currency
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise _error(header, row, "currency", f"unknown currency {excerpt(raw_ccy)}", filename)
    merchant_id = _cell(header, row, "merchant_id")
    if not merchant_id:
        raise _error(header, row, "merchant_id", "empty merchant id", filename)
    raw_date = _cell(header, row, "settlement_date")
    day = parse_date(raw_date, profile.date_formats)
    if day is None:
        raise _error(header, row, "settlement_date", f"{excerpt(raw_date)} is not a date", filename)
    gross, fees, net = (
        _money(header, row, n, currency, filename) for n in ("gross", "fees", "net")
    )
    if gross - fees != net:
        raise _RowReject(f"gross {gross} − fees {fees} ≠ net {net} (minor units)")
    word = _cell(header, row, "status")
    status = profile.status_map.get(word) or profile.status_map.get(word.lower())
    if status is None:
        raise _RowReject(f"unknown payout status {excerpt(word)}")
    target = _cell(header, row, "target_account")
    refs = _cell(header, row, "batch_refs")
    return PayoutRecord(
        line=row.line,
        merchant_id=merchant_id,
        settlement_date=day,
        gross=gross,
        fees=fees,
        net=net,
        target_account_masked=mask_account(target) if target else None,
        status=_as_status(status),
        reason=_cell(header, row, "reason") or None,
        reference=_cell(header, row, "reference") or None,
        batch_refs=tuple(r.strip() for r in refs.split(profile.batch_separator) if r.strip()),
        currency=currency,
    )


def _as_status(word: str) -> PayoutStatus:
    statuses: dict[str, PayoutStatus] = {
        "paid": "paid",
        "failed": "failed",
        "returned": "returned",
        "held": "held",
    }
    return statuses[word]  # profiles are validated to map onto these four only


def parse_payout(
    data: bytes,
    *,
    filename: str = "<upload>",
    profile: str | None = None,
    profile_dir: str | os.PathLike[str] | None = None,
) -> ParsedPayoutFile:
    """Parse an acquirer payout file.

    :param data: the file's bytes
    :param filename: used in error messages
    :param profile: a ``kind = "payout"`` profile name; None detects it from the header
    :param profile_dir: extra directory of user profiles
    :raises StatementError: unreadable file, no header, or a cell that cannot be read
    """
    table = read_table(data, filename)
    try:
        return _parse_rows(table.rows, filename, profile, profile_dir)
    except StatementError as exc:
        raise _with_sheet(exc, table.sheet) from None


def _parse_rows(
    rows: list[Row],
    filename: str,
    profile: str | None,
    profile_dir: str | os.PathLike[str] | None,
) -> ParsedPayoutFile:
    header = find_header(
        rows, load_profiles(profile_dir), "payout" if not profile else None, profile, filename
    )
    if header.profile.kind != "payout":
        raise StatementError(
            f"profile {header.profile.name!r} is for bank statements", filename=filename
        )
    records, rejects = [], []
    for row in rows[header.index + 1 :]:
        first = next((c for c in row.cells if c), "")
        if not first or any(first.startswith(p) for p in header.profile.trailer_prefixes):
            continue
        try:
            records.append(_record(header, row, filename))
        except _RowReject as exc:
            rejects.append(Reject(f"line {row.line}", str(exc)))
    return ParsedPayoutFile(
        records=tuple(records),
        rejects=tuple(rejects),
        profile=header.profile.name,
        currencies=tuple(sorted({r.currency for r in records})),
    )
