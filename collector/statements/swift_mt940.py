"""SWIFT MT940 customer statement reader: the ``mt-940`` package plus our own checks.

Theory of operation
-------------------
The ``mt940`` library is lenient: a ``:61:`` line it cannot match is skipped or folded
into the previous field, and it keeps no line numbers. We therefore pre-scan the text
ourselves: every ``:tag:`` at the start of a line is located with its line number, the
file is cut into statements at each ``:20:``, and every ``:60a:``, ``:61:`` and ``:62a:``
is checked against the SWIFT field formats (MT940 field 61:
``6!n[4!n]2a[1!a]15d1!a3!c16x[//16x][34x]``; fields 60a/62a: ``1!a6!n3!a15d``).
A field that does not match raises :class:`StatementError` with its line number.

Only then is each statement handed to the library, which reads the ``:86:`` narratives
and references; its transaction count and amounts must agree with our own reading,
or the file is refused instead of being half-imported.

Debit/credit marks: ``C`` credit, ``D`` debit, ``RC`` reversal of a credit (booked as a
debit), ``RD`` reversal of a debit (booked as a credit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Any

import mt940
from settleguard.collector.account_numbers import mask_account
from settleguard.collector.statements.amounts import AmountError, parse_decimal, to_minor_units
from settleguard.collector.statements.balances import balance_warning
from settleguard.collector.statements.entry_ids import assign_entry_ids
from settleguard.collector.statements.errors import StatementError
from settleguard.collector.statements.model import (
    Balance,
    Direction,
    ParsedStatement,
    StatementEntry,
)

_TAG = re.compile(r":(\d{2}[A-Z]?|NS):")
_FIELD_61 = re.compile(
    r"(?P<vdate>\d{6})(?P<edate>\d{4})?(?P<mark>RC|RD|C|D)(?P<funds>[A-Z])?"
    r"(?P<amount>\d[\d,]{0,14})(?P<type>[NSF][A-Z0-9]{3})"
    r"(?P<custref>(?:(?!//)[^\n]){1,16})(?://(?P<bankref>[^\n]{0,16}))?(?:\n(?P<supp>.*))?",
    re.DOTALL,
)
_BALANCE = re.compile(r"(?P<mark>[CD])(?P<date>\d{6})(?P<ccy>[A-Z]{3})(?P<amount>\d[\d,]{0,14})")
_MARKS: dict[str, tuple[Direction, bool]] = {
    "C": ("credit", False),
    "D": ("debit", False),
    "RC": ("debit", True),
    "RD": ("credit", True),
}


@dataclass
class _Field:
    tag: str
    line: int
    value: str


def detect_mt940(text: str) -> bool:
    """True when the text looks like MT940: a ``:20:`` and a ``:60F:``/``:61:`` at line starts."""
    head = text[:8192]
    return bool(re.search(r"(?m)^:20:", head)) and bool(re.search(r"(?m)^:(60[FM]|61|25):", head))


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _scan(text: str) -> list[_Field]:
    """Cut the text into fields, each with the line its tag is on."""
    fields: list[_Field] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if line.startswith("{") and ":" not in line.split("{4:", 1)[-1]:
            continue  # SWIFT header blocks {1:…}{2:…}{4:
        if line in ("-}", "-", "}") or line.startswith("{5:"):
            fields.append(_Field("END", number, ""))
            continue
        match = _TAG.match(line)
        if match:
            fields.append(_Field(match.group(1), number, line[match.end() :]))
        elif fields and fields[-1].tag != "END":
            fields[-1].value += "\n" + line
        elif line.strip():
            raise StatementError("text outside any :tag: field", line=number)
    return fields


def _yymmdd(raw: str, line: int, what: str) -> date:
    try:
        return date(2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:6]))
    except ValueError as exc:
        raise StatementError(f"{what} {raw!r} is not a valid YYMMDD date", line=line) from exc


def _minor(raw: str, currency: str, line: int, tag: str) -> int:
    try:
        return to_minor_units(parse_decimal(raw, comma_decimal=True), currency)
    except AmountError as exc:
        raise StatementError(f":{tag}: {exc}", line=line) from exc


def _balance(field: _Field) -> tuple[Balance, str]:
    match = _BALANCE.fullmatch(field.value.strip())
    if not match:
        raise StatementError(
            f":{field.tag}: balance {field.value.strip()!r} is not D/C, YYMMDD, currency, amount",
            line=field.line,
        )
    day = _yymmdd(match.group("date"), field.line, f":{field.tag}: date")
    amount = _minor(match.group("amount"), match.group("ccy"), field.line, field.tag)
    sign = -1 if match.group("mark") == "D" else 1
    return Balance(day, sign * amount), match.group("ccy")


@dataclass
class _Line61:
    line: int
    value_date: date
    booking_date: date
    direction: Direction
    reversal: bool
    amount: int
    mark: str


def _field_61(field: _Field, currency: str) -> _Line61:
    match = _FIELD_61.fullmatch(field.value.strip())
    if not match:
        raise StatementError(
            f":61: statement line {field.value.splitlines()[0]!r} does not match"
            " 6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]",
            line=field.line,
        )
    value_date = _yymmdd(match.group("vdate"), field.line, ":61: value date")
    booking_date = value_date
    if match.group("edate"):
        booking_date = _entry_date(match.group("edate"), value_date, field.line)
    direction, reversal = _MARKS[match.group("mark")]
    amount = _minor(match.group("amount"), currency, field.line, "61")
    return _Line61(
        field.line, value_date, booking_date, direction, reversal, amount, match.group("mark")
    )


def _entry_date(mmdd: str, value_date: date, line: int) -> date:
    """The entry date has no year: take the one closest to the value date."""
    best = None
    for year in (value_date.year - 1, value_date.year, value_date.year + 1):
        try:
            candidate = date(year, int(mmdd[:2]), int(mmdd[2:]))
        except ValueError:
            continue
        if best is None or abs(candidate - value_date) < abs(best - value_date):
            best = candidate
    if best is None:
        raise StatementError(f":61: entry date {mmdd!r} is not a valid MMDD", line=line)
    return best


def _library_transactions(text: str, first_line: int) -> tuple[dict[str, Any], list[Any]]:
    try:
        parsed = mt940.models.Transactions()
        parsed.parse(text)
        return dict(parsed.data), [t.data for t in parsed]
    except Exception as exc:  # the library raises anything from RuntimeError to KeyError
        raise StatementError(
            f"mt940 library could not read the statement: {exc}", line=first_line
        ) from exc


@dataclass
class _Statement:
    account: str | None
    currency: str
    opening: Balance
    closing: Balance
    entries: list[StatementEntry]


def _statement(fields: list[_Field], filename: str) -> _Statement:
    by_tag: dict[str, list[_Field]] = {}
    for f in fields:
        by_tag.setdefault(f.tag[:2], []).append(f)
    first = fields[0].line
    for tag, name in (("60", "opening balance :60F:"), ("62", "closing balance :62F:")):
        if len(by_tag.get(tag, [])) != 1:
            raise StatementError(f"statement needs exactly one {name}", line=first)
    opening, currency = _balance(by_tag["60"][0])
    closing, closing_ccy = _balance(by_tag["62"][0])
    if closing_ccy != currency:
        raise StatementError(":62F: currency differs from :60F:", line=by_tag["62"][0].line)
    lines = [_field_61(f, currency) for f in by_tag.get("61", [])]
    text = "\n".join(f":{f.tag}:{f.value}" for f in fields)
    data, transactions = _library_transactions(text, first)
    if len(transactions) != len(lines):
        raise StatementError(
            f"mt940 library read {len(transactions)} :61: lines, we read {len(lines)}", line=first
        )
    entries = [_entry(ours, lib, currency) for ours, lib in zip(lines, transactions, strict=True)]
    account = by_tag["25"][0].value.strip() if "25" in by_tag else None
    return _Statement(
        account or data.get("account_identification"), currency, opening, closing, entries
    )


def _entry(ours: _Line61, lib: dict[str, Any], currency: str) -> StatementEntry:
    lib_amount = abs(Decimal(str(lib["amount"].amount)))
    if to_minor_units(lib_amount, currency) != ours.amount or lib.get("status") != ours.mark:
        raise StatementError(
            ":61: amount or mark read differently by the mt940 library", line=ours.line
        )
    custref = (lib.get("customer_reference") or "").strip()
    details = (lib.get("transaction_details") or "").replace("\n", " ").strip()
    return StatementEntry(
        line=ours.line,
        element=None,
        booking_date=ours.booking_date,
        value_date=ours.value_date,
        amount=ours.amount,
        currency=currency,
        direction=ours.direction,
        status="booked",
        reversal=ours.reversal,
        reference=(lib.get("bank_reference") or "").strip() or None,
        end_to_end_id=None if custref in ("", "NONREF") else custref,
        remittance=details or None,
        counterparty=None,
        entry_id="",
    )


def parse_mt940(data: bytes, *, filename: str = "<upload>") -> ParsedStatement:
    """Parse an MT940 file (one or more statements of one account).

    :param data: the file's bytes (ASCII, UTF-8 or GB18030 narratives)
    :param filename: used in error messages
    :raises StatementError: on a malformed field (with its line number) or mixed accounts
    """
    text = _decode(data).replace("\r\n", "\n").replace("\r", "\n")
    try:
        return _parse(text, filename)
    except StatementError as exc:  # inner helpers don't carry the file name
        raise exc.in_file(filename) from exc.__cause__


def _parse(text: str, filename: str) -> ParsedStatement:
    groups: list[list[_Field]] = []
    for f in _scan(text):
        if f.tag == "20":
            groups.append([f])
        elif f.tag == "END":
            continue
        elif groups:
            groups[-1].append(f)
        else:
            raise StatementError(f":{f.tag}: before the first :20:", line=f.line)
    if not groups:
        raise StatementError("no MT940 statement (:20:) found")
    statements = [_statement(g, filename) for g in groups]
    return _join(statements)


def _join(statements: list[_Statement]) -> ParsedStatement:
    accounts = {s.account for s in statements if s.account}
    if len(accounts) > 1:
        masked = ", ".join(sorted(mask_account(a) for a in accounts))
        raise StatementError(f"statements for several accounts ({masked}); import them one by one")
    warnings = []
    for i, s in enumerate(statements, start=1):
        warning = balance_warning(s.opening, s.closing, s.entries, s.currency, f"statement {i}: ")
        if warning:
            warnings.append(warning)
    for prev, nxt in pairwise(statements):
        if prev.closing.amount != nxt.opening.amount:
            warnings.append("balance_mismatch: a :60F: does not carry on the previous :62F:")
    entries = [e for s in statements for e in s.entries]
    account = next(iter(accounts), None)
    return ParsedStatement(
        format="mt940",
        account_number=account,
        currency=statements[0].currency,
        opening_balance=statements[0].opening,
        closing_balance=statements[-1].closing,
        entries=assign_entry_ids(entries, mask_account(account) if account else ""),
        period_start=statements[0].opening.date,
        period_end=statements[-1].closing.date,
        warnings=tuple(warnings),
    )
