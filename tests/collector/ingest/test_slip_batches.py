"""A typed settlement slip and China buckets through ingest to reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime

from settleguard.agent.slip_entry import entry_from_json
from settleguard.collector.enrollment.keys import account_hmac as keyed_hmac
from settleguard.collector.ingest.verify import IncomingMessage, Keyring, ingest_batch
from settleguard.collector.merchants import import_merchants
from settleguard.collector.reconcile.store import reconcile
from settleguard.collector.store import Store
from settleguard.collector.web.read_models import gap_queue, timeline
from settleguard.protocol.records import BatchSummary, Bucket

from tests.helpers.records import make_agent

KEY = b"k" * 32
NOW = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)
SLIP = {
    "merchant_no": "MS1",
    "terminal_no": "E0000001",
    "batch_no": 7,
    "date": "2026-11-26",
    "time": "21:30:05",
    "rows": [
        {"type": "内卡借记卡", "count": 4, "amount": "1523.00"},
        {"type": "支付宝", "count": 2, "amount": "77.00"},
    ],
    "total": "1600.00",
}


def merchants(store: Store, *ids: str) -> None:
    lines = ["merchant_id,name,phones,cycle,cutoff,timezone,fees,account,account_effective_at"]
    lines += [
        f"{mid},Shop {mid},13800000000,T+1,23:00,Asia/Shanghai,*=60,6222020000000{i:03d},2026-01-01"
        for i, mid in enumerate(ids)
    ]
    import_merchants(
        store, ("\n".join(lines) + "\n").encode(), account_hmac=lambda n: keyed_hmac(KEY, n)
    )


def ingest(store: Store, merchant: str, agent_id: str, record: BatchSummary) -> str:
    agent = make_agent(store, agent_id, merchant=merchant)
    [(_, ack)] = ingest_batch(
        store, Keyring(store), [IncomingMessage(agent.topic, agent.seal(record, seq=1))]
    )
    return str(ack.status)


def test_typed_slip_keeps_its_source_and_reaches_reconciliation(store: Store) -> None:
    merchants(store, "MS1")
    summary = entry_from_json(SLIP).batch_summary()
    assert ingest(store, "MS1", "agent-slip", summary) == "accepted"
    row = store.query_one("SELECT source, total_amount FROM batch_summaries")
    assert row is not None and (row["source"], row["total_amount"]) == ("slip", 160000)
    buckets = store.query("SELECT name, sale_amount FROM batch_buckets ORDER BY name")
    assert [(b["name"], b["sale_amount"]) for b in buckets] == [
        ("alipay", 7700),
        ("domestic_debit", 152300),
    ]
    reconcile(store, ["MS1"], now=NOW)  # no bank credit arrived: the batch is a gap
    (gap,) = gap_queue(store, merchant_id="MS1")
    assert gap["amount"] > 0 and gap["batch_sources"] == ["slip"]
    (event,) = [e for e in timeline(store, "MS1") if e["kind"] == "batch"]
    assert event["details"]["source"] == "slip"


def test_schemes_sharing_a_china_bucket_are_added_up_and_older_names_mapped(
    store: Store,
) -> None:
    merchants(store, "MZ1", "MZ2")
    common = {
        "merchant_id": None, "batch_no": 3, "closed_at": "2026-11-26T12:00:00Z",
        "terminal_local_time": None, "currency": "156", "receipt_start": None,
        "receipt_end": None, "host_reconciled": None, "protocol": "zvt",
    }  # fmt: skip
    new = BatchSummary(
        terminal_id="Z1",
        buckets=(
            Bucket("foreign", sale_count=2, sale_amount=500, scheme="visa"),
            Bucket("foreign", sale_count=1, sale_amount=300, scheme="amex"),
            Bucket("other", sale_count=1, sale_amount=100, scheme="other"),
        ),
        **common,  # type: ignore[arg-type]
    )
    older = BatchSummary(
        terminal_id="Z2",
        buckets=(Bucket("girocard", sale_count=1, sale_amount=900),),
        **common,  # type: ignore[arg-type]
    )
    assert ingest(store, "MZ1", "agent-z1", new) == "accepted"
    assert ingest(store, "MZ2", "agent-z2", older) == "accepted"
    rows = store.query(
        "SELECT s.terminal_id, k.name, k.sale_count, k.sale_amount, s.source FROM batch_buckets k"
        " JOIN batch_summaries s ON s.id = k.batch_id ORDER BY s.terminal_id, k.name"
    )
    assert [tuple(r.values()) for r in rows] == [
        ("Z1", "foreign", 3, 800, "terminal"),
        ("Z1", "other", 1, 100, "terminal"),
        ("Z2", "foreign", 1, 900, "terminal"),
    ]
