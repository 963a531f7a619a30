"""Store a parsed statement or payout file (the library behind ``settleguard collector import``).

Theory of operation (docs/architecture.md §5 "Statements"):

* A file is identified by the SHA-256 of its bytes. Importing bytes that were already imported
  successfully is a no-op that reports ``duplicate: true``; nothing new is stored.
* A file that does not parse (:class:`~collector.statements.StatementError`) is recorded as one
  ``imports`` row with ``status = 'rejected'`` and the located error, and nothing else is stored.
  The same bytes may be tried again later (say with ``--profile``): the rejected row is reused.
* A parsed statement is stored in one transaction: the ``imports`` row (format, masked account,
  account HMAC, period, whether the balance chain closed) and one ``credits`` row per entry.
  Full account numbers exist only in memory here: the row gets the masked form and the keyed
  HMAC. Entries are unique per ``(account_hmac, entry_id)``, so the same movement in two
  overlapping statements is stored once, whichever file came first.
* The import's period and balance state are the statement coverage that reconciliation turns
  into ``STATEMENT_GAP`` when a due date is not covered or the chain did not close. A camt.054
  (single notifications) proves no coverage and records none.
* Rows the parser rejected (well-formed but not accepted) are kept on the import with their
  line or element, for operators to see.
* Bank exports print the own account masked (``6217****0122``). Such an import is tied to
  the one registered settlement account that fits what the bank shows
  (:mod:`collector.statements.accounts`), optionally within the merchant the operator named
  (``account_of``); none or several fitting accounts refuse the file, listing the candidates.
* A statement whose period overlaps earlier imports of the same account says so in its
  summary (``overlaps``) with how many of its entries were already stored and skipped.
* Each entry's payer name and account are kept as printed (``payer_name``,
  ``payer_account``) for the reconciliation's payer rule.
"""

# SQL here is built only from our own table/column names and "?" lists; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from settleguard.collector.account_numbers import mask_account
from settleguard.collector.statements import (
    ParsedPayoutFile,
    ParsedStatement,
    StatementError,
    parse_statement,
    summarize,
)
from settleguard.collector.statements.accounts import RegisteredAccount, tie_account, visible_digits
from settleguard.collector.store import Store, Tx
from settleguard.protocol.sealed import SealedError

#: Turns a full account number into the collector's keyed HMAC (``CollectorKeys.account_hmac``).
AccountHasher = Callable[[str], str]
#: Opens a card change's sealed account number: ``(change_id, token) -> number``
#: (``CollectorKeys.open_card_change``); it may raise when the token is not ours.
AccountOpener = Callable[[str, str], str]
OwnAccount = tuple[str | None, str | None]

_COVERAGE_FORMATS = ("camt053", "mt940", "csv")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did.

    :ivar import_id: the ``imports`` row (the earlier one for a duplicate)
    :ivar duplicate: the same bytes were already imported; nothing new was stored
    :ivar summary: the ``--json`` object: ``format``, ``account`` (masked), ``credits``,
        ``credit_total``, ``debits``, ``reversals``, ``pending``, ``rejected``, ``duplicate``, …
    """

    import_id: int
    duplicate: bool
    summary: dict[str, Any]


class ImportRejected(Exception):
    """The file did not parse; it was recorded as a rejected import and nothing else stored.

    :ivar error: the parser's located error
    :ivar import_id: the ``imports`` row that records the attempt
    """

    def __init__(self, error: StatementError, import_id: int) -> None:
        self.error = error
        self.import_id = import_id
        super().__init__(str(error))


def file_sha256(data: bytes) -> str:
    """Hex SHA-256 of a file's bytes: the identity of an import."""
    return hashlib.sha256(data).hexdigest()


