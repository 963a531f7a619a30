"""Benchmark of store-level reconciliation: batches reconciled per second, and cost over a scan.

Generates, straight into a fresh SQLite store (batched ``executemany`` inserts, the way ingest
and the importers would have left it): merchants with a fee schedule and one active settlement
account each, one statement import per account covering the period, batches (a received record,
the batch row, one or two buckets), acquirer payout records and bank credits. Shapes:

* most merchants: one terminal, one batch a day, one credit per batch carrying the acquirer's
  payout reference (and a payout record naming the batch);
* about 8 %: two terminals whose batches of a day are paid as one credit without reference
  (aggregated payouts, 合并到账);
* a few faults: a missing credit, a short payment, a duplicate credit, a returned or held
  payout, a statement whose balance chain does not close.

Then, in the same run, it measures

(a) **scan**: reading the same batches and credits once from the store, with the same SELECTs
    the loader uses (:data:`collector.recon_store.BATCHES_SQL` / ``CREDITS_SQL``), chunked the
    same way, rows materialised;
(b) **reconcile**: :func:`collector.recon_store.reconcile` with ``full=True`` -- load, engine,
    write matches and gaps -- and its split into load / engine / write.

Last line: ``RESULT batches_per_s=… ratio_to_scan=… matched=… gaps=…``
(``ratio_to_scan`` = reconcile time / scan time). Targets: ``batches_per_s >= 50000`` and
``ratio_to_scan <= 8``.

    .venv/bin/python benchmarks/reconcile.py --quick      # 20k batches, within a minute
    .venv/bin/python benchmarks/reconcile.py              # 100k batches over 20k merchants
    .venv/bin/python benchmarks/reconcile.py --full       # 1M batches over 200k merchants
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.account_numbers import account_hmac, mask_account
from collector.recon_store import BATCHES_SQL, CHUNK, CREDITS_SQL, load_inputs, reconcile
from collector.reconcile import expected_credits, load_calendar
from collector.store import open_store
from collector.store.sqlite import SqliteStore

KEY = b"bench-hmac-key-0123456789abcdef!"
TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 3, 3, 21, 0, tzinfo=TZ)  # a Monday evening, local close time
NOW = datetime(2025, 4, 1, 4, 0, tzinfo=UTC)  # every batch is due by then
FEES = json.dumps(
    {"rules": [{"card_type": "UPI", "rate_bp": 60, "cap": 2000, "fixed": 0},
               {"card_type": "VISA", "rate_bp": 125, "cap": None, "fixed": 0}],
     "default": {"card_type": "*", "rate_bp": 60, "cap": None, "fixed": 0},
     "refund_fee_returned": False}, sort_keys=True,
)  # fmt: skip


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(store: SqliteStore, merchants: int, per_merchant: int, seed: int) -> dict[str, int]:
    """Fill ``store`` with merchants, accounts, batches, payouts and credits.

    :returns: counts of what was generated, including the injected faults
    """
    rng = random.Random(seed)
    conn = store.db.conn
    aggregated = {m for m in range(merchants) if rng.random() < 0.08}
    broken = {m for m in range(merchants) if rng.random() < 0.01}
    counts = {"merchants": merchants, "batches": 0, "aggregated_merchants": len(aggregated)}
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO merchants (merchant_id, name, fee_schedule) VALUES (?, ?, ?)",
        ((f"M{m:07d}", f"Shop {m}", FEES) for m in range(merchants)),
    )
    hmacs = [account_hmac(KEY, f"62170000{m:011d}") for m in range(merchants)]
    conn.executemany(
        "INSERT INTO settlement_accounts (id, merchant_id, account_masked, account_hmac, status,"
        " requested_at, effective_at) VALUES (?, ?, ?, ?, 'active', ?, ?)",
        ((m + 1, f"M{m:07d}", mask_account(f"62170000{m:011d}"), hmacs[m],
          "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z") for m in range(merchants)),
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO settlement_account_history (account_id, status, changed_at, actor)"
        " VALUES (?, 'active', '2024-01-01T00:00:00Z', 'bench')",
        ((m + 1,) for m in range(merchants)),
    )
    conn.executemany(
        "INSERT INTO imports (id, kind, filename, file_sha256, status, file_format,"
        " account_masked, account_hmac, period_start, period_end, balance_ok)"
        " VALUES (?, 'statement', ?, ?, 'done', 'camt053', '****', ?, '2025-03-01',"
        " '2025-04-30', ?)",
        ((m + 1, f"s{m}.xml", f"sha{m}", hmacs[m], 0 if m in broken else 1)
         for m in range(merchants)),
    )  # fmt: skip
    received, summaries, buckets = [], [], []
    batch_id = 0
    for m in range(merchants):
        mid = f"M{m:07d}"
        for n in range(per_merchant):
            batch_id += 1
            two = m in aggregated
            tid = f"T{m:07d}{n % 2 if two else 0}"
            day = no = n // 2 if two else n  # batch numbers run per terminal, no holes
            closed = _stamp(START + timedelta(days=day, minutes=n))
            upi = rng.randint(10_000, 900_000)
            visa = rng.randint(0, 60_000) if rng.random() < 0.3 else 0
            received.append((batch_id, f"ag-{tid}", no + 1, "k", "batch_summary", closed,
                             "bench", f"{batch_id:064x}", b"{}"))  # fmt: skip
            summaries.append((batch_id, batch_id, f"ag-{tid}", tid, mid, no + 1, closed, "156",
                              upi + visa, "c", "{}"))  # fmt: skip
            buckets.append((batch_id, "UPI", 1, upi, 0, 0, 0, 0))
            if visa:
                buckets.append((batch_id, "VISA", 1, visa, 0, 0, 0, 0))
    counts["batches"] = batch_id
    conn.executemany(
        "INSERT INTO received_records (id, agent_id, seq, key_id, record_type, created_at,"
        " source, payload_sha256, envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        received,
    )
    conn.executemany(
        "INSERT INTO batch_summaries (id, received_record_id, agent_id, terminal_id, merchant_id,"
        " batch_no, closed_at, currency, total_amount, content_sha256, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        summaries,
    )
    conn.executemany(
        "INSERT INTO batch_buckets (batch_id, name, sale_count, sale_amount, refund_count,"
        " refund_amount, void_count, void_amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        buckets,
    )
    conn.execute("COMMIT")
    del received, summaries, buckets
    counts.update(_payouts_and_credits(store, merchants, aggregated, hmacs, rng))
    conn.execute("ANALYZE")
    return counts


def _payouts_and_credits(
    store: SqliteStore, merchants: int, aggregated: set[int], hmacs: list[str], rng: random.Random
) -> dict[str, int]:
    """Credits and payout records from what the engine expects (amount net of fees, due date)."""
    calendar = load_calendar()
    conn = store.db.conn
    faults = dict.fromkeys(("missing", "short", "duplicate", "returned", "held"), 0)
    credits: list[tuple[object, ...]] = []
    payouts: list[tuple[object, ...]] = []
    ids = [f"M{m:07d}" for m in range(merchants)]
    for start in range(0, merchants, CHUNK):
        with store.transaction() as tx:
            inputs = load_inputs(tx, ids[start : start + CHUNK])
        for item in inputs:
            m = int(item.merchant.merchant_id[1:])
            expected = expected_credits(item.merchant, item.account_history, item.batches, calendar)
            masked = mask_account(f"62170000{m:011d}")
            if m in aggregated:
                per_day: dict[date, int] = {}
                for exp in expected:
                    per_day[exp.due_date] = per_day.get(exp.due_date, 0) + exp.amount
                for due, amount in per_day.items():
                    credits.append((hmacs[m], masked, due.isoformat(), due.isoformat(), amount,
                                    "", "合并到账 settlement", f"A{m}-{due:%m%d}"))  # fmt: skip
                continue
            for exp in expected:
                ref = f"PAY{m:07d}X{exp.batch_no:03d}"
                fate = rng.random()
                status = "paid"
                if fate < 0.005:
                    status = "returned"
                elif fate < 0.01:
                    status = "held"
                payouts.append((item.merchant.merchant_id, exp.due_date.isoformat(),
                                exp.gross, exp.fees, exp.amount, "CNY", masked, status,
                                "name mismatch" if status == "returned" else None, ref,
                                json.dumps([f"{exp.terminal_id}#{exp.batch_no}"])))  # fmt: skip
                if status != "paid":
                    faults[status] += 1
                    continue
                amount = exp.amount
                if fate < 0.03:
                    faults["missing"] += 1
                    continue
                if fate < 0.04:
                    faults["short"] += 1
                    amount -= 3_700
                day = exp.due_date.isoformat()
                credits.append(
                    (hmacs[m], masked, day, day, amount, ref, "", f"E{m}-{exp.batch_no}")
                )
                if fate > 0.995:
                    faults["duplicate"] += 1
                    credits.append((hmacs[m], masked, day, day, amount, ref, "",
                                    f"E{m}-{exp.batch_no}-dup"))  # fmt: skip
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO credits (import_id, account_hmac, account_masked, booked_at, value_date,"
        " amount, currency, kind, reference, remittance, entry_id, status)"
        " VALUES (NULL, ?, ?, ?, ?, ?, 'CNY', 'credit', ?, ?, ?, 'booked')",
        credits,
    )
    conn.executemany(
        "INSERT INTO payout_records (merchant_id, payout_date, gross_amount, fee_amount,"
        " net_amount, currency, account_masked, status, reason, reference, batch_refs)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        payouts,
    )
    conn.execute("COMMIT")
    return {"credits": len(credits), "payouts": len(payouts), **faults}


def scan(store: SqliteStore, merchant_ids: list[str]) -> tuple[float, float, int]:
    """Read every batch and credit once with the loader's SELECTs.

    :returns: wall seconds, CPU seconds, rows read
    """
    rows = 0
    cpu = time.process_time()
    started = time.perf_counter()
    for start in range(0, len(merchant_ids), CHUNK):
        ids = merchant_ids[start : start + CHUNK]
        marks = ",".join("?" for _ in ids)
        with store.transaction() as tx:
            rows += len(tx.query(BATCHES_SQL.format(ids=marks), ids))
            rows += len(tx.query(CREDITS_SQL.format(ids=marks), ids))
    return time.perf_counter() - started, time.process_time() - cpu, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="20k batches (within a minute)")
    mode.add_argument("--full", action="store_true", help="1M batches over 200k merchants")
    parser.add_argument("--batches", type=int, default=None, help="override the batch count")
    parser.add_argument("--per-merchant", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--db", type=Path, default=None, help="database file (default: temp)")
    args = parser.parse_args()
    total = args.batches or (20_000 if args.quick else 1_000_000 if args.full else 100_000)
    merchants = max(1, total // args.per_merchant)
    with tempfile.TemporaryDirectory(prefix="sg-recon-bench-") as tmp:
        path = args.db or Path(tmp) / "bench.db"
        store = open_store(f"sqlite:///{path}")
        assert isinstance(store, SqliteStore)
        store.migrate()
        began = time.perf_counter()
        counts = generate(store, merchants, args.per_merchant, args.seed)
        print(f"generated in {time.perf_counter() - began:.1f}s: {json.dumps(counts)}")
        ids = [f"M{m:07d}" for m in range(merchants)]
        scan(store, ids[: min(len(ids), CHUNK)])  # warm the page cache like the run below
        gc.collect()
        scan_s, scan_cpu, rows = scan(store, ids)
        print(f"scan: {rows} rows in {scan_s:.2f}s (CPU {scan_cpu:.2f}s)")
        gc.collect()
        cpu = time.process_time()
        report = reconcile(store, full=True, now=NOW)
        recon_cpu = time.process_time() - cpu
        recon_s = report.seconds
        phases = report.phases
        print(
            f"reconcile: {report.merchants} merchants, {report.batches} batches in "
            f"{recon_s:.2f}s (load {phases['load']:.2f}s, engine {phases['engine']:.2f}s, "
            f"write {phases['write']:.2f}s; CPU {recon_cpu:.2f}s); {report.matches} matches,"
            f" {report.gaps_open} gaps, errors {len(report.errors)}"
        )
        print(
            f"CPU-time figures (robust on a busy machine): batches_per_cpu_s="
            f"{report.batches / recon_cpu:.0f} cpu_ratio_to_scan={recon_cpu / scan_cpu:.1f}"
        )
        by_category = store.query(
            "SELECT category, COUNT(*) AS n FROM gaps WHERE status = 'open' GROUP BY category"
        )
        print("gaps:", {r["category"]: r["n"] for r in by_category})
        store.close()
    print(
        f"RESULT batches_per_s={report.batches / recon_s:.0f} ratio_to_scan={recon_s / scan_s:.1f}"
        f" matched={report.matches} gaps={report.gaps_open}"
    )


if __name__ == "__main__":
    main()
