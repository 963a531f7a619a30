"""The reconciliation store adapter: load inputs, run the engine, save matches and gaps.

Theory of operation (docs/architecture.md §5 "Reconciliation"): the domain engine
(:mod:`collector.reconcile`) knows no database. This module

1. decides **which merchants** to reconcile. Incremental by default: every source table keeps a
   watermark (its highest row id at the last run, in ``recon_state``); merchants touched by rows
   above it -- batches, card changes, terminal replacements, account-history rows, credits and
   statement coverage on their accounts, payout records -- plus merchants queued in
   ``recon_dirty`` (merchant edits) and merchants with a ``NOT_DUE_YET`` gap now due are dirty;
2. splits them into chunks and, per chunk, **loads** :class:`~collector.reconcile.MerchantInputs`
   with one set-based query per table (never one query per merchant or row) in a read
   transaction;
3. runs :func:`~collector.reconcile.reconcile_merchant`;
4. **writes** idempotently (:mod:`collector.reconcile.writer`): matches keyed by a digest of their
   content, gaps by the engine's stable ``Gap.key``, keeping ids, status and acknowledgements.

Chunks are independent (a merchant's results depend on its own rows only), so a large run
spreads them over worker processes (:mod:`collector.reconcile.runner`); the stored results are
the same as in one process. Running twice changes nothing; facts arriving in another order
give the same rows.
"""
# SQL here is built only from our own table/column names and "?" lists; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import gc
import json
import time as clock
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from settleguard.collector.merchants import fee_schedule_from_json
from settleguard.collector.reconcile import (
    AccountChange,
    Batch,
    Bucket,
    Credit,
    CreditSplit,
    HandMatch,
    Merchant,
    MerchantInputs,
    PayoutRecord,
    ReconcileConfig,
    ReconcileInputError,
    StatementCoverage,
    TerminalReplacement,
    WorkingCalendar,
    load_calendar,
    reconcile_merchant,
)
from settleguard.collector.reconcile import writer as recon_write
from settleguard.collector.reconcile.acquirers import profile as acquirer_profile
from settleguard.collector.reconcile.build import new_account_change as _new_account_change
from settleguard.collector.reconcile.build import new_batch as _new_batch
from settleguard.collector.reconcile.build import new_bucket as _new_bucket
from settleguard.collector.reconcile.build import new_credit as _new_credit
from settleguard.collector.reconcile.build import new_payout as _new_payout
from settleguard.collector.reconcile.gaps import LATE_BY_DUE_DATE
from settleguard.collector.reconcile.runner import default_processes, run_chunks
from settleguard.collector.store import Store, Tx
from settleguard.collector.store.sqlite import SqliteStore, SqliteTx

CHUNK = 1000  # merchants per load/write round trip (bound memory and IN-list size)

#: ISO 4217 numeric codes some terminals report (ZVT sends "978"), to the alphabetic code
#: statements use; the engine compares currencies as strings.
NUMERIC_CURRENCY = {
    "156": "CNY",
    "978": "EUR",
    "840": "USD",
    "344": "HKD",
    "446": "MOP",
    "826": "GBP",
    "392": "JPY",
    "756": "CHF",
    "702": "SGD",
    "901": "TWD",
    "410": "KRW",
    "036": "AUD",
}

_WATERMARKS: dict[str, str] = {
    "batch_summaries": "SELECT DISTINCT merchant_id FROM batch_summaries WHERE id > ?",
    "card_changes": "SELECT DISTINCT merchant_id FROM card_changes WHERE id > ?",
    "terminal_replacements": "SELECT DISTINCT merchant_id FROM terminal_replacements WHERE id > ?",
    "payout_records": "SELECT DISTINCT merchant_id FROM payout_records WHERE id > ?",
    "settlement_account_history": "SELECT DISTINCT a.merchant_id FROM settlement_account_history"
    " h JOIN settlement_accounts a ON a.id = h.account_id WHERE h.id > ?",
    "credits": "SELECT DISTINCT a.merchant_id FROM credits c JOIN settlement_accounts a"
    " ON a.account_hmac = c.account_hmac WHERE c.id > ?",
    "imports": "SELECT DISTINCT a.merchant_id FROM imports i JOIN settlement_accounts a"
    " ON a.account_hmac = i.account_hmac WHERE i.id > ?",
}