def import_file(
    store: Store,
    data: bytes,
    *,
    filename: str,
    account_hmac: AccountHasher,
    fmt: str = "auto",
    profile: str | None = None,
    profile_dir: str | os.PathLike[str] | None = None,
    account: str | None = None,
    account_of: str | None = None,
    open_account: AccountOpener | None = None,
    actor: str | None = None,
) -> ImportResult:
    """Parse ``data`` and store it, once.

    :param store: a migrated collector store
    :param data: the file's bytes
    :param filename: shown in errors and kept on the import row
    :param account_hmac: keyed hash for account numbers (``CollectorKeys.account_hmac``)
    :param fmt: ``auto`` or one of :data:`collector.statements.FORMATS`
    :param profile: CSV or payout profile name (None: detect from the header)
    :param profile_dir: extra directory of user profiles
    :param account: the statement's full account number, when the file does not show it
    :param account_of: the merchant whose registered account the export belongs to (ties a
        masked or missing own account among that merchant's accounts only)
    :param open_account: opens sealed registered numbers, to compare the first digits too
    :param actor: who imported it (kept on the row)
    :raises ImportRejected: the file is bad; the attempt is recorded, nothing else stored
    """
    digest = file_sha256(data)
    previous = store.query_one(
        "SELECT id, status, summary FROM imports WHERE file_sha256 = ?", (digest,)
    )
    if previous is not None and previous["status"] != "rejected":
        return _duplicate(previous)
    try:
        parsed = parse_statement(
            data, filename=filename, fmt=fmt, profile=profile, profile_dir=profile_dir
        )
        own: OwnAccount = (None, None)
        if isinstance(parsed, ParsedStatement):
            own = _own_account(
                store, parsed, account, account_of, account_hmac, open_account, filename
            )
    except StatementError as exc:
        raise ImportRejected(
            exc, _record_rejected(store, digest, filename, fmt, exc, actor)
        ) from exc
    summary = summarize(parsed)
    if isinstance(parsed, ParsedStatement):
        summary["account"] = own[0]
        summary.update(_overlaps(store, parsed, own[1]))
    with store.transaction() as tx:
        row = tx.query_one(
            "SELECT id, status, summary FROM imports WHERE file_sha256 = ?", (digest,)
        )
        if row is not None and row["status"] != "rejected":
            return _duplicate(row)  # a concurrent import of the same bytes won
        summary["duplicate"] = False
        import_id = _import_row(tx, row, digest, filename, parsed, summary, own, actor)
        summary["import_id"] = import_id
        tx.execute("UPDATE imports SET summary = ? WHERE id = ?", (json.dumps(summary), import_id))
        if isinstance(parsed, ParsedPayoutFile):
            _store_payouts(tx, import_id, parsed)
        else:
            _store_entries(tx, import_id, parsed, own)
    return ImportResult(import_id, False, summary)


def _duplicate(row: dict[str, Any]) -> ImportResult:
    summary = json.loads(row["summary"] or "{}")
    summary["duplicate"] = True
    summary["import_id"] = row["id"]
    return ImportResult(int(row["id"]), True, summary)


def _record_rejected(
    store: Store, digest: str, filename: str, fmt: str, exc: StatementError, actor: str | None
) -> int:
    error = str(exc)
    summary = json.dumps({"format": fmt, "error": error, "duplicate": False})
    with store.transaction() as tx:
        row = tx.query_one("SELECT id FROM imports WHERE file_sha256 = ?", (digest,))
        if row is not None:
            tx.execute(
                "UPDATE imports SET filename = ?, error = ?, summary = ?, actor = ? WHERE id = ?",
                (filename, error, summary, actor, row["id"]),
            )
            return int(row["id"])
        import_id: int = tx.insert(
            "imports",
            {
                "kind": "statement",
                "filename": filename,
                "file_sha256": digest,
                "actor": actor,
                "status": "rejected",
                "file_format": None if fmt == "auto" else fmt,
                "error": error,
                "summary": summary,
            },
        )
        return import_id


