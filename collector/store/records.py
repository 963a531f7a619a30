"""Idempotent writes of verified records (docs/architecture.md §5 "Ingest workers").

Theory of operation: an accepted envelope is written in the caller's transaction in two steps.

1. ``received_records`` keeps the verbatim signed bytes under the unique key ``(agent_id, seq)``.
   If that key exists with the same bytes (Ed25519 is deterministic, so a resend is
   byte-identical) the message is a **duplicate**: nothing changes. Different bytes under a used
   ``seq`` is a **conflict**: the new envelope is kept in ``conflicts`` and never overwrites.
2. The typed row. A batch summary is also unique by its natural key
   ``(merchant_id, terminal_id, batch_no, closed_at)``: the same batch under a new ``seq`` (an
   agent that re-sealed after losing its outbox) is a duplicate when its content matches and a
   conflict when it does not.

Every row belongs to the merchant the agent was enrolled for (``agents.merchant_id``), never
to a merchant a body names: :mod:`collector.ingest.verify` refuses a body that names another one,
and the keys above, terminals and terminal replacements are all scoped to that merchant, so
an agent cannot write, pre-empt or retire another merchant's batches and terminals. An agent
only *reports* a card change: its settlement account starts ``requested`` whatever status the
body claims (the claim is flagged in ``ingest_flags``); operators and acquirer files decide
the rest (:mod:`collector.merchants`). A card change whose masked number does not show the
sealed number's last digits is refused (:data:`REJECTED`) before anything is written.

Because all of this happens in one transaction that commits before any ack is published, a crash
between commit and ack makes the agent resend, and the resend lands in case 1: a no-op.

Cost per record: the statements are fixed strings (sqlite3 and psycopg
reuse their prepared form), and a :class:`WriteBatch` shared by one transaction's writes moves
the per-agent ``last_seen``/``last_seq`` update to one statement per agent at the end and
inserts each terminal once. A body (stored for heartbeats and the rarer records, hashed for a
batch summary's ``content_sha256``) is the verified canonical bytes the parser kept, or cut out
of the envelope, instead of being encoded again. A batch summary's body is not stored twice:
``received_records.envelope`` holds it verbatim (schema version 6 dropped the copy).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from settleguard.collector.account_numbers import account_key_text
from settleguard.collector.enrollment.keys import CollectorKeys
from settleguard.collector.store.base import Tx
from settleguard.protocol.buckets import CHINA_BUCKETS, totals_by_china_bucket
from settleguard.protocol.envelope import Envelope
from settleguard.protocol.records import (
    BatchSummary,
    CardChange,
    Heartbeat,
    Record,
    TerminalReplaced,
    TurnoverReading,
)
from settleguard.protocol.sealed import SealedError

log = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, CONFLICT, REJECTED = "accepted", "duplicate", "conflict", "rejected"

#: Why the store refuses a record (the ``reason`` of a :data:`REJECTED` write) and what
#: operators read about it in ``rejected_messages.detail``.
STORE_REFUSALS = {
    "account_mask_mismatch": "card change: new_account_masked does not show the last digits"
    " of the sealed account number",
}


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _body_bytes(envelope: Envelope, payload: bytes | None = None) -> bytes:
    """The body as compact JSON with sorted keys (UTF-8), for queries and content comparison.

    When ``payload`` is the verified envelope, the body is cut out of its signed bytes: those
    are RFC 8785 canonical (checked by the parser), the envelope's keys sort as ``agent_id``,
    ``body``, ``created_at``, ``key_id``, ``seq``, ``type``, ``v``, and every field but the body
    is a plain ASCII string or integer, so the bytes between the known prefix and suffix are
    the canonical body. That equals the :func:`json.dumps` form below
    whenever the body's keys are in the BMP (see :func:`protocol.canonical.is_canonical`),
    which every record schema's are. If prefix or suffix do not match literally, the body is
    encoded again.
    """
    if payload is not None:
        signed = payload[payload.find(b"\n") + 1 :]
        prefix = b'{"agent_id":"%s","body":' % envelope.agent_id.encode()
        suffix = b',"created_at":"%s","key_id":"%s","seq":%d,"type":"%s","v":%d}' % (
            envelope.created_at.encode(),
            envelope.key_id.encode(),
            envelope.seq,
            envelope.record_type.encode(),
            envelope.version,
        )
        if signed.startswith(prefix) and signed.endswith(suffix):
            return signed[len(prefix) : len(signed) - len(suffix)]
    return json.dumps(
        envelope.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=dict
    ).encode()


def _body_json(envelope: Envelope, payload: bytes | None = None) -> str:
    """:func:`_body_bytes` as text (the ``body`` column of heartbeats and the rarer records)."""
    return _body_bytes(envelope, payload).decode()


@dataclass
class WriteBatch:
    """What the writes of one transaction share; call :meth:`flush` before it commits.

    :ivar agents: per agent, the ``created_at`` of its last accepted envelope and its highest seq
    :ivar terminals: ``(merchant_id, terminal_id)`` already inserted (or found) in this
        transaction
    :ivar merchants: per agent, the merchant it was enrolled for (read once per transaction)
    """

    agents: dict[str, tuple[str, int]] = field(default_factory=dict)
    terminals: set[tuple[str | None, str]] = field(default_factory=set)
    merchants: dict[str, str | None] = field(default_factory=dict)

    def touch(self, envelope: Envelope) -> None:
        """Remember that ``envelope``'s agent was seen (written by :meth:`flush`)."""
        previous = self.agents.get(envelope.agent_id)
        top = envelope.seq if previous is None else max(previous[1], envelope.seq)
        self.agents[envelope.agent_id] = (envelope.created_at, top)

    def flush(self, tx: Tx) -> None:
        """Write the agents' ``last_seen``/``last_seq`` (one statement per agent)."""
        # In agent_id order: two workers committing at once then lock the rows in the same
        # order and cannot deadlock (PostgreSQL found such deadlocks in the scale run).
        for agent_id, (created_at, top) in sorted(self.agents.items()):
            tx.execute(_TOUCH_AGENT_SQL, (created_at, top, top, agent_id))
        self.agents.clear()


