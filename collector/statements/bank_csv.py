"""Chinese bank exports (CSV, .xls, .xlsx) read through a column-mapping profile.

:func:`collector.statements.sheets.read_table` turns the file into rows whatever its
container; the profile whose header fits says which column is which. Rows below the header are entries; blank lines and summary lines (the profile's
``trailer_prefixes`` such as 合计) are skipped. A cell that cannot be read (a date that is
not a date, an amount that is not a number) raises :class:`StatementError` with line and
column; a readable row that cannot be accepted (a zero amount, both 收入 and 支出 filled,
more decimals than the currency has) becomes a :class:`Reject`.

When the export has a running balance column, the opening balance is the first row's
balance before its movement, the closing balance the last row's, and every row's balance
is checked against the previous one (``balance_mismatch``). Exports listed newest first
are read in reverse for that check.

The own account and its holder come from the preamble as printed (banks mask the number:
``6217****0122``); :mod:`collector.statements.accounts` ties them to a registered account.
Each entry keeps its payer's name and account as printed for the payer rule. A trailer
with totals (人民币合计, ``# 收入合计``) must agree with the rows, or the file is refused
(:mod:`collector.statements.totals`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date

from settleguard.collector.account_numbers import mask_account
from settleguard.collector.statements.amounts import AmountError, parse_decimal, to_minor_units
from settleguard.collector.statements.amounts import format_minor as _fmt
from settleguard.collector.statements.entry_ids import assign_entry_ids
from settleguard.collector.statements.errors import StatementError
from settleguard.collector.statements.model import (
    Balance,
    Direction,
    ParsedStatement,
    Reject,
    StatementEntry,
)
from settleguard.collector.statements.profiles import Profile, load_profiles
from settleguard.collector.statements.sheets import Table, read_table
from settleguard.collector.statements.tabular import (
    Header,
    Row,
    excerpt,
    find_header,
    parse_date,
    strip_money,
)
from settleguard.collector.statements.totals import check_totals

# Banks print the counterparty's account inside the name cell ("6217…/张三"): mask it there too.
_LONG_DIGITS = re.compile(r"\d{8,}")


@dataclass
class _Reader:
    """Cell access for one file: knows the header names for error messages."""

    header: Header
    filename: str
    sheet: str | None = None

    @property
    def profile(self) -> Profile:
        return self.header.profile

    def cell(self, row: Row, name: str) -> str:
        index = self.header.mapping.get(name)
        if index is None or index >= len(row.cells):
            return ""
        return row.cells[index]

    def joined(self, row: Row, name: str) -> str:
        """Every filled column the profile lists for ``name``, joined by `` / ``.

        Banks split what the payer wrote over several columns (摘要 and 交易详情, 交易名称
        and 附言); the payout reference may be in any of them. Placeholder dashes are skipped.
        """
        texts: list[str] = []
        for alternative in self.profile.columns.get(name, ()):
            if alternative in self.header.names:
                index = self.header.names.index(alternative)
                text = row.cells[index] if index < len(row.cells) else ""
                if text.strip("-") and text not in texts:
                    texts.append(text)
        return " / ".join(texts)

    def error(self, row: Row, name: str, reason: str) -> StatementError:
        column = self.header.names[self.header.mapping[name]]
        return StatementError(
            reason, filename=self.filename, line=row.line, column=column, sheet=self.sheet
        )

    def date(self, row: Row, name: str) -> date | None:
        raw = self.cell(row, name)
        if not raw:
            return None
        day = parse_date(raw, self.profile.date_formats)
        if day is None:
            raise self.error(row, name, f"{excerpt(raw)} is not a date")
        return day

    def decimal_cell(self, row: Row, name: str, currency: str) -> int | None:
        raw = strip_money(self.cell(row, name))
        if raw in ("", "-", "--"):
            return None
        try:
            value = parse_decimal(raw, thousands=True)
        except AmountError as exc:
            raise self.error(row, name, f"amount {excerpt(raw)} is not a decimal") from exc
        return to_minor_units(value, currency)  # AmountError here means too many decimals


def _currency(reader: _Reader, row: Row) -> str:
    raw = reader.cell(row, "currency")
    if not raw:
        return reader.profile.currency
    mapped = reader.profile.currency_map.get(raw, raw.upper())
    if not re.fullmatch(r"[A-Z]{3}", mapped):
        raise reader.error(row, "currency", f"unknown currency {excerpt(raw)}")
    return mapped


def _movement(reader: _Reader, row: Row, currency: str) -> tuple[int, Direction]:
    """Return (positive amount, direction); raises AmountError/ValueError for a reject."""
    if "amount" in reader.header.mapping:
        signed = reader.decimal_cell(row, "amount", currency)
        if signed is None or signed == 0:
            raise ValueError("no amount")
        marker = reader.cell(row, "direction")
        if marker:
            direction = reader.profile.direction_map.get(marker)
            if direction not in ("credit", "debit"):
                raise reader.error(row, "direction", f"unknown debit/credit mark {excerpt(marker)}")
            return abs(signed), "credit" if direction == "credit" else "debit"
        return abs(signed), "credit" if signed > 0 else "debit"
    credit = reader.decimal_cell(row, "credit", currency) or 0
    debit = reader.decimal_cell(row, "debit", currency) or 0
    if credit and debit:
        raise ValueError("both credit and debit columns are filled")
    if not credit and not debit:
        raise ValueError("neither credit nor debit column has an amount")
    if credit < 0 or debit < 0:
        raise ValueError("a negative amount in a credit/debit column")
    return (credit, "credit") if credit else (debit, "debit")


def _entry(reader: _Reader, row: Row) -> tuple[StatementEntry, int | None]:
    booking = reader.date(row, "booking_date")
    if booking is None:
        raise reader.error(row, "booking_date", "empty date")
    currency = _currency(reader, row)
    amount, direction = _movement(reader, row, currency)
    remittance = reader.joined(row, "remittance") or None
    markers = reader.profile.reversal_markers
    named = _LONG_DIGITS.sub(lambda m: mask_account(m.group(0)), reader.cell(row, "counterparty"))
    payer_account = printed_account(reader.cell(row, "counterparty_account"))
    counterparty = " ".join(c for c in (named, mask_or_empty(reader, row)) if c)
    entry = StatementEntry(
        line=row.line,
        element=None,
        booking_date=booking,
        value_date=reader.date(row, "value_date"),
        amount=amount,
        currency=currency,
        direction=direction,
        status="booked",
        reversal=bool(remittance and any(m in remittance for m in markers)),
        reference=reader.cell(row, "reference") or None,
        end_to_end_id=reader.cell(row, "end_to_end_id") or None,
        remittance=remittance,
        counterparty=counterparty or None,
        entry_id="",
        payer_name=named or None,
        payer_account=payer_account,
    )
    return entry, reader.decimal_cell(row, "balance", currency)


def mask_or_empty(reader: _Reader, row: Row) -> str:
    """The counterparty's account, masked: statements never hand on full numbers."""
    raw = reader.cell(row, "counterparty_account")
    return mask_account(raw) if raw else ""