@dataclass
class ReconcileReport:
    """What one :func:`reconcile` run did."""

    merchants: int = 0
    batches: int = 0
    matches: int = 0
    gaps_open: int = 0
    gaps_new: int = 0
    gaps_resolved: int = 0
    #: gaps judged late against a business or due date outside the working calendar's range
    #: (:data:`~collector.reconcile.gaps.LATE_BY_DUE_DATE`; the alert planner holds their SMS
    #: up to 14 days)
    gaps_outside_calendar: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: wall seconds spent in each phase, summed over the worker processes: ``load`` (queries
    #: and building inputs), ``engine`` (and preparing rows), ``write`` (matches, gaps, dirty
    #: flags, the commit)
    phases: dict[str, float] = field(
        default_factory=lambda: {"load": 0.0, "engine": 0.0, "write": 0.0}
    )
    #: processes that reconciled (1: the calling process alone)
    processes: int = 1

    def add(self, part: ReconcileReport) -> None:
        """Count ``part`` (one chunk's report) into this one."""
        self.merchants += part.merchants
        self.batches += part.batches
        self.matches += part.matches
        self.gaps_open += part.gaps_open
        self.gaps_new += part.gaps_new
        self.gaps_resolved += part.gaps_resolved
        self.gaps_outside_calendar += part.gaps_outside_calendar
        self.errors.update(part.errors)
        for name, seconds in part.phases.items():
            self.phases[name] = self.phases.get(name, 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``reconcile --json``)."""
        return {
            "merchants": self.merchants,
            "batches": self.batches,
            "matches": self.matches,
            "gaps_open": self.gaps_open,
            "gaps_new": self.gaps_new,
            "gaps_resolved": self.gaps_resolved,
            "gaps_outside_calendar": self.gaps_outside_calendar,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "processes": self.processes,
            "phases": {name: round(value, 3) for name, value in self.phases.items()},
        }


# -- which merchants ------------------------------------------------------------------------


def _watermarks(tx: Tx) -> tuple[dict[str, int], dict[str, int]]:
    old = {r["name"]: int(r["value"]) for r in tx.query("SELECT name, value FROM recon_state")}
    new = {}
    for table in _WATERMARKS:
        row = tx.query_one(f"SELECT MAX(id) AS m FROM {table}")
        new[table] = int(row["m"]) if row and row["m"] is not None else 0
    return old, new


def dirty_merchants(tx: Tx, now: datetime) -> tuple[set[str], dict[str, int]]:
    """Merchants needing reconciliation, and the watermarks to save once they are done."""
    old, new = _watermarks(tx)
    dirty: set[str] = set()
    for table, sql in _WATERMARKS.items():
        if new[table] > old.get(table, 0):
            dirty.update(r["merchant_id"] for r in tx.query(sql, (old.get(table, 0),)))
    dirty.update(r["merchant_id"] for r in tx.query("SELECT merchant_id FROM recon_dirty"))
    soon = (now.astimezone(UTC).date() + timedelta(days=1)).isoformat()
    dirty.update(
        r["merchant_id"]
        for r in tx.query(
            "SELECT DISTINCT merchant_id FROM gaps WHERE status <> 'resolved'"
            " AND category = 'NOT_DUE_YET' AND due_at < ?",
            (soon,),
        )
    )
    dirty.discard(None)  # type: ignore[arg-type,unused-ignore]  # rows of an unknown merchant
    return dirty, new


def all_merchants(tx: Tx) -> set[str]:
    """Every merchant with a row or a batch."""
    rows = tx.query_rows(
        "SELECT merchant_id FROM merchants UNION"
        " SELECT DISTINCT merchant_id FROM batch_summaries WHERE merchant_id IS NOT NULL"
    )
    return {r[0] for r in rows}


# -- loading --------------------------------------------------------------------------------


def _in(ids: Sequence[str]) -> str:
    return ",".join("?" for _ in ids)


def _dt(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@lru_cache(maxsize=4096)
def _day(text: str | None) -> date | None:
    # statements and payouts repeat a few hundred dates across a whole run: parse each once
    return date.fromisoformat(text[:10]) if text else None


#: Currency of batches whose terminal reports none: PAX POSLink never does, and ZVT only when
#: the ECR registered with a currency (PA00P015 bitmap 49). Merchants settle in one currency.
DEFAULT_CURRENCY = "CNY"


@lru_cache(maxsize=256)
def _currency(code: str | None) -> str:
    code = (code or "").strip().upper()
    return NUMERIC_CURRENCY.get(code, code) or DEFAULT_CURRENCY


def _merchant(row: Sequence[Any]) -> Merchant:
    mid, name, cycle, cutoff, timezone, fees, locale, phones, acquirer = row
    found = acquirer_profile(acquirer)
    return Merchant(
        mid,
        name or "",
        cycle or "T+1",
        _cutoff(cutoff or "23:00"),
        timezone or "Asia/Shanghai",
        _fee_schedule(fees),
        locale or "zh-CN",
        _json_tuple(phones),
        acquirer or "",
        found.payers if found is not None else (),
    )


#: The loader's merchant query (columns in :func:`_merchant`'s order).
MERCHANTS_SQL = (
    "SELECT merchant_id, name, settlement_cycle, cutoff_local, timezone, fee_schedule, locale,"
    " phones, acquirer FROM merchants WHERE merchant_id IN ({ids})"
)

# Merchants share a handful of fee schedules and cut-offs; FeeSchedule is frozen, so one parsed
# object per distinct text is safe to share.
_fee_schedule = lru_cache(maxsize=1024)(fee_schedule_from_json)
_cutoff = lru_cache(maxsize=256)(time.fromisoformat)


def _json_tuple(text: str | None) -> tuple[str, ...]:
    """A stored JSON list of strings as a tuple.

    The common shape -- ``["a", "b"]`` as :func:`json.dumps` writes it, no escapes -- is split
    directly (a string without a backslash cannot hold a quote, so the split is exact);
    anything else goes through :func:`json.loads`.
    """
    if not text or text == "[]":
        return ()
    if text[:2] == '["' and text[-2:] == '"]' and "\\" not in text:
        parts = text[2:-2].split('", "')
        if all('"' not in part for part in parts):
            return tuple(parts)
    return tuple(json.loads(text))


#: The loader's account-history query.
HISTORY_SQL = (
    "SELECT a.id, a.merchant_id, a.account_masked, a.account_hmac, a.status,"
    " a.requested_at, a.effective_at, a.created_at, c.change_id,"
    " (SELECT MAX(h.changed_at) FROM settlement_account_history h WHERE h.account_id = a.id)"
    " AS changed_at FROM settlement_accounts a LEFT JOIN card_changes c"
    " ON c.id = a.card_change_id WHERE a.merchant_id IN ({ids}) ORDER BY a.merchant_id, a.id"
)


def _history(tx: Tx, ids: Sequence[str]) -> dict[str, list[AccountChange]]:
    rows = tx.query_rows(HISTORY_SQL.format(ids=_in(ids)), ids)
    latest: dict[tuple[str, str], Sequence[Any]] = {}
    for row in rows:  # an agent re-sends a change with a new review status: the latest row wins
        latest[(row[1], row[8] or f"account-{row[0]}")] = row
    out: dict[str, list[AccountChange]] = defaultdict(list)
    for (mid, change_id), account in latest.items():
        _, _, masked, key, status, requested_at, effective_at, created_at, _, changed_at = account
        requested = _dt(requested_at) or _dt(created_at)
        effective = _dt(effective_at)
        if status in ("active", "retired") and effective is None:
            effective = requested
        assert requested is not None
        out[mid].append(
            _new_account_change(
                requested, change_id, mid, key, masked, status, effective, _dt(changed_at)
            )
        )
    return out


#: The loader's batch query (``{ids}``: the merchant-id placeholders); the reconcile benchmark
#: times a plain scan with the same text. One row per bucket (a batch without buckets: one row
#: of NULLs), ordered so that a batch's rows are adjacent and merchants come one after the
#: other -- the order of the ``(merchant_id, closed_at)`` index, so SQLite does not sort.
BATCHES_SQL = (
    "SELECT b.id, b.merchant_id, b.terminal_id, b.batch_no, b.closed_at, b.currency,"
    " b.total_amount, k.name, k.sale_amount, k.refund_amount, k.void_amount, k.sale_count,"
    " k.refund_count, k.void_count FROM batch_summaries b LEFT JOIN batch_buckets k"
    " ON k.batch_id = b.id WHERE b.merchant_id IN ({ids}) ORDER BY b.merchant_id, b.closed_at, b.id"
)

#: The loader's credit query (booked and pending credits to any account of the merchants). The
#: raw statement entry is read only for a credit without a reference (its end-to-end id is the
#: reference then): most credits have one, and a raw entry is the widest column. The payer is
#: the name a Chinese bank export prints (对方户名), else the camt/MT940 counterparty.
CREDITS_SQL = (
    "SELECT m.merchant_id, c.entry_id, c.id, c.account_hmac, c.account_masked, c.booked_at,"
    " c.value_date, c.amount, c.currency, c.reference, c.remittance, c.status, c.reversal,"
    " CASE WHEN c.reference IS NULL OR c.reference = '' THEN c.raw END,"
    " COALESCE(NULLIF(c.payer_name, ''), c.counterparty), c.payer_account"
    " FROM (SELECT DISTINCT merchant_id, account_hmac FROM settlement_accounts"
    " WHERE merchant_id IN ({ids})) m JOIN credits c ON c.account_hmac = m.account_hmac"
    " WHERE c.kind = 'credit' AND c.status IN ('booked', 'pending')"
)


def _closed(text: str) -> datetime:
    closed = datetime.fromisoformat(text)
    return closed if closed.tzinfo is not None else closed.replace(tzinfo=UTC)


def _batches(tx: Tx, ids: Sequence[str]) -> dict[str, list[Batch]]:
    out: dict[str, list[Batch]] = defaultdict(list)
    head: Sequence[Any] | None = None
    buckets: list[Bucket] = []
    for row in tx.query_rows(BATCHES_SQL.format(ids=_in(ids)), ids):
        if head is None or row[0] != head[0]:  # the first row of the next batch
            if head is not None:
                _add_batch(out, head, buckets)
            head, buckets = row, []
        if row[7] is not None:
            buckets.append(_new_bucket(row[7], row[8], row[9], row[10], row[11], row[12], row[13]))
    if head is not None:
        _add_batch(out, head, buckets)
    return out


def _add_batch(out: dict[str, list[Batch]], head: Sequence[Any], buckets: list[Bucket]) -> None:
    _, mid, tid, no, closed_at, currency, total = head[:7]
    out[mid].append(
        _new_batch(
            mid,
            tid,
            int(no),
            _closed(closed_at),
            _currency(currency),
            tuple(buckets),
            int(total),
            closed_at,
        )
    )


def _credits(tx: Tx, ids: Sequence[str]) -> dict[str, list[Credit]]:
    rows = tx.query_rows(CREDITS_SQL.format(ids=_in(ids)), ids)
    out: dict[str, list[Credit]] = defaultdict(list)
    for row in rows:
        (
            mid,
            entry_id,
            credit_id,
            key,
            masked,
            booked_at,
            value_date,
            amount,
            currency,
            reference,
            remittance,
            status,
            reversal,
            raw,
            payer_name,
            payer_account,
        ) = row
        if not reference and raw:
            e2e = json.loads(raw).get("end_to_end_id") or ""
            reference = "" if e2e.upper() == "NOTPROVIDED" else e2e
        out[mid].append(
            _new_credit(
                entry_id or f"credit-{credit_id}",
                key,
                masked or "",
                _day(booked_at),  # type: ignore[arg-type]
                _day(value_date),
                int(amount),
                _currency(currency),
                reference or "",
                remittance or "",
                status,
                bool(reversal),
                payer_name=payer_name or "",
                payer_account=payer_account or "",
            )
        )
    return out


#: The loader's statement-coverage query.
COVERAGE_SQL = (
    "SELECT m.merchant_id, i.account_hmac, i.period_start, i.period_end, i.balance_ok"
    " FROM (SELECT DISTINCT merchant_id, account_hmac FROM settlement_accounts"
    " WHERE merchant_id IN ({ids})) m JOIN imports i ON i.account_hmac = m.account_hmac"
    " WHERE i.status = 'done' AND i.period_start IS NOT NULL AND i.period_end IS NOT NULL"
)


def _coverage(tx: Tx, ids: Sequence[str]) -> dict[str, list[StatementCoverage]]:
    out: dict[str, list[StatementCoverage]] = defaultdict(list)
    for mid, key, start, end, ok in tx.query_rows(COVERAGE_SQL.format(ids=_in(ids)), ids):
        out[mid].append(StatementCoverage(key, _day(start), _day(end), bool(ok)))  # type: ignore[arg-type]
    return out


#: The loader's payout-record query.
PAYOUTS_SQL = (
    "SELECT merchant_id, payout_date, gross_amount, fee_amount, net_amount, account_masked,"
    " status, reason, reference, batch_refs FROM payout_records WHERE merchant_id IN ({ids})"
)


def _payouts(tx: Tx, ids: Sequence[str]) -> dict[str, list[PayoutRecord]]:
    out: dict[str, list[PayoutRecord]] = defaultdict(list)
    for mid, day, gross, fee, net, masked, status, reason, ref, refs in tx.query_rows(
        PAYOUTS_SQL.format(ids=_in(ids)), ids
    ):
        out[mid].append(
            _new_payout(
                mid,
                _day(day),  # type: ignore[arg-type]
                int(gross or 0),
                int(fee or 0),
                int(net or 0),
                masked or "",
                status,
                reason or "",
                ref or "",
                _json_tuple(refs),
            )
        )
    return out


#: The loader's terminal-replacement query.
REPLACEMENTS_SQL = (
    "SELECT merchant_id, old_terminal_id, new_terminal_id, replaced_at, final_batch_no FROM"
    " terminal_replacements WHERE merchant_id IN ({ids}) AND replaced_at IS NOT NULL"
)


def _replacements(tx: Tx, ids: Sequence[str]) -> dict[str, list[TerminalReplacement]]:
    out: dict[str, list[TerminalReplacement]] = defaultdict(list)
    for mid, old, new, replaced_at, final in tx.query_rows(
        REPLACEMENTS_SQL.format(ids=_in(ids)), ids
    ):
        out[mid].append(
            TerminalReplacement(
                old or "",
                new or "",
                _dt(replaced_at),  # type: ignore[arg-type]
                None if final is None else int(final),
            )
        )
    return out


#: The loader's hand-match query: operators' matches and splits still in force.
HAND_SQL = (
    "SELECT merchant_id, id, kind, batch_keys, credit_ids, amounts, note FROM hand_matches"
    " WHERE merchant_id IN ({ids}) AND undone_at IS NULL ORDER BY id"
)


def _hand(tx: Tx, ids: Sequence[str]) -> dict[str, tuple[list[HandMatch], list[CreditSplit]]]:
    out: dict[str, tuple[list[HandMatch], list[CreditSplit]]] = {}
    for mid, hid, kind, keys, credit_ids, amounts, note in tx.query_rows(
        HAND_SQL.format(ids=_in(ids)), ids
    ):
        matches, splits = out.setdefault(mid, ([], []))
        if kind == "split":
            (credit_id,) = json.loads(credit_ids)
            splits.append(CreditSplit(credit_id, tuple(json.loads(amounts))))
        else:
            matches.append(
                HandMatch(f"{int(hid):012d}", _json_tuple(keys), _json_tuple(credit_ids), note)
            )
    return out


#: Every query :func:`load_inputs` runs per chunk, by name (the reconcile benchmark's scan
#: times exactly these).
LOADER_SQL: dict[str, str] = {
    "merchants": MERCHANTS_SQL,
    "history": HISTORY_SQL,
    "batches": BATCHES_SQL,
    "credits": CREDITS_SQL,
    "coverage": COVERAGE_SQL,
    "payouts": PAYOUTS_SQL,
    "replacements": REPLACEMENTS_SQL,
    "hand": HAND_SQL,
}


def load_inputs(tx: Tx, merchant_ids: Iterable[str]) -> list[MerchantInputs]:
    """Build the engine's inputs for ``merchant_ids`` with one query per table.

    A merchant with batches but no ``merchants`` row gets the schema's defaults (T+1, 23:00,
    Asia/Shanghai, no fees).
    """
    ids = sorted(set(merchant_ids))
    if not ids:
        return []
    rows = {r[0]: r for r in tx.query_rows(MERCHANTS_SQL.format(ids=_in(ids)), ids)}
    history, batches = _history(tx, ids), _batches(tx, ids)
    credits, coverage = _credits(tx, ids), _coverage(tx, ids)
    payouts, replacements = _payouts(tx, ids), _replacements(tx, ids)
    hand = _hand(tx, ids)
    out = []
    empty: tuple[Any, ...] = ()
    no_hand: tuple[list[HandMatch], list[CreditSplit]] = ([], [])
    for mid in ids:
        row = rows.get(mid)
        merchant = _merchant(
            row if row is not None else (mid, None, None, None, None, None, None, None, None)
        )
        hand_matches, splits = hand.get(mid, no_hand)
        out.append(
            MerchantInputs(
                merchant,
                tuple(history.get(mid, empty)),
                tuple(batches.get(mid, empty)),
                tuple(replacements.get(mid, empty)),
                tuple(credits.get(mid, empty)),
                tuple(payouts.get(mid, empty)),
                tuple(coverage.get(mid, empty)),
                tuple(hand_matches),
                tuple(splits),
            )
        )
    return out


# -- the run --------------------------------------------------------------------------------


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one chunk (load, engine, write).

    A chunk builds several objects per batch that all stay alive until its results are
    written; the collector's generation passes over them find nothing to free and cost a large
    share of the load and engine time (docs/decisions/0006-hot-path-figures.md). Turned back on once they are freed, its next
    pass has nothing of theirs to look at. Reference counting still frees everything
    as usual; cycles made meanwhile are collected once the collector is back on. Only turns it
    back on if it was on (a caller that disabled it keeps it off).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def read_transaction(store: Store) -> Iterator[Tx]:
    """A transaction for reading only.

    On SQLite a deferred one: a WAL snapshot that takes no write lock, so reconciliation
    workers load their inputs side by side while ingest (and the other workers) keep writing.
    On other stores, the store's own transaction (PostgreSQL readers never block writers).
    """
    if not isinstance(store, SqliteStore):
        with store.transaction() as tx:
            yield tx
        return
    conn = store.db.conn
    if conn.in_transaction:  # nested: join the outer transaction
        yield SqliteTx(conn)
        return
    conn.execute("BEGIN")
    try:
        yield SqliteTx(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass(frozen=True)
class ChunkJob:
    """What every chunk of one run shares (picklable: it goes to worker processes)."""

    now: datetime
    calendar: WorkingCalendar
    config: ReconcileConfig
    stamp: str


#: Merchants of a chunk queued in ``recon_dirty``, with their ``merchants`` row (all NULL when
#: there is none): an edit committed after a chunk's read changes the row, so its mark stays.
_DIRTY_SQL = (
    "SELECT d.merchant_id, m.name, m.settlement_cycle, m.cutoff_local, m.timezone,"
    " m.fee_schedule, m.locale, m.phones, m.acquirer FROM recon_dirty d LEFT JOIN merchants m"
    " ON m.merchant_id = d.merchant_id WHERE d.merchant_id IN ({ids})"
)


def reconcile_chunk(
    store: Store, ids: Sequence[str], job: ChunkJob, write_lock: AbstractContextManager[Any] | None
) -> ReconcileReport:
    """Reconcile the merchants ``ids`` and store their results (one chunk of :func:`reconcile`).

    Reads in a read transaction, runs the engine and prepares the rows outside any
    transaction, then writes in one write transaction (under ``write_lock`` if given). Inputs
    inserted after the read carry ids above the run's watermarks, so the next incremental run
    takes them; a merchant edit (``recon_dirty``) committed meanwhile keeps its mark.
    """
    report = ReconcileReport()
    with _gc_paused():  # the whole chunk: its objects are gone when the collector comes back
        tick = clock.perf_counter()
        with read_transaction(store) as tx:
            loaded = load_inputs(tx, ids)
            dirty_seen = set(tx.query_rows(_DIRTY_SQL.format(ids=_in(ids)), ids))
        tock = clock.perf_counter()
        report.phases["load"] += tock - tick
        results = []
        for inputs in loaded:
            try:
                results.append(
                    reconcile_merchant(
                        inputs, now=job.now, calendar=job.calendar, config=job.config
                    )
                )
            except (ReconcileInputError, ValueError) as exc:
                report.errors[inputs.merchant.merchant_id] = str(exc)
                continue
            report.batches += len(inputs.batches)
        del loaded
        report.gaps_outside_calendar += sum(
            1
            for r in results
            for g in r.gaps
            if g.category in LATE_BY_DUE_DATE and g.evidence.get("calendar_covers") is False
        )
        prepared = recon_write.prepare(results)
        del results
        tick = clock.perf_counter()
        report.phases["engine"] += tick - tock
        done = prepared.merchant_ids  # a merchant whose inputs were refused keeps its results
        if done:
            with write_lock or nullcontext(), store.transaction() as tx:
                counts = recon_write.write(tx, prepared, job.stamp)
                _clear_dirty(tx, done, dirty_seen)
            report.matches += counts.matches
            report.gaps_open += counts.gaps_open
            report.gaps_new += counts.gaps_new
            report.gaps_resolved += counts.gaps_resolved
        report.merchants += len(done)
        del prepared
        report.phases["write"] += clock.perf_counter() - tick  # includes the commit
    return report


def _clear_dirty(tx: Tx, done: Sequence[str], seen: set[tuple[Any, ...]]) -> None:
    """Drop the ``recon_dirty`` marks of ``done`` whose merchant row is as it was read."""
    if not seen:
        return
    now = set(tx.query_rows(_DIRTY_SQL.format(ids=_in(done)), done))
    clear = [row[0] for row in now & seen]
    if clear:
        tx.execute(f"DELETE FROM recon_dirty WHERE merchant_id IN ({_in(clear)})", clear)


#: Fewer merchants than this are reconciled in the calling process even when more processes
#: are allowed: starting workers would cost more than it saves.
PARALLEL_MIN_MERCHANTS = 2000

#: Chunks per worker process (at most ``chunk`` merchants each): more even finishing times
#: against more per-chunk queries and commits.
CHUNKS_PER_PROCESS = 2


def _plan(store: Store, todo: int, chunk: int, processes: int | None) -> tuple[int, int]:
    """``(processes, merchants per chunk)`` for a run over ``todo`` merchants."""
    if processes is None:
        processes = default_processes() if todo >= PARALLEL_MIN_MERCHANTS else 1
    if processes < 1:
        raise ValueError(f"processes={processes}: expected at least 1")
    if store.url in ("sqlite:///:memory:", "sqlite:///"):
        processes = 1  # another process cannot see this database
    if processes > 1:
        # a few chunks per process so that they finish together; never above ``chunk``
        chunk = max(1, min(chunk, -(-todo // (CHUNKS_PER_PROCESS * processes))))
    chunks = -(-todo // chunk)
    return max(1, min(processes, chunks)), chunk


def reconcile(
    store: Store,
    merchants: Iterable[str] | None = None,
    *,
    full: bool = False,
    now: datetime | None = None,
    calendar: WorkingCalendar | None = None,
    config: ReconcileConfig | None = None,
    chunk: int = CHUNK,
    processes: int | None = None,
) -> ReconcileReport:
    """Reconcile merchants and store the results.

    :param store: a migrated collector store
    :param merchants: exactly these merchants; ``None``: the dirty ones (see module doc)
    :param full: every merchant (and the watermarks move on, as for an incremental run)
    :param now: the reconciliation time (default: the current time, UTC)
    :param calendar: working-day calendar (default: the shipped China calendar)
    :param config: engine limits and tolerances
    :param chunk: merchants per load/write round trip (at most)
    :param processes: worker processes (:mod:`collector.reconcile.runner`); ``None``: one per
        CPU or ``$SETTLEGUARD_RECON_PROCESSES`` for runs of at least
        :data:`PARALLEL_MIN_MERCHANTS` merchants, else the calling process alone; ``1``: always
        the calling process. The stored results are the same either way.
    """
    started = clock.perf_counter()
    now = now or datetime.now(UTC)
    job = ChunkJob(
        now=now,
        calendar=calendar or load_calendar(),
        config=config or ReconcileConfig(),
        stamp=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    report = ReconcileReport()
    marks: dict[str, int] | None = None
    with read_transaction(store) as tx:  # one snapshot for the merchants and the marks
        if merchants is not None:
            todo = set(merchants)
        elif full:  # every merchant: which are dirty does not matter, only the new marks
            todo, marks = all_merchants(tx), _watermarks(tx)[1]
        else:
            todo, marks = dirty_merchants(tx, now)
    ordered = sorted(todo)
    workers, size = _plan(store, len(ordered), chunk, processes)
    chunks = [ordered[start : start + size] for start in range(0, len(ordered), size)]
    parts: Iterable[ReconcileReport]
    if workers > 1:
        parts = run_chunks(
            store.url,
            chunks,
            reconcile_chunk,
            job,
            processes=workers,
            write_lock=isinstance(store, SqliteStore),
        )
    else:
        parts = (reconcile_chunk(store, ids, job, None) for ids in chunks)
    for part in parts:
        report.add(part)
    report.processes = workers
    if marks is not None:
        with store.transaction() as tx:
            for name, value in marks.items():
                tx.execute(
                    "INSERT INTO recon_state (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
    report.seconds = clock.perf_counter() - started
    return report


def list_gaps(
    store: Store, *, status: str | None = "open", merchant_id: str | None = None
) -> list[dict[str, Any]]:
    """Gaps with their evidence, biggest money at risk first.

    :param status: ``open``, ``acknowledged``, ``resolved`` or ``None`` for all
    """
    where, params = [], []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if merchant_id is not None:
        where.append("merchant_id = ?")
        params.append(merchant_id)
    sql = (
        "SELECT id, dedupe_key, merchant_id, category, amount, currency, due_at, since, status,"
        " resolution, batch_ids, credit_ids, reason, evidence, detected_at, resolved_at,"
        " acknowledged_at, acknowledged_by FROM gaps"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = store.query(sql + " ORDER BY amount DESC, id", params)
    for row in rows:
        for name in ("batch_ids", "credit_ids", "evidence"):
            row[name] = json.loads(row[name] or "null")
    return rows


def acknowledge_gap(store: Store, gap_id: int, *, actor: str, note: str | None = None) -> None:
    """Mark an open gap acknowledged by ``actor`` (kept across reconciliation runs).

    :raises ValueError: no such gap
    """
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.transaction() as tx:
        changed = tx.execute(
            "UPDATE gaps SET status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?,"
            " note = COALESCE(?, note) WHERE id = ? AND status = 'open'",
            (stamp, actor, note, gap_id),
        )
        if not changed and tx.query_one("SELECT id FROM gaps WHERE id = ?", (gap_id,)) is None:
            raise ValueError(f"no gap {gap_id}")
