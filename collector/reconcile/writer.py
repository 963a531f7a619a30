"""Saving reconciliation results: matches and gaps, idempotently.

Theory of operation (docs/architecture.md §5): writing is split in two so that a worker process
holds the database's write lock only for database work.

1. :func:`prepare` turns the engine's results into row tuples -- match keys (a digest of the
   match's content), id lists as JSON text, gap fields -- in plain Python, outside any
   transaction;
2. :func:`write` diffs them against what the merchants have stored and changes only the
   difference, inside the caller's write transaction: a match is keyed by its digest, so an
   unchanged match keeps its row and a changed one is replaced; a gap is keyed by the engine's
   stable ``Gap.key`` and keeps its id, status and acknowledgement across runs. A gap the engine
   no longer reports is resolved: ``resolution = 'matched'`` when its batches are now matched
   (the money showed up), else ``'superseded'`` (re-classified, e.g. ``NOT_DUE_YET`` →
   ``MISSING``). An automatically resolved gap that comes back is reopened; one an operator
   resolved stays resolved.

Running twice changes nothing; the rows depend only on the results, never on the order in
which merchants or chunks are written.
"""

# SQL here is built only from our own table/column names and "?" lists; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _encode_string
from typing import Any

from settleguard.collector.reconcile import Gap, Match, MerchantResult
from settleguard.collector.store import Tx


def in_list(ids: Sequence[Any]) -> str:
    """``?,?,…`` for an ``IN (…)`` list of ``ids``."""
    return ",".join("?" for _ in ids)


def json_list(items: Sequence[str]) -> str:
    """``json.dumps(list(items))`` for strings, without the encoder's per-call set-up.

    Same text byte for byte (ASCII escapes, ``", "`` between items): two id lists per match
    were a fifth of the write phase.
    """
    if len(items) == 1:  # most matches: one batch, one credit
        return "[" + _encode_string(items[0]) + "]"
    return "[" + ", ".join(map(_encode_string, items)) + "]"


def match_key(mid: str, match: Match, batch_json: str, credit_json: str) -> str:
    """Identity of a match across runs: its merchant, then a digest of its content.

    The id lists enter as their stored JSON text; the other fields are numbers or our own
    identifiers, joined with a unit separator that none of them contains. The merchant prefix
    keeps the unique index's inserts in merchant order (chunks run in merchant order) instead
    of at random places: a first full run's write phase took half the time (100k batches).
    Keys written before this prefix simply no longer match, so the first run after an upgrade
    replaces each merchant's matches once.
    """
    # one f-string: the same text as joining the str() of each field with "\x1f", built faster
    text = (
        f"{mid}\x1f{match.rule}\x1f{batch_json}\x1f{credit_json}\x1f{match.expected}"
        f"\x1f{match.actual}\x1f{match.residual}\x1f{match.covered}\x1f{match.account_key or ''}"
    )
    return f"{mid}:{_sha256(text.encode()).hexdigest()[:32]}"


_sha256 = hashlib.sha256


@lru_cache(maxsize=256)
def _explanation(rule: str, batches: int, credits: int) -> str:
    return f"{rule}: {batches} batch(es), {credits} credit(s)"


_MATCH_COLUMNS = (
    "merchant_id",
    "rule",
    "credit_ids",
    "batch_ids",
    "expected_amount",
    "credited_amount",
    "residual",
    "explanation",
    "match_key",
    "covered",
    "account_hmac",
)

_GAP_COLUMNS = (
    "dedupe_key",
    "merchant_id",
    "category",
    "amount",
    "currency",
    "due_at",
    "batch_ids",
    "status",
    "since",
    "credit_ids",
    "evidence",
    "reason",
    "explanation",
    "updated_at",
)

_GAP_FIELD_NAMES = (
    "merchant_id",
    "category",
    "amount",
    "currency",
    "due_at",
    "since",
    "credit_ids",
    "evidence",
    "reason",
    "explanation",
)


def _gap_fields(gap: Gap, currency: str | None) -> dict[str, Any]:
    return {
        "merchant_id": gap.merchant_id,
        "category": gap.category,
        "amount": gap.amount_at_risk,
        "currency": currency,
        "due_at": gap.due_date.isoformat() if gap.due_date else None,
        "batch_ids": json_list(gap.batch_keys),
        "since": gap.since.isoformat(),
        "credit_ids": json_list(gap.credit_ids),
        "evidence": json.dumps(gap.evidence, sort_keys=True, default=str, ensure_ascii=False),
        "reason": gap.reason,
        "explanation": gap.reason or gap.category,
    }


@dataclass(slots=True)
class Prepared:
    """Rows to store for some merchants: matches and gaps by key, and the matched batches."""

    merchant_ids: list[str]
    matches: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    gaps: dict[str, dict[str, Any]] = field(default_factory=dict)
    matched_batches: set[str] = field(default_factory=set)