def printed_account(raw: str) -> str | None:
    """An account cell as the bank printed it when masked, else masked to its last four.

    Placeholders such as ``--`` or ``-------`` are no account.
    """
    compact = re.sub(r"[\s\-]", "", raw)
    if not any(ch.isalnum() for ch in compact):
        return None
    if "*" in compact:
        return _LONG_DIGITS.sub(lambda m: mask_account(m.group(0)), compact)
    return mask_account(compact)


def _is_trailer(row: Row, profile: Profile) -> bool:
    first = next((c for c in row.cells if c), "")
    return not first or any(first.startswith(p) for p in profile.trailer_prefixes)


def _preamble(rows: list[Row], header: Header, pattern: str | None) -> str | None:
    """The first match of ``pattern`` in the lines above the header (cells joined by ``,``)."""
    if not pattern:
        return None
    for row in rows[: header.index]:
        match = re.search(pattern, ",".join(row.cells))
        if match:
            return re.sub(r"[\s-]", "", match.group(1)) or None
    return None


def _stated_period(rows: list[Row], header: Header) -> list[date]:
    """The query period the preamble states (起始日期 … 终止日期), as two dates, or none.

    An export without rows still proves that nothing moved in the period it states.
    """
    pattern = header.profile.period_pattern
    if not pattern:
        return []
    for row in rows[: header.index]:
        match = re.search(pattern, ",".join(row.cells))
        if match:
            days = [parse_date(match.group(i), header.profile.date_formats) for i in (1, 2)]
            if days[0] is not None and days[1] is not None and days[0] <= days[1]:
                return [days[0], days[1]]
    return []


