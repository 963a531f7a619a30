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

(a) **scan**: reading the same inputs once from the store -- every query the loader runs
    (:data:`collector.reconcile.store.LOADER_SQL`: merchants, account history, batches with their
    buckets, credits, statement coverage, payouts, replacements), chunked the same way, each in
    a transaction like the loader's, rows materialised as tuples (``Tx.query_rows``, what the
    loader itself reads). The batches-and-credits part alone is printed too (``ratio_to_bc``);
(b) **reconcile**: :func:`collector.reconcile.store.reconcile` with ``full=True`` -- load, engine,
    write matches and gaps -- and its split into load / engine / write (summed over worker
    processes). By default it runs with its own default process count (one per CPU, see
    :mod:`collector.reconcile.runner`); ``--processes 1`` pins the calling process alone. The
    process count is printed; reconcile CPU time includes the worker processes'.

``--repeat N`` runs (a) and (b) N times, each on a fresh copy of the generated database, and
reports medians (wall and CPU): the machine is shared, single runs are noisy.

Last line: ``RESULT batches_per_s=… ratio_to_scan=… matched=… gaps=…`` (wall-clock medians;
``ratio_to_scan`` = reconcile time / scan time). Targets: ``batches_per_s >= 50000`` and
``ratio_to_scan <= 8``. The line before it gives the same from CPU time.

    .venv/bin/python benchmarks/reconcile.py --quick      # 20k batches, within a minute
    .venv/bin/python benchmarks/reconcile.py              # 100k batches over 20k merchants
    .venv/bin/python benchmarks/reconcile.py --full       # 1M batches over 200k merchants
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import shutil
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from settleguard.collector.account_numbers import account_hmac, mask_account
from settleguard.collector.reconcile import expected_credits, load_calendar
from settleguard.collector.reconcile.store import CHUNK, LOADER_SQL, load_inputs, reconcile
from settleguard.collector.store import open_store
from settleguard.collector.store.sqlite import SqliteStore

KEY = b"bench-hmac-key-0123456789abcdef!"
TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 3, 3, 21, 0, tzinfo=TZ)  # a Monday evening, local close time
NOW = datetime(2025, 4, 1, 4, 0, tzinfo=UTC)  # every batch is due by then
FEES = json.dumps(
    {
        "rules": [
            {"card_type": "UPI", "rate_bp": 60, "cap": 2000, "fixed": 0},
            {"card_type": "VISA", "rate_bp": 125, "cap": None, "fixed": 0},
        ],
        "default": {"card_type": "*", "rate_bp": 60, "cap": None, "fixed": 0},
        "refund_fee_returned": False,
    },
    sort_keys=True,
)


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
        (
            (
                m + 1,
                f"M{m:07d}",
                mask_account(f"62170000{m:011d}"),
                hmacs[m],
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:00:00Z",
            )
            for m in range(merchants)
        ),
    )
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
        (
            (m + 1, f"s{m}.xml", f"sha{m}", hmacs[m], 0 if m in broken else 1)
            for m in range(merchants)
        ),
    )
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
            received.append(
                (
                    batch_id,
                    f"ag-{tid}",
                    no + 1,
                    "k",
                    "batch_summary",
                    closed,
                    "bench",
                    f"{batch_id:064x}",
                    b"{}",
                )
            )
            summaries.append(
                (batch_id, batch_id, f"ag-{tid}", tid, mid, no + 1, closed, "156", upi + visa, "c")
            )
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
        " batch_no, closed_at, currency, total_amount, content_sha256)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    credits.append(
                        (
                            hmacs[m],
                            masked,
                            due.isoformat(),
                            due.isoformat(),
                            amount,
                            "",
                            "合并到账 settlement",
                            f"A{m}-{due:%m%d}",
                        )
                    )
                continue
            for exp in expected:
                ref = f"PAY{m:07d}X{exp.batch_no:03d}"
                fate = rng.random()
                status = "paid"
                if fate < 0.005:
                    status = "returned"
                elif fate < 0.01:
                    status = "held"
                payouts.append(
                    (
                        item.merchant.merchant_id,
                        exp.due_date.isoformat(),
                        exp.gross,
                        exp.fees,
                        exp.amount,
                        "CNY",
                        masked,
                        status,
                        "name mismatch" if status == "returned" else None,
                        ref,
                        json.dumps([f"{exp.terminal_id}#{exp.batch_no}"]),
                    )
                )
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
                    credits.append(
                        (hmacs[m], masked, day, day, amount, ref, "", f"E{m}-{exp.batch_no}-dup")
                    )
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


def scan(
    store: SqliteStore, merchant_ids: list[str], names: tuple[str, ...] = tuple(LOADER_SQL)
) -> tuple[float, float, int]:
    """Read the loader's inputs once with the loader's own SELECTs (``names`` of them).

    :returns: wall seconds, CPU seconds, rows read
    """
    rows = 0
    queries = [LOADER_SQL[name] for name in names]
    cpu = time.process_time()
    started = time.perf_counter()
    for start in range(0, len(merchant_ids), CHUNK):
        ids = merchant_ids[start : start + CHUNK]
        marks = ",".join("?" for _ in ids)
        with store.transaction() as tx:
            for sql in queries:
                rows += len(tx.query_rows(sql.format(ids=marks), ids))
    return time.perf_counter() - started, time.process_time() - cpu, rows