def prepare(results: Sequence[MerchantResult]) -> Prepared:
    """The rows ``results`` stand for (pure computation: no transaction needed)."""
    out = Prepared([r.merchant_id for r in results])
    matches, gaps, matched_batches = out.matches, out.gaps, out.matched_batches
    for result in results:
        mid = result.merchant_id
        for match in result.matches:
            rule, batch_keys, credit_ids, expected, actual, residual, covered, account = match
            batch_json = json_list(batch_keys)
            credit_json = json_list(credit_ids)
            key = match_key(mid, match, batch_json, credit_json)
            matches[key] = (
                mid,
                rule,
                credit_json,
                batch_json,
                expected,
                actual,
                residual,
                _explanation(rule, len(batch_keys), len(credit_ids)),
                key,
                covered,
                account,
            )
            matched_batches.update(batch_keys)
        if result.gaps:
            currency = {e.batch_key: e.currency for e in result.expected}
            for gap in result.gaps:
                cur = currency.get(gap.batch_keys[0]) if gap.batch_keys else None
                gaps[gap.key] = _gap_fields(gap, cur)
    return out


@dataclass(slots=True)
class WriteCounts:
    """What :func:`write` did."""

    matches: int = 0
    gaps_open: int = 0
    gaps_new: int = 0
    gaps_resolved: int = 0


def write(tx: Tx, prepared: Prepared, stamp: str) -> WriteCounts:
    """Store ``prepared`` for its merchants, replacing what they had (see the module doc).

    :param stamp: the run's time, ``YYYY-MM-DDTHH:MM:SSZ`` (``updated_at``, ``resolved_at``)
    """
    counts = WriteCounts()
    ids = prepared.merchant_ids
    if not ids:
        return counts
    counts.matches = _write_matches(tx, ids, prepared.matches)
    _write_gaps(tx, prepared, stamp, counts)
    return counts


def _delete_ids(tx: Tx, table: str, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        tx.execute(f"DELETE FROM {table} WHERE id IN ({in_list(part)})", part)


def _write_matches(tx: Tx, ids: Sequence[str], wanted: dict[str, tuple[Any, ...]]) -> int:
    existing = {
        key: int(row_id)
        for row_id, key in tx.query_rows(
            f"SELECT id, match_key FROM matches WHERE merchant_id IN ({in_list(ids)})", ids
        )
    }
    _delete_ids(tx, "matches", [i for k, i in existing.items() if k not in wanted])
    tx.insert_many("matches", _MATCH_COLUMNS, [r for k, r in wanted.items() if k not in existing])
    return len(wanted)


def _write_gaps(tx: Tx, prepared: Prepared, stamp: str, counts: WriteCounts) -> None:
    ids, wanted = prepared.merchant_ids, prepared.gaps
    cols = ", ".join(["id", "dedupe_key", "status", "resolution", "batch_ids", *_GAP_FIELD_NAMES])
    existing = {
        r["dedupe_key"]: r
        for r in tx.query(f"SELECT {cols} FROM gaps WHERE merchant_id IN ({in_list(ids)})", ids)
    }
    fresh = []
    for key, fields in wanted.items():
        row = existing.get(key)
        if row is None:
            fresh.append(
                (
                    key,
                    *(fields[c] for c in _GAP_COLUMNS[1:7]),
                    "open",
                    *(fields[c] for c in _GAP_COLUMNS[8:13]),
                    stamp,
                )
            )
            continue
        changed = {c: v for c, v in fields.items() if row[c] != v}
        reopen = row["status"] == "resolved" and row["resolution"] in ("matched", "superseded")
        if reopen:
            changed.update(status="open", resolution=None, resolved_at=None)
        if changed:
            changed["updated_at"] = stamp
            sets = ", ".join(f"{c} = ?" for c in changed)
            tx.execute(f"UPDATE gaps SET {sets} WHERE id = ?", [*changed.values(), row["id"]])
    tx.insert_many("gaps", _GAP_COLUMNS, fresh)
    counts.gaps_new += len(fresh)
    matched_batches = prepared.matched_batches
    for key, row in existing.items():
        if key in wanted or row["status"] == "resolved":
            continue
        batches = json.loads(row["batch_ids"] or "[]")
        how = "matched" if batches and all(b in matched_batches for b in batches) else "superseded"
        tx.execute(
            "UPDATE gaps SET status = 'resolved', resolution = ?, resolved_at = ?, updated_at = ?"
            " WHERE id = ?",
            (how, stamp, stamp, row["id"]),
        )
        counts.gaps_resolved += 1
    counts.gaps_open += len(wanted)
