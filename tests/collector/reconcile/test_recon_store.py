"""Store-level reconciliation: conservation of money, idempotence, import order, incremental runs.

Runs on SQLite and PostgreSQL (the ``store`` fixture). Batches are written the way ingest
writes them (a received record, the batch row, its buckets); credits arrive as statement files
through :func:`collector.statements.importer.import_file`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from settleguard.collector.enrollment.keys import account_hmac as keyed_hmac
from settleguard.collector.merchants import import_merchants, set_account_status
from settleguard.collector.reconcile import expected_credits, load_calendar
from settleguard.collector.reconcile.model import BATCH_CATEGORIES
from settleguard.collector.reconcile.store import acknowledge_gap, list_gaps, load_inputs, reconcile
from settleguard.collector.statements.importer import import_file
from settleguard.collector.store import Store, Tx

KEY = b"k" * 32
NOW = datetime(2024, 4, 20, 4, 0, tzinfo=UTC)
CALENDAR = load_calendar()


def hasher(number: str) -> str:
    return keyed_hmac(KEY, number)


def add_batch(tx: Tx, mid: str, tid: str, no: int, closed: datetime, amount: int) -> None:
    """Write one batch as ingest does (received record, batch summary, one bucket)."""
    rid = tx.insert(
        "received_records",
        {"agent_id": f"ag-{mid}-{tid}", "seq": no, "key_id": "k", "record_type": "batch_summary",
         "created_at": closed.isoformat(), "source": "test", "payload_sha256": uuid.uuid4().hex,
         "envelope": b"x"},
    )  # fmt: skip
    bid = tx.insert(
        "batch_summaries",
        {"received_record_id": rid, "agent_id": f"ag-{mid}-{tid}", "terminal_id": f"{tid}-{mid}",
         "merchant_id": mid, "batch_no": no,
         "closed_at": closed.strftime("%Y-%m-%dT%H:%M:%SZ"), "currency": "156",
         "total_amount": amount, "content_sha256": "c"},
    )  # fmt: skip
    tx.execute(
        "INSERT INTO batch_buckets (batch_id, name, sale_count, sale_amount, refund_count,"
        " refund_amount, void_count, void_amount) VALUES (?, 'UPI', 1, ?, 0, 0, 0, 0)",
        (bid, amount),
    )


def merchant_csv(mid: str, account: str, effective: str = "2024-01-01") -> bytes:
    return (
        "merchant_id,name,phones,cycle,cutoff,timezone,fees,account,account_effective_at\n"
        f"{mid},Shop {mid},13800000000,T+1,23:00,Asia/Shanghai,UPI=60;*=60,{account},{effective}\n"
    ).encode()


def statement_csv(rows: list[tuple[date, int, str]], tag: str) -> bytes:
    """A generic-profile bank CSV of credits (minor units rendered as decimals). ``tag`` goes
    in a column the profile does not read: it keeps two merchants' files apart (the same
    bytes twice are one import) without changing what the bank said about an entry, which
    is what an entry's id is made of."""
    lines = ["Date,Amount,Reference,Description,Note"]
    lines += [f"{d.isoformat()},{a // 100}.{a % 100:02d},{ref},card payout,{tag}"
              for d, a, ref in rows]  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


def net(amount: int) -> int:
    return amount - (amount * 60 * 2 + 10000) // 20000


