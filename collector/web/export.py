"""CSV export of every dashboard table, streamed in id order, secrets left out.

Columns holding secrets or key material (sealed account numbers, HMACs, password hashes,
broker passwords, raw envelopes, public keys) are never exported. Cells that a spreadsheet
would run as a formula are prefixed with ``'`` (:func:`escape_formula`).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator

from settleguard.collector.store import Store

#: table name in the URL -> (SQL table, key column, exported columns)
TABLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "merchants": (
        "merchants",
        "merchant_id",
        (
            "merchant_id",
            "name",
            "settlement_cycle",
            "cutoff_local",
            "timezone",
            "locale",
            "created_at",
        ),
    ),
    "batches": (
        "batch_summaries",
        "id",
        (
            "id",
            "agent_id",
            "terminal_id",
            "merchant_id",
            "batch_no",
            "closed_at",
            "closed_at_local",
            "currency",
            "total_amount",
            "receipt_start",
            "receipt_end",
            "host_reconciled",
            "source",
        ),
    ),
    "credits": (
        "credits",
        "id",
        (
            "id",
            "import_id",
            "account_masked",
            "booked_at",
            "value_date",
            "amount",
            "currency",
            "kind",
            "status",
            "reference",
            "counterparty",
            "line_no",
        ),
    ),
    "payouts": (
        "payout_records",
        "id",
        (
            "id",
            "import_id",
            "merchant_id",
            "terminal_id",
            "batch_no",
            "payout_date",
            "gross_amount",
            "fee_amount",
            "net_amount",
            "currency",
            "account_masked",
            "status",
            "reason",
            "reference",
        ),
    ),
    "matches": (
        "matches",
        "id",
        (
            "id",
            "merchant_id",
            "rule",
            "credit_ids",
            "batch_ids",
            "expected_amount",
            "credited_amount",
            "residual",
            "explanation",
            "created_at",
        ),
    ),
    "gaps": (
        "gaps",
        "id",
        (
            "id",
            "merchant_id",
            "category",
            "amount",
            "currency",
            "due_at",
            "since",
            "status",
            "reason",
            "detected_at",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_at",
            "resolution",
            "note",
            "evidence",
        ),
    ),
    "imports": (
        "imports",
        "id",
        (
            "id",
            "kind",
            "file_format",
            "filename",
            "file_sha256",
            "imported_at",
            "actor",
            "account_masked",
            "period_start",
            "period_end",
            "balance_ok",
            "row_count",
            "reject_count",
            "rejects",
            "status",
            "error",
        ),
    ),
    "agents": (
        "agents",
        "agent_id",
        (
            "agent_id",
            "merchant_id",
            "status",
            "key_id",
            "enrolled_at",
            "approved_at",
            "revoked_at",
            "last_seen",
            "last_seq",
            "outbox_depth",
        ),
    ),
    "alerts": (
        "alerts",
        "id",
        (
            "id",
            "gap_id",
            "merchant_id",
            "locale",
            "state",
            "attempts",
            "created_at",
            "sent_at",
            "delivered_at",
            "last_error",
            "escalated_at",
            "escalation_reason",
            "text",
        ),
    ),
    "card_changes": (
        "card_changes",
        "id",
        (
            "id",
            "agent_id",
            "merchant_id",
            "change_id",
            "old_account_masked",
            "new_account_masked",
            "holder_name",
            "bank",
            "requested_at",
            "effective_at",
            "review_status",
        ),
    ),
    "accounts": (
        "settlement_accounts",
        "id",
        (
            "id",
            "merchant_id",
            "account_masked",
            "holder_name",
            "status",
            "requested_at",
            "effective_at",
            "retired_at",
        ),
    ),
    "replacements": (
        "terminal_replacements",
        "id",
        (
            "id",
            "agent_id",
            "merchant_id",
            "old_terminal_id",
            "new_terminal_id",
            "replaced_at",
            "final_batch_no",
            "final_batch_closed_at",
        ),
    ),
    "rejected_messages": (
        "rejected_messages",
        "id",
        ("id", "received_at", "source", "claimed_agent_id", "reason", "detail", "payload_size"),
    ),
    "conflicts": (
        "conflicts",
        "id",
        (
            "id",
            "kind",
            "agent_id",
            "seq",
            "natural_key",
            "existing_record_id",
            "detected_at",
            "resolved_at",
            "note",
        ),
    ),
    "audit": ("audit_log", "id", ("id", "at", "actor", "action", "target", "detail")),
    "users": ("users", "id", ("id", "username", "role", "disabled", "created_at")),
}
#: tables only an admin may export
ADMIN_ONLY = frozenset({"users"})
CHUNK = 5000


_FORMULA_START = frozenset("=+-@")
_CONTROL_START = frozenset("\t\r\n")


def escape_formula(value: object) -> object:
    """``value`` with ``'`` in front when a spreadsheet would read it as a formula.

    Spreadsheets skip leading spaces and read full-width ``＝＋－＠`` as ``=+-@``, so the first
    character that is not whitespace or a control character is compared after Unicode
    compatibility normalisation; a cell that starts with a tab, CR or LF is escaped as well.
    Anything but text is returned unchanged.

    :param value: one cell as the store returned it
    """
    if not isinstance(value, str) or not value:
        return value
    if value[0] in _CONTROL_START:
        return "'" + value
    for char in value:
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            continue
        if unicodedata.normalize("NFKC", char)[:1] in _FORMULA_START:
            return "'" + value
        break
    return value


def export_csv(store: Store, name: str) -> Iterator[str]:
    """The CSV text of table ``name`` (a key of :data:`TABLES`), chunk by chunk.

    :raises KeyError: unknown table name
    """
    table, key, columns = TABLES[name]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    yield buffer.getvalue()
    last: object = None
    select = f"SELECT {', '.join(columns)} FROM {table}"  # noqa: S608 - names are ours
    while True:
        where = f" WHERE {key} > ?" if last is not None else ""
        rows = store.query(
            f"{select}{where} ORDER BY {key} LIMIT ?",
            [*([last] if last is not None else []), CHUNK],
        )
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow([escape_formula(row[c]) for c in columns])
        yield buffer.getvalue()
        last = rows[-1][key]
