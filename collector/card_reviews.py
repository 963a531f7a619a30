"""Reviewing settlement-account changes: one operator decision, or an acquirer's review file.

:func:`review_account` is the one place a review decision is made: it moves the account along
:data:`collector.merchants.ACCOUNT_TRANSITIONS`, writes the history row (who, when, note, the
acquirer's reference) and one audit line, and reconciles the merchant again. The CLI, the API,
the dashboard and :func:`import_reviews` (the acquirer's 结算账户变更审核 export) all call it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from settleguard.collector import merchants
from settleguard.collector.audit import audit
from settleguard.collector.reconcile import store as recon_store
from settleguard.collector.store import Store


class ReviewError(ValueError):
    """A review cannot be recorded; ``status``: 400 bad input, 404 unknown, 409 wrong state."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


_STATE = (
    "SELECT id, merchant_id, status, effective_at, retired_at FROM settlement_accounts WHERE id = ?"
)


def review_account(
    store: Store,
    account_id: int,
    status: str,
    *,
    actor: str,
    note: str | None = None,
    reference: str | None = None,
    at: datetime | None = None,
    reconcile: bool = True,
) -> dict[str, Any]:
    """Record a review decision on a settlement account (under_review, active, rejected, retired).

    :raises ReviewError: no such account (404), unknown status (400), a move the review does
        not allow (409)
    """
    before = store.query_one(_STATE, (account_id,))
    if before is None:
        raise ReviewError(f"no settlement account {account_id}", 404)
    try:
        merchant_id = merchants.set_account_status(
            store, account_id, status, actor=actor, note=note, reference=reference, at=at
        )
    except merchants.AccountTransitionError as exc:
        raise ReviewError(str(exc), 409) from exc
    except ValueError as exc:
        raise ReviewError(str(exc), 400) from exc
    after = store.query_one(_STATE, (account_id,))
    with store.transaction() as tx:
        audit(
            tx,
            actor,
            "account.status",
            f"account:{account_id}",
            before,
            after,
            merchant_id=merchant_id,
            reference=reference,
            decided_at=at.isoformat() if at else None,
        )
    if reconcile:
        recon_store.reconcile(store, [merchant_id])
    return after or {}


#: Review words in acquirers' exports -> our status.
REVIEW_WORDS = {
    "审核中": "under_review",
    "待审核": "under_review",
    "处理中": "under_review",
    "under_review": "under_review",
    "审核通过": "active",
    "通过": "active",
    "已生效": "active",
    "active": "active",
    "审核拒绝": "rejected",
    "拒绝": "rejected",
    "驳回": "rejected",
    "审核不通过": "rejected",
    "rejected": "rejected",
}
#: Column names (first found wins) of an acquirer's review export.
COLUMNS = {
    "merchant_id": ("商户编号", "商户号", "merchant_id"),
    "account_tail": ("新结算账号", "结算账号", "账号", "account"),
    "status": ("审核状态", "状态", "status"),
    "reference": ("申请编号", "流水号", "业务编号", "reference"),
    "date": ("审核日期", "处理日期", "date"),
    "note": ("审核意见", "备注", "note"),
}


@dataclass(frozen=True, slots=True)
class ReviewRow:
    """One decision of an acquirer's review file."""

    line: int
    merchant_id: str
    account_tail: str
    status: str
    reference: str | None
    decided: date | None
    note: str | None


def parse_reviews(data: bytes) -> list[ReviewRow]:
    """Read an acquirer's card-change review export (CSV, UTF-8 with or without BOM, or GBK).

    :raises ReviewError: naming the line and column of the first bad cell (never echoing an
        account number)
    """
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ReviewError("the file is neither UTF-8 nor GBK")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = list(reader)
    header_at = next(
        (i for i, row in enumerate(rows) if any(c.strip() in COLUMNS["status"] for c in row)), None
    )
    if header_at is None:
        raise ReviewError("no header row with a 审核状态 (status) column")
    header = [c.strip() for c in rows[header_at]]
    index: dict[str, int] = {}
    for name, aliases in COLUMNS.items():
        found = next((header.index(a) for a in aliases if a in header), None)
        if found is not None:
            index[name] = found
    for required in ("merchant_id", "account_tail", "status"):
        if required not in index:
            raise ReviewError(f"line {header_at + 1}: no {COLUMNS[required][0]} column")
    out = []
    for number, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        if not any(c.strip() for c in row):
            continue

        def cell(name: str, row: list[str] = row) -> str:
            at = index.get(name)
            return row[at].strip() if at is not None and at < len(row) else ""

        word = cell("status")
        status = REVIEW_WORDS.get(word)
        if status is None:
            raise ReviewError(f"line {number} column 审核状态: unknown status {word[:20]!r}")
        digits = "".join(ch for ch in cell("account_tail") if ch.isdigit())
        if len(digits) < 4:
            raise ReviewError(f"line {number} column 结算账号: needs at least the last 4 digits")
        decided = None
        if cell("date"):
            try:
                decided = date.fromisoformat(cell("date")[:10].replace("/", "-"))
            except ValueError:
                raise ReviewError(f"line {number} column 审核日期: not a date") from None
        out.append(
            ReviewRow(
                number,
                cell("merchant_id"),
                digits[-4:],
                status,
                cell("reference") or None,
                decided,
                cell("note") or None,
            )
        )
    return out


def import_reviews(store: Store, data: bytes, *, actor: str = "acquirer-file") -> dict[str, Any]:
    """Apply an acquirer's review file: each row moves the merchant's change to that account.

    A row whose account is not pending, or already in that state, is skipped (a file may be
    imported twice); the merchants touched are reconciled once at the end.

    :returns: ``{"applied", "skipped", "unknown"}`` counts and the ``errors`` per line
    """
    rows = parse_reviews(data)
    applied = skipped = unknown = 0
    errors: dict[int, str] = {}
    touched: set[str] = set()
    for row in rows:
        accounts = store.query(
            "SELECT id, status, account_masked FROM settlement_accounts WHERE merchant_id = ?"
            " ORDER BY id DESC",
            (row.merchant_id,),
        )
        match = next(
            (a for a in accounts if (a["account_masked"] or "").endswith(row.account_tail)), None
        )
        if match is None:
            unknown += 1
            continue
        if match["status"] == row.status:
            skipped += 1
            continue
        at = datetime.combine(row.decided, datetime.min.time(), UTC) if row.decided else None
        try:
            review_account(
                store,
                match["id"],
                row.status,
                actor=actor,
                note=row.note,
                reference=row.reference,
                at=at,
                reconcile=False,
            )
        except ReviewError as exc:
            errors[row.line] = str(exc)
            continue
        applied += 1
        touched.add(row.merchant_id)
    if touched:
        recon_store.reconcile(store, sorted(touched))
    return {"applied": applied, "skipped": skipped, "unknown": unknown, "errors": errors}