def _own_account(
    store: Store,
    parsed: ParsedStatement,
    account: str | None,
    account_of: str | None,
    account_hmac: AccountHasher,
    open_account: AccountOpener | None,
    filename: str,
) -> OwnAccount:
    """(masked, HMAC) of the statement's own account; the clear number goes no further.

    :raises StatementError: a masked or missing account that no or several registered
        accounts fit, or a full number that is not the named merchant's
    """
    account_of = account_of or None
    number = account or (None if parsed.account_masked_by_bank else parsed.account_number)
    if number:
        key = account_hmac(number)
        if account_of is not None and not any(
            a.account_hmac == key for a in registered_accounts(store, None, merchant_id=account_of)
        ):
            raise StatementError(
                f"account {mask_account(number)} is not a registered account of merchant"
                f" {account_of}",
                filename=filename,
            )
        return mask_account(number), key
    if parsed.format == "camt054" and parsed.account_number is None and account_of is None:
        return None, None  # single notifications prove no coverage; nothing to tie
    tail = visible_digits(parsed.account_number)[1] if parsed.account_number else ""
    candidates = registered_accounts(
        store, open_account, merchant_id=account_of, last4=tail[-4:] if len(tail) >= 4 else None
    )
    chosen = tie_account(
        parsed.account_number,
        parsed.account_holder,
        candidates,
        merchant_id=account_of,
        filename=filename,
    )
    return chosen.account_masked, chosen.account_hmac


def registered_accounts(
    store: Store,
    open_account: AccountOpener | None,
    *,
    merchant_id: str | None = None,
    last4: str | None = None,
) -> list[RegisteredAccount]:
    """Registered settlement accounts (of one merchant, or ending in ``last4``), with the full
    number only when it can be opened."""
    where, params = [], []
    if merchant_id is not None:
        where.append("a.merchant_id = ?")
        params.append(merchant_id)
    if last4 is not None:
        where.append("a.account_masked LIKE ?")
        params.append(f"%{last4}")
    rows = store.query(
        "SELECT a.merchant_id, a.account_masked, a.account_hmac, a.holder_name, a.status,"
        " a.account_sealed, c.change_id FROM settlement_accounts a"
        " LEFT JOIN card_changes c ON c.id = a.card_change_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY a.id",
        params,
    )
    return [
        RegisteredAccount(
            merchant_id=row["merchant_id"],
            account_masked=row["account_masked"],
            account_hmac=row["account_hmac"],
            holder_name=row["holder_name"],
            status=row["status"],
            full_number=_opened(row, open_account),
        )
        for row in rows
    ]


def _opened(row: dict[str, Any], open_account: AccountOpener | None) -> str | None:
    sealed, change_id = row["account_sealed"], row["change_id"]
    if open_account is None or sealed is None or change_id is None:
        return None
    token = bytes(sealed).decode("ascii", "replace")
    try:
        return open_account(change_id, token)
    except (SealedError, UnicodeDecodeError, ValueError):
        return None  # an unopenable token only means fewer digits to compare


def _overlaps(store: Store, parsed: ParsedStatement, key: str | None) -> dict[str, Any]:
    """Earlier imports of the same account whose period overlaps, entries already stored, and
    entries on days an earlier import already covered that it did not have.

    The last (``new_in_overlap``) means the two files disagree about those days (a corrected
    or edited download): both versions' movements are then stored, so the summary and the
    CLI say so for an operator to look at.
    """
    empty = {"overlaps": [], "already_stored": 0, "new_in_overlap": 0}
    if key is None or parsed.period_start is None or parsed.period_end is None:
        return empty
    earlier = store.query(
        "SELECT id, period_start, period_end FROM imports WHERE account_hmac = ?"
        " AND status = 'done' AND period_start <= ? AND period_end >= ? ORDER BY id",
        (key, parsed.period_end.isoformat(), parsed.period_start.isoformat()),
    )
    if not earlier:
        return empty
    stored: set[str] = set()
    ids = [e.entry_id for e in parsed.entries]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = store.query(
            f"SELECT entry_id FROM credits WHERE account_hmac = ? AND entry_id IN ({marks})",
            (key, *chunk),
        )
        stored.update(r["entry_id"] for r in rows)
    covered = [(e["period_start"], e["period_end"]) for e in earlier]
    new_in_overlap = sum(
        e.entry_id not in stored
        and any(lo <= e.booking_date.isoformat() <= hi for lo, hi in covered)
        for e in parsed.entries
    )
    return {
        "overlaps": [int(e["id"]) for e in earlier],
        "already_stored": len(stored),
        "new_in_overlap": new_in_overlap,
    }