def snapshot(store: Store, mid: str) -> dict[str, Any]:
    """Matches and gaps of one merchant with ids and the merchant prefix removed."""
    credits = {
        # equal credits of one day are interchangeable; which one the engine takes follows
        # their ids, and those hash the (per-merchant) account
        r["entry_id"]: f"{r['booked_at']}:{r['amount']}"
        for r in store.query("SELECT entry_id, booked_at, amount FROM credits")
    }

    def clean(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.startswith("["):  # id lists: map, then sort (ids order by their hash)
            return sorted(credits.get(v, v).replace(mid, "M") for v in json.loads(value))
        return value.replace(mid, "M")

    matches = store.query(
        "SELECT rule, batch_ids, credit_ids, expected_amount, credited_amount, residual, covered"
        " FROM matches WHERE merchant_id = ? ORDER BY batch_ids, credit_ids",
        (mid,),
    )
    gaps = store.query(
        "SELECT category, amount, due_at, since, batch_ids, credit_ids, status, reason"
        " FROM gaps WHERE merchant_id = ? ORDER BY category, batch_ids, credit_ids",
        (mid,),
    )
    return {
        "matches": [{k: clean(v) for k, v in r.items()} for r in matches],
        "gaps": [{k: clean(v) for k, v in r.items()} for r in gaps],
    }


def assert_conserved(store: Store, mid: str) -> None:
    """Every minor unit of every batch is matched or in exactly one gap."""
    with store.transaction() as tx:
        (inputs,) = load_inputs(tx, [mid])
    expected = {
        e.batch_key: e.amount
        for e in expected_credits(inputs.merchant, inputs.account_history, inputs.batches, CALENDAR)
        if e.amount > 0
    }
    owners: dict[str, int] = dict.fromkeys(expected, 0)
    covered = 0
    matches = store.query("SELECT batch_ids, covered FROM matches WHERE merchant_id = ?", (mid,))
    for row in matches:
        for key in json.loads(row["batch_ids"]):
            owners[key] += 1
        covered += row["covered"]
    open_gaps = list_gaps(store, status="open", merchant_id=mid)
    for gap in open_gaps:
        if gap["category"] in BATCH_CATEGORIES:
            assert len(gap["batch_ids"]) == 1
            owners[gap["batch_ids"][0]] += 1
            covered += gap["amount"]
        elif gap["category"] == "SHORT_PAID":
            covered += gap["amount"]
    assert owners == dict.fromkeys(expected, 1)
    assert covered == sum(expected.values())


def build(store: Store, mid: str, plan: list[tuple[int, str]], order: list[int]) -> None:
    """Merchant with one account; batch i of ``plan`` is (amount, fate); files in ``order``.

    Two merchants built from one plan differ only in the middle digits of their account and in
    the import order: entries get the same ids (a hash of the masked account, ``****4321``, and
    of what the bank said), so the engine sees the same credits in the same order and only
    the import order tells the merchants apart.
    """
    account = "6217" + str(abs(hash(mid)) % 10**11).zfill(11) + "4321"
    import_merchants(store, merchant_csv(mid, account), account_hmac=hasher)
    per_day: dict[date, list[tuple[date, int, str]]] = {}
    start = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
    with store.transaction() as tx:
        for i, (amount, fate) in enumerate(plan):
            closed = start + timedelta(days=i % 5, minutes=i)
            add_batch(tx, mid, "T1", i + 1, closed, amount)
            pay_day = closed.date() + timedelta(days=3)
            if fate == "paid":
                per_day.setdefault(pay_day, []).append((pay_day, net(amount), f"P{i}"))
            elif fate == "short":
                per_day.setdefault(pay_day, []).append((pay_day, net(amount) - 300, f"S{i}"))
            elif fate == "double":
                per_day.setdefault(pay_day, []).append((pay_day, net(amount), f"D{i}"))
                per_day.setdefault(pay_day, []).append((pay_day, net(amount), f"E{i}"))
    files = [statement_csv(rows, mid) for _, rows in sorted(per_day.items())]
    for index in order:
        if index < len(files):
            import_file(store, files[index], filename=f"s{index}.csv", account_hmac=hasher,
                        fmt="csv", profile="generic", account=account)  # fmt: skip


plans = st.lists(
    st.tuples(st.integers(1_000, 500_000), st.sampled_from(["paid", "short", "none", "double"])),
    min_size=1,
    max_size=7,
)


@settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a store run is slow
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=plans, order=st.permutations(range(6)))
def test_money_conserved_idempotent_and_order_free(
    store: Store, plan: Any, order: list[int]
) -> None:
    first, second = f"M{uuid.uuid4().hex[:8]}", f"M{uuid.uuid4().hex[:8]}"
    build(store, first, plan, list(range(6)))
    build(store, second, plan, order)
    reconcile(store, [first, second], now=NOW)
    assert_conserved(store, first)
    assert_conserved(store, second)
    before = (
        store.query("SELECT * FROM gaps ORDER BY id"),
        store.query("SELECT * FROM matches ORDER BY id"),
    )
    reconcile(store, [first, second], now=NOW)
    after = (
        store.query("SELECT * FROM gaps ORDER BY id"),
        store.query("SELECT * FROM matches ORDER BY id"),
    )
    assert before == after
    assert snapshot(store, first) == snapshot(store, second)


