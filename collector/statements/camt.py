"""ISO 20022 camt.053 (statement) and camt.054 (debit/credit notification) reader.

Theory of operation
-------------------
The XML is parsed with defusedxml with DTDs, entity declarations and external
references all forbidden, so billion-laughs and XXE files are refused before any
expansion. Elements are then looked up by *local name* only: the message versions
.001.02 to .001.08 (and later) differ in namespace, and in a few places in shape, and
reading by local name lets one reader serve them all. The differences handled:

* ``Ntry/Sts`` is a bare code (``BOOK``) up to .001.07 and ``Sts/Cd`` from .001.08;
* the related party's name is ``RltdPties/Dbtr/Nm`` up to .001.07 and
  ``RltdPties/Dbtr/Pty/Nm`` from .001.08;
* a transaction's own amount is ``TxDtls/AmtDtls/TxAmt/Amt`` in .001.02 and also
  ``TxDtls/Amt`` from .001.03 on.

An entry (``Ntry``) with several ``TxDtls`` whose amounts add up to the entry amount is a
batch booking and becomes one :class:`StatementEntry` per transaction, so each payout
can be matched by its own reference. Balances ``OPBD`` (or ``PRCD``) and ``CLBD`` give
the chain check of :mod:`collector.statements.balances`.

Malformed structure (not XML, missing ``Amt``, a date that is not a date) raises
:class:`StatementError` naming the element; an entry that is well formed but cannot be
accepted (too many decimals for its currency, an unknown status) becomes a
:class:`Reject` and the rest of the file is still read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from settleguard.collector.account_numbers import mask_account, normalize_account
from settleguard.collector.statements.amounts import AmountError, parse_decimal, to_minor_units
from settleguard.collector.statements.balances import balance_warning
from settleguard.collector.statements.entry_ids import assign_entry_ids
from settleguard.collector.statements.errors import StatementError
from settleguard.collector.statements.model import (
    Balance,
    Direction,
    EntryStatus,
    ParsedStatement,
    Reject,
    StatementEntry,
)

_NAMESPACE = re.compile(r"camt\.(05[2-4])\.001\.(\d{2})")
_CONTAINERS = {"053": ("BkToCstmrStmt", "Stmt"), "054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}
_STATUS: dict[str, EntryStatus] = {"BOOK": "booked", "PDNG": "pending", "INFO": "info"}
_DIRECTION: dict[str, Direction] = {"CRDT": "credit", "DBIT": "debit"}


class _Rejected(Exception):
    def __init__(self, element: str, reason: str) -> None:
        super().__init__(reason)
        self.element = element
        self.reason = reason


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(el: Element | None, path: str) -> Element | None:
    """Follow ``A/B/C`` by local names; first match at each step."""
    for name in path.split("/"):
        if el is None:
            return None
        el = next((c for c in el if _local(c.tag) == name), None)
    return el


def _find_all(el: Element | None, name: str) -> list[Element]:
    return [] if el is None else [c for c in el if _local(c.tag) == name]


def _text(el: Element | None, path: str) -> str | None:
    found = _find(el, path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


@dataclass
class _Ctx:
    filename: str
    prefix: str

    def error(self, element: str, reason: str) -> StatementError:
        return StatementError(reason, filename=self.filename, element=self.prefix + element)


def detect_camt(data: bytes) -> str | None:
    """Return ``camt053``/``camt054`` if the first 4 KiB declare that namespace, else None."""
    match = _NAMESPACE.search(data[:4096].decode("latin-1"))
    if match and match.group(1) in _CONTAINERS:
        return "camt" + match.group(1)
    return None


def _load(data: bytes, filename: str) -> Element:
    try:
        root: Element = fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise StatementError(
            f"XML with DTD, entities or external references is refused ({type(exc).__name__})",
            filename=filename,
        ) from exc
    except ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise StatementError(f"not well-formed XML: {exc}", filename=filename, line=line) from exc
    except (ValueError, UnicodeError, LookupError, RecursionError) as exc:  # Lookup: encoding=
        raise StatementError(f"not readable XML: {exc}", filename=filename) from exc
    return root


def _date(el: Element | None, ctx: _Ctx, path: str) -> date | None:
    """Read a ``Dt`` or ``DtTm`` child (the date as the bank stated it, no zone shift)."""
    if el is None:
        return None
    raw = _text(el, "Dt")
    name = "Dt"
    if raw is None:
        raw, name = _text(el, "DtTm"), "DtTm"
    if raw is None:
        raise ctx.error(path, "has neither Dt nor DtTm")
    try:
        if name == "Dt":
            return date.fromisoformat(raw)
        return datetime.fromisoformat(raw).date()
    except ValueError as exc:
        raise ctx.error(f"{path}/{name}", f"{raw!r} is not an ISO date") from exc


def _amount(el: Element | None, ctx: _Ctx, path: str) -> tuple[int, str]:
    """Return (minor units, currency) of an ``Amt`` element; too many decimals -> reject."""
    if el is None:
        raise ctx.error(path, "missing")
    currency = (el.get("Ccy") or "").strip()
    if not currency:
        raise ctx.error(path, "has no Ccy attribute")
    try:
        value = parse_decimal(el.text or "")
    except AmountError as exc:
        raise ctx.error(path, str(exc)) from exc
    if value < 0:
        raise ctx.error(path, f"amount {value} is negative; CdtDbtInd carries the sign")
    try:
        return to_minor_units(value, currency), currency
    except AmountError as exc:
        raise _Rejected(ctx.prefix + path, str(exc)) from exc


def _direction(el: Element, ctx: _Ctx, path: str) -> Direction:
    raw = _text(el, "CdtDbtInd")
    if raw not in _DIRECTION:
        raise ctx.error(f"{path}/CdtDbtInd", f"must be CRDT or DBIT, not {raw!r}")
    return _DIRECTION[raw]


def _status(ntry: Element, ctx: _Ctx, path: str) -> EntryStatus:
    sts = _find(ntry, "Sts")
    code = None
    if sts is not None:
        code = _text(sts, "Cd") or _text(sts, "Prtry") or (sts.text or "").strip() or None
    if code is None:
        raise ctx.error(f"{path}/Sts", "missing entry status")
    if code not in _STATUS:
        raise _Rejected(f"{ctx.prefix}{path}/Sts", f"unknown entry status {code!r}")
    return _STATUS[code]


def _reversal(ntry: Element, ctx: _Ctx, path: str) -> bool:
    raw = _text(ntry, "RvslInd")
    if raw is None:
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise ctx.error(f"{path}/RvslInd", f"{raw!r} is not a boolean")


def _party_name(tx: Element, role: str) -> str | None:
    return _text(tx, f"RltdPties/{role}/Nm") or _text(tx, f"RltdPties/{role}/Pty/Nm")


def _remittance(tx: Element) -> str | None:
    rmt = _find(tx, "RmtInf")
    parts = [(u.text or "").strip() for u in _find_all(rmt, "Ustrd")]
    for strd in _find_all(rmt, "Strd"):
        ref = _text(strd, "CdtrRefInf/Ref")
        if ref:
            parts.append(ref)
    text = " ".join(p for p in parts if p)
    return text or None


@dataclass
class _Tx:
    element: str
    amount: int | None
    currency: str | None
    end_to_end_id: str | None
    reference: str | None
    remittance: str | None
    counterparty: str | None


def _transactions(ntry: Element, ctx: _Ctx, path: str, direction: Direction) -> list[_Tx]:
    role = "Dbtr" if direction == "credit" else "Cdtr"
    out = []
    index = 0
    for details in _find_all(ntry, "NtryDtls"):
        for tx in _find_all(details, "TxDtls"):
            index += 1
            tx_path = f"{path}/NtryDtls/TxDtls[{index}]"
            amt_el = _find(tx, "Amt")
            amt_name = "Amt"
            if amt_el is None:
                amt_el, amt_name = _find(tx, "AmtDtls/TxAmt/Amt"), "AmtDtls/TxAmt/Amt"
            amount = currency = None
            if amt_el is not None:
                amount, currency = _amount(amt_el, ctx, f"{tx_path}/{amt_name}")
            out.append(
                _Tx(
                    element=tx_path,
                    amount=amount,
                    currency=currency,
                    end_to_end_id=_text(tx, "Refs/EndToEndId"),
                    reference=_text(tx, "Refs/AcctSvcrRef"),
                    remittance=_remittance(tx),
                    counterparty=_party_name(tx, role),
                )
            )
    return out


def _entries(
    ntry: Element, ctx: _Ctx, path: str, fallback_date: date | None, warnings: list[str]
) -> list[StatementEntry]:
    amount, currency = _amount(_find(ntry, "Amt"), ctx, f"{path}/Amt")
    direction = _direction(ntry, ctx, path)
    status = _status(ntry, ctx, path)
    reversal = _reversal(ntry, ctx, path)
    booking = _date(_find(ntry, "BookgDt"), ctx, f"{path}/BookgDt")
    value = _date(_find(ntry, "ValDt"), ctx, f"{path}/ValDt")
    if booking is None and status == "booked":
        raise ctx.error(f"{path}/BookgDt", "a booked entry needs a booking date")
    booking = booking or value or fallback_date
    if booking is None:
        raise ctx.error(f"{path}/BookgDt", "no booking date, value date or statement date")
    entry_ref = _text(ntry, "AcctSvcrRef")
    txs = _transactions(ntry, ctx, path, direction)

    def make(element: str, amt: int, tx: _Tx | None, remittance: str | None) -> StatementEntry:
        return StatementEntry(
            line=None,
            element=ctx.prefix + element,
            booking_date=booking,
            value_date=value,
            amount=amt,
            currency=currency,
            direction=direction,
            status=status,
            reversal=reversal,
            reference=(tx.reference if tx else None) or entry_ref,
            end_to_end_id=tx.end_to_end_id if tx else None,
            remittance=remittance,
            counterparty=tx.counterparty if tx else None,
            entry_id="",
        )

    additional = _text(ntry, "AddtlNtryInf")
    if len(txs) > 1 and all(t.amount is not None and t.currency == currency for t in txs):
        if sum(t.amount or 0 for t in txs) == amount:
            return [make(t.element, t.amount or 0, t, t.remittance or additional) for t in txs]
        warnings.append(
            f"batch_breakdown_mismatch: {ctx.prefix}{path}: TxDtls amounts do not add up to"
            " the entry amount; kept as one entry"
        )
    if len(txs) == 1:
        return [make(path, amount, txs[0], txs[0].remittance or additional)]
    texts = [t.remittance for t in txs if t.remittance] or ([additional] if additional else [])
    return [make(path, amount, None, "; ".join(texts) or None)]


def _balances(stmt: Element, ctx: _Ctx) -> tuple[Balance | None, Balance | None, str | None]:
    found: dict[str, Balance] = {}
    currency = None
    for i, bal in enumerate(_find_all(stmt, "Bal"), start=1):
        path = f"Bal[{i}]"
        code = _text(bal, "Tp/CdOrPrtry/Cd") or _text(bal, "Tp/CdOrPrtry/Prtry")
        if code not in ("OPBD", "PRCD", "CLBD"):
            continue
        try:
            amount, currency = _amount(_find(bal, "Amt"), ctx, f"{path}/Amt")
        except _Rejected as exc:
            raise ctx.error(f"{path}/Amt", exc.reason) from exc
        sign = -1 if _direction(bal, ctx, path) == "debit" else 1
        day = _date(_find(bal, "Dt"), ctx, f"{path}/Dt")
        if day is None:
            raise ctx.error(f"{path}/Dt", "balance without a date")
        found.setdefault(code, Balance(day, sign * amount))
    opening = found.get("OPBD") or found.get("PRCD")
    return opening, found.get("CLBD"), currency


@dataclass
class _StmtResult:
    account: str | None
    currency: str | None
    opening: Balance | None
    closing: Balance | None
    entries: list[StatementEntry]
    period: tuple[date | None, date | None]


def _statement(stmt: Element, ctx: _Ctx, rejects: list[Reject], warnings: list[str]) -> _StmtResult:
    account = _text(stmt, "Acct/Id/IBAN") or _text(stmt, "Acct/Id/Othr/Id")
    opening, closing, bal_ccy = _balances(stmt, ctx)
    start = end = None
    span = _find(stmt, "FrToDt")
    if span is not None:
        start = _datetime_date(_text(span, "FrDtTm"), ctx, "FrToDt/FrDtTm")
        end = _datetime_date(_text(span, "ToDtTm"), ctx, "FrToDt/ToDtTm")
    created = _datetime_date(_text(stmt, "CreDtTm"), ctx, "CreDtTm")
    entries: list[StatementEntry] = []
    for i, ntry in enumerate(_find_all(stmt, "Ntry"), start=1):
        try:
            entries.extend(_entries(ntry, ctx, f"Ntry[{i}]", created, warnings))
        except _Rejected as exc:
            rejects.append(Reject(exc.element, exc.reason))
    currency = _text(stmt, "Acct/Ccy") or bal_ccy or (entries[0].currency if entries else None)
    moving = [e for e in entries if e.currency == currency]
    warning = balance_warning(opening, closing, moving, currency, ctx.prefix)
    if warning and rejects:
        warning += f" ({len(rejects)} rejected entries not counted)"
    if warning:
        warnings.append(warning)
    return _StmtResult(account, currency, opening, closing, entries, (start, end))


def _datetime_date(raw: str | None, ctx: _Ctx, path: str) -> date | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw).date()
    except ValueError as exc:
        raise ctx.error(path, f"{raw!r} is not an ISO date-time") from exc


def parse_camt(data: bytes, *, filename: str = "<upload>") -> ParsedStatement:
    """Parse a camt.053 or camt.054 document into a :class:`ParsedStatement`.

    Several ``Stmt``/``Ntfctn`` blocks for the same account are joined in order (the
    opening balance from the first, the closing from the last, each chain checked).

    :param data: the file's bytes
    :param filename: used in error messages
    :raises StatementError: on unsafe or malformed XML, or a message that is not camt.053/054
    """
    root = _load(data, filename)
    match = _NAMESPACE.search(root.tag)
    kind = match.group(1) if match else None
    if kind is None:
        kind = next((k for k, (c, _) in _CONTAINERS.items() if _find(root, c) is not None), None)
    if kind not in _CONTAINERS:
        raise StatementError(
            f"not a camt.053 or camt.054 message (root {_local(root.tag)!r})",
            filename=filename,
        )
    container_name, block_name = _CONTAINERS[kind]
    container = _find(root, container_name)
    blocks = _find_all(container, block_name)
    if not blocks:
        raise StatementError(
            f"no {block_name} in the message", filename=filename, element=container_name
        )
    rejects: list[Reject] = []
    warnings: list[str] = []
    results = []
    for i, block in enumerate(blocks, start=1):
        ctx = _Ctx(filename, f"{block_name}[{i}]/" if len(blocks) > 1 else "")
        results.append(_statement(block, ctx, rejects, warnings))
    return _join(results, kind, filename, rejects, warnings)


def _join(
    results: list[_StmtResult],
    kind: str,
    filename: str,
    rejects: list[Reject],
    warnings: list[str],
) -> ParsedStatement:
    accounts = {normalize_account(r.account) for r in results if r.account}
    if len(accounts) > 1:
        masked = ", ".join(sorted(mask_account(a) for a in accounts))
        raise StatementError(
            f"the file holds statements for several accounts ({masked}); import them one by one",
            filename=filename,
        )
    for prev, nxt in pairwise(results):
        if prev.closing and nxt.opening and prev.closing.amount != nxt.opening.amount:
            warnings.append(
                f"balance_mismatch: a statement opens at {nxt.opening.amount} minor units but"
                f" the one before closed at {prev.closing.amount}"
            )
    entries = [e for r in results for e in r.entries]
    account = next((r.account for r in results if r.account), None)
    dates = [e.booking_date for e in entries]
    starts = [r.period[0] for r in results if r.period[0]]
    ends = [r.period[1] for r in results if r.period[1]]
    return ParsedStatement(
        format="camt" + kind,
        account_number=account,
        currency=next((r.currency for r in results if r.currency), None),
        opening_balance=results[0].opening,
        closing_balance=results[-1].closing,
        entries=assign_entry_ids(entries, mask_account(account) if account else ""),
        period_start=min(starts) if starts else (min(dates) if dates else None),
        period_end=max(ends) if ends else (max(dates) if dates else None),
        rejects=tuple(rejects),
        warnings=tuple(warnings),
    )
