"""Micro benchmark of the pure reconciliation engine (no store): batches reconciled per second.

Builds merchants in memory (5 terminals' batches over a week, a mix of one-to-one, aggregated,
short and missing payouts, one in ten with a pending card change), then times
``reconcile_all`` ``--repeat`` times and keeps the median CPU time. Prints a last line
``RESULT engine_batches_per_s=… ratio_to_scan=… matched=… gaps=…`` where ``ratio_to_scan`` is the
engine's CPU time over the CPU time of merely touching every batch and credit once in the same
run (robust against a busy machine; batches/s is not). ``--references`` gives every credit the
batch's payout reference, so the reference rule matches instead of amount and date;
``--store-shape`` builds the shapes of ``benchmarks/reconcile.py`` instead (payout records
naming the batches, aggregated merchants, its faults). ``--general`` never takes the one-pass
matcher (for A/B comparisons).

    .venv/bin/python benchmarks/reconcile_engine.py [--merchants 20000] [--batches-per-merchant 5]
        [--references | --store-shape] [--general] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall
from zoneinfo import ZoneInfo

from settleguard.collector.reconcile import (
    AccountChange,
    Batch,
    Bucket,
    Credit,
    FeeRule,
    FeeSchedule,
    Merchant,
    MerchantInputs,
    PayoutRecord,
    StatementCoverage,
    expected_credits,
    load_calendar,
    reconcile_all,
)

TZ = ZoneInfo("Asia/Shanghai")
SCHEDULE = FeeSchedule((FeeRule("UPI", 60, cap=2000), FeeRule("VISA", 125)), FeeRule("*", 60))


def build(
    merchants: int, per_merchant: int, seed: int, references: bool = False
) -> list[MerchantInputs]:
    """Synthetic merchants with deterministic randomness."""
    rng = random.Random(seed)
    calendar = load_calendar()
    start = datetime(2025, 3, 3, 21, 0, tzinfo=TZ)
    out = []
    for m in range(merchants):
        mid = f"M{m:07d}"
        merchant = Merchant(mid, "shop", "T+1", wall(23, 0), "Asia/Shanghai", SCHEDULE)
        since = datetime(2024, 1, 1, tzinfo=UTC)
        history = [AccountChange(since, f"{mid}-a", mid, f"k{m}", "1234", "active", since, since)]
        if m % 10 == 0:
            asked = datetime(2025, 3, 1, tzinfo=UTC)
            history.append(AccountChange(asked, f"{mid}-b", mid, f"n{m}", "5678", "under_review"))
        batches = []
        for n in range(per_merchant):
            closed = (start + timedelta(days=n % 7, minutes=n)).astimezone(UTC)
            buckets = (
                Bucket("UPI", rng.randint(1_000, 900_000)),
                Bucket("VISA", rng.randint(0, 50_000)),
            )
            reference = f"PO{m:07d}{n:04d}" if references else None
            net = sum(b.net_amount for b in buckets)
            batches.append(Batch(mid, f"T{m}", n + 1, closed, "156", buckets, net, reference))
        credits = []
        exps = expected_credits(merchant, history, batches, calendar)
        for i, exp in enumerate(exps):
            fate = rng.random()
            amount = exp.amount if fate < 0.85 else exp.amount - 500 if fate < 0.9 else 0
            if amount > 0:
                credits.append(
                    Credit(
                        f"{mid}-c{i}",
                        f"k{m}",
                        "1234",
                        exp.due_date,
                        exp.due_date,
                        amount,
                        "156",
                        exp.reference or "",
                        "结算款",
                    )
                )
        coverage = (StatementCoverage(f"k{m}", date(2025, 3, 1), date(2025, 3, 31)),)
        out.append(
            MerchantInputs(
                merchant, tuple(history), tuple(batches), (), tuple(credits), (), coverage
            )
        )
    return out


def build_store_shape(merchants: int, per_merchant: int, seed: int) -> list[MerchantInputs]:
    """The shapes of ``benchmarks/reconcile.py``, in memory: what the store loader hands over.

    Most merchants: one terminal, a batch a day, a payout record naming the batch
    (``TID#no``) and a credit carrying its payout reference; ~8 %: two terminals paid one
    aggregated credit a day without reference; faults: ~3 % missing, 1 % short, 0.5 %
    duplicate, 0.5 % returned, 0.5 % held; ~1 % of statements with a broken balance chain.
    """
    rng = random.Random(seed)
    calendar = load_calendar()
    start = datetime(2025, 3, 3, 21, 0, tzinfo=TZ)
    since = datetime(2024, 1, 1, tzinfo=UTC)
    out = []
    for m in range(merchants):
        mid = f"M{m:07d}"
        merchant = Merchant(mid, "shop", "T+1", wall(23, 0), "Asia/Shanghai", SCHEDULE)
        history = (AccountChange(since, f"{mid}-a", mid, f"k{m}", "1234", "active", since, since),)
        two = rng.random() < 0.08
        batches = []
        for n in range(per_merchant):
            tid = f"T{m:07d}{n % 2 if two else 0}"
            day = n // 2 if two else n
            closed = (start + timedelta(days=day, minutes=n)).astimezone(UTC)
            upi = rng.randint(10_000, 900_000)
            visa = rng.randint(0, 60_000) if rng.random() < 0.3 else 0
            buckets = (Bucket("UPI", upi),) + ((Bucket("VISA", visa),) if visa else ())
            batches.append(Batch(mid, tid, day + 1, closed, "156", buckets, upi + visa))
        exps = expected_credits(merchant, history, batches, calendar)
        credits: list[Credit] = []
        payouts: list[PayoutRecord] = []
        if two:
            per_day: dict[date, int] = {}
            for exp in exps:
                per_day[exp.due_date] = per_day.get(exp.due_date, 0) + exp.amount
            for due, amount in per_day.items():
                credits.append(
                    Credit(
                        f"A{m}-{due:%m%d}",
                        f"k{m}",
                        "1234",
                        due,
                        due,
                        amount,
                        "156",
                        "",
                        "合并到账 settlement",
                    )
                )
        for exp in [] if two else exps:
            ref = f"PAY{m:07d}X{exp.batch_no:03d}"
            fate = rng.random()
            status = "returned" if fate < 0.005 else "held" if fate < 0.01 else "paid"
            payouts.append(
                PayoutRecord(
                    mid,
                    exp.due_date,
                    exp.gross,
                    exp.fees,
                    exp.amount,
                    "1234",
                    status,
                    "name mismatch" if status == "returned" else None,
                    ref,
                    (f"{exp.terminal_id}#{exp.batch_no}",),
                )
            )
            if status != "paid" or fate < 0.03:
                continue
            amount = exp.amount - 3_700 if fate < 0.04 else exp.amount
            for suffix in ("", "-dup") if fate > 0.995 else ("",):
                credits.append(
                    Credit(
                        f"E{m}-{exp.batch_no}{suffix}",
                        f"k{m}",
                        "1234",
                        exp.due_date,
                        exp.due_date,
                        amount,
                        "156",
                        ref,
                        "",
                    )
                )
        coverage = (
            StatementCoverage(f"k{m}", date(2025, 3, 1), date(2025, 4, 30), rng.random() >= 0.01),
        )
        out.append(
            MerchantInputs(
                merchant, history, tuple(batches), (), tuple(credits), tuple(payouts), coverage
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merchants", type=int, default=20_000)
    parser.add_argument("--batches-per-merchant", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--references", action="store_true", help="credits carry references")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median CPU time counts")
    parser.add_argument(
        "--store-shape", action="store_true", help="the shapes of benchmarks/reconcile.py"
    )
    parser.add_argument("--general", action="store_true", help="never take the fast matcher")
    args = parser.parse_args()
    if args.store_shape:
        inputs = build_store_shape(args.merchants, args.batches_per_merchant, args.seed)
    else:
        inputs = build(args.merchants, args.batches_per_merchant, args.seed, args.references)
    calendar = load_calendar()
    now = datetime(2025, 4, 1, 12, tzinfo=TZ)
    # The inputs are built up front here, unlike a store adapter that streams merchants; move
    # them out of the cyclic GC's sight so its full collections do not rescan them all run long.
    gc.collect()
    gc.freeze()
    scan_s = statistics.median(_scan(inputs) for _ in range(args.repeat))
    runs = []
    for _ in range(args.repeat):
        t1 = time.process_time()
        matched = gaps = 0
        for result in reconcile_all(inputs, now=now, calendar=calendar, fast=not args.general):
            matched += len(result.matches)
            gaps += len(result.gaps)
        runs.append(time.process_time() - t1)
    elapsed = statistics.median(runs)
    total = args.merchants * args.batches_per_merchant
    print(
        f"{total} batches over {args.merchants} merchants: median {elapsed:.2f} s CPU of "
        f"{', '.join(f'{r:.2f}' for r in runs)}; scan {scan_s:.3f} s CPU"
    )
    print(
        f"RESULT engine_batches_per_s={total / elapsed:.0f} ratio_to_scan={elapsed / scan_s:.1f} "
        f"matched={matched} gaps={gaps}"
    )


def _scan(inputs: list[MerchantInputs]) -> float:
    """CPU seconds to merely touch every batch and credit once: the baseline of the same run."""
    t0 = time.process_time()
    total = 0
    for merchant in inputs:
        for batch in merchant.batches:
            total += batch.net_amount + len(batch.key) + batch.closed_at.day
        for credit in merchant.credits:
            total += credit.amount + credit.booking_date.day
    return max(time.process_time() - t0, 1e-9)


if __name__ == "__main__":
    main()