def test_incremental_run_touches_only_dirty_merchants(store: Store) -> None:
    build(store, "MA", [(100_000, "paid"), (50_000, "none")], [0, 1])
    build(store, "MB", [(70_000, "none")], [0])
    first = reconcile(store, now=NOW)
    assert first.merchants == 2
    assert reconcile(store, now=NOW).merchants == 0  # nothing changed
    with store.transaction() as tx:
        add_batch(tx, "MB", "T1", 9, datetime(2024, 4, 10, 12, tzinfo=UTC), 20_000)
    third = reconcile(store, now=NOW)
    assert third.merchants == 1 and third.batches == 2


def test_gap_keeps_id_and_acknowledgement_then_resolves_when_paid(store: Store) -> None:
    account = "6217000012345678901"
    import_merchants(store, merchant_csv("MC", account), account_hmac=hasher)
    closed = datetime(2024, 4, 1, 12, tzinfo=UTC)
    with store.transaction() as tx:
        add_batch(tx, "MC", "T1", 1, closed, 100_000)
    reconcile(store, now=NOW)
    (gap,) = list_gaps(store, merchant_id="MC")
    assert gap["category"] in ("MISSING", "STATEMENT_GAP") and gap["amount"] == net(100_000)
    acknowledge_gap(store, gap["id"], actor="ops")
    reconcile(store, ["MC"], now=NOW + timedelta(hours=1))
    (same,) = list_gaps(store, status="acknowledged", merchant_id="MC")
    assert same["id"] == gap["id"] and same["acknowledged_by"] == "ops"
    paid = statement_csv([(date(2024, 4, 2), net(100_000), "X1")], "MC")
    import_file(store, paid, filename="p.csv", account_hmac=hasher, fmt="csv",
                profile="generic", account=account)  # fmt: skip
    report = reconcile(store, now=NOW)
    assert report.merchants == 1 and report.gaps_resolved == 1
    (resolved,) = list_gaps(store, status="resolved", merchant_id="MC")
    assert resolved["id"] == gap["id"] and resolved["resolution"] == "matched"
    assert store.query_one("SELECT rule FROM matches WHERE merchant_id = 'MC'") is not None


def test_change_under_review_leaves_old_account_in_force(store: Store) -> None:
    old, new = "6217000011112222333", "6217000044445555666"
    import_merchants(store, merchant_csv("MD", old), account_hmac=hasher)
    with store.transaction() as tx:
        account_id = tx.insert(
            "settlement_accounts",
            {"merchant_id": "MD", "account_masked": "****5666", "account_hmac": hasher(new),
             "status": "under_review", "requested_at": "2024-03-15T00:00:00Z"},
        )  # fmt: skip
        add_batch(tx, "MD", "T1", 1, datetime(2024, 4, 1, 12, tzinfo=UTC), 100_000)
    to_old = statement_csv([(date(2024, 4, 2), net(100_000), "Y1")], "MD")
    import_file(store, to_old, filename="o.csv", account_hmac=hasher, fmt="csv",
                profile="generic", account=old)  # fmt: skip
    reconcile(store, now=NOW)
    (gap,) = list_gaps(store, merchant_id="MD")  # paid where the account in force says
    assert gap["category"] == "PAID_TO_OLD_ACCOUNT" and gap["amount"] == net(100_000)
    set_account_status(store, account_id, "rejected", actor="ops")
    assert reconcile(store, now=NOW).merchants == 1  # an operator edit marks it dirty


def test_credit_without_reference_takes_its_end_to_end_id(store: Store) -> None:
    account = "6217000099998888777"
    import_merchants(store, merchant_csv("ME", account), account_hmac=hasher)
    raw = '{{"end_to_end_id": "{}", "element": "Ntry"}}'
    with store.transaction() as tx:
        for entry, reference, e2e in (
            ("e1", "REF0000001", "E2E0000001"),  # a reference wins over the end-to-end id
            ("e2", "", "E2E0000002"),
            ("e3", None, "NOTPROVIDED"),  # camt's placeholder is no reference
        ):
            tx.insert(
                "credits",
                {"account_hmac": hasher(account), "account_masked": "****8777",
                 "booked_at": "2024-04-02", "value_date": "2024-04-02", "amount": 100,
                 "currency": "CNY", "kind": "credit", "reference": reference,
                 "entry_id": entry, "status": "booked", "raw": raw.format(e2e)},
            )  # fmt: skip
        (inputs,) = load_inputs(tx, ["ME"])
    assert {c.credit_id: c.reference for c in inputs.credits} == {
        "e1": "REF0000001",
        "e2": "E2E0000002",
        "e3": "",
    }