def _import_row(
    tx: Tx,
    rejected: dict[str, Any] | None,
    digest: str,
    filename: str,
    parsed: ParsedStatement | ParsedPayoutFile,
    summary: dict[str, Any],
    own: OwnAccount,
    actor: str | None,
) -> int:
    rejects = [{"where": r.line_or_element, "reason": r.reason} for r in parsed.rejects]
    row: dict[str, Any] = {
        "kind": "payout" if isinstance(parsed, ParsedPayoutFile) else "statement",
        "filename": filename,
        "file_sha256": digest,
        "actor": actor,
        "row_count": 0,
        "reject_count": len(rejects),
        "rejects": json.dumps(rejects, ensure_ascii=False),
        "status": "done",
        "file_format": parsed.format,
        "error": None,
    }
    if isinstance(parsed, ParsedPayoutFile):
        row["row_count"] = len(parsed.records)
    else:
        masked, key = own
        row["row_count"] = len(parsed.entries)
        row["account_masked"] = masked
        row["account_hmac"] = key
        row["balance_ok"] = 0 if parsed.balance_mismatch else 1
        if parsed.format in _COVERAGE_FORMATS and key is not None:
            row["period_start"] = parsed.period_start.isoformat() if parsed.period_start else None
            row["period_end"] = parsed.period_end.isoformat() if parsed.period_end else None
    if rejected is None:
        import_id: int = tx.insert("imports", row)
        return import_id
    sets = ", ".join(f"{name} = ?" for name in row)
    tx.execute(f"UPDATE imports SET {sets} WHERE id = ?", [*row.values(), rejected["id"]])
    return int(rejected["id"])


_CREDIT_COLUMNS = (
    "import_id",
    "account_hmac",
    "account_masked",
    "booked_at",
    "value_date",
    "amount",
    "currency",
    "kind",
    "reference",
    "counterparty",
    "line_no",
    "raw",
    "entry_id",
    "status",
    "reversal",
    "remittance",
    "payer_name",
    "payer_account",
)
_PAYOUT_COLUMNS = (
    "import_id",
    "merchant_id",
    "payout_date",
    "gross_amount",
    "fee_amount",
    "net_amount",
    "currency",
    "account_masked",
    "status",
    "reason",
    "reference",
    "batch_refs",
    "line_no",
)


def _store_entries(
    tx: Tx, import_id: int, parsed: ParsedStatement, account: tuple[str | None, str | None]
) -> None:
    masked, key = account
    rows = [
        (
            import_id,
            key,
            masked,
            entry.booking_date.isoformat(),
            entry.value_date.isoformat() if entry.value_date else None,
            entry.amount,
            entry.currency,
            entry.direction,
            entry.reference,
            entry.counterparty,
            entry.line,
            json.dumps(
                {"end_to_end_id": entry.end_to_end_id, "element": entry.element},
                ensure_ascii=False,
            ),
            entry.entry_id,
            entry.status,
            int(entry.reversal),
            entry.remittance,
            entry.payer_name,
            entry.payer_account,
        )
        for entry in parsed.entries
    ]
    # an entry already stored from an overlapping statement is skipped, not an error
    tx.insert_many("credits", _CREDIT_COLUMNS, rows, ignore_conflict=True)


def _store_payouts(tx: Tx, import_id: int, parsed: ParsedPayoutFile) -> None:
    rows = [
        (
            import_id,
            record.merchant_id,
            record.settlement_date.isoformat(),
            record.gross,
            record.fees,
            record.net,
            record.currency,
            record.target_account_masked,
            record.status,
            record.reason,
            record.reference,
            json.dumps(list(record.batch_refs), ensure_ascii=False),
            record.line,
        )
        for record in parsed.records
    ]
    tx.insert_many("payout_records", _PAYOUT_COLUMNS, rows)


def list_imports(store: Store, *, limit: int = 100) -> list[dict[str, Any]]:
    """The latest imports, newest first, with status, counts and any error."""
    return store.query(
        "SELECT id, kind, filename, file_format, account_masked, imported_at, status,"
        " row_count, reject_count, error FROM imports ORDER BY id DESC LIMIT ?",
        (limit,),
    )
