"""Stable ids for statement entries, for de-duplication across overlapping imports.

An entry's id is a hash of what the bank said about it (dates, amount, direction,
status, references, texts), not of where it sits in the file, so the same movement in
two overlapping statements gets the same id. Identical movements in one file (two equal
card payouts on one day without references) are told apart by an occurrence counter.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from settleguard.collector.statements.model import StatementEntry


def _fingerprint(entry: StatementEntry, account_key: str) -> str:
    parts = (
        account_key,
        entry.booking_date.isoformat(),
        entry.value_date.isoformat() if entry.value_date else "",
        str(entry.amount),
        entry.currency,
        entry.direction,
        entry.status,
        "R" if entry.reversal else "",
        entry.reference or "",
        entry.end_to_end_id or "",
        entry.remittance or "",
        entry.counterparty or "",
    )
    return "\x1f".join(parts)


def assign_entry_ids(
    entries: Iterable[StatementEntry], account_key: str
) -> tuple[StatementEntry, ...]:
    """Return the entries with ``entry_id`` set, unique within the file.

    :param entries: parsed entries (their ``entry_id`` is ignored)
    :param account_key: the masked account (never the full number)
    """
    seen: Counter[str] = Counter()
    out = []
    for entry in entries:
        fingerprint = _fingerprint(entry, account_key)
        seen[fingerprint] += 1
        digest = hashlib.sha256(f"{fingerprint}\x1e{seen[fingerprint]}".encode()).hexdigest()
        out.append(replace(entry, entry_id=digest[:32]))
    return tuple(out)
