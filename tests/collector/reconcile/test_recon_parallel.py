"""Reconciliation in worker processes stores exactly what one process stores.

A generated world (merchants paid, short-paid, unpaid, double-paid, with statement files in
shuffled order) is reconciled once in the calling process and once over two worker processes
in small chunks, on both stores; the stored matches and gaps must be the same rows (ids and
creation times aside, which follow insertion order). Also: a parallel re-run changes nothing,
and an incremental parallel run takes only the dirty merchants.
"""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Callable
from typing import Any

import pytest
from settleguard.collector.reconcile import runner as recon_parallel
from settleguard.collector.reconcile.store import ReconcileReport, reconcile
from settleguard.collector.store import Store

from tests.collector.reconcile.test_recon_store import NOW, add_batch, assert_conserved, build

FATES = ["paid", "paid", "paid", "short", "none", "double"]
MATCH_COLUMNS = (
    "merchant_id, rule, credit_ids, batch_ids, expected_amount, credited_amount, residual,"
    " explanation, match_key, covered, account_hmac"
)
GAP_COLUMNS = (
    "dedupe_key, merchant_id, category, amount, currency, due_at, batch_ids, status, since,"
    " credit_ids, evidence, reason, explanation, resolution"
)


def world(store: Store, merchants: int, seed: int) -> list[str]:
    """``merchants`` merchants with 1-6 batches each; their ids."""
    rng = random.Random(seed)
    ids = [f"P{seed}x{n:03d}" for n in range(merchants)]
    for mid in ids:
        plan = [(rng.randint(1_000, 400_000), rng.choice(FATES)) for _ in range(rng.randint(1, 6))]
        order = list(range(6))
        rng.shuffle(order)
        build(store, mid, plan, order)
    return ids


def stored(store: Store) -> tuple[list[Any], list[Any]]:
    """Every match and gap as a sorted list of rows without ids and timestamps."""
    matches = store.query(f"SELECT {MATCH_COLUMNS} FROM matches ORDER BY match_key")
    gaps = store.query(f"SELECT {GAP_COLUMNS} FROM gaps ORDER BY dedupe_key")
    return matches, gaps


def forget(store: Store) -> None:
    with store.transaction() as tx:
        for table in ("matches", "gaps", "recon_state"):
            tx.execute(f"DELETE FROM {table}")


def counts(report: ReconcileReport) -> tuple[int, ...]:
    return (report.merchants, report.batches, report.matches, report.gaps_open, report.gaps_new)


def test_parallel_run_stores_what_one_process_stores(store: Store) -> None:
    ids = world(store, 14, seed=5)
    one = reconcile(store, now=NOW, processes=1)
    assert one.processes == 1 and one.merchants == len(ids)
    single = stored(store)
    assert single[0] and single[1]  # the world has both matches and gaps
    forget(store)
    many = reconcile(store, now=NOW, processes=2, chunk=3)
    assert many.processes == 2
    assert counts(many) == counts(one) and many.errors == one.errors == {}
    assert stored(store) == single
    for mid in ids:
        assert_conserved(store, mid)
    before = store.query("SELECT * FROM gaps ORDER BY id"), store.query("SELECT * FROM matches")
    again = reconcile(store, ids, now=NOW, processes=2, chunk=3)
    assert again.gaps_new == again.gaps_resolved == 0
    assert (
        store.query("SELECT * FROM gaps ORDER BY id"),
        store.query("SELECT * FROM matches"),
    ) == before


def test_parallel_incremental_run_takes_only_dirty_merchants(store: Store) -> None:
    ids = world(store, 8, seed=7)
    assert reconcile(store, now=NOW, processes=2, chunk=2).merchants == len(ids)
    assert reconcile(store, now=NOW, processes=2, chunk=2).merchants == 0
    with store.transaction() as tx:
        add_batch(tx, ids[3], "T9", 1, NOW.replace(day=10), 20_000)
    report = reconcile(store, now=NOW, processes=2, chunk=2)
    assert report.merchants == 1 and report.processes == 1  # one chunk: no workers started


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_either_start_method_gives_the_same_rows(
    store: Store, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} on this platform")
    world(store, 6, seed=11)
    reconcile(store, now=NOW, processes=1)
    single = stored(store)
    forget(store)
    context: Callable[[], Any] = lambda: multiprocessing.get_context(method)  # noqa: E731
    monkeypatch.setattr(recon_parallel, "start_context", context)
    assert reconcile(store, now=NOW, processes=2, chunk=2).processes == 2
    assert stored(store) == single


def test_process_count_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(recon_parallel.PROCESSES_ENV, "3")
    assert recon_parallel.default_processes() == 3
    monkeypatch.setenv(recon_parallel.PROCESSES_ENV, "zero")
    with pytest.raises(ValueError, match="SETTLEGUARD_RECON_PROCESSES"):
        recon_parallel.default_processes()
    monkeypatch.delenv(recon_parallel.PROCESSES_ENV)
    assert recon_parallel.default_processes() >= 1
