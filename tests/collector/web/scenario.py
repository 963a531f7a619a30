"""A small reconciliation world built the way the system builds it: merchants from the
merchant file, batches as ingest writes them, and a bank statement the operator uploads."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from settleguard.collector.enrollment.keys import CollectorKeys
from settleguard.collector.merchants import import_merchants
from settleguard.collector.store import Store

ACCOUNT = "6222020000001234"
MERCHANT = "M777"


def add_batch(store: Store, mid: str, no: int, closed: datetime, amount: int) -> None:
    """One closed batch, written as ingest writes it (received record, summary, bucket)."""
    with store.transaction() as tx:
        rid = tx.insert(
            "received_records",
            {"agent_id": f"ag-{mid}", "seq": no, "key_id": "k", "record_type": "batch_summary",
             "created_at": closed.isoformat(), "source": "test",
             "payload_sha256": uuid.uuid4().hex, "envelope": b"x"},
        )  # fmt: skip
        bid = tx.insert(
            "batch_summaries",
            {"received_record_id": rid, "agent_id": f"ag-{mid}", "terminal_id": f"T-{mid}",
             "merchant_id": mid, "batch_no": no,
             "closed_at": closed.strftime("%Y-%m-%dT%H:%M:%SZ"), "currency": "156",
             "total_amount": amount, "content_sha256": "c"},
        )  # fmt: skip
        tx.execute(
            "INSERT INTO batch_buckets (batch_id, name, sale_count, sale_amount, refund_count,"
            " refund_amount, void_count, void_amount) VALUES (?, 'UPI', 1, ?, 0, 0, 0, 0)",
            (bid, amount),
        )


def build_world(store: Store, keys: CollectorKeys, *, today: date | None = None) -> bytes:
    """Merchant M777 with two batches; return a statement that pays only the first one."""
    today = today or datetime.now(UTC).date()
    merchants = (
        "merchant_id,name,phones,cycle,cutoff,timezone,fees,account,account_effective_at\n"
        f"{MERCHANT},Dumpling King,13900005678,T+1,23:00,Asia/Shanghai,UPI=0;*=0,{ACCOUNT},2020-01-01\n"
    ).encode()
    import_merchants(store, merchants, account_hmac=keys.account_hmac, actor="test")
    first = today - timedelta(days=20)
    add_batch(
        store, MERCHANT, 1, datetime(first.year, first.month, first.day, 12, tzinfo=UTC), 50000
    )
    second = today - timedelta(days=15)
    add_batch(
        store, MERCHANT, 2, datetime(second.year, second.month, second.day, 12, tzinfo=UTC), 80000
    )
    paid = first + timedelta(days=1)
    while paid.weekday() >= 5:  # T+1 on a working day (a holiday would only move the gap)
        paid += timedelta(days=1)
    lines = [
        "Date,Amount,Reference,Description",
        f"{(today - timedelta(days=25)).isoformat()},1.00,INT-1,interest",
        f"{paid.isoformat()},500.00,SETTLE-1,settlement",
        f"{(today - timedelta(days=2)).isoformat()},1.00,INT-2,interest",
    ]
    return ("\n".join(lines) + "\n").encode()
