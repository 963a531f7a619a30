"""Idempotent writes of verified records (DESIGN.md §5 "Ingest workers", issue 4).

Theory of operation: an accepted envelope is written in the caller's transaction in two steps.

1. ``received_records`` keeps the verbatim signed bytes under the unique key ``(agent_id, seq)``.
   If that key exists with the same bytes (Ed25519 is deterministic, so a resend is
   byte-identical) the message is a **duplicate**: nothing changes. Different bytes under a used
   ``seq`` is a **conflict**: the new envelope is kept in ``conflicts`` and never overwrites.
2. The typed row. A batch summary is also unique by its natural key
   ``(terminal_id, batch_no, closed_at)``: the same batch under a new ``seq`` (an agent that
   re-sealed after losing its outbox) is a duplicate when its content matches and a conflict
   when it does not.

Because all of this happens in one transaction that commits before any ack is published, a crash
between commit and ack makes the agent resend, and the resend lands in case 1: a no-op.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from collector.keys import CollectorKeys
from collector.store.base import Tx
from protocol.envelope import Envelope
from protocol.records import (
    BatchSummary,
    CardChange,
    Heartbeat,
    Record,
    TerminalReplaced,
    TurnoverReading,
)
from protocol.sealed import SealedError

log = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, CONFLICT = "accepted", "duplicate", "conflict"


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _body_json(envelope: Envelope) -> str:
    # Deterministic (sorted keys, no spaces) and C-fast. The signed bytes are the RFC 8785
    # form; this copy is for queries and content comparison, where determinism is enough.
    return json.dumps(envelope.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=dict)  # fmt: skip


def write_envelope(
    tx: Tx,
    envelope: Envelope,
    payload: bytes,
    source: str,
    keys: CollectorKeys | None = None,
    record: Record | None = None,
) -> tuple[str, str | None]:
    """Write one verified envelope; return ``(status, reason)`` for its ack.

    :param payload: the exact bytes received (kept verbatim)
    :param source: ``mqtt`` or ``bundle:<file name>``
    :param keys: the collector's keys, to HMAC a card change's new account in memory
    :param record: ``envelope.record()`` if the caller already built it
    """
    digest = sha256_hex(payload)
    record_id = tx.insert(
        "received_records",
        {
            "agent_id": envelope.agent_id,
            "seq": envelope.seq,
            "key_id": envelope.key_id,
            "record_type": envelope.record_type,
            "created_at": envelope.created_at,
            "source": source,
            "payload_sha256": digest,
            "envelope": payload,
        },
        ignore_conflict=True,
    )
    if record_id is None:
        return _seq_taken(tx, envelope, payload, digest)
    _touch_agent(tx, envelope)
    record = record if record is not None else envelope.record()
    if isinstance(record, BatchSummary):
        return _write_batch(tx, record_id, envelope, record, payload, digest)
    if isinstance(record, TurnoverReading):
        _write_turnover(tx, record_id, envelope, record)
    elif isinstance(record, CardChange):
        _write_card_change(tx, record_id, envelope, record, keys)
    elif isinstance(record, TerminalReplaced):
        _write_replacement(tx, record_id, envelope, record)
    elif isinstance(record, Heartbeat):
        tx.insert(
            "heartbeats",
            {
                "received_record_id": record_id,
                "agent_id": envelope.agent_id,
                "sent_at": record.agent_time,
                "body": _body_json(envelope),
            },
        )
        tx.execute(
            "UPDATE agents SET outbox_depth = ? WHERE agent_id = ?",
            (record.outbox_pending, envelope.agent_id),
        )
    return ACCEPTED, None


def _seq_taken(tx: Tx, envelope: Envelope, payload: bytes, digest: str) -> tuple[str, str | None]:
    existing = tx.query_one(
        "SELECT id, payload_sha256 FROM received_records WHERE agent_id = ? AND seq = ?",
        (envelope.agent_id, envelope.seq),
    )
    assert existing is not None  # the insert just clashed on this key
    if existing["payload_sha256"] == digest:
        return DUPLICATE, None
    _conflict(tx, "seq", envelope, payload, digest, existing["id"], None)
    return CONFLICT, f"seq {envelope.seq} was already used for different content"


def _conflict(
    tx: Tx,
    kind: str,
    envelope: Envelope,
    payload: bytes,
    digest: str,
    existing_id: int,
    natural_key: str | None,
) -> None:
    tx.insert(
        "conflicts",
        {
            "kind": kind,
            "agent_id": envelope.agent_id,
            "seq": envelope.seq,
            "natural_key": natural_key,
            "existing_record_id": existing_id,
            "payload_sha256": digest,
            "envelope": payload,
        },
        ignore_conflict=True,
    )
    log.warning(
        "CONFLICT %s: agent %s seq %s (%s) differs from stored record %s",
        kind,
        envelope.agent_id,
        envelope.seq,
        natural_key or "-",
        existing_id,
    )


def _touch_agent(tx: Tx, envelope: Envelope) -> None:
    tx.execute(
        "UPDATE agents SET last_seen = ?, last_seq = CASE WHEN last_seq IS NULL OR last_seq < ?"
        " THEN ? ELSE last_seq END WHERE agent_id = ?",
        (envelope.created_at, envelope.seq, envelope.seq, envelope.agent_id),
    )


def _merchant_of(tx: Tx, envelope: Envelope, merchant_id: str | None) -> str | None:
    if merchant_id:
        return merchant_id
    row = tx.query_one("SELECT merchant_id FROM agents WHERE agent_id = ?", (envelope.agent_id,))
    return row["merchant_id"] if row else None


def _terminal(tx: Tx, terminal_id: str | None, merchant_id: str | None, agent_id: str) -> None:
    if terminal_id:
        tx.insert(
            "terminals",
            {"terminal_id": terminal_id, "merchant_id": merchant_id, "agent_id": agent_id},
            ignore_conflict=True,
            returning="terminal_id",
        )


def _write_batch(
    tx: Tx, record_id: int, envelope: Envelope, batch: BatchSummary, payload: bytes, digest: str
) -> tuple[str, str | None]:
    body = _body_json(envelope)
    content = sha256_hex(body.encode())
    merchant_id = _merchant_of(tx, envelope, batch.merchant_id)
    batch_id = tx.insert(
        "batch_summaries",
        {
            "received_record_id": record_id,
            "agent_id": envelope.agent_id,
            "terminal_id": batch.terminal_id,
            "merchant_id": merchant_id,
            "batch_no": batch.batch_no,
            "closed_at": batch.closed_at,
            "closed_at_local": batch.terminal_local_time,
            "currency": batch.currency,
            "total_amount": batch.net_amount,
            "receipt_start": batch.receipt_start,
            "receipt_end": batch.receipt_end,
            "host_reconciled": None
            if batch.host_reconciled is None
            else int(batch.host_reconciled),
            "content_sha256": content,
            "body": body,
        },
        ignore_conflict=True,
    )
    if batch_id is None:
        existing = tx.query_one(
            "SELECT id, received_record_id, content_sha256 FROM batch_summaries"
            " WHERE terminal_id = ? AND batch_no = ? AND closed_at = ?",
            batch.natural_key(),
        )
        assert existing is not None
        if existing["content_sha256"] == content:
            return DUPLICATE, None
        key = json.dumps(list(batch.natural_key()))
        _conflict(tx, "natural_key", envelope, payload, digest, existing["received_record_id"], key)
        return CONFLICT, f"batch {batch.batch_no} of {batch.terminal_id} already stored differently"
    for bucket in batch.buckets:
        tx.execute(
            "INSERT INTO batch_buckets (batch_id, name, sale_count, sale_amount, refund_count,"
            " refund_amount, void_count, void_amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (batch_id, bucket.name, bucket.sale_count, bucket.sale_amount, bucket.refund_count,
             bucket.refund_amount, bucket.void_count, bucket.void_amount),
        )  # fmt: skip
    _terminal(tx, batch.terminal_id, merchant_id, envelope.agent_id)
    return ACCEPTED, None


def _write_turnover(tx: Tx, record_id: int, envelope: Envelope, reading: TurnoverReading) -> None:
    merchant_id = _merchant_of(tx, envelope, reading.merchant_id)
    tx.insert(
        "turnover_readings",
        {
            "received_record_id": record_id,
            "agent_id": envelope.agent_id,
            "terminal_id": reading.terminal_id,
            "merchant_id": merchant_id,
            "read_at": reading.read_at,
            "batch_no": reading.batch_no,
            "body": _body_json(envelope),
        },
    )
    _terminal(tx, reading.terminal_id, merchant_id, envelope.agent_id)


def _write_card_change(
    tx: Tx, record_id: int, envelope: Envelope, change: CardChange, keys: CollectorKeys | None
) -> None:
    merchant_id = _merchant_of(tx, envelope, change.merchant_id)
    account_hmac = None
    if keys is not None:
        try:  # the full number exists only inside this block, never in a row or a log line
            account_hmac = keys.account_hmac(
                keys.open_card_change(change.change_id, change.new_account_sealed)
            )
        except (SealedError, UnicodeDecodeError):
            log.warning("card change %s: sealed account not openable", change.change_id)
    row: dict[str, Any] = {
        "received_record_id": record_id,
        "agent_id": envelope.agent_id,
        "merchant_id": merchant_id,
        "change_id": change.change_id,
        "old_account_masked": change.old_account_masked,
        "new_account_masked": change.new_account_masked,
        "new_account_hmac": account_hmac,
        "new_account_sealed": change.new_account_sealed,
        "holder_name": change.holder_name,
        "bank": change.bank,
        "requested_at": change.requested_at,
        "effective_at": change.effective_at,
        "review_status": change.review_status,
        "acquirer_ref": change.acquirer_ref,
        "body": _body_json(envelope),
    }
    change_row_id = tx.insert("card_changes", row)
    if merchant_id is None or account_hmac is None:
        return
    tx.insert("merchants", {"merchant_id": merchant_id}, ignore_conflict=True,
              returning="merchant_id")  # fmt: skip
    status = change.review_status or "requested"
    account_id = tx.insert(
        "settlement_accounts",
        {
            "merchant_id": merchant_id,
            "account_masked": change.new_account_masked,
            "account_hmac": account_hmac,
            "account_sealed": change.new_account_sealed.encode("ascii"),
            "holder_name": change.holder_name,
            "status": status,
            "requested_at": change.requested_at,
            "effective_at": change.effective_at,
            "card_change_id": change_row_id,
        },
    )
    tx.insert(
        "settlement_account_history",
        {"account_id": account_id, "status": status, "actor": envelope.agent_id,
         "note": f"card change {change.change_id}"},
    )  # fmt: skip


def _write_replacement(
    tx: Tx, record_id: int, envelope: Envelope, replaced: TerminalReplaced
) -> None:
    merchant_id = _merchant_of(tx, envelope, replaced.merchant_id)
    tx.insert(
        "terminal_replacements",
        {
            "received_record_id": record_id,
            "agent_id": envelope.agent_id,
            "merchant_id": merchant_id,
            "old_terminal_id": replaced.old_terminal_id,
            "new_terminal_id": replaced.new_terminal_id,
            "replaced_at": replaced.replaced_at,
            "final_batch_no": replaced.final_batch_no,
            "final_batch_closed_at": replaced.final_batch_closed_at,
            "body": _body_json(envelope),
        },
    )
    _terminal(tx, replaced.old_terminal_id, merchant_id, envelope.agent_id)
    _terminal(tx, replaced.new_terminal_id, merchant_id, envelope.agent_id)
    tx.execute(
        "UPDATE terminals SET status = 'replaced', replaced_by = ? WHERE terminal_id = ?",
        (replaced.new_terminal_id, replaced.old_terminal_id),
    )