def _cpu() -> float:
    """CPU seconds of this process and of its finished child processes (reconcile workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def one_run(path: Path, ids: list[str], processes: int | None) -> dict[str, float]:
    """Scan, then reconcile everything, on the database at ``path``; their times and counts."""
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqliteStore)
    scan(store, ids[: min(len(ids), CHUNK)])  # warm the page cache like the run below
    gc.collect()
    bc_s, bc_cpu, _ = scan(store, ids, ("batches", "credits"))
    gc.collect()
    scan_s, scan_cpu, rows = scan(store, ids)
    gc.collect()
    cpu = _cpu()
    report = reconcile(store, full=True, now=NOW, processes=processes)
    recon_cpu = _cpu() - cpu
    store.close()
    return {
        "scan_s": scan_s,
        "scan_cpu": scan_cpu,
        "rows": rows,
        "bc_s": bc_s,
        "bc_cpu": bc_cpu,
        "recon_s": report.seconds,
        "recon_cpu": recon_cpu,
        "batches": report.batches,
        "merchants": report.merchants,
        "matches": report.matches,
        "gaps": report.gaps_open,
        "errors": len(report.errors),
        "processes": report.processes,
        **report.phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="20k batches (within a minute)")
    mode.add_argument("--full", action="store_true", help="1M batches over 200k merchants")
    parser.add_argument("--batches", type=int, default=None, help="override the batch count")
    parser.add_argument("--per-merchant", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--db", type=Path, default=None, help="database file (default: temp)")
    parser.add_argument("--repeat", type=int, default=3, help="runs to take medians of")
    parser.add_argument(
        "--processes", type=int, default=None, help="reconcile processes (default: one per CPU)"
    )
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
        store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        runs = []
        for n in range(args.repeat):
            run_path = Path(tmp) / "run.db"
            shutil.copyfile(path, run_path)
            run = one_run(run_path, ids, args.processes)
            runs.append(run)
            print(
                f"run {n + 1}: scan {run['rows']:.0f} rows in {run['scan_s']:.2f}s (CPU"
                f" {run['scan_cpu']:.2f}s; batches+credits only {run['bc_s']:.2f}s, CPU"
                f" {run['bc_cpu']:.2f}s); reconcile {run['merchants']:.0f} merchants,"
                f" {run['batches']:.0f} batches in {run['processes']:.0f} process(es),"
                f" {run['recon_s']:.2f}s (load {run['load']:.2f}s,"
                f" engine {run['engine']:.2f}s, write {run['write']:.2f}s; CPU"
                f" {run['recon_cpu']:.2f}s); {run['matches']:.0f} matches, {run['gaps']:.0f} gaps,"
                f" errors {run['errors']:.0f}"
            )
            if n + 1 < args.repeat:
                for leftover in Path(tmp).glob("run.db*"):  # with any -wal/-shm beside it
                    leftover.unlink()
        last = open_store(f"sqlite:///{Path(tmp) / 'run.db'}")
        by_category = last.query(
            "SELECT category, COUNT(*) AS n FROM gaps WHERE status = 'open' GROUP BY category"
        )
        print("gaps:", {r["category"]: r["n"] for r in by_category})
        last.close()

    def med(name: str) -> float:
        return statistics.median(run[name] for run in runs)

    batches, recon_s, recon_cpu = med("batches"), med("recon_s"), med("recon_cpu")
    print(
        f"medians of {len(runs)}: reconcile ({med('processes'):.0f} process(es))"
        f" {recon_s:.2f}s wall / {recon_cpu:.2f}s CPU (load"
        f" {med('load'):.2f}s, engine {med('engine'):.2f}s, write {med('write'):.2f}s wall);"
        f" scan {med('scan_s'):.2f}s wall / {med('scan_cpu'):.2f}s CPU; batches+credits scan"
        f" {med('bc_s'):.2f}s wall / {med('bc_cpu'):.2f}s CPU (load, engine, write: summed over"
        " processes)"
    )
    print(
        f"CPU-time figures (robust on a busy machine): batches_per_cpu_s="
        f"{batches / recon_cpu:.0f} cpu_ratio_to_scan={recon_cpu / med('scan_cpu'):.1f}"
        f" cpu_ratio_to_bc={recon_cpu / med('bc_cpu'):.1f}"
    )
    print(f"wall ratio to the batches+credits scan alone: ratio_to_bc={recon_s / med('bc_s'):.1f}")
    print(
        f"RESULT batches_per_s={batches / recon_s:.0f} ratio_to_scan={recon_s / med('scan_s'):.1f}"
        f" matched={med('matches'):.0f} gaps={med('gaps'):.0f}"
    )


if __name__ == "__main__":
    main()