_TOUCH_AGENT_SQL = (
    "UPDATE agents SET last_seen = ?, last_seq = CASE WHEN last_seq IS NULL OR last_seq < ?"
    " THEN ? ELSE last_seq END WHERE agent_id = ?"
)
_INSERT_RECEIVED_SQL = (
    "INSERT INTO received_records (agent_id, seq, key_id, record_type, created_at, source,"
    " payload_sha256, envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
    " RETURNING id"
)
_INSERT_BATCH_SQL = (
    "INSERT INTO batch_summaries (received_record_id, agent_id, terminal_id, merchant_id,"
    " batch_no, closed_at, closed_at_local, currency, total_amount, receipt_start, receipt_end,"
    " host_reconciled, content_sha256, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING RETURNING id"
)
_INSERT_BUCKET_SQL = (
    "INSERT INTO batch_buckets (batch_id, name, sale_count, sale_amount, refund_count,"
    " refund_amount, void_count, void_amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TERMINAL_SQL = (
    "INSERT INTO terminals (terminal_id, merchant_id, agent_id) VALUES (?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)


def _returned_id(rows: list[dict[str, Any]]) -> Any:
    return rows[0]["id"] if rows else None


def write_envelope(
    tx: Tx,
    envelope: Envelope,
    payload: bytes,
    source: str,
    keys: CollectorKeys | None = None,
    record: Record | None = None,
    batch: WriteBatch | None = None,
) -> tuple[str, str | None]:
    """Write one verified envelope; return ``(status, reason)`` for its ack.

    :param payload: the exact bytes received (kept verbatim)
    :param source: ``mqtt`` or ``bundle:<file name>``
    :param keys: the collector's keys, to HMAC a card change's new account in memory
    :param record: ``envelope.record()`` if the caller already built it
    :param batch: shared by the writes of one transaction; the caller must call
        ``batch.flush(tx)`` before committing. Without it, this write flushes its own.
    """
    if batch is None:
        own = WriteBatch()
        result = write_envelope(tx, envelope, payload, source, keys, record, own)
        own.flush(tx)
        return result
    record = record if record is not None else envelope.record()
    account_hmac = None
    if isinstance(record, CardChange) and keys is not None:
        opened = _open_new_account(keys, record)
        if opened is not None and not mask_matches(record.new_account_masked, opened):
            return REJECTED, "account_mask_mismatch"
        account_hmac = None if opened is None else keys.account_hmac(opened)
    digest = sha256_hex(payload)
    record_id = _returned_id(
        tx.query(
            _INSERT_RECEIVED_SQL,
            (
                envelope.agent_id,
                envelope.seq,
                envelope.key_id,
                envelope.record_type,
                envelope.created_at,
                source,
                digest,
                payload,
            ),
        )
    )
    if record_id is None:
        if envelope.record_type == Heartbeat.RECORD_TYPE:
            return _heartbeat_after_record(tx, envelope, record)
        return _seq_taken(tx, envelope, payload, digest)
    batch.touch(envelope)
    merchant_id = _merchant_of(tx, envelope, batch)
    if isinstance(record, BatchSummary):
        return _write_batch(tx, record_id, envelope, record, payload, digest, batch, merchant_id)
    if isinstance(record, TurnoverReading):
        _write_turnover(tx, record_id, envelope, record, batch, merchant_id)
    elif isinstance(record, CardChange):
        _write_card_change(tx, record_id, envelope, record, account_hmac, merchant_id)
    elif isinstance(record, TerminalReplaced):
        _write_replacement(tx, record_id, envelope, record, batch, merchant_id)
    elif isinstance(record, Heartbeat):
        tx.insert(
            "heartbeats",
            {
                "received_record_id": record_id,
                "agent_id": envelope.agent_id,
                "sent_at": record.agent_time,
                "body": _body_json(envelope, payload),
            },
        )
        tx.execute(
            "UPDATE agents SET outbox_depth = ? WHERE agent_id = ?",
            (record.outbox_pending, envelope.agent_id),
        )
    return ACCEPTED, None


_RECEIVED_COLUMNS = (
    "id",
    "agent_id",
    "seq",
    "key_id",
    "record_type",
    "created_at",
    "source",
    "payload_sha256",
    "envelope",
)
_BATCH_COLUMNS = (
    "id",
    "received_record_id",
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
    "content_sha256",
    "source",
)
_BUCKET_COLUMNS = (
    "batch_id",
    "name",
    "sale_count",
    "sale_amount",
    "refund_count",
    "refund_amount",
    "void_count",
    "void_amount",
)
_TERMINAL_COLUMNS = ("terminal_id", "merchant_id", "agent_id")

#: One verified envelope to write: ``(envelope, payload, source, record)``.
Item = tuple[Envelope, bytes, str, Record]


def write_envelopes(
    tx: Tx, items: list[Item], keys: CollectorKeys | None, shared: WriteBatch
) -> list[tuple[str, str | None]]:
    """Write verified envelopes in order; return ``(status, reason)`` per item.

    Theory of operation: the common case — new batch summaries, none seen before — is written
    with one multi-row statement per table (:func:`_bulk_batches`), ~3× cheaper per record
    than one statement each. It is attempted inside a savepoint and only counts as done when
    every row was inserted; any clash (a resend, a conflict, the same key twice in this list)
    rolls the savepoint back and every item takes the one-by-one path of
    :func:`write_envelope`, which decides duplicates and conflicts. The result is the same
    either way (tests/collector/ingest/test_records_bulk.py).
    """
    batches = [i for i, item in enumerate(items) if type(item[3]) is BatchSummary]
    if len(batches) >= 2 and _bulk_batches(tx, items, batches, shared):
        done = set(batches)
        return [
            (ACCEPTED, None) if i in done else write_envelope(tx, e, p, s, keys, r, shared)
            for i, (e, p, s, r) in enumerate(items)
        ]
    return [write_envelope(tx, e, p, s, keys, r, shared) for e, p, s, r in items]


def _bulk_batches(tx: Tx, items: list[Item], which: list[int], shared: WriteBatch) -> bool:
    """Insert the batch summaries ``items[i] for i in which`` in bulk; False (and nothing
    written) unless every one of them is new."""
    seqs = {(e.agent_id, e.seq) for e, _, _, _ in items}
    natural = {(items[i][0].agent_id, *items[i][3].natural_key()) for i in which}  # type: ignore[union-attr]
    if len(seqs) != len(items) or len(natural) != len(which):
        return False  # the same key twice in one transaction: let the slow path decide
    tx.execute("SAVEPOINT sg_bulk")
    ids = tx.reserve_ids("received_records", len(which))
    received, summaries, buckets, terminals = [], [], [], []
    for record_id, i in zip(ids, which, strict=True):
        envelope, payload, source, record = items[i]
        batch: BatchSummary = record  # type: ignore[assignment]
        received.append(
            (
                record_id,
                envelope.agent_id,
                envelope.seq,
                envelope.key_id,
                envelope.record_type,
                envelope.created_at,
                source,
                sha256_hex(payload),
                payload,
            )
        )
    if tx.insert_many("received_records", _RECEIVED_COLUMNS, received, ignore_conflict=True) != len(
        which
    ):
        tx.execute("ROLLBACK TO SAVEPOINT sg_bulk")
        tx.execute("RELEASE SAVEPOINT sg_bulk")
        return False
    batch_ids = tx.reserve_ids("batch_summaries", len(which))
    for batch_id, record_id, i in zip(batch_ids, ids, which, strict=True):
        envelope, payload, _, record = items[i]
        batch = record  # type: ignore[assignment]
        merchant_id = _merchant_of(tx, envelope, shared)
        content = sha256_hex(_body_bytes(envelope, payload))
        summaries.append((batch_id, *_batch_row(record_id, envelope, batch, merchant_id, content)))
        buckets.extend(_bucket_rows(batch_id, batch))
        if batch.terminal_id and (merchant_id, batch.terminal_id) not in shared.terminals:
            terminals.append((batch.terminal_id, merchant_id, envelope.agent_id))
            shared.terminals.add((merchant_id, batch.terminal_id))
    if tx.insert_many("batch_summaries", _BATCH_COLUMNS, summaries, ignore_conflict=True) != len(
        which
    ):
        for terminal in terminals:
            shared.terminals.discard((terminal[1], terminal[0]))
        tx.execute("ROLLBACK TO SAVEPOINT sg_bulk")
        tx.execute("RELEASE SAVEPOINT sg_bulk")
        return False
    if buckets:
        tx.insert_many("batch_buckets", _BUCKET_COLUMNS, buckets)
    if terminals:
        # sorted: see WriteBatch.flush
        tx.insert_many("terminals", _TERMINAL_COLUMNS, sorted(terminals), ignore_conflict=True)
    tx.execute("RELEASE SAVEPOINT sg_bulk")
    for i in which:
        shared.touch(items[i][0])
    return True


def _heartbeat_after_record(
    tx: Tx, envelope: Envelope, record: object | None
) -> tuple[str, str | None]:
    """A heartbeat whose ``seq`` (the agent's highest record seq, by design) is a stored
    record's: not a conflict. Its outbox depth is taken; the heartbeat itself is not kept."""
    beat = record if record is not None else envelope.record()
    if isinstance(beat, Heartbeat):
        tx.execute(
            "UPDATE agents SET outbox_depth = ? WHERE agent_id = ?",
            (beat.outbox_pending, envelope.agent_id),
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


def _merchant_of(tx: Tx, envelope: Envelope, shared: WriteBatch) -> str | None:
    """The merchant ``envelope``'s agent was enrolled for: the merchant of all it sends."""
    agent_id = envelope.agent_id
    if agent_id not in shared.merchants:
        row = tx.query_one("SELECT merchant_id FROM agents WHERE agent_id = ?", (agent_id,))
        shared.merchants[agent_id] = row["merchant_id"] if row else None
    return shared.merchants[agent_id]


def _open_new_account(keys: CollectorKeys, change: CardChange) -> str | None:
    """The card change's new account number, in memory only (``None`` if not openable)."""
    try:
        return keys.open_card_change(change.change_id, change.new_account_sealed)
    except (SealedError, UnicodeDecodeError):
        log.warning("card change %s: sealed account not openable", change.change_id)
        return None


def mask_matches(masked: str, number: str) -> bool:
    """True when every digit ``masked`` shows is the sealed ``number``'s digit there.

    Digits before the mask characters must begin the number, digits after them must end it
    (``****7894``, ``622202******7894``); the comparison uses the account's key text (digits,
    or an IBAN's characters), as the matching HMAC does.
    """
    text = account_key_text(number)
    stripped = masked.strip()
    head = len(stripped) - len(stripped.lstrip("0123456789"))
    tail = len(stripped) - len(stripped.rstrip("0123456789"))
    if head + tail > len(text) or head == len(stripped):
        return False
    return text.startswith(stripped[:head]) and text.endswith(stripped[len(stripped) - tail :])


def _terminal(
    tx: Tx, shared: WriteBatch, terminal_id: str | None, merchant_id: str | None, agent_id: str
) -> None:
    if terminal_id and (merchant_id, terminal_id) not in shared.terminals:
        tx.execute(_INSERT_TERMINAL_SQL, (terminal_id, merchant_id, agent_id))
        shared.terminals.add((merchant_id, terminal_id))


def _bucket_rows(batch_id: int, batch: BatchSummary) -> list[tuple[int | str, ...]]:
    """One row per China bucket: schemes that share one (ZVT ``visa`` and ``amex`` are both
    ``foreign``) are added up, and older records' ZVT/POSLink names are mapped."""
    buckets = batch.buckets
    names = {b.name for b in buckets}
    if len(names) == len(buckets) and names <= _CHINA_NAMES:  # the usual case: one row each
        return [
            (
                batch_id,
                b.name,
                b.sale_count,
                b.sale_amount,
                b.refund_count,
                b.refund_amount,
                b.void_count,
                b.void_amount,
            )
            for b in buckets
        ]
    return [
        (batch_id, name, *figures)
        for name, figures in totals_by_china_bucket(batch.protocol, buckets).items()
    ]


_CHINA_NAMES = frozenset(CHINA_BUCKETS)


def _batch_row(
    record_id: int,
    envelope: Envelope,
    batch: BatchSummary,
    merchant_id: str | None,
    content: str,
) -> tuple[Any, ...]:
    """A ``batch_summaries`` row in ``_BATCH_COLUMNS`` order after the id (the order
    ``_INSERT_BATCH_SQL`` binds too)."""
    reconciled = None if batch.host_reconciled is None else int(batch.host_reconciled)
    return (
        record_id,
        envelope.agent_id,
        batch.terminal_id,
        merchant_id,
        batch.batch_no,
        batch.closed_at,
        batch.terminal_local_time,
        batch.currency,
        batch.net_amount,
        batch.receipt_start,
        batch.receipt_end,
        reconciled,
        content,
        batch.source,
    )


def _write_batch(
    tx: Tx,
    record_id: int,
    envelope: Envelope,
    batch: BatchSummary,
    payload: bytes,
    digest: str,
    shared: WriteBatch,
    merchant_id: str | None,
) -> tuple[str, str | None]:
    content = sha256_hex(_body_bytes(envelope, payload))
    batch_id = _returned_id(
        tx.query(_INSERT_BATCH_SQL, _batch_row(record_id, envelope, batch, merchant_id, content))
    )
    if batch_id is None:
        existing = tx.query_one(
            "SELECT id, received_record_id, content_sha256 FROM batch_summaries"
            " WHERE merchant_id = ? AND terminal_id = ? AND batch_no = ? AND closed_at = ?",
            (merchant_id, *batch.natural_key()),
        )
        assert existing is not None
        if existing["content_sha256"] == content:
            return DUPLICATE, None
        key = json.dumps([merchant_id, *batch.natural_key()])
        _conflict(tx, "natural_key", envelope, payload, digest, existing["received_record_id"], key)
        return CONFLICT, f"batch {batch.batch_no} of {batch.terminal_id} already stored differently"
    for row in _bucket_rows(batch_id, batch):
        tx.execute(_INSERT_BUCKET_SQL, row)
    _terminal(tx, shared, batch.terminal_id, merchant_id, envelope.agent_id)
    return ACCEPTED, None


def _write_turnover(
    tx: Tx,
    record_id: int,
    envelope: Envelope,
    reading: TurnoverReading,
    shared: WriteBatch,
    merchant_id: str | None,
) -> None:
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
    _terminal(tx, shared, reading.terminal_id, merchant_id, envelope.agent_id)


def _write_card_change(
    tx: Tx,
    record_id: int,
    envelope: Envelope,
    change: CardChange,
    account_hmac: str | None,
    merchant_id: str | None,
) -> None:
    if change.review_status not in (None, "requested"):
        detail = (
            f"card change {change.change_id} claimed review status {change.review_status!r};"
            " stored as requested: only an operator or an acquirer file decides a review"
        )
        log.warning("agent %s: %s", envelope.agent_id, detail)
        tx.insert(
            "ingest_flags",
            {
                "agent_id": envelope.agent_id,
                "seq": envelope.seq,
                "kind": "review_status_claim",
                "detail": detail,
            },
        )
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
        "review_status": "requested",
        "acquirer_ref": change.acquirer_ref,
        "body": _body_json(envelope),
    }
    change_row_id = tx.insert("card_changes", row)
    if merchant_id is None or account_hmac is None or _change_known(tx, merchant_id, change):
        return
    tx.insert(
        "merchants", {"merchant_id": merchant_id}, ignore_conflict=True, returning="merchant_id"
    )
    status = "requested"
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
        {
            "account_id": account_id,
            "status": status,
            "actor": envelope.agent_id,
            "note": f"card change {change.change_id}",
        },
    )


def _change_known(tx: Tx, merchant_id: str, change: CardChange) -> bool:
    """True when ``change`` already has a settlement account: a report sent again (under a new
    seq, after the agent re-sealed) adds none, so it cannot undo an operator's decision."""
    return (
        tx.query_one(
            "SELECT a.id FROM settlement_accounts a JOIN card_changes c ON c.id = a.card_change_id"
            " WHERE a.merchant_id = ? AND c.change_id = ?",
            (merchant_id, change.change_id),
        )
        is not None
    )


def _write_replacement(
    tx: Tx,
    record_id: int,
    envelope: Envelope,
    replaced: TerminalReplaced,
    shared: WriteBatch,
    merchant_id: str | None,
) -> None:
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
    _terminal(tx, shared, replaced.old_terminal_id, merchant_id, envelope.agent_id)
    _terminal(tx, shared, replaced.new_terminal_id, merchant_id, envelope.agent_id)
    tx.execute(
        "UPDATE terminals SET status = 'replaced', replaced_by = ?"
        " WHERE merchant_id = ? AND terminal_id = ?",
        (replaced.new_terminal_id, merchant_id, replaced.old_terminal_id),
    )