def _balances(
    pairs: list[tuple[StatementEntry, int | None]], currency: str | None
) -> tuple[Balance | None, Balance | None, list[str]]:
    """Opening/closing from the running balance column, and per-row chain warnings."""
    if not pairs or any(b is None for _, b in pairs):
        return None, None, []
    if pairs[0][0].booking_date > pairs[-1][0].booking_date:
        pairs = pairs[::-1]  # newest first in the file
    first, first_balance = pairs[0]
    opening = Balance(first.booking_date, (first_balance or 0) - first.signed_amount)
    warnings = []
    running = opening.amount
    for entry, balance in pairs:
        running += entry.signed_amount
        if balance != running:
            warnings.append(
                f"balance_mismatch: line {entry.line}: balance {_fmt(balance or 0, currency)}"
                f" but the previous balance and this movement give {_fmt(running, currency)}"
            )
            running = balance or 0
    last, last_balance = pairs[-1]
    return opening, Balance(last.booking_date, last_balance or 0), warnings[:20]


def parse_bank_csv(
    data: bytes,
    *,
    filename: str = "<upload>",
    profile: str | None = None,
    profile_dir: str | os.PathLike[str] | None = None,
) -> ParsedStatement:
    """Parse a bank export (CSV text, .xls or .xlsx) with a named or auto-detected profile.

    :param data: the file's bytes (UTF-8 with or without BOM, GBK/GB18030, BIFF8, OOXML)
    :param filename: used in error messages
    :param profile: profile name; None detects it from the header
    :param profile_dir: extra directory of user profiles
    :raises StatementError: unreadable file, no or ambiguous header, an unreadable cell,
        trailer totals that disagree with the rows
    """
    table = read_table(data, filename)
    try:
        return _parse_table(table, filename, profile, profile_dir)
    except StatementError as exc:
        if exc.sheet is None and table.sheet is not None:
            raise type(exc)(
                exc.reason,
                filename=exc.filename,
                line=exc.line,
                column=exc.column,
                sheet=table.sheet,
            ) from exc
        raise


def _parse_table(
    table: Table, filename: str, profile: str | None, profile_dir: str | os.PathLike[str] | None
) -> ParsedStatement:
    rows = table.rows
    header = find_header(
        rows, load_profiles(profile_dir), "bank" if not profile else None, profile, filename
    )
    if header.profile.kind != "bank":
        raise StatementError(
            f"profile {header.profile.name!r} is for payout files", filename=filename
        )
    reader = _Reader(header, filename, table.sheet)
    pairs: list[tuple[StatementEntry, int | None]] = []
    rejects = []
    trailers = []
    for row in rows[header.index + 1 :]:
        if _is_trailer(row, header.profile):
            trailers.append(row)
            continue
        try:
            pairs.append(_entry(reader, row))
        except (AmountError, ValueError) as exc:  # StatementError is neither: it propagates
            where = "row" if table.sheet is not None else "line"
            rejects.append(Reject(f"{where} {row.line}", str(exc)))
    if header.profile.newest_first:
        pairs.reverse()
    entries = [e for e, _ in pairs]
    currency = entries[0].currency if entries else header.profile.currency
    check_totals(header, trailers, entries, currency, len(rejects), filename, table.sheet)
    opening, closing, warnings = _balances(pairs, currency)
    account = _preamble(rows, header, header.profile.account_pattern)
    dates = [e.booking_date for e in entries] + _stated_period(rows, header)
    return ParsedStatement(
        format="csv",
        account_number=account,
        currency=currency,
        opening_balance=opening,
        closing_balance=closing,
        entries=assign_entry_ids(entries, mask_account(account) if account else ""),
        period_start=min(dates) if dates else None,
        period_end=max(dates) if dates else None,
        rejects=tuple(rejects),
        warnings=tuple(warnings),
        profile=header.profile.name,
        account_holder=_preamble(rows, header, header.profile.holder_pattern),
        sheet=table.sheet,
    )
